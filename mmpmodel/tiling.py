"""Tiled streaming inference: frames too large to run whole (4K on a CPU, or on a small GPU) in bounded memory.

Each frame is cut into a fixed grid of tiles of ``tile`` x ``tile`` pixels; each tile is run on a crop that adds
``overlap`` pixels of context on every side, and only the tile itself (the crop's core) is kept. Every tile has
its own recurrent state (its own :class:`~mmpmodel.mmprnn.Stepper`), and the grid is fixed for the whole stream,
so each tile's output is exactly what the network makes of that crop's video. The activations held at once are
those of one crop; the recurrent features of all crops are kept (they are 1/16 of the pixels).

How close the stitched frame is to the untiled one depends on the overlap. :func:`receptive_radius` counts how far
the network looks: with an overlap of ``receptive_radius(model, frames=T)`` a T-frame stream comes out exactly as
untiled for networks without MMP-Net; with MMP-Net it comes out nearly so, since the prior's bilinear
upsampling (align_corners) samples at positions that depend on the frame size. The default overlap is the reach
of one frame's pass (encoder, recurrent cell, reconstruction) without the state's history, whose influence
fades with distance; docs/benchmarks.md gives the measured difference.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from mmpdata.errors import InputError

from .mmpnet import MMPNet
from .mmprnn import RADIUS, MMPRNN

__all__ = ["ALIGN", "receptive_radius", "default_overlap", "check_tiling", "tile_grid", "TiledStepper"]

#: Tile sizes and overlaps are multiples of this (MMP-Net's four 2x2 pools), so every crop starts on the same
#: pooling and stride-2 grid as the whole frame.
ALIGN = 16


def _chain(modules, scale: float) -> tuple[float, float]:
    """Reach (input pixels) and output scale of modules applied one after the other; a residual or dense block
    reaches as far as its longest path, which runs through every convolution it holds, in registration order."""
    reach = 0.0
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.ConvTranspose2d):
                # Stride-2 transposed 3x3: each output pixel reads the nearest input pixel on either side.
                reach += math.ceil((layer.kernel_size[0] // 2) / layer.stride[0]) * scale
                scale /= layer.stride[0]
            elif isinstance(layer, nn.Conv2d):
                reach += (layer.kernel_size[0] // 2) * layer.dilation[0] * scale
                scale *= layer.stride[0]
    return reach, scale


def _prior_reach(prior: MMPNet) -> float:
    """MMP-Net's reach along its deepest path: the input normalisation (``input_norm="local"``: the local mean's
    Gaussian, then the contrast's, over that difference), head, inc, four (2x2 pool + double conv) down, four
    (bilinear x2 + double conv) up, refinement block."""
    reach = prior.input_reach + _chain([prior.head, prior.inc], 1.0)[0]
    scale = 1.0
    for down in (prior.down1, prior.down2, prior.down3, prior.down4):
        reach += scale  # 2x2 pool
        scale *= 2
        reach += _chain([down.conv], scale)[0]
    for up in (prior.up1, prior.up2, prior.up3, prior.up4):
        reach += scale  # bilinear: one coarse pixel either side
        scale /= 2
        reach += _chain([up.conv], scale)[0]
    return reach + _chain([prior.refine, prior.tail], 1.0)[0]


def receptive_radius(model: MMPRNN, frames: int | None = None) -> int | None:
    """How many input pixels away (in each direction) an output pixel can be influenced.

    ``frames=None``: one frame's pass (encode, one recurrent step from the previous state, reconstruction),
    leaving out how far the state itself has reached. ``frames=T``: everything in a T-frame stream through the
    stepper (the two frames stepped through beyond each end included). None when the network has a global operation
    (channel attention over the fused features), which sees the whole crop."""
    if getattr(model, "fuse_attention", None) is not None:
        return None
    encode = _chain([model.head], 1.0)[0]
    if model.mmam is not None and model.prior is not None:
        encode = max(encode, _prior_reach(model.prior))
    down, _ = _chain([model.down1, model.down2], 1.0)
    encode += down
    cell, _ = _chain([model.fem], 4.0)
    state, _ = _chain([model.to_state], 4.0)
    rebuild, _ = _chain([model.fuse, model.rm, model.decoder], 4.0)
    skip, _ = _chain([model.skip], 1.0)
    if frames is None:
        steps = 0
    else:
        if frames < 1:
            raise InputError("receptive_radius: frames must be at least 1")
        # The last output reads f at step T+3 (T frames + 2 stepped beyond each end), which went through
        # T+3 earlier states.
        steps = frames + 2 * RADIUS - 1
    feature = encode + cell + steps * (cell + state)
    return int(math.ceil(max(feature + rebuild, skip)))


def default_overlap(model: MMPRNN) -> int:
    """The overlap used when none is given: one frame's pass (:func:`receptive_radius`), rounded up to
    :data:`ALIGN`; with a global operation in the network, 128 pixels."""
    radius = receptive_radius(model)
    radius = 128 if radius is None else radius
    return -(-radius // ALIGN) * ALIGN


def _check_aligned(name: str, value: int) -> None:
    if value % ALIGN:
        raise InputError(f"{name} {value} is not a multiple of {ALIGN}: use {-(-value // ALIGN) * ALIGN}")


def check_tiling(tile: int | None, overlap: int | None) -> None:
    """InputError now (before any output is opened) for a tile size or overlap :func:`tile_grid` would refuse."""
    if overlap is not None and not tile:
        raise InputError("--tile-overlap needs --tile")
    if tile:
        tile_grid((tile, tile), tile, 0 if overlap is None else overlap)


def tile_grid(size: tuple[int, int], tile: int, overlap: int) -> list[tuple[slice, slice, slice, slice]]:
    """Tiles of an (H, W) frame: (crop rows, crop cols, core rows inside the crop, core cols inside the crop) for
    each ``tile`` x ``tile`` core (smaller at the right and bottom edges), row by row."""
    if tile < ALIGN:
        raise InputError(f"--tile {tile} is too small: use at least {ALIGN} (a multiple of {ALIGN})")
    _check_aligned("--tile", tile)
    if overlap < 0:
        raise InputError(f"--tile-overlap {overlap} is negative: use 0 or more (a multiple of {ALIGN})")
    _check_aligned("--tile-overlap", overlap)
    h, w = size
    grid = []
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            cy0, cx0 = max(0, y0 - overlap), max(0, x0 - overlap)
            cy1, cx1 = min(h, y1 + overlap), min(w, x1 + overlap)
            grid.append((slice(cy0, cy1), slice(cx0, cx1), slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0)))
    return grid


class TiledStepper:
    """:class:`~mmpmodel.mmprnn.Stepper` over a fixed grid of tiles: same push/finish interface and outputs
    (t, (B, 3, H, W)), one recurrent state per tile. The grid is fixed by the first frame."""

    def __init__(self, model: MMPRNN, tile: int, overlap: int | None = None, ends: str | None = None):
        self.model, self.ends = model, ends
        self.tile = int(tile)
        self.overlap = default_overlap(model) if overlap is None else int(overlap)
        tile_grid((self.tile, self.tile), self.tile, self.overlap)  # validates both numbers
        self._grid: list | None = None
        self._steppers: list = []
        self._size: tuple[int, int] | None = None

    def _start(self, frame: torch.Tensor) -> None:
        self._size = tuple(frame.shape[-2:])
        self._grid = tile_grid(self._size, self.tile, self.overlap)
        self._steppers = [self.model.stepper(self.ends) for _ in self._grid]

    def _stitch(self, per_tile: list[list[tuple[int, torch.Tensor]]], like: torch.Tensor):
        if not per_tile[0]:
            return []
        ready = []
        for k, (t, first) in enumerate(per_tile[0]):
            out = torch.empty((first.shape[0], first.shape[1], *self._size), dtype=first.dtype, device=first.device)
            for (rows, cols, core_rows, core_cols), outs in zip(self._grid, per_tile):
                out[..., rows, cols][..., core_rows, core_cols] = outs[k][1][..., core_rows, core_cols]
            ready.append((t, out))
        return ready

    def push(self, frame: torch.Tensor, mmp: torch.Tensor | None = None) -> list[tuple[int, torch.Tensor]]:
        """Add frame (B, 3, H, W) (optional map (B, 1, H, W)); returns the (t, output) pairs now ready."""
        if frame.dim() != 4 or frame.shape[1] != 3:
            raise InputError(f"stepper frames must be (B, 3, H, W), got {tuple(frame.shape)}")
        if self._grid is None:
            self._start(frame)
        elif tuple(frame.shape[-2:]) != self._size:
            raise InputError(f"frame size changed mid-stream from {self._size} to {tuple(frame.shape[-2:])}")
        per_tile = []
        for (rows, cols, _, _), stepper in zip(self._grid, self._steppers):
            per_tile.append(stepper.push(frame[..., rows, cols], None if mmp is None else mmp[..., rows, cols]))
        return self._stitch(per_tile, frame)

    def finish(self) -> list[tuple[int, torch.Tensor]]:
        """End of the stream: flush every tile; the stepper is then reset (the next frame may have a new size)."""
        if self._grid is None:
            return []
        ready = self._stitch([stepper.finish() for stepper in self._steppers], None)
        self._grid, self._steppers, self._size = None, [], None
        return ready
