"""bench/gpu_check.py --dry-run: the GPU check's code path on the CPU, one JSON with every section filled."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_dry_run_prints_one_json():
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run"], capture_output=True,
                         text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["raft_large"]["pairs_per_s_fp32"] > 0 and report["raft_large"]["pairs_per_s_bf16"] > 0
    rows = report["mmprnn"]["A1B1C4F5"]
    assert set(rows) == {"fp32", "fp32, NCHW", "bf16", "bf16, NCHW"}
    assert all(r["seconds_per_frame"] > 0 for r in rows.values())
    # Reduced precision is compared with fp32 and is close to it (8-bit outputs of random smooth frames).
    assert 25 < rows["bf16"]["psnr_to_fp32"] and rows["bf16"]["max_8bit_diff_to_fp32"] < 64
    assert rows["fp32, NCHW"]["max_8bit_diff_to_fp32"] <= 1  # layout alone changes nothing visible
    for name in ("fp32", "bf16"):
        assert report["train_step"][name]["loss_finite"] is True
    assert report["ddp_step"]["backend"] == "gloo" and report["ddp_step"]["weights_moved"] is True
