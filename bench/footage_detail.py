"""How much pixel-level detail do the sharp frames of mmp-h5 files carry? Compare training footage with the footage
a model is meant for.

Why: a single-frame blur estimator (MMP-Net) reads blur as missing fine detail. Trained on footage whose sharp frames
are soft (a 192x128 view of a 4K photograph shows a few hundred of its pixels, which a camera's lens and JPEG have
already smoothed), it takes the lost detail of blurred sharp footage for less blur than there is. This prints, per
file, the median over sampled sharp frames of the mean absolute horizontal plus vertical forward difference of the
grey frame (0..1 scale), and the same for what MMP-Net sees with ``--input-norm local`` (docs/training.md, eleventh
session).

    .venv/bin/python bench/footage_detail.py train.h5 unseen.h5 [--frames-per-sequence 3]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from mmpdata.datasets import open_h5, read_index
from mmpmodel.mmpnet import local_contrast


def detail(x: torch.Tensor) -> float:
    """Mean |horizontal| + mean |vertical| forward difference of (1, C, H, W), averaged over channels."""
    return float(x.diff(dim=-1).abs().mean() + x.diff(dim=-2).abs().mean())


def footage_detail(path: str, per_sequence: int = 3) -> dict:
    """Medians over ``per_sequence`` evenly spaced sharp frames of every sequence."""
    grey, normalised = [], []
    with open_h5(path) as f:
        for info in read_index(path):
            g = f["sequences"][info.name]
            for t in np.linspace(0, info.frames - 1, min(per_sequence, info.frames)).round().astype(int):
                x = torch.from_numpy(g["sharp"][t]).permute(2, 0, 1)[None].float() / 255
                grey.append(detail(x.mean(dim=1, keepdim=True)))
                normalised.append(detail(local_contrast(x)))
    return {"data": path, "frames": len(grey), "detail": round(float(np.median(grey)), 4),
            "detail_local_input": round(float(np.median(normalised)), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", help="mmp-h5 files")
    p.add_argument("--frames-per-sequence", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(1)
    for path in a.data:
        print(json.dumps(footage_detail(path, a.frames_per_sequence)))


if __name__ == "__main__":
    main()
