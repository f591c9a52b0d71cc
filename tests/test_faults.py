"""Issue 13 item 8: faults of the machine while `mmp synthesize` writes — full disk, no permission, a folder in the
way, two runs into one output at once, temporaries of a killed run. One line, nothing under a final name that is not
whole, and a rerun gives the bytes of one clean run."""
import errno
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import main
from mmpdata import h5format as hf
from mmpdata.errors import OutputError, environment_error
from mmpdata.pipeline import synthesize
from test_pipeline import contents

OPTS = dict(flow="dis", frames="5", seed=2, progress=False)
NAMES = ["GOPR9001_11_00", "GOPR9002_11_00", "GOPR9003_11_00"]


def cli(*args):
    return CliRunner().invoke(main, ["-q", *map(str, args)])


def one_line_error(result, *names):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for n in names:
        assert str(n) in errors[0], errors[0]
    return errors[0]


def leftovers(out):
    """Every file of the output (hidden temporaries and locks included)."""
    found = sorted(p.name for p in out.parent.iterdir() if p.is_file())
    shards = hf.shards_dir(out)
    if shards.exists():
        found += sorted(f"{shards.name}/{p.name}" for p in shards.iterdir())
    return found


@pytest.fixture(scope="module")
def reference(sample_footage, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "X.h5"
    synthesize(sample_footage, out, **OPTS)
    return contents(out)


@pytest.mark.parametrize("where", ["write", "close"])
def test_full_disk_is_one_line_and_leaves_nothing_half_written(sample_footage, tmp_path, monkeypatch, reference, where):
    out = tmp_path / "o" / "X.h5"
    calls = {"n": 0}
    if where == "write":  # h5py's way of saying it: an OSError without errno, "errno = 28" in the text
        real = hf.ShardWriter.write

        def write(self, t, *a, **k):
            calls["n"] += 1
            if calls["n"] == 5:
                raise OSError(f"Can't write data (file write failed: time = now, filename = '{self.temp}', fd = 7, "
                              "errno = 28, error message = 'No space left on device', buf = 0x1, total write size "
                              "= 3, bytes this sub-write = 3, bytes actually written = 18446744073709551615)")
            return real(self, t, *a, **k)

        monkeypatch.setattr(hf.ShardWriter, "write", write)
    else:  # the disk fills up while the finished shard is flushed
        real_fsync = hf._fsync

        def fsync(path):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            return real_fsync(path)

        monkeypatch.setattr(hf, "_fsync", fsync)
    res = cli("synthesize", "--raw", sample_footage, "--out", out, "--flow", "dis", "--frames", "5", "--seed", "2",
              "--no-progress")
    msg = one_line_error(res, "no space left on the device")
    assert "X.shards/.GOPR900" in msg or ("X.shards" in msg and where == "close"), msg
    # no temporaries, no lock files, no index; at most the shards finished before the disk filled (whole ones)
    left = leftovers(out)
    assert all(not n.split("/")[-1].startswith(".") for n in left) and "X.h5" not in left, left
    for p in hf.list_shards(out):
        assert hf.shard_status(p, None) == "complete"
    monkeypatch.undo()
    synthesize(sample_footage, out, **OPTS)  # the rerun resumes and gives one clean run's bytes
    assert contents(out) == reference


def test_permission_and_read_only_errors_are_one_line(sample_footage, tmp_path, monkeypatch):
    out = tmp_path / "X.h5"

    def refuse(folder):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))

    monkeypatch.setattr("mmpdata.pipeline._make_dirs", refuse)
    one_line_error(cli("synthesize", "--raw", sample_footage, "--out", out, "--flow", "dis"), "X.shards",
                   "permission denied")
    assert leftovers(out) == []
    erofs = environment_error(OSError(errno.EROFS, "Read-only file system", "/mnt/x.h5"))
    assert isinstance(erofs, OutputError) and str(erofs).startswith("/mnt/x.h5: cannot write: read-only file system")
    assert environment_error(OSError(errno.ENOENT, "No such file", "/x")) is None  # not the machine's fault


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder; bench/hostile.py runs it "
                    "as another user")
def test_read_only_folder_as_a_normal_user(sample_footage, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        one_line_error(cli("synthesize", "--raw", sample_footage, "--out", folder / "X.h5", "--flow", "dis"),
                       "not writable")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_output_paths_in_the_way(sample_footage, tmp_path):
    (tmp_path / "dir.h5").mkdir()
    one_line_error(cli("synthesize", "--raw", sample_footage, "--out", tmp_path / "dir.h5", "--flow", "dis"),
                   "dir.h5", "not a file")
    (tmp_path / "file").write_text("x")
    one_line_error(cli("synthesize", "--raw", sample_footage, "--out", tmp_path / "file" / "X.h5", "--flow", "dis"),
                   "is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.h5", "file"]


def test_a_sequence_another_run_is_writing_is_left_to_it(sample_footage, tmp_path, reference):
    out = tmp_path / "X.h5"
    hf.shards_dir(out).mkdir()
    other = hf.shard_lock(hf.shard_path(out, NAMES[1]))
    assert other.acquire()  # "another run" holds the lock of the second sequence, with its temporary
    temp = hf.temp_path(hf.shard_path(out, NAMES[1]))
    temp.write_bytes(b"\x89HDF\r\n being written")
    try:
        res = synthesize(sample_footage, out, **OPTS)
        assert res.written == [NAMES[0], NAMES[2]] and res.busy == [NAMES[1]] and res.indexed == [NAMES[0], NAMES[2]]
        assert "1 being written by another run" in res.summary()
        assert temp.read_bytes() == b"\x89HDF\r\n being written"  # its temporary was not cleaned away
        assert not hf.shard_lock(hf.shard_path(out, NAMES[1])).acquire()
    finally:
        other.release()
    temp.unlink()  # that run ends (here: without finishing); the next run writes the sequence
    res = synthesize(sample_footage, out, **OPTS)
    assert res.written == [NAMES[1]] and res.busy == []
    assert contents(out) == reference
    assert leftovers(out) == ["X.h5"] + [f"X.shards/{n}.h5" for n in NAMES]


def test_stale_temporaries_and_locks_of_a_killed_run_are_cleaned(sample_footage, tmp_path, reference):
    out = tmp_path / "X.h5"
    shards = hf.shards_dir(out)
    shards.mkdir()
    for name in NAMES[:2]:  # what SIGKILL leaves: a temporary and an unheld lock file
        hf.temp_path(hf.shard_path(out, name)).write_bytes(b"half")
        hf.shard_lock(hf.shard_path(out, name)).path.write_text("otherhost 1\n")
    res = synthesize(sample_footage, out, **OPTS)
    assert res.written == NAMES and res.busy == []
    assert contents(out) == reference
    assert leftovers(out) == ["X.h5"] + [f"X.shards/{n}.h5" for n in NAMES]


@pytest.mark.slow
def test_two_runs_at_once_into_one_output(footage_factory, tmp_path):
    raw = footage_factory(sequences=4, frames=30, size=(96, 64), seed=5, split=False)
    single = tmp_path / "single" / "X.h5"
    synthesize(raw, single, flow="dis", frames="5", stride=1, seed=1, progress=False)
    out = tmp_path / "both" / "X.h5"
    cmd = [sys.executable, "-c", "from cli.main import main; main()", "-q", "synthesize", "--raw", str(raw), "--out", str(out), "--flow", "dis",
           "--frames", "5", "--stride", "1", "--seed", "1", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [(p.wait(), *p.communicate()) for p in procs]
    for code, stdout, stderr in results:
        assert "Traceback" not in stderr
        assert code == 0 or (code == 2 and len([ln for ln in stderr.splitlines() if ln.startswith("error:")]) == 1)
    assert any(code == 0 for code, _, _ in results)
    # the last run to finish rewrote the index with every shard; a rerun changes nothing
    synthesize(raw, out, flow="dis", frames="5", stride=1, seed=1, progress=False)
    assert contents(out) == contents(single)
    assert not [p for p in hf.shards_dir(out).iterdir() if p.name.startswith(".")]


def test_any_command_turns_a_machine_fault_into_one_line(tmp_path, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(tmp_path / "somewhere.pt"))

    monkeypatch.setattr("mmpdata.pipeline.synthesize", full)
    one_line_error(cli("synthesize", "--raw", tmp_path, "--out", tmp_path / "X.h5"), "somewhere.pt", "quota")

    def bug(*a, **k):
        raise OSError(errno.ENOENT, "No such file or directory", "x")

    monkeypatch.setattr("mmpdata.pipeline.synthesize", bug)
    res = cli("synthesize", "--raw", tmp_path, "--out", tmp_path / "X.h5")
    assert res.exit_code == 1 and isinstance(res.exception, FileNotFoundError)  # other errors are not hidden


def test_shard_writer_refuses_before_hdf5_writes_when_the_disk_cannot_hold_the_window(tmp_path, monkeypatch):
    """A full disk must surface as ENOSPC before HDF5 writes (HDF5 itself can crash the interpreter at exit after a
    failed write): the reservation asks for the window's size plus a margin; here the margin exceeds any free space."""
    import numpy as np

    monkeypatch.setattr(hf.DiskReservation, "MARGIN", 1 << 62)
    final = tmp_path / "X.shards" / "s.h5"
    with pytest.raises(OSError) as exc:
        with hf.ShardWriter(final, 2, (8, 8), {"format": "mmp-h5"}) as w:
            w.write(0, np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)), (0, 4))
    assert exc.value.errno == errno.ENOSPC and str(hf.temp_path(final)) in str(exc.value)
    assert list((tmp_path / "X.shards").iterdir()) == []
    monkeypatch.undo()
    with hf.ShardWriter(final, 1, (8, 8), {"format": "mmp-h5"}) as w:  # with room: written, no blocks kept past EOF
        w.write(0, np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)), (0, 4))
    st = final.stat()
    assert st.st_blocks * 512 < st.st_size + (1 << 20)
