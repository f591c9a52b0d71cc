"""Model cost: parameters, MACs per output frame in steady state, and measured seconds per frame.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (no memory, no compute,
instant even at 720p): MACs = FLOPs / 2. Only convolutions (and any matrix products) count; bias adds,
BatchNorm, activations and bilinear upsampling are not multiply-accumulates of a layer and are left out (the paper
used an old ``thop`` that counted some of them, hence its slightly larger figures; see docs/models.md).

Steady state for MMP-RNN means what streaming costs per frame once the pipeline is full: one prior pass (when the
network uses the prior), one encoder + recurrent cell pass, and one reconstruction.
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mmpdata.errors import InputError

from .blocks import pad_to_multiple
from .mmpnet import MMPNet
from .mmprnn import RADIUS, SIZE_MULTIPLE, MMPRNN, default_device
from .presets import parse_preset

log = logging.getLogger(__name__)


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720) = (W, H); InputError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise InputError(f"bad frame size {text!r}: write WIDTHxHEIGHT, e.g. 1280x720")
    return int(match.group(1)), int(match.group(2))


def build_model(name: str) -> nn.Module:
    """'mmpnet' -> MMPNet(); a preset name -> MMPRNN with a fresh prior; a checkpoint file -> its architecture
    (untrained; e.g. an imported GOPRO model with its fusion attention). InputError for anything else."""
    if name.strip().lower() == "mmpnet":
        return MMPNet()
    if Path(name).is_file():
        from .checkpoint import load_checkpoint
        from .presets import MMPRNNConfig

        with torch.device("cpu"):  # the weights are read only for the config, even under a meta-device context
            ck = load_checkpoint(name)
        if ck["kind"] == "prior":
            return MMPNet.from_config(ck["config"], name)
        cfg = MMPRNNConfig.from_dict(ck["config"]["model"])
        prior = MMPNet.from_config(ck["config"].get("prior_config", {}), name) if cfg.prior else None
        return MMPRNN(cfg, prior)
    return MMPRNN(parse_preset(name))


def count_parameters(model: nn.Module) -> int:
    """All parameters, the frozen prior included (it is part of what runs at inference)."""
    return sum(p.numel() for p in model.parameters())


def _one_frame(model: nn.Module, frame: torch.Tensor) -> torch.Tensor:
    """The work per output frame in steady state."""
    if isinstance(model, MMPNet):
        return model(frame.repeat(1, model.frames_seen, 1, 1))  # the frame and its neighbours
    padded, _ = pad_to_multiple(frame, SIZE_MULTIPLE)
    f_t, _ = model.step(model.encode(padded), None)
    return model.reconstruct([f_t] * (2 * RADIUS + 1), padded)


def count_macs(model: nn.Module, size: tuple[int, int]) -> int:
    """MACs of one steady-state output frame of W x H (`size` = (W, H)); run the model on the meta device."""
    w, h = size
    frame = torch.zeros(1, 3, h, w, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        _one_frame(model, frame)
    return counter.get_total_flops() // 2


def profile_model(name: str, size: tuple[int, int] = (1280, 720)) -> dict:
    """{'params': int, 'gmacs': float} of 'mmpnet' or a preset at W x H, counted on the meta device."""
    with torch.device("meta"):
        model = build_model(name)
    model.eval()
    return {"params": count_parameters(model), "gmacs": count_macs(model, size) / 1e9}


def time_model(name: str, size: tuple[int, int] = (1280, 720), device: str | torch.device | None = None,
               warmup: int = 3, repeats: int = 10, precision: str | None = "fp32", tile: int | None = None,
               overlap: int | None = None) -> float:
    """Measured seconds per output frame (random weights, no autograd) on `device` (default: CUDA if available,
    else CPU), run as ``mmp deblur`` runs it: at ``precision`` (see mmpmodel.precision; 'auto' for what deblur
    uses), frames laid out as decoded from HWC arrays, optionally in tiles. The first `warmup` frames (kernel
    selection, allocator, filling the 5-frame window) are not timed; MMP-RNN is timed streaming, one pushed frame
    -> one output frame."""
    from .precision import for_inference
    from .tiling import TiledStepper, check_tiling

    try:
        device = torch.device(device) if device is not None else default_device()
    except RuntimeError:
        raise InputError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda asked for, but no CUDA GPU is available here: use --device cpu")
    check_tiling(tile, overlap)
    w, h = size
    model, precision = for_inference(build_model(name), precision, device)
    # Decoded frames are (H, W, 3) arrays seen as (3, H, W): the network gets them in that (channels-last) layout.
    frames = torch.rand(warmup + repeats, 1, h, w, 3, device=device).permute(0, 1, 4, 2, 3)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.inference_mode():
        if isinstance(model, MMPNet):
            run = model
        else:
            stepper = TiledStepper(model, tile, overlap) if tile else model.stepper()
            run = stepper.push
            # Fill the window so every timed push emits one frame.
            for _ in range(RADIUS):
                run(frames[0])
        for i in range(warmup):
            run(frames[i])
        sync()
        start = time.perf_counter()
        for i in range(warmup, warmup + repeats):
            run(frames[i])
        sync()
        elapsed = time.perf_counter() - start
    seconds = elapsed / repeats
    log.info("%s at %dx%d on %s, %s: %.4f s/frame", name, w, h, device, precision, seconds)
    return seconds
