"""A training run's folder: RUN/config.json, RUN/metrics.jsonl, RUN/last.pt, RUN/best.pt, TensorBoard events.

Shared by train_prior and train_deblur so both loops stay short. Only rank 0 constructs a writer; the JSON
files are written atomically (config) or appended line by line (metrics), so a killed run leaves readable files.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from mmpdata.atomic import file_mode
from mmpdata.errors import InputError, SettingsMismatch, TrainingError

from . import distributed as D

log = logging.getLogger(__name__)

__all__ = ["RunDir", "check_finite", "check_new_or_resume", "checkpoint_round", "report_loss", "resumed_batches",
           "write_json"]


def write_json(path: str | Path, payload: dict) -> Path:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, file_mode())  # mkstemp makes 0600; give the umask's mode like open() would
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_new_or_resume(out: Path, config: dict, resume: bool, keys: tuple[str, ...]) -> None:
    """Refuse to overwrite an existing run without --resume, and to resume with different settings."""
    last = out / "last.pt"
    if not resume:
        if last.exists():
            raise InputError(f"{out} already holds a run (last.pt); pass --resume to continue it or choose another --out")
        return
    if not last.exists():
        raise InputError(f"{last}: nothing to resume; run without --resume first")
    cfg_path = out / "config.json"
    if cfg_path.exists():
        saved = json.loads(cfg_path.read_text())
        diff = [f"{k}: run has {saved.get(k)!r}, asked for {config.get(k)!r}" for k in keys
                if k in saved and saved.get(k) != config.get(k)]
        if diff:
            raise SettingsMismatch(f"{out}: cannot resume with different settings ({'; '.join(diff)}); "
                                   "repeat the original options or choose another --out")


def checkpoint_round(run: "RunDir", step: int, train_loss: float, key: str, best: float, lower_is_better: bool,
                     validate, save) -> tuple[float, float | None]:
    """Rank 0's periodic round: validate (``validate`` is None without a validation set), keep ``best.pt`` by the
    metric ``key`` and always write ``last.pt``. Returns the new best and this round's validation value."""
    metrics = {"train_loss": train_loss, f"best_{key}": best}
    value = None
    if validate is not None:
        value = validate()
        metrics[key] = value
        run.log(step, **{key: value})
        if (value < best) if lower_is_better else (value > best):
            best = metrics[f"best_{key}"] = value
            save("best.pt", metrics)
    save("last.pt", metrics)
    if validate is None:
        save("best.pt", metrics)
    return best, value


def resumed_batches(loader, sampler, dataset, step: int, total: int, steps_per_epoch: int, batch_size: int):
    """(epoch, batch) pairs for optimisation steps ``step`` .. ``total`` - 1, epoch after epoch.

    Why: a resumed run must see exactly the batches it would have seen; each epoch reseeds the sampler's shuffle
    and the dataset's augmentation, and the first epoch skips the samples the earlier run already used."""
    while step < total:
        epoch, offset = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch)
        sampler.skip = offset * batch_size
        dataset.set_epoch(epoch)
        for batch in loader:
            yield epoch, batch
            step += 1
            if step >= total:
                return


def report_loss(run: "RunDir | None", bar, step: int, epoch: int, loss, info, **values) -> None:
    """Log the loss averaged over processes (a collective: every rank calls it) with ``values``, on rank 0's
    metrics file (``run`` is None elsewhere), and show it on the progress bar."""
    loss_mean = D.all_mean(loss.item(), info)
    if run:
        run.log(step, epoch=epoch, loss=loss_mean, **values)
    bar.set_postfix(loss=f"{loss_mean:.4f}")


def check_finite(loss, step: int, out: Path, info) -> None:
    """TrainingError on every rank when any rank's loss is NaN/inf (before the step that would spoil the weights)."""
    if D.any_true(not torch.isfinite(loss).item(), info):
        raise TrainingError(f"non-finite loss at step {step + 1}; {Path(out) / 'last.pt'} keeps the last good "
                            "weights; lower --lr or check the data, then --resume")


class RunDir:
    """Writes the run's config, metric lines and (when the ``tensorboard`` package is installed) event files."""

    def __init__(self, out: str | Path, config: dict):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / "config.json", config)
        self._metrics = open(self.out / "metrics.jsonl", "a")
        self._start = time.time()
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(self.out / "tb"))
        except ImportError:
            log.debug("tensorboard not installed; metrics go to metrics.jsonl only")

    def log(self, step: int, **values) -> None:
        """Append one JSON line {"step", "time", ...values} and mirror numbers to TensorBoard."""
        record = {"step": int(step), "time": round(time.time() - self._start, 3), **values}
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()
        if self.tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self._metrics.close()
        if self.tb is not None:
            self.tb.close()
