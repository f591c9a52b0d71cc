"""Camera response functions: round trips and agreement with the closed-form curves."""
import numpy as np
import pytest

from mmpdata.crf import get_crf
from mmpdata.errors import InputError

LEVELS = np.arange(256, dtype=np.uint8)


@pytest.mark.parametrize("spec", ["gamma2.2", "srgb", "linear", "gamma1.8"])
def test_round_trip_every_8bit_level(spec):
    crf = get_crf(spec)
    back = np.rint(crf.from_linear(crf.to_linear(LEVELS)) * 255)
    assert np.array_equal(back, LEVELS)


def test_gamma_matches_power_law():
    crf = get_crf("gamma2.2")
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(crf.to_linear(x), x ** 2.2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(crf.from_linear(x), x ** (1 / 2.2), rtol=1e-5, atol=1e-7)


def test_srgb_known_values():
    crf = get_crf("srgb")
    # sRGB: 0.5 linear is about 0.7354 encoded; encoded 0.5 is about 0.2140 linear.
    assert crf.from_linear(np.float32(0.5)) == pytest.approx(0.735357, abs=1e-5)
    assert crf.to_linear(np.float32(0.5)) == pytest.approx(0.214041, abs=1e-5)
    assert crf.to_linear(np.float32(0.02)) == pytest.approx(0.02 / 12.92, rel=1e-5)


def test_uint8_lookup_equals_float_curve():
    crf = get_crf("srgb")
    np.testing.assert_allclose(crf.to_linear(LEVELS), crf.to_linear(LEVELS.astype(np.float32) / 255), atol=1e-7)


def test_table_single_curve_round_trip_and_meaning(tmp_path):
    table = (np.arange(256) / 255.0) ** 2.2 * 7.0  # any positive scale; normalised on load
    np.save(tmp_path / "crf.npy", table)
    crf = get_crf(str(tmp_path / "crf.npy"))
    np.testing.assert_allclose(crf.to_linear(LEVELS), (LEVELS / 255.0) ** 2.2, atol=1e-6)
    back = np.rint(crf.from_linear(crf.to_linear(LEVELS)) * 255)
    assert np.array_equal(back, LEVELS)


def test_table_three_channels_apply_per_channel(tmp_path):
    ramp = np.arange(256) / 255.0
    np.save(tmp_path / "crf3.npy", np.stack([ramp, ramp ** 2, ramp ** 3]))
    crf = get_crf(str(tmp_path / "crf3.npy"))
    img = np.full((2, 2, 3), 128, np.uint8)
    lin = crf.to_linear(img)
    np.testing.assert_allclose(lin[0, 0], [128 / 255, (128 / 255) ** 2, (128 / 255) ** 3], atol=1e-6)
    back = np.rint(crf.from_linear(lin) * 255)
    assert np.array_equal(back, img)


@pytest.mark.parametrize("spec", ["gamma", "gamma-1", "log", "cubic.npy"])
def test_bad_specs_are_refused_with_the_value_named(spec):
    with pytest.raises(InputError, match="--crf"):
        get_crf(spec)


@pytest.mark.parametrize("table", [np.zeros(10), np.arange(256)[::-1].astype(float), np.ones((2, 256))])
def test_bad_tables_are_refused(tmp_path, table):
    path = tmp_path / "bad.npy"
    np.save(path, table)
    with pytest.raises(InputError, match="bad.npy"):
        get_crf(str(path))
