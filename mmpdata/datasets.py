"""Torch datasets over mmp-h5 files: MMP-Net training pairs and MMP-RNN training clips.

Every dataset reads through one checked reader (:class:`mmpdata.h5format.MMPDataset`, see :func:`open_data`): the
index and its shards are checked once when a dataset is built (a damaged or mismatched shard is a one-line
FormatError naming it), the HDF5 file itself is opened lazily in whichever process first reads an item (each
DataLoader worker gets its own handle, because h5py handles cannot cross a fork), and every read turns a damaged
chunk or NaN/inf in the stored MMP into a FormatError naming the shard and the window. Augmentation draws from an RNG seeded by (seed, epoch, item), so the samples a run sees do not
depend on the number of workers or processes, and a resumed run sees exactly what it would have seen.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import FormatError, InputError
from .h5format import MMPDataset, SequenceInfo
from .neighbours import neighbour_indices

log = logging.getLogger(__name__)

__all__ = ["SequenceInfo", "Range", "Split", "read_index", "split_sequences", "PriorClips", "VideoClips",
           "open_h5", "open_data"]

VALIDATION_NAMES = ("val", "valid", "validation")


@dataclass(frozen=True)
class Range:
    """Frames [start, stop) of one sequence."""

    sequence: str
    start: int
    stop: int

    @property
    def n(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Split:
    train: list[Range]
    val: list[Range]


def open_data(source: str | Path | MMPDataset) -> MMPDataset:
    """The checked reader of an mmp-h5 *index* (:class:`mmpdata.h5format.MMPDataset`): pass it around instead of
    the path and the file is checked once; a path is opened (checks cached per process while the files are
    unchanged). FormatError naming the file when it is not HDF5, not mmp-h5, damaged or a lone shard."""
    ds = source if isinstance(source, MMPDataset) else MMPDataset(source)
    if ds._single is not None:
        raise FormatError(f"{ds.path}: an mmp-h5 shard, not an index (no 'sequences' group); pass the index file, "
                          "or rebuild it with `mmp index`")
    if not ds.infos:
        raise FormatError(f"{ds.path}: holds no sequences")
    return ds


def open_h5(path: str | Path) -> h5py.File:
    """A raw read-only h5py handle on a *checked* mmp-h5 index (for code that wants plain h5py; prefer
    :func:`open_data`, whose ``read`` names damaged shards)."""
    ds = open_data(path)
    return h5py.File(ds.path, "r")


def read_index(source: str | Path | MMPDataset) -> list[SequenceInfo]:
    """Names, lengths, sizes and splits of the sequences in ``source`` (sorted by name), checked once."""
    return list(open_data(source).infos)


def split_sequences(infos: list[SequenceInfo], val_fraction: float = 0.1, seed: int = 0,
                    min_frames: int = 1) -> Split:
    """Deterministic train/validation split by sequence; sequences marked ``split=test`` are never used.

    Sequences marked val/valid are the validation set when present. Otherwise a seeded draw of about
    ``val_fraction`` of the sequences (at least one) validates. With a single sequence, its last frames validate
    (a time split, logged) so small experiments still get a held-out score.
    """
    usable = [s for s in infos if s.split != "test"]
    if not usable:
        raise InputError("every sequence is in the test split; train on the training split "
                         "(never on the test set)")
    dropped = len(infos) - len(usable)
    if dropped:
        log.info("leaving out %d test-split sequence(s) from training and validation", dropped)
    full = lambda s: Range(s.name, 0, s.frames)  # noqa: E731
    marked = [s for s in usable if s.split in VALIDATION_NAMES]
    if marked:
        rest = [s for s in usable if s.split not in VALIDATION_NAMES]
        if not rest:
            raise InputError("every usable sequence is in the validation split; nothing left to train on")
        return Split([full(s) for s in rest], [full(s) for s in marked])
    if val_fraction <= 0:
        return Split([full(s) for s in usable], [])
    if len(usable) >= 2:
        n_val = min(len(usable) - 1, max(1, int(round(val_fraction * len(usable)))))
        order = np.random.default_rng(seed).permutation(len(usable))
        val_ids = set(order[:n_val].tolist())
        return Split([full(s) for i, s in enumerate(usable) if i not in val_ids],
                     [full(s) for i, s in enumerate(usable) if i in val_ids])
    s = usable[0]
    n_val = max(min_frames, int(round(s.frames * val_fraction)))
    if s.frames - n_val < min_frames:
        log.warning("sequence %s is too short to hold out validation frames; no validation", s.name)
        return Split([full(s)], [])
    log.info("one sequence only: validating on its last %d frames", n_val)
    return Split([Range(s.name, 0, s.frames - n_val)], [Range(s.name, s.frames - n_val, s.frames)])


class _H5Items(Dataset):
    """Shared machinery: lazy per-process HDF5 handle, crop size, per-item RNG."""

    def __init__(self, path: str | Path | MMPDataset, ranges: list[Range], patch: int | None, augment: bool,
                 seed: int):
        self.data = open_data(path)  # checked once; the handle opens lazily in each reading process
        self.path = str(self.data.path)
        infos = {s.name: s for s in self.data.infos}
        for r in ranges:
            if r.sequence not in infos:
                raise InputError(f"{self.path}: no sequence {r.sequence!r}")
        self.infos = infos
        self.ranges = list(ranges)
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        used = [infos[r.sequence] for r in self.ranges]
        if patch is not None and used:
            smallest = min(min(s.height, s.width) for s in used)
            if patch > smallest:
                log.warning("patch %d is larger than the smallest frame side %d; using %d", patch, smallest, smallest)
                patch = smallest
        self.patch = patch

    @property
    def _h5(self):
        """This process's open HDF5 handle, None before the first read (and in a freshly unpickled copy)."""
        return self.data._file if self.data.is_open else None

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (called by the training loop before each epoch)."""
        self.epoch = int(epoch)

    def _read(self, name: str, key: str, t, ys: slice, xs: slice) -> np.ndarray:
        """Stored data through the reader: a damaged chunk or NaN/inf MMP is a FormatError naming the shard."""
        return self.data.read(name, key, t, ys, xs)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def _window(self, info: SequenceInfo, rng: np.random.Generator) -> tuple[slice, slice]:
        if self.patch is None:
            return slice(0, info.height), slice(0, info.width)
        if self.augment:
            y = int(rng.integers(0, info.height - self.patch + 1))
            x = int(rng.integers(0, info.width - self.patch + 1))
        else:
            y, x = (info.height - self.patch) // 2, (info.width - self.patch) // 2
        return slice(y, y + self.patch), slice(x, x + self.patch)


def _images(a: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(a)).float().div_(255.0)
    return t.movedim(-1, -3).contiguous()


class PriorClips(_H5Items):
    """(blurry frame, MMP clipped to [0, 1]) pairs for MMP-Net: random crops and horizontal/vertical flips.

    Item: {"blur": (3, p, p) float in [0, 1], "mmp": (1, p, p) float in [0, 1]}. ``patch=None`` gives full frames.

    Optional augmentations (all off by default; :func:`mmpmodel.train_prior.train_prior` turns them on) that stop a
    small training set from teaching "this photograph has this blur level" instead of "this much blur":

    * ``scale=(lo, hi)``: crop a square ``patch / s`` px wide (s drawn in [lo, hi], s <= 1) and shrink it to
      ``patch`` (area interpolation); motion shrinks with the picture, so the MMP (pixels per frame / K) is
      multiplied by s. Exact in the geometry, and it shows each photograph at several blur levels.
    * ``rotate``: a random multiple of 90 degrees (the magnitude of motion does not depend on its direction).
    * ``photometric``: random channel order, per-channel gain, contrast and brightness on the blurry frame
      (colour tells nothing about motion).

    ``context`` c > 0 (an MMP-Net that sees neighbouring frames): "blur" is the frame and its c nearest
    non-overlapping neighbours on each side within the range (:func:`mmpdata.neighbours.neighbour_indices`), stacked
    along the channels, (3 (2c + 1), p, p); every augmentation applies to all of them alike.
    """

    def __init__(self, path, ranges: list[Range], patch: int | None = 256, augment: bool = True, seed: int = 0,
                 scale: tuple[float, float] | None = None, rotate: bool = False, photometric: bool = False,
                 context: int = 0):
        super().__init__(path, ranges, patch, augment, seed)
        for r in self.ranges:
            if not self.infos[r.sequence].has_mmp:
                raise InputError(f"{path}: sequence {r.sequence!r} has no 'mmp' dataset; MMP-Net needs data "
                                 "written by mmp synthesize (imported benchmarks carry no MMP)")
        if scale is not None and not 0 < scale[0] <= scale[1] <= 1:
            raise InputError(f"scale augmentation {scale}: need 0 < lo <= hi <= 1")
        self.scale = None if scale is None else (float(scale[0]), float(scale[1]))
        self.rotate = bool(rotate)
        self.photometric = bool(photometric)
        self.context = int(context)
        self.items = [(r.sequence, t) for r in self.ranges for t in range(r.start, r.stop)]
        self.neighbours: dict[tuple[str, int], list[int]] = {}
        if self.context:
            for r in self.ranges:
                windows = self.data.read(r.sequence, "window", slice(r.start, r.stop))
                rows = neighbour_indices(r.n, self.context, windows) + r.start
                self.neighbours.update({(r.sequence, r.start + i): row.tolist() for i, row in enumerate(rows)})

    def __len__(self) -> int:
        return len(self.items)

    def _read_blur(self, name: str, t: int, ys: slice, xs: slice) -> np.ndarray:
        """(k, h, w, 3) uint8: frame t, or with ``context`` the frame and its neighbours in time order."""
        if not self.context:
            return self._read(name, "blur", t, ys, xs)[None]
        return np.stack([self._read(name, "blur", j, ys, xs) for j in self.neighbours[(name, t)]])

    def _scaled_window(self, info: SequenceInfo, rng: np.random.Generator) -> tuple[slice, slice, float]:
        """A random square crop ``patch / s`` px wide (bounded by the frame) and the actual factor s."""
        side = min(int(round(self.patch / rng.uniform(*self.scale))), info.height, info.width)
        side = max(side, self.patch)
        y = int(rng.integers(0, info.height - side + 1))
        x = int(rng.integers(0, info.width - side + 1))
        return slice(y, y + side), slice(x, x + side), self.patch / side

    def __getitem__(self, index: int) -> dict:
        name, t = self.items[index]
        info = self.infos[name]
        rng = self._rng(index)
        if self.augment and self.scale is not None and self.patch is not None:
            ys, xs, s = self._scaled_window(info, rng)
            blur_np = self._read_blur(name, t, ys, xs)
            mmp_np = self._read(name, "mmp", t, ys, xs).astype(np.float32)
            if s < 1.0:
                size = (self.patch, self.patch)
                blur_np = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in blur_np])
                mmp_np = cv2.resize(mmp_np, size, interpolation=cv2.INTER_AREA) * s
        else:
            ys, xs = self._window(info, rng)
            blur_np = self._read_blur(name, t, ys, xs)
            mmp_np = self._read(name, "mmp", t, ys, xs).astype(np.float32)
        blur = _images(blur_np)  # (k, 3, h, w)
        mmp = torch.from_numpy(np.ascontiguousarray(mmp_np)).clamp_(0.0, 1.0)[None]
        if self.augment:
            if rng.random() < 0.5:
                blur, mmp = blur.flip(-1), mmp.flip(-1)
            if rng.random() < 0.5:
                blur, mmp = blur.flip(-2), mmp.flip(-2)
            if self.rotate:
                k = int(rng.integers(0, 4))
                blur, mmp = torch.rot90(blur, k, dims=(-2, -1)), torch.rot90(mmp, k, dims=(-2, -1))
            if self.photometric:
                blur = blur[:, torch.from_numpy(rng.permutation(3))]
                gain = torch.from_numpy(rng.uniform(0.8, 1.2, 3).astype(np.float32))[:, None, None]
                mean = blur[self.context].mean()  # the frame itself: its neighbours move with it
                contrast = float(rng.uniform(0.6, 1.4))
                blur = ((blur * gain - mean) * contrast + mean + float(rng.uniform(-0.1, 0.1))).clamp_(0.0, 1.0)
        return {"blur": blur.flatten(0, 1).contiguous(), "mmp": mmp.contiguous()}


class VideoClips(_H5Items):
    """F consecutive blurry frames and their sharp targets (and stored MMP when asked) for MMP-RNN.

    Augmentation applies one crop, flip and 90-degree rotation to the whole clip. Clips start at every frame
    (stride 1) and never cross a range boundary. Item: {"blur": (F, 3, p, p), "sharp": (F, 3, p, p)[, "mmp":
    (F, 1, p, p)]}. ``window_step`` k > 1 takes every k-th stored window into a clip (true video from data whose
    windows overlap; see :func:`mmpmodel.train_deblur.window_step`). ``still_share``: the share of items whose input
    is the sharp clip itself (stored MMP zero), as a camera held still would film it; they teach the network to leave
    sharp frames alone, which per-frame PSNR punishes hardest. ``time_flip``: half the clips played backwards.
    """

    def __init__(self, path, ranges: list[Range], frames: int, patch: int | None = 256, augment: bool = True,
                 seed: int = 0, with_mmp: bool = False, window_step: int = 1, still_share: float = 0.0,
                 time_flip: bool = False):
        super().__init__(path, ranges, patch, augment, seed)
        self.time_flip = bool(time_flip)
        if not 0.0 <= still_share <= 1.0:
            raise ValueError(f"still_share must lie in [0, 1], got {still_share}")
        self.still_share = float(still_share)
        self.frames = int(frames)
        self.with_mmp = with_mmp
        self.window_step = int(window_step)
        span = (self.frames - 1) * self.window_step + 1  # stored windows one clip covers
        if with_mmp:
            for r in self.ranges:
                if not self.infos[r.sequence].has_mmp:
                    raise InputError(f"{path}: sequence {r.sequence!r} has no stored MMP "
                                     "(needed by --prior-source gt)")
        short = [r.sequence for r in self.ranges if r.n < span]
        if short:
            log.warning("%d sequence range(s) shorter than %d frames left out (%s)", len(short), span,
                        ", ".join(short[:3]))
        self.items = [(r.sequence, s) for r in self.ranges for s in range(r.start, r.stop - span + 1)]
        if self.ranges and not self.items:
            raise InputError(f"{path}: no sequence range holds {self.frames} frames"
                             + (f" of every {self.window_step}-th window" if self.window_step > 1 else "")
                             + "; use fewer --frames")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        name, s = self.items[index]
        info = self.infos[name]
        rng = self._rng(index)
        ys, xs = self._window(info, rng)
        clip = slice(s, s + (self.frames - 1) * self.window_step + 1, self.window_step)
        out = {"blur": _images(self._read(name, "blur", clip, ys, xs)),
               "sharp": _images(self._read(name, "sharp", clip, ys, xs))}
        if self.with_mmp:
            m = self._read(name, "mmp", clip, ys, xs).astype(np.float32)
            out["mmp"] = torch.from_numpy(m).clamp_(0.0, 1.0)[:, None]
        if self.augment:
            hflip, vflip, k = rng.random() < 0.5, rng.random() < 0.5, int(rng.integers(0, 4))
            for key, v in out.items():
                if hflip:
                    v = v.flip(-1)
                if vflip:
                    v = v.flip(-2)
                if k:
                    v = torch.rot90(v, k, dims=(-2, -1))
                out[key] = v.contiguous()
        if self.augment and self.time_flip and rng.random() < 0.5:  # drawn after the others: they stay as they were
            out = {key: v.flip(0).contiguous() for key, v in out.items()}
        if self.still_share > 0 and rng.random() < self.still_share:  # drawn last: crops and flips stay as they were
            out["blur"] = out["sharp"].clone()
            if self.with_mmp:
                out["mmp"] = torch.zeros_like(out["mmp"])
        return out
