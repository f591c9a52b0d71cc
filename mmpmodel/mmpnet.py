"""MMP-Net: the compact network that estimates a per-pixel motion-magnitude prior (blur level) from one blurry frame.

Paper section 3.1 / Fig. 2: a 9x9 convolution for a wide receptive field, a four-level UNet with bilinear
upsampling, a residual dense block to refine, and a 1x1 convolution with a sigmoid so the map lies in [0, 1]
(the prior is normalised by K). 0.85 M parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import RDB, conv, crop_to, pad_to_multiple

#: Four 2x2 max-pools: padding the input to a multiple of 16 keeps every skip connection aligned.
SIZE_MULTIPLE = 16


class DoubleConv(nn.Module):
    """[3x3 conv -> BatchNorm -> ReLU] x 2 (the UNet's basic unit)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv(in_channels, out_channels, 3), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            conv(out_channels, out_channels, 3), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Down(nn.Module):
    """2x2 max-pool, then a double conv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.max_pool2d(x, 2))


class Up(nn.Module):
    """Bilinear x2 (align_corners=True), pad to the skip's size, concatenate [skip, up], double conv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dh or dw:
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return self.conv(torch.cat([skip, x], dim=1))


class MMPNet(nn.Module):
    """Blurry RGB frame (B, 3, H, W) in [0, 1] -> motion-magnitude prior (B, 1, H, W) in [0, 1]; any H, W."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.head = conv(3, w, 9)
        self.inc = DoubleConv(w, w)
        self.down1, self.down2 = Down(w, 2 * w), Down(2 * w, 4 * w)
        self.down3, self.down4 = Down(4 * w, 8 * w), Down(8 * w, 8 * w)
        self.up1, self.up2 = Up(16 * w, 4 * w), Up(8 * w, 2 * w)
        self.up3, self.up4 = Up(4 * w, w), Up(2 * w, w)
        self.refine = RDB(w, w // 2, 3)
        self.tail = conv(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x - 0.5, SIZE_MULTIPLE)
        x1 = self.inc(self.head(x))
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        y = self.down4(x4)
        y = self.up1(y, x4)
        y = self.up2(y, x3)
        y = self.up3(y, x2)
        y = self.up4(y, x1)
        y = torch.sigmoid(self.tail(self.refine(y)))
        return crop_to(y, size)
