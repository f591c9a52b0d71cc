"""mmp average-weights: the averaged checkpoint's weights are the hand-computed (weighted) mean; only copies of one
network (kind, architecture, frozen prior) are averaged; no input is ever overwritten."""
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from mmpdata.errors import InputError
from mmpmodel.average import average_checkpoints
from mmpmodel.checkpoint import load_checkpoint, load_deblur, save_checkpoint
from mmpmodel.mmpnet import MMPNet
from mmpmodel.mmprnn import MMPRNN

PRESET = "A1B1C4F5"


def _deblur(path, seed, prior, preset=PRESET):
    torch.manual_seed(seed)
    model = MMPRNN(preset, prior).eval()
    cfg = {"preset": model.config.name, "model": model.config.to_dict(), "prior_config": {"width": 16}}
    return save_checkpoint(path, kind="deblur", config=cfg, model=model.deblur_state_dict(), step=seed,
                           prior=prior.state_dict())


def test_average_is_the_weighted_mean_and_runs(tmp_path):
    torch.manual_seed(0)
    prior = MMPNet().eval()
    a, b = _deblur(tmp_path / "a.pt", 1, prior), _deblur(tmp_path / "b.pt", 2, prior)
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)  # two different networks

    average_checkpoints([a, b], tmp_path / "mean.pt")
    mean = load_checkpoint(tmp_path / "mean.pt", kind="deblur")
    for k, v in wa.items():
        assert torch.allclose(mean["model"][k], (v + wb[k]) / 2, atol=1e-7), k
    assert mean["step"] == 2 and "optimizer" not in mean
    assert [r["weight"] for r in mean["extra"]["averaged_from"]] == [0.5, 0.5]
    for k, v in prior.state_dict().items():  # the frozen prior is copied
        assert torch.equal(mean["prior"][k], v), k

    # weights 1 and 3: a quarter of a, three quarters of b (through the command line)
    res = CliRunner().invoke(main, ["average-weights", str(a), str(b), "--weights", "1,3", "--out",
                                    str(tmp_path / "w.pt")])
    assert res.exit_code == 0, res.output
    weighted = load_checkpoint(tmp_path / "w.pt")["model"]
    for k, v in wa.items():
        assert torch.allclose(weighted[k], 0.25 * v + 0.75 * wb[k], atol=1e-7), k

    model, _ = load_deblur(tmp_path / "mean.pt")  # a working network
    with torch.no_grad():
        out = model.forward_all(torch.rand(1, 3, 3, 16, 16))
    assert out.shape == (1, 3, 3, 16, 16) and torch.isfinite(out).all()


def test_average_refuses_other_networks_and_never_overwrites_an_input(tmp_path):
    torch.manual_seed(0)
    prior = MMPNet().eval()
    a, b = _deblur(tmp_path / "a.pt", 1, prior), _deblur(tmp_path / "b.pt", 2, prior)
    before = a.read_bytes()
    with pytest.raises(InputError, match="a.pt: is one of the checkpoints"):
        average_checkpoints([a, b], a)
    assert a.read_bytes() == before

    torch.manual_seed(5)
    other_prior = _deblur(tmp_path / "p.pt", 3, MMPNet().eval())
    with pytest.raises(InputError, match="p.pt: its MMP-Net differs"):
        average_checkpoints([a, other_prior], tmp_path / "x.pt")
    bigger = _deblur(tmp_path / "big.pt", 4, prior, preset="A1B1C8F5")
    with pytest.raises(InputError, match="big.pt: its preset"):
        average_checkpoints([a, bigger], tmp_path / "x.pt")
    net = save_checkpoint(tmp_path / "prior.pt", kind="prior", config={"width": 16}, model=prior.state_dict())
    with pytest.raises(InputError, match="prior.pt: is a prior checkpoint"):
        average_checkpoints([a, net], tmp_path / "x.pt")
    with pytest.raises(InputError, match="one per checkpoint"):
        average_checkpoints([a, b], tmp_path / "x.pt", weights=[1.0])
    with pytest.raises(InputError, match="at least two"):
        average_checkpoints([a], tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()

    res = CliRunner().invoke(main, ["average-weights", str(a), str(bigger), "--out", str(tmp_path / "x.pt")])
    assert res.exit_code != 0 and "big.pt: its preset" in res.output and not (tmp_path / "x.pt").exists()
