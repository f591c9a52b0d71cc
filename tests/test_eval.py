"""mmp eval: PSNR/SSIM equal to a recomputation from the saved frames, protocols, prior L1 vs an independent
computation, JSON keys, clean errors for data that is not HDF5 and files that are not checkpoints."""
import json

import cv2
import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _mmph5 import random_checkpoints, write_learnable_h5
from cli.main import main
from mmpmodel.metrics import psnr, ssim
from mmpmodel.mmpnet import MMPNet

KEYS = {"psnr", "ssim", "frames", "protocol", "sequences", "params", "gmacs", "seconds_per_frame"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("eval")
    data = write_learnable_h5(root / "d.h5", names=("s0", "s1"), t=7, size=(20, 28))
    prior_ck, deblur_ck, _ = random_checkpoints(root)
    return data, prior_ck, deblur_ck


def test_all_protocol_matches_saved_frames(setup, tmp_path):
    data, _, ck = setup
    save = tmp_path / "frames"
    res = CliRunner().invoke(main, ["eval", "--model", str(ck), "--data", str(data), "--protocol", "all",
                                    "--save", str(save), "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "r.json").read_text())
    assert KEYS <= set(r) and r["protocol"] == "all" and r["frames"] == 14
    assert r["params"] > 850_000 and r["gmacs"] > 0 and r["seconds_per_frame"] > 0
    ps, ss = [], []
    with h5py.File(data) as f:
        for name in ("s0", "s1"):
            files = sorted((save / name).glob("*.png"), key=lambda p: int(p.stem))
            assert [int(p.stem) for p in files] == list(range(7))  # every frame, named by position
            for p in files:
                out = cv2.imread(str(p))[:, :, ::-1]
                target = f["sequences"][name]["sharp"][int(p.stem)]
                ps.append(psnr(out, target))
                ss.append(ssim(out, target))
    assert abs(r["psnr"] - np.mean(ps)) < 0.05
    assert abs(r["ssim"] - np.mean(ss)) < 1e-6
    assert r["sequences"]["s0"]["frames"] == 7


def test_paper_protocol_skips_two_frames_each_end(setup, tmp_path):
    from mmpmodel.evaluate import evaluate
    data, _, ck = setup
    r = evaluate(ck, data, protocol="paper", save=tmp_path / "s", progress=False)
    assert r["frames"] == 2 * 3
    assert sorted(p.name for p in (tmp_path / "s" / "s1").glob("*.png")) == ["000002.png", "000003.png", "000004.png"]
    full = evaluate(ck, data, protocol="all", progress=False)
    # paper: T - 4 frames per sequence; all: T
    assert r["sequences"]["s0"]["frames"] == 3 and full["sequences"]["s0"]["frames"] == 7


def test_gain_by_position_from_each_end_matches_saved_frames(setup, tmp_path):
    """gain_by_position: mean (output PSNR - input PSNR) of the frames k from each end, recomputed from the PNGs."""
    from mmpmodel.evaluate import evaluate
    data, _, ck = setup
    r = evaluate(ck, data, protocol="all", save=tmp_path / "s", progress=False)
    gains = {}
    with h5py.File(data) as f:
        for name in ("s0", "s1"):
            g = f["sequences"][name]
            for t in range(7):
                out = cv2.imread(str(tmp_path / "s" / name / f"{t:06d}.png"))[:, :, ::-1]
                gains[name, t] = psnr(out, g["sharp"][t]) - psnr(g["blur"][t], g["sharp"][t])
    by = r["gain_by_position"]
    for k in range(4):
        assert by["from_start"][k] == pytest.approx(np.mean([gains[n, k] for n in ("s0", "s1")]), abs=1e-9)
        assert by["from_end"][k] == pytest.approx(np.mean([gains[n, 6 - k] for n in ("s0", "s1")]), abs=1e-9)
    assert by["from_start"][0] != by["from_start"][3]  # positions are told apart, not one mean repeated
    paper = evaluate(ck, data, protocol="paper", progress=False)["gain_by_position"]
    assert paper["from_start"][:2] == [None, None] and paper["from_end"][:2] == [None, None]  # not scored
    assert paper["from_start"][2] == pytest.approx(by["from_start"][2], abs=1e-9)


def test_prior_l1_and_mean_baseline(setup):
    from mmpmodel.evaluate import evaluate
    data, ck, _ = setup
    r = evaluate(ck, data, progress=False)
    net = MMPNet().eval()
    net.load_state_dict(torch.load(ck, weights_only=True)["model"])
    errs, maps = [], []
    with h5py.File(data) as f, torch.no_grad():
        for name in ("s0", "s1"):
            g = f["sequences"][name]
            for t in range(7):
                x = torch.from_numpy(g["blur"][t]).permute(2, 0, 1)[None].float() / 255
                m = np.clip(g["mmp"][t].astype(np.float64), 0, 1)
                errs.append(np.abs(net(x)[0, 0].double().numpy() - m))
                maps.append(m)
    maps = np.stack(maps)
    assert r["l1"] == pytest.approx(np.mean(errs), rel=1e-5)
    assert r["l1_mean_baseline"] == pytest.approx(np.abs(maps - maps.mean()).mean(), rel=1e-6)
    assert r["frames"] == 14 and r["kind"] == "prior"


def test_clean_errors(setup, tmp_path):
    data, _, ck = setup
    text = tmp_path / "data.h5"
    text.write_text("hello")
    res = CliRunner().invoke(main, ["eval", "--model", str(ck), "--data", str(text)])
    assert res.exit_code == 2 and "data.h5: not an HDF5 file" in res.output and "Traceback" not in res.output
    junk = tmp_path / "model.pt"
    junk.write_bytes(b"\x00\x01 not a checkpoint")
    res = CliRunner().invoke(main, ["eval", "--model", str(junk), "--data", str(data)])
    assert res.exit_code == 2 and "model.pt: not an MMP checkpoint" in res.output


def test_prior_source_feeds_the_stored_map_or_zeros(setup, tmp_path):
    """--prior-source gt / zero score what forward_all gives with those maps passed explicitly; net differs."""
    from mmpmodel.checkpoint import load_deblur
    from mmpmodel.evaluate import evaluate
    from mmpmodel.metrics import tensor_to_uint8

    data, _, ck = setup
    model, _ = load_deblur(ck)
    with torch.no_grad():  # make MMAM matter: a strong response to the map
        model.mmam.gamma[-1].weight.mul_(50.0)
        model.decoder[-1].weight.mul_(50.0)
    strong = tmp_path / "strong.pt"
    raw = torch.load(ck, weights_only=True)
    raw["model"] = model.deblur_state_dict()
    torch.save(raw, strong)
    results = {src: evaluate(strong, data, protocol="all", progress=False, prior_source=src)
               for src in ("net", "gt", "zero")}
    with h5py.File(data) as f, torch.no_grad():
        for src in ("gt", "zero"):
            ps = []
            for name in ("s0", "s1"):
                g = f["sequences"][name]
                clip = torch.from_numpy(g["blur"][:]).permute(0, 3, 1, 2)[None].float() / 255
                maps = torch.from_numpy(np.clip(g["mmp"][:].astype(np.float32), 0, 1))[None, :, None]
                if src == "zero":
                    maps = torch.zeros_like(maps)
                out = model.forward_all(clip, maps)[0]
                ps += [psnr(tensor_to_uint8(out[t]), g["sharp"][t]) for t in range(7)]
            assert results[src]["psnr"] == pytest.approx(np.mean(ps), abs=1e-3)
            assert results[src]["prior_source"] == src
    assert results["net"]["psnr"] != results["gt"]["psnr"]  # the map reaches the network


def test_prior_source_errors(setup, tmp_path):
    data, prior_ck, ck = setup
    res = CliRunner().invoke(main, ["eval", "--model", str(prior_ck), "--data", str(data), "--prior-source", "gt"])
    assert res.exit_code == 2 and "prior.pt: --prior-source applies to deblurring checkpoints" in res.output
    _, noprior_ck, _ = random_checkpoints(tmp_path, preset="A1B1C4F5-nommam")
    res = CliRunner().invoke(main, ["eval", "--model", str(noprior_ck), "--data", str(data), "--prior-source", "zero"])
    assert res.exit_code == 2 and "has no MMAM" in res.output and "Traceback" not in res.output
