"""Camera response functions (CRF): the map between scene irradiance and 8-bit pixel values.

Blur is the mean of sharp frames in *linear* (irradiance) space (paper eq. 1), so synthesis takes every frame
through the inverse CRF, averages, and goes back through the CRF. GOPRO's own benchmark blur used gamma 2.2;
REDS publishes a tabulated curve.

A tabulated curve (``.npy``) is the *inverse* CRF: entry ``v`` of a 256-long table is the relative irradiance that
produces 8-bit value ``v`` (values in [0, 1] or any positive scale, normalised by the last entry; a (3, 256) table
gives one curve per RGB channel). It must be non-decreasing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmpdata.errors import InputError

BUILTIN = ("gamma2.2", "srgb", "linear")


def _as_unit(img: np.ndarray) -> np.ndarray:
    """uint8 → float32 in [0, 1]; float input is taken as already in [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    return np.asarray(img, dtype=np.float32)


@dataclass
class CRF:
    """A camera response curve with its inverse; both work on float arrays in [0, 1] (uint8 accepted by to_linear)."""

    name: str
    kind: str  # "gamma" | "srgb" | "linear" | "table"
    gamma: float = 1.0
    table: np.ndarray | None = field(default=None, repr=False)  # (C, 256) inverse CRF, C = 1 or 3

    def to_linear(self, img: np.ndarray) -> np.ndarray:
        """Pixel values → relative irradiance (the inverse CRF)."""
        if img.dtype == np.uint8:
            return self._table_lookup(img)
        x = np.clip(_as_unit(img), 0.0, 1.0)
        if self.kind == "linear":
            return x
        if self.kind == "gamma":
            return np.power(x, np.float32(self.gamma), dtype=np.float32)
        if self.kind == "srgb":
            return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)
        return self._per_channel(x, lambda c, v: np.interp(v * 255.0, np.arange(256), c))

    def from_linear(self, lin: np.ndarray) -> np.ndarray:
        """Relative irradiance → pixel values in [0, 1] (the CRF itself); not quantised."""
        y = np.clip(np.asarray(lin, dtype=np.float32), 0.0, 1.0)
        if self.kind == "linear":
            return y
        if self.kind == "gamma":
            return np.power(y, np.float32(1.0 / self.gamma), dtype=np.float32)
        if self.kind == "srgb":
            return np.where(y <= 0.0031308, y * 12.92, 1.055 * y ** (1 / 2.4) - 0.055).astype(np.float32)
        return self._per_channel(y, lambda c, v: np.interp(v, c, np.arange(256)) / 255.0)

    def _table_lookup(self, img: np.ndarray) -> np.ndarray:
        """uint8 → linear through a 256-entry lookup table (exact, and ~10x faster than evaluating the curve)."""
        if self.table is None:
            self.table = self.to_linear(np.arange(256, dtype=np.float32)[None] / 255.0)
        if self.table.shape[0] == 1:
            return self.table[0][img]
        out = np.empty(img.shape, np.float32)
        for ch in range(3):
            out[..., ch] = self.table[ch][img[..., ch]]
        return out

    def _per_channel(self, x: np.ndarray, fn) -> np.ndarray:
        if self.table.shape[0] == 1:
            return fn(self.table[0], x).astype(np.float32)
        out = np.empty(x.shape, np.float32)
        for ch in range(3):
            out[..., ch] = fn(self.table[ch], x[..., ch])
        return out


def load_crf_table(path: Path) -> np.ndarray:
    """Read and check a tabulated inverse CRF: (256,) or (3, 256), non-decreasing; returned as (C, 256) in [0, 1]."""
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"--crf {path}: cannot read it as a .npy array ({exc}); pass a .npy with 256 or 3x256 values") from None
    table = np.asarray(table, dtype=np.float64)
    if table.shape == (256,):
        table = table[None]
    if table.shape not in ((1, 256), (3, 256)):
        raise InputError(f"--crf {path}: shape {table.shape} is not (256,) or (3, 256); save one inverse-CRF value per 8-bit level")
    if not np.all(np.isfinite(table)) or np.any(np.diff(table, axis=1) < 0) or np.any(table[:, -1] <= 0):
        raise InputError(f"--crf {path}: the curve must be finite, non-decreasing and end above 0")
    table = (table - table[:, :1]) / (table[:, -1:] - table[:, :1])
    # Break ties so the curve can be inverted by interpolation (flat runs get a vanishing slope).
    table = table + np.arange(256) * 1e-9
    return (table / table[:, -1:]).astype(np.float32)


def get_crf(spec: str) -> CRF:
    """Parse a ``--crf`` value: ``gamma2.2``, ``gammaG`` for any G > 0, ``srgb``, ``linear`` or a path to a table."""
    s = str(spec).strip()
    low = s.lower()
    if low == "linear":
        return CRF("linear", "linear")
    if low == "srgb":
        return CRF("srgb", "srgb")
    if low.startswith("gamma"):
        try:
            g = float(low[5:])
        except ValueError:
            g = -1.0
        if g > 0:
            return CRF(f"gamma{low[5:]}", "gamma", gamma=g)
    path = Path(s)
    if path.suffix == ".npy":
        if not path.is_file():
            raise InputError(f"--crf {s}: file not found; pass an existing .npy table or one of {', '.join(BUILTIN)}")
        return CRF(f"table:{path.name}", "table", table=load_crf_table(path))
    raise InputError(f"--crf {s!r} is not a known camera response; use one of {', '.join(BUILTIN)} or a path to a .npy table")
