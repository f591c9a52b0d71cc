"""Building blocks shared by MMP-Net and MMP-RNN: plain convolutions, residual dense blocks, padding helpers.

Every convolution carries a bias (the published parameter counts include them). Residual dense blocks (RDB) are
the backbone of both networks: a few 3x3 conv + activation layers whose outputs are concatenated to their input,
a 1x1 fusion back to the input width, and a residual add.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    """A 'same'-padded convolution with bias (odd kernels; stride 2 halves even sizes exactly)."""
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=True)


def up_conv(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """A 3x3 transposed convolution that doubles height and width exactly."""
    return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=True)


class DenseLayer(nn.Module):
    """3x3 conv + activation whose output is appended to its input along the channels."""

    def __init__(self, in_channels: int, growth: int, activation: type[nn.Module] = nn.GELU):
        super().__init__()
        self.conv = conv(in_channels, growth, 3)
        self.act = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.act(self.conv(x))], dim=1)


class RDB(nn.Module):
    """Residual dense block: `layers` dense layers of `growth` channels, 1x1 fusion back to `channels`, residual add."""

    def __init__(self, channels: int, growth: int, layers: int = 3, activation: type[nn.Module] = nn.GELU):
        super().__init__()
        self.dense = nn.Sequential(*[DenseLayer(channels + i * growth, growth, activation) for i in range(layers)])
        self.fuse = conv(channels + layers * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuse(self.dense(x))


class RDBDown(nn.Module):
    """An RDB followed by a stride-2 5x5 convolution (the feature-extraction downsampling step of the cell)."""

    def __init__(self, channels: int, growth: int, out_channels: int, layers: int = 3):
        super().__init__()
        self.rdb = RDB(channels, growth, layers)
        self.down = conv(channels, out_channels, 5, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.rdb(x))


class RDBNet(nn.Module):
    """`blocks` RDBs in a row; all their outputs are concatenated, squeezed by a 1x1 conv, then a 3x3 conv."""

    def __init__(self, channels: int, growth: int, blocks: int, layers: int = 3):
        super().__init__()
        self.blocks = nn.ModuleList([RDB(channels, growth, layers) for _ in range(blocks)])
        self.squeeze = conv(blocks * channels, channels, 1)
        self.conv = conv(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return self.conv(self.squeeze(torch.cat(outputs, dim=1)))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad the bottom/right of (..., H, W) up to a multiple of `multiple`; returns (padded, (H, W)).

    Replicate (not reflect) padding works for any size, even when the pad is larger than the image.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        lead = x.shape[:-3]
        flat = x.reshape(-1, *x.shape[-3:])
        flat = F.pad(flat, (0, pw, 0, ph), mode="replicate")
        x = flat.reshape(*lead, *flat.shape[-3:])
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: keep the top-left (H, W)."""
    h, w = size
    return x[..., :h, :w]
