"""MMP-Net: parameter count (hand formula and the paper's 0.85 M), any frame size, output range, normalisation."""
import torch

from mmpmodel.mmpnet import MMPNet


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout


def double_conv_params(cin, cout):
    return conv_params(3, cin, cout) + 2 * cout + conv_params(3, cout, cout) + 2 * cout  # + BatchNorm affine


def test_parameter_count_matches_architecture_and_paper():
    rdb = sum(conv_params(3, 16 + 8 * i, 8) for i in range(3)) + conv_params(1, 40, 16)
    expected = (conv_params(9, 3, 16)
                + double_conv_params(16, 16)
                + sum(double_conv_params(a, b) for a, b in [(16, 32), (32, 64), (64, 128), (128, 128)])
                + sum(double_conv_params(a, b) for a, b in [(256, 64), (128, 32), (64, 16), (32, 16)])
                + rdb + conv_params(1, 16, 1))
    with torch.device("meta"):
        n = sum(p.numel() for p in MMPNet().parameters())
    assert n == expected
    assert abs(n / 0.8514e6 - 1) < 0.001  # REFERENCE_FACTS: 0.8514 M; paper: 0.85 M


def test_any_size_and_range():
    torch.manual_seed(0)
    net = MMPNet().eval()
    with torch.no_grad():
        for h, w in [(37, 53), (16, 16), (5, 9)]:
            y = net(torch.rand(2, 3, h, w))
            assert y.shape == (2, 1, h, w)
            assert y.min() >= 0 and y.max() <= 1


def test_odd_size_equals_crop_of_replicate_padded_input():
    torch.manual_seed(1)
    net = MMPNet().eval()
    x = torch.rand(1, 3, 37, 53)
    padded = torch.nn.functional.pad(x, (0, 64 - 53, 0, 48 - 37), mode="replicate")
    with torch.no_grad():
        assert torch.allclose(net(x), net(padded)[..., :37, :53], atol=1e-6)


def test_input_is_centred_at_half():
    # A uniform 0.5 frame reaches the first convolution as zeros: its output is the bias alone.
    net = MMPNet().eval()
    seen = {}
    net.head.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        net(torch.full((1, 3, 16, 16), 0.5))
    assert torch.allclose(seen["out"], net.head.bias.view(1, -1, 1, 1).expand_as(seen["out"]))


def test_batchnorm_modes_differ_between_train_and_eval():
    # Sanity check that the prior's BatchNorm matters, so keeping it in eval mode (tested in test_mmprnn) is real.
    torch.manual_seed(2)
    net = MMPNet()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        train_out = net.train()(x)
        eval_out = net.eval()(x)
    assert not torch.allclose(train_out, eval_out)
