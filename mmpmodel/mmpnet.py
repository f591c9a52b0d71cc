"""MMP-Net: the compact network that estimates a per-pixel motion-magnitude prior (blur level) from one blurry frame.

Paper section 3.1 / Fig. 2: a 9x9 convolution for a wide receptive field, a four-level UNet with bilinear
upsampling, a residual dense block to refine, and a 1x1 convolution with a sigmoid so the map lies in [0, 1]
(the prior is normalised by K). 0.85 M parameters.

Two ways to handle sizes that are not multiples of 16 (``padding``):

* ``"replicate"`` (default): replicate-pad the bottom/right to a multiple of 16, run, crop back. Every skip
  connection lines up exactly and the border pixels see a continuation of the image.
* ``"reference"``: what the authors' UNet did: no padding up front; each 2x2 max-pool floors odd sizes and each
  upsampling zero-pads (split left/right, top/bottom) to its skip's size. Imported published weights use it, so they
  give their code's output at every size. Both modes agree exactly when H and W are multiples of 16.

What the network sees (``input_norm``):

* ``"none"`` (default, the paper and the authors' code): the frame in [0, 1], centred at 0.5.
* ``"local"``: each pixel minus its neighbourhood's mean (Gaussian, sigma 8 px), divided by the neighbourhood's
  contrast (root of the Gaussian-weighted (sigma 16 px) mean square of that difference over the three channels,
  plus a floor). Not in the paper. Blur shows as a *ratio* (how much fine detail there is against how much coarse
  contrast), and the paper's network, whose BatchNorm normalises over the batch rather than each picture, has to
  learn that division from data. Trained on varied photographs in a CPU budget it never did: it predicted one level
  for every frame. With the contrast divided out it learns each frame's blur level (docs/training.md, tenth session).

How many frames it sees (``context``):

* ``0`` (default, the paper): the blurry frame alone.
* ``c`` > 0: the frame and its ``c`` nearest non-overlapping neighbours on each side, stacked along the channels
  (``[t-c, ..., t, ..., t+c]``, 3 channels each; :mod:`mmpdata.neighbours` picks them), each normalised on its own.
  Not in the paper. One blurry frame cannot say how far the camera moved during it (a smooth picture and a blurred
  one look alike), while the displacement between neighbouring frames shows the motion directly; the network learns
  the blur level from both (docs/training.md, fourteenth session).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmpdata.errors import FormatError

from .blocks import RDB, conv, crop_to, pad_to_multiple

#: Four 2x2 max-pools: padding the input to a multiple of 16 keeps every skip connection aligned.
SIZE_MULTIPLE = 16
#: The ``padding`` modes of :class:`MMPNet` (see the module docstring).
PADDINGS = ("replicate", "reference")
#: The ``input_norm`` modes of :class:`MMPNet` (see the module docstring).
INPUT_NORMS = ("none", "local")
#: ``input_norm="local"``: Gaussian sigmas (px) of the local mean and of the local contrast, the contrast floor
#: (on the [0, 1] scale: below it, flat regions are not amplified into noise) and the output scale (so a typical
#: normalised frame spans about the [-0.5, 0.5] the centred input of the paper's network spans).
LOCAL_MEAN_SIGMA, LOCAL_CONTRAST_SIGMA, CONTRAST_FLOOR, NORMALISED_SCALE = 8.0, 16.0, 0.02, 0.15


def gaussian_radius(sigma: float) -> int:
    """Kernel radius of :func:`gaussian_blur`: 3 sigma, in whole pixels."""
    return int(3 * sigma)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian of each channel of (B, C, H, W), kernel radius 3 sigma, replicate-padded borders."""
    radius = gaussian_radius(sigma)
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-taps ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def local_contrast(x: torch.Tensor) -> torch.Tensor:
    """``input_norm="local"``: (x - local mean) / (local contrast + floor), scaled; zero-centred like ``x - 0.5``."""
    residual = x - gaussian_blur(x, LOCAL_MEAN_SIGMA)
    contrast = gaussian_blur((residual ** 2).mean(dim=1, keepdim=True), LOCAL_CONTRAST_SIGMA).sqrt()
    return residual / (contrast + CONTRAST_FLOOR) * NORMALISED_SCALE


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
    """Blurry RGB frame (B, 3, H, W) in [0, 1] -> motion-magnitude prior (B, 1, H, W) in [0, 1]; any H, W. With
    ``context`` c > 0 the input is the frame and its neighbours, (B, 3 (2c + 1), H, W)."""

    def __init__(self, width: int = 16, padding: str = "replicate", input_norm: str = "none", context: int = 0):
        super().__init__()
        if context < 0:
            raise ValueError(f"context must be >= 0, not {context}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, not {padding!r}")
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, not {input_norm!r}")
        self.width, self.padding, self.input_norm, self.context = width, padding, input_norm, int(context)
        w = width
        self.head = conv(3 * self.frames_seen, w, 9)
        self.inc = DoubleConv(w, w)
        self.down1, self.down2 = Down(w, 2 * w), Down(2 * w, 4 * w)
        self.down3, self.down4 = Down(4 * w, 8 * w), Down(8 * w, 8 * w)
        self.up1, self.up2 = Up(16 * w, 4 * w), Up(8 * w, 2 * w)
        self.up3, self.up4 = Up(4 * w, w), Up(2 * w, w)
        self.refine = RDB(w, w // 2, 3)
        self.tail = conv(w, 1, 1)

    @property
    def frames_seen(self) -> int:
        """Frames stacked in the input: the frame and ``context`` neighbours on each side."""
        return 2 * self.context + 1

    @property
    def input_reach(self) -> int:
        """How many pixels away the input normalisation looks (``local``: the local mean, then the contrast of the
        difference from it); 0 for the paper's input."""
        if self.input_norm == "local":
            return gaussian_radius(LOCAL_MEAN_SIGMA) + gaussian_radius(LOCAL_CONTRAST_SIGMA)
        return 0

    def config_dict(self) -> dict:
        """What rebuilds this network (``prior_config`` / a prior checkpoint's ``config``)."""
        config = {"width": self.width, "padding": self.padding}
        if self.input_norm != "none":  # absent = "none": checkpoints written before the option still match
            config["input_norm"] = self.input_norm
        if self.context:  # absent = 0, the paper's single frame
            config["context"] = self.context
        return config

    @classmethod
    def from_config(cls, config: dict, source: str = "checkpoint") -> "MMPNet":
        """An untrained MMPNet as ``config`` describes it (missing keys: the defaults); FormatError when unknown."""
        padding = config.get("padding", "replicate")
        if padding not in PADDINGS:
            raise FormatError(f"{source}: unknown MMP-Net padding {padding!r} "
                              f"(this version knows {', '.join(PADDINGS)}); upgrade the toolkit")
        input_norm = config.get("input_norm", "none")
        if input_norm not in INPUT_NORMS:
            raise FormatError(f"{source}: unknown MMP-Net input_norm {input_norm!r} "
                              f"(this version knows {', '.join(INPUT_NORMS)}); upgrade the toolkit")
        context = config.get("context", 0)
        if not isinstance(context, int) or context < 0:
            raise FormatError(f"{source}: MMP-Net context {context!r} is not a number of frames (>= 0)")
        return cls(width=int(config.get("width", 16)), padding=padding, input_norm=input_norm, context=context)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = 3 * self.frames_seen
        if x.shape[1] != channels:
            raise ValueError(f"this MMP-Net reads {self.frames_seen} frame(s) stacked along the channels "
                             f"({channels} channels), got {x.shape[1]}; mmpdata.neighbours picks the neighbours")
        # Centred in the input's precision, then cast once to the weights' (bf16/fp16 under precision.for_inference).
        if self.input_norm == "local":  # each frame normalised on its own
            b, _, h, w = x.shape
            centred = local_contrast(x.float().reshape(b * self.frames_seen, 3, h, w)).reshape(b, channels, h, w)
        else:
            centred = x - 0.5
        centred = centred.to(self.head.weight.dtype)
        if self.padding == "reference":
            # Their UNet needs at least 16 pixels for its four max-pools; smaller frames are replicate-padded.
            h, w = x.shape[-2:]
            x, size = centred, (h, w)
            if h < SIZE_MULTIPLE or w < SIZE_MULTIPLE:
                x = F.pad(x, (0, max(0, SIZE_MULTIPLE - w), 0, max(0, SIZE_MULTIPLE - h)), mode="replicate")
        else:
            x, size = pad_to_multiple(centred, SIZE_MULTIPLE)
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
