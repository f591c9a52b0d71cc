"""mmp plot: a PNG of the loss and validation curves with the blurry input's PSNR as reference, from metrics.jsonl
written by hand and from a real (short) train-deblur run."""
import json

import cv2
import pytest
from click.testing import CliRunner

from cli.main import main
from mmpdata.errors import InputError
from mmpmodel.plots import plot_runs, read_metrics, reference_key


def _run(folder, lines):
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder


def test_plot_panels_references_and_size(tmp_path):
    deblur = _run(tmp_path / "rnn", [{"step": s, "loss": 1 / s} for s in range(1, 11)]
                  + [{"step": 5, "val_psnr": 24.0, "val_input_psnr": 23.5},
                     {"step": 10, "val_psnr": 24.5, "val_input_psnr": 23.5}])
    prior = _run(tmp_path / "prior", [{"step": 2, "loss": 0.2}, {"step": 4, "loss": 0.1},
                                      {"step": 4, "val_l1": 0.08, "val_l1_mean_baseline": 0.09}])
    res = CliRunner().invoke(main, ["plot", str(deblur), str(prior), "--out", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    img = cv2.imread(str(tmp_path / "c.png"))
    assert img.shape[:2] == (456, 1800)  # 3 panels of 5 x 3.8 inches at 120 dpi: loss, val_psnr, val_l1
    r = plot_runs([deblur, prior], tmp_path / "d.png", labels=["a", "b"])
    assert r["panels"] == ["loss", "val_psnr", "val_l1"]
    assert r["references"] == {"a": "val_input_psnr", "b": "val_l1_mean_baseline"}
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, nothing left over


def test_reference_keys_and_damaged_files(tmp_path):
    assert reference_key("val_psnr", {"val_psnr", "best_val_psnr", "val_psnr_input"}) == "val_psnr_input"
    assert reference_key("val_psnr", {"val_psnr", "best_val_psnr"}) is None
    assert reference_key("val_l1", {"val_l1", "best_val_l1", "val_mean_l1"}) == "val_mean_l1"  # train-prior's key
    torn = tmp_path / "torn"
    torn.mkdir()
    (torn / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo')  # killed mid-write
    assert read_metrics(torn) == [{"step": 1, "loss": 0.5}]
    with pytest.raises(InputError, match="metrics.jsonl: not found"):
        plot_runs([tmp_path], tmp_path / "x.png")
    with pytest.raises(InputError, match="must end in .png"):
        plot_runs([torn], tmp_path / "x.jpg")
    res = CliRunner().invoke(main, ["plot", str(torn), "--out", str(tmp_path / "x.png"), "--label", "a",
                                    "--label", "b"])
    assert res.exit_code == 2 and "2 --label for 1 runs" in res.output


@pytest.mark.slow
def test_plot_from_a_real_run(tmp_path):
    from _mmph5 import write_learnable_h5

    data = write_learnable_h5(tmp_path / "d.h5", names=("s0", "s1", "s2"), t=7, size=(32, 32))
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train-deblur", "--data", str(data), "--preset", "A1B1C4F5", "--no-prior",
                                    "--no-mm-loss", "--out", str(run), "--steps", "20", "--batch-size", "2",
                                    "--patch", "32", "--val-every", "10", "--log-every", "2", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["plot", str(run), "--out", str(tmp_path / "curves.png")])
    assert res.exit_code == 0, res.output
    records = read_metrics(run)
    assert sum("loss" in r for r in records) == 10 and sum("val_psnr" in r for r in records) == 2
    r = plot_runs([run], tmp_path / "again.png")
    assert r["panels"] == ["loss", "val_psnr"] and "run" in r["references"]  # the blurry input's PSNR is drawn
    assert cv2.imread(str(tmp_path / "curves.png")).shape[:2] == (456, 1200)


def test_run_folder_says_in_one_info_line_that_tensorboard_is_missing(tmp_path, caplog, monkeypatch):
    import logging
    import sys

    from mmpmodel.runs import RunDir

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as without the package
    with caplog.at_level(logging.INFO, logger="mmpmodel.runs"):
        run = RunDir(tmp_path / "run", {"kind": "test"})
        run.log(1, loss=0.5)
        run.close()
    lines = [r for r in caplog.records if "tensorboard" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert "mmp-toolkit[tensorboard]" in lines[0].getMessage()
    assert read_metrics(tmp_path / "run")[0]["loss"] == 0.5 and not (tmp_path / "run" / "tb").exists()
