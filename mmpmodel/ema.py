"""An exponential moving average of the weights (``--ema DECAY``): the weights that are validated and saved.

Why: on a small budget the network's gain over its input shows only once the learning rate is low — at a high
rate Adam's step-to-step noise on the weights costs more than the steps gain (docs/training.md). Averaging the
weights of the last ~1/(1 - decay) steps removes most of that noise while the optimiser keeps the high rate, so a
run does not have to spend its budget in a low-rate tail to be worth keeping.

The decay ramps up as ``min(decay, (1 + t) / (10 + t))`` over the first steps of the average (t counts the
averaged steps), so early weights, including a fresh initialisation or ``--init-from`` weights, fade out quickly.
Floating-point tensors are averaged in float32; integer buffers (BatchNorm's step count) are copied.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

__all__ = ["WeightAverage"]


class WeightAverage:
    """The running average of a state dict. ``update(state)`` after each optimiser step; ``state()`` to save it."""

    def __init__(self, state: dict[str, torch.Tensor], decay: float, count: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.count = int(count)
        self.shadow = {k: (v.detach().float().clone() if v.is_floating_point() else v.detach().clone())
                       for k, v in state.items()}
        self._floats = [k for k, v in self.shadow.items() if v.is_floating_point()]
        self._others = [k for k, v in self.shadow.items() if not v.is_floating_point()]

    def current_decay(self) -> float:
        """The decay of the next update: ramps from 0.1 towards ``decay`` as updates accumulate."""
        return min(self.decay, (1.0 + self.count) / (10.0 + self.count))

    @torch.no_grad()
    def update(self, state: dict[str, torch.Tensor]) -> None:
        """Blend the model's current weights into the average (``shadow = d * shadow + (1 - d) * weights``)."""
        d = self.current_decay()
        if self._floats:
            torch._foreach_lerp_([self.shadow[k] for k in self._floats],
                                 [state[k].detach().float() for k in self._floats], 1.0 - d)
        for k in self._others:
            self.shadow[k].copy_(state[k])
        self.count += 1

    def state(self, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The averaged weights, in the dtypes of ``like`` (the model's own state dict), ready to save or load."""
        return {k: v.to(like[k].dtype).clone() for k, v in self.shadow.items()}

    @contextmanager
    def applied(self, get_state, set_state):
        """Run the block with the averaged weights in the model, then put the training weights back exactly."""
        training = {k: v.detach().clone() for k, v in get_state().items()}
        set_state(self.state(training))
        try:
            yield
        finally:
            set_state(training)
