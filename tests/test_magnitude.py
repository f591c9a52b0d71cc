"""Eq. 2-3 against hand-computed values, and the once-per-pair streaming against per-window recomputation."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from mmpdata.errors import InputError
from mmpdata.flow import FlowEstimator, make_estimator
from mmpdata.magnitude import PairMagnitudes, naive_window_mmp, pair_magnitudes, window_mmp


def test_window_mmp_two_frames_uses_each_single_flow():
    # N = 2: M_a = fwd[0], M_b = bwd[0]; MMP = (fwd + bwd) / (K * 2)
    fwd = [np.array([[3.0, 0.0], [1.5, 6.0]], np.float32)]
    bwd = [np.array([[1.0, 2.0], [1.5, 0.0]], np.float32)]
    out = window_mmp(fwd, bwd, k=2.0)
    np.testing.assert_allclose(out, [[1.0, 0.5], [0.75, 1.5]], rtol=1e-6)
    assert out.dtype == np.float32 and out.shape == (2, 2)


def test_window_mmp_four_frames_by_hand():
    # frames a..a+3; pair j: fwd[j] = |a+j -> a+j+1|, bwd[j] = |a+j+1 -> a+j|
    fwd = [np.full((1, 3), v, np.float32) for v in (1.0, 4.0, 10.0)]
    bwd = [np.full((1, 3), v, np.float32) for v in (2.0, 6.0, 7.0)]
    # M_a = 1; M_a+1 = (bwd[0] + fwd[1]) / 2 = 3; M_a+2 = (bwd[1] + fwd[2]) / 2 = 8; M_b = bwd[2] = 7
    # sum = 19; MMP = 19 / (15 * 4)
    np.testing.assert_allclose(window_mmp(fwd, bwd, 15.0), np.full((1, 3), 19 / 60), rtol=1e-6)


def test_window_mmp_averages_lengths_per_pixel():
    fwd = [np.array([[0.0, 9.0]]), np.array([[3.0, 1.0]])]
    bwd = [np.array([[5.0, 1.0]]), np.array([[2.0, 4.0]])]
    # pixel 0: 0 + (5 + 3)/2 + 2 = 6 -> 6/(3*3); pixel 1: 9 + (1 + 1)/2 + 4 = 14 -> 14/9
    np.testing.assert_allclose(window_mmp(fwd, bwd, 3.0), [[6 / 9, 14 / 9]], rtol=1e-6)


def test_window_mmp_rejects_bad_input():
    with pytest.raises(InputError, match="at least 2 frames"):
        window_mmp([], [], 15)
    with pytest.raises(ValueError):
        window_mmp([np.zeros((2, 2))], [], 15)
    with pytest.raises(InputError, match="K"):
        window_mmp([np.zeros((2, 2))], [np.zeros((2, 2))], 0)


class TaggedFlow(FlowEstimator):
    """Flow determined by frame content; records every (first tag, second tag) pair it is asked for.

    dx = (second - first) of channel 0 (antisymmetric), dy = 0.05 * first channel 1 (differs per direction), so a
    swapped or shifted pair gives different magnitudes.
    """

    name, weights, iterations, device, batch = "tagged", "none", 0, "cpu", 4

    def __init__(self):
        self.calls: list[list[tuple[int, int]]] = []

    def flow(self, first, second):
        self.calls.append([(int(a[0, 0, 2]), int(b[0, 0, 2])) for a, b in zip(first, second)])
        out = np.empty((len(first), *first[0].shape[:2], 2), np.float32)
        for n, (a, b) in enumerate(zip(first, second)):
            out[n, ..., 0] = b[..., 0].astype(np.float32) - a[..., 0]
            out[n, ..., 1] = 0.05 * a[..., 1]
        return out


def tagged_frames(count, size=(12, 9), seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (count, size[1], size[0], 3), dtype=np.uint8)
    frames[:, 0, 0, 2] = np.arange(count)  # frame index tag
    return list(frames)


def test_pair_magnitudes_order_and_values():
    frames = tagged_frames(4)
    fwd, bwd = pair_magnitudes(TaggedFlow(), frames)
    assert fwd.shape == bwd.shape == (3, 9, 12) and fwd.dtype == np.float32
    for i in range(3):
        a, b = frames[i].astype(np.float32), frames[i + 1].astype(np.float32)
        np.testing.assert_allclose(fwd[i], np.hypot(b[..., 0] - a[..., 0], 0.05 * a[..., 1]), rtol=1e-6)
        np.testing.assert_allclose(bwd[i], np.hypot(a[..., 0] - b[..., 0], 0.05 * b[..., 1]), rtol=1e-6)


def _windows(num_frames, rng, n_range, stride):
    out, a = [], 0
    while True:
        n = int(rng.integers(n_range[0], n_range[1] + 1))
        if a + n > num_frames:
            return out
        out.append((a, a + n - 1))
        a += stride if stride else n


@pytest.mark.parametrize("n_range,stride,per_call", [((5, 5), 1, 2), ((3, 6), 2, 3), ((4, 4), None, 1),
                                                     ((3, 7), 1, 8)])
def test_pair_magnitudes_stream_equals_naive_and_computes_each_pair_once(n_range, stride, per_call):
    num = 30
    frames = tagged_frames(num, seed=1)
    reads = []

    def read(i):
        reads.append(i)
        return frames[i]

    est = TaggedFlow()
    stream = PairMagnitudes(read, num, est, pairs_per_call=per_call)
    windows = _windows(num, np.random.default_rng(3), n_range, stride)
    naive_est = TaggedFlow()
    for a, b in windows:
        got = stream.window_mmp(a, b, 15.0)
        want = naive_window_mmp(naive_est, frames[a:b + 1], 15.0)
        np.testing.assert_array_equal(got, want)
        assert stream.cached_pairs <= (b - a) + per_call

    needed = sorted({j for a, b in windows for j in range(a, b)})
    asked = [p for call in est.calls for p in call]
    assert sorted(asked) == sorted([(j, j + 1) for j in needed] + [(j + 1, j) for j in needed])  # each once
    assert stream.pairs_computed == len(needed) and stream.flow_evaluations == 2 * len(needed)
    for call in est.calls:  # forward and backward of the same pairs in one call
        k = len(call) // 2
        assert len(call) <= 2 * per_call and call[k:] == [(b, a) for a, b in call[:k]]
    assert sorted(reads) == sorted(set(reads))  # every frame decoded at most once
    naive_flows = sum(len(c) for c in naive_est.calls)
    assert naive_flows == sum(2 * (b - a) for a, b in windows)
    max_n = max(b - a + 1 for a, b in windows)
    assert stream.max_cached_pairs <= max_n - 1 + per_call


def test_stride_one_computes_n_times_fewer_flows_than_naive():
    num, n = 40, 9
    frames = tagged_frames(num)
    stream = PairMagnitudes(frames.__getitem__, num, TaggedFlow(), pairs_per_call=2)
    for a in range(num - n + 1):
        stream.window_mmp(a, a + n - 1, 15.0)
    assert stream.flow_evaluations == 2 * (num - 1)
    naive = 2 * (n - 1) * (num - n + 1)
    assert naive / stream.flow_evaluations > 5


def test_windows_out_of_order_are_refused():
    frames = tagged_frames(10)
    stream = PairMagnitudes(frames.__getitem__, 10, TaggedFlow())
    stream.window_mmp(3, 6, 15.0)
    with pytest.raises(ValueError, match="increasing order"):
        stream.window_mmp(2, 5, 15.0)
    with pytest.raises(ValueError, match="inside"):
        stream.window_mmp(5, 10, 15.0)


def test_dis_mmp_of_constant_translation_matches_analytic():
    """Camera panning at a constant (1.2, -0.7) px per frame: every M_i = |v|, so MMP = |v| / K exactly."""
    photo = data.astronaut()
    v = np.array([1.2, -0.7])
    frames = [cv2.warpAffine(photo, np.float32([[1, 0, v[0] * i - 40], [0, 1, v[1] * i - 60]]), (128, 96),
                             flags=cv2.INTER_CUBIC) for i in range(7)]
    est = make_estimator("dis")
    stream = PairMagnitudes(frames.__getitem__, 7, est)
    mmp = stream.window_mmp(0, 6, 15.0)
    inner = mmp[16:-16, 16:-16]
    truth = np.hypot(*v) / 15.0
    assert abs(inner.mean() - truth) < 0.006 * 0.5
    assert np.abs(inner - truth).mean() < 0.006
    np.testing.assert_allclose(mmp, naive_window_mmp(est, frames, 15.0), atol=1e-6)
