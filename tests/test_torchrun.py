"""Under ``torchrun --nproc-per-node 2`` (gloo on CPU) the run summary is printed once and every INFO line comes
once (from rank 0); the other rank logs WARNING and above only."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _mmph5 import write_learnable_h5

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_summary_and_info_lines_come_once(tmp_path):
    data = write_learnable_h5(tmp_path / "d.h5", names=("s0", "s1", "s2", "s3"), t=6, size=(32, 32))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "cli",
           "train-deblur", "--data", str(data), "--preset", "A1B1C4F5", "--no-prior", "--no-mm-loss",
           "--out", str(tmp_path / "run"), "--steps", "3", "--batch-size", "1", "--patch", "32", "--device", "cpu",
           "--val-every", "3"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    # stdout holds one JSON summary (rank 0's), with rank 0's validation result
    summary = json.loads(res.stdout)
    assert summary["steps"] == 3 and summary["best_val_psnr"] is not None
    assert res.stdout.count('"steps"') == 1
    # INFO from rank 0 only: the group-join line of rank 0, never rank 1's
    assert res.stderr.count("rank 0 of 2 joined the gloo process group") == 1
    assert "rank 1 of 2 joined" not in res.stderr
    info = [ln for ln in res.stderr.splitlines() if ln.startswith("INFO ")]
    assert info and len(info) == len(set(info))  # no INFO line twice
    assert not any("[rank 1]" in ln for ln in info)
