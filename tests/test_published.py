"""Importing the authors' checkpoints: our weights exported under THEIR names and layout (the inverse map below,
written from their code's module names, not from mmpmodel.published) come back as the same network.

No network, no authors' code: bench/authors_parity.py checks against their code itself."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from cli.main import main
from mmpdata.errors import FormatError, InputError
from mmpmodel.checkpoint import load_checkpoint, load_deblur, load_prior, save_checkpoint
from mmpmodel.mmpnet import MMPNet
from mmpmodel.mmprnn import MMPRNN
from mmpmodel.presets import MMPRNNConfig, parse_preset
from mmpmodel.profile import build_model, count_parameters
from mmpmodel.published import import_published

# ------------------------------------------------------------------------------------------- their layout
# Our module path -> theirs, per segment, from their MMPRNN.py / UNet.py (RDBCell, Reconstructor, CAT, RDNet, RDB,
# RDB_DS, MMAMLayer, UNet with DoubleConv / Down / Up / OutConv).
_OUR_TOP = [("head.", "cell.F_B0."), ("mmam.gamma.0.", "cell.MMAM1.MMAM_conv0."),
            ("mmam.gamma.2.", "cell.MMAM1.MMAM_conv1."), ("down1.", "cell.F_B1."), ("down2.", "cell.F_B2."),
            ("fem.", "cell.F_R."), ("to_state.", "cell.F_h."), ("fuse_attention.reduce.", "fusion.ca.conv_du.0."),
            ("fuse_attention.expand.", "fusion.ca.conv_du.2."), ("fuse.", "fusion.fusion."),
            ("rm.", "recons.D_Net."), ("decoder.", "recons.model."), ("skip.", "skip."), ("prior.", "cell.prior.")]


def _theirs_rdb(rest: str) -> str:
    """Inside an RDB: dense.i.conv -> dense_layers.i.conv, fuse -> conv1x1."""
    return rest.replace("dense.", "dense_layers.", 1) if rest.startswith("dense.") else \
        rest.replace("fuse.", "conv1x1.", 1)


def _theirs_inner(top: str, rest: str) -> str:
    if top in ("fem.", "rm."):  # RDNet
        if rest.startswith("blocks."):
            k, tail = rest[len("blocks."):].split(".", 1)
            return f"RDBs.{k}." + _theirs_rdb(tail)
        return {"squeeze.": "conv1x1.", "conv.": "conv3x3."}[rest.split(".")[0] + "."] + rest.split(".", 1)[1]
    if top in ("down1.", "down2."):  # RDB_DS
        return "rdb." + _theirs_rdb(rest[len("rdb."):]) if rest.startswith("rdb.") else \
            rest.replace("down.", "down_sampling.", 1)
    if top == "to_state.":  # Sequential(conv3x3, RDB, conv3x3)
        i, tail = rest.split(".", 1)
        return f"{i}." + (_theirs_rdb(tail) if i == "1" else tail)
    if top == "prior.":
        return _theirs_unet(rest)
    return rest


def _theirs_unet(rest: str) -> str:
    part, tail = rest.split(".", 1)
    if part == "head":
        return "conv9x9." + tail
    if part == "tail":
        return "outc.conv." + tail
    if part == "inc":
        return "inc.double_conv." + tail[len("body."):]
    if part.startswith("down"):
        return f"{part}.maxpool_conv.1.double_conv." + tail[len("conv.body."):]
    if part.startswith("up"):
        return f"{part}.conv.double_conv." + tail[len("conv.body."):]
    if part == "refine":
        return "refine." + _theirs_rdb(tail)
    raise AssertionError(rest)


def their_name(ours: str) -> str:
    for top, theirs in _OUR_TOP:
        if ours.startswith(top):
            return theirs + _theirs_inner(top, ours[len(top):])
    raise AssertionError(ours)


def calibrate_batchnorm(net: torch.nn.Module, seed: int) -> None:
    """BatchNorm statistics measured on random frames (as training would leave them), then moved a little: the
    prior's map then really depends on its input, so the tests below can see a wrong map or colour order."""
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration pass
    net.train()
    with torch.no_grad():
        net(torch.rand(4, 3, 32, 48, generator=g))
        for m in norms:
            m.momentum = 0.1
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=g) * 0.1 * m.running_var.sqrt())
            m.running_var.mul_(torch.rand(m.running_var.shape, generator=g) * 0.4 + 0.8)
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
    net.eval()


def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every tensor random (BatchNorm statistics included), so no part of the map can hide behind a default."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith(("num_batches_tracked", "running_var", "running_mean")):
                continue  # calibrated below
            elif t.dim() == 1 and ".body." in name and name.endswith("weight"):
                t.copy_(1 + torch.randn(t.shape, generator=g) * 0.1)  # BatchNorm scale
            elif t.dim() >= 2:  # conv weights at a scale that keeps activations O(1) through the whole network
                fan_in = t[0].numel() if not name.startswith(("decoder.0", "decoder.1")) else t.shape[0] * 9 / 4
                t.copy_(torch.randn(t.shape, generator=g) * (0.5 / fan_in) ** 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    prior = module if isinstance(module, MMPNet) else getattr(module, "prior", None)
    if prior is not None:
        calibrate_batchnorm(prior, seed)
    return module.eval()


def their_model(n_a=1, n_b=2, n_c=4, attention=True, seed=0) -> MMPRNN:
    """Our network standing in for theirs (their UNet pads as ``reference``)."""
    cfg = MMPRNNConfig(n_a, n_b, n_c, 8, fusion_attention=attention)
    return randomize(MMPRNN(cfg, MMPNet(padding="reference")), seed)


def export_theirs(model: MMPRNN, prefix: str = "module.model.", with_ca: bool = True, seed: int = 1) -> dict:
    """Their state_dict of ``model``; both copies of their code save fusion.ca, so a BSD stand-in gets random ones."""
    state = {prefix + their_name(k): v.clone() for k, v in model.state_dict().items()}
    if with_ca and model.fuse_attention is None:
        w = 25 * model.config.n_c
        g = torch.Generator().manual_seed(seed)
        state[prefix + "fusion.ca.conv_du.0.weight"] = torch.randn(w // 16, w, 1, 1, generator=g)
        state[prefix + "fusion.ca.conv_du.0.bias"] = torch.randn(w // 16, generator=g)
        state[prefix + "fusion.ca.conv_du.2.weight"] = torch.randn(w, w // 16, 1, 1, generator=g)
        state[prefix + "fusion.ca.conv_du.2.bias"] = torch.randn(w, generator=g)
    return state


def save_as_dp(path, state: dict) -> None:
    """What their train/dp.py writes (optimizer/scheduler shaped like Adam's and CosineAnnealingLR's)."""
    torch.save({"epoch": 500, "model": "MMPRNN", "state_dict": state,
                "register_dict": {"PSNR_valid": {500: 31.5, "max": 31.5, "min": 20.0}},
                "optimizer": {"state": {0: {"step": torch.tensor(10.0), "exp_avg": torch.zeros(3)}},
                              "param_groups": [{"lr": 1e-8, "betas": (0.9, 0.999), "params": [0]}]},
                "scheduler": {"T_max": 500, "eta_min": 1e-8, "last_epoch": 500, "base_lrs": [5e-4]}}, path)


def clip(seed=3, frames=8, h=20, w=28):
    return torch.rand(1, frames, 3, h, w, generator=torch.Generator().manual_seed(seed))


def one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------------------------------------ the map
def test_export_of_A3B4C16_has_their_254_tensors():
    """The issue's count of their file: 254 tensors for A3B4C16 (prior and fusion.ca included), 18 BN counters."""
    with torch.device("meta"):
        model = MMPRNN(parse_preset("A3B4C16F8"))
    names = list(export_theirs(model))
    assert len(names) == 254
    assert sum(n.endswith("num_batches_tracked") for n in names) == 18
    for n in ("module.model.cell.F_B0.weight", "module.model.cell.prior.down2.maxpool_conv.1.double_conv.4.running_var",
              "module.model.recons.D_Net.RDBs.3.dense_layers.2.conv.bias", "module.model.cell.F_R.conv3x3.weight",
              "module.model.cell.F_h.1.conv1x1.weight", "module.model.fusion.ca.conv_du.2.bias"):
        assert n in names


@pytest.mark.parametrize("variant,attention", [("gopro", True), ("bsd", False)])
def test_import_gives_the_same_network(tmp_path, variant, attention):
    theirs = their_model(attention=attention)
    src = tmp_path / "checkpoint.pth.tar"
    save_as_dp(src, export_theirs(theirs))
    summary = import_published(src, tmp_path / "ours.pt", variant)
    assert summary["preset"] == "A1B2C4F8" + ("-ca" if attention else "")
    model, ck = load_deblur(tmp_path / "ours.pt")
    assert model.config == theirs.config
    assert model.prior.padding == "reference"
    x = clip()
    with torch.no_grad():
        if variant == "gopro":
            assert torch.equal(model.forward_all(x), theirs.forward_all(x))
        else:  # their BSD network saw BGR frames: ours on RGB == theirs on BGR, channels back in RGB order
            # (permuted channels change the order of the sums inside the first convs: equal to rounding)
            assert torch.allclose(model.forward_all(x), theirs.forward_all(x.flip(2)).flip(2), atol=1e-5)
            assert not torch.allclose(model.forward_all(x), theirs.forward_all(x))
    info = ck["config"]["imported"]
    assert info["source"] == "checkpoint.pth.tar" and info["variant"] == variant
    assert re.fullmatch(r"[0-9a-f]{64}", info["sha256"])
    assert info["dropped"] == ([] if variant == "gopro" else [
        "fusion.ca.conv_du.0.weight", "fusion.ca.conv_du.0.bias", "fusion.ca.conv_du.2.weight",
        "fusion.ca.conv_du.2.bias"])


def test_bsd_import_permutes_the_prior_too(tmp_path):
    theirs = their_model(attention=False, seed=5)
    save_as_dp(tmp_path / "bsd.pth.tar", export_theirs(theirs))
    import_published(tmp_path / "bsd.pth.tar", tmp_path / "ours.pt", "bsd")
    prior, _ = load_prior(tmp_path / "ours.pt")
    frame = clip(frames=1)[0]
    with torch.no_grad():
        assert torch.allclose(prior(frame), theirs.prior(frame.flip(1)), atol=1e-6)


@pytest.mark.parametrize("prefix", ["", "model.", "module."])
def test_bare_state_dicts_and_prefixes(tmp_path, prefix):
    theirs = their_model(n_a=2, n_b=1, n_c=2)
    torch.save(export_theirs(theirs, prefix=prefix), tmp_path / "bare.pth")
    assert import_published(tmp_path / "bare.pth", tmp_path / "ours.pt", "gopro")["preset"] == "A2B1C2F8-ca"
    model, _ = load_deblur(tmp_path / "ours.pt")
    with torch.no_grad():
        assert torch.equal(model.forward_all(clip(h=16, w=12)), theirs.forward_all(clip(h=16, w=12)))


def test_prior_from_their_mmpnet_file(tmp_path):
    theirs = their_model()
    state = export_theirs(theirs)
    no_prior = {k: v for k, v in state.items() if ".cell.prior." not in k}
    save_as_dp(tmp_path / "noprior.pth.tar", no_prior)
    with pytest.raises(FormatError) as exc:
        import_published(tmp_path / "noprior.pth.tar", tmp_path / "x.pt", "gopro")
    assert "--prior-from" in one_line(exc) and not (tmp_path / "x.pt").exists()
    unet = {k[len("module.model.cell.prior."):]: v for k, v in state.items() if ".cell.prior." in k}
    torch.save({"epoch": 400, "state_dict": unet}, tmp_path / "model_best.pth.tar")
    summary = import_published(tmp_path / "noprior.pth.tar", tmp_path / "ours.pt", "gopro",
                               prior_from=tmp_path / "model_best.pth.tar")
    assert summary["prior_source"].startswith("model_best.pth.tar")
    model, _ = load_deblur(tmp_path / "ours.pt")
    with torch.no_grad():
        assert torch.equal(model.forward_all(clip()), theirs.forward_all(clip()))


@pytest.mark.parametrize("from_deblur", [False, True])
def test_prior_only(tmp_path, from_deblur):
    theirs = their_model(seed=7)
    state = export_theirs(theirs)
    if from_deblur:
        save_as_dp(tmp_path / "src.pth.tar", state)
    else:
        unet = {k[len("module.model.cell.prior."):]: v for k, v in state.items() if ".cell.prior." in k}
        torch.save({"epoch": 400, "state_dict": unet}, tmp_path / "src.pth.tar")
    res = CliRunner().invoke(main, ["import-weights", str(tmp_path / "src.pth.tar"), "--variant", "gopro",
                                    "--prior-only", "--out", str(tmp_path / "prior.pt")])
    assert res.exit_code == 0, res.output
    ck = load_checkpoint(tmp_path / "prior.pt", kind="prior")
    assert ck["config"]["padding"] == "reference" and ck["config"]["imported"]["source"] == "src.pth.tar"
    prior, _ = load_prior(tmp_path / "prior.pt")
    frame = clip(frames=1, h=21, w=35)[0]
    with torch.no_grad():
        assert torch.equal(prior(frame), theirs.prior(frame))


# ------------------------------------------------------------------------------------------------ bad files
def _write_good(tmp_path, **kw):
    state = export_theirs(their_model(**kw))
    return state


def test_truncated_file(tmp_path):
    save_as_dp(tmp_path / "full.pth.tar", _write_good(tmp_path))
    data = (tmp_path / "full.pth.tar").read_bytes()
    (tmp_path / "cut.pth.tar").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError) as exc:
        import_published(tmp_path / "cut.pth.tar", tmp_path / "x.pt", "gopro")
    assert "cut.pth.tar" in one_line(exc) and not (tmp_path / "x.pt").exists()


def test_wrong_layouts(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    torch.save({"state_dict": {"a.weight": torch.zeros(1)}, "epoch": 1}, tmp_path / "other.pth")
    torch.save({"weights": "not a tensor"}, tmp_path / "junk.pth")
    save_checkpoint(tmp_path / "ours.pt", kind="prior", config={"width": 16}, model=MMPNet().state_dict())
    for name, words in [("list.pth", "not a checkpoint dict"), ("other.pth", "no cell.F_B0.weight"),
                        ("junk.pth", "not a tensor"), ("ours.pt", "already one of our checkpoints")]:
        with pytest.raises(FormatError) as exc:
            import_published(tmp_path / name, tmp_path / "x.pt", "gopro")
        assert name in one_line(exc) and words in str(exc.value)
    assert not (tmp_path / "x.pt").exists()


def test_other_architectures_name_the_first_bad_tensor(tmp_path):
    good = _write_good(tmp_path)
    extra = dict(good, **{"module.model.cell.F_B1.rdb.ca.conv_du.0.weight": torch.zeros(1, 4, 1, 1)})
    wider = dict(good, **{"module.model.cell.F_R.RDBs.0.conv1x1.weight": torch.zeros(20, 33, 1, 1)})
    seven = dict(good, **{"module.model.fusion.fusion.weight": torch.zeros(20, 140, 1, 1)})
    no_ca = {k: v for k, v in good.items() if ".fusion.ca." not in k}
    nan = dict(good, **{"module.model.skip.bias": torch.tensor([0.0, float("nan"), 0.0])})
    unet = {k[len("module.model.cell.prior."):]: v for k, v in good.items() if ".cell.prior." in k}
    cases = [(extra, "gopro", "cell.F_B1.rdb.ca.conv_du.0.weight"),
             (wider, "gopro", "cell.F_R.RDBs.0.conv1x1.weight"),
             (seven, "gopro", "only 2 past + 2 future"),
             (no_ca, "gopro", "fusion.ca"),
             (nan, "gopro", "skip.bias"),
             (unet, "gopro", "--prior-only")]
    for i, (state, variant, words) in enumerate(cases):
        torch.save({"state_dict": state}, tmp_path / f"bad{i}.pth")
        with pytest.raises(FormatError) as exc:
            import_published(tmp_path / f"bad{i}.pth", tmp_path / "x.pt", variant)
        assert f"bad{i}.pth" in one_line(exc) and words in str(exc.value), str(exc.value)
    assert not (tmp_path / "x.pt").exists()


def test_never_overwrites_the_source(tmp_path):
    save_as_dp(tmp_path / "a.pth.tar", _write_good(tmp_path))
    before = (tmp_path / "a.pth.tar").read_bytes()
    with pytest.raises(InputError):
        import_published(tmp_path / "a.pth.tar", tmp_path / "a.pth.tar", "gopro")
    assert (tmp_path / "a.pth.tar").read_bytes() == before


# ------------------------------------------------------------------------------------- the options it needs
def test_fusion_attention_preset_and_parameter_count():
    cfg = parse_preset("A3B4C16F5-ca")
    assert cfg.fusion_attention and parse_preset(cfg.name) == cfg
    assert parse_preset("A3B4C16F5").fusion_attention is False
    assert MMPRNNConfig.from_dict({k: v for k, v in parse_preset("A3B4C16F5").to_dict().items()
                                   if k != "fusion_attention"}).fusion_attention is False
    w, h = 400, 400 // 16  # 25C at C=16, squeezed by 16
    added = (w * h + h) + (h * w + w)
    with torch.device("meta"):  # what mmp profile counts (build_model + count_parameters), without the MACs
        with_ca, without = build_model("A3B4C16F5-ca"), build_model("A3B4C16F5")
    assert count_parameters(with_ca) - count_parameters(without) == added


def test_fusion_attention_is_a_channel_gate():
    """With its convs zeroed the gate is sigmoid(bias): bias 0 halves the fused features, i.e. the same network
    without attention whose 1x1 fusion weights are halved."""
    with_ca = randomize(MMPRNN(parse_preset("A1B1C4F5-ca"), MMPNet()), 11)
    plain = MMPRNN(parse_preset("A1B1C4F5"), MMPNet()).eval()
    state = {k: v for k, v in with_ca.state_dict().items() if not k.startswith("fuse_attention.")}
    state["fuse.weight"] = state["fuse.weight"] * 0.5
    plain.load_state_dict(state)
    with torch.no_grad():
        for p in with_ca.fuse_attention.parameters():
            p.zero_()
        x = clip(frames=6, h=12, w=16)
        assert torch.allclose(with_ca(x), plain(x), atol=1e-6)


def test_reference_padding_equals_replicate_at_multiples_of_16():
    ref = randomize(MMPNet(padding="reference"), 2)
    rep = MMPNet()
    rep.load_state_dict(ref.state_dict())
    rep.eval()
    with torch.no_grad():
        x = clip(frames=1, h=32, w=48)[0]
        assert torch.equal(ref(x), rep(x))
        odd = clip(frames=1, h=37, w=29)[0]
        assert ref(odd).shape == rep(odd).shape == (1, 1, 37, 29)
        assert not torch.allclose(ref(odd), rep(odd))
        assert ref(clip(frames=1, h=9, w=40)[0]).shape == (1, 1, 9, 40)


# ---------------------------------------------------------------------------------------------------- CLI
def test_cli_round_trip(tmp_path):
    theirs = their_model(attention=False, seed=9)
    save_as_dp(tmp_path / "model_best.pth.tar", export_theirs(theirs))
    runner = CliRunner()
    res = runner.invoke(main, ["import-weights", str(tmp_path / "model_best.pth.tar"), "--variant", "bsd",
                               "--out", str(tmp_path / "bsd.pt")])
    assert res.exit_code == 0, res.output
    assert "A1B2C4F8" in res.output
    res = runner.invoke(main, ["profile", str(tmp_path / "bsd.pt"), "--size", "64x48", "--json"])
    assert res.exit_code == 0, res.output
    assert f'"params": {count_parameters(theirs)}' in res.output
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 20, 24, 3), dtype=np.uint8)
    for i, img in enumerate(rgb):
        Image.fromarray(img).save(frames / f"{i:03d}.png")
    res = runner.invoke(main, ["deblur", "--model", str(tmp_path / "bsd.pt"), str(frames), str(tmp_path / "out"),
                               "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outs) == 6
    # Their BSD network on the BGR frames (their test feeds x/255 - 0.5; ours shifts inside), ends replicated.
    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div(255)[None]
    with torch.no_grad():
        want = theirs.forward_all(x.flip(2)).flip(2)[0].clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1)
    got = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in outs])
    assert np.abs(got.astype(int) - want.numpy().astype(int)).max() <= 1
    bad = tmp_path / "bad.pth.tar"
    bad.write_bytes((tmp_path / "model_best.pth.tar").read_bytes()[:1000])
    res = runner.invoke(main, ["import-weights", str(bad), "--variant", "gopro", "--out", str(tmp_path / "b.pt")])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and res.output.startswith("error: ")
    assert "bad.pth.tar" in res.output


def test_random_stand_in_is_not_degenerate():
    """The comparisons above mean something only if outputs vary and stay finite and O(1), and the prior's map
    depends on the colours it is given."""
    model = their_model(attention=True)
    with torch.no_grad():
        out = model.forward_all(clip())
        frame = clip(frames=1)[0]
        swapped = (model.prior(frame) - model.prior(frame.flip(1))).abs().max()
    assert torch.isfinite(out).all() and 0.01 < out.std() < 10
    assert swapped > 0.01


@pytest.mark.slow
def test_imported_checkpoint_evaluates_and_fine_tunes(tmp_path):
    """mmp eval scores it, and train-deblur --init-from starts from it and keeps its prior (and the prior's padding)."""
    from _mmph5 import write_mmp_h5

    theirs = their_model(n_a=1, n_b=1, n_c=4, attention=True, seed=4)
    save_as_dp(tmp_path / "g.pth.tar", export_theirs(theirs))
    import_published(tmp_path / "g.pth.tar", tmp_path / "g.pt", "gopro")
    data = write_mmp_h5(tmp_path / "d.h5", {"a": (8, 24, 32, "train"), "b": (8, 24, 32, "valid")})
    runner = CliRunner()
    res = runner.invoke(main, ["eval", "--model", str(tmp_path / "g.pt"), "--data", str(data), "--protocol", "all",
                               "--json", str(tmp_path / "e.json"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    import json

    result = json.loads((tmp_path / "e.json").read_text())
    assert result["frames"] == 16 and result["model"] == "A1B1C4F8-ca"
    res = runner.invoke(main, ["train-deblur", "--data", str(data), "--init-from", str(tmp_path / "g.pt"),
                               "--preset", "A1B1C4F8-ca", "--out", str(tmp_path / "run"), "--steps", "1",
                               "--batch-size", "1", "--patch", "16", "--lr", "1e-12", "--device", "cpu",
                               "--val-images", "0"])
    assert res.exit_code == 0, res.output
    tuned, ck = load_deblur(tmp_path / "run" / "last.pt")
    assert ck["config"]["prior_config"]["padding"] == "reference"
    imported, _ = load_deblur(tmp_path / "g.pt")
    for name, value in imported.state_dict().items():
        assert torch.allclose(tuned.state_dict()[name], value, atol=1e-6), name


def test_prior_only_bsd_permutes(tmp_path):
    theirs = their_model(attention=False, seed=8)
    save_as_dp(tmp_path / "bsd.pth.tar", export_theirs(theirs))
    from mmpmodel.published import import_published_prior

    import_published_prior(tmp_path / "bsd.pth.tar", tmp_path / "prior.pt", "bsd")
    prior, ck = load_prior(tmp_path / "prior.pt")
    assert ck["config"]["imported"]["variant"] == "bsd"
    frame = clip(frames=1, h=19, w=33)[0]
    with torch.no_grad():
        assert torch.allclose(prior(frame), theirs.prior(frame.flip(1)), atol=1e-6)
        assert not torch.allclose(prior(frame), theirs.prior(frame), atol=1e-4)
