"""Importing benchmark folders (GOPRO_Large, BSD) into mmp-h5, so training and evaluation read one format.

Imported data holds ``blur`` and ``sharp`` per sequence and no ``mmp``/``window`` (the benchmarks ship no motion
magnitudes). Each sequence becomes a shard written by :class:`mmpdata.h5format.ShardWriter` (temporary name, renamed
when complete, so a rerun skips finished sequences); the index links them. The benchmark's split folder
(train/valid/test) is stored as the shard attribute ``split``, which the training split honours (test data is never
used for validation). Where sequence names repeat across splits (BSD numbers each split from 000), every name is
prefixed with its split (``test_000``).

Blurry and sharp frames pair by frame index (the last number in the file name), never by position in a listing:
a frame present on one side only is refused by name, as is a frame whose size differs from the sequence's first.

Layouts:
  gopro: SRC[/train|/test]/<sequence>/{blur,blur_gamma,sharp}/*.png  (``--blur`` picks blur_gamma or blur)
  bsd:   SRC[/train|/valid|/test]/<sequence>/{Blur,Sharp}[/RGB]/*.png
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from . import __version__
from .errors import InputError
from .h5format import FORMAT, FORMAT_VERSION, ShardWriter, remove_stale_temps, shard_path, shards_dir, write_index
from .rawio import SPLIT_NAMES, list_frames, read_image

log = logging.getLogger(__name__)

__all__ = ["LAYOUTS", "BenchmarkSequence", "find_benchmark_sequences", "import_benchmark", "pair_frames"]

LAYOUTS = ("gopro", "bsd")
GOPRO_BLUR = ("blur_gamma", "blur")


@dataclass(frozen=True)
class BenchmarkSequence:
    name: str
    split: str | None
    blur: list[Path]
    sharp: list[Path]


def _child(folder: Path, name: str) -> Path | None:
    """Sub-folder ``name`` of ``folder`` (exact case: GOPRO's blur/sharp and BSD's Blur/Sharp tell the layouts
    apart)."""
    c = folder / name
    return c if c.is_dir() else None


def _frames_dir(seq: Path, layout: str, kind: str, blur: str) -> Path | None:
    if layout == "gopro":
        return _child(seq, blur if kind == "blur" else "sharp")
    d = _child(seq, "Blur" if kind == "blur" else "Sharp")
    if d is None:
        return None
    rgb = _child(d, "RGB")
    return rgb if rgb is not None else d


def _is_sequence(folder: Path, layout: str, blur: str) -> bool:
    return _frames_dir(folder, layout, "sharp", blur) is not None and _frames_dir(folder, layout, "blur", blur) is not None


def find_benchmark_sequences(src: str | Path, layout: str, blur: str = "blur_gamma") -> list[BenchmarkSequence]:
    """The sequences under ``src`` (the benchmark root, one split folder, or one sequence folder), sorted by name."""
    src = Path(src)
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if layout == "gopro" and blur not in GOPRO_BLUR:
        raise InputError(f"unknown --blur {blur!r}; use blur_gamma or blur")
    if not src.is_dir():
        raise InputError(f"{src}: no such folder; pass the {layout} benchmark folder")
    split_of = lambda p: p.name.lower() if p.name.lower() in SPLIT_NAMES else None  # noqa: E731
    found: list[tuple[Path, str | None]] = []
    if _is_sequence(src, layout, blur):
        found.append((src, split_of(src.parent)))
    else:
        for child in sorted(p for p in src.iterdir() if p.is_dir()):
            if _is_sequence(child, layout, blur):
                found.append((child, split_of(src)))
            elif child.name.lower() in SPLIT_NAMES:
                found += [(g, child.name.lower()) for g in sorted(p for p in child.iterdir() if p.is_dir())
                          if _is_sequence(g, layout, blur)]
    if not found:
        want = "<seq>/blur_gamma|blur + <seq>/sharp" if layout == "gopro" else "<seq>/Blur/RGB + <seq>/Sharp/RGB"
        raise InputError(f"{src}: no {layout} sequences found (expected {want}, optionally under train/ test/)")
    names = [p.name for p, _ in found]
    prefix = len(set(names)) < len(names)
    if prefix:
        log.info("sequence names repeat across splits: prefixing each with its split")
    out = []
    for folder, split in found:
        name = f"{split}_{folder.name}" if prefix and split else folder.name
        blur_dir, sharp_dir = _frames_dir(folder, layout, "blur", blur), _frames_dir(folder, layout, "sharp", blur)
        blur_frames, sharp_frames = pair_frames(list_frames(blur_dir), list_frames(sharp_dir), blur_dir, sharp_dir)
        out.append(BenchmarkSequence(name, split, blur_frames, sharp_frames))
    names = [s.name for s in out]
    if len(set(names)) < len(names):
        raise InputError(f"{src}: sequence names repeat within a split; rename the folders")
    return sorted(out, key=lambda s: s.name)


def _frame_index(path: Path) -> int | str:
    """A frame's identity within its folder: the last number in its name (000012.png, frame_12.png -> 12), or the
    whole stem when it holds no number."""
    nums = re.findall(r"\d+", path.stem)
    return int(nums[-1]) if nums else path.stem


def _by_index(frames: list[Path], folder: Path) -> dict:
    found: dict = {}
    for p in frames:
        key = _frame_index(p)
        if key in found:
            raise InputError(f"{p}: same frame index as {found[key].name} in {folder}; keep one of them")
        found[key] = p
    return found


def pair_frames(blur: list[Path], sharp: list[Path], blur_dir: Path, sharp_dir: Path) -> tuple[list[Path], list[Path]]:
    """Blurry and sharp frames paired by frame index (never by list position), in index order. A frame present on
    one side only raises InputError naming it and the folder its partner is missing from."""
    if not blur:
        raise InputError(f"{blur_dir}: no blurry frames")
    b, s = _by_index(blur, blur_dir), _by_index(sharp, sharp_dir)
    for key in sorted(b, key=str):
        if key not in s:
            raise InputError(f"{b[key]}: no sharp frame with the same index in {sharp_dir}; every blurry frame "
                             "needs its sharp target (add it or remove this frame)")
    for key in sorted(s, key=str):
        if key not in b:
            raise InputError(f"{s[key]}: no blurry frame with the same index in {blur_dir}; add it or remove "
                             "this frame")
    keys = [_frame_index(p) for p in blur]  # list_frames order: numeric
    return [b[k] for k in keys], [s[k] for k in keys]


def _shard_done(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False)) and "blur" in f and "sharp" in f
    except OSError:
        return False


def import_benchmark(layout: str, src: str | Path, out: str | Path, blur: str = "blur_gamma",
                     progress: bool | None = None) -> list[str]:
    """Convert a GOPRO_Large or BSD folder into the mmp-h5 file ``out`` (+ ``out.shards/``); returns the names."""
    out = Path(out)
    sequences = find_benchmark_sequences(src, layout, blur)
    remove_stale_temps(shards_dir(out), [s.name for s in sequences])
    root = {"format": FORMAT, "format_version": np.int64(FORMAT_VERSION), "mmpdata_version": __version__,
            "source": layout, "blur_source": blur if layout == "gopro" else "Blur"}
    for seq in tqdm(sequences, desc="import", unit="seq", disable=None if progress is None else not progress):
        final = shard_path(out, seq.name)
        if final.exists() and _shard_done(final):
            log.info("%s already imported; skipped", final)
            continue
        first = read_image(seq.blur[0])
        attrs = {**root, "sequence": seq.name, "split": seq.split or ""}
        with ShardWriter(final, len(seq.blur), first.shape[:2], attrs, with_mmp=False) as writer:
            for t, (b, s) in enumerate(zip(seq.blur, seq.sharp)):
                bi = first if t == 0 else read_image(b)
                si = read_image(s)
                for path, img in ((b, bi), (s, si)):
                    if img.shape != first.shape:
                        raise InputError(f"{path}: size {img.shape[1]}x{img.shape[0]} differs from the sequence's "
                                         f"first frame {seq.blur[0].name} ({first.shape[1]}x{first.shape[0]}); "
                                         "resize or remove it")
                writer.write(t, bi, si)
    names = [s.name for s in sequences]
    write_index(out, names, root)
    return names
