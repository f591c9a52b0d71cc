"""bench/train_step.py --dry-run: both sides (HEAD extracted with git archive, and the working tree) build the
train-deblur step at a tiny size and run it once in their own subprocess; the table compares them."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_step_dry_run_against_head(tmp_path):
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    out = tmp_path / "result.json"
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "train_step.py"), "--baseline", "HEAD", "--dry-run",
                          "--threads", "1", "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    result = json.loads(out.read_text())
    names = [r["name"] for r in result["rows"]]
    assert names == ["baseline", "current"]
    for row in result["rows"]:
        assert row["precision"] == "fp32" and row["per_round"][0] > 0
        run = row["runs"][0]
        assert Path(run["mmpmodel"]).parent == Path(run["root"])  # each side imported its own tree
        # the train-deblur defaults: clip 20, Charbonnier + 0.5 gradient + 1.0 MM, Adam 5e-4
        assert row["settings"]["grad_clip"] == 20.0 and row["settings"]["mm_weight"] == 1.0
        assert row["settings"]["lr"] == 5e-4
    base, cur = result["rows"]
    assert base["runs"][0]["root"] != cur["runs"][0]["root"]
    assert result["settings_equal"] is True
    clean = not subprocess.run(["git", "status", "--porcelain", "--", "mmpmodel", "mmpdata"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    if clean:  # HEAD and the working tree are the same code: the same seed gives the same first loss
        assert result["first_loss_equal"] is True
    assert "| baseline " in res.stdout and "/ baseline |" in res.stdout
