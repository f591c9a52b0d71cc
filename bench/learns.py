"""Does the `cpu` recipe learn? It runs end to end as a new user would, and is scored on footage it never saw.

    python bench/learns.py --work learns/ [--eval other.h5 ...] [--threads 2]

1. `mmp sample-footage --sequences 12 --frames 120 --size 192x128` (the project's own footage);
2. `mmp synthesize --frames 7-13`: `--stride 1` for MMP-Net, non-overlapping windows for MMP-RNN;
3. `mmp train-prior --recipe cpu`, then `mmp train-deblur --recipe cpu --prior RUN/best.pt` (wall time of each);
4. held-out scores: `mmp sample-footage` with photographs, seeds and motion never used in training (coffee,
   rocket, grass, gravel; seed 7; `--motion 1.5`), plus every `--eval` file (e.g. bench/other_footage.py's);
   `mmp eval --protocol all` for MMP-RNN (PSNR gain over the blurry input) and `mmp eval` for MMP-Net (L1 as a
   ratio to the mean predictor's).
Prints one table; the numbers go into docs/training.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MMP = [sys.executable, "-m", "cli"]


def mmp(*args, env=None) -> float:
    """Run one `mmp` command (as the shell would); returns its wall time in seconds."""
    t = time.time()
    subprocess.run([*MMP, "-q", *map(str, args)], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.time() - t


def score(checkpoint: Path, data: Path, work: Path, env) -> dict:
    out = work / f"eval_{checkpoint.parent.name}_{data.stem}.json"
    mmp("eval", "--model", checkpoint, "--data", data, "--protocol", "all", "--json", out, env=env)
    return json.loads(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--eval", nargs="*", type=Path, default=[], help="more held-out mmp-h5 files")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--prior-steps", type=int, default=None, help="override the recipe (for a quick look)")
    p.add_argument("--deblur-steps", type=int, default=None)
    a = p.parse_args()
    env = dict(os.environ)
    if a.threads:
        env["OMP_NUM_THREADS"] = str(a.threads)
    w = a.work
    w.mkdir(parents=True, exist_ok=True)
    times = {}
    times["footage"] = mmp("sample-footage", w / "footage", "--sequences", 12, "--frames", 120, "--size", "192x128",
                           env=env)
    times["synthesize"] = (mmp("synthesize", "--raw", w / "footage", "--out", w / "prior.h5", "--flow", "dis",
                               "--frames", "7-13", "--stride", 1, "--seed", 1, env=env)
                           + mmp("synthesize", "--raw", w / "footage", "--out", w / "video.h5", "--flow", "dis",
                                 "--frames", "7-13", "--seed", 1, env=env))
    mmp("sample-footage", w / "heldout", "--sequences", 4, "--frames", 100, "--size", "192x128", "--no-split",
        "--images", "coffee,rocket,grass,gravel", "--seed", 7, "--motion", 1.5, env=env)
    mmp("synthesize", "--raw", w / "heldout", "--out", w / "heldout.h5", "--flow", "dis", "--frames", "7-13",
        "--seed", 3, env=env)
    prior_args = ["--steps", a.prior_steps] if a.prior_steps else []
    deblur_args = ["--steps", a.deblur_steps] if a.deblur_steps else []
    if not (w / "prior" / "best.pt").exists():
        times["train-prior"] = mmp("train-prior", "--recipe", "cpu", "--data", w / "prior.h5", "--out", w / "prior",
                                   *prior_args, env=env)
    if not (w / "deblur" / "best.pt").exists():
        times["train-deblur"] = mmp("train-deblur", "--recipe", "cpu", "--data", w / "video.h5", "--prior",
                                    w / "prior" / "best.pt", "--out", w / "deblur", *deblur_args, env=env)
    rows = []
    for data in [w / "heldout.h5", *a.eval]:
        pr = score(w / "prior" / "best.pt", data, w, env)
        db = score(w / "deblur" / "best.pt", data, w, env)
        rows.append({"data": str(data), "psnr_input": round(db["psnr_input"], 3), "psnr": round(db["psnr"], 3),
                     "gain_db": round(db["psnr"] - db["psnr_input"], 3),
                     "prior_l1": round(pr["l1"], 5), "mean_predictor_l1": round(pr["l1_mean_baseline"], 5),
                     "prior_ratio": round(pr["l1"] / pr["l1_mean_baseline"], 3)})
    print(json.dumps({"minutes": {k: round(v / 60, 2) for k, v in times.items()}, "heldout": rows}, indent=2))
    print("\n| held-out data | input PSNR | output PSNR | gain (dB) | MMP-Net L1 / mean predictor |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {Path(r['data']).name} | {r['psnr_input']:.2f} | {r['psnr']:.2f} | {r['gain_db']:+.3f} | "
              f"{r['prior_ratio']:.3f} |")


if __name__ == "__main__":
    main()
