"""`mmp synthesize`, `mmp inspect`, `mmp index` through click: results, and every bad input as one line, exit 2,
nothing left behind."""
import json
import shutil

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from mmpdata import h5format as hf


def run(*args):
    return CliRunner().invoke(main, ["-q", *map(str, args)])


def assert_one_line_error(result, *names):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for name in names:
        assert str(name) in errors[0], errors[0]
    return errors[0]


def copy_seq(src, dst, n=None):
    dst.mkdir(parents=True)
    for p in sorted(src.glob("*.png"))[:n]:
        shutil.copy(p, dst)
    return dst


@pytest.fixture
def raw(sample_sequence, tmp_path):
    """A private two-sequence raw folder (tests damage it)."""
    root = tmp_path / "raw"
    copy_seq(sample_sequence, root / "seqA")
    copy_seq(sample_sequence, root / "seqB")
    return root


def left_behind(tmp_path):
    return sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if "raw" not in p.parts)


def test_synthesize_then_inspect(raw, tmp_path):
    out = tmp_path / "o" / "X.h5"
    res = run("synthesize", "--raw", raw, "--out", out, "--flow", "dis", "--frames", "5", "--seed", "1")
    assert res.exit_code == 0, res.output
    assert "wrote 2 sequence(s) (6 windows)" in res.output
    res = run("inspect", out)
    assert res.exit_code == 0 and "valid mmp-h5" in res.output and "seqA: 3 windows, 64x48" in res.output
    res = run("inspect", out, "--json", "--max-windows", "0")
    report = json.loads(res.output)
    assert report["valid"] and report["totals"] == {**report["totals"], "sequences": 2, "windows": 6}
    with h5py.File(out) as f:  # statistics recomputed from the file (every 2nd pixel, all windows)
        mmp = np.concatenate([f["sequences/seqA/mmp"][t][::2, ::2].ravel() for t in range(3)]).astype(np.float64)
    seq_a = report["sequences"][0]
    assert seq_a["name"] == "seqA" and seq_a["window_lengths"] == {"5": 3}
    assert seq_a["mmp"]["mean"] == pytest.approx(mmp.mean()) and seq_a["mmp"]["max"] == pytest.approx(mmp.max())
    assert seq_a["mmp"]["p90"] == pytest.approx(np.percentile(mmp, 90))
    assert report["attrs"]["flow"]["estimator"] == "dis"


def test_inspect_reports_damage_with_nonzero_exit(raw, tmp_path):
    out = tmp_path / "X.h5"
    assert run("synthesize", "--raw", raw, "--out", out, "--flow", "dis", "--frames", "5").exit_code == 0
    hf.shard_path(out, "seqB").unlink()
    res = run("inspect", out)
    assert res.exit_code == 1 and "INVALID" in res.output and "sequences/seqB" in res.output
    assert "broken external link" in res.output
    junk = tmp_path / "junk.h5"
    junk.write_text("hello")
    res = run("inspect", junk, "--json")
    assert res.exit_code == 1 and json.loads(res.stdout)["problems"] == [f"{junk}: not an HDF5 file"]
    assert res.stderr.strip() == f"error: {junk}: not an HDF5 file"  # one line on stderr, the report on stdout


def test_index_command_rebuilds(raw, tmp_path):
    out = tmp_path / "X.h5"
    assert run("synthesize", "--raw", raw, "--out", out, "--flow", "dis", "--frames", "5").exit_code == 0
    out.unlink()
    res = run("index", out)
    assert res.exit_code == 0 and "lists 2 sequence(s)" in res.output
    with h5py.File(out) as f:
        assert sorted(f["sequences"]) == ["seqA", "seqB"] and f["sequences/seqB/blur"].shape == (3, 48, 64, 3)
    assert_one_line_error(run("index", tmp_path / "none.h5"), tmp_path / "none.shards")


def test_short_sequence_is_skipped_with_a_warning(raw, tmp_path):
    copy_seq(raw / "seqA", raw / "seqShort", n=4)
    out = tmp_path / "X.h5"
    res = CliRunner().invoke(main, ["synthesize", "--raw", str(raw), "--out", str(out), "--flow", "dis",
                                    "--frames", "5"])
    assert res.exit_code == 0, res.output
    assert "seqShort: 4 frames, too short" in res.output and "1 too short" in res.output
    with h5py.File(out) as f:
        assert sorted(f["sequences"]) == ["seqA", "seqB"]


# ---------------------------------------------------------------------------------------------- bad inputs
def _missing_raw(raw, tmp_path):
    return ["--raw", tmp_path / "nope"], [tmp_path / "nope"]


def _empty_raw(raw, tmp_path):
    (tmp_path / "empty").mkdir()
    return ["--raw", tmp_path / "empty"], [tmp_path / "empty", "no frames"]


def _all_too_short(raw, tmp_path):
    return ["--raw", raw, "--frames", "17"], ["seqA", "seqB", "shorter"]


def _frame_size_differs(raw, tmp_path):
    bad = raw / "seqB" / "000009.png"
    cv2.imwrite(str(bad), np.zeros((40, 64, 3), np.uint8))
    return ["--raw", raw / "seqB"], [bad, "64x40"]


def _truncated_image(raw, tmp_path):
    bad = raw / "seqA" / "000007.png"
    bad.write_bytes(bad.read_bytes()[:100])
    return ["--raw", raw / "seqA"], [bad]


def _bad_frames(raw, tmp_path):
    return ["--raw", raw, "--frames", "7-x"], ["--frames", "7-x"]


def _bad_crf(raw, tmp_path):
    return ["--raw", raw, "--crf", "gamma-ish"], ["--crf", "gamma-ish"]


def _missing_crf_table(raw, tmp_path):
    return ["--raw", raw, "--crf", tmp_path / "curve.npy"], [tmp_path / "curve.npy"]


def _bad_flow(raw, tmp_path):
    return ["--raw", raw, "--flow", "farneback"], ["farneback"]


def _bad_part(raw, tmp_path):
    return ["--raw", raw, "--part", "3/2"], ["--part", "3/2"]


def _missing_flow_weights(raw, tmp_path):
    return ["--raw", raw, "--flow", "raft-small", "--flow-weights", tmp_path / "w.pt", "--device", "cpu"], \
        [tmp_path / "w.pt", "--flow-weights"]


@pytest.mark.parametrize("case", [_missing_raw, _empty_raw, _all_too_short, _frame_size_differs, _truncated_image,
                                  _bad_frames, _bad_crf, _missing_crf_table, _bad_flow, _bad_part,
                                  _missing_flow_weights])
def test_bad_input_is_one_line_and_leaves_nothing(raw, tmp_path, case):
    args, names = case(raw, tmp_path)
    before = left_behind(tmp_path)
    out = tmp_path / "out" / "X.h5"
    defaults = {"--flow": "dis", "--frames": "5"}
    extra = [x for k, v in defaults.items() if k not in args for x in (k, v)]
    res = run("synthesize", *args, "--out", out, *extra)
    assert_one_line_error(res, *names)
    assert left_behind(tmp_path) == before


def test_existing_output_with_other_settings_is_refused(raw, tmp_path):
    out = tmp_path / "X.h5"
    assert run("synthesize", "--raw", raw, "--out", out, "--flow", "dis", "--frames", "5").exit_code == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.h5")}
    res = run("synthesize", "--raw", raw, "--out", out, "--flow", "dis", "--frames", "5", "--k", "10")
    line = assert_one_line_error(res, out, "K: file has 15.0, asked for 10.0")
    assert "resume" in line
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.h5")} == before
    res = run("synthesize", "--raw", raw, "--out", out, "--flow", "dis", "--frames", "5")  # same settings resume
    assert res.exit_code == 0 and "2 already complete" in res.output
    other = tmp_path / "notes.h5"
    other.write_text("my notes")
    assert_one_line_error(run("synthesize", "--raw", raw, "--out", other, "--flow", "dis"), other)
    assert other.read_text() == "my notes"


def test_grey_rgba_and_16bit_frames_are_converted(sample_sequence, tmp_path):
    raw = tmp_path / "raw"
    for kind in ("grey", "rgba", "deep"):
        seq = copy_seq(sample_sequence, raw / kind, n=6)
        for p in seq.glob("*.png"):
            img = cv2.imread(str(p))
            img = {"grey": lambda x: cv2.cvtColor(x, cv2.COLOR_BGR2GRAY),
                   "rgba": lambda x: cv2.cvtColor(x, cv2.COLOR_BGR2BGRA),
                   "deep": lambda x: x.astype(np.uint16) * 257}[kind](img)
            cv2.imwrite(str(p), img)
    out = tmp_path / "X.h5"
    res = run("synthesize", "--raw", raw, "--out", out, "--flow", "dis", "--frames", "3")
    assert res.exit_code == 0, res.output
    ref = cv2.imread(str(sample_sequence / "000001.png"))[:, :, ::-1]
    with h5py.File(out) as f:
        grey = f["sequences/grey/sharp"][0]
        assert grey.shape == (48, 64, 3) and (grey[..., 0] == grey[..., 2]).all()
        np.testing.assert_array_equal(f["sequences/rgba/sharp"][0], ref)  # centre of [0, 2] = frame 1
        np.testing.assert_array_equal(f["sequences/deep/sharp"][0], ref)
