"""Training configuration: recipes, precedence, generated options, the learning-rate plan, true video clips.

No training here (fast); the end-to-end behaviour is in test_train_prior.py / test_train_deblur.py."""
import json
import math

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from _mmph5 import ROOT_ATTRS, coded_frames
from cli.main import main
from mmpdata.datasets import Range, VideoClips
from mmpdata.errors import InputError, SettingsMismatch
from mmpmodel.train_config import (CONFIGS, RECIPES, DeblurTrainConfig, PriorTrainConfig, config_fields, prepare,
                                   resolve)
from mmpmodel.train_loop import LRPlan


# ----------------------------------------------------------------------------------------------- precedence
def test_defaults_are_todays_behaviour():
    p, d = resolve("prior"), resolve("deblur")
    assert (p.lr, p.schedule, p.step_at, p.step_gamma, p.grad_weight, p.epochs, p.grad_clip) == \
        (3e-4, "step", "0.5", 0.5, 0.5, 400, None)
    assert (d.lr, d.schedule, d.min_lr, d.grad_clip, d.char_weight, d.grad_weight, d.mm_weight, d.epochs,
            d.skip_lr_scale, d.warmup_steps) == (5e-4, "cosine", 1e-8, 20.0, 1.0, 0.5, 1.0, 1000, 1.0, 0)


def test_precedence_recipe_saved_explicit():
    cfg = resolve("deblur", "paper-bsd", saved={"lr": 1e-4, "batch_size": 2}, explicit={"batch_size": 3})
    assert cfg.preset == "A8B9C18F8" and cfg.epochs == 500  # recipe
    assert cfg.lr == 1e-4  # saved over recipe
    assert cfg.batch_size == 3  # explicit over saved
    assert cfg.patch == 256 and cfg.frames == 10


def test_steps_replace_a_recipes_epochs_and_both_explicit_is_refused():
    cfg = resolve("deblur", "paper-gopro", explicit={"steps": 7})
    assert cfg.steps == 7 and cfg.epochs is None
    with pytest.raises(InputError, match="--steps or --epochs"):
        resolve("prior", explicit={"steps": 3, "epochs": 2})
    with pytest.raises(InputError, match="unknown recipe 'nope'.*paper-gopro"):
        resolve("prior", "nope")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0, -1e-3])
def test_library_refuses_bad_rates(value):
    with pytest.raises(InputError, match="lr"):
        resolve("prior", explicit={"lr": value})


def test_every_recipe_is_valid_and_sourced():
    for kind, recipes in RECIPES.items():
        assert {"paper-gopro", "paper-bsd", "cpu"} <= set(recipes)
        names = {f.name for f in config_fields(CONFIGS[kind])}
        for recipe in recipes.values():
            assert set(recipe.values) <= names, (kind, recipe.name)
            assert set(recipe.sources) == set(recipe.values), (kind, recipe.name)  # every value has its source
            resolve(kind, recipe.name)
    # the paper's numbers (§4.1, §4.2, Tables 2-3)
    assert RECIPES["deblur"]["paper-gopro"].values["lr"] == 5e-4
    assert RECIPES["deblur"]["paper-gopro"].values["epochs"] == 1000
    assert RECIPES["deblur"]["paper-bsd"].values["epochs"] == 500
    assert RECIPES["prior"]["paper-gopro"].values["patch"] == 512


def test_config_file_and_resume_layers(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"kind": "prior", "lr": 1e-3, "patch": 64, "data_id": "x",
                                                 "steps": 9, "device": "cuda:3", "workers": 7}))
    cfg = prepare("prior", tmp_path / "other", config_file=run / "config.json", explicit={"patch": 32})
    assert (cfg.lr, cfg.patch, cfg.steps) == (1e-3, 32, 9)
    assert (cfg.device, cfg.workers) == (None, None)  # machine-bound settings are not inherited
    assert prepare("prior", run, resume=True).lr == 1e-3  # --resume reads RUN/config.json
    with pytest.raises(InputError, match="config.json: missing"):
        prepare("prior", tmp_path / "nothing", resume=True)
    with pytest.raises(InputError, match="not a deblur training configuration"):
        prepare("deblur", tmp_path / "x", config_file=run / "config.json")


# ----------------------------------------------------------------------------------------------- the commands
def test_recipes_command_lists_every_recipe_with_values():
    res = CliRunner().invoke(main, ["recipes"])
    assert res.exit_code == 0, res.output
    for kind, recipes in RECIPES.items():
        for name, recipe in recipes.items():
            assert f"train-{kind} --recipe {name}:" in res.output
            for key, value in recipe.values.items():
                assert f"--{key.replace('_', '-')} {value}" in res.output
    data = json.loads(CliRunner().invoke(main, ["recipes", "--json", "--task", "deblur"]).output)
    assert data["deblur"]["paper-bsd"]["values"]["preset"] == "A8B9C18F8"


@pytest.mark.parametrize("command,cls", [("train-prior", PriorTrainConfig), ("train-deblur", DeblurTrainConfig)])
def test_every_setting_is_an_option_with_help(command, cls):
    cmd = main.commands[command]
    options = {p.name: p for p in cmd.params}
    for f in config_fields(cls):
        if f.metadata.get("cli", True):
            assert f.name in options, f.name
    assert all(p.help for p in cmd.params if p.name != "help" and not getattr(p, "hidden", False))


@pytest.mark.parametrize("args", [["--lr", "nan"], ["--lr", "0"], ["--val-fraction", "1"], ["--grad-weight", "-1"],
                                  ["--skip-lr-scale", "inf"]])
def test_bad_numbers_refused_at_parse_time(args, tmp_path):
    res = CliRunner().invoke(main, ["train-deblur", "--out", str(tmp_path / "r"), *args])
    assert res.exit_code == 2 and args[0] in res.output and "Traceback" not in res.output


# ----------------------------------------------------------------------------------------------- LR plan
def _cfg(**kw):
    return resolve("deblur", explicit=kw)


def test_lr_plan_shapes():
    cos = _cfg(lr=1.0, min_lr=0.0, schedule="cosine", warmup_steps=2)
    plan = LRPlan.fresh(10, 2)
    assert [plan.factor(s, cos) for s in (0, 1)] == [0.5, 1.0]  # linear warm-up
    # cosine over the 8 steps after the warm-up: step 2 + t runs at (1 + cos(pi t / 8)) / 2
    for t in range(8):
        assert plan.factor(2 + t, cos) == pytest.approx((1 + math.cos(math.pi * t / 8)) / 2)
    step = _cfg(lr=1.0, schedule="step", step_at="0.5,0.75", step_gamma=0.1)
    plan = LRPlan.fresh(8, 0)
    assert [plan.factor(s, step) for s in range(8)] == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])
    const = _cfg(lr=1.0, schedule="constant", warmup_steps=4)
    assert [LRPlan.fresh(6, 4).factor(s, const) for s in range(6)] == [0.25, 0.5, 0.75, 1, 1, 1]


def test_lr_plan_extension():
    cfg = _cfg(lr=1.0, min_lr=0.0, schedule="cosine", warmup_steps=1)
    finished = LRPlan.fresh(4, 1)
    assert "restarts" in finished.extend(8, 4, cfg)
    assert finished.factor(4, cfg) == pytest.approx(1.0)  # warm-up of 1 step to the full rate, again
    assert finished.factor(7, cfg) == pytest.approx((1 + math.cos(math.pi * 2 / 3)) / 2)
    assert finished.factor(2, cfg) == LRPlan.fresh(4, 1).factor(2, cfg)  # the past is unchanged
    running = LRPlan.fresh(10, 0)
    cfg0 = _cfg(lr=1.0, min_lr=0.0, schedule="cosine")
    now = running.factor(5, cfg0)
    assert "continues" in running.extend(20, 5, cfg0)
    assert running.factor(5, cfg0) == pytest.approx(now)  # no jump at the resume point
    assert running.factor(19, cfg0) < running.factor(12, cfg0) < now
    with pytest.raises(InputError, match="not shortened"):
        LRPlan.fresh(10, 0).extend(6, 3, cfg0)


# ----------------------------------------------------------------------------------------------- true video clips
def _windows_h5(path, t, windows, stride, frames=(3, 3)):
    shards = path.with_suffix(".shards")
    shards.mkdir(parents=True)
    with h5py.File(path, "w") as index:
        index.attrs.update({**ROOT_ATTRS, "stride": stride, "frames": np.array(frames)})
        grp = index.create_group("sequences")
        with h5py.File(shards / "s.h5", "w") as f:
            f.attrs.update({**ROOT_ATTRS, "stride": stride, "frames": np.array(frames), "complete": True})
            f["blur"] = coded_frames(t, 8, 8)
            f["sharp"] = coded_frames(t, 8, 8, offset=100)
            f["mmp"] = np.zeros((t, 8, 8), np.float16)
            f["window"] = np.asarray(windows, np.int32)
        grp["s"] = h5py.ExternalLink(f"{path.stem}.shards/s.h5", "/")
    return path


def test_overlapping_windows_give_clips_of_every_kth_window(tmp_path):
    from mmpmodel.train_deblur import window_step

    t = 20  # stride-1 windows of 3 raw frames: window i = raw frames [i, i + 2]
    data = _windows_h5(tmp_path / "d.h5", t, [[i, i + 2] for i in range(t)], stride=1)
    k = window_step(data)
    assert k == 3
    clips = VideoClips(data, [Range("s", 0, t)], frames=5, patch=None, augment=False, window_step=k)
    assert len(clips) == t - 4 * 3  # starts 0..7: the last clip ends at window 7 + 12 = 19
    for i in (0, len(clips) - 1):
        stored = clips[i]["blur"][:, 2, 0, 0] * 255  # channel 2 codes the stored window's index
        assert stored.round().tolist() == [i + 3 * j for j in range(5)]
    # consecutive clip frames are non-overlapping exposures: each clip frame's window starts after the last ends
    with h5py.File(data, "r") as f:
        table = f["sequences"]["s"]["window"][:]
    for i in range(len(clips)):
        used = table[[i + 3 * j for j in range(5)]]
        assert (used[1:, 0] > used[:-1, 1]).all()


def test_non_overlapping_and_imported_data_use_every_window(tmp_path):
    from mmpmodel.train_deblur import window_step

    data = _windows_h5(tmp_path / "d.h5", 6, [[3 * i, 3 * i + 2] for i in range(6)], stride=0)
    assert window_step(data) == 1


def test_windows_that_overlap_anyway_are_refused_naming_the_fix(tmp_path):
    from mmpmodel.train_deblur import window_step

    # stride 2 claimed, but the windows are 5 long: every 2nd window still overlaps its neighbour
    data = _windows_h5(tmp_path / "d.h5", 10, [[i, i + 4] for i in range(10)], stride=2, frames=(3, 3))
    with pytest.raises(InputError, match="overlap.*default stride"):
        window_step(data)


def test_a_run_recorded_before_a_setting_existed_resumes_with_that_settings_default(tmp_path):
    from mmpmodel.runs import check_new_or_resume
    from mmpmodel.train_config import defaults, resume_keys, to_dict

    assert RECIPES["deblur"]["cpu"].values["ema"] > 0  # the recipe turns the average on today
    run = tmp_path / "run"
    run.mkdir()
    old = to_dict(resolve("deblur", "cpu"))
    old.pop("ema")  # config.json of a run made before --ema existed: it trained without an average
    old["data_id"] = "abc"
    (run / "config.json").write_text(json.dumps(old))
    (run / "last.pt").write_bytes(b"")
    cfg = prepare("deblur", run, recipe="cpu", resume=True)
    assert cfg.ema == 0.0  # not the recipe's 0.995: the run goes on as it was trained
    check_new_or_resume(run, {**to_dict(cfg), "data_id": "abc"}, True, resume_keys(DeblurTrainConfig) + ("data_id",),
                        defaults(DeblurTrainConfig))
    with pytest.raises(SettingsMismatch, match="ema: run has 0.0, asked for 0.995"):
        check_new_or_resume(run, {**to_dict(cfg), "ema": 0.995, "data_id": "abc"}, True,
                            resume_keys(DeblurTrainConfig) + ("data_id",), defaults(DeblurTrainConfig))
