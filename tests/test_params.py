"""cli/params.py: non-finite and out-of-range numbers are refused when the command line is parsed (issue 13 item 7)."""
import click
import pytest
from click.testing import CliRunner

from cli.main import main
from cli.params import FRACTION, NON_NEGATIVE_FLOAT, OUTPUT_FILE, POSITIVE_FLOAT


def _cmd(kind):
    @click.command()
    @click.option("--x", type=kind)
    def cmd(x):
        click.echo(repr(x))

    return cmd


@pytest.mark.parametrize("kind, good, bad", [
    (POSITIVE_FLOAT, ["1e-4", "15", "0.5"], ["0", "-1", "nan", "inf", "-inf", "NaN", "1e999", "abc", ""]),
    (NON_NEGATIVE_FLOAT, ["0", "2.5"], ["-0.1", "nan", "inf"]),
    (FRACTION, ["0", "0.1", "0.99"], ["1", "1.5", "-0.1", "nan"]),
])
def test_numbers(kind, good, bad):
    for v in good:
        res = CliRunner().invoke(_cmd(kind), ["--x", v])
        assert res.exit_code == 0 and float(res.output) == float(v), res.output
    for v in bad:
        res = CliRunner().invoke(_cmd(kind), ["--x", v])
        assert res.exit_code == 2 and "Traceback" not in res.output, (v, res.output)
        assert "--x" in res.output and repr(v) in res.output, res.output


def test_output_file(tmp_path):
    res = CliRunner().invoke(_cmd(OUTPUT_FILE), ["--x", str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in res.output
    (tmp_path / "f").write_text("x")
    res = CliRunner().invoke(_cmd(OUTPUT_FILE), ["--x", str(tmp_path / "f" / "r.json")])
    assert res.exit_code == 2 and "is a file" in res.output
    res = CliRunner().invoke(_cmd(OUTPUT_FILE), ["--x", str(tmp_path / "new" / "r.json")])
    assert res.exit_code == 0 and "r.json" in res.output


@pytest.mark.parametrize("args", [["--k", "inf"], ["--k", "nan"], ["--k", "0"], ["--k", "-3"], ["--stride", "0"],
                                  ["--workers", "0"], ["--batch", "0"], ["--flow-iters", "0"]])
def test_synthesize_refuses_at_parse_time(tmp_path, args):
    res = CliRunner().invoke(main, ["synthesize", "--raw", str(tmp_path), "--out", str(tmp_path / "o.h5"), *args])
    assert res.exit_code == 2 and args[0] in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "o.h5").exists() and not (tmp_path / "o.shards").exists()


def test_synthesize_library_refuses_infinite_k(tmp_path):
    from mmpdata.errors import InputError
    from mmpdata.pipeline import synthesize

    with pytest.raises(InputError, match="--k inf"):
        synthesize(tmp_path, tmp_path / "o.h5", k=float("inf"), flow="dis")


def test_eval_json_into_a_folder_is_refused_before_evaluating(tmp_path):
    res = CliRunner().invoke(main, ["eval", "--model", __file__, "--data", __file__, "--json", str(tmp_path)])
    assert res.exit_code == 2 and "--json" in res.output and "is a folder" in res.output


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root may write anywhere; bench/hostile.py checks this "
                    "with a normal user's permission checks")
def test_output_file_in_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        res = CliRunner().invoke(_cmd(OUTPUT_FILE), ["--x", str(ro / "r.json")])
        assert res.exit_code == 2 and "not writable" in res.output and "r.json" in res.output
    finally:
        ro.chmod(0o755)
