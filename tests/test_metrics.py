"""PSNR/SSIM against hand-computed values and an independent SSIM written from the published formula."""
import math

import cv2
import numpy as np
import pytest
import torch

from mmpmodel.metrics import psnr, ssim, tensor_to_uint8, to_uint8


def test_psnr_hand_computed():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 100.0), abs=1e-9)
    assert psnr(a, a) == math.inf
    # one pixel channel off by 255 in a 4x4x3 image: mse = 255^2 / 48
    c = a[:4, :4].copy()
    d = c.copy()
    d[0, 0, 0] = 255
    assert psnr(c, d) == pytest.approx(10 * math.log10(48), abs=1e-9)


def test_float_inputs_are_rounded_not_truncated():
    target = np.full((4, 4, 3), 128, np.uint8)
    out = np.full((4, 4, 3), 127.6 / 255.0, np.float32)  # rounds to 128, would truncate to 127
    assert to_uint8(out)[0, 0, 0] == 128
    assert psnr(out, target) == math.inf
    t = torch.full((3, 2, 2), 127.6 / 255.0)
    assert tensor_to_uint8(t).shape == (2, 2, 3) and tensor_to_uint8(t)[0, 0, 0] == 128


def test_ssim_constant_images_closed_form():
    # constant images: variances are zero, SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)
    a = np.full((32, 32, 3), 100, np.uint8)
    b = np.full((32, 32, 3), 140, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 140 + c1) / (100 ** 2 + 140 ** 2 + c1)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def _reference_ssim(a, b):
    """Wang et al.'s SSIM with an 11x11 Gaussian (sigma 1.5), population (co)variances, valid region, mean over RGB."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    w = k @ k.T
    scores = []
    for ch in range(3):
        x = a[..., ch].astype(np.float64)
        y = b[..., ch].astype(np.float64)
        f = lambda z: cv2.filter2D(z, -1, w, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]  # noqa: E731
        mx, my = f(x), f(y)
        sxx = f(x * x) - mx ** 2
        syy = f(y * y) - my ** 2
        sxy = f(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
        scores.append(m.mean())
    return float(np.mean(scores))


def test_ssim_matches_published_formula():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    noise = rng.normal(0, 20, a.shape)
    b = np.clip(cv2.GaussianBlur(a, (5, 5), 1.0) + noise, 0, 255).astype(np.uint8)
    ours = ssim(b, a)
    assert ours == pytest.approx(_reference_ssim(b, a), abs=1e-6)
    assert 0.0 < ours < 0.9
    # sample covariance (N-1) would give a measurably different value: we are on the population form
    from skimage.metrics import structural_similarity
    sample = structural_similarity(b, a, gaussian_weights=True, sigma=1.5, channel_axis=-1, data_range=255)
    assert abs(sample - ours) > 1e-5
