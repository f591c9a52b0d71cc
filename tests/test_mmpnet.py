"""MMP-Net: parameter count (hand formula and the paper's 0.85 M), any frame size, output range, normalisation."""
import pytest
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


def test_local_contrast_matches_an_independent_gaussian_filter():
    # scipy's Gaussian (truncate 3 sigma, 'nearest' = replicate borders) computes the same normalisation.
    import numpy as np
    from scipy.ndimage import gaussian_filter

    from mmpmodel import mmpnet

    rng = np.random.default_rng(0)
    x = rng.random((3, 40, 52))
    g = lambda a, s: gaussian_filter(a, s, mode="nearest", truncate=3.0)  # noqa: E731
    residual = x - np.stack([g(c, mmpnet.LOCAL_MEAN_SIGMA) for c in x])
    contrast = np.sqrt(g((residual ** 2).mean(0), mmpnet.LOCAL_CONTRAST_SIGMA))
    expected = residual / (contrast + mmpnet.CONTRAST_FLOOR) * mmpnet.NORMALISED_SCALE
    got = mmpnet.local_contrast(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_local_input_ignores_brightness_and_contrast(monkeypatch):
    # The point of input_norm="local": a frame and a brighter, 3x more contrasted copy look the same to the network
    # (exactly without the contrast floor); a flat frame reaches it as zeros, like the paper's 0.5 grey.
    from mmpmodel import mmpnet

    torch.manual_seed(0)
    x = 0.2 + 0.2 * torch.rand(1, 3, 48, 48, dtype=torch.float64)
    brighter = 3 * (x - 0.3) + 0.5
    monkeypatch.setattr(mmpnet, "CONTRAST_FLOOR", 0.0)
    assert torch.allclose(mmpnet.local_contrast(brighter), mmpnet.local_contrast(x), atol=1e-9)
    monkeypatch.undo()
    assert not torch.allclose(mmpnet.local_contrast(brighter), mmpnet.local_contrast(x), atol=1e-3)  # the floor
    assert torch.allclose(mmpnet.local_contrast(torch.full((1, 3, 20, 24), 0.7, dtype=torch.float64)),
                          torch.zeros(1, 3, 20, 24, dtype=torch.float64), atol=1e-12)


def test_input_norm_is_recorded_and_rebuilt():
    from mmpdata.errors import FormatError

    net = MMPNet(input_norm="local")
    assert net.config_dict() == {"width": 16, "padding": "replicate", "input_norm": "local"}
    assert MMPNet().config_dict() == {"width": 16, "padding": "replicate"}  # unchanged for the paper's network
    rebuilt = MMPNet.from_config(net.config_dict())
    rebuilt.load_state_dict(net.state_dict())
    plain = MMPNet.from_config({})  # same weights, the paper's input: a different output
    plain.load_state_dict(net.state_dict())
    for n in (net, rebuilt, plain):
        n.eval()
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        assert torch.equal(net(x), rebuilt(x))
        assert not torch.allclose(net(x), plain(x))
    with pytest.raises(FormatError, match="upgrade the toolkit"):
        MMPNet.from_config({"input_norm": "global"}, "x.pt")


def test_context_network_reads_each_neighbour_normalised_on_its_own(monkeypatch):
    # context=1: the frame and its two neighbours stacked along the channels, each contrast-normalised alone, so a
    # brighter, more contrasted neighbour reads the same (exactly without the floor) while a moved one does not.
    from mmpdata.errors import FormatError
    from mmpmodel import mmpnet

    torch.manual_seed(0)
    net = MMPNet(input_norm="local", context=1).double().eval()
    assert net.head.in_channels == 9 and net.config_dict()["context"] == 1
    assert sum(p.numel() for p in net.parameters()) - sum(p.numel() for p in MMPNet().parameters()) == 6 * 81 * 16
    frames = [0.2 + 0.2 * torch.rand(1, 3, 32, 48, dtype=torch.float64) for _ in range(3)]
    monkeypatch.setattr(mmpnet, "CONTRAST_FLOOR", 0.0)
    with torch.no_grad():
        base = net(torch.cat(frames, 1))
        brighter = net(torch.cat([frames[0], frames[1], 3 * (frames[2] - 0.3) + 0.5], 1))
        moved = net(torch.cat([frames[0], frames[1], frames[2].roll(3, -1)], 1))
    assert torch.allclose(base, brighter, atol=1e-9)
    assert not torch.allclose(base, moved, atol=1e-6)
    with pytest.raises(ValueError, match="9 channels"):
        net(frames[0])
    rebuilt = MMPNet.from_config(net.config_dict())
    assert rebuilt.context == 1 and rebuilt.head.in_channels == 9
    assert MMPNet.from_config({}).context == 0 and "context" not in MMPNet().config_dict()
    with pytest.raises(FormatError, match="context"):
        MMPNet.from_config({"context": -1}, "x.pt")
