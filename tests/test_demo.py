"""The end-to-end demo (tiny settings): every step runs and every output it lists exists."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.demo import demo


@pytest.mark.slow
def test_quick_demo(tmp_path):
    res = CliRunner().invoke(demo, ["--out", str(tmp_path / "demo"), "--quick"])
    assert res.exit_code == 0, res.output
    import json
    s = json.loads((tmp_path / "demo" / "summary.json").read_text())
    for key in ("train_data", "unseen_data", "prior_checkpoint", "deblur_checkpoint", "prior_eval", "deblur_eval",
                "deblurred_video", "show", "eval_frames"):
        assert Path(s[key]).exists(), key
    assert abs(s["psnr"] - s["psnr_recomputed_from_saved"]) < 0.05
    assert "deblurred video" in res.output
