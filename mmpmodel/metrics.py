"""Image quality metrics under one explicit protocol: RGB uint8 (rounded), full frame, no border crop.

The published MMP-RNN numbers truncated to uint8 before scoring; we round, so a float output of 0.999 scores as 255
rather than 254. SSIM is the Gaussian-weighted form (sigma 1.5) with population covariance over the colour image,
which is what scikit-image computes with the options below and what the published numbers used.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from skimage.metrics import structural_similarity

__all__ = ["to_uint8", "psnr", "ssim", "tensor_to_uint8"]


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float in [0, 1] (or already uint8) -> uint8 by rounding, clipped; (H, W, 3) layout kept."""
    if img.dtype == np.uint8:
        return img
    return np.clip(np.rint(np.asarray(img, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """A (3, H, W) or (B, 3, H, W) float tensor in [0, 1] -> uint8 (H, W, 3) or (B, H, W, 3), rounded."""
    x = x.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8).cpu()
    if x.dim() == 3:
        return x.permute(1, 2, 0).numpy()
    return x.permute(0, 2, 3, 1).numpy()


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (floats in [0, 1] are rounded to uint8 first); inf when identical."""
    a = to_uint8(output).astype(np.float64)
    b = to_uint8(target).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0 ** 2 / mse)


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    """SSIM as published: Gaussian window sigma 1.5, population covariance, over RGB, data range 255."""
    a = to_uint8(output)
    b = to_uint8(target)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {a.shape} vs {b.shape}")
    channel_axis = -1 if a.ndim == 3 else None
    return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       channel_axis=channel_axis, data_range=255))
