"""How well can a single blurry frame tell its blur level without a network? A reference for MMP-Net.

Why: the `sample-prior` target (L1 <= 0.8x the mean predictor's) hangs on one number per frame, its blur level
(bench/prior_diagnosis.py's `bound_frame_mean`), and our MMP-Nets squeeze that number toward the mean on photographs
they never saw. Were the level simply not visible in one frame, no network could do better. This fits a least-squares
line from five image statistics of the blurry frame to the frame's mean MMP on TRAIN, predicts one constant per frame
on every DATA file, and scores it the way `mmp eval` scores a prior:

- statistics of the grey frame: log of the structure tensor's eigenvalue ratio (blur along the motion removes
  gradients in one direction), log of Laplacian energy over gradient energy and of gradient energy at full over half
  resolution (blur removes the finest detail first), log of the gradient energy, and a constant;
- per frame: correlation and slope of predicted on true mean MMP;
- per pixel: L1 of the constant-per-frame map against the stored MMP clipped to [0, 1], next to the L1 of the data's
  own mean MMP everywhere (the baseline of `mmp eval`), and their ratio.

    .venv/bin/python bench/blur_level_features.py --train video.h5 --data other.h5 other2.h5
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmpdata.datasets import read_index  # noqa: E402


def frame_statistics(blur: np.ndarray) -> list[float]:
    """The five statistics (and a constant 1) of one blurry RGB uint8 frame."""
    grey = cv2.cvtColor(blur, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    jxx, jyy, jxy = float((gx * gx).mean()), float((gy * gy).mean()), float((gx * gy).mean())
    trace, det = jxx + jyy, jxx * jyy - jxy * jxy
    spread = np.sqrt(max(trace * trace / 4 - det, 0.0))
    major, minor = trace / 2 + spread, trace / 2 - spread
    laplacian = cv2.Laplacian(grey, cv2.CV_32F)
    half = cv2.pyrDown(grey)
    hx, hy = cv2.Sobel(half, cv2.CV_32F, 1, 0), cv2.Sobel(half, cv2.CV_32F, 0, 1)
    eps = 1e-9
    return [np.log(minor / (major + eps) + 1e-6), np.log(float((laplacian ** 2).mean()) / (trace + eps)),
            np.log(trace / (float((hx ** 2 + hy ** 2).mean()) + eps)), np.log(trace + eps), 1.0]


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Statistics per frame and the MMP maps (clipped to [0, 1]) of an mmp-h5 file, frames in index order."""
    stats, maps = [], []
    for info in read_index(path):
        with h5py.File(info.shard, "r") as f:
            blur, mmp = f["blur"][:], f["mmp"][:].astype(np.float32).clip(0, 1)
        stats += [frame_statistics(b) for b in blur]
        maps.append(mmp)
    return np.array(stats), np.concatenate(maps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=Path, required=True, help="mmp-h5 file to fit the line on (the training footage)")
    p.add_argument("--data", type=Path, nargs="+", required=True, help="mmp-h5 files to score")
    a = p.parse_args()
    x, truth = load(a.train)
    weights, *_ = np.linalg.lstsq(x, truth.mean(axis=(1, 2)), rcond=None)
    for path in a.data:
        x, truth = load(path)
        y = truth.mean(axis=(1, 2))  # each frame's blur level
        pred = np.clip(x @ weights, 0, 1)
        l1 = float(np.abs(truth - pred[:, None, None]).mean())
        base = float(np.abs(truth - truth.mean()).mean())
        print(json.dumps({"train": str(a.train), "data": str(path), "frames": len(y),
                          "per_frame_means": {"correlation": round(float(np.corrcoef(pred, y)[0, 1]), 3),
                                              "slope": round(float(np.polyfit(y, pred, 1)[0]), 3)},
                          "l1": round(l1, 5), "l1_mean_baseline": round(base, 5), "ratio": round(l1 / base, 3)}))


if __name__ == "__main__":
    main()
