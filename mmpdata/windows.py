"""Window planning: which raw frames are averaged into each blurry frame.

A window is a run of N consecutive raw frames [first, last]. N is fixed (``--frames 9``) or drawn per window from
a range (``--frames 7-13``) by an RNG seeded from the run seed *and the sequence name*, so the plan of a sequence
never depends on which worker or part processes it. Windows start every ``stride`` frames; the default stride is
the window's own N, which gives consecutive, non-overlapping windows: a blurry video.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from mmpdata.errors import InputError

MIN_FRAMES = 2  # a window needs at least one pair of frames to have a motion magnitude


@dataclass(frozen=True)
class Window:
    """Raw frames ``first..last`` (inclusive) averaged into one blurry frame."""

    first: int
    last: int

    @property
    def n(self) -> int:
        return self.last - self.first + 1

    @property
    def centre(self) -> int:
        """The sharp target: the middle frame (the earlier of the two middle ones for even N)."""
        return self.first + (self.n - 1) // 2


def parse_frames(spec: str | int) -> tuple[int, int]:
    """``"9"`` → (9, 9); ``"7-13"`` → (7, 13)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(spec))
    if not m:
        raise InputError(f"--frames {spec!r}: expected a window length like 9 or a range like 7-13")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if lo < MIN_FRAMES or hi < lo:
        raise InputError(f"--frames {spec!r}: lengths must be >= {MIN_FRAMES} and the range low-high increasing (e.g. 7-13)")
    return lo, hi


def sequence_rng(seed: int, sequence: str) -> np.random.Generator:
    """An RNG that depends only on the run seed and the sequence name (stable across processes and Python runs)."""
    digest = hashlib.sha256(f"{int(seed)}:{sequence}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def plan_windows(num_frames: int, frames: tuple[int, int], stride: int | None, seed: int, sequence: str) -> list[Window]:
    """All windows of a sequence of ``num_frames`` raw frames, in time order; those running past the end are dropped."""
    lo, hi = frames
    if stride is not None and stride < 1:
        raise InputError(f"--stride {stride}: must be a positive number of frames")
    rng = sequence_rng(seed, sequence)
    windows: list[Window] = []
    start = 0
    while True:
        n = int(rng.integers(lo, hi + 1))
        if start + n > num_frames:
            break
        windows.append(Window(start, start + n - 1))
        start += stride if stride is not None else n
    return windows
