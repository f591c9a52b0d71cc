"""Growing trained MMP-RNN weights into a deeper preset: same output at step 0, new blocks train, wrong pairs refused."""
import pytest
import torch

from mmpdata.errors import FormatError
from mmpmodel.grow import can_grow, grow_state_dict
from mmpmodel.mmpnet import MMPNet
from mmpmodel.mmprnn import MMPRNN
from mmpmodel.presets import parse_preset

SMALL, BIG = "A1B2C4F5", "A3B3C4F5"


def _pair():
    torch.manual_seed(0)
    prior = MMPNet().eval()
    small = MMPRNN(parse_preset(SMALL), prior=prior).eval()
    for p in small.parameters():  # trained-looking weights: nothing left at its initial value (e.g. zero biases)
        p.data.add_(0.05 * torch.randn_like(p))
    big = MMPRNN(parse_preset(BIG), prior=prior).eval()
    grown = grow_state_dict(small.deblur_state_dict(), small.config, big.config, big.deblur_state_dict())
    big.load_deblur_state_dict(grown)
    return small, big


def test_grown_network_computes_what_the_trained_one_did():
    torch.set_num_threads(1)
    small, big = _pair()
    clip = torch.rand(2, 5, 3, 32, 40)
    with torch.no_grad():
        expected, got = small(clip), big(clip)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # every trained tensor is carried over; the added blocks are real (their dense layers are not all zero)
    grown = big.deblur_state_dict()
    for key, value in small.deblur_state_dict().items():
        if "squeeze.weight" not in key:
            assert torch.equal(grown[key], value), key
    assert grown["fem.blocks.2.dense.0.conv.weight"].abs().sum() > 0
    assert grown["fem.blocks.2.fuse.weight"].abs().sum() == 0


def test_added_blocks_start_learning():
    torch.set_num_threads(1)
    _, big = _pair()
    big.train()
    opt = torch.optim.Adam(big.trainable_parameters(), lr=1e-3)
    clip, target = torch.rand(1, 5, 3, 16, 16), torch.rand(1, 1, 3, 16, 16)
    for _ in range(3):  # the squeeze columns move first, then the zero fusion convs behind them
        opt.zero_grad()
        out = big(clip)
        torch.nn.functional.l1_loss(out, target.expand_as(out)).backward()
        opt.step()
    assert big.fem.blocks[2].fuse.weight.abs().sum() > 0
    assert big.rm.blocks[2].fuse.weight.abs().sum() > 0


def test_only_depth_may_grow():
    assert can_grow(parse_preset("A2B2C16F10"), parse_preset("A4B4C16F10"))
    assert not can_grow(parse_preset("A2B2C16F10"), parse_preset("A2B2C16F10"))  # nothing to grow
    assert not can_grow(parse_preset("A4B4C16F10"), parse_preset("A2B4C16F10"))  # shallower
    assert not can_grow(parse_preset("A2B2C16F10"), parse_preset("A4B4C18F10"))  # wider
    assert not can_grow(parse_preset("A2B2C16F10"), parse_preset("A4B4C16F10-nommam"))
    small = MMPRNN(parse_preset("A1B1C4F5")).deblur_state_dict()
    wide = MMPRNN(parse_preset("A2B2C6F5"))
    with pytest.raises(FormatError, match="only n_a and n_b"):
        grow_state_dict(small, parse_preset("A1B1C4F5"), wide.config, wide.deblur_state_dict())
