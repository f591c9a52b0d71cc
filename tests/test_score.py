"""mmp score: reproduces eval's PSNR/SSIM from the PNGs eval --save writes (against the mmp-h5 file and against
exported sharp PNG folders), pairs frames by name / number / order, and computes Y-channel and border-cropped
scores equal to hand-computed values."""
import json
import math

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from _mmph5 import random_checkpoints, write_learnable_h5
from cli.main import main
from mmpdata.errors import InputError
from mmpmodel.score import rgb_to_y, score


def _png(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(img[:, :, ::-1]))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """An eval --save run (protocol all) on two 7-frame sequences, and the sharp frames exported as PNG folders."""
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("score")
    data = write_learnable_h5(root / "d.h5", names=("s0", "s1"), t=7, size=(20, 28))
    _, ck, _ = random_checkpoints(root)
    save = root / "saved"
    res = CliRunner().invoke(main, ["eval", "--model", str(ck), "--data", str(data), "--protocol", "all",
                                    "--save", str(save), "--json", str(root / "eval.json")])
    assert res.exit_code == 0, res.output
    sharp = root / "sharp"
    with h5py.File(data) as f:
        for name in ("s0", "s1"):
            for t, img in enumerate(f["sequences"][name]["sharp"][:]):
                _png(sharp / name / f"{t:06d}.png", img)
    return data, ck, save, sharp, json.loads((root / "eval.json").read_text())


def test_score_reproduces_eval_from_saved_pngs(evaluated, tmp_path):
    data, _, save, sharp, ev = evaluated
    res = CliRunner().invoke(main, ["score", str(save), str(data), "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["frames"] == ev["frames"] == 14
    assert abs(s["psnr"] - ev["psnr"]) < 0.01
    assert s["ssim"] == pytest.approx(ev["ssim"], abs=1e-6)
    for name in ("s0", "s1"):
        assert abs(s["sequences"][name]["psnr"] - ev["sequences"][name]["psnr"]) < 0.01
    # the same against sharp frames exported as PNG folders (paired by the number in the names)
    f = score(save, sharp, progress=False)
    assert abs(f["psnr"] - ev["psnr"]) < 0.01 and f["frames"] == 14
    assert json.loads(res.stdout)["psnr"] == s["psnr"]


def test_paper_protocol_matches_eval(evaluated, tmp_path):
    from mmpmodel.evaluate import evaluate

    data, ck, save, sharp, _ = evaluated
    paper = evaluate(ck, data, protocol="paper", save=tmp_path / "p", progress=False)
    assert abs(score(tmp_path / "p", data, progress=False)["psnr"] - paper["psnr"]) < 0.01
    # every frame saved, scored under the paper protocol: the same frames, the same number
    s = score(save, sharp, protocol="paper", progress=False)
    assert s["frames"] == paper["frames"] == 6 and abs(s["psnr"] - paper["psnr"]) < 0.01


def test_y_channel_and_crop_against_hand_computed_values(tmp_path):
    target = np.full((16, 16, 3), 100, np.uint8)
    out = target.copy()
    out[..., 0] += 10  # red +10 everywhere
    _png(tmp_path / "out" / "f_000.png", out)
    _png(tmp_path / "tgt" / "f_000.png", target)
    rgb = score(tmp_path / "out", tmp_path / "tgt", progress=False)
    assert rgb["psnr"] == pytest.approx(10 * math.log10(255 ** 2 / (100 / 3)))  # MSE = 10^2 / 3 channels
    # Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255: grey 100 -> 101.882 -> 102, red +10 adds 2.568 -> 104.450
    # -> 104, so the error is 2 grey levels
    assert rgb_to_y(target)[0, 0] == 102 and rgb_to_y(out)[0, 0] == 104
    y = score(tmp_path / "out", tmp_path / "tgt", y_channel=True, progress=False)
    assert y["psnr"] == pytest.approx(10 * math.log10(255 ** 2 / 4)) and y["y_channel"]
    # a difference only in a 2-pixel border: finite PSNR without crop, identical with --crop 2
    edge = target.copy()
    edge[:2] = 0
    _png(tmp_path / "edge" / "f_000.png", edge)
    assert math.isfinite(score(tmp_path / "edge", tmp_path / "tgt", progress=False)["psnr"])
    assert score(tmp_path / "edge", tmp_path / "tgt", crop=2, progress=False)["psnr"] == math.inf


def test_pairing_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    for i, f in enumerate(frames):
        _png(tmp_path / "tgt" / "seq" / f"{i:05d}.png", f)
        _png(tmp_path / "named" / "seq" / f"{i:05d}.png", f)         # same names
        _png(tmp_path / "anon" / "seq" / f"{'abc'[i]}.png", f)         # no number: sorted order
    _png(tmp_path / "shuffled" / "seq" / "2.png", frames[2])             # by number, one frame
    for name, how in (("named", "name"), ("anon", "order"), ("shuffled", "number")):
        s = score(tmp_path / name, tmp_path / "tgt", progress=False)
        assert s["psnr"] == math.inf and s["sequences"]["seq"]["paired_by"] == how, name
    for i, f in enumerate(frames):  # benchmark layouts: GOPRO_Large test/<seq>/sharp/, BSD <seq>/Sharp/RGB/
        _png(tmp_path / "gopro" / "test" / "seq" / "sharp" / f"{i:06d}.png", f)
        _png(tmp_path / "bsd" / "seq" / "Sharp" / "RGB" / f"{i:08d}.png", f)
    for layout in ("gopro", "bsd"):
        s = score(tmp_path / "named", tmp_path / layout, progress=False)
        assert s["psnr"] == math.inf and s["frames"] == 3 and s["sequences"]["seq"]["paired_by"] == "number"
    _png(tmp_path / "small" / "seq" / "00000.png", frames[0][:12])
    with pytest.raises(InputError, match="00000.png: size 16x12 differs"):
        score(tmp_path / "small", tmp_path / "tgt", progress=False)
    _png(tmp_path / "other" / "zzz" / "00000.png", frames[0])
    res = CliRunner().invoke(main, ["score", str(tmp_path / "other"), str(tmp_path / "tgt")])
    assert res.exit_code == 2 and "no sharp frames for sequence 'zzz'" in res.output and "Traceback" not in res.output
