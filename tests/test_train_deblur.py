"""train-deblur: checkpoint round trip, exact resume, ablation switches, clean errors."""
import json
import math

import pytest
import torch
from click.testing import CliRunner

from _mmph5 import write_learnable_h5
from cli.main import main
from mmpdata.errors import InputError
from mmpmodel.checkpoint import load_checkpoint, load_deblur, save_checkpoint
from mmpmodel.mmpnet import MMPNet

PRESET = "A1B1C4F5"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("deblur")
    data = write_learnable_h5(root / "d.h5", names=("s0", "s1", "s2"), t=7, size=(32, 32))
    torch.manual_seed(0)
    prior = save_checkpoint(root / "prior.pt", kind="prior", config={"width": 16}, model=MMPNet().eval().state_dict())
    return data, prior


def _run(setup, out, **kw):
    from mmpmodel.train_deblur import train_deblur
    data, prior = setup
    args = dict(preset=PRESET, prior=prior, steps=4, batch_size=2, patch=32, seed=1, val_every=2, progress=False)
    args.update(kw)
    return train_deblur(data, out, **args)


def test_checkpoint_round_trip(setup, tmp_path):
    torch.set_num_threads(1)
    res = _run(setup, tmp_path / "r")
    ck = load_checkpoint(tmp_path / "r" / "last.pt", kind="deblur")
    assert ck["step"] == 4 and ck["config"]["preset"] == PRESET and "val_psnr" in ck["metrics"]
    assert not any(k.startswith("prior.") for k in ck["model"])  # prior kept apart
    assert set(ck["prior"]) == set(MMPNet().state_dict())
    model, _ = load_deblur(tmp_path / "r" / "last.pt")
    clip = torch.rand(1, 5, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(clip), res["model"].eval()(clip), atol=1e-6)
    lines = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    lrs = [x["lr"] for x in lines if "lr" in x]
    # the rate each step used: cosine from 5e-4 towards 1e-8 over 4 steps, so step 4 (t = 3) runs at
    # 1e-8 + (5e-4 - 1e-8) * (1 + cos(3 pi / 4)) / 2
    assert lrs[-1] == pytest.approx(1e-8 + (5e-4 - 1e-8) * (1 + math.cos(3 * math.pi / 4)) / 2)
    assert {"char", "grad", "mm", "grad_norm"} <= set(next(x for x in lines if "lr" in x))


def test_exact_resume(setup, tmp_path):
    torch.set_num_threads(1)
    straight = _run(setup, tmp_path / "a")["model"].deblur_state_dict()

    def stop(step, model):
        if step == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _run(setup, tmp_path / "b", hook=stop)
    resumed = _run(setup, tmp_path / "b", resume=True)["model"].deblur_state_dict()
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


def test_ablations(setup, tmp_path):
    torch.set_num_threads(1)
    gt = _run(setup, tmp_path / "gt", steps=1, prior_source="gt")
    assert load_checkpoint(tmp_path / "gt" / "last.pt")["config"]["prior_source"] == "gt"
    assert gt["model"].mmam is not None
    bare = _run(setup, tmp_path / "bare", steps=1, prior=None, use_prior=False, mm_loss=False, l_state=False)
    assert bare["preset"] == "A1B1C4F5-nondf-noprior" and bare["model"].prior is None
    model, _ = load_deblur(tmp_path / "bare" / "last.pt")
    assert model.config.name == "A1B1C4F5-nondf-noprior"
    nommam = _run(setup, tmp_path / "nommam", steps=1, mmam=False)
    assert nommam["model"].mmam is None and nommam["model"].prior is not None
    with pytest.raises(InputError, match="--prior"):
        _run(setup, tmp_path / "x", prior=None)
    with pytest.raises(InputError, match="prior-source gt"):
        _run(setup, tmp_path / "y", prior_source="gt", mmam=False)


def test_cli_rejects_a_prior_that_is_not_a_checkpoint(setup, tmp_path):
    data, _ = setup
    junk = tmp_path / "prior.pt"
    junk.write_bytes(b"garbage")
    res = CliRunner().invoke(main, ["train-deblur", "--data", str(data), "--prior", str(junk), "--model", PRESET,
                                    "--out", str(tmp_path / "r"), "--steps", "1", "--patch", "32"])
    assert res.exit_code == 2 and "prior.pt: not an MMP checkpoint" in res.output
