"""Weight averaging: one checkpoint whose weights are the (weighted) mean of several of the same network.

Why: runs fine-tuned from one start with other seeds, or checkpoints along one run, often lie in one basin of the
loss; the average of their weights ("model soup", checkpoint averaging) can score better than each, at the cost
of a single network at inference (a self-ensemble costs N passes). docs/training.md records where it helped and
where not. Every input must be the same network: same kind, same architecture, same weight names and shapes, and
for deblurring checkpoints the same frozen MMP-Net (which is copied, not averaged).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from mmpdata.errors import InputError

from .checkpoint import load_checkpoint, save_checkpoint
from .runs import resolve_checkpoint, state_sha256

log = logging.getLogger(__name__)

__all__ = ["average_checkpoints"]

#: Settings that define the network: inputs must agree on them (the rest, e.g. the learning rate, may differ).
ARCHITECTURE_KEYS = ("preset", "model", "prior_config", "ends", "width", "context", "padding", "input_norm")


def _mixing(weights: list[float] | None, count: int) -> list[float]:
    """The averaging weights normalised to sum 1; InputError when they do not match the inputs or are not
    positive."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise InputError(f"{len(weights)} averaging weights for {count} checkpoints; give one per checkpoint")
    if any(not (w > 0) for w in weights):
        raise InputError(f"averaging weights must be positive, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


def average_checkpoints(sources: list[str | Path], out: str | Path, weights: list[float] | None = None) -> dict:
    """Write to ``out`` a checkpoint whose network weights are the weighted mean of ``sources``' (paths or
    registered names; at least two); returns {"out", "kind", "sources", "weights"}.

    The first source gives the configuration; floating-point weights are averaged in float64 and stored as
    float32 (half-precision inputs, such as exported weights, lose nothing); integer buffers must be equal. The
    result holds no optimizer state: it is for eval, deblur and ``--init-from``, not ``--resume``."""
    if len(sources) < 2:
        raise InputError("average needs at least two checkpoints")
    out = Path(out)
    paths = [resolve_checkpoint(s, "checkpoint to average") for s in sources]
    if any(out.exists() and out.resolve() == p.resolve() for p in paths):
        raise InputError(f"{out}: is one of the checkpoints to average; write the average to another file")
    mix = _mixing(weights, len(paths))
    cks = [load_checkpoint(p) for p in paths]
    first, first_path = cks[0], paths[0]
    for path, ck in zip(paths[1:], cks[1:]):
        if ck["kind"] != first["kind"]:
            raise InputError(f"{path}: is a {ck['kind']} checkpoint and {first_path} a {first['kind']} one; "
                             "average checkpoints of one kind")
        for key in ARCHITECTURE_KEYS:
            if ck["config"].get(key) != first["config"].get(key):
                raise InputError(f"{path}: its {key} ({ck['config'].get(key)!r}) differs from {first_path}'s "
                                 f"({first['config'].get(key)!r}); only the same network can be averaged")
        if set(ck["model"]) != set(first["model"]) or any(
                ck["model"][k].shape != v.shape for k, v in first["model"].items()):
            raise InputError(f"{path}: its weights do not match {first_path}'s (names or shapes); only the same "
                             "network can be averaged")
        if first["kind"] == "deblur" and state_sha256(ck.get("prior") or {}) != state_sha256(first.get("prior") or {}):
            raise InputError(f"{path}: its MMP-Net differs from {first_path}'s; average deblurring networks trained "
                             "with the same frozen prior")
    model = {}
    for name, tensor in first["model"].items():
        if tensor.is_floating_point():
            mean = sum(w * ck["model"][name].double() for w, ck in zip(mix, cks))
            model[name] = mean.to(torch.float32)
        else:
            for path, ck in zip(paths[1:], cks[1:]):
                if not torch.equal(ck["model"][name], tensor):
                    raise InputError(f"{path}: its buffer {name} differs from {first_path}'s; only copies of one "
                                     "network can be averaged")
            model[name] = tensor
    prior = first.get("prior")
    if prior is not None:
        prior = {k: v.float() if v.is_floating_point() else v for k, v in prior.items()}
    recorded = [{"source": str(s), "weight": w, "step": ck["step"], "sha256": state_sha256(ck["model"])}
                for s, w, ck in zip(sources, mix, cks)]
    save_checkpoint(out, kind=first["kind"], config=first["config"], model=model, prior=prior,
                    step=max(ck["step"] for ck in cks), extra={"averaged_from": recorded})
    log.info("averaged %d %s checkpoints into %s", len(cks), first["kind"], out)
    return {"out": str(out), "kind": first["kind"], "sources": [str(p) for p in paths], "weights": mix}
