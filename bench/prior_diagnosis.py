"""Where does an MMP-Net checkpoint lose to the mean-MMP baseline: where blur is visible, or where it is not?

Blur can only be seen where the sharp frame has texture; on smooth regions (a clear sky) a single-frame estimator
can at best guess. This splits `mmp eval`'s prior score by a texture mask computed from the stored sharp frame
(|Sobel x| + |Sobel y| of the grey frame, Gaussian-smoothed with sigma 8 px, above 20 grey levels per px), and
prints, side by side:

- L1 of the model and of the mean-MMP baseline (the data's own mean, as `mmp eval` uses) on all, textured and
  smooth pixels, and their ratios;
- a bound: the ratio of an estimator that is exact on textured pixels and predicts ``--smooth-value`` (default:
  the baseline's mean) on smooth ones -- what "blur is unobservable on smooth regions" costs at most;
- a second bound: the ratio of an estimator that predicts each frame's true mean MMP everywhere in that frame. Where
  the camera moves and the scene does not, blur is nearly the same over the frame, and this bound is small: the score
  then hangs on getting each frame's blur level right, not on the map's detail;
- per frame: mean truth and mean prediction, their correlation and the least-squares slope of prediction on truth
  (slope < 1: heavy blur under-estimated, light blur over-estimated).

    .venv/bin/python bench/prior_diagnosis.py --model RUN/best.pt --data unseen.h5 [--per-frame]
"""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import torch

from mmpdata.datasets import open_h5, read_index
from mmpdata.neighbours import neighbour_indices, read_stacks
from mmpmodel.checkpoint import load_prior
from mmpmodel.weights import resolve_weights

TEXTURE_SIGMA = 8.0
TEXTURE_THRESHOLD = 20.0


def texture_mask(sharp: np.ndarray) -> np.ndarray:
    """True where the sharp RGB frame has enough local contrast for blur to show."""
    grey = cv2.cvtColor(sharp, cv2.COLOR_RGB2GRAY).astype(np.float32)
    edges = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    return cv2.GaussianBlur(edges, (0, 0), TEXTURE_SIGMA) > TEXTURE_THRESHOLD


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True,
                    help="prior checkpoint (train-prior's best.pt / last.pt), or a deblurring one (its prior)")
    ap.add_argument("--data", required=True, help="mmp-h5 index with blur, sharp and mmp")
    ap.add_argument("--smooth-value", type=float, default=None,
                    help="what the bound predicts on smooth pixels (default: the data's mean MMP)")
    ap.add_argument("--per-frame", action="store_true", help="also print one line per frame")
    a = ap.parse_args()
    model, _ = load_prior(resolve_weights(a.model, "prior"))

    frames = []  # (sequence, index, truth, prediction, textured)
    with open_h5(a.data) as f, torch.inference_mode():
        for info in read_index(a.data):
            g = f["sequences"][info.name]
            rows = neighbour_indices(info.frames, model.context, g["window"][:] if model.context else None)
            stacks = read_stacks(rows, lambda j: torch.from_numpy(g["blur"][j]).permute(2, 0, 1)[None].float() / 255)
            for t, stack in enumerate(stacks):  # a prior with context reads each frame's neighbouring exposures
                blur = torch.cat(stack, 1)
                pred = model(blur)[0, 0].double().numpy()
                truth = np.clip(g["mmp"][t].astype(np.float64), 0.0, 1.0)
                frames.append((info.name, t, truth, pred, texture_mask(g["sharp"][t])))

    mean = sum(float(fr[2].sum()) for fr in frames) / sum(fr[2].size for fr in frames)  # as mmp eval
    smooth_value = mean if a.smooth_value is None else a.smooth_value
    sums = {k: [0.0, 0.0, 0] for k in ("all", "textured", "smooth")}  # model error, baseline error, pixels
    bound = frame_bound = 0.0
    for name, t, truth, pred, tex in frames:
        err, base = np.abs(pred - truth), np.abs(mean - truth)
        for key, mask in (("all", np.ones_like(tex)), ("textured", tex), ("smooth", ~tex)):
            sums[key][0] += float(err[mask].sum())
            sums[key][1] += float(base[mask].sum())
            sums[key][2] += int(mask.sum())
        bound += float(np.abs(np.where(tex, truth, smooth_value) - truth).sum())
        frame_bound += float(np.abs(truth.mean() - truth).sum())
        if a.per_frame:
            print(f"{name} {t:3d}  truth {truth.mean():.3f} pred {pred.mean():.3f} | textured {tex.mean():.2f}: "
                  f"truth {truth[tex].mean() if tex.any() else float('nan'):.3f} "
                  f"pred {pred[tex].mean() if tex.any() else float('nan'):.3f} | L1 {err.mean():.4f} "
                  f"baseline {base.mean():.4f}")
    truth_means = np.array([fr[2].mean() for fr in frames])
    pred_means = np.array([fr[3].mean() for fr in frames])
    slope = float(np.polyfit(truth_means, pred_means, 1)[0]) if len(frames) > 1 else float("nan")
    corr = float(np.corrcoef(truth_means, pred_means)[0, 1]) if len(frames) > 1 else float("nan")
    out = {"model": a.model, "data": a.data, "frames": len(frames), "mean_mmp": round(mean, 4)}
    for key, (e, b, n) in sums.items():
        out[key] = {"pixels": round(n / sums["all"][2], 3), "l1": round(e / max(n, 1), 5),
                    "l1_mean_baseline": round(b / max(n, 1), 5), "ratio": round(e / b, 3) if b else None}
    out["bound_exact_on_textured"] = {"smooth_value": round(smooth_value, 4),
                                      "ratio": round(bound / sums["all"][1], 3)}
    out["bound_frame_mean"] = {"ratio": round(frame_bound / sums["all"][1], 3)}
    out["per_frame_means"] = {"correlation": round(corr, 3), "slope": round(slope, 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
