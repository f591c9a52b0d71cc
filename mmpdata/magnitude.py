"""Motion magnitude (paper eq. 2-3), with each adjacent pair's flow computed once per sequence.

For a window of N sharp frames a..b, frame i moves by M_i: the end frames use their single flow
(M_a = |F_a->a+1|, M_b = |F_b->b-1|) and interior frames the mean of the lengths of both flows,
M_i = (|F_i->i-1| + |F_i->i+1|) / 2 (lengths are averaged, never vectors). The window's map is
MMP = sum_i M_i / (K N), stored unclipped.

Overlapping windows (stride 1 for dense prior data) share almost all their pairs. The published recipe
recomputed every flow per window, about N times too much work; ``PairMagnitudes`` instead computes each
adjacent pair's forward and backward flow exactly once, keeps only their float32 lengths, and forgets pairs
that no later window can use, so memory is bounded by the window length, not the sequence length.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

from mmpdata.errors import InputError
from mmpdata.flow import FlowEstimator

logger = logging.getLogger(__name__)


def window_mmp(fwd: Sequence[np.ndarray], bwd: Sequence[np.ndarray], k: float) -> np.ndarray:
    """Eq. 2-3 for one window of N = len(fwd) + 1 frames.

    ``fwd[j]`` = |flow (a+j) -> (a+j+1)| and ``bwd[j]`` = |flow (a+j+1) -> (a+j)|, (H, W) each.
    """
    if len(fwd) != len(bwd):
        raise ValueError(f"window_mmp needs as many forward as backward magnitudes, got {len(fwd)} and {len(bwd)}")
    if len(fwd) == 0:
        raise InputError("a motion-magnitude window needs at least 2 frames (one flow pair); use --frames >= 2")
    if k <= 0:
        raise InputError(f"K must be positive, got {k}; use --k 15 as in the paper")
    n = len(fwd) + 1
    total = np.asarray(fwd[0], np.float64) + np.asarray(bwd[-1], np.float64)  # end frames: their single flow
    for i in range(1, n - 1):  # interior frame a+i: mean of its backward and forward flow lengths
        total += (np.asarray(bwd[i - 1], np.float64) + np.asarray(fwd[i], np.float64)) / 2
    return (total / (k * n)).astype(np.float32)


def pair_magnitudes(estimator: FlowEstimator, frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Lengths of every adjacent pair's flows: fwd[i] = |flow i->i+1|, bwd[i] = |flow i+1->i|, float32 (L-1, H, W)."""
    frames = list(frames)
    if len(frames) < 2:
        raise InputError("motion magnitude needs at least 2 frames")
    m = estimator.magnitudes(frames[:-1] + frames[1:], frames[1:] + frames[:-1])
    return m[: len(frames) - 1], m[len(frames) - 1:]


def naive_window_mmp(estimator: FlowEstimator, frames_of_window: Sequence[np.ndarray], k: float) -> np.ndarray:
    """The published recipe: recompute all 2(N-1) flows of this window alone (benchmark baseline, test oracle)."""
    fwd, bwd = pair_magnitudes(estimator, frames_of_window)
    return window_mmp(list(fwd), list(bwd), k)


class PairMagnitudes:
    """Streaming per-pair flow lengths of one sequence; hands out windows' MMP in increasing order of first frame.

    ``read(i)`` returns frame i (uint8 RGB); pairs are computed on demand, ``pairs_per_call`` at a time, forward and
    backward flows of those pairs in ONE estimator call. Pairs before the requested window's first frame are
    evicted, and so are frames no pending pair needs.

    Counters for benchmarks: ``pairs_computed`` (adjacent pairs, each = 2 flow fields), ``flow_evaluations``
    (flow fields), ``flow_calls`` (estimator calls), ``frames_read``, ``max_cached_pairs``.
    """

    def __init__(self, read: Callable[[int], np.ndarray], num_frames: int, estimator: FlowEstimator,
                 pairs_per_call: int | None = None):
        self.read = read
        self.num_frames = int(num_frames)
        self.estimator = estimator
        self.pairs_per_call = max(1, int(pairs_per_call or max(1, getattr(estimator, "batch", 2) // 2)))
        self._fwd: dict[int, np.ndarray] = {}
        self._bwd: dict[int, np.ndarray] = {}
        self._frames: dict[int, np.ndarray] = {}
        self._first = 0  # no window may start before this frame any more
        self.pairs_computed = 0
        self.flow_calls = 0
        self.frames_read = 0
        self.max_cached_pairs = 0

    @property
    def flow_evaluations(self) -> int:
        return 2 * self.pairs_computed

    @property
    def cached_pairs(self) -> int:
        return len(self._fwd)

    def _frame(self, i: int) -> np.ndarray:
        if i not in self._frames:
            self._frames[i] = self.read(i)
            self.frames_read += 1
        return self._frames[i]

    def _compute(self, pairs: list[int]) -> None:
        a = [self._frame(j) for j in pairs]
        b = [self._frame(j + 1) for j in pairs]
        m = self.estimator.magnitudes(a + b, b + a)
        self.flow_calls += 1
        self.pairs_computed += len(pairs)
        for n, j in enumerate(pairs):
            self._fwd[j] = m[n]
            self._bwd[j] = m[len(pairs) + n]
        self.max_cached_pairs = max(self.max_cached_pairs, len(self._fwd))
        for i in [i for i in self._frames if i < pairs[-1] + 1]:  # keep only the last frame: the next pair starts there
            del self._frames[i]

    def magnitudes(self, first: int, last: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """fwd/bwd lengths of the N-1 pairs of window [first, last] (inclusive raw-frame indices)."""
        if not 0 <= first < last < self.num_frames:
            raise ValueError(f"window [{first}, {last}] is not inside a sequence of {self.num_frames} frames")
        if first < self._first:
            raise ValueError(f"windows must come in increasing order of first frame: {first} after {self._first}")
        self._first = first
        for j in [j for j in self._fwd if j < first]:
            del self._fwd[j], self._bwd[j]
        for i in [i for i in self._frames if i < first]:
            del self._frames[i]
        missing = [j for j in range(first, last) if j not in self._fwd]
        for s in range(0, len(missing), self.pairs_per_call):
            self._compute(missing[s:s + self.pairs_per_call])
        return [self._fwd[j] for j in range(first, last)], [self._bwd[j] for j in range(first, last)]

    def window_mmp(self, first: int, last: int, k: float) -> np.ndarray:
        """MMP (eq. 2-3) of window [first, last] from the shared pair magnitudes."""
        fwd, bwd = self.magnitudes(first, last)
        return window_mmp(fwd, bwd, k)
