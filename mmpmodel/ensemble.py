"""Geometric self-ensemble: deblur the video as seen through flips and transposes, undo them and average.

Why: a restoration network's errors change when its input is mirrored or transposed while the truth only moves
with it, so the average of the un-transformed outputs is closer to the truth (EDSR's "+" results). Every frame of
the video gets the same transform, so the motion between frames stays consistent; each transformed video runs as
its own stream (its own recurrent state), which costs N times the time of one pass and N times the memory of one
stepper. The gain is measured in docs/benchmarks.md; it is a few hundredths of a dB for the bundled weights.
"""
from __future__ import annotations

from typing import Callable

import torch

from mmpdata.errors import InputError

__all__ = ["ENSEMBLE_SIZES", "TRANSFORMS", "EnsembleStepper", "check_ensemble", "ensemble_average"]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _hflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def _vflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-2)


def _rot180(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-2, -1)


def _transpose(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-2, -1)


def _rot90(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-2, -1).flip(-1)


def _rot90_back(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1).transpose(-2, -1)


def _rot270(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-2, -1).flip(-2)


def _rot270_back(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-2).transpose(-2, -1)


def _antitranspose(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-2, -1).flip(-2, -1)


#: (name, forward, inverse) of the eight symmetries of the square, in the order the ensemble sizes take them:
#: 2 adds the horizontal mirror, 4 the vertical mirror and the half turn, 8 the four that swap height and width.
TRANSFORMS: tuple[tuple[str, Callable, Callable], ...] = (
    ("identity", _identity, _identity),
    ("hflip", _hflip, _hflip),
    ("vflip", _vflip, _vflip),
    ("rot180", _rot180, _rot180),
    ("transpose", _transpose, _transpose),
    ("rot90", _rot90, _rot90_back),
    ("rot270", _rot270, _rot270_back),
    ("antitranspose", _antitranspose, _antitranspose),
)
#: Values of every ``--self-ensemble`` option.
ENSEMBLE_SIZES = (1, 2, 4, 8)


def check_ensemble(size: int) -> int:
    """``size`` when it is an ensemble size; InputError otherwise (checked before any output is written)."""
    if isinstance(size, bool) or size not in ENSEMBLE_SIZES:
        raise InputError(f"self-ensemble size {size!r} is not one of {', '.join(map(str, ENSEMBLE_SIZES))}: "
                         "use 1 (off), 2, 4 or 8")
    return size


def ensemble_average(run: Callable[..., torch.Tensor], size: int, *inputs: torch.Tensor | None) -> torch.Tensor:
    """The mean of ``run(*inputs)`` over the first ``size`` transforms, each output turned back (float32): the
    self-ensemble of a whole clip at once (training's distillation teacher), where :class:`EnsembleStepper` streams."""
    total = None
    for _, forward, inverse in TRANSFORMS[:check_ensemble(size)]:
        y = inverse(run(*(None if x is None else forward(x) for x in inputs))).float()
        total = y if total is None else total + y
    return total / size


class EnsembleStepper:
    """The stepper interface (``push``/``finish``, see :class:`mmpmodel.mmprnn.Stepper`) over ``size`` transformed
    copies of the stream: ``make_stepper()`` builds one plain (or tiled) stepper per transform."""

    def __init__(self, make_stepper: Callable[[], object], size: int):
        self.size = check_ensemble(size)
        self._members = [(forward, inverse, make_stepper()) for _, forward, inverse in TRANSFORMS[:size]]

    def push(self, frame: torch.Tensor, mmp: torch.Tensor | None = None) -> list[tuple[int, torch.Tensor]]:
        """Add frame (B, 3, H, W) (optional map (B, 1, H, W)); returns the (t, averaged output) pairs now ready."""
        return self._average([stepper.push(forward(frame), None if mmp is None else forward(mmp))
                              for forward, _, stepper in self._members])

    def finish(self) -> list[tuple[int, torch.Tensor]]:
        """End of the stream: flush every member; the members are then reset."""
        return self._average([stepper.finish() for _, _, stepper in self._members])

    def _average(self, ready: list[list[tuple[int, torch.Tensor]]]) -> list[tuple[int, torch.Tensor]]:
        out = []
        for pairs in zip(*ready, strict=True):  # the members see the same frames, so they emit in lockstep
            t = pairs[0][0]
            total = None
            for (_, inverse, _), (_, y) in zip(self._members, pairs):
                y = inverse(y).float()
                total = y if total is None else total + y
            out.append((t, total / self.size))
        return out
