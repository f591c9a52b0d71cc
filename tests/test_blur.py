"""Blur synthesis against an independent numpy formula of eq. 1."""
import numpy as np

from mmpdata.blur import blur_window
from mmpdata.crf import get_crf


def _frames(n=7, shape=(8, 9, 3), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def test_gamma22_equals_linear_space_mean():
    frames = _frames()
    expect = np.rint(np.mean([(f / 255.0) ** 2.2 for f in frames], axis=0) ** (1 / 2.2) * 255)
    got = blur_window(frames, get_crf("gamma2.2"))
    assert got.dtype == np.uint8
    assert np.abs(got.astype(int) - expect).max() <= 1
    assert np.mean(got == expect) > 0.99


def test_linear_crf_is_plain_mean():
    frames = _frames(9)
    expect = np.rint(np.mean(np.stack(frames).astype(np.float64), axis=0))
    assert np.array_equal(blur_window(frames, get_crf("linear")), expect.astype(np.uint8))


def test_static_scene_stays_unchanged():
    f = _frames(1)[0]
    for spec in ("gamma2.2", "srgb", "linear"):
        assert np.array_equal(blur_window([f] * 7, get_crf(spec)), f)


def test_gamma_mean_is_brighter_than_plain_mean_for_edges():
    black, white = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)
    # half black, half white: linear mean 0.5 -> 0.5 ** (1/2.2) * 255 = 186
    assert blur_window([black, white], get_crf("gamma2.2"))[0, 0, 0] == 186
    assert blur_window([black, white], get_crf("linear"))[0, 0, 0] == 128
