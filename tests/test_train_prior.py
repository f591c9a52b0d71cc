"""train-prior: learns a learnable target, exact resume after Ctrl-C, NaN stop keeping the last good checkpoint."""
import json

import pytest
import torch
from click.testing import CliRunner

from _mmph5 import write_learnable_h5
from cli.main import main
from mmpdata.errors import InputError, SettingsMismatch, TrainingError
from mmpmodel.checkpoint import load_checkpoint, load_prior
from mmpmodel.evaluate import evaluate_prior


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_learnable_h5(tmp_path_factory.mktemp("prior") / "d.h5")


def test_learns_and_writes_run(data, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train-prior", "--data", str(data), "--out", str(out), "--steps", "40",
                                    "--batch-size", "4", "--patch", "32", "--lr", "2e-3", "--val-every", "20"])
    assert res.exit_code == 0, res.output
    assert {"last.pt", "best.pt", "config.json", "metrics.jsonl"} <= {p.name for p in out.iterdir()}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["steps"] == 40 and cfg["patch"] == 32 and cfg["grad_weight"] == 0.5
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    vals = [x["val_l1"] for x in lines if "val_l1" in x]
    assert len(vals) == 2 and [x["lr"] for x in lines if "lr" in x][-1] == pytest.approx(1e-3)  # halved once
    best = load_checkpoint(out / "best.pt", kind="prior")
    assert best["metrics"]["val_l1"] == pytest.approx(min(vals))
    net, _ = load_prior(out / "best.pt")
    r = evaluate_prior(net, data, progress=False)
    # the MMP here is a per-pixel function of the image: 40 steps must beat predicting the mean by far
    assert r["l1"] < 0.6 * r["l1_mean_baseline"]


def _run(data, out, hook=None, resume=False):
    from mmpmodel.train_prior import train_prior
    return train_prior(data, out, steps=6, batch_size=2, patch=32, seed=3, resume=resume, val_every=2,
                       progress=False, hook=hook)


def test_interrupt_and_exact_resume(data, tmp_path):
    torch.set_num_threads(1)
    straight = _run(data, tmp_path / "a")["model"].state_dict()

    def stop(step, model):
        if step == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _run(data, tmp_path / "b", hook=stop)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 3  # Ctrl-C wrote last.pt
    with pytest.raises(InputError, match="--resume"):
        _run(data, tmp_path / "b")
    resumed = _run(data, tmp_path / "b", resume=True)["model"].state_dict()
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k
    from mmpmodel.train_prior import train_prior
    with pytest.raises(SettingsMismatch, match="patch"):
        train_prior(data, tmp_path / "b", steps=6, batch_size=2, patch=24, seed=3, resume=True, progress=False)


def test_non_finite_loss_stops_and_keeps_last_good(data, tmp_path):
    def poison(step, model):
        if step == 3:
            with torch.no_grad():
                model.tail.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="non-finite loss at step 4"):
        _run(data, tmp_path / "n", hook=poison)
    ck = load_checkpoint(tmp_path / "n" / "last.pt")
    assert ck["step"] == 2
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_cli_clean_errors(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    res = CliRunner().invoke(main, ["train-prior", "--data", str(text), "--out", str(tmp_path / "r"), "--steps", "1"])
    assert res.exit_code == 2 and "error:" in res.output and "notes.h5" in res.output
    assert "Traceback" not in res.output
