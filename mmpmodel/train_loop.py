"""The training loop both stages share: optimiser, schedule, AMP, clipping, weight average (--ema), logging, validation,
checkpoints, resume and Ctrl-C. Read :func:`fit` top to bottom; everything stage-specific comes from a :class:`Task`.

A task (``PriorTask`` in train_prior, ``DeblurTask`` in train_deblur) supplies the model, the training set, the
forward pass, the loss, the validation and the picture strips; :func:`fit` does the rest the same way for both.

Learning rate: a :class:`LRPlan` gives the rate of every step as a multiple of the configured ``lr`` (warm-up, then
cosine / step / constant). ``--resume --steps N`` with a larger N re-plans the rest of the run (see
:meth:`LRPlan.extend`): a finished run restarts (warm-up, then the schedule again from the full ``lr`` over the
added steps); an unfinished one keeps its current rate and spreads the rest of its schedule over the new length.

Faults: a non-finite loss stops before the step that would spoil the weights and names the last checkpoint that
holds finite weights (or says that none was written yet); a checkpoint is never written with non-finite weights;
a NaN validation score stops the run. The first Ctrl-C finishes the current step, writes last.pt and stops (so a
resumed run is bit-identical, BatchNorm buffers included); a second Ctrl-C stops at once without writing.
"""
from __future__ import annotations

import logging
import math
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from mmpdata.errors import InputError, TrainingError

from . import distributed as D
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .ema import WeightAverage
from .runs import RunDir, resumed_batches
from .train_config import TrainConfig, step_fractions

log = logging.getLogger(__name__)

__all__ = ["Task", "LRPlan", "fit", "autocast_context", "all_finite", "save_strip", "strip_path"]


class Task:
    """What one training stage supplies to :func:`fit` (override every method that raises).

    Attributes: ``kind`` ("prior"/"deblur", the checkpoint kind), ``metric`` (the validation key that picks
    best.pt), ``lower_is_better``, ``model`` (the module that trains; its weights are what is saved),
    ``train_set`` (a dataset with ``set_epoch``), ``has_val`` (whether there is a validation set)."""

    kind: str
    metric: str
    lower_is_better: bool
    model: torch.nn.Module
    train_set: torch.utils.data.Dataset
    has_val: bool = False
    autocast: bool = True  #: False: always train in float32 (``precision`` ignored)

    def param_groups(self) -> list[dict]:
        """Optimiser parameter groups: [{"params": [...], "lr_scale": 1.0}, ...]."""
        return [{"params": [p for p in self.model.parameters() if p.requires_grad], "lr_scale": 1.0}]

    def forward(self, net: torch.nn.Module, batch: dict, device: torch.device):
        """The network's output for a batch (runs under the autocast context); ``net`` may be DDP-wrapped."""
        raise NotImplementedError

    def loss(self, output, batch: dict, device: torch.device) -> tuple[torch.Tensor, dict]:
        """(loss, {part: float}) in float32 for the output of :meth:`forward`."""
        raise NotImplementedError

    def validate(self) -> dict:
        """{metric: value, reference keys...} over the validation set (only called when ``has_val``)."""
        raise NotImplementedError

    def write_strips(self, folder: Path, step: int, count: int) -> None:
        """Write up to ``count`` picture strips of validation items into ``folder`` (rank 0, after validate)."""

    def model_state(self) -> dict:
        return self.model.state_dict()

    def load_model_state(self, state: dict) -> None:
        self.model.load_state_dict(state)

    def checkpoint_extra(self) -> dict:
        """Extra keyword arguments of save_checkpoint (e.g. the frozen prior's weights)."""
        return {}


# ------------------------------------------------------------------------------------------------ schedule
@dataclass
class LRPlan:
    """Learning-rate factors per step: a list of segments, each {start, end, peak, warmup}; the last one runs on.

    Inside a segment: linear warm-up to ``peak`` over ``warmup`` steps, then the configured shape over the rest:
    cosine from ``peak`` to min_lr/lr, step (x gamma at each fraction of ``step_at``), or constant."""

    segments: list[dict] = field(default_factory=list)

    @classmethod
    def fresh(cls, total: int, warmup: int) -> "LRPlan":
        return cls([{"start": 0, "end": int(total), "peak": 1.0, "warmup": int(min(warmup, total))}])

    @property
    def end(self) -> int:
        return self.segments[-1]["end"]

    def factor(self, step: int, cfg: TrainConfig) -> float:
        """The rate of optimisation step ``step`` (0-based) divided by ``cfg.lr``."""
        seg = [s for s in self.segments if s["start"] <= step][-1]
        t, n, peak, warm = step - seg["start"], max(1, seg["end"] - seg["start"]), seg["peak"], seg["warmup"]
        if t < warm:
            return peak * (t + 1) / warm
        if cfg.schedule == "constant":
            return peak
        rest, t = max(1, n - warm), t - warm
        if cfg.schedule == "cosine":
            floor = min(cfg.min_lr / cfg.lr, peak)
            return floor + (peak - floor) * (1 + math.cos(math.pi * min(t, rest) / rest)) / 2
        drops = sum(1 for f in step_fractions(cfg.step_at) if t >= max(1, int(f * rest)))
        return peak * cfg.step_gamma ** drops

    def extend(self, total: int, step: int, cfg: TrainConfig) -> str | None:
        """Re-plan for a new length ``total`` when resuming at ``step``; returns a sentence saying what changed.

        Finished run (step >= old end): a new segment restarts at the full rate (with the configured warm-up).
        Unfinished run: a new segment starts at the current rate and runs the schedule's shape to ``total``."""
        if total == self.end:
            return None
        if total < self.end:
            raise InputError(f"the run was planned for {self.end} steps; it can be extended (--steps larger than "
                             f"{self.end}), not shortened to {total}")
        old = self.end
        if step >= old:
            self.segments.append({"start": step, "end": total, "peak": 1.0, "warmup": min(cfg.warmup_steps,
                                                                                            total - step)})
            return (f"extending a finished run from {old} to {total} steps: the learning rate restarts at {cfg.lr:g} "
                    f"({cfg.schedule} over the {total - step} new steps)")
        peak = self.factor(step, cfg)
        self.segments.append({"start": step, "end": total, "peak": peak, "warmup": 0})
        return (f"extending the run from {old} to {total} steps: from step {step} the {cfg.schedule} schedule "
                f"continues from the current rate {peak * cfg.lr:.3g} over the remaining {total - step} steps")


# ------------------------------------------------------------------------------------------------ helpers
@contextmanager
def autocast_context(cfg: TrainConfig, device: torch.device):
    """Mixed precision of the forward pass, from ``cfg.precision`` (see :func:`training_precision`). The loss is
    always computed in float32 after this context; the optimizer keeps float32 weights."""
    from .precision import autocast

    with autocast(training_precision(cfg, device), device):
        yield


def training_precision(cfg: TrainConfig, device: torch.device) -> str:
    """The concrete precision of a run. ``auto`` (the default) is fp16 AMP on CUDA and fp32 on a CPU: bf16 on the
    CPU is twice as fast but is opt-in (``--precision bf16``, or ``fast``: bf16 only where the CPU has native bf16)
    until its loss curve is shown to match fp32's (docs/training.md). A task whose ``autocast`` is False (MMP-Net: BatchNorm) always trains in fp32."""
    from .precision import resolve_precision

    setting = getattr(cfg, "precision", "auto")
    if setting == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    return resolve_precision("auto" if setting == "fast" else setting, device)


def uses_grad_scaler(cfg: TrainConfig, device: torch.device) -> bool:
    """fp16 needs loss scaling; bf16 and fp32 do not."""
    return training_precision(cfg, device) == "fp16"


def all_finite(state: dict) -> bool:
    """True when every floating-point tensor of a state dict is finite."""
    return all(bool(torch.isfinite(v).all()) for v in state.values()
               if isinstance(v, torch.Tensor) and v.is_floating_point())


class _Interrupts:
    """First SIGINT: ask the loop to stop after the current step. Second: KeyboardInterrupt at once."""

    def __init__(self):
        self.requested = False
        self.hard = False
        self._old = None

    def _handler(self, signum, frame):
        if self.requested:
            self.hard = True
            raise KeyboardInterrupt
        self.requested = True
        log.warning("Ctrl-C: finishing this step, then writing last.pt (Ctrl-C again to stop without saving)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _worst(lower_is_better: bool) -> float:
    return math.inf if lower_is_better else -math.inf


# ------------------------------------------------------------------------------------------------ the loop
def fit(task: Task, cfg: TrainConfig, run_config: dict, out: Path, info: D.DistInfo, *, resume: bool = False,
        hook=None, progress: bool | None = None) -> dict:
    """Train ``task`` as configured; write RUN/config.json, metrics.jsonl, last.pt, best.pt, val/*.png.

    ``run_config`` is what config.json and the checkpoints record (the resolved settings plus derived facts).
    ``hook(step, model)`` runs after every optimisation step. Returns {"steps", metric, "best_<metric>", ...}."""
    out = Path(out)
    metric, lower = task.metric, task.lower_is_better

    # ---- data: a per-process share of every epoch, resumable part way through
    sampler = D.ResumableSampler(task.train_set, info, cfg.seed)
    steps_per_epoch = len(sampler) // cfg.batch_size
    if steps_per_epoch == 0:
        raise InputError(f"{cfg.data}: {len(task.train_set)} training items give no full batch of "
                         f"{cfg.batch_size} per process; lower --batch-size")
    total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    workers = (0 if info.device.type == "cpu" else 4) if cfg.workers is None else cfg.workers
    loader = DataLoader(task.train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=workers,
                        drop_last=True, pin_memory=info.device.type == "cuda")
    val_every = cfg.val_every or max(1, min(steps_per_epoch, 1000, total))

    # ---- optimiser (one group per learning-rate scale), schedule, loss scaling
    groups = task.param_groups()
    optimizer = torch.optim.Adam([{"params": g["params"], "lr": cfg.lr * g.get("lr_scale", 1.0)} for g in groups],
                                 lr=cfg.lr, weight_decay=cfg.weight_decay)
    scales = [g.get("lr_scale", 1.0) for g in groups]
    params = [p for g in groups for p in g["params"]]
    plan = LRPlan.fresh(total, cfg.warmup_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=task.autocast and uses_grad_scaler(cfg, info.device))
    step, best, saved_step = 0, _worst(lower), None

    average = WeightAverage(task.model_state(), cfg.ema) if cfg.ema else None

    # ---- resume: weights, optimiser, plan, RNG and step from RUN/last.pt
    if resume:
        ck = load_checkpoint(out / "last.pt", kind=task.kind, map_location=info.device)
        extra = ck.get("extra") or {}
        if average is not None:  # "model" holds the average; the weights that train are kept beside it
            if "train_model" not in extra:
                raise InputError(f"{out / 'last.pt'}: has no training weights beside its average; resume "
                                 "without --ema, as the run was started")
            task.load_model_state(extra["train_model"])
            average = WeightAverage(ck["model"], cfg.ema, count=int(extra.get("ema_count", 0)))
        else:
            task.load_model_state(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if ck.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(ck["scaler"])
        set_rng_state(ck["rng"])
        step, best = ck["step"], ck["metrics"].get(f"best_{metric}", _worst(lower))
        saved_step = step
        planned = (ck.get("extra") or {}).get("lr_plan")
        plan = LRPlan(list(planned)) if planned else LRPlan.fresh(run_config.get("total_steps", total),
                                                                  cfg.warmup_steps)
        change = plan.extend(total, step, cfg)
        if change:
            log.info("%s", change)
            run_config["extensions"] = list(run_config.get("extensions", [])) + [change]
        log.info("resuming %s at step %d of %d", out, step, total)
    run_config["total_steps"] = total
    net = DDP(task.model) if info.distributed else task.model
    fresh_folder = not out.exists()  # a fresh run that fails before its first checkpoint leaves nothing behind
    run = RunDir(out, run_config) if info.is_main else None

    def check_weights() -> dict:
        state = task.model_state()
        if not all_finite(state):
            where = f"{out / 'last.pt'} (step {saved_step})" if saved_step is not None else "no checkpoint yet"
            raise TrainingError(f"the weights became non-finite by step {step}; not saved ({where} keeps the last "
                                "finite weights); lower --lr or set --grad-clip, then --resume or start again")
        return state

    def save(name: str, metrics: dict) -> None:
        state = check_weights()
        extra = {"lr_plan": plan.segments}
        if average is not None:  # users load "model": the average; --resume also needs the training weights
            extra.update(train_model=state, ema_count=average.count)
            state = average.state(state)
        save_checkpoint(out / name, kind=task.kind, config=run_config, model=state, step=step, metrics=metrics,
                        optimizer=optimizer.state_dict(), scaler=scaler.state_dict() if scaler.is_enabled() else None,
                        rng=rng_state(), extra=extra, **task.checkpoint_extra())

    def averaged():
        """Validation and picture strips see the averaged weights when --ema is on."""
        return average.applied(task.model_state, task.load_model_state) if average is not None else nullcontext()

    def last_good() -> str:
        if saved_step is None:
            return "no checkpoint was written yet" + (f" (the first comes at step {val_every})" if step < val_every
                                                      else "")
        return f"{out / 'last.pt'} (step {saved_step}) keeps the last finite weights"

    def checkpoint_round(best: float) -> tuple[float, dict]:
        """Rank 0: validate, keep best.pt by ``metric``, always write last.pt. Returns (best, this round's values)."""
        check_weights()
        metrics, values = {"train_loss": loss.item(), f"best_{metric}": best}, {}
        if task.has_val:
            with averaged():
                values = task.validate()
            value = values[metric]
            if not math.isfinite(value):
                raise TrainingError(f"validation {metric} is {value} at step {step}; {last_good()}; "
                                    "lower --lr or check the validation data")
            run.log(step, **values)
            metrics.update(values)
            if (value < best) if lower else (value > best):
                best = metrics[f"best_{metric}"] = value
                save("best.pt", metrics)
            if cfg.val_images:
                with averaged():
                    task.write_strips(out / "val", step, cfg.val_images)
        save("last.pt", metrics)
        if not task.has_val:
            save("best.pt", metrics)
        return best, values

    # ---- the loop
    task.model.train()
    bar = tqdm(total=total, initial=step, desc=f"train-{task.kind}", unit="step",
               disable=(not info.is_main) or (None if progress is None else not progress))
    t0, last_val = time.time(), {}
    stop = _Interrupts()
    try:
        with stop:
            for epoch, batch in resumed_batches(loader, sampler, task.train_set, step, total, steps_per_epoch,
                                               cfg.batch_size):
                factor = plan.factor(step, cfg)
                for group, scale in zip(optimizer.param_groups, scales):
                    group["lr"] = cfg.lr * factor * scale
                with autocast_context(cfg, info.device) if task.autocast else nullcontext():
                    output = task.forward(net, batch, info.device)
                loss, parts = task.loss(output, batch, info.device)
                if D.any_true(not torch.isfinite(loss).item(), info):
                    raise TrainingError(f"non-finite loss at step {step + 1}; {last_good()}; lower --lr or check "
                                        "the data")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip else math.inf)
                scaler.step(optimizer)
                scaler.update()
                if average is not None:
                    average.update(task.model_state())
                step += 1
                bar.update(1)
                if hook is not None:
                    hook(step, task.model)
                if step % cfg.log_every == 0 or step == total:
                    loss_mean = D.all_mean(loss.item(), info)
                    if run:
                        run.log(step, epoch=epoch, loss=loss_mean, lr=cfg.lr * factor, grad_norm=float(grad_norm),
                                **parts)
                    bar.set_postfix(loss=f"{loss_mean:.4f}")
                if step % val_every == 0 or step == total:
                    D.broadcast_buffers(task.model, info)
                    failure = None
                    if info.is_main:
                        try:
                            best, last_val = checkpoint_round(best)
                            saved_step = step
                        except TrainingError as exc:
                            failure = exc
                    if D.any_true(failure is not None, info):  # every rank stops when rank 0's round failed
                        raise failure or TrainingError(f"stopped at step {step}: rank 0's validation round failed")
                if D.any_true(stop.requested, info):
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if info.is_main:
            if stop.hard:
                log.warning("stopped at once: last.pt not updated (%s)", last_good())
            elif all_finite(task.model_state()):
                save("last.pt", {f"best_{metric}": best, "interrupted": True})
                saved_step = step
                log.warning("interrupted at step %d: %s written; continue with --resume", step, out / "last.pt")
        raise
    finally:
        bar.close()
        if run:
            run.close()
            if saved_step is None and not resume and not (out / "last.pt").exists():
                discard_run(out, remove_folder=fresh_folder)
    return {"out": str(out), "steps": step, metric: last_val.get(metric),
            f"best_{metric}": None if math.isinf(best) else best,
            **{k: v for k, v in last_val.items() if k != metric},
            "seconds": round(time.time() - t0, 2)}


def discard_run(out: Path, remove_folder: bool) -> None:
    """Remove what a fresh run wrote before failing without any checkpoint (config.json, metrics.jsonl, tb/, val/),
    so no half-made run is left under its final name; the folder too when the run created it and it is empty."""
    import shutil

    for name in ("config.json", "metrics.jsonl"):
        (out / name).unlink(missing_ok=True)
    for name in ("tb", "val"):
        shutil.rmtree(out / name, ignore_errors=True)
    if remove_folder:
        try:
            out.rmdir()
        except OSError:
            pass  # something else is in it: leave it


def save_strip(path: Path, panels: list) -> Path:
    """Write RGB uint8 panels (H, W, 3) side by side as one PNG, atomically."""
    import cv2
    import numpy as np

    from mmpdata.atomic import write_bytes

    strip = np.concatenate(panels, axis=1)
    ok, png = cv2.imencode(".png", np.ascontiguousarray(strip[:, :, ::-1]))
    if not ok:
        raise TrainingError(f"{path}: could not encode the validation picture")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_bytes(path, png.tobytes())


def strip_path(folder: Path, step: int, index: int) -> Path:
    """RUN/val/step_000500_0.png: one file per validation round and shown item."""
    return Path(folder) / f"step_{step:06d}_{index}.png"
