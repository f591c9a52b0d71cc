"""Training MMP-RNN on clips of F blurry frames with their sharp targets, guided by a frozen MMP-Net.

As in the paper: loss = Charbonnier + 0.5 x gradient + 1.0 x motion-magnitude (weights ``char_weight``,
``grad_weight`` = lambda1, ``mm_weight`` = lambda2), Adam lr 5e-4 with cosine annealing to 1e-8 over the run,
gradient-norm clipping at 20, and supervision only on the frames with 2 past and 2 future neighbours inside the clip
(the network's forward returns exactly those). Clips are true video: consecutive non-overlapping windows (on data
whose windows overlap, every k-th window; see :func:`window_step`). Validation PSNR on held-out sequences (full
frames, uint8 rounded; ``val_psnr``) next to the blurry input's (``val_input_psnr``); best.pt keeps the highest.
Mixed precision (fp16 autocast + gradient scaling) on CUDA. Ablations: the network switches (no MMAM, no l state, no
prior) and ``prior_source="gt"``, which feeds the stored ground-truth MMP instead of MMP-Net's estimate (Table 5's
bound). The settings are :class:`mmpmodel.train_config.DeblurTrainConfig`; the loop is
:func:`mmpmodel.train_loop.fit`.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from mmpdata.datasets import VideoClips, open_data, read_index, split_sequences
from mmpdata.errors import FormatError, InputError, SettingsMismatch

from . import distributed as D
from .checkpoint import load_checkpoint, load_deblur, load_prior
from .ensemble import check_ensemble, ensemble_average
from .losses import charbonnier, gradient_loss, motion_magnitude_loss, psnr_loss
from .metrics import psnr, tensor_to_uint8
from .mmpnet import MMPNet
from .mmprnn import MMPRNN, RADIUS, check_single_frame_prior
from .grow import can_grow, grow_state_dict
from .precision import for_training
from .presets import MMPRNNConfig, parse_preset
from .runs import check_new_or_resume, data_fingerprint, resolve_checkpoint, state_sha256
from .train_config import DeblurTrainConfig, defaults, prepare, resume_keys, to_dict
from .train_loop import Task, fit, save_strip, strip_path
from .train_prior import evenly_spaced
from .weights import registry

log = logging.getLogger(__name__)

__all__ = ["train_deblur", "run_deblur", "build_config", "window_step", "DeblurTask", "deblur_loss"]

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


def window_step(data: str | Path) -> int:
    """How many stored windows apart the frames of a training clip must be for the clip to be true video
    (consecutive, non-overlapping exposure windows): 1 for data written with non-overlapping windows (the default
    stride) or imported benchmarks; k = ceil(longest window / stride) for data synthesized with a smaller stride
    (e.g. ``--stride 1`` prior data), checked against every sequence's ``window`` table. InputError naming the file
    and the fix when no such k exists."""
    with open_data(data) as ds:  # the one checked reader: a damaged shard is one line naming it
        stride = int(ds.attrs.get("stride", 0) or 0)
        frames = np.atleast_1d(np.asarray(ds.attrs.get("frames", [0]))).astype(int)
        longest = int(frames.max()) if frames.size else 0
        tables = {i.name: ds.read(i.name, "window", slice(None)) for i in ds.infos if i.has_mmp}
    if not tables:
        return 1  # imported benchmark: each stored frame is one video frame
    k = 1 if stride <= 0 or longest <= stride else math.ceil(longest / stride)
    for name, w in tables.items():
        if len(w) > k and not np.all(w[k:, 0] > w[:-k, 1]):
            raise InputError(f"{data}: the windows of sequence {name!r} overlap at every step of {k} (stride {stride}, "
                             f"windows of up to {longest} frames); synthesize the deblurring data with the default "
                             "stride (non-overlapping windows) for true video clips")
    if k > 1:
        log.info("%s: windows overlap (stride %d < %d frames): training clips take every %d-th window, so "
                 "consecutive clip frames are non-overlapping exposures (synthesize with the default stride to use "
                 "every window)", data, stride, longest, k)
    return k


def deblur_loss(out: torch.Tensor, target: torch.Tensor, prior: torch.nn.Module | None, cfg: DeblurTrainConfig,
                teacher: torch.Tensor | None = None):
    """char_weight x Charbonnier + grad_weight x gradient (lambda1) + mm_weight x motion magnitude (lambda2)
    + mse_weight x mean squared error + psnr_weight x minus the mean per-frame PSNR (both off by default)
    + teacher_weight x Charbonnier to ``teacher`` (the teacher's output for the same frames, when distilling)."""
    char = charbonnier(out, target)
    grad = gradient_loss(out, target, cfg.grad_form)
    total = cfg.char_weight * char + cfg.grad_weight * grad
    mm = out.new_zeros(())
    if prior is not None and cfg.mm_weight:
        mm = motion_magnitude_loss(prior, out)
        total = total + cfg.mm_weight * mm
    parts = {"char": char.item(), "grad": grad.item(), "mm": mm.item()}
    if cfg.mse_weight:
        mse = F.mse_loss(out, target)
        total = total + cfg.mse_weight * mse
        parts["mse"] = mse.item()
    if cfg.psnr_weight:
        neg_psnr = psnr_loss(out, target)
        total = total + cfg.psnr_weight * neg_psnr
        parts["neg_psnr"] = neg_psnr.item()
    if teacher is not None:
        taught = charbonnier(out, teacher)
        total = total + cfg.teacher_weight * taught
        parts["teacher"] = taught.item()
    return total, parts


class DeblurTask(Task):
    """MMP-RNN for :func:`mmpmodel.train_loop.fit`: clips -> the supervised centre frames."""

    kind, metric, lower_is_better = "deblur", "val_psnr", False

    def __init__(self, cfg: DeblurTrainConfig, info: D.DistInfo, resume: bool, out: Path, explicit_prior: bool):
        self.cfg, self.info = cfg, info
        if cfg.preset is None:
            raise InputError("no architecture: pass --preset such as A7B8C16F8 (or a --recipe that sets one, or "
                             "--init-from a deblurring checkpoint)")
        if cfg.prior_source not in PRIOR_SOURCES:
            raise InputError(f"unknown --prior-source {cfg.prior_source!r}; use net or gt")
        arch = build_config(cfg.preset, cfg.frames, cfg.mmam, cfg.l_state, cfg.use_prior)
        if cfg.prior_source == "gt" and not arch.mmam:
            raise InputError("--prior-source gt feeds stored MMP to MMAM; it cannot be combined with "
                             "--no-mmam/--no-prior")
        self.arch = arch
        # ---- the frozen prior: --prior, else the one inside --init-from, else (resume) the one in last.pt
        self.prior_net, self.prior_sha256 = None, None
        if arch.prior or cfg.mm_weight:
            self.prior_net = self._load_prior(cfg, resume, out, explicit_prior)
            self.prior_net.requires_grad_(False)
            self.prior_sha256 = state_sha256(self.prior_net.state_dict())
        # ---- data: true video clips (non-overlapping windows), split by sequence
        self.with_mmp = cfg.prior_source == "gt"
        step = window_step(cfg.data)
        self.split = split_sequences(read_index(cfg.data), cfg.val_fraction, cfg.seed,
                                     min_frames=(arch.frames - 1) * step + 1)
        self.train_set = VideoClips(cfg.data, self.split.train, arch.frames, patch=cfg.patch, augment=True,
                                    seed=cfg.seed, with_mmp=self.with_mmp, window_step=step,
                                    still_share=cfg.still_clips, time_flip=cfg.time_flip)
        self.val_set = None
        if self.split.val:
            full = VideoClips(cfg.data, self.split.val, arch.frames, patch=None, augment=False,
                              with_mmp=self.with_mmp, window_step=step)
            self.val_set = Subset(full, evenly_spaced(len(full), cfg.val_clips))
        self.has_val = self.val_set is not None and len(self.val_set) > 0
        self.window_step = step
        # ---- model (prior frozen inside), optionally from --init-from
        model = MMPRNN(arch, self.prior_net if arch.prior else None)
        self.init_sha256 = None
        if cfg.init_from and not resume:
            path = resolve_checkpoint(cfg.init_from, "--init-from checkpoint", kind="deblur")
            ck = load_checkpoint(path, kind="deblur")
            start = MMPRNNConfig.from_dict(ck["config"]["model"]) if "model" in ck["config"] else None
            try:
                if start is not None and can_grow(start, arch):  # a deeper preset: the added RDBs start as identity
                    model.load_deblur_state_dict(grow_state_dict(ck["model"], start, arch, model.deblur_state_dict()))
                else:
                    model.load_deblur_state_dict(ck["model"])
            except FormatError as exc:
                raise FormatError(f"{path}: does not fit preset {arch.name} ({exc}); pass the preset it was trained "
                                  f"with ({ck['config'].get('preset')}) or a deeper one (more A or B)") from None
            self.init_sha256 = state_sha256(ck["model"])
            log.info("MMP-RNN initialised from %s (step %s)", path, ck.get("step"))
        elif not resume and model.mmam is not None and cfg.mmam_gain != 1.0:  # a fresh start (resume loads last.pt)
            with torch.no_grad():
                model.mmam.gamma[0].weight.mul_(cfg.mmam_gain)
        self.model = for_training(model, info.device)
        self.teacher, self.teacher_sha256 = self._load_teacher(cfg, info.device)
        with_loss_prior = cfg.mm_weight and self.prior_net is not None
        self.loss_prior = for_training(self.prior_net, info.device) if with_loss_prior else None
        self._input_psnr = None
        self._shown: list = []

    @staticmethod
    def _load_teacher(cfg: DeblurTrainConfig, device):
        """(frozen teacher MMP-RNN, sha256 of its weights), or (None, None) without --teacher."""
        if cfg.teacher is None:
            return None, None
        check_ensemble(cfg.teacher_ensemble)
        path = resolve_checkpoint(cfg.teacher, "--teacher checkpoint", kind="deblur")
        teacher, ck = load_deblur(path)
        teacher.requires_grad_(False)
        log.info("distilling from %s (%d-pass self-ensemble, weight %g)", path, cfg.teacher_ensemble,
                 cfg.teacher_weight)
        return for_training(teacher, device).eval(), state_sha256(ck["model"])

    @torch.no_grad()
    def _teach(self, blur: torch.Tensor, mmp: torch.Tensor | None) -> torch.Tensor:
        """The teacher's self-ensemble output for the frames :meth:`_run` scores: each pass sees the clip mirrored
        or transposed (every frame alike), its output is turned back, and the passes are averaged."""
        return ensemble_average(lambda b, m: self._run(self.teacher, b, m), self.cfg.teacher_ensemble, blur, mmp)

    def _load_prior(self, cfg, resume, out, explicit_prior) -> MMPNet:
        if cfg.prior is not None:
            path = Path(cfg.prior)
            if resume and not explicit_prior and not path.is_file() and (out / "last.pt").is_file():
                # a registered name may since point at newer weights: the run resumes with the prior it trained with
                why = ("names registered weights, which may have changed since" if str(cfg.prior) in registry()
                       else "is gone")
                log.info("the run's prior %s %s; using the copy inside %s", cfg.prior, why, out / "last.pt")
                return load_prior(out / "last.pt")[0]
            path = resolve_checkpoint(cfg.prior, "--prior checkpoint", kind="prior")
            net = load_prior(path)[0]
            if net.context:  # said here, where the file's name and the bundled alternative are known
                single = [n for n, e in registry().items() if e.kind == "prior" and e.architecture == "mmpnet"]
                check_single_frame_prior(net, str(cfg.prior), f" ({', '.join(single)} is bundled)" if single else "")
            return net
        if cfg.init_from and not resume:
            path = resolve_checkpoint(cfg.init_from, "--init-from checkpoint")
            try:
                net = load_prior(path)[0]
            except FormatError:
                net = None
            if net is not None:
                log.info("prior: the MMP-Net inside %s", path)
                return net
        if resume and (out / "last.pt").is_file():
            try:
                return load_prior(out / "last.pt")[0]
            except FormatError:
                pass
        raise InputError("--prior PRIOR.pt is needed (MMP-Net from mmp train-prior); "
                         "or pass --no-prior --no-mm-loss to train without one")

    def param_groups(self) -> list[dict]:
        skip = set(id(p) for p in self.model.skip.parameters())
        params = self.model.trainable_parameters()
        rest = [p for p in params if id(p) not in skip]
        own = [p for p in params if id(p) in skip]
        if self.cfg.skip_lr_scale == 1.0:
            return [{"params": rest + own, "lr_scale": 1.0}]
        return [{"params": rest, "lr_scale": 1.0}, {"params": own, "lr_scale": self.cfg.skip_lr_scale}]

    def _run(self, net, blur: torch.Tensor, mmp: torch.Tensor | None) -> torch.Tensor:
        """The scored frames of a clip: those with real neighbours (ends: skip), or all of them."""
        if self.cfg.ends == "skip":
            return net(blur, mmp)
        model = net.module if hasattr(net, "module") else net  # DDP: forward_all on the wrapped network
        return model.forward_all(blur, mmp, ends=self.cfg.ends)

    def _scored(self, frames: torch.Tensor) -> torch.Tensor:
        """The targets (or inputs) of the frames :meth:`_run` outputs."""
        return frames[:, RADIUS:frames.shape[1] - RADIUS] if self.cfg.ends == "skip" else frames

    def forward(self, net, batch, device):
        """The network's output, or (output, the teacher's) when distilling."""
        mmp = batch["mmp"].to(device, non_blocking=True) if self.with_mmp else None
        blur = batch["blur"].to(device, non_blocking=True)
        out = self._run(net, blur, mmp)
        return out if self.teacher is None else (out, self._teach(blur, mmp))

    def loss(self, output, batch, device):
        output, teacher = output if isinstance(output, tuple) else (output, None)
        sharp = batch["sharp"].to(device, non_blocking=True)
        return deblur_loss(output.float(), self._scored(sharp), self.loss_prior, self.cfg, teacher)

    def model_state(self) -> dict:
        return self.model.deblur_state_dict()

    def load_model_state(self, state: dict) -> None:
        self.model.load_deblur_state_dict(state)

    def checkpoint_extra(self) -> dict:
        return {"prior": None if self.model.prior is None else self.model.prior.state_dict()}

    @torch.no_grad()
    def validate(self) -> dict:
        """val_psnr (the network) and val_input_psnr (the blurry input) over the supervised frames, uint8."""
        self.model.eval()
        scores, inputs = [], []
        self._shown = []
        for i in range(len(self.val_set)):
            item = self.val_set[i]
            mmp = item["mmp"][None].to(self.info.device) if self.with_mmp else None
            out = tensor_to_uint8(self._run(self.model, item["blur"][None].to(self.info.device), mmp)[0].float().cpu())
            target = tensor_to_uint8(self._scored(item["sharp"][None])[0])
            blurry = tensor_to_uint8(self._scored(item["blur"][None])[0])
            scores += [psnr(o, s) for o, s in zip(out, target)]
            if self._input_psnr is None:
                inputs += [psnr(b, s) for b, s in zip(blurry, target)]
            if len(self._shown) < max(self.cfg.val_images, 0):
                mid = len(out) // 2
                self._shown.append((blurry[mid], out[mid], target[mid]))
        if self._input_psnr is None:
            self._input_psnr = float(np.mean(inputs))
        self.model.train()
        return {"val_psnr": float(np.mean(scores)), "val_input_psnr": self._input_psnr}

    def write_strips(self, folder, step, count):
        """blurry | output | sharp for the middle supervised frame of each shown validation clip."""
        for i, panels in enumerate(self._shown[:count]):
            save_strip(strip_path(folder, step, i), list(panels))


def run_deblur(cfg: DeblurTrainConfig, out: str | Path, *, resume: bool = False, hook=None,
               progress: bool | None = None, recipe: str | None = None, explicit_prior: bool = True) -> dict:
    """Train MMP-RNN as ``cfg`` says into the run folder ``out``; returns a summary dict (with the model)."""
    if cfg.data is None:
        raise InputError("no training data: pass --data X.h5 (mmp-h5, synthesized or imported)")
    out = Path(out)
    if cfg.preset is None and cfg.init_from and not resume:  # fine-tuning: the architecture of the start weights
        ck = load_checkpoint(resolve_checkpoint(cfg.init_from, "--init-from checkpoint", kind="deblur"), kind="deblur")
        cfg = dataclasses.replace(cfg, preset=ck["config"].get("preset"))
    info = D.setup(cfg.device)
    torch.manual_seed(cfg.seed)
    task = DeblurTask(cfg, info, resume, out, explicit_prior)
    cfg = dataclasses.replace(cfg, preset=task.arch.name, frames=task.arch.frames)
    run_config = {**to_dict(cfg), "data": str(Path(cfg.data).resolve()), "data_id": data_fingerprint(cfg.data),
                  "recipe": recipe, "world_size": info.world_size, "model": task.arch.to_dict(),
                  "prior_config": task.prior_net.config_dict() if task.prior_net is not None else {"width": 16},
                  "prior_sha256": task.prior_sha256,
                  "prior": None if cfg.prior is None else str(Path(cfg.prior).resolve()) if Path(cfg.prior).exists()
                  else cfg.prior, "window_step": task.window_step}
    if task.init_sha256:
        run_config["init_from_sha256"] = task.init_sha256
    if task.teacher_sha256:
        run_config["teacher_sha256"] = task.teacher_sha256
    if info.is_main:
        keys = resume_keys(DeblurTrainConfig) + ("data_id", "prior_sha256", "teacher_sha256")
        try:
            check_new_or_resume(out, run_config, resume, keys, defaults(DeblurTrainConfig))
        except SettingsMismatch as exc:
            for name in ("prior", "teacher"):
                if f"{name}_sha256" in str(exc):
                    raise SettingsMismatch(f"{out}: cannot resume with a different --{name} (its weights' sha256 "
                                           f"differs from the run's); pass the run's {name} or start a new "
                                           "run") from None
            raise
    summary = fit(task, cfg, run_config, out, info, resume=resume, hook=hook, progress=progress)
    summary.update({"preset": task.arch.name, "train_sequences": sorted({r.sequence for r in task.split.train}),
                    "val_sequences": sorted({r.sequence for r in task.split.val}), "model": task.model})
    D.cleanup(info)
    return summary


def train_deblur(data: str | Path | None = None, out: str | Path | None = None, *, recipe: str | None = None,
                 config_file: str | Path | None = None, resume: bool = False, hook=None,
                 progress: bool | None = None, mm_loss: bool | None = None, **settings) -> dict:
    """Train MMP-RNN on ``data`` into the folder ``out``; returns a summary dict.

    ``settings``: any :class:`~mmpmodel.train_config.DeblurTrainConfig` field (preset, prior, steps, epochs, frames,
    batch_size, patch, lr, schedule, loss weights, ...), over ``recipe`` and ``config_file`` (or, with ``resume``,
    the run's own config.json). ``mm_loss=False`` is ``mm_weight=0``. ``hook(step, model)`` runs after every step."""
    if out is None:
        raise InputError("no run folder: pass --out RUN")
    if mm_loss is not None and "mm_weight" not in settings:
        settings["mm_weight"] = 1.0 if mm_loss else 0.0
    explicit = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items() if v is not None}
    if data is not None:
        explicit["data"] = str(data)
    explicit_prior = "prior" in explicit
    if "prior" in settings and settings["prior"] is None and not resume:
        explicit["prior"] = None
    cfg = prepare("deblur", out, recipe=recipe, config_file=config_file, resume=resume, explicit=explicit)
    return run_deblur(cfg, out, resume=resume, hook=hook, progress=progress, recipe=recipe,
                      explicit_prior=explicit_prior)
