"""Building blocks: parameter and MAC counts against hand formulas, residual identity, padding helpers."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mmpmodel.blocks import RDB, RDBDown, RDBNet, conv, crop_to, pad_to_multiple, up_conv


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout


def rdb_params(c, g, n=3):
    return sum(conv_params(3, c + i * g, g) for i in range(n)) + conv_params(1, c + n * g, c)


def rdb_macs(c, g, hw, n=3):
    return hw * (sum(9 * (c + i * g) * g for i in range(n)) + (c + n * g) * c)


def nparams(m):
    return sum(p.numel() for p in m.parameters())


def macs(module, x):
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(x)
    return fc.get_total_flops() // 2


@pytest.mark.parametrize("c,g,n", [(16, 8, 3), (4, 4, 3), (10, 15, 2)])
def test_rdb_parameter_count(c, g, n):
    assert nparams(RDB(c, g, n)) == rdb_params(c, g, n)


def test_rdbnet_and_down_parameter_counts():
    c, g, b = 20, 8, 3
    assert nparams(RDBNet(c, g, b)) == b * rdb_params(c, g) + conv_params(1, b * c, c) + conv_params(3, c, c)
    assert nparams(RDBDown(6, 9, 12)) == rdb_params(6, 9) + conv_params(5, 6, 12)
    # Transposed conv: cin * cout * k * k weights + cout biases.
    assert nparams(up_conv(10, 4)) == 10 * 4 * 9 + 4


def test_mac_counts_match_hand_formulas():
    h, w = 12, 20
    assert macs(conv(3, 5, 7), torch.zeros(1, 3, h, w, device="meta")) == 7 * 7 * 3 * 5 * h * w
    # Stride 2 halves both sides of the output.
    assert macs(conv(4, 8, 5, stride=2), torch.zeros(1, 4, h, w, device="meta")) == 25 * 4 * 8 * (h // 2) * (w // 2)
    assert macs(RDB(6, 4), torch.zeros(2, 6, h, w, device="meta")) == 2 * rdb_macs(6, 4, h * w)
    c, g, b = 5, 3, 2
    expected = b * rdb_macs(c, g, h * w) + (b * c * c + 9 * c * c) * h * w
    assert macs(RDBNet(c, g, b), torch.zeros(1, c, h, w, device="meta")) == expected


def test_strided_and_transposed_shapes():
    x = torch.zeros(1, 4, 8, 12)
    assert conv(4, 6, 5, stride=2)(x).shape == (1, 6, 4, 6)
    assert up_conv(4, 2)(x).shape == (1, 2, 16, 24)


def test_rdb_is_identity_when_fusion_is_zero():
    torch.manual_seed(0)
    block = RDB(4, 3)
    torch.nn.init.zeros_(block.fuse.weight)
    torch.nn.init.zeros_(block.fuse.bias)
    x = torch.randn(2, 4, 5, 7)
    assert torch.equal(block(x), x)


def test_rdb_concatenates_dense_outputs():
    # The fusion conv sees the input plus every layer's growth: changing the input's channels reaches the fusion.
    block = RDB(2, 3, 2)
    assert block.fuse.in_channels == 2 + 2 * 3
    assert [layer.conv.in_channels for layer in block.dense] == [2, 5]


@pytest.mark.parametrize("h,w,m", [(37, 53, 4), (5, 3, 16), (16, 32, 16)])
def test_pad_to_multiple_replicates_and_crops_back(h, w, m):
    x = torch.rand(2, 3, 3, h, w)
    padded, size = pad_to_multiple(x, m)
    assert size == (h, w)
    assert padded.shape[-2] % m == 0 and padded.shape[-1] % m == 0
    assert padded.shape[-2] - h < m and padded.shape[-1] - w < m
    assert torch.equal(crop_to(padded, size), x)
    # Padding repeats the last row / column.
    assert torch.equal(padded[..., h:, :w], x[..., h - 1:h, :].expand_as(padded[..., h:, :w]))
    assert torch.equal(padded[..., :h, w:], x[..., :, w - 1:w].expand_as(padded[..., :h, w:]))
