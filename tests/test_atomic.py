"""Files and folders the toolkit writes get the user's umask (not mkstemp's private 0600)."""
import os
import stat

import pytest

from mmpdata.atomic import atomic_open, current_umask, make_temp_dir, write_bytes


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing(umask):
    assert current_umask() == umask
    assert current_umask() == umask


def test_atomic_writers_follow_umask(umask, tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives: the independent truth
    write_bytes(tmp_path / "a.bin", b"abc")
    with atomic_open(tmp_path / "b.txt", "w") as f:
        f.write("b")
    assert _mode(tmp_path / "a.bin") == _mode(plain) == 0o666 & ~umask
    assert _mode(tmp_path / "b.txt") == _mode(plain)
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    d = make_temp_dir(tmp_path / "final")
    (tmp_path / "plain_dir").mkdir()
    assert _mode(d) == _mode(tmp_path / "plain_dir") == 0o777 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [d.name]


def test_failed_atomic_write_leaves_nothing(tmp_path):
    (tmp_path / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(tmp_path / "keep.txt", "w") as f:
            f.write("new")
            raise RuntimeError("boom")
    assert (tmp_path / "keep.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_checkpoint_and_json_follow_umask(umask, tmp_path):
    from mmpmodel.checkpoint import save_checkpoint
    from mmpmodel.runs import write_json

    ck = save_checkpoint(tmp_path / "run" / "last.pt", kind="prior", config={}, model={})
    js = write_json(tmp_path / "run" / "config.json", {"a": 1})
    assert _mode(ck) == _mode(js) == 0o666 & ~umask


def test_every_output_follows_umask(tmp_path):
    """Footage, synthesized shards and index, deblurred video and PNG folder: files 0640 and folders 0750 under
    umask 027 (the walk covers everything written, hidden temporaries would show up too)."""
    from click.testing import CliRunner

    from _mmph5 import random_checkpoints
    from cli.main import main
    from mmpdata.footage import render_sample_footage
    from mmpdata.pipeline import synthesize

    _, ck, _ = random_checkpoints(tmp_path / "models")
    old = os.umask(0o027)
    try:
        out = tmp_path / "out"
        render_sample_footage(out / "raw", sequences=1, frames=8, size=(48, 32), split=False, progress=False)
        synthesize(out / "raw", out / "data.h5", flow="dis", frames="3", progress=False)
        seq = next(p for p in (out / "raw").iterdir() if p.is_dir())
        for target in ("d.mp4", "pngs"):
            res = CliRunner().invoke(main, ["deblur", "--model", str(ck), str(seq), str(out / target)])
            assert res.exit_code == 0, res.output
    finally:
        os.umask(old)
    paths = list(out.rglob("*"))
    assert len([p for p in paths if p.is_file()]) > 20
    assert {oct(_mode(p)) for p in paths if p.is_file()} == {oct(0o640)}
    assert {oct(_mode(p)) for p in paths if p.is_dir()} == {oct(0o750)}
    assert not [p for p in paths if p.name.startswith(".")]
