"""Losses on hand-computed values; the motion-magnitude loss never trains or disturbs the prior."""
import math

import pytest
import torch
from torch import nn

from mmpmodel.losses import DeblurLoss, charbonnier, gradient_loss, motion_magnitude_loss
from mmpmodel.mmpnet import MMPNet


def test_charbonnier_colour_form():
    out = torch.zeros(1, 3, 1, 2)
    target = torch.zeros(1, 3, 1, 2)
    target[0, :, 0, 0] = torch.tensor([3.0, 4.0, 0.0])  # pixel 1 differs by (3, 4, 0); pixel 2 is exact
    expected = (math.sqrt(25 + 1e-6) + 1e-3) / 2
    assert charbonnier(out, target).item() == pytest.approx(expected, rel=1e-6)
    assert charbonnier(out, target, eps=0.5).item() == pytest.approx((math.sqrt(25.25) + 0.5) / 2, rel=1e-6)
    # Extra leading dims (time) only add pixels to the mean.
    assert charbonnier(out[None], target[None]).item() == pytest.approx(expected, rel=1e-6)


def test_gradient_loss_paper_form():
    out = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).view(1, 1, 2, 2)
    target = torch.zeros_like(out)
    # dx = [1, 2] -> mean square 2.5; dy = [2, 3] -> 6.5
    assert gradient_loss(out, target).item() == pytest.approx(9.0)
    # A constant offset has no gradient.
    x = torch.rand(2, 3, 5, 6)
    assert gradient_loss(x + 0.3, x).item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_loss_reference_form():
    out = torch.zeros(1, 1, 3, 3)
    out[0, 0, 1, 2] = 2.0  # right neighbour of the centre: gx = (2 - 0) / 2 = 1
    out[0, 0, 2, 1] = 1.5  # lower neighbour: gy = 0.75
    target = torch.zeros_like(out)
    expected = math.sqrt(1 + 0.75 ** 2 + 1e-6) - math.sqrt(1e-6)
    assert gradient_loss(out, target, form="reference").item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError):
        gradient_loss(out, target, form="other")


def tiny_prior():
    """conv 1x1 (weights 1, 2, 3) then BatchNorm with running mean 1, var 4: map = (w.x - 1) / sqrt(4 + eps)."""
    prior = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False), nn.BatchNorm2d(1))
    with torch.no_grad():
        prior[0].weight.copy_(torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1))
        prior[1].running_mean.fill_(1.0)
        prior[1].running_var.fill_(4.0)
    return prior


def test_motion_magnitude_loss_value_and_gradients():
    prior = tiny_prior().train()  # deliberately not frozen: the loss must still leave it alone
    out = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.0, 1.0]]).view(2, 3, 1, 1).requires_grad_(True)
    scale = 1 / math.sqrt(4 + 1e-5)
    expected = ((1.4 - 1) * scale + (3.5 - 1) * scale) / 2
    loss = motion_magnitude_loss(prior, out)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.allclose(out.grad, (torch.tensor([1.0, 2.0, 3.0]) * scale / 2).view(1, 3, 1, 1).expand(2, 3, 1, 1))
    assert prior[0].weight.grad is None and prior[1].weight.grad is None
    assert prior[1].running_mean.item() == 1.0 and prior[1].running_var.item() == 4.0
    assert prior.training  # mode restored


def test_motion_magnitude_loss_with_mmpnet_reaches_output_only():
    torch.manual_seed(0)
    prior = MMPNet().eval().requires_grad_(False)
    out = torch.rand(1, 2, 3, 16, 16, requires_grad=True)  # (B, T, 3, H, W) is accepted
    loss = motion_magnitude_loss(prior, out)
    with torch.no_grad():
        assert loss.item() == pytest.approx(prior(out.flatten(0, 1)).mean().item(), rel=1e-6)
    loss.backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert all(p.grad is None for p in prior.parameters())


def test_deblur_loss_total_and_parts():
    torch.manual_seed(1)
    prior = tiny_prior().eval()
    out, target = torch.rand(2, 3, 6, 5), torch.rand(2, 3, 6, 5)
    total, parts = DeblurLoss(prior)(out, target)
    char, grad, mm = charbonnier(out, target), gradient_loss(out, target), motion_magnitude_loss(prior, out)
    assert total.item() == pytest.approx((char + 0.5 * grad + 1.0 * mm).item(), rel=1e-6)
    assert parts == pytest.approx({"char": char.item(), "grad": grad.item(), "mm": mm.item()}, rel=1e-6)
    total2, parts2 = DeblurLoss(None, lambda1=2.0)(out, target)
    assert total2.item() == pytest.approx((char + 2.0 * grad).item(), rel=1e-6) and parts2["mm"] == 0.0
    assert list(DeblurLoss(prior).parameters()) == []


def test_deblur_mse_term_adds_the_mean_squared_error():
    """--mse-weight W adds W x the mean squared error, computed here by hand on a constant error."""
    from mmpmodel.train_config import DeblurTrainConfig
    from mmpmodel.train_deblur import deblur_loss

    out, target = torch.full((1, 3, 4, 4), 0.5), torch.full((1, 3, 4, 4), 0.3)  # error 0.2 everywhere
    cfg = DeblurTrainConfig(char_weight=0.0, grad_weight=0.0, mse_weight=10.0)
    total, parts = deblur_loss(out, target, None, cfg)
    assert parts["mse"] == pytest.approx(0.04) and total.item() == pytest.approx(0.4)
    plain, parts = deblur_loss(out, target, None, DeblurTrainConfig(grad_weight=0.0))
    assert plain.item() == pytest.approx((3 * 0.2 ** 2 + 1e-6) ** 0.5, rel=1e-5)  # colour Charbonnier
    assert "mse" not in parts


def test_psnr_term_is_minus_the_mean_of_per_frame_psnrs():
    """--psnr-weight W adds W x (minus the mean PSNR of each frame), by hand: two frames with constant errors 0.1 and
    0.01 have PSNRs 20 and 40 dB, so the term is -30 (the PSNR of their pooled error would be 22.97 dB; the
    1e-8 added to each squared error moves it by 2e-4)."""
    from mmpmodel.losses import psnr_loss
    from mmpmodel.train_config import DeblurTrainConfig
    from mmpmodel.train_deblur import deblur_loss

    target = torch.zeros(1, 2, 3, 4, 4)
    out = target.clone()
    out[0, 0] += 0.1
    out[0, 1] += 0.01
    assert psnr_loss(out, target).item() == pytest.approx(-30.0, abs=1e-3)
    cfg = DeblurTrainConfig(char_weight=0.0, grad_weight=0.0, psnr_weight=0.5)
    total, parts = deblur_loss(out, target, None, cfg)
    assert parts["neg_psnr"] == pytest.approx(-30.0, abs=1e-3) and total.item() == pytest.approx(-15.0, abs=1e-3)
    assert "neg_psnr" not in deblur_loss(out, target, None, DeblurTrainConfig())[1]
