"""Blur synthesis (paper eq. 1): the CRF of the mean linear irradiance of the window's sharp frames."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmpdata.crf import CRF


def blur_window(frames: Sequence[np.ndarray], crf: CRF) -> np.ndarray:
    """Average uint8 RGB frames in linear space and map back through the CRF, rounded to uint8."""
    if len(frames) == 0:
        raise ValueError("blur_window needs at least one frame")
    acc = np.zeros(frames[0].shape, np.float64)
    for f in frames:
        acc += crf.to_linear(f)
    mean = (acc / len(frames)).astype(np.float32)
    return np.rint(np.clip(crf.from_linear(mean) * 255.0, 0, 255)).astype(np.uint8)
