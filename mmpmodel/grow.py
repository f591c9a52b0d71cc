"""Deepen trained MMP-RNN weights: more RDBs in its two RDB nets, the same output before the first step.

Why: a larger preset fine-tuned from the bundled (or any trained) weights keeps what they learned instead of
starting from scratch. The added RDBs go after the trained ones with a zero 1x1 fusion, so each passes its input
through unchanged, and the RDB net's squeeze conv gets zero weights for their outputs: the grown network computes
exactly what the trained one did, and training then opens the new blocks up.
"""

from __future__ import annotations

import logging

import torch

from mmpdata.errors import FormatError
from mmpmodel.presets import MMPRNNConfig

log = logging.getLogger(__name__)

#: The RDB nets (prefix in the state dict, preset field holding their number of blocks).
RDB_NETS = (("fem", "n_a"), ("rm", "n_b"))


def can_grow(small: MMPRNNConfig, big: MMPRNNConfig) -> bool:
    """True when ``big`` differs from ``small`` only by as many or more RDBs in either net (and is not equal)."""
    same = {f: getattr(small, f) == getattr(big, f) for f in small.to_dict() if f not in ("n_a", "n_b")}
    return all(same.values()) and big.n_a >= small.n_a and big.n_b >= small.n_b and big != small


def grow_state_dict(state: dict[str, torch.Tensor], small: MMPRNNConfig, big: MMPRNNConfig,
                    target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights of preset ``small`` mapped onto ``big`` (``target``: a freshly initialised deblur state of ``big``).

    Every tensor of ``state`` is copied; the squeeze conv of each RDB net keeps its trained input columns and gets
    zeros for the added blocks; the added blocks keep their fresh dense layers and get a zero fusion conv.
    """
    if not can_grow(small, big):
        raise FormatError(f"cannot grow {small.name} into {big.name}: only n_a and n_b may grow, all else equal")
    squeezes = {f"{prefix}.squeeze.weight" for prefix, _ in RDB_NETS}
    out = {k: v.clone() for k, v in target.items()}
    for key, value in state.items():
        if key not in out:
            raise FormatError(f"weights of {small.name} hold {key!r}, which {big.name} does not have")
        if out[key].shape == value.shape:
            out[key] = value.to(out[key].dtype).clone()
        elif key not in squeezes:  # anything else that changed shape: the presets differ in more than depth
            raise FormatError(f"cannot grow {small.name} into {big.name}: {key} is {tuple(value.shape)} in one "
                              f"and {tuple(out[key].shape)} in the other")
    for prefix, field in RDB_NETS:
        n_small, n_big = getattr(small, field), getattr(big, field)
        squeeze = out[f"{prefix}.squeeze.weight"]
        channels = squeeze.shape[0]
        squeeze.zero_()
        squeeze[:, : n_small * channels] = state[f"{prefix}.squeeze.weight"].to(squeeze.dtype)
        for i in range(n_small, n_big):
            out[f"{prefix}.blocks.{i}.fuse.weight"].zero_()
            out[f"{prefix}.blocks.{i}.fuse.bias"].zero_()
    log.info("grew %s into %s: RDBs %d->%d (feature extraction) and %d->%d (reconstruction) start as the identity",
             small.name, big.name, small.n_a, big.n_a, small.n_b, big.n_b)
    return out
