"""High-frame-rate footage made by code that is NOT mmpdata.footage, for scoring on data the toolkit never saw.

Why: weights trained on `mmp sample-footage` could learn that generator's quirks (its photographs, its stop-and-go
paths, its bicubic rendering). This script moves any photographs you give it (e.g. Debian's desktop backgrounds,
which the bundled weights never saw) with a different motion model — an Ornstein-Uhlenbeck velocity (a hand-held
drift whose strength wanders between calm and busy stretches) plus occasional whip pans and a slow roll — rendered with Lanczos warps at 4x and
area-downsampled. Speeds are GOPRO-like relative to the frame, as sample-footage's: defined for a 1280-px frame.

    python bench/other_footage.py PHOTO [PHOTO ...] --out other/ --size 192x128 --frames 100 --seed 5
    mmp synthesize --raw other/ --out other.h5 --flow dis --frames 7-13

Writes OUT/SEQ_NAME/000000.png ... (one folder per photograph and take).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

REFERENCE_WIDTH = 1280
SS = 4  # supersampling factor of the renderer


def trajectory(rng: np.random.Generator, frames: int, width: int, motion: float) -> np.ndarray:
    """(frames, 3): x, y shift (px at ``width``) and roll angle (rad) of the camera at each frame."""
    k = motion * width / REFERENCE_WIDTH
    sigma = rng.uniform(1.0, 3.5)                 # typical drift speed, px/frame at 1280 px
    theta = 0.15                                  # OU mean reversion per frame
    # calm and busy stretches: the drift's strength follows a slow random walk in log space (0.1x .. 2x)
    busy = np.exp(np.clip(np.cumsum(rng.normal(0, 0.25, frames)), -2.3, 0.7))
    v = np.zeros(2)
    pos = np.zeros((frames, 2))
    whip_at = set(rng.choice(frames, size=max(1, frames // 60), replace=False).tolist())
    whip = np.zeros(2)
    for t in range(1, frames):
        v += -theta * v + busy[t] * sigma * np.sqrt(2 * theta) * rng.normal(size=2)
        if t in whip_at:
            a = rng.uniform(0, 2 * np.pi)
            whip = rng.uniform(8, 16) * np.array([np.cos(a), np.sin(a)])
        whip *= 0.85
        pos[t] = pos[t - 1] + k * (v + whip)
    roll = np.cumsum(rng.normal(0, 4e-4, frames)) * motion
    return np.concatenate([pos, roll[:, None]], axis=1)


def render(photo: np.ndarray, traj: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
    """Crop a view that follows ``traj`` out of ``photo`` (scaled so the whole path fits), Lanczos at SS x."""
    w, h = size
    span = np.ptp(traj[:, :2], axis=0) + np.array([w, h]) * 1.15 + 8
    ph, pw = photo.shape[:2]
    scale = max(span[0] / pw, span[1] / ph) * 1.02  # photograph px -> frame px (>= what the path needs)
    big = cv2.resize(photo, (int(np.ceil(pw * scale * SS)), int(np.ceil(ph * scale * SS))),
                     interpolation=cv2.INTER_AREA if scale * SS < 1 else cv2.INTER_LANCZOS4)
    origin = np.array([big.shape[1], big.shape[0]]) / SS / 2 - (traj[:, :2].min(0) + np.ptp(traj[:, :2], 0) / 2)
    frames = []
    for x, y, a in traj:
        c = (origin + [x, y]) * SS  # view centre on the big photograph
        rot = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), float(np.degrees(a)), 1.0)
        rot[:, 2] += np.array([w * SS / 2, h * SS / 2]) - c
        view = cv2.warpAffine(big, rot, (w * SS, h * SS), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT101)
        frames.append(cv2.resize(view, (w, h), interpolation=cv2.INTER_AREA))
    return frames


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", default="192x128")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--takes", type=int, default=1, help="sequences per photograph")
    p.add_argument("--motion", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=5)
    a = p.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    for i, path in enumerate(a.photos):
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if photo is None:
            raise SystemExit(f"{path}: not an image")
        for take in range(a.takes):
            rng = np.random.default_rng([a.seed, i, take])
            frames = render(photo, trajectory(rng, a.frames, w, a.motion), (w, h))
            folder = a.out / f"{path.stem}_{take:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for t, f in enumerate(frames):
                cv2.imwrite(str(folder / f"{t:06d}.png"), f)
            print(folder)


if __name__ == "__main__":
    main()
