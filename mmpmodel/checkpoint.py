"""Our checkpoint file: one ``torch.save`` dict, written atomically and read back with ``weights_only=True``.

A checkpoint says what it is (``kind`` "prior" or "deblur"), how to rebuild the network (``config``), and carries
the frozen prior's weights apart from the trained deblurring weights, so a deblurring checkpoint is self-contained.
Optimizer, scheduler, AMP scaler and RNG states make ``--resume`` continue exactly where the run stopped.
Only tensors, numbers, strings, lists and dicts are stored, so loading never runs pickled code.
"""
from __future__ import annotations

import io
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmpdata.atomic import file_mode
from mmpdata.errors import FormatError, InputError

__all__ = ["FORMAT", "VERSION", "KINDS", "save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state"]

FORMAT = "mmp-checkpoint"
VERSION = 1
KINDS = ("prior", "deblur")


def rng_state() -> dict:
    """Python, NumPy and torch (CPU and CUDA) RNG states as weights_only-loadable values."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, *, kind: str, config: dict, model: dict, step: int = 0,
                    metrics: dict | None = None, prior: dict | None = None, optimizer: dict | None = None,
                    scheduler: dict | None = None, scaler: dict | None = None, rng: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write a checkpoint to ``path`` atomically (temporary file in the same folder, then ``os.replace``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "kind": kind, "config": dict(config), "model": model,
        "step": int(step), "metrics": dict(metrics or {}),
    }
    for key, value in (("prior", prior), ("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler),
                       ("rng", rng), ("extra", extra)):
        if value is not None:
            payload[key] = value
    buf = io.BytesIO()  # serialised in memory first: a full disk is then a plain OSError (ENOSPC) from write(),
    torch.save(payload, buf)  # not torch's RuntimeError from deep inside its zip writer
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, file_mode())  # mkstemp makes 0600; give the umask's mode like open() would
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not exc.filename:
            exc.filename = str(path)  # a full disk names the checkpoint, not "None"
        raise
    return path


def load_checkpoint(path: str | Path, kind: str | None = None, map_location: str | torch.device = "cpu") -> dict:
    """Read one of our checkpoints; FormatError naming ``path`` when it is anything else (or the wrong kind)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # not a torch file, truncated, or holding pickled objects
        raise FormatError(f"{path}: not an MMP checkpoint ({type(exc).__name__}); "
                          "pass a .pt file written by mmp train-prior or train-deblur") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FormatError(f"{path}: not an MMP checkpoint (no '{FORMAT}' marker); "
                          "pass a .pt file written by mmp train-prior or train-deblur")
    if payload.get("version") != VERSION:
        raise FormatError(f"{path}: checkpoint version {payload.get('version')} is not supported (this is {VERSION})")
    _check_payload(path, payload)
    if kind is not None and payload.get("kind") != kind:
        raise FormatError(f"{path}: is a {payload.get('kind')} checkpoint, a {kind} checkpoint is needed here")
    return payload


def _check_payload(path: Path, payload: dict) -> None:
    """Our keys with our types, and only finite weights: a crafted or damaged file is refused by name here, not by a
    KeyError deep in a loader or a black video later."""
    fix = "pass a .pt file written by mmp train-prior or train-deblur"
    if payload.get("kind") not in KINDS:
        raise FormatError(f"{path}: checkpoint kind {payload.get('kind')!r} is not one of {', '.join(KINDS)}; {fix}")
    for key, types, required in (("config", dict, True), ("model", dict, True), ("step", int, True),
                                 ("metrics", dict, False), ("prior", dict, False), ("optimizer", dict, False),
                                 ("scheduler", dict, False), ("scaler", dict, False), ("rng", dict, False),
                                 ("extra", dict, False)):
        if key not in payload:
            if required:
                raise FormatError(f"{path}: checkpoint has no '{key}' entry (damaged or not written by this "
                                  f"toolkit); {fix}")
            continue
        value = payload[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise FormatError(f"{path}: checkpoint entry '{key}' is a {type(value).__name__}, expected a "
                              f"{types.__name__}; {fix}")
    for part in ("model", "prior"):
        for name, tensor in payload.get(part, {}).items():
            if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
                raise FormatError(f"{path}: '{part}' weights must map names to tensors, found "
                                  f"{type(name).__name__} -> {type(tensor).__name__}; {fix}")
            if tensor.is_floating_point() or tensor.is_complex():
                if not bool(torch.isfinite(tensor).all()):
                    bad = int((~torch.isfinite(tensor)).sum())
                    raise FormatError(f"{path}: weight {part}.{name} holds {bad} NaN/inf value(s) (saved from a "
                                      "diverged run?); use an earlier checkpoint such as best.pt, or train again")


# ------------------------------------------------------------------------------------- networks from checkpoints
_BAD_CONFIG = (TypeError, KeyError, ValueError, AttributeError, RuntimeError)


def _build(path, what: str, make):
    """``make()`` (a network from a checkpoint's config); FormatError naming the file when the config is unusable."""
    try:
        return make()
    except FormatError:
        raise
    except _BAD_CONFIG as exc:
        raise FormatError(f"{path}: the {what} settings in this checkpoint are unusable ({type(exc).__name__}: "
                          f"{str(exc)[:120]}); pass a .pt file written by mmp train-prior or train-deblur") from None


def _load_weights(module: torch.nn.Module, state: dict, path: Path, what: str) -> None:
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise FormatError(f"{path}: the {what} weights do not fit the network ({first[:160]})") from None


def load_prior(path: str | Path, map_location: str | torch.device = "cpu"):
    """MMP-Net (eval mode) from a prior checkpoint, or from the prior part of a deblurring checkpoint."""
    from .mmpnet import MMPNet

    ck = load_checkpoint(path, map_location=map_location)
    state = ck["model"] if ck["kind"] == "prior" else ck.get("prior")
    if state is None:
        raise FormatError(f"{path}: this deblurring checkpoint was trained without a prior; pass a prior checkpoint")
    cfg = ck["config"] if ck["kind"] == "prior" else ck["config"].get("prior_config", {})
    net = _build(path, "MMP-Net", lambda: MMPNet.from_config(cfg, str(path)))
    _load_weights(net, state, Path(path), "MMP-Net")
    return net.eval(), ck


def load_deblur(path: str | Path, map_location: str | torch.device = "cpu"):
    """MMP-RNN (eval mode, prior inside) from a deblurring checkpoint; returns (model, checkpoint dict)."""
    from .mmpnet import MMPNet
    from .mmprnn import ENDS, MMPRNN
    from .presets import MMPRNNConfig

    ck = load_checkpoint(path, kind="deblur", map_location=map_location)
    if not isinstance(ck["config"].get("model"), dict):
        raise FormatError(f"{path}: deblurring checkpoint without its network settings (config.model); pass a .pt "
                          "file written by mmp train-deblur")
    config = _build(path, "MMP-RNN", lambda: MMPRNNConfig.from_dict(ck["config"]["model"]))
    prior = None
    if config.prior:
        if "prior" not in ck:
            raise FormatError(f"{path}: deblurring checkpoint without its prior weights")
        prior = _build(path, "MMP-Net", lambda: MMPNet.from_config(ck["config"].get("prior_config", {}), str(path)))
        _load_weights(prior, ck["prior"], Path(path), "MMP-Net")
    model = _build(path, "MMP-RNN", lambda: MMPRNN(config, prior))
    try:
        model.load_deblur_state_dict(ck["model"])
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from None
    except (RuntimeError, TypeError, KeyError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{path}: the MMP-RNN weights do not fit the network ({first[:160]})") from None
    ends = ck["config"].get("ends")  # train-deblur --ends: run with the ends it was trained for
    if ends in ENDS:
        model.ends = ends
    return model.eval(), ck


def load_any(path: str | Path, map_location: str | torch.device = "cpu"):
    """(kind, network, checkpoint) for either kind of checkpoint."""
    ck = load_checkpoint(path, map_location=map_location)
    if ck["kind"] == "prior":
        net, ck = load_prior(path, map_location)
    else:
        net, ck = load_deblur(path, map_location)
    return ck["kind"], net, ck
