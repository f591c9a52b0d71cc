"""Profiling: MACs against hand counts, the paper-scale numbers at 720p, size parsing, and the `mmp profile` CLI."""
import json

import pytest
from click.testing import CliRunner

from cli.main import main
from mmpdata.errors import InputError
from mmpmodel.profile import parse_size, profile_model, time_model


def rdb_macs(c, g, n=3):
    """Per output pixel."""
    return sum(9 * (c + i * g) * g for i in range(n)) + (c + n * g) * c


def mmpnet_macs(h, w):
    hw = h * w

    def dc(cin, cout):
        return 9 * cin * cout + 9 * cout * cout

    per_level = [dc(16, 16) + dc(32, 16), dc(16, 32) + dc(64, 16), dc(32, 64) + dc(128, 32),
                 dc(64, 128) + dc(256, 64), dc(128, 128)]
    unet = sum(macs * hw // 4 ** level for level, macs in enumerate(per_level))
    return 81 * 3 * 16 * hw + unet + rdb_macs(16, 8) * hw + 16 * hw


def mmprnn_macs(a, b, c, h, w):
    """Steady state per frame: prior + cell + reconstruction (REFERENCE_FACTS.md layer list)."""
    full, half, quarter = h * w, h * w // 4, h * w // 16
    n = mmpnet_macs(h, w)
    n += full * (25 * 3 * c + c // 2 + c // 2 * c + rdb_macs(c, c))            # head, MMAM, RDB
    n += half * (25 * c * 2 * c + rdb_macs(2 * c, int(1.5 * c)))                # down 1, RDB
    n += quarter * 25 * 2 * c * 2 * c                                           # down 2
    net = lambda blocks: blocks * rdb_macs(5 * c, 2 * c) + blocks * 5 * c * 5 * c + 9 * 25 * c * c  # noqa: E731
    n += quarter * (net(a) + 9 * 5 * c * c + rdb_macs(c, c) + 9 * c * c)      # RDB-Net-A, state head
    n += quarter * (25 * c * 5 * c + net(b) + 9 * 5 * c * 2 * c)               # fusion, RDB-Net-B, up 1 (per input px)
    n += half * 9 * 2 * c * c                                                   # up 2 (per input pixel)
    n += full * (25 * c * 3 + 81 * 3 * 3)                                       # to RGB, global skip
    return n


def test_mmpnet_macs_match_hand_count():
    assert profile_model("mmpnet", (64, 48))["gmacs"] * 1e9 == pytest.approx(mmpnet_macs(48, 64), abs=0.5)


@pytest.mark.parametrize("a,b,c", [(1, 1, 4), (2, 3, 6)])
def test_mmprnn_macs_match_hand_count(a, b, c):
    got = profile_model(f"A{a}B{b}C{c}F5", (32, 48))["gmacs"] * 1e9
    assert got == pytest.approx(mmprnn_macs(a, b, c, 48, 32), abs=0.5)


@pytest.mark.parametrize("name,params_m,gmacs", [("mmpnet", 0.8514, 38.16), ("A3B4C16F5", 1.9739, 128.20),
                                                 ("A7B8C16F8", 2.9132, 182.23), ("A9B10C18F8", 4.0543, 254.19)])
def test_paper_scale_numbers(name, params_m, gmacs):
    result = profile_model(name, (1280, 720))
    assert abs(result["params"] / (params_m * 1e6) - 1) < 0.005
    assert abs(result["gmacs"] / gmacs - 1) < 0.015


def test_ablation_costs_follow_the_paper_differences():
    # Table 4: dropping MMAM removes the prior pass (~39 G at 720p); dropping the l state widens one conv (+1.87 G).
    full = profile_model("A9B10C18F8", (1280, 720))["gmacs"]
    no_mmam = profile_model("A9B10C18F8-nommam", (1280, 720))["gmacs"]
    no_ndf = profile_model("A9B10C18F8-nommam-nondf", (1280, 720))["gmacs"]
    assert full - no_mmam == pytest.approx(264.52 - 225.34, abs=1.0)
    assert no_ndf - no_mmam == pytest.approx(227.21 - 225.34, abs=0.05)


def test_odd_size_profiles():
    assert profile_model("A1B1C4F5", (53, 37))["gmacs"] > profile_model("A1B1C4F5", (52, 36))["gmacs"]


def test_parse_size():
    assert parse_size("1280x720") == (1280, 720)
    for bad in ["1280", "x720", "0x5", "12x-3", "axb"]:
        with pytest.raises(InputError):
            parse_size(bad)
    with pytest.raises(InputError):
        profile_model("B3A4", (16, 16))


def test_time_model_streams_on_cpu():
    assert time_model("A1B1C4F5", (16, 16), device="cpu", warmup=1, repeats=1) > 0
    with pytest.raises(InputError):
        time_model("mmpnet", (16, 16), device="nonsense")


def test_cli_profile_json():
    runner = CliRunner()
    result = runner.invoke(main, ["profile", "A3B4C16F5", "--size", "1280x720", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["params"] == profile_model("A3B4C16F5")["params"]
    assert data["gmacs"] == pytest.approx(128.20, rel=0.015)
    assert "seconds_per_frame" not in data

    timed = runner.invoke(main, ["profile", "mmpnet", "--size", "32x16", "--json", "--time", "--device", "cpu",
                                 "--repeats", "1"])
    assert timed.exit_code == 0, timed.output
    assert json.loads(timed.output.strip().splitlines()[-1])["seconds_per_frame"] > 0

    text = runner.invoke(main, ["profile", "mmpnet"])
    assert text.exit_code == 0 and "0.8514 M parameters" in text.output and "38.16 GMACs" in text.output


def test_cli_profile_rejects_nonsense_name():
    result = CliRunner().invoke(main, ["profile", "A7B8C16"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1
