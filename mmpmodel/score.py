"""``mmp score``: PSNR/SSIM of finished output frames (from any method) against sharp frames, under eval's protocol.

The metrics are :mod:`mmpmodel.metrics`' (RGB uint8, full frame, SSIM with a Gaussian window of sigma 1.5), averaged
over every scored frame (per sequence and overall), so the numbers are directly comparable with ``mmp eval``: on the
PNGs that ``mmp eval --save`` writes, scoring them against the same data gives eval's PSNR and SSIM.

Two switches bring the numbers onto the terms of papers that score differently (both off by default):
  y_channel - score the luma Y of ITU-R BT.601 (studio range 16-235, rounded to uint8, as MATLAB's rgb2ycbcr);
  crop      - leave out ``crop`` pixels at every border of both images.

Layouts: OUTPUT_DIR holds frames directly (one sequence) or one folder of frames per sequence. The target is an
mmp-h5 file (its ``sharp`` frames, output frame ``i`` paired with sharp frame ``i`` by the number in its name) or a
folder: the frames themselves, or per-sequence folders as ``TARGET[/split]/<sequence>[/sharp|/Sharp[/RGB]]``
(GOPRO_Large and BSD keep their sharp frames so). Frames pair by file name; failing that by the number in the
name; failing that by sorted order when both sides have the same count. Anything else is an error naming the folder.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mmpdata.errors import InputError
from mmpdata.rawio import IMAGE_SUFFIXES, SPLIT_NAMES, list_frames, read_image

from .evaluate import PAPER_SKIP
from .metrics import psnr, ssim

log = logging.getLogger(__name__)

__all__ = ["score", "rgb_to_y", "crop_border", "frame_scores"]

#: BT.601 luma weights on [0, 255] RGB, with the +16 studio offset (MATLAB rgb2ycbcr, BasicSR's ``y_only``).
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
PROTOCOLS = ("all", "paper")
#: Side of the Gaussian SSIM window (sigma 1.5, truncated at 3.5 sigma): frames must be at least this large.
SSIM_WINDOW = 11


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 luma (H, W), BT.601 studio range, rounded."""
    y = img.astype(np.float64) @ _Y_WEIGHTS + 16.0
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def crop_border(img: np.ndarray, n: int) -> np.ndarray:
    """``img`` without its outer ``n`` pixels on every side."""
    if n <= 0:
        return img
    if 2 * n >= min(img.shape[:2]):
        raise InputError(f"--crop {n} leaves nothing of a {img.shape[1]}x{img.shape[0]} frame; use a smaller crop")
    return img[n:-n, n:-n]


def frame_scores(output: np.ndarray, target: np.ndarray, y_channel: bool = False, crop: int = 0
                 ) -> tuple[float, float]:
    """(PSNR, SSIM) of one uint8 RGB output frame against its sharp frame."""
    a, b = crop_border(output, crop), crop_border(target, crop)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise InputError(f"a {a.shape[1]}x{a.shape[0]} frame (after --crop {crop}) is smaller than SSIM's "
                         f"{SSIM_WINDOW}x{SSIM_WINDOW} window; score larger frames or crop less")
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    return psnr(a, b), ssim(a, b)


# ------------------------------------------------------------------------------------------------- layouts
def _has_frames(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
               for p in folder.iterdir())


def _output_sequences(root: Path) -> list[tuple[str, list[Path]]]:
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; pass the folder of output frames (or of per-sequence folders)")
    if _has_frames(root):
        return [(root.name, list_frames(root))]
    seqs = [(d.name, list_frames(d)) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    seqs = [(name, frames) for name, frames in seqs if frames]
    if not seqs:
        raise InputError(f"{root}: holds no image frames (nor folders of them); pass the folder eval --save or "
                         "deblur wrote")
    return seqs


def _frame_number(path: Path) -> int | None:
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else None


def _target_folder(root: Path, name: str, single: bool) -> Path:
    """The folder of sharp frames for sequence ``name`` under ``root`` (see the module docstring)."""
    if single and _has_frames(root):
        return root
    bases = [root / name] + [root / split / name for split in SPLIT_NAMES]
    for base in bases:
        for sub in (base, base / "sharp", base / "Sharp" / "RGB", base / "Sharp"):
            if sub.is_dir() and _has_frames(sub):
                return sub
    raise InputError(f"{root}: no sharp frames for sequence {name!r} (looked in {name}/, {name}/sharp/, "
                     f"{name}/Sharp/RGB/ and split folders); name the output folder as the target's sequence")


def _pair(outputs: list[Path], targets: list, target_names: list[str], where: str
          ) -> tuple[list[tuple[Path, int]], str]:
    """[(output file, position in targets)] and how they were paired: "name", "number" or "order"."""
    by_name = {n: i for i, n in enumerate(target_names)}
    if all(p.stem in by_name for p in outputs):
        return [(p, by_name[p.stem]) for p in outputs], "name"
    numbers = [_frame_number(Path(n)) for n in target_names]
    by_number = {k: i for i, k in enumerate(numbers) if k is not None}
    if len(by_number) == len(numbers) and all(_frame_number(p) in by_number for p in outputs):
        return [(p, by_number[_frame_number(p)]) for p in outputs], "number"
    if len(outputs) == len(targets):
        return list(zip(outputs, range(len(targets)))), "order"
    missing = next((p for p in outputs if p.stem not in by_name and _frame_number(p) not in by_number), outputs[0])
    raise InputError(f"{missing}: no sharp frame of that name or number in {where} ({len(outputs)} outputs, "
                     f"{len(targets)} sharp frames); name outputs as the sharp frames or give both the same count")


class _FolderTargets:
    def __init__(self, root: Path, single: bool):
        self.root, self.single = root, single

    def frames(self, name: str):
        folder = _target_folder(self.root, name, self.single)
        files = list_frames(folder)
        return folder, files, [p.stem for p in files], read_image


class _H5Targets:
    def __init__(self, path: Path):
        from mmpdata.datasets import open_data

        self.path = path
        self.data = open_data(path)  # the checked reader eval uses; reads name a damaged shard
        self.infos = {s.name: s for s in self.data.infos}

    def frames(self, name: str):
        if name not in self.infos:
            raise InputError(f"{self.path}: has no sequence {name!r} (it holds {', '.join(sorted(self.infos))}); "
                             "name the output folders as the data's sequences")
        n = self.infos[name].frames
        return (f"{self.path}:{name}", list(range(n)), [str(i) for i in range(n)],
                lambda i: self.data.read(name, "sharp", i))

    def close(self) -> None:
        self.data.close()


def score(output: str | Path, target: str | Path, y_channel: bool = False, crop: int = 0, protocol: str = "all",
          progress: bool | None = None) -> dict:
    """PSNR/SSIM of the frames under ``output`` against the sharp frames of ``target``: the `mmp score` command.

    ``protocol="paper"`` leaves out the first and last 2 frames of each target sequence (as eval's paper protocol);
    "all" scores every output frame."""
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; use all or paper")
    if crop < 0:
        raise InputError(f"--crop {crop}: must be 0 or more pixels")
    output, target = Path(output), Path(target)
    out_seqs = _output_sequences(output)
    if not target.exists():
        raise InputError(f"{target}: not found; pass the folder of sharp frames or the mmp-h5 file")
    import h5py

    targets = _H5Targets(target) if target.is_file() and h5py.is_hdf5(target) else None
    if targets is None:
        if not target.is_dir():
            raise InputError(f"{target}: neither a folder of sharp frames nor an mmp-h5 file")
        targets = _FolderTargets(target, single=len(out_seqs) == 1)
    seqs, all_p, all_s = {}, [], []
    bar = tqdm(total=sum(len(f) for _, f in out_seqs), desc="score", unit="frame",
               disable=None if progress is None else not progress)
    try:
        for name, files in out_seqs:
            where, items, names, read = targets.frames(name)
            pairs, how = _pair(files, items, names, str(where))
            wanted = range(PAPER_SKIP, len(items) - PAPER_SKIP) if protocol == "paper" else range(len(items))
            ps, ss = [], []
            for path, pos in pairs:
                bar.update(1)
                if pos not in wanted:
                    continue
                out_img, tgt_img = read_image(path), np.asarray(read(items[pos]))
                if out_img.shape != tgt_img.shape:
                    raise InputError(f"{path}: size {out_img.shape[1]}x{out_img.shape[0]} differs from its sharp "
                                     f"frame's {tgt_img.shape[1]}x{tgt_img.shape[0]} ({where}, {names[pos]}); "
                                     "outputs must be full-size frames")
                p, s = frame_scores(out_img, tgt_img, y_channel, crop)
                ps.append(p)
                ss.append(s)
            log.info("%s: %d frames paired by %s with %s", name, len(pairs), how, where)
            seqs[name] = {"psnr": float(np.mean(ps)) if ps else None, "ssim": float(np.mean(ss)) if ss else None,
                          "frames": len(ps), "paired_by": how}
            all_p += ps
            all_s += ss
    finally:
        bar.close()
        if isinstance(targets, _H5Targets):
            targets.close()
    if not all_p:
        raise InputError(f"{output}: no frame left to score under protocol {protocol}; use --protocol all")
    return {"kind": "score", "output": str(output), "target": str(target), "psnr": float(np.mean(all_p)),
            "ssim": float(np.mean(all_s)), "frames": len(all_p), "sequences": seqs, "protocol": protocol,
            "y_channel": bool(y_channel), "crop": int(crop)}
