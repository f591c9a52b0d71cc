"""Blur synthesis (paper eq. 1): the CRF of the mean linear irradiance of the window's sharp frames."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmpdata.crf import CRF


def blur_window(frames: Sequence[np.ndarray], crf: CRF) -> np.ndarray:
    """Average uint8 RGB frames in linear space and map back through the CRF, rounded to uint8."""
    return blur_from_linear([crf.to_linear(f) for f in frames], crf)


def blur_from_linear(linear: Sequence[np.ndarray], crf: CRF) -> np.ndarray:
    """:func:`blur_window` on frames already through ``crf.to_linear``: overlapping windows (stride 1) reuse each
    frame's linear image instead of converting it N times."""
    if len(linear) == 0:
        raise ValueError("blur needs at least one frame")
    acc = np.zeros(linear[0].shape, np.float64)
    for x in linear:
        acc += x
    mean = (acc / len(linear)).astype(np.float32)
    return np.rint(np.clip(crf.from_linear(mean) * 255.0, 0, 255)).astype(np.uint8)
