"""The paper's Tables 4/5 at CPU scale: does the motion-magnitude prior help MMP-RNN here?

    python bench/ablation.py --data video.h5 --prior PRIOR.pt --heldout heldout.h5 --work abl/ [--steps 900]
        [--seeds 0 1 2] [--preset A2B2C16F10]

Variants, each trained with `mmp train-deblur --recipe cpu` (only the switches differ) for every seed:
  - mmam+mm : MMAM with MMP-Net's map and the motion-magnitude loss (lambda2 = 1), the paper's model;
  - mmam    : MMAM, no L_MM (the `cpu` recipe's default);
  - none    : no prior at all (`-noprior`, no L_MM);
  - gt      : MMAM fed the stored ground-truth MMP (`--prior-source gt`, Table 5's upper bound).
Each run is scored with `mmp eval --protocol all` on the held-out file; the script prints the PSNR gain over the
blurry input as mean ± std over seeds (and every run), for docs/training.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

VARIANTS = {
    "mmam+mm": ["--mm-weight", "1.0"],
    "mmam": ["--mm-weight", "0"],
    "none": ["--no-prior", "--mm-weight", "0"],
    "gt": ["--prior-source", "gt", "--mm-weight", "0"],
}


def mmp(*args) -> None:
    subprocess.run([sys.executable, "-m", "cli", "-q", *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="non-overlapping (video) training data with MMP")
    p.add_argument("--prior", required=True, help="MMP-Net checkpoint or registered name")
    p.add_argument("--heldout", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--steps", type=int, default=None, help="default: the cpu recipe's")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--preset", default=None)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    a = p.parse_args()
    results = {}
    for name in a.variants:
        for seed in a.seeds:
            run = a.work / f"{name}_s{seed}"
            if not (run / "best.pt").exists():
                args = ["train-deblur", "--recipe", "cpu", "--data", a.data, "--out", run, "--seed", seed,
                        *VARIANTS[name]]
                if name != "none":
                    args += ["--prior", a.prior]
                if a.steps:
                    args += ["--steps", a.steps]
                if a.preset:
                    args += ["--preset", a.preset + ("-noprior" if name == "none" else "")]
                elif name == "none":
                    args += ["--preset", "A2B2C16F10-noprior"]
                mmp(*args)
            out = run / "eval.json"
            mmp("eval", "--model", run / "best.pt", "--data", a.heldout, "--protocol", "all", "--json", out)
            r = json.loads(out.read_text())
            results.setdefault(name, []).append(r["psnr"] - r["psnr_input"])
    print("| variant | gain over input (dB), mean ± std | runs |")
    print("|---|---|---|")
    for name, gains in results.items():
        sd = statistics.stdev(gains) if len(gains) > 1 else 0.0
        print(f"| {name} | {statistics.mean(gains):+.3f} ± {sd:.3f} | {', '.join(f'{g:+.3f}' for g in gains)} |")


if __name__ == "__main__":
    main()
