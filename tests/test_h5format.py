"""mmp-h5 format v1: writer, index with external links, reader, and validation of damaged files."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mmpdata import h5format as hf
from mmpdata.errors import FormatError, SettingsMismatch

SETTINGS = hf.Settings(K=15.0, crf="gamma2.2", flow={"estimator": "dis", "weights": "none", "iterations": 10},
                       frames=(7, 13), stride=None, seed=3)
H, W = 6, 5


def _data(t, seed):
    rng = np.random.default_rng(seed)
    blur = rng.integers(0, 256, (t, H, W, 3), dtype=np.uint8)
    sharp = rng.integers(0, 256, (t, H, W, 3), dtype=np.uint8)
    mmp = rng.uniform(0, 1.5, (t, H, W)).astype(np.float32)  # values above 1 must survive (not clipped)
    window = np.stack([np.arange(t) * 7, np.arange(t) * 7 + 6], 1)
    return blur, sharp, mmp, window


def _write(index, name, t=3, seed=0, settings=SETTINGS, **kw):
    blur, sharp, mmp, window = _data(t, seed)
    with hf.ShardWriter(hf.shard_path(index, name), t, (H, W), {**settings.attrs(), "sequence": name}, **kw) as w:
        for i in range(t):
            w.write(i, blur[i], sharp[i], mmp[i], window[i])
    return blur, sharp, mmp, window


@pytest.fixture
def dataset(tmp_path):
    index = tmp_path / "d" / "X.h5"
    data = {"seqA": _write(index, "seqA", 3, 0), "seqB": _write(index, "seqB", 2, 1)}
    assert hf.build_index(index) == ["seqA", "seqB"]
    return index, data


def test_round_trip_through_external_links_from_another_cwd(dataset, tmp_path, monkeypatch):
    index, data = dataset
    monkeypatch.chdir(tmp_path.parent)  # links resolve relative to the index, not the working directory
    with h5py.File(index, "r") as f:
        for name, (blur, sharp, mmp, window) in data.items():
            assert f.get(f"sequences/{name}", getlink=True).filename == f"X.shards/{name}.h5"
            np.testing.assert_array_equal(f[f"sequences/{name}/blur"][()], blur)
            np.testing.assert_array_equal(f[f"sequences/{name}/sharp"][()], sharp)
            np.testing.assert_array_equal(f[f"sequences/{name}/mmp"][()], mmp.astype(np.float16))
            np.testing.assert_array_equal(f[f"sequences/{name}/window"][()], window)
            assert f[f"sequences/{name}/mmp"].dtype == np.float16 and f[f"sequences/{name}/window"].dtype == np.int32
        a = f.attrs
        assert a["format"] == "mmp-h5" and a["format_version"] == 1 and a["K"] == 15.0 and a["crf"] == "gamma2.2"
        assert json.loads(a["flow"]) == {"estimator": "dis", "weights": "none", "iterations": 10}
        assert tuple(a["frames"]) == (7, 13) and a["stride"] == 0 and a["seed"] == 3
        assert a["mmpdata_version"] == hf.__version__
    with h5py.File(index.parent / "X.shards" / "seqA.h5", "r") as f:
        assert f.attrs["complete"] and f.attrs["sequence"] == "seqA" and f.attrs["format"] == "mmp-h5"
        assert f["blur"].chunks == (1, H, W, 3)  # one window per chunk: what a training loader reads
        assert f["blur"].compression == "gzip" and f["mmp"].compression == "gzip" and f["mmp"].shuffle


def test_reader(dataset):
    index, data = dataset
    with hf.open_dataset(index) as ds:
        assert ds.sequences == ["seqA", "seqB"] and len(ds) == 2 and "seqA" in ds
        assert ds.attrs["flow"]["estimator"] == "dis" and ds.attrs["frames"] == (7, 13)
        np.testing.assert_array_equal(ds["seqB"]["sharp"][1], data["seqB"][1][1])
    with hf.open_dataset(index.parent / "X.shards" / "seqB.h5") as shard:  # a shard opens as one sequence
        assert shard.sequences == ["seqB"]
        np.testing.assert_array_equal(shard["seqB"]["window"][()], data["seqB"][3])


def test_readable_by_plain_h5py_without_hdf5plugin(dataset):
    index, data = dataset
    code = ("import sys, h5py; f = h5py.File(sys.argv[1]); print(int(f['sequences/seqA/blur'][()].sum())); "
            "assert 'hdf5plugin' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code, str(index)], capture_output=True, text=True, check=True)
    assert int(out.stdout) == int(data["seqA"][0].astype(np.int64).sum())


def test_failed_or_incomplete_shard_never_gets_its_final_name(tmp_path):
    index = tmp_path / "X.h5"
    final = hf.shard_path(index, "s")
    with pytest.raises(ZeroDivisionError):
        with hf.ShardWriter(final, 2, (H, W), SETTINGS.attrs()) as w:
            assert w.temp.exists() and w.temp.name.startswith(".") and not final.exists()
            1 / 0
    assert not final.exists() and not hf.temp_path(final).exists()
    with pytest.raises(RuntimeError, match="1 of 2 windows"):
        with hf.ShardWriter(final, 2, (H, W), SETTINGS.attrs()) as w:
            w.write(0, *[d[0] for d in _data(1, 0)])
    assert not final.exists() and not hf.temp_path(final).exists()


def test_stale_temps_are_removed_only_for_the_named_sequences(tmp_path):
    folder = tmp_path / "X.shards"
    folder.mkdir()
    for n in ("a", "b"):
        hf.temp_path(folder / f"{n}.h5").write_bytes(b"half a shard")
    removed = hf.remove_stale_temps(folder, ["a"])
    assert [p.name for p in removed] == [".a.h5.partial"]
    assert (folder / ".b.h5.partial").exists()  # another part may be writing b right now


def test_settings_differences_name_the_setting():
    other = hf.Settings(K=15.0, crf="srgb", flow=SETTINGS.flow, frames=(7, 13), stride=None, seed=3)
    diff = SETTINGS.differences(other.attrs())
    assert len(diff) == 1 and diff[0].startswith("crf") and "srgb" in diff[0]
    assert SETTINGS.differences(SETTINGS.attrs()) == []
    assert hf.Settings.from_attrs(SETTINGS.attrs()) == SETTINGS


def test_index_refuses_shards_with_different_settings(tmp_path):
    index = tmp_path / "X.h5"
    _write(index, "a")
    _write(index, "b", settings=hf.Settings(15.0, "gamma2.2", SETTINGS.flow, (7, 13), None, seed=4))
    with pytest.raises(SettingsMismatch, match=r"b\.h5.*seed"):
        hf.build_index(index)
    assert not index.exists()
    with pytest.raises(FormatError, match="no complete shards"):
        hf.build_index(tmp_path / "Y.h5")


def test_imported_data_without_mmp_is_valid(tmp_path):
    index = tmp_path / "G.h5"
    attrs = {"format": "mmp-h5", "format_version": 1, "mmpdata_version": "x", "source": "gopro"}
    with hf.ShardWriter(hf.shard_path(index, "g"), 1, (H, W), attrs, with_mmp=False) as w:
        w.write(0, *_data(1, 0)[0][:1], _data(1, 0)[1][0])
    assert hf.build_index(index) == ["g"]
    assert hf.validate(index) == []


# ------------------------------------------------------------------------------------------------- validation
def _damage_missing_dataset(index):
    with h5py.File(index.parent / "X.shards" / "seqA.h5", "a") as f:
        del f["mmp"]
    return "seqA", "dataset mmp is missing"


def _damage_dtype(index):
    with h5py.File(index.parent / "X.shards" / "seqA.h5", "a") as f:
        del f["mmp"]
        f["mmp"] = np.zeros((3, H, W), np.float32)
    return "seqA", "dataset mmp has dtype float32, expected float16"


def _damage_shape(index):
    with h5py.File(index.parent / "X.shards" / "seqB.h5", "a") as f:
        del f["sharp"]
        f["sharp"] = np.zeros((2, H, W), np.uint8)
    return "seqB", "dataset sharp has shape (2, 6, 5)"


def _damage_row_count(index):
    with h5py.File(index.parent / "X.shards" / "seqB.h5", "a") as f:
        del f["window"]
        f["window"] = np.zeros((5, 2), np.int32)
    return "seqB", "dataset window has 5 rows, expected 2"


def _damage_link(index):
    os.remove(index.parent / "X.shards" / "seqB.h5")
    return "seqB", "broken external link"


def _damage_format_attr(index):
    with h5py.File(index, "a") as f:
        f.attrs["format"] = "something-else"
    return str(index), "format attribute is 'something-else'"


def _damage_incomplete(index):
    with h5py.File(index.parent / "X.shards" / "seqA.h5", "a") as f:
        f.attrs["complete"] = False
    return "seqA", "not marked complete"


def _damage_shard_settings(index):
    with h5py.File(index.parent / "X.shards" / "seqA.h5", "a") as f:
        f.attrs["K"] = 10.0
    return "seqA", "shard attribute K = 10.0 differs"


def _damage_window_order(index):
    with h5py.File(index.parent / "X.shards" / "seqA.h5", "a") as f:
        f["window"][1] = [0, 6]
    return "seqA", "increasing time order"


def _damage_flow_attr(index):
    with h5py.File(index, "a") as f:
        f.attrs["flow"] = "dis"
    return str(index), "attribute flow is not a JSON object"


def _damage_not_hdf5(index):
    index.write_bytes(b"this is not HDF5 at all")
    return str(index), "not an HDF5 file"


@pytest.mark.parametrize("damage", [_damage_missing_dataset, _damage_dtype, _damage_shape, _damage_row_count,
                                    _damage_link, _damage_format_attr, _damage_incomplete, _damage_shard_settings,
                                    _damage_window_order, _damage_flow_attr, _damage_not_hdf5])
def test_validate_names_each_damage(dataset, damage):
    index, _ = dataset
    assert hf.validate(index) == []
    where, what = damage(index)
    problems = hf.validate(index)
    assert any(where in p and what in p for p in problems), problems


def test_open_dataset_refuses_non_mmp_files(tmp_path):
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(FormatError, match="not an HDF5 file"):
        hf.open_dataset(bad)
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f.attrs["format"] = "other"
    with pytest.raises(FormatError, match="y.h5.*'other'"):
        hf.open_dataset(tmp_path / "y.h5")
    with pytest.raises(FormatError, match="no such file"):
        hf.open_dataset(tmp_path / "missing.h5")
