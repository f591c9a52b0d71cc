"""How accurate and how fast is each DIS setting on photographs moved by known affine paths?

Renders sequences from scikit-image photographs warped by smooth affine camera paths (translation, rotation,
zoom), whose per-pair flow is exact: flow_i->j(x) = A_j A_i^-1 x - x. Reports, per DIS setting, the mean
absolute error of the flow magnitude and of the MMP (eq. 2-3, K=15, N=7, stride 7, 16-px border excluded)
against that truth, and the seconds per flow field. Usage:

    python bench/flow.py [--size 320x192] [--frames 22] [--presets ultrafast,fast,medium,fine]
    python bench/flow.py --footage [--frames 40] [--sequences 2]   # mmpdata.footage scenes (moving sprite too)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from mmpdata.flow import DIS_PRESETS, DISEstimator
from mmpdata.magnitude import window_mmp

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


def _affine(tx, ty, angle, scale, cx, cy):
    m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    m[:, 2] += (tx, ty)
    return np.vstack([m, [0, 0, 1]])


def render(photo: np.ndarray, size: tuple[int, int], frames: int, rng: np.random.Generator, speed: float):
    """Frames of ``photo`` seen by a camera on a smooth random affine path, plus exact fwd/bwd magnitudes."""
    w, h = size
    ph, pw = photo.shape[:2]
    f = max(w / pw, h / ph) * 1.6  # the photo covers the frame with room to move
    t = np.arange(frames, dtype=np.float64)
    vx, vy = rng.uniform(-speed, speed, 2)
    ax, ay = rng.uniform(-0.03, 0.03, 2) * speed
    rot = rng.uniform(-0.4, 0.4) * np.sin(t / frames * np.pi * rng.uniform(0.5, 2))
    zoom = 1 + rng.uniform(-0.004, 0.004) * t
    mats = []
    for i in range(frames):
        # photo -> frame: scale to cover, centre, then the camera motion about the frame centre
        base = np.array([[f, 0, w / 2 - f * pw / 2], [0, f, h / 2 - f * ph / 2], [0, 0, 1]])
        cam = _affine(vx * i + ax * i * i / 2, vy * i + ay * i * i / 2, np.cumsum(rot)[i], zoom[i], w / 2, h / 2)
        mats.append(cam @ base)
    imgs = [cv2.warpAffine(photo, m[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for m in mats]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    pts = np.stack([xs, ys, np.ones_like(xs)], -1)

    def mag(i, j):
        d = pts @ (mats[j] @ np.linalg.inv(mats[i])).T - pts
        return np.hypot(d[..., 0], d[..., 1]).astype(np.float32)

    fwd = [mag(i, i + 1) for i in range(frames - 1)]
    bwd = [mag(i + 1, i) for i in range(frames - 1)]
    return imgs, fwd, bwd


def affine_sequences(args, w, h):
    rng = np.random.default_rng(0)
    seqs = []
    for s in range(args.sequences):
        for speed in map(float, args.speeds.split(",")):
            photo = getattr(data, PHOTOS[s % len(PHOTOS)])()
            photo = photo if photo.ndim == 3 else np.repeat(photo[..., None], 3, -1)
            seqs.append((speed, *render(photo[..., :3], (w, h), args.frames, rng, speed)))
    return seqs


def footage_sequences(args, w, h):
    """The project's sample footage (affine camera paths plus a moving sprite); 'speed' = mean true |flow|."""
    from mmpdata.footage import load_motion_truth, render_sample_footage
    from mmpdata.rawio import read_image

    seqs = []
    with tempfile.TemporaryDirectory() as tmp:
        for folder in render_sample_footage(tmp, sequences=args.sequences, frames=args.frames, size=(w, h),
                                            seed=1, split=False, progress=False):
            fwd, bwd = load_motion_truth(folder)
            imgs = [read_image(p) for p in sorted(Path(folder).glob("*.png"))]
            seqs.append((round(float(fwd.mean()), 1), imgs, list(fwd), list(bwd)))
    return seqs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="320x192")
    ap.add_argument("--frames", type=int, default=22)
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--speeds", default="0.5,1.5,3")
    ap.add_argument("--presets", default=",".join(DIS_PRESETS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=7)
    ap.add_argument("--k", type=float, default=15.0)
    ap.add_argument("--footage", action="store_true", help="use mmpdata.footage.render_sample_footage scenes")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    border, n = 16, args.n
    seqs = footage_sequences(args, w, h) if args.footage else affine_sequences(args, w, h)
    inner = (slice(border, h - border), slice(border, w - border))
    print(f"{len(seqs)} sequences of {args.frames} frames at {w}x{h}; N={n}, K={args.k}, border {border}px, "
          f"cv2 threads {args.threads}")
    print(f"{'preset':>10} {'speed':>5} {'|flow| MAE px':>13} {'MMP MAE':>9} {'MMP max':>8} {'s/flow':>7}")
    for preset in args.presets.split(","):
        est = DISEstimator(preset, threads=args.threads)
        rows = {}
        for speed, imgs, fwd_t, bwd_t in seqs:
            t0 = time.perf_counter()
            fwd = list(est.magnitudes(imgs[:-1], imgs[1:]))
            bwd = list(est.magnitudes(imgs[1:], imgs[:-1]))
            dt = (time.perf_counter() - t0) / (2 * len(fwd))
            mag_err = np.mean([np.abs(a - b)[inner].mean() for a, b in zip(fwd + bwd, fwd_t + bwd_t)])
            mmp_err = []
            for a in range(0, args.frames - n + 1, n):
                est_m = window_mmp(fwd[a:a + n - 1], bwd[a:a + n - 1], args.k)
                tru_m = window_mmp(fwd_t[a:a + n - 1], bwd_t[a:a + n - 1], args.k)
                mmp_err.append(np.abs(est_m - tru_m)[inner].mean())
            rows.setdefault(speed, []).append((mag_err, np.mean(mmp_err), np.max(mmp_err), dt))
        for speed, r in sorted(rows.items()):
            r = np.array(r)
            print(f"{preset:>10} {speed:5.1f} {r[:, 0].mean():13.4f} {r[:, 1].mean():9.5f} {r[:, 2].max():8.5f} "
                  f"{r[:, 3].mean():7.4f}")


if __name__ == "__main__":
    main()
