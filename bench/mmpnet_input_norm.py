"""What `input_norm="local"` costs at inference: MMP-Net with and without it, side by side in one run.

    python bench/mmpnet_input_norm.py [--size 1280x720] [--rounds 5] [--threads 1]

Prints the median seconds per frame of each and their ratio (the two Gaussian filters of the local contrast against
the 38.8 GMACs of the network at 720p).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmpmodel.mmpnet import MMPNet  # noqa: E402
from mmpmodel.precision import for_inference  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1280x720", help="WxH")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w, h = (int(v) for v in a.size.split("x"))
    torch.manual_seed(0)
    nets = {mode: for_inference(MMPNet(input_norm=mode).eval(), "fp32", "cpu")[0]
            for mode in ("none", "local")}
    x = torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last)
    times = {mode: [] for mode in nets}
    with torch.inference_mode():
        for net in nets.values():
            net(x)  # warm-up
        for _ in range(a.rounds):  # interleaved, so both see the same load
            for mode, net in nets.items():
                t0 = time.perf_counter()
                net(x)
                times[mode].append(time.perf_counter() - t0)
    med = {mode: statistics.median(t) for mode, t in times.items()}
    print(f"MMP-Net at {w}x{h}, {a.threads} thread(s), median of {a.rounds}: input_norm none {med['none']:.3f} s, "
          f"local {med['local']:.3f} s, local / none = {med['local'] / med['none']:.3f}")


if __name__ == "__main__":
    main()
