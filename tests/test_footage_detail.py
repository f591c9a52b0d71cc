"""bench/footage_detail.py: the detail measure, hand-computed."""
import importlib.util
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _detail():
    spec = importlib.util.spec_from_file_location("footage_detail", ROOT / "bench" / "footage_detail.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.detail


def test_detail_of_a_checkerboard_stripes_and_a_flat_frame():
    detail = _detail()
    yy, xx = torch.meshgrid(torch.arange(4), torch.arange(6), indexing="ij")
    checker = ((yy + xx) % 2).float()[None, None]
    assert detail(checker) == 2.0  # every horizontal and every vertical neighbour differs by 1
    stripes = (xx % 2).float()[None, None] * 0.5
    assert detail(stripes) == 0.5  # horizontal steps of 0.5, no vertical change
    assert detail(torch.full((1, 3, 4, 6), 0.3)) == 0.0
