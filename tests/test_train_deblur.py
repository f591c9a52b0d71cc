"""train-deblur: checkpoint round trip, exact resume, ablation switches, clean errors."""
import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from _mmph5 import write_learnable_h5
from cli.main import main
from mmpdata.errors import InputError, SettingsMismatch
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


def _input_psnr_truth(data, sequences, frames=5):
    """PSNR of the blurry input against sharp on the supervised frames of every clip (numpy only): with 7 frames
    and F = 5 the clips start at 0, 1, 2 and each supervises its centre, frames 2, 3, 4."""
    import h5py
    import numpy as np

    scores = []
    with h5py.File(data, "r") as f:
        for s in sequences:
            blur, sharp = f["sequences"][s]["blur"][:], f["sequences"][s]["sharp"][:]
            for t in range(2, blur.shape[0] - 2):
                mse = np.mean((blur[t].astype(np.float64) - sharp[t]) ** 2)
                scores.append(10 * np.log10(255.0 ** 2 / mse))
    return float(np.mean(scores))


@pytest.mark.slow
def test_validation_keys_strips_and_skip_group(setup, tmp_path):
    torch.set_num_threads(1)
    res = _run(setup, tmp_path / "v", skip_lr_scale=0.25, val_images=2)
    lines = [json.loads(x) for x in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    vals = [x for x in lines if "val_psnr" in x]
    assert len(vals) == 2 and all("val_input_psnr" in x for x in vals)
    assert vals[-1]["val_input_psnr"] == pytest.approx(_input_psnr_truth(setup[0], res["val_sequences"]), abs=1e-6)
    assert res["val_input_psnr"] == vals[-1]["val_input_psnr"]
    import cv2
    names = sorted(p.name for p in (tmp_path / "v" / "val").iterdir())
    # one validation sequence of 7 frames = 3 clips; 2 shown per round
    assert names == ["step_000002_0.png", "step_000002_1.png", "step_000004_0.png", "step_000004_1.png"]
    assert cv2.imread(str(tmp_path / "v" / "val" / names[0])).shape == (32, 3 * 32, 3)  # blurry | output | sharp
    groups = load_checkpoint(tmp_path / "v" / "last.pt")["optimizer"]["param_groups"]
    assert len(groups) == 2 and groups[1]["lr"] == pytest.approx(0.25 * groups[0]["lr"])
    assert len(groups[1]["params"]) == 2  # the 9x9 skip convolution's weight and bias


@pytest.mark.slow
def test_init_from_and_prior_checks_on_resume(setup, tmp_path):
    from mmpmodel.runs import state_sha256
    torch.set_num_threads(1)
    data, prior = setup
    first = _run(setup, tmp_path / "a")
    # fine-tuning: the prior comes from the deblurring checkpoint when --prior is not given
    tuned = _run(setup, tmp_path / "b", prior=None, init_from=tmp_path / "a" / "last.pt", steps=1, lr=1e-12)
    src = first["model"].deblur_state_dict()
    for k, v in tuned["model"].deblur_state_dict().items():
        assert torch.allclose(v, src[k], atol=1e-9), k
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["prior_sha256"] == state_sha256(load_checkpoint(prior)["model"])
    # without --preset the architecture is the start checkpoint's
    assert _run(setup, tmp_path / "c", preset=None, prior=None, init_from=tmp_path / "a" / "last.pt",
                steps=1)["preset"] == PRESET
    # --resume with another prior is refused, naming it
    torch.manual_seed(7)
    other = save_checkpoint(tmp_path / "other.pt", kind="prior", config={"width": 16}, model=MMPNet().state_dict())
    with pytest.raises(SettingsMismatch, match="different --prior"):
        _run(setup, tmp_path / "a", prior=other, steps=6, resume=True)
    # without --prior the run's own prior is used (config.json), and the run extends
    assert _run(setup, tmp_path / "a", prior=None, steps=6, resume=True)["steps"] == 6


def test_resume_with_a_registered_prior_uses_the_runs_own_copy(setup, tmp_path, caplog):
    """--prior sample-prior-frame names bundled weights that a later release may replace: resuming keeps the prior
    the run trained with (the copy inside last.pt) and says why, instead of calling the prior gone. sample-prior,
    which reads neighbouring frames, is refused with the bundled one MMP-RNN can use."""
    from mmpmodel.weights import resolve_weights
    torch.set_num_threads(1)

    def same_prior(path):  # the bundled file stores float16, runs keep float32 copies of the same values
        stored = load_checkpoint(path)["prior"]
        bundled = load_checkpoint(resolve_weights("sample-prior-frame"))["model"]
        return stored.keys() == bundled.keys() and all(torch.equal(stored[k].float(), bundled[k].float()) for k in stored)

    with pytest.raises(InputError, match="sample-prior-frame is bundled"):
        _run(setup, tmp_path / "c", prior="sample-prior")
    assert not (tmp_path / "c").exists()
    _run(setup, tmp_path / "r", prior="sample-prior-frame")
    assert same_prior(tmp_path / "r" / "last.pt")
    with caplog.at_level("INFO", logger="mmpmodel.train_deblur"):
        resumed = _run(setup, tmp_path / "r", prior=None, steps=6, resume=True)
    assert resumed["steps"] == 6
    assert "names registered weights" in caplog.text and "is gone" not in caplog.text
    assert same_prior(tmp_path / "r" / "last.pt")


def test_init_from_a_shallower_preset_grows_it(setup, tmp_path):
    torch.set_num_threads(1)
    first = _run(setup, tmp_path / "a")
    grown = _run(setup, tmp_path / "g", preset="A2B3C4F5", prior=None, init_from=tmp_path / "a" / "last.pt",
                 steps=1, lr=1e-12)
    assert grown["preset"] == "A2B3C4F5"
    clip = torch.rand(1, 5, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(grown["model"].eval()(clip), first["model"].eval()(clip), rtol=0, atol=1e-5)
    with pytest.raises(Exception, match="deeper one"):  # a wider preset cannot take the weights
        _run(setup, tmp_path / "w", preset="A2B3C6F5", prior=None, init_from=tmp_path / "a" / "last.pt", steps=1)


def test_cli_preset_and_deprecated_model_alias(setup, tmp_path):
    torch.set_num_threads(1)
    data, prior = setup
    args = ["--data", str(data), "--prior", str(prior), "--steps", "1", "--patch", "32", "--batch-size", "1",
            "--val-images", "0"]
    res = CliRunner().invoke(main, ["train-deblur", "--preset", PRESET, "--out", str(tmp_path / "p"), *args])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["preset"] == PRESET and "is deprecated" not in res.output
    res = CliRunner().invoke(main, ["train-deblur", "--model", PRESET, "--out", str(tmp_path / "m"), *args])
    assert res.exit_code == 0 and "--model is deprecated; use --preset" in res.stderr
    res = CliRunner().invoke(main, ["train-deblur", "--out", str(tmp_path / "n"), *args])
    assert res.exit_code == 2 and "--preset" in res.output


def test_mmam_gain_scales_only_a_fresh_start(setup, tmp_path):
    """--mmam-gain multiplies the initial weights of MMAM's first 1x1 conv and nothing else; --init-from keeps the
    weights it loads."""
    torch.set_num_threads(1)
    still = dict(steps=1, lr=1e-12, val_every=1)  # one step at a negligible rate: the weights stay the initial ones
    plain = _run(setup, tmp_path / "g1", **still)["model"].state_dict()
    gained = _run(setup, tmp_path / "g5", mmam_gain=5.0, **still)["model"].state_dict()
    key = "mmam.gamma.0.weight"
    torch.testing.assert_close(gained[key], 5.0 * plain[key], rtol=0, atol=1e-8)
    for name in plain:
        if name != key:
            torch.testing.assert_close(gained[name], plain[name], rtol=0, atol=1e-8)
    loaded = _run(setup, tmp_path / "i5", mmam_gain=5.0, prior=None, init_from=tmp_path / "g1" / "last.pt",
                  **still)["model"].state_dict()
    torch.testing.assert_close(loaded[key], plain[key], rtol=0, atol=1e-8)


def test_ends_train_and_validate_every_frame_of_a_clip(setup, tmp_path):
    # --ends replicate: every frame of each 5-frame clip is scored (clips at 0, 1, 2 of a 7-frame sequence: frames
    # 0-4, 1-5, 2-6), not only its centre; the loss sees the network's output at every frame.
    import h5py
    import numpy as np

    from mmpmodel.train_deblur import DeblurTask

    torch.set_num_threads(1)
    res = _run(setup, tmp_path / "e", steps=2, ends="replicate")
    scores = []
    with h5py.File(setup[0], "r") as f:
        for s in res["val_sequences"]:
            blur, sharp = f["sequences"][s]["blur"][:], f["sequences"][s]["sharp"][:]
            for start in range(3):
                for t in range(start, start + 5):
                    mse = np.mean((blur[t].astype(np.float64) - sharp[t]) ** 2)
                    scores.append(10 * np.log10(255.0 ** 2 / mse))
    assert res["val_input_psnr"] == pytest.approx(float(np.mean(scores)), abs=1e-6)
    assert res["val_input_psnr"] != pytest.approx(_input_psnr_truth(setup[0], res["val_sequences"]), abs=1e-3)
    model = res["model"].eval()
    clip = torch.rand(1, 5, 3, 32, 32)
    task = DeblurTask.__new__(DeblurTask)
    for ends, frames in (("skip", 1), ("replicate", 5), ("reflect", 5)):
        task.cfg = type("Cfg", (), {"ends": ends})()
        with torch.no_grad():
            out = task._run(model, clip, None)
        assert out.shape[1] == frames == task._scored(clip).shape[1]
        if ends != "skip":
            assert torch.allclose(out, model.forward_all(clip, ends=ends), atol=1e-6)
    with pytest.raises(InputError, match="ends"):
        _run(setup, tmp_path / "bad", steps=1, ends="wrap")
    assert not (tmp_path / "bad").exists()


def test_teacher_term_is_the_distance_to_the_teachers_self_ensemble(setup, tmp_path):
    # Distillation: the student starts from the teacher's own weights, so with a one-pass teacher (fp32, same input)
    # the outputs are equal and the Charbonnier term between them is exactly its epsilon, 1e-3. A two-pass teacher
    # averages in the mirrored pass, which an untrained network does not reproduce: the term is larger. The teacher's
    # output is the mean of the plain pass and the mirrored pass turned back, computed here by hand.
    import numpy as np

    from mmpmodel.train_deblur import DeblurTask

    torch.set_num_threads(1)
    _run(setup, tmp_path / "t", steps=2)
    teacher = str(tmp_path / "t" / "best.pt")

    def first_teacher_term(out, ensemble):
        _run(setup, out, steps=1, init_from=teacher, teacher=teacher, teacher_ensemble=ensemble, log_every=1,
             lr=1e-12, ends="replicate")
        record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
        return record["teacher"], json.loads((out / "config.json").read_text())

    one, config = first_teacher_term(tmp_path / "s1", 1)
    assert one == pytest.approx(1e-3, rel=1e-3)
    assert config["teacher"] == teacher and len(config["teacher_sha256"]) == 64
    two, _ = first_teacher_term(tmp_path / "s2", 2)
    assert two > 2e-3

    model = load_deblur(teacher)[0]
    task = DeblurTask.__new__(DeblurTask)
    task.teacher = model
    task.cfg = type("Cfg", (), {"ends": "replicate", "teacher_ensemble": 2})()
    clip = torch.rand(1, 5, 3, 32, 24)
    with torch.no_grad():
        plain = model.forward_all(clip, ends="replicate")
        mirrored = model.forward_all(clip.flip(-1), ends="replicate").flip(-1)
    taught = task._teach(clip, None)
    assert torch.allclose(taught, (plain + mirrored) / 2, atol=1e-6)
    assert not np.allclose(taught.numpy(), plain.numpy(), atol=1e-4)

    with pytest.raises(InputError, match="self-ensemble"):
        _run(setup, tmp_path / "bad", steps=1, teacher=teacher, teacher_ensemble=3)
    assert not (tmp_path / "bad").exists()

    # On --resume the teacher is compared by its weights, not its path: a moved copy resumes, other weights are
    # refused naming --teacher (the one-pass run s1 distils the weights of t/best.pt).
    moved = tmp_path / "moved.pt"
    moved.write_bytes(Path(teacher).read_bytes())
    assert _run(setup, tmp_path / "s1", steps=2, teacher=str(moved), teacher_ensemble=1, resume=True)["steps"] == 2
    other = torch.load(teacher, weights_only=True)
    other["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in other["model"].items()}
    torch.save(other, tmp_path / "other.pt")
    with pytest.raises(SettingsMismatch, match="different --teacher"):
        _run(setup, tmp_path / "s1", steps=3, teacher=str(tmp_path / "other.pt"), teacher_ensemble=1, resume=True)
