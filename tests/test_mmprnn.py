"""MMP-RNN: parameter counts, shapes at odd sizes, streaming == whole clip, frozen prior, MMAM, ablations, presets."""
import pytest
import torch

from mmpdata.errors import FormatError, InputError
from mmpmodel.mmpnet import MMPNet
from mmpmodel.mmprnn import MMAM, MMPRNN, deblur_frames
from mmpmodel.presets import MMPRNNConfig, parse_preset

PRIOR_PARAMS = 851417  # MMP-Net, counted independently in test_mmpnet.py


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout


def rdb_params(c, g, n=3):
    return sum(conv_params(3, c + i * g, g) for i in range(n)) + conv_params(1, c + n * g, c)


def rdbnet_params(c, g, blocks):
    return blocks * rdb_params(c, g) + conv_params(1, blocks * c, c) + conv_params(3, c, c)


def mmprnn_params(a, b, c, mmam=True, l_state=True, prior=True):
    """Hand count from REFERENCE_FACTS.md (MMP-RNN section)."""
    n = conv_params(5, 3, c)
    if mmam and prior:
        n += conv_params(1, 1, c // 2) + conv_params(1, c // 2, c)
    n += rdb_params(c, c) + conv_params(5, c, 2 * c)
    n += rdb_params(2 * c, int(1.5 * c)) + conv_params(5, 2 * c, 2 * c if l_state else 4 * c)
    n += rdbnet_params(5 * c, 2 * c, a)
    n += conv_params(3, 5 * c, c) + rdb_params(c, c) + conv_params(3, c, c)
    n += conv_params(1, 25 * c, 5 * c) + rdbnet_params(5 * c, 2 * c, b)
    n += conv_params(3, 5 * c, 2 * c) + conv_params(3, 2 * c, c) + conv_params(5, c, 3) + conv_params(9, 3, 3)
    return n + (PRIOR_PARAMS if prior else 0)


def nparams(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,paper", [("A3B4C16F5", 1.9739e6), ("A7B8C16F8", 2.9132e6), ("A9B10C18F8", 4.0543e6),
                                        ("A1B2C4F5", None), ("A2B1C6F6-nommam", None), ("A1B1C8F5-nondf", None),
                                        ("A2B2C4F5-noprior", None)])
def test_parameter_counts(name, paper):
    cfg = parse_preset(name)
    with torch.device("meta"):
        n = nparams(MMPRNN(cfg))
    assert n == mmprnn_params(cfg.n_a, cfg.n_b, cfg.n_c, cfg.mmam, cfg.l_state, cfg.prior)
    if paper is not None:
        assert abs(n / paper - 1) < 0.005


def test_presets_parse_and_reject_nonsense():
    assert parse_preset("A7B8C16F8") == MMPRNNConfig(7, 8, 16, 8, mmam=True, l_state=True, prior=True)
    assert parse_preset("a9b10c18f8-nommam-nondf") == MMPRNNConfig(9, 10, 18, 8, mmam=False, l_state=False)
    no_prior = parse_preset("A1B1C4F5-noprior")
    assert not no_prior.prior and not no_prior.mmam
    for name in ["A7B8C16F8", "A9B10C18F8-nommam-nondf", "A1B1C4F5-noprior", "A1B1C4F5-nondf-noprior"]:
        assert parse_preset(parse_preset(name).name) == parse_preset(name)
    for bad in ["A7B8C16", "mmpnet2", "A0B1C4F5", "A1B1C1F5", "A1B1C4F4", "A1B1C4F5-foo", "", "A1 B1C4F5"]:
        with pytest.raises(InputError):
            parse_preset(bad)


def small(name="A1B1C4F5", seed=0):
    torch.manual_seed(seed)
    return MMPRNN(parse_preset(name)).eval()


@pytest.mark.parametrize("name", ["A1B1C4F5", "A1B1C4F5-nondf", "A1B1C4F5-noprior"])
def test_forward_shapes_at_odd_size(name):
    model = small(name)
    clip = torch.rand(2, 6, 3, 37, 53)
    with torch.no_grad():
        out = model(clip)
        every = model.forward_all(clip)
    assert out.shape == (2, 2, 3, 37, 53)
    assert every.shape == (2, 6, 3, 37, 53)
    assert torch.isfinite(every).all()


def test_forward_all_is_forward_on_the_clip_extended_at_its_ends():
    # reflect: frames 2, 1 before frame 0 and T-2, T-3 after frame T-1; replicate (default): the end frames twice.
    model = small()
    clip = torch.rand(1, 4, 3, 13, 11)
    reflected = torch.cat([clip[:, [2, 1]], clip, clip[:, [2, 1]]], dim=1)
    replicated = torch.cat([clip[:, :1], clip[:, :1], clip, clip[:, -1:], clip[:, -1:]], dim=1)
    with torch.no_grad():
        assert torch.allclose(model.forward_all(clip, ends="reflect"), model(reflected), atol=1e-6)
        assert torch.allclose(model.forward_all(clip), model(replicated), atol=1e-6)
        assert not torch.allclose(model.forward_all(clip, ends="reflect")[:, 0], model.forward_all(clip)[:, 0])
        model.ends = "reflect"  # what load_deblur sets for a network trained with --ends reflect
        assert torch.allclose(model.forward_all(clip), model(reflected), atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("ends", ["reflect", "replicate"])
def test_stepper_equals_forward_all_at_every_length(n, ends):
    # streaming (one frame at a time, the first output only once frame 2 is in under reflect) gives every frame
    # exactly once, equal to the whole clip at once; short clips clamp what cannot be reflected.
    from mmpmodel.mmprnn import end_index

    assert end_index(5, "reflect") == [2, 1, 0, 1, 2, 3, 4, 3, 2]
    assert end_index(2, "reflect") == [1, 1, 0, 1, 0, 0] and end_index(1, "reflect") == [0] * 5
    model = small()
    clip = torch.rand(1, n, 3, 12, 16)
    stepper = model.stepper(ends)
    got = {}
    with torch.no_grad():
        for t in range(n):
            ready = stepper.push(clip[:, t])
            assert all(i <= t for i, _ in ready)
            got.update(ready)
        got.update(stepper.finish())
        expected = model.forward_all(clip, ends=ends)
    assert sorted(got) == list(range(n))
    for t in range(n):
        assert torch.allclose(got[t], expected[:, t], atol=1e-5)


def test_forward_frames_depend_on_two_neighbours_each_side():
    # Output t (clip frame 2) must change when frame 4 changes and must not change when frame 5 changes
    # (frame 5 only influences later outputs through f_5, which frame 2's reconstruction never reads).
    model = small()
    clip = torch.rand(1, 6, 3, 8, 8)
    with torch.no_grad():
        base = model(clip)
        c4, c5 = clip.clone(), clip.clone()
        c4[:, 4] = torch.rand(3, 8, 8)
        c5[:, 5] = torch.rand(3, 8, 8)
        assert not torch.allclose(model(c4)[:, 0], base[:, 0])
        assert torch.equal(model(c5)[:, 0], base[:, 0])
        assert not torch.allclose(model(c5)[:, 1], base[:, 1])


@pytest.mark.parametrize("frames", [1, 2, 7])
def test_stepper_equals_whole_clip(frames):
    model = small("A1B2C4F5")
    clip = torch.rand(1, frames, 3, 21, 18)
    with torch.no_grad():
        expected = model.forward_all(clip)
        stepper = model.stepper()
        got, ready_at = {}, {}
        for i in range(frames):
            for t, out in stepper.push(clip[:, i]):
                got[t] = out
                ready_at[t] = i
        for t, out in stepper.finish():
            got[t] = out
    assert sorted(got) == list(range(frames))
    for t in range(frames):
        assert got[t].shape == (1, 3, 21, 18)
        assert torch.allclose(got[t], expected[:, t], atol=1e-5), t
    # Frame t is emitted exactly when frame t + 2 arrives (the rest at finish()).
    assert ready_at == {t: t + 2 for t in range(frames - 2)}


@pytest.mark.parametrize("name", ["A1B1C4F5-nondf-noprior", "A1B1C4F5-nommam"])
def test_stepper_equals_whole_clip_for_ablations(name):
    model = small(name)
    clip = torch.rand(1, 6, 3, 9, 7)
    with torch.no_grad():
        expected = model.forward_all(clip)
        stepper = model.stepper()
        outs = [o for i in range(6) for _, o in stepper.push(clip[:, i])] + [o for _, o in stepper.finish()]
    assert torch.allclose(torch.stack(outs, dim=1), expected, atol=1e-5)


def test_stepper_with_given_maps_equals_whole_clip():
    model = small()
    clip, maps = torch.rand(1, 5, 3, 8, 8), torch.rand(1, 5, 1, 8, 8)
    with torch.no_grad():
        expected = model.forward_all(clip, mmp=maps)
        stepper = model.stepper()
        outs = [o for i in range(5) for _, o in stepper.push(clip[:, i], maps[:, i])]
        outs += [o for _, o in stepper.finish()]
    assert torch.allclose(torch.stack(outs, dim=1), expected, atol=1e-5)


def test_stepper_runs_each_frame_encoder_once():
    model = small()
    calls = []
    model.head.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    stepper = model.stepper()
    with torch.no_grad():
        for _ in range(5):
            stepper.push(torch.rand(1, 3, 8, 8))
        stepper.finish()
    assert calls == [1] * 5


def test_stepper_rejects_size_change():
    model = small()
    stepper = model.stepper()
    with torch.no_grad():
        stepper.push(torch.rand(1, 3, 8, 8))
        with pytest.raises(InputError):
            stepper.push(torch.rand(1, 3, 8, 12))


def test_deblur_frames_yields_one_clamped_frame_per_input():
    model = small()
    clip = torch.rand(1, 3, 3, 9, 10)
    outs = list(deblur_frames(model, (clip[0, i] for i in range(3)), precision="fp32"))
    with torch.no_grad():
        expected = model.forward_all(clip)[0].clamp(0, 1)
    assert len(outs) == 3
    for t in range(3):
        assert torch.allclose(outs[t], expected[t], atol=1e-5)


def test_prior_is_frozen():
    model = MMPRNN(parse_preset("A1B1C4F5"), prior=MMPNet())
    assert all(not p.requires_grad for p in model.prior.parameters())
    model.train()
    assert not model.prior.training
    assert model.fem.training and model.head.training
    prior_ids = {id(p) for p in model.prior.parameters()}
    trainable = model.trainable_parameters()
    assert not prior_ids & {id(p) for p in trainable}
    assert len(trainable) + len(prior_ids) == len(list(model.parameters()))
    # A training step leaves the prior untouched: no grads, BatchNorm running stats unchanged.
    stats = {k: v.clone() for k, v in model.prior.state_dict().items()}
    out = model(torch.rand(2, 5, 3, 8, 8))
    out.mean().backward()
    assert all(p.grad is None for p in model.prior.parameters())
    assert all(p.grad is not None for p in trainable)
    assert all(torch.equal(stats[k], v) for k, v in model.prior.state_dict().items())


def test_deblur_state_dict_excludes_prior_and_round_trips():
    a, b = small(seed=0), small(seed=1)
    state = a.deblur_state_dict()
    assert state and not any(k.startswith("prior.") for k in state)
    assert set(state) | set(f"prior.{k}" for k in a.prior.state_dict()) == set(a.state_dict())
    b.load_deblur_state_dict(state)
    b.prior.load_state_dict(a.prior.state_dict())
    clip = torch.rand(1, 5, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(a(clip), b(clip))
    with pytest.raises(FormatError):
        small("A1B1C8F5").load_deblur_state_dict(state)
    with pytest.raises(FormatError):
        small("A2B1C4F5").load_deblur_state_dict(state)


def test_mmam_is_identity_when_gamma_is_zero():
    torch.manual_seed(0)
    mmam = MMAM(6)
    x, m = torch.randn(2, 6, 5, 7), torch.rand(2, 1, 5, 7)
    assert not torch.allclose(mmam(x, m), x)
    torch.nn.init.zeros_(mmam.gamma[-1].weight)
    torch.nn.init.zeros_(mmam.gamma[-1].bias)
    assert torch.equal(mmam(x, m), x)


def test_mmam_with_zero_gamma_makes_the_model_ignore_the_prior():
    model = small()
    torch.nn.init.zeros_(model.mmam.gamma[-1].weight)
    torch.nn.init.zeros_(model.mmam.gamma[-1].bias)
    clip = torch.rand(1, 5, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(clip, mmp=torch.zeros(1, 5, 1, 8, 8)), model(clip, mmp=torch.ones(1, 5, 1, 8, 8)))


def test_given_maps_replace_the_prior():
    model = small()
    clip = torch.rand(1, 5, 3, 12, 12)
    with torch.no_grad():
        maps = model.prior(clip.flatten(0, 1)).view(1, 5, 1, 12, 12)
        assert torch.allclose(model(clip), model(clip, mmp=maps), atol=1e-6)
        assert not torch.allclose(model(clip), model(clip, mmp=torch.ones_like(maps)))


def test_without_mmam_the_prior_does_not_run_and_maps_are_refused():
    model = small("A1B1C4F5-nommam")
    assert model.mmam is None and model.prior is not None  # the prior stays for the motion-magnitude loss
    calls = []
    model.prior.register_forward_hook(lambda *a: calls.append(1))
    clip = torch.rand(1, 5, 3, 8, 8)
    with torch.no_grad():
        model(clip)
    assert calls == []
    with pytest.raises(InputError):
        model(clip, mmp=torch.zeros(1, 5, 1, 8, 8))
    with pytest.raises(InputError):
        MMPRNN(parse_preset("A1B1C4F5-noprior"), prior=MMPNet())


def test_short_clip_forward_is_refused():
    with pytest.raises(InputError):
        small()(torch.rand(1, 4, 3, 8, 8))


def test_fresh_network_starts_near_the_identity():
    """The skip passes the blurry centre frame through exactly and the learned branch starts small, so an
    untrained (or briefly trained) model does not score below its input."""
    torch.manual_seed(0)
    model = MMPRNN("A1B1C4F5").eval()
    x = torch.rand(1, 5, 3, 32, 48)
    torch.testing.assert_close(model.skip(x[:, 2] - 0.5) + 0.5, x[:, 2])
    with torch.no_grad():
        y = model(x)
    assert (y[0, 0] - x[0, 2]).abs().mean() < 0.02
    assert (y[0, 0] - x[0, 2]).abs().max() > 0  # the learned branch is not switched off
