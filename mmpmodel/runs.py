"""A training run's folder: RUN/config.json, RUN/metrics.jsonl, RUN/last.pt, RUN/best.pt, TensorBoard events.

Used by the shared training loop (mmpmodel.train_loop). Only rank 0 constructs a writer; the JSON
files are written atomically (config) or appended line by line (metrics), so a killed run leaves readable files.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from mmpdata.atomic import file_mode
from mmpdata.errors import InputError, SettingsMismatch

log = logging.getLogger(__name__)

__all__ = ["RunDir", "check_new_or_resume", "read_run_config", "data_fingerprint", "resumed_batches",
           "resolve_checkpoint", "state_sha256", "write_json"]


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


def check_new_or_resume(out: Path, config: dict, resume: bool, keys: tuple[str, ...],
                        defaults: dict | None = None) -> None:
    """Refuse to overwrite an existing run without --resume, and to resume without RUN/config.json or with
    different settings (``keys`` of ``config`` compared with the run's config.json; a key the run did not record,
    because the setting was added later, counts as its value in ``defaults``)."""
    last = out / "last.pt"
    if not resume:
        if last.exists():
            raise InputError(f"{out} already holds a run (last.pt); pass --resume to continue it or choose another --out")
        return
    if not last.exists():
        raise InputError(f"{last}: nothing to resume; run without --resume first")
    saved = read_run_config(out)
    defaults = defaults or {}
    recorded = {k: saved[k] if k in saved else defaults.get(k) for k in keys}
    diff = [f"{k}: run has {recorded[k]!r}, asked for {config.get(k)!r}" for k in keys if recorded[k] != config.get(k)]
    if diff:
        raise SettingsMismatch(f"{out}: cannot resume with different settings ({'; '.join(diff)}); "
                               "repeat the original options or choose another --out")


def read_run_config(out: str | Path) -> dict:
    """RUN/config.json as a dict; InputError naming it when it is missing or unreadable (a run cannot be resumed
    or checked without it)."""
    path = Path(out) / "config.json"
    if not path.is_file():
        raise InputError(f"{path}: missing, so the run's settings are unknown; cannot resume it (start a new run "
                         "with another --out)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc.__class__.__name__}); cannot resume the run") from None


def state_sha256(state: dict) -> str:
    """sha256 over a state dict's names and tensor bytes: identifies weights whichever file holds them (a prior
    checkpoint, or the prior inside a deblurring checkpoint)."""
    import torch

    h = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        h.update(key.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().reshape(-1).contiguous()
            h.update(str(t.dtype).encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def resolve_checkpoint(value: str | Path, what: str, kind: str | None = None) -> Path:
    """A checkpoint path, or a registered weights name (mmpmodel.weights.resolve_weights when it exists);
    InputError naming ``value`` when it is neither."""
    path = Path(value)
    if path.is_file():
        return path
    try:
        from .weights import resolve_weights
    except ImportError:
        resolve_weights = None
    if resolve_weights is not None:
        return Path(resolve_weights(str(value), kind=kind))
    raise InputError(f"{value}: {what} not found; pass a checkpoint file")


def _plain(value):
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def data_fingerprint(path: str | Path) -> str:
    """A short hash of an mmp-h5 index's contents list: root settings (K, CRF, flow, frames, stride, seed, ...) and
    each sequence's name, split, settings and dataset shapes. Identifies the data by content, so a moved or copied
    dataset still resumes, while re-synthesized data with other settings or other sequences does not."""
    import h5py

    from mmpdata.datasets import open_data

    open_data(path)  # checked first (cached): a damaged shard is one line naming it, not a KeyError here
    skip = {"mmpdata_version", "created", "complete"}
    desc: dict = {}
    with h5py.File(path, "r") as f:
        desc["attrs"] = {k: _plain(v) for k, v in sorted(f.attrs.items()) if k not in skip}
        seqs = {}
        for name in sorted(f["sequences"].keys()):
            g = f["sequences"][name]
            seqs[name] = {"attrs": {k: _plain(v) for k, v in sorted(g.attrs.items()) if k not in skip},
                          "data": {k: [list(g[k].shape), str(g[k].dtype)] for k in sorted(g.keys())
                                   if isinstance(g[k], h5py.Dataset)}}
        desc["sequences"] = seqs
    text = json.dumps(desc, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
            log.info("tensorboard is not installed (pip install 'mmp-toolkit[tensorboard]'): metrics go to "
                     "metrics.jsonl only (mmp plot RUN --out curves.png draws them)")

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
