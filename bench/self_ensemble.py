"""What ``--self-ensemble N`` buys: PSNR gain and time per frame of a deblurring checkpoint at each ensemble size,
side by side in one run, on each data file (``mmp eval --protocol all``, fp32).

Each size is scored by :func:`mmpmodel.evaluate.evaluate_deblur` with ``ensemble=N``; the table gives the PSNR, its
gain over the blurry input, the gain over N = 1 and the model time per frame relative to N = 1 (sizes run one after
the other, so load from other jobs shows in the time ratio; the PSNR does not depend on it).

    python bench/self_ensemble.py --model sample-deblur --data other.h5 heldout.h5 --sizes 1 2 4 8
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sample-deblur", help="deblurring checkpoint or registered name")
    parser.add_argument("--data", nargs="+", required=True, type=Path, help="mmp-h5 files to score on")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 2, 4, 8], help="ensemble sizes (1, 2, 4, 8)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier times)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    from mmpmodel.checkpoint import load_deblur
    from mmpmodel.ensemble import check_ensemble
    from mmpmodel.evaluate import evaluate_deblur
    from mmpmodel.runs import resolve_checkpoint

    for size in args.sizes:
        check_ensemble(size)
    sizes = [1] + [s for s in args.sizes if s != 1]  # N = 1 is the reference of both ratios
    model = load_deblur(resolve_checkpoint(args.model, "deblur"))[0]
    rows = []
    print(f"| data | N | frames | input PSNR | PSNR | gain over input | gain over N=1 | s/frame | time / N=1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for data in args.data:
        base = None
        for size in sizes:
            r = evaluate_deblur(model, data, protocol="all", precision="fp32", progress=False, ensemble=size)
            base = base or r
            row = {"data": data.name, "size": size, "frames": r["frames"], "psnr_input": r["psnr_input"],
                   "psnr": r["psnr"], "gain": r["psnr"] - r["psnr_input"], "gain_over_1": r["psnr"] - base["psnr"],
                   "seconds_per_frame": r["seconds_per_frame"],
                   "time_ratio": r["seconds_per_frame"] / base["seconds_per_frame"]}
            rows.append(row)
            print(f"| {row['data']} | {size} | {row['frames']} | {row['psnr_input']:.3f} | {row['psnr']:.3f} | "
                  f"{row['gain']:+.3f} | {row['gain_over_1']:+.3f} | {row['seconds_per_frame']:.3f} | "
                  f"{row['time_ratio']:.2f} |", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
