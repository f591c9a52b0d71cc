"""Training MMP-Net: blurry frame -> motion-magnitude prior, supervised by the stored (ground-truth) MMP.

Loss as in the reference notebook: L1 + 0.5 x L1 between the image gradients of prediction and target (``grad_weight``
0 switches the gradient term off). Adam (lr 3e-4) with step decay: the rate halves at half of the run (the reference
halved it at epoch 200 of 400). Validation: mean L1 over full held-out frames (``val_l1``) next to the L1 of the
mean predictor (``val_mean_l1``: the training set's mean MMP everywhere); best.pt keeps the lowest ``val_l1``.
The settings are :class:`mmpmodel.train_config.PriorTrainConfig`; the loop is :func:`mmpmodel.train_loop.fit`.
Runs alone or under torchrun (see :mod:`mmpmodel.distributed`).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from mmpdata.datasets import PriorClips, read_index, split_sequences
from mmpdata.errors import InputError

from . import distributed as D
from .checkpoint import load_prior
from .mmpnet import MMPNet
from .precision import for_training
from .runs import check_new_or_resume, data_fingerprint, resolve_checkpoint, state_sha256
from .train_config import PriorTrainConfig, defaults, prepare, resume_keys, to_dict
from .train_loop import Task, fit, save_strip, strip_path

log = logging.getLogger(__name__)

__all__ = ["prior_loss", "train_prior", "run_prior", "evenly_spaced", "PriorTask", "STRONG_AUGMENT"]

#: Extra augmentation (see :class:`mmpdata.datasets.PriorClips`; ``--augment strong``): crops shrunk by
#: 0.5-1 with the MMP scaled alike, 90-degree rotations, colour jitter. Meant to stop a few training photographs
#: from teaching MMP-Net to recognise the photograph (and its typical blur) instead of the blur. Not the default
#: yet: on the 300-step sample-footage run it narrowed the gap to the mean-MMP baseline (L1 ratio 1.54 -> 1.04) but
#: did not beat it, and on the textured sample footage it did worse than the reference recipe (0.99 vs 0.93;
#: bench/prior_must_show.py, docs/training.md).
STRONG_AUGMENT = {"scale": (0.5, 1.0), "rotate": True, "photometric": True}
AUGMENTS = {"reference": {}, "strong": STRONG_AUGMENT}


def prior_loss(pred: torch.Tensor, target: torch.Tensor, grad_weight: float = 0.5,
               level_weight: float = 0.0, mse_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """L1 + grad_weight x L1 of the horizontal and vertical forward differences + level_weight x L1 of each
    crop's mean (per-pixel L1 alone lets a network guess the typical level wherever the frame shows no blur)
    + mse_weight x mean squared error (L1 pulls an uncertain estimate to the median and so squeezes heavy blur;
    the square pulls it toward the mean and weighs large misses more)."""
    l1 = F.l1_loss(pred, target)
    total = l1
    if mse_weight:
        mse = F.mse_loss(pred, target)
        total = total + mse_weight * mse
    grad = pred.new_zeros(())
    if grad_weight:
        grad = (F.l1_loss(pred.diff(dim=-1), target.diff(dim=-1)) + F.l1_loss(pred.diff(dim=-2), target.diff(dim=-2)))
        total = total + grad_weight * grad
    if level_weight:
        level = F.l1_loss(pred.mean(dim=(-2, -1)), target.mean(dim=(-2, -1)))
        total = total + level_weight * level
    parts = {"l1": l1.item(), "grad": grad.item()}
    if level_weight:
        parts["level"] = level.item()
    if mse_weight:
        parts["mse"] = mse.item()
    return total, parts


def evenly_spaced(n: int, limit: int | None) -> list[int]:
    """At most ``limit`` indices spread over range(n) (all of them when limit is None or n <= limit)."""
    if limit is None or n <= limit:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, limit)})


@torch.no_grad()
def mean_mmp(dataset, samples: int = 64) -> float:
    """Pixel mean of the MMP over up to ``samples`` evenly spaced items of ``dataset`` (the mean predictor)."""
    total, count = 0.0, 0
    for i in evenly_spaced(len(dataset), samples):
        m = dataset[i]["mmp"]
        total += float(m.sum())
        count += m.numel()
    return total / max(count, 1)


@torch.no_grad()
def init_output_bias(model: MMPNet, mean: float) -> None:
    """Set the last layer's bias so the untrained network predicts ``mean`` (the training data's mean MMP)
    everywhere. The sigmoid starts at 0.5 while typical MMP is around 0.1: without this, the first hundred steps
    only learn that offset."""
    mean = min(max(mean, 1e-3), 1 - 1e-3)
    tail = getattr(model, "tail", None)
    if isinstance(tail, torch.nn.Conv2d) and tail.bias is not None:
        tail.bias.fill_(math.log(mean / (1 - mean)))
    else:
        log.warning("MMP-Net has no 'tail' convolution with a bias; output bias left at its default")


class PriorTask(Task):
    """MMP-Net for :func:`mmpmodel.train_loop.fit`: crops of blurry frames -> MMP maps, L1 (+ gradient L1)."""

    kind, metric, lower_is_better = "prior", "val_l1", True
    autocast = False  # MMP-Net trains in float32 (BatchNorm statistics; small network)

    def __init__(self, cfg: PriorTrainConfig, info: D.DistInfo, resume: bool):
        self.cfg, self.info = cfg, info
        # ---- data: split by sequence; training crops, full validation frames
        self.split = split_sequences(read_index(cfg.data), cfg.val_fraction, cfg.seed)
        self.train_set = PriorClips(cfg.data, self.split.train, patch=cfg.patch, augment=True, seed=cfg.seed,
                                    context=cfg.context, **AUGMENTS[cfg.augment])
        self.val_set = None
        if self.split.val:
            full = PriorClips(cfg.data, self.split.val, patch=None, augment=False, context=cfg.context)
            self.val_set = Subset(full, evenly_spaced(len(full), cfg.val_frames))
        self.has_val = self.val_set is not None
        train_full = PriorClips(cfg.data, self.split.train, patch=None, augment=False)
        self.train_mean = mean_mmp(train_full)
        # ---- model: fresh (output bias at the mean MMP), or from --init-from
        model = MMPNet(width=cfg.width, input_norm=cfg.input_norm, context=cfg.context)
        self.init_sha256 = None
        if cfg.init_from and not resume:
            path = resolve_checkpoint(cfg.init_from, "--init-from checkpoint", kind="prior")
            net, _ = load_prior(path)
            if net.input_norm != cfg.input_norm:
                raise InputError(f"{path}: this MMP-Net was trained with input_norm {net.input_norm!r}, the run asks "
                                 f"for {cfg.input_norm!r}; pass --input-norm {net.input_norm} to fine-tune it")
            if net.context != cfg.context:
                raise InputError(f"{path}: this MMP-Net sees {net.context} neighbouring frame(s) on each side, the "
                                 f"run asks for {cfg.context}; pass --context {net.context} to fine-tune it")
            model.load_state_dict(net.state_dict())
            self.init_sha256 = state_sha256(net.state_dict())
            log.info("MMP-Net initialised from %s", path)
        elif not resume:
            init_output_bias(model, self.train_mean)
            log.info("output bias set for a mean MMP of %.4f", self.train_mean)
        model = for_training(model, info.device)
        if info.distributed and info.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        self._shown: list = []

    def forward(self, net, batch, device):
        return net(batch["blur"].to(device, non_blocking=True))

    def loss(self, output, batch, device):
        return prior_loss(output.float(), batch["mmp"].to(device, non_blocking=True), self.cfg.grad_weight,
                          self.cfg.level_weight, self.cfg.mse_weight)

    @torch.no_grad()
    def validate(self) -> dict:
        """val_l1 (MMP-Net) and val_mean_l1 (the training set's mean MMP as a constant map), per pixel."""
        self.model.eval()
        total = base = 0.0
        count = 0
        self._shown = []
        for i in range(len(self.val_set)):
            item = self.val_set[i]
            pred = self.model(item["blur"][None].to(self.info.device))[0].float().cpu()
            total += float((pred - item["mmp"]).abs().sum())
            base += float((item["mmp"] - self.train_mean).abs().sum())
            count += item["mmp"].numel()
            if len(self._shown) < max(self.cfg.val_images, 0):
                self._shown.append((item["blur"][3 * self.cfg.context:3 * self.cfg.context + 3], pred[0],
                                    item["mmp"][0]))
        self.model.train()
        return {"val_l1": total / max(count, 1), "val_mean_l1": base / max(count, 1)}

    def write_strips(self, folder, step, count):
        """blurry | MMP-Net | ground truth (jet heat maps over the frame) per shown validation frame."""
        from .metrics import tensor_to_uint8
        from .visualize import heat_overlay

        for i, (blur, pred, truth) in enumerate(self._shown[:count]):
            frame = tensor_to_uint8(blur)
            save_strip(strip_path(folder, step, i), [frame, heat_overlay(frame, pred.numpy()),
                                                     heat_overlay(frame, truth.numpy())])


def run_prior(cfg: PriorTrainConfig, out: str | Path, *, resume: bool = False, hook=None,
              progress: bool | None = None, recipe: str | None = None) -> dict:
    """Train MMP-Net as ``cfg`` says into the run folder ``out``; returns a summary dict (with the model)."""
    if cfg.data is None:
        raise InputError("no training data: pass --data X.h5 (mmp-h5 with MMP, from mmp synthesize)")
    out = Path(out)
    info = D.setup(cfg.device)
    torch.manual_seed(cfg.seed)
    task = PriorTask(cfg, info, resume)
    run_config = {**to_dict(cfg), "data": str(Path(cfg.data).resolve()), "data_id": data_fingerprint(cfg.data),
                  "recipe": recipe, "world_size": info.world_size}
    if task.init_sha256:
        run_config["init_from_sha256"] = task.init_sha256
    if info.is_main:
        check_new_or_resume(out, run_config, resume, resume_keys(PriorTrainConfig) + ("data_id",),
                            defaults(PriorTrainConfig))
    summary = fit(task, cfg, run_config, out, info, resume=resume, hook=hook, progress=progress)
    summary.update({"train_sequences": sorted({r.sequence for r in task.split.train}),
                    "val_sequences": sorted({r.sequence for r in task.split.val}), "model": task.model})
    D.cleanup(info)
    return summary


def train_prior(data: str | Path | None = None, out: str | Path | None = None, *, recipe: str | None = None,
                config_file: str | Path | None = None, resume: bool = False, hook=None, progress: bool | None = None,
                augment: dict | str | None = None, **settings) -> dict:
    """Train MMP-Net on ``data`` (mmp-h5 with MMP) into the folder ``out``; returns a summary dict.

    ``settings``: any :class:`~mmpmodel.train_config.PriorTrainConfig` field (steps, epochs, batch_size, patch, lr,
    schedule, ...), over ``recipe`` and ``config_file`` (or, with ``resume``, the run's own config.json). ``steps``
    or ``epochs`` sets the length (default: the reference's 400 epochs); ``batch_size`` is per process.
    ``hook(step, model)`` runs after every optimisation step (for tests and notebooks). ``augment``: "reference",
    "strong" (or :data:`STRONG_AUGMENT`)."""
    if out is None:
        raise InputError("no run folder: pass --out RUN")
    if augment is not None:
        settings["augment"] = augment if isinstance(augment, str) else ("strong" if augment else "reference")
    explicit = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items() if v is not None}
    if data is not None:
        explicit["data"] = str(data)
    cfg = prepare("prior", out, recipe=recipe, config_file=config_file, resume=resume, explicit=explicit)
    return run_prior(cfg, out, resume=resume, hook=hook, progress=progress, recipe=recipe)
