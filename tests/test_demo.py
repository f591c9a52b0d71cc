"""The end-to-end demo (tiny settings): every step runs, every output it lists exists, and its numbers are real."""
import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli.demo import demo
from mmpmodel.metrics import psnr


@pytest.mark.slow
def test_quick_demo(tmp_path):
    res = CliRunner().invoke(demo, ["--out", str(tmp_path / "demo"), "--quick"])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "demo" / "summary.json").read_text())
    for key in ("unseen_data", "deblur_eval", "prior_eval", "eval_frames", "prior_run", "deblur_run",
                "blurry_video", "deblurred_video", "comparison"):
        assert Path(s[key]).exists(), key
    assert (Path(s["deblur_run"]) / "last.pt").exists() and (Path(s["prior_run"]) / "last.pt").exists()
    # the PSNR it reports is the one of the frames it saved (recomputed here from the PNGs and the sharp frames)
    scores = []
    with h5py.File(s["unseen_data"], "r") as f:
        for seq in sorted(Path(s["eval_frames"]).iterdir()):
            sharp = f["sequences"][seq.name]["sharp"]
            for png in sorted(seq.glob("*.png")):
                scores.append(psnr(cv2.imread(str(png))[:, :, ::-1], sharp[int(png.stem)]))
    assert abs(np.mean(scores) - s["psnr"]) < 0.01
    assert abs(s["gain_db"] - (s["psnr"] - s["psnr_input"])) < 1e-9
    with h5py.File(s["unseen_data"], "r") as f:
        first = sorted(f["sequences"])[0]
        assert s["deblurred_frames"] == f["sequences"][first]["blur"].shape[0]  # one output per input frame
    assert "gains" in res.output and "dB" in res.output
