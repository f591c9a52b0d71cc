"""Where does a deblurring checkpoint gain or lose? Per-frame PSNR gain over the blurry input, grouped by how blurred
the input frame is (its own PSNR against the sharp frame).

Why: `mmp eval --protocol all` averages PSNR per frame, and stop-and-go footage mixes nearly sharp frames (40+ dB,
where any change costs a lot) with heavily blurred ones (< 22 dB, where the gain has to come from). The mean hides
which of the two limits a model; this table shows it.

    python bench/gain_by_blur.py sample-deblur other.h5 [more.h5 ...] [--precision fp32]

A last line reports the brightness shift: averaging frames through a camera response makes a blurry frame brighter
than its sharp centre (Jensen: the response is concave), and the line says how much of that shift the output keeps
(mean of frame minus sharp, 8-bit levels per channel) and what removing each output frame's mean offset would add.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmpdata.datasets import open_data  # noqa: E402
from mmpmodel.checkpoint import load_deblur  # noqa: E402
from mmpmodel.metrics import psnr, tensor_to_uint8  # noqa: E402
from mmpmodel.mmprnn import deblur_frames  # noqa: E402
from mmpmodel.weights import resolve_weights  # noqa: E402

EDGES = (0, 22, 26, 30, 35, 40, 1000)


def _offset(img: np.ndarray, sharp: np.ndarray) -> np.ndarray:
    """Mean of img - sharp per channel, 8-bit levels."""
    return (img.astype(np.float64) - sharp).reshape(-1, 3).mean(0)


def _psnr_without_offset(img: np.ndarray, sharp: np.ndarray) -> float:
    d = img.astype(np.float64) - sharp
    return float(10 * np.log10(255.0 ** 2 / np.mean((d - d.reshape(-1, 3).mean(0)) ** 2)))


def per_frame(model, data: Path, precision: str) -> np.ndarray:
    """(N, 9) array for every frame of every sequence in ``data``: input PSNR, output PSNR, the input's and the
    output's offset from the sharp frame (3 channels each), the output's PSNR with its offset removed."""
    rows = []
    with open_data(data) as ds:
        for info in ds.infos:
            blur = ds.read(info.name, "blur", slice(None))
            sharp = ds.read(info.name, "sharp", slice(None))
            frames = (torch.from_numpy(b).permute(2, 0, 1).float() / 255 for b in blur)
            out = (tensor_to_uint8(o) for o in deblur_frames(model, frames, precision=precision))
            rows += [(psnr(b, s), psnr(o, s), *_offset(b, s), *_offset(o, s), _psnr_without_offset(o, s))
                     for b, o, s in zip(blur, out, sharp)]
    return np.asarray(rows, dtype=np.float64)


def table(rows: np.ndarray) -> str:
    inp, out = rows[:, 0], rows[:, 1]
    lines = [f"mean input {inp.mean():.3f} dB, output {out.mean():.3f} dB, gain {np.mean(out - inp):+.3f} dB "
             f"over {len(rows)} frames", "",
             "| input PSNR of the frame | frames | mean gain (dB) | share of the mean gain (dB) |", "|---|---|---|---|"]
    for lo, hi in zip(EDGES[:-1], EDGES[1:]):
        m = (inp >= lo) & (inp < hi)
        if m.any():
            span = f"< {hi} dB" if lo == 0 else (f">= {lo} dB" if hi == EDGES[-1] else f"{lo}-{hi} dB")
            lines.append(f"| {span} | {int(m.sum())} | {np.mean(out[m] - inp[m]):+.3f} | "
                         f"{np.sum(out[m] - inp[m]) / len(rows):+.3f} |")
    shift_in, shift_out = rows[:, 2:5].mean(0), rows[:, 5:8].mean(0)
    lines += ["", f"brightness shift against the sharp frame (R, G, B levels): input {np.round(shift_in, 2).tolist()}, "
                  f"output {np.round(shift_out, 2).tolist()}; each output frame's mean offset removed: "
                  f"{rows[:, 8].mean():.3f} dB ({rows[:, 8].mean() - out.mean():+.3f})"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="deblurring checkpoint or registered name (e.g. sample-deblur)")
    p.add_argument("data", nargs="+", type=Path, help="mmp-h5 files with blur and sharp frames")
    p.add_argument("--precision", default="fp32", help="as mmp eval: fp32 by default")
    a = p.parse_args()
    model, _ = load_deblur(resolve_weights(a.model, "deblur"))
    model.eval()
    with torch.inference_mode():
        for data in a.data:
            print(f"## {a.model} on {data}\n\n{table(per_frame(model, data, a.precision))}\n")


if __name__ == "__main__":
    main()
