"""bench/footage_detail.py: the detail measure, hand-computed."""
import torch


def test_detail_of_a_checkerboard_stripes_and_a_flat_frame(bench_script):
    detail = bench_script("footage_detail").detail
    yy, xx = torch.meshgrid(torch.arange(4), torch.arange(6), indexing="ij")
    checker = ((yy + xx) % 2).float()[None, None]
    assert detail(checker) == 2.0  # every horizontal and every vertical neighbour differs by 1
    stripes = (xx % 2).float()[None, None] * 0.5
    assert detail(stripes) == 0.5  # horizontal steps of 0.5, no vertical change
    assert detail(torch.full((1, 3, 4, 6), 0.3)) == 0.0
