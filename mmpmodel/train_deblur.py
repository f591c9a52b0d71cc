"""Training MMP-RNN on clips of F blurry frames with their sharp targets, guided by a frozen MMP-Net.

As in the paper: loss = Charbonnier + 0.5 x gradient + 1.0 x motion-magnitude (``mm_loss=False`` drops the last),
Adam lr 5e-4 with cosine annealing to 1e-8 over the run, gradient-norm clipping at 20, and supervision only on the
frames with 2 past and 2 future neighbours inside the clip (the network's forward returns exactly those).
Validation PSNR on held-out sequences (full frames, uint8 rounded); best.pt keeps the highest. Mixed precision
(fp16 autocast + gradient scaling) on CUDA. Ablations: the network switches (no MMAM, no l state, no prior) and
``prior_source="gt"``, which feeds the stored ground-truth MMP instead of MMP-Net's estimate (Table 5's bound).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from mmpdata.datasets import VideoClips, read_index, split_sequences
from mmpdata.errors import InputError

from . import distributed as D
from .checkpoint import load_checkpoint, load_prior, rng_state, save_checkpoint, set_rng_state
from .losses import DeblurLoss
from .metrics import psnr, tensor_to_uint8
from .mmprnn import MMPRNN, RADIUS
from .presets import parse_preset
from .runs import (RunDir, check_finite, check_new_or_resume, checkpoint_round, report_loss,
                   resumed_batches)
from .train_prior import evenly_spaced

log = logging.getLogger(__name__)

__all__ = ["train_deblur", "build_config"]

RESUME_KEYS = ("data", "preset", "steps", "epochs", "batch_size", "patch", "lr", "seed", "mm_loss", "prior_source",
               "val_fraction")
PRIOR_SOURCES = ("net", "gt")


def build_config(preset: str, frames: int | None = None, mmam: bool = True, l_state: bool = True,
                 prior: bool = True):
    """Preset name + command-line switches -> MMPRNNConfig (switches only ever turn parts off)."""
    cfg = parse_preset(preset)
    changes = {}
    if frames is not None:
        changes["frames"] = frames
    if not mmam:
        changes["mmam"] = False
    if not l_state:
        changes["l_state"] = False
    if not prior:
        changes["prior"] = False
        changes["mmam"] = False
    return dataclasses.replace(cfg, **changes) if changes else cfg


@torch.no_grad()
def validate_deblur(model: MMPRNN, dataset, device: torch.device, with_mmp: bool) -> float:
    """Mean PSNR over the supervised frames of the validation clips (uint8, rounded)."""
    model.eval()
    scores = []
    for i in range(len(dataset)):
        item = dataset[i]
        mmp = item["mmp"][None].to(device) if with_mmp else None
        out = model(item["blur"][None].to(device), mmp)[0]
        target = item["sharp"][RADIUS:item["sharp"].shape[0] - RADIUS]
        for o, s in zip(tensor_to_uint8(out), tensor_to_uint8(target)):
            scores.append(psnr(o, s))
    model.train()
    return float(np.mean(scores))


def train_deblur(data: str | Path, out: str | Path, *, preset: str, prior: str | Path | None = None,
                 steps: int | None = None, epochs: int | None = None, frames: int | None = None,
                 batch_size: int = 8, patch: int = 256, lr: float = 5e-4, seed: int = 0, device: str | None = None,
                 resume: bool = False, mm_loss: bool = True, mmam: bool = True, l_state: bool = True,
                 use_prior: bool = True, prior_source: str = "net", workers: int | None = None,
                 val_fraction: float = 0.1, val_clips: int = 8, val_every: int | None = None, log_every: int = 10,
                 grad_clip: float = 20.0, progress: bool | None = None, hook=None) -> dict:
    """Train MMP-RNN ``preset`` on ``data`` with the frozen MMP-Net from checkpoint ``prior``; returns a summary."""
    if steps is not None and epochs is not None:
        raise InputError("give --steps or --epochs, not both")
    if steps is None and epochs is None:
        epochs = 1000
    if prior_source not in PRIOR_SOURCES:
        raise InputError(f"unknown --prior-source {prior_source!r}; use net or gt")
    cfg = build_config(preset, frames, mmam, l_state, use_prior)
    if prior_source == "gt" and not cfg.mmam:
        raise InputError("--prior-source gt feeds stored MMP to MMAM; it cannot be combined with --no-mmam/--no-prior")
    needs_prior = cfg.prior or mm_loss
    if needs_prior and prior is None:
        raise InputError("--prior PRIOR.pt is needed (MMP-Net from mmp train-prior); "
                         "or pass --no-prior --no-mm-loss to train without one")
    out = Path(out)
    info = D.setup(device)
    torch.manual_seed(seed)
    prior_net = None
    if needs_prior:
        prior_net, _ = load_prior(prior)
        prior_net.requires_grad_(False)
    config = {"kind": "deblur", "data": str(Path(data).resolve()), "preset": cfg.name, "model": cfg.to_dict(),
              "prior": None if prior is None else str(Path(prior).resolve()),
              "prior_config": prior_net.config_dict() if prior_net is not None else {"width": 16},
              "steps": steps, "epochs": epochs, "batch_size": batch_size, "patch": patch, "lr": lr, "seed": seed,
              "mm_loss": mm_loss, "prior_source": prior_source, "val_fraction": val_fraction,
              "grad_clip": grad_clip, "world_size": info.world_size}
    if info.is_main:
        check_new_or_resume(out, config, resume, RESUME_KEYS)

    # ---- data
    with_mmp = prior_source == "gt"
    split = split_sequences(read_index(data), val_fraction, seed, min_frames=cfg.frames)
    train_set = VideoClips(data, split.train, cfg.frames, patch=patch, augment=True, seed=seed, with_mmp=with_mmp)
    val_set = None
    if split.val:
        full = VideoClips(data, split.val, cfg.frames, patch=None, augment=False, with_mmp=with_mmp)
        val_set = Subset(full, evenly_spaced(len(full), val_clips))
    sampler = D.ResumableSampler(train_set, info, seed)
    steps_per_epoch = len(sampler) // batch_size
    if steps_per_epoch == 0:
        raise InputError(f"{data}: {len(train_set)} training clips of {cfg.frames} frames give no full batch of "
                         f"{batch_size} per process; lower --batch-size or --frames")
    total = steps if steps is not None else epochs * steps_per_epoch
    workers = (0 if info.device.type == "cpu" else 4) if workers is None else workers
    loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
                        pin_memory=info.device.type == "cuda")
    val_every = val_every or max(1, min(steps_per_epoch, 1000, total))

    # ---- model (prior frozen inside), loss, optimiser, schedule, AMP
    model = MMPRNN(cfg, prior_net if cfg.prior else None).to(info.device)
    loss_prior = prior_net.to(info.device) if (mm_loss and prior_net is not None) else None
    criterion = DeblurLoss(loss_prior, lambda1=0.5, lambda2=1.0 if mm_loss else 0.0)
    params = model.trainable_parameters()
    optimizer = torch.optim.Adam(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total), eta_min=1e-8)
    amp = info.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    step, best = 0, -math.inf
    if resume:
        ck = load_checkpoint(out / "last.pt", kind="deblur", map_location=info.device)
        model.load_deblur_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        if "scaler" in ck:
            scaler.load_state_dict(ck["scaler"])
        set_rng_state(ck["rng"])
        step, best = ck["step"], ck["metrics"].get("best_val_psnr", -math.inf)
        log.info("resuming %s at step %d of %d", out, step, total)
    ddp = DDP(model) if info.distributed else model
    run = None
    if info.is_main:
        run = RunDir(out, config)

    def save(name: str, metrics: dict) -> None:
        save_checkpoint(out / name, kind="deblur", config=config, model=model.deblur_state_dict(),
                        prior=None if model.prior is None else model.prior.state_dict(), step=step, metrics=metrics,
                        optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                        scaler=scaler.state_dict() if amp else None, rng=rng_state())

    # ---- the loop
    model.train()
    bar = tqdm(total=total, initial=step, desc="train-deblur", unit="step",
               disable=(not info.is_main) or (None if progress is None else not progress))
    t0, last_val = time.time(), None
    try:
        for epoch, batch in resumed_batches(loader, sampler, train_set, step, total, steps_per_epoch,
                                           batch_size):
            blur = batch["blur"].to(info.device, non_blocking=True)
            sharp = batch["sharp"].to(info.device, non_blocking=True)
            mmp = batch["mmp"].to(info.device, non_blocking=True) if with_mmp else None
            with torch.autocast("cuda", dtype=torch.float16) if amp else nullcontext():
                pred = ddp(blur, mmp)
            loss, parts = criterion(pred.float(), sharp[:, RADIUS:sharp.shape[1] - RADIUS])
            check_finite(loss, step, out, info)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            bar.update(1)
            if hook is not None:
                hook(step, model)
            if step % log_every == 0 or step == total:
                report_loss(run, bar, step, epoch, loss, info, grad_norm=float(grad_norm),
                            lr=scheduler.get_last_lr()[0], **parts)
            if step % val_every == 0 or step == total:
                if info.is_main:
                    best, last_val = checkpoint_round(
                        run, step, loss.item(), "val_psnr", best, lower_is_better=False, save=save,
                        validate=None if val_set is None
                        else lambda: validate_deblur(model, val_set, info.device, with_mmp))
                D.barrier(info)
    except KeyboardInterrupt:
        if info.is_main:
            save("last.pt", {"best_val_psnr": best, "interrupted": True})
            log.warning("interrupted at step %d: %s written; continue with --resume", step, out / "last.pt")
        raise
    finally:
        bar.close()
        if run:
            run.close()
    summary = {"out": str(out), "steps": step, "preset": cfg.name, "val_psnr": last_val,
               "best_val_psnr": None if best == -math.inf else best, "seconds": round(time.time() - t0, 2),
               "train_sequences": sorted({r.sequence for r in split.train}),
               "val_sequences": sorted({r.sequence for r in split.val}), "model": model}
    D.cleanup(info)
    return summary
