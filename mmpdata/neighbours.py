"""Which stored frames an MMP-Net with temporal context (``MMPNet(context=c)``) sees beside frame t.

Why: the displacement between neighbouring blurry frames shows how fast the camera moved, which one blurry frame
cannot (a smooth picture and a blurred one look alike). The neighbour must be the next *exposure*: in data
synthesized with a stride shorter than the window, consecutive stored windows overlap and sit only a few raw frames
apart, so the neighbour of window t is the nearest window that starts after t ends (ends before t starts). At the
ends of a sequence the missing side mirrors the other one (the same distance in time the other way), so the
network still sees the motion; a sequence of one frame sees itself.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

__all__ = ["neighbour_indices", "read_stacks", "stream_neighbours"]


def _steps(n: int, windows: np.ndarray | None) -> tuple[list[int | None], list[int | None]]:
    """For each t: the nearest non-overlapping frame before and after it (None at the ends)."""
    if windows is None:
        return [t - 1 if t > 0 else None for t in range(n)], [t + 1 if t < n - 1 else None for t in range(n)]
    w = np.asarray(windows, dtype=np.int64).reshape(n, 2)
    prev, nxt = [], []
    for t in range(n):
        before = np.nonzero(w[:t, 1] < w[t, 0])[0]
        after = np.nonzero(w[t + 1:, 0] > w[t, 1])[0]
        prev.append(int(before[-1]) if before.size else None)
        nxt.append(int(t + 1 + after[0]) if after.size else None)
    return prev, nxt


def _row(t: int, context: int, prev, nxt) -> list[int]:
    """[t-c, ..., t, ..., t+c] given the one-step neighbour functions (None beyond the ends), mirrored as documented
    in :func:`neighbour_indices`."""
    sides = []
    for step in (prev, nxt):
        chain, j = [], t
        for _ in range(context):
            j = step(j) if j is not None else None
            chain.append(j)
        sides.append(chain)
    before, after = sides
    for d in range(context):
        mirror = (after[d], before[d])
        for s, chain in enumerate((before, after)):
            if chain[d] is None:
                own = [j for j in chain[:d] if j is not None]
                chain[d] = mirror[s] if mirror[s] is not None else (own[-1] if own else t)
    return before[::-1] + [t] + after


def neighbour_indices(n: int, context: int, windows: np.ndarray | None = None) -> np.ndarray:
    """(n, 2 context + 1) stored-frame indices: row t is [t-c, ..., t, ..., t+c] in exposures.

    ``windows``: the sequence's (n, 2) table of first and last raw frame of each window (inclusive), as mmp-h5 stores
    it; None for plain video, where every frame is its own exposure. A neighbour beyond the sequence is the one at
    the same distance on the other side; when both are missing, the farthest one there is on its own side (or t)."""
    if n < 1 or context < 0:
        raise ValueError(f"need n >= 1 and context >= 0, got n={n}, context={context}")
    prev, nxt = _steps(n, windows)
    rows = [_row(t, context, prev.__getitem__, nxt.__getitem__) for t in range(n)]
    return np.asarray(rows, dtype=np.int64).reshape(n, 2 * context + 1)


def stream_neighbours(frames: Iterable, context: int) -> Iterator[tuple[int, object, list]]:
    """(t, frame, [frames t-c .. t+c]) for every frame of a stream of plain video, in order, as
    :func:`neighbour_indices` (no window table) picks them; holds at most 2c + 1 frames, so a long video is never
    read into memory. Each frame is yielded once frame t + c has arrived (or the stream ended)."""
    held: dict[int, object] = {}
    count = 0

    def emit(t: int, n: int):
        row = _row(t, context, lambda j: j - 1 if j > 0 else None, lambda j: j + 1 if j < n - 1 else None)
        return t, held[t], [held[j] for j in row]

    for t, frame in enumerate(frames):
        held[t] = frame
        count = t + 1
        ready = t - context
        if ready >= 0:
            # row `ready` is the same for every n >= ready + context + 1 (its later neighbours all exist)
            yield emit(ready, count)
            held.pop(ready - context, None)
    for t in range(max(count - context, 0), count):
        yield emit(t, count)


def read_stacks(rows: np.ndarray, read) -> Iterator[list]:
    """For each row of :func:`neighbour_indices`, ``[read(j) for j in row]``, calling ``read`` once per stored frame
    while the following rows still need it (rows move forward in time), not once per row it appears in."""
    held: dict[int, object] = {}
    for row in rows:
        row = [int(j) for j in row]
        low = min(row)
        for j in [j for j in held if j < low]:
            del held[j]
        for j in row:
            if j not in held:
                held[j] = read(j)
        yield [held[j] for j in row]
