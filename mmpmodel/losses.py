"""Training losses of MMP-RNN (paper eq. 5-8): Charbonnier, gradient, motion-magnitude, and their weighted sum.

Images are (..., 3, H, W) in [0, 1]; every loss is a mean over pixels (and over the batch / time dims).

Gradient loss, a choice: the paper (eq. 7) writes the mean squared difference of the image gradients; the published
code used instead an L1 difference of central-difference gradient *magnitudes*. We follow the paper by default
(``form="paper"``: forward differences in x and y, squared error of both components, averaged over the valid
differences and the colour channels) and offer the code's variant as ``form="reference"``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call


def charbonnier(out: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Colour Charbonnier (eq. 6): mean over pixels of sqrt(sum over RGB of (out - target)^2 + eps^2)."""
    return torch.sqrt(((out - target) ** 2).sum(dim=-3) + eps * eps).mean()


def psnr_loss(out: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Minus the mean PSNR (peak 1) of each frame: mean over frames of 10 log10(mean squared error + eps), the
    frames being all dimensions but the last three (C, H, W).

    Why: the score is the mean of per-frame PSNRs, which rewards the same relative error reduction on every frame;
    an L1-like loss averaged over pixels weighs a heavily blurred frame's large errors most and lets a nearly
    sharp frame's small ones go (the fifteenth session's sample-deblur lost 0.09 dB on frames above 40 dB)."""
    mse = ((out - target) ** 2).flatten(-3).mean(-1)
    return 10.0 * torch.log10(mse + eps).mean()


def _forward_differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def _central_magnitude(x: torch.Tensor) -> torch.Tensor:
    gx = (x[..., 1:-1, 2:] - x[..., 1:-1, :-2]) / 2
    gy = (x[..., 2:, 1:-1] - x[..., :-2, 1:-1]) / 2
    return torch.sqrt(gx * gx + gy * gy + 1e-6)


def gradient_loss(out: torch.Tensor, target: torch.Tensor, form: str = "paper") -> torch.Tensor:
    """Image-gradient loss. 'paper' (eq. 7): mean (dx_out - dx_tgt)^2 + mean (dy_out - dy_tgt)^2, forward
    differences. 'reference': mean |grad-magnitude(out) - grad-magnitude(target)|, central differences."""
    if form == "paper":
        ox, oy = _forward_differences(out)
        tx, ty = _forward_differences(target)
        return ((ox - tx) ** 2).mean() + ((oy - ty) ** 2).mean()
    if form == "reference":
        return (_central_magnitude(out) - _central_magnitude(target)).abs().mean()
    raise ValueError(f"gradient_loss form must be 'paper' or 'reference', not {form!r}")


def motion_magnitude_loss(prior: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """Eq. 5: mean of prior(out). A sharp output should have a zero motion-magnitude map.

    Gradients flow into `out` only: the prior's weights and buffers enter as detached tensors and it runs in eval
    mode (its BatchNorm statistics are neither used from the batch nor updated), whatever state it was given in.
    """
    images = out.reshape(-1, *out.shape[-3:])
    frozen = {name: t.detach() for name, t in list(prior.named_parameters()) + list(prior.named_buffers())}
    was_training = prior.training
    prior.eval()
    try:
        maps = functional_call(prior, frozen, (images,))
    finally:
        prior.train(was_training)
    return maps.mean()


class DeblurLoss(nn.Module):
    """L = L_char + lambda1 * L_grad + lambda2 * L_MM (eq. 8; paper: lambda1 = 0.5, lambda2 = 1.0).

    `prior` may be None (or lambda2 = 0) for the ablations without the motion-magnitude loss. The prior is
    held outside this module's parameters, so it never reaches an optimizer through the loss either."""

    def __init__(self, prior: nn.Module | None, lambda1: float = 0.5, lambda2: float = 1.0, eps: float = 1e-3,
                 gradient_form: str = "paper"):
        super().__init__()
        self._prior = [prior]  # a list hides it from nn.Module registration (no parameters, no state_dict)
        self.lambda1, self.lambda2, self.eps, self.gradient_form = lambda1, lambda2, eps, gradient_form

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """(total, {'char', 'grad', 'mm'} as floats for logging); total keeps the autograd graph."""
        char = charbonnier(out, target, self.eps)
        grad = gradient_loss(out, target, self.gradient_form)
        total = char + self.lambda1 * grad
        prior = self._prior[0]
        mm = out.new_zeros(())
        if prior is not None and self.lambda2 != 0:
            mm = motion_magnitude_loss(prior, out)
            total = total + self.lambda2 * mm
        parts = {"char": char.item(), "grad": grad.item(), "mm": mm.item()}
        return total, parts
