"""Scoring checkpoints on mmp-h5 data under an explicit protocol.

Deblurring checkpoints: every sequence is streamed through the network (each frame encoded once, the first and last
frames replicated at the ends, so every frame has an output). PSNR and SSIM are computed on RGB uint8 (rounded), full
frames, and averaged over all scored frames (per sequence and overall). Protocols:
  paper - skip the first and last 2 frames of every sequence, as the published numbers did;
  all   - score every frame.
``prior_source`` says what the MMAM of a deblurring checkpoint is fed: ``net`` (its MMP-Net, as in use), ``gt`` (the
stored ground-truth MMP, clipped to [0, 1]: Table 5's bound at test time) or ``zero`` (no motion anywhere). Comparing
the three shows how much a trained network relies on its prior.
Prior checkpoints: mean L1 per pixel against the stored MMP clipped to [0, 1], next to the L1 of always predicting
the data's mean MMP (the baseline a useful prior must beat).
Both report parameters, GMACs per frame at the data's frame size and measured seconds per frame.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from mmpdata.datasets import open_data
from mmpdata.neighbours import neighbour_indices, read_stacks
from mmpdata.errors import InputError
from mmpdata.rawio import frame_filename

from .checkpoint import load_any
from .distributed import resolve_device
from .ensemble import EnsembleStepper, check_ensemble
from .metrics import psnr, ssim, tensor_to_uint8
from .precision import for_inference
from .profile import count_macs, count_parameters

log = logging.getLogger(__name__)

__all__ = ["PROTOCOLS", "PRIOR_SOURCES", "scored_indices", "evaluate", "evaluate_deblur", "evaluate_prior", "save_png"]

PROTOCOLS = ("paper", "all")
#: What the MMAM of a deblurring checkpoint is fed (see the module docstring).
PRIOR_SOURCES = ("net", "gt", "zero")
#: Frames the published protocol leaves out at each end of a sequence.
PAPER_SKIP = 2


#: ``gain_by_position`` in the deblurring result: the mean gain (dB over the blurry input) of the scored frames 0..3
#: frames from the start and from the end of their sequence. A recurrent network sees no past at the start and no
#: future at the end; this is where that shows (docs/training.md, fourteenth session).
POSITIONS = 4


def scored_indices(n: int, protocol: str) -> list[int]:
    """Frame positions scored in a sequence of n frames."""
    if protocol == "all":
        return list(range(n))
    if protocol == "paper":
        return list(range(PAPER_SKIP, n - PAPER_SKIP))
    raise InputError(f"unknown protocol {protocol!r}; use paper or all")


def save_png(path: Path, img: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", img[:, :, ::-1])
    if not ok:
        raise InputError(f"{path}: cannot encode PNG")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)


def _frame_tensor(img: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(img).to(device).permute(2, 0, 1)[None].float().div_(255.0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate_deblur(model, data: str | Path, protocol: str = "paper", save: str | Path | None = None,
                    device: torch.device | str = "cpu", progress: bool | None = None,
                    precision: str | None = "fp32", prior_source: str = "net", ensemble: int = 1,
                    ends: str | None = None) -> dict:
    """PSNR/SSIM of an MMP-RNN over every sequence of ``data``; see the module docstring for the protocol and
    ``prior_source``. ``ensemble`` > 1 averages that many flipped/transposed passes (mmpmodel.ensemble). ``ends``:
    how the first and last frames get their neighbours (mmpmodel.mmprnn.ENDS; None: as the model was trained)."""
    scored_indices(5, protocol)  # validates the name
    check_ensemble(ensemble)
    if prior_source not in PRIOR_SOURCES:
        raise InputError(f"unknown prior source {prior_source!r}; use one of {', '.join(PRIOR_SOURCES)}")
    if prior_source != "net" and model.mmam is None:
        raise InputError(f"{model.config.name} has no MMAM to feed; --prior-source {prior_source} applies to "
                         "models with a prior (use net)")
    device = torch.device(device)
    model, precision = for_inference(model, precision, device)  # fp32 by default: published numbers stay put
    ds = open_data(data)  # checked once; reads name a damaged shard
    infos = ds.infos
    if prior_source == "gt":
        missing = [s.name for s in infos if not s.has_mmp]
        if missing:
            raise InputError(f"{data}: sequence {missing[0]} has no stored MMP to feed (--prior-source gt); "
                             "synthesize the data with MMP or use --prior-source net")
    seqs, all_p, all_s, all_in, model_seconds = {}, [], [], [], 0.0
    near_start = [[] for _ in range(POSITIONS)]  # gains of the scored frames k frames from a sequence's start
    near_end = [[] for _ in range(POSITIONS)]
    total_frames = sum(s.frames for s in infos)
    bar = tqdm(total=total_frames, desc="eval", unit="frame", disable=None if progress is None else not progress)
    with ds, torch.inference_mode():
        for info in infos:
            wanted = set(scored_indices(info.frames, protocol))
            stepper = model.stepper(ends) if ensemble == 1 else EnsembleStepper(lambda: model.stepper(ends), ensemble)
            ps, ss, pin = [], [], []

            def score(ready):
                for t, out in ready:
                    bar.update(1)
                    if t not in wanted:
                        continue
                    img = tensor_to_uint8(out[0])
                    target = ds.read(info.name, "sharp", t)
                    ps.append(psnr(img, target))
                    pin.append(psnr(ds.read(info.name, "blur", t), target))
                    for k, bucket in ((t, near_start), (info.frames - 1 - t, near_end)):
                        if k < POSITIONS:
                            bucket[k].append(ps[-1] - pin[-1])
                    ss.append(ssim(img, target))
                    if save is not None:
                        save_png(Path(save) / info.name / frame_filename(t), img)

            for t in range(info.frames):
                frame = _frame_tensor(ds.read(info.name, "blur", t), device)
                mmp = _fed_mmp(ds, info.name, t, frame, prior_source)
                start = time.perf_counter()
                ready = stepper.push(frame, mmp)
                _sync(device)
                model_seconds += time.perf_counter() - start
                score(ready)
            start = time.perf_counter()
            ready = stepper.finish()
            _sync(device)
            model_seconds += time.perf_counter() - start
            score(ready)
            seqs[info.name] = {"psnr": float(np.mean(ps)) if ps else None,
                               "ssim": float(np.mean(ss)) if ss else None, "frames": len(ps)}
            all_p += ps
            all_s += ss
            all_in += pin
    bar.close()
    if not all_p:
        raise InputError(f"{data}: no frame to score under protocol {protocol} (sequences shorter than 5 frames?); "
                         "use --protocol all")
    w, h = infos[0].width, infos[0].height
    return {"kind": "deblur", "model": model.config.name, "data": str(data), "protocol": protocol,
            "psnr": float(np.mean(all_p)), "ssim": float(np.mean(all_s)), "frames": len(all_p), "sequences": seqs,
            "psnr_input": float(np.mean(all_in)),
            "params": count_parameters(model), "gmacs": _gmacs(model, (w, h)), "size": [w, h],
            "seconds_per_frame": model_seconds / max(total_frames, 1), "device": str(device), "precision": precision,
            "prior_source": prior_source, "self_ensemble": ensemble, "ends": ends or model.ends,
            "gain_by_position": {"from_start": _means(near_start), "from_end": _means(near_end)}}


def _means(buckets: list[list[float]]) -> list[float | None]:
    return [float(np.mean(b)) if b else None for b in buckets]


def _fed_mmp(ds, name: str, t: int, frame: torch.Tensor, prior_source: str) -> torch.Tensor | None:
    """The map MMAM gets for frame t: None (MMP-Net's own), the stored MMP clipped to [0, 1], or zeros."""
    if prior_source == "net":
        return None
    if prior_source == "zero":
        return frame.new_zeros(1, 1, *frame.shape[-2:])
    m = np.clip(ds.read(name, "mmp", t).astype(np.float32), 0.0, 1.0)
    return torch.from_numpy(m).to(frame.device)[None, None]


def _gmacs(model, size) -> float:
    """MACs per frame at (W, H), counted on a meta-device copy (no memory, no compute)."""
    import copy

    meta = copy.deepcopy(model).to("meta")
    return count_macs(meta, size) / 1e9


def evaluate_prior(model, data: str | Path, device: torch.device | str = "cpu", progress: bool | None = None,
                   precision: str | None = "fp32") -> dict:
    """Mean L1 of MMP-Net against the stored MMP (clipped to [0, 1]) over every frame of ``data``, and the L1 of
    predicting the data's mean MMP everywhere."""
    device = torch.device(device)
    model, precision = for_inference(model, precision, device)  # fp32 by default: published numbers stay put
    ds = open_data(data)  # checked once; reads name a damaged shard and refuse NaN/inf MMP
    infos = ds.infos
    missing = [s.name for s in infos if not s.has_mmp]
    if missing:
        raise InputError(f"{data}: sequence {missing[0]} has no stored MMP; prior checkpoints are scored on data "
                         "written by mmp synthesize")
    total_frames = sum(s.frames for s in infos)
    seqs, err_sum, pix, mmp_sum, model_seconds = {}, 0.0, 0, 0.0, 0.0
    bar = tqdm(total=2 * total_frames, desc="eval", unit="frame", disable=None if progress is None else not progress)
    with ds, torch.inference_mode():
        context = getattr(model, "context", 0)
        for info in infos:
            e_seq = 0.0
            rows = neighbour_indices(info.frames, context,
                                     ds.read(info.name, "window", slice(None)) if context else None)
            stacks = read_stacks(rows, lambda j: _frame_tensor(ds.read(info.name, "blur", j), device))
            for t, stack in enumerate(stacks):
                target = np.clip(ds.read(info.name, "mmp", t).astype(np.float64), 0.0, 1.0)
                frame = torch.cat(stack, 1)
                start = time.perf_counter()
                pred = model(frame)
                _sync(device)
                model_seconds += time.perf_counter() - start
                e_seq += float(np.abs(pred[0, 0].double().cpu().numpy() - target).sum())
                mmp_sum += float(target.sum())
                bar.update(1)
            n = info.frames * info.height * info.width
            seqs[info.name] = {"l1": e_seq / n, "frames": info.frames}
            err_sum += e_seq
            pix += n
        mean_mmp = mmp_sum / pix
        base_sum = 0.0
        for info in infos:
            b_seq = 0.0
            for t in range(info.frames):
                b_seq += float(np.abs(np.clip(ds.read(info.name, "mmp", t).astype(np.float64), 0.0, 1.0)
                                      - mean_mmp).sum())
                bar.update(1)
            seqs[info.name]["l1_mean_baseline"] = b_seq / (info.frames * info.height * info.width)
            base_sum += b_seq
    bar.close()
    l1, base = err_sum / pix, base_sum / pix
    w, h = infos[0].width, infos[0].height
    return {"kind": "prior", "data": str(data), "l1": l1, "l1_mean_baseline": base, "mean_mmp": mean_mmp,
            "l1_reduction": (1.0 - l1 / base) if base > 0 else None, "frames": total_frames, "sequences": seqs,
            "params": count_parameters(model), "gmacs": _gmacs(model, (w, h)), "size": [w, h],
            "seconds_per_frame": model_seconds / max(total_frames, 1), "device": str(device), "precision": precision}


def evaluate(checkpoint: str | Path, data: str | Path, protocol: str = "paper", save: str | Path | None = None,
             device: str | None = None, progress: bool | None = None, precision: str | None = "fp32",
             prior_source: str = "net", ensemble: int = 1, ends: str | None = None) -> dict:
    """Score ``checkpoint`` (prior or deblurring) on ``data``: the `mmp eval` command."""
    dev = resolve_device(device)
    kind, net, ck = load_any(checkpoint, map_location="cpu")
    if kind == "prior":
        if save is not None:
            log.warning("--save applies to deblurring checkpoints; ignored for a prior")
        if prior_source != "net":
            raise InputError(f"{checkpoint}: --prior-source applies to deblurring checkpoints, this is a prior")
        if ensemble != 1:
            raise InputError(f"{checkpoint}: --self-ensemble applies to deblurring checkpoints, this is a prior")
        if ends is not None:
            raise InputError(f"{checkpoint}: --ends applies to deblurring checkpoints, this is a prior")
        result = evaluate_prior(net, data, dev, progress, precision=precision)
    else:
        result = evaluate_deblur(net, data, protocol, save, dev, progress, precision=precision,
                                 prior_source=prior_source, ensemble=ensemble, ends=ends)
    result["checkpoint"] = str(checkpoint)
    result["step"] = ck.get("step")
    return result
