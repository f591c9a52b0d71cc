"""Issue 13 item 4: damaged mmp-h5 data is one line naming the shard and the fix, from every reader.

Shards are written with the real ShardWriter (gzip chunks, one window per chunk) and then damaged on disk the way
disks and people damage them: truncated, bits flipped inside a compressed chunk, settings edited, NaN written into
the MMP, a dataset shortened, the `complete` mark cleared.
"""
import os

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import DataLoader

from cli.main import main
from mmpdata import h5format as hf
from mmpdata.datasets import PriorClips, Range, VideoClips, open_data, read_index
from mmpdata.errors import FormatError

SETTINGS = hf.Settings(K=15.0, crf="gamma2.2", flow={"estimator": "dis", "weights": "none", "iterations": 10},
                       frames=(5, 5), stride=None, seed=0)
T, H, W = 6, 24, 32


def _write(index, name, seed):
    rng = np.random.default_rng(seed)
    with hf.ShardWriter(hf.shard_path(index, name), T, (H, W), {**SETTINGS.attrs(), "sequence": name}) as w:
        for t in range(T):
            w.write(t, rng.integers(0, 256, (H, W, 3), dtype=np.uint8), rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
                    rng.uniform(0, 1, (H, W)), (5 * t, 5 * t + 4))


@pytest.fixture
def data(tmp_path):
    index = tmp_path / "d.h5"
    for i, name in enumerate(("a", "b")):
        _write(index, name, i)
    hf.build_index(index)
    return index


def shard(index, name="b"):
    return hf.shard_path(index, name)


def one_line(exc_info, *names):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for n in names:
        assert str(n) in msg, msg
    return msg


def cli(*args):
    return CliRunner().invoke(main, ["-q", *map(str, args)])


def assert_cli_one_line(result, *names, code=2):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for n in names:
        assert str(n) in errors[0], errors[0]


# ------------------------------------------------------------------------------------------------------ damages
def truncate(index):
    p = shard(index)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return "truncated or damaged shard"


def clear_complete(index):
    with h5py.File(shard(index), "a") as f:
        f.attrs["complete"] = False
    return "not marked complete"


def other_settings(index):
    with h5py.File(shard(index), "a") as f:
        f.attrs["K"] = 10.0
    return "shard attribute K = 10.0 differs from the index (15.0)"


def other_crf(index):
    with h5py.File(shard(index), "a") as f:
        f.attrs["crf"] = "srgb"
    return "shard attribute crf = srgb differs"


def other_flow(index):
    with h5py.File(shard(index), "a") as f:
        f.attrs["flow"] = '{"estimator": "raft-large", "iterations": 20, "weights": "x"}'
    return "shard attribute flow"


def other_dtype(index):
    with h5py.File(shard(index), "a") as f:
        mmp = f["mmp"][()]
        del f["mmp"]
        f["mmp"] = mmp.astype(np.float32)
    return "dataset mmp has dtype float32, expected float16"


def unequal_lengths(index):
    with h5py.File(shard(index), "a") as f:
        sharp = f["sharp"][:T - 1]
        del f["sharp"]
        f["sharp"] = sharp
    return "dataset sharp has shape (5, 24, 32, 3) differs from blur (6, 24, 32, 3)"


OPEN_DAMAGES = [truncate, clear_complete, other_settings, other_crf, other_flow, other_dtype, unequal_lengths]


@pytest.mark.parametrize("damage", OPEN_DAMAGES)
def test_every_reader_names_the_damaged_shard_at_open(data, damage):
    what = damage(data)
    for reader in (lambda: read_index(data), lambda: open_data(data), lambda: hf.open_dataset(data),
                   lambda: PriorClips(data, [Range("a", 0, T)], patch=16),
                   lambda: VideoClips(data, [Range("a", 0, T)], frames=5, patch=16)):
        with pytest.raises(FormatError) as exc:
            reader()
        msg = one_line(exc, shard(data), what)
        assert "delete it" in msg or "move it" in msg  # says what to do
    problems = hf.validate(data)
    assert any(str(shard(data)) in p and what in p for p in problems), problems
    # mmp index refuses the damaged shard by name (a final name only ever holds a whole shard)
    data.unlink()
    with pytest.raises(FormatError if damage not in (other_settings, other_crf, other_flow) else Exception) as exc:
        hf.build_index(data)
    assert str(shard(data)) in str(exc.value) and "\n" not in str(exc.value)


def test_cli_eval_train_inspect_and_index_on_a_truncated_shard(data, tmp_path):
    from _mmph5 import random_checkpoints

    prior, deblur, _ = random_checkpoints(tmp_path / "ck")
    truncate(data)
    b = shard(data)
    assert_cli_one_line(cli("eval", "--model", prior, "--data", data), b)
    assert_cli_one_line(cli("eval", "--model", deblur, "--data", data), b)
    assert_cli_one_line(cli("train-prior", "--data", data, "--out", tmp_path / "run", "--steps", "1",
                            "--batch-size", "1", "--patch", "16"), b)
    assert not (tmp_path / "run" / "last.pt").exists()
    res = cli("inspect", data)
    assert res.exit_code == 1 and "INVALID" in res.output and str(b) in res.output and "Traceback" not in res.output
    data.unlink()
    assert_cli_one_line(cli("index", data), b, "truncated")
    assert not data.exists()


# ------------------------------------------------------------------------------------- found when the data is read
def flip_bits_in_chunk(index, key="blur", t=2):
    p = shard(index)
    with h5py.File(p, "r") as f:
        info = f[key].id.get_chunk_info(t)
    raw = bytearray(p.read_bytes())
    for k in range(info.byte_offset + info.size // 3, info.byte_offset + info.size // 3 + 16):
        raw[k] ^= 0xFF
    p.write_bytes(bytes(raw))


def write_nan(index, t=3):
    with h5py.File(shard(index), "a") as f:
        m = f["mmp"][t]
        m[5, 7] = np.nan
        m[6, 7] = np.inf
        f["mmp"][t] = m


def test_bit_rot_in_a_chunk_is_named_with_shard_and_window(data):
    flip_bits_in_chunk(data, "blur", 2)
    ds = PriorClips(data, [Range("b", 0, T)], patch=16, augment=False)  # cheap checks pass: headers are intact
    for i in (0, 1, 3):
        ds[i]
    with pytest.raises(FormatError) as exc:
        ds[2]
    one_line(exc, shard(data), "dataset blur in window 2 cannot be read", "delete it")
    clips = VideoClips(data, [Range("b", 0, T)], frames=5, patch=16, augment=False)
    with pytest.raises(FormatError) as exc:
        clips[0]
    one_line(exc, shard(data), "windows 0-4")
    assert hf.validate(data) == []  # the quick checks cannot see inside chunks ...
    problems = hf.validate(data, scan=True)  # ... the full scan does, and names the window
    assert problems == [p for p in problems if "dataset blur cannot be read in window 2 " in p] and len(problems) == 1


def test_nan_in_stored_mmp(data, tmp_path):
    write_nan(data, t=3)
    ds = PriorClips(data, [Range("b", 0, T)], patch=None, augment=False)
    ds[2]
    with pytest.raises(FormatError) as exc:
        ds[3]
    one_line(exc, shard(data), "NaN/inf", "window 3", "mmp inspect")
    # a crop that misses the bad pixels reads fine: the check is on what is read
    assert torch.isfinite(PriorClips(data, [Range("b", 3, 4)], patch=4, augment=False)[0]["mmp"]).all()
    # through DataLoader worker processes the message stays one line
    loader = DataLoader(PriorClips(data, [Range("b", 0, T)], patch=None, augment=False), batch_size=2,
                        num_workers=2)
    with pytest.raises(FormatError) as exc:
        list(loader)
    one_line(exc, shard(data), "NaN/inf")
    problems = hf.validate(data, scan=True)
    assert len(problems) == 1 and str(shard(data)) in problems[0] and "NaN/inf values in window 3;" in problems[0]
    from _mmph5 import random_checkpoints

    prior, _, _ = random_checkpoints(tmp_path / "ck")
    assert_cli_one_line(cli("eval", "--model", prior, "--data", data), shard(data), "NaN/inf")
    res = cli("inspect", data)
    assert res.exit_code == 1 and "window 3" in res.output
    res = cli("inspect", data, "--quick")
    assert res.exit_code == 0 and "valid mmp-h5" in res.output  # the quick checks do not read the maps


def test_the_index_is_checked_once_per_process_until_a_file_changes(data, monkeypatch):
    calls = []
    real = hf.check_structure
    monkeypatch.setattr(hf, "check_structure", lambda *a: calls.append(1) or real(*a))
    hf._TOC_CACHE.clear()
    read_index(data)
    PriorClips(data, [Range("a", 0, T)], patch=16)
    VideoClips(data, [Range("a", 0, T)], frames=5, patch=16)
    assert len(calls) == 1
    clear_complete(data)  # the shard changes on disk: checked again, and the damage is seen
    st = shard(data).stat()
    os.utime(shard(data), ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(FormatError, match="not marked complete"):
        read_index(data)
    assert len(calls) == 2


def test_one_reader_serves_datasets_and_workers(data):
    reader = open_data(data)
    a = PriorClips(reader, [Range("a", 0, T)], patch=8, seed=1)
    b = PriorClips(str(data), [Range("a", 0, T)], patch=8, seed=1)
    assert a.data is reader and all(torch.equal(a[i]["mmp"], b[i]["mmp"]) for i in range(T))
    batches = [x["blur"] for x in DataLoader(a, batch_size=3, num_workers=2)]
    assert all(torch.equal(x, y["blur"]) for x, y in zip(batches, DataLoader(b, batch_size=3)))
