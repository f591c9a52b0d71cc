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
from mmpmodel.train_config import CPU_RECIPES

RECIPES_CPU = CPU_RECIPES["prior"]


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


def _val_truth(data, val_sequences, train_sequences):
    """The mean predictor's L1 on the validation frames, from the stored MMP alone (numpy, no toolkit code)."""
    import h5py
    import numpy as np

    with h5py.File(data, "r") as f:
        train = [np.clip(f["sequences"][s]["mmp"][:].astype(np.float32), 0, 1) for s in train_sequences]
        val = [np.clip(f["sequences"][s]["mmp"][:].astype(np.float32), 0, 1) for s in val_sequences]
    mean = np.concatenate([t.ravel() for t in train]).mean()
    return float(np.concatenate([np.abs(v - mean).ravel() for v in val]).mean())


@pytest.mark.slow
def test_validation_says_what_to_beat_and_writes_strips(data, tmp_path):
    torch.set_num_threads(1)
    res = _run(data, tmp_path / "v")
    lines = [json.loads(x) for x in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    vals = [x for x in lines if "val_l1" in x]
    assert len(vals) == 3 and all("val_mean_l1" in x for x in vals)
    truth = _val_truth(data, res["val_sequences"], res["train_sequences"])
    assert vals[-1]["val_mean_l1"] == pytest.approx(truth, rel=1e-4)
    assert res["val_mean_l1"] == pytest.approx(truth, rel=1e-4)
    pngs = sorted(p.name for p in (tmp_path / "v" / "val").iterdir())
    assert pngs[:2] == ["step_000002_0.png", "step_000002_1.png"] and "step_000006_0.png" in pngs
    import cv2
    img = cv2.imread(str(tmp_path / "v" / "val" / "step_000006_0.png"))
    assert img.shape == (40, 3 * 40, 3)  # blurry | MMP-Net | truth, full 40x40 validation frames


@pytest.mark.slow
def test_sigint_mid_step_resumes_bit_identically_with_batchnorm_buffers(data, tmp_path):
    import os
    import signal

    torch.set_num_threads(1)
    straight = _run(data, tmp_path / "a")["model"].state_dict()

    def interrupt_during_next_forward(step, model):
        if step == 3:
            def fire(module, inputs):
                handle.remove()
                os.kill(os.getpid(), signal.SIGINT)  # arrives inside step 4's forward, after BatchNorm counted it
            handle = model.register_forward_pre_hook(fire)
    with pytest.raises(KeyboardInterrupt):
        _run(data, tmp_path / "b", hook=interrupt_during_next_forward)
    ck = load_checkpoint(tmp_path / "b" / "last.pt")
    assert ck["step"] == 4 and ck["metrics"]["interrupted"]  # step 4 was finished before stopping
    resumed = _run(data, tmp_path / "b", resume=True)["model"].state_dict()
    assert any("num_batches_tracked" in k for k in straight)
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


def test_nan_before_any_checkpoint_says_so(data, tmp_path):
    from mmpmodel.train_prior import train_prior

    def poison(step, model):
        with torch.no_grad():
            model.tail.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="non-finite loss at step 2; no checkpoint was written yet") as err:
        train_prior(data, tmp_path / "n", steps=6, batch_size=2, patch=32, seed=3, val_every=5, progress=False,
                    hook=poison)
    assert "last.pt" not in str(err.value)
    assert not (tmp_path / "n").exists()  # nothing half-made left: no config.json, metrics.jsonl or folder


def test_nan_validation_is_an_error_not_a_missing_best(data, tmp_path, monkeypatch):
    from mmpmodel import train_prior as tp

    monkeypatch.setattr(tp.PriorTask, "validate", lambda self: {"val_l1": float("nan"), "val_mean_l1": 0.1})
    with pytest.raises(TrainingError, match="validation val_l1 is nan at step 2"):
        _run(data, tmp_path / "q")
    assert not (tmp_path / "q" / "best.pt").exists()


@pytest.mark.slow
def test_init_from_starts_at_the_given_weights(data, tmp_path):
    from mmpmodel.runs import state_sha256
    from mmpmodel.train_prior import train_prior

    torch.set_num_threads(1)
    first = _run(data, tmp_path / "a")
    res = train_prior(data, tmp_path / "b", steps=1, batch_size=2, patch=32, seed=5, lr=1e-12, progress=False,
                      init_from=tmp_path / "a" / "last.pt")
    src = first["model"].state_dict()
    for k, v in res["model"].state_dict().items():
        if v.is_floating_point() and "running" not in k:
            assert torch.allclose(v, src[k], atol=1e-9), k  # one step at lr 1e-12 leaves the start in place
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["init_from_sha256"] == state_sha256(load_checkpoint(tmp_path / "a" / "last.pt")["model"])


@pytest.mark.slow
def test_extension_moved_data_and_missing_config(data, tmp_path):
    import shutil

    from mmpmodel.train_prior import train_prior

    torch.set_num_threads(1)
    _run(data, tmp_path / "r")  # 6 steps, finished
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(data, moved / data.name)
    shutil.copytree(data.with_suffix(".shards"), moved / data.with_suffix(".shards").name)
    res = train_prior(moved / data.name, tmp_path / "r", steps=9, resume=True, log_every=1,
                      progress=False)  # the other settings come from RUN/config.json
    assert res["steps"] == 9
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["total_steps"] == 9 and "restarts" in cfg["extensions"][-1]
    lines = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    # the finished run restarts at the full rate 3e-4 (no warm-up) and halves at half of the 3 added steps
    assert [x["lr"] for x in lines if "lr" in x and x["step"] > 6] == pytest.approx([3e-4, 1.5e-4, 1.5e-4])
    with pytest.raises(SettingsMismatch, match="patch"):
        train_prior(data, tmp_path / "r", steps=12, patch=24, resume=True, progress=False)
    (tmp_path / "r" / "config.json").unlink()
    with pytest.raises(InputError, match="config.json: missing"):
        train_prior(data, tmp_path / "r", steps=12, resume=True, progress=False)


@pytest.mark.slow
def test_other_data_is_refused_on_resume(data, tmp_path):
    from mmpmodel.train_prior import train_prior

    torch.set_num_threads(1)
    other = write_learnable_h5(tmp_path / "other.h5", names=("s0", "s1", "s2", "s3", "s4"))
    _run(data, tmp_path / "r")
    with pytest.raises(SettingsMismatch, match="data_id"):
        train_prior(other, tmp_path / "r", steps=8, resume=True, progress=False)


@pytest.mark.slow
def test_cli_recipe_override_and_config_rerun(data, tmp_path):
    torch.set_num_threads(1)
    a, b = tmp_path / "a", tmp_path / "b"
    res = CliRunner().invoke(main, ["train-prior", "--recipe", "cpu", "--data", str(data), "--out", str(a),
                                    "--steps", "2", "--patch", "32", "--batch-size", "2", "--val-every", "2"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((a / "config.json").read_text())
    assert cfg["recipe"] == "cpu" and cfg["steps"] == 2 and cfg["patch"] == 32  # explicit options win
    assert cfg["val_frames"] == RECIPES_CPU["val_frames"] and cfg["schedule"] == RECIPES_CPU["schedule"]
    res = CliRunner().invoke(main, ["train-prior", "--config", str(a / "config.json"), "--out", str(b)])
    assert res.exit_code == 0, res.output
    rerun = json.loads((b / "config.json").read_text())
    same = {k for k in cfg if k not in ("recipe",)}
    assert {k: rerun[k] for k in same} == {k: cfg[k] for k in same}
    wa, wb = load_checkpoint(a / "last.pt")["model"], load_checkpoint(b / "last.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # the same settings train the same weights


def test_non_finite_weights_are_never_saved(data, tmp_path):
    def poison_at_2(step, model):
        if step == 2:  # after step 2's update, right before the validation round of step 2 would save
            with torch.no_grad():
                model.tail.weight.fill_(float("inf"))
    with pytest.raises(TrainingError, match="non-finite by step 2; not saved \\(no checkpoint yet"):
        _run(data, tmp_path / "w", hook=poison_at_2)
    assert not (tmp_path / "w").exists()


def test_level_term_is_the_l1_of_each_crops_mean():
    """Hand-computed: crop 0's truth averages the prediction (level error 0, pixel error 0.1); crop 1 is 0.2 off."""
    from mmpmodel.train_prior import prior_loss

    pred = torch.full((2, 1, 4, 4), 0.1)
    target = torch.zeros(2, 1, 4, 4)
    target[0, :, :, 2:] = 0.2
    target[1] = 0.3
    total, parts = prior_loss(pred, target, grad_weight=0.0, level_weight=2.0)
    assert parts["l1"] == pytest.approx((0.1 + 0.2) / 2)
    assert parts["level"] == pytest.approx((0.0 + 0.2) / 2)
    assert total.item() == pytest.approx(0.15 + 2.0 * 0.1)
    plain, parts = prior_loss(pred, target, grad_weight=0.0)
    assert plain.item() == pytest.approx(0.15) and "level" not in parts


def test_mse_term_adds_the_mean_squared_error():
    """Hand-computed: errors 0.1 on half the pixels and 0.3 on the other half: L1 0.2, MSE (0.01 + 0.09) / 2."""
    from mmpmodel.train_prior import prior_loss

    pred = torch.zeros(1, 1, 2, 4)
    target = torch.full((1, 1, 2, 4), 0.1)
    target[..., 1, :] = 0.3
    total, parts = prior_loss(pred, target, grad_weight=0.0, mse_weight=10.0)
    assert parts["l1"] == pytest.approx(0.2)
    assert parts["mse"] == pytest.approx(0.05)
    assert total.item() == pytest.approx(0.2 + 10.0 * 0.05)
    plain, parts = prior_loss(pred, target, grad_weight=0.0)
    assert plain.item() == pytest.approx(0.2) and "mse" not in parts


def test_input_norm_travels_with_the_weights(data, tmp_path):
    # --input-norm local is recorded in the checkpoint, rebuilt by every loader (a prior or one inside MMP-RNN),
    # and fine-tuning it under the other input is refused with the option that fixes it.
    from mmpmodel.train_prior import train_prior

    torch.set_num_threads(1)
    res = CliRunner().invoke(main, ["train-prior", "--data", str(data), "--out", str(tmp_path / "a"), "--steps", "2",
                                    "--batch-size", "2", "--patch", "32", "--input-norm", "local"])
    assert res.exit_code == 0, res.output
    net, ck = load_prior(tmp_path / "a" / "best.pt")
    assert net.input_norm == "local" and ck["config"]["input_norm"] == "local"
    assert json.loads((tmp_path / "a" / "config.json").read_text())["input_norm"] == "local"
    with pytest.raises(InputError, match="--input-norm local"):
        train_prior(data, tmp_path / "b", steps=1, batch_size=2, patch=32, progress=False,
                    init_from=tmp_path / "a" / "best.pt")
    res = CliRunner().invoke(main, ["train-deblur", "--data", str(data), "--out", str(tmp_path / "d"), "--steps", "1",
                                    "--batch-size", "1", "--patch", "32", "--preset", "A1B1C8F5",
                                    "--prior", str(tmp_path / "a" / "best.pt")])
    assert res.exit_code == 0, res.output
    inner, _ = load_prior(tmp_path / "d" / "last.pt")
    assert inner.input_norm == "local"
