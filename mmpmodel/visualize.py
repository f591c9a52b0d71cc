"""``mmp show``: MMP heat maps over the frames (as the paper's Fig. 4/5), one PNG per shown frame.

Each image is a row of panels: the blurry frame, MMP-Net's map as a heat map over it, and, for synthesized data,
the stored ground-truth MMP the same way. Colours: the jet colour map over [0, 1] (blue = still, red = MMP 1, that
is a mean motion of K pixels per frame pair).
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
from tqdm import tqdm

from mmpdata.datasets import open_data
from mmpdata.neighbours import neighbour_indices, read_stacks, stream_neighbours
from mmpdata.rawio import frame_filename

from .checkpoint import load_prior
from .distributed import resolve_device
from .evaluate import save_png
from .inference import open_input
from .precision import for_inference

log = logging.getLogger(__name__)

__all__ = ["heat_overlay", "panel", "show"]


def heat_overlay(frame: np.ndarray, mmp: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """RGB uint8 frame with the map (H, W) in [0, 1] blended on top as a jet heat map."""
    heat = cv2.applyColorMap(np.rint(np.clip(mmp, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    return np.rint((1 - alpha) * frame.astype(np.float32) + alpha * heat.astype(np.float32)).astype(np.uint8)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    scale = max(0.35, img.shape[1] / 900)
    cv2.putText(img, text, (4, int(16 * scale + 4)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def panel(frame: np.ndarray, pred: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
    """[frame | prediction overlay (| ground-truth overlay)] side by side."""
    parts = [_label(frame, "blurry"), _label(heat_overlay(frame, pred), f"MMP-Net (mean {pred.mean():.3f})")]
    if truth is not None:
        parts.append(_label(heat_overlay(frame, truth), f"ground truth (mean {truth.mean():.3f})"))
    return np.concatenate(parts, axis=1)


def _frames_h5(path: Path, context: int = 0):
    """(name, t, n, frame, truth, [frame and its neighbours]) of every stored frame (the next exposures, as
    :func:`mmpdata.neighbours.neighbour_indices` picks them from the window table)."""
    with open_data(path) as ds:  # checked once; reads name a damaged shard and refuse NaN/inf MMP
        for info in ds.infos:
            windows = ds.read(info.name, "window", slice(None)) if context and info.has_mmp else None
            stacks = read_stacks(neighbour_indices(info.frames, context, windows),
                                 lambda j: ds.read(info.name, "blur", j))
            for t, stack in enumerate(stacks):
                truth = np.clip(ds.read(info.name, "mmp", t).astype(np.float32), 0, 1) if info.has_mmp else None
                yield info.name, t, info.frames, stack[context], truth, stack


def _frames_raw(path: Path, context: int = 0):
    seq = open_input(path)  # a video is streamed: every decoded frame, its count known only at the end
    for t, img, stack in stream_neighbours(seq.iter_frames(), context):
        yield seq.name, t, None, img, None, stack


def show(source: str | Path, prior: str | Path, out_dir: str | Path, every: int = 1, max_frames: int | None = None,
         device: str | None = None, progress: bool | None = None, precision: str | None = "auto") -> dict:
    """Write OUT_DIR/<sequence>/<index>.png (index zero-padded to 6 digits: 000000.png) for every ``every``-th frame
    (at most ``max_frames`` per sequence) of an mmp-h5 file or of a video file / frame folder."""
    dev = resolve_device(device)
    net, _ = load_prior(prior)
    net, precision = for_inference(net, precision, dev)
    source, out_dir = Path(source), Path(out_dir)
    reader = _frames_h5 if source.is_file() and h5py.is_hdf5(source) else _frames_raw
    frames = reader(source, getattr(net, "context", 0))
    written, means, per_seq = [], [], {}
    bar = tqdm(desc="show", unit="frame", disable=None if progress is None else not progress)
    with torch.inference_mode():
        for name, t, n, img, truth, stack in frames:
            if t % every or (max_frames is not None and per_seq.get(name, 0) >= max_frames):
                continue
            per_seq[name] = per_seq.get(name, 0) + 1
            x = torch.cat([torch.from_numpy(f).to(dev).permute(2, 0, 1)[None].float().div_(255.0) for f in stack], 1)
            pred = net(x)[0, 0].float().cpu().numpy()
            means.append(float(pred.mean()))
            path = out_dir / name / frame_filename(t)
            save_png(path, panel(img, pred, truth))
            written.append(path)
            bar.update(1)
    bar.close()
    return {"out": str(out_dir), "images": len(written), "first": str(written[0]) if written else None,
            "mean_predicted_mmp": float(np.mean(means)) if means else None, "precision": precision}
