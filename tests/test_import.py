"""GOPRO_Large / BSD folder layouts -> mmp-h5 without mmp: pixels, splits, naming, blur choice, CLI."""
import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from mmpdata.datasets import VideoClips, read_index, split_sequences
from mmpdata.errors import InputError
from mmpdata.h5format import validate
from mmpdata.importers import import_benchmark


def _png(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img[:, :, ::-1])


def _frame(seed, h=12, w=16):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def gopro(tmp_path):
    root = tmp_path / "GOPRO_Large"
    truth = {}
    for split, seq, n in (("train", "GOPR0001_00_00", 5), ("train", "GOPR0002_00_00", 6), ("test", "GOPR0009_00_00", 5)):
        for i in range(n):
            imgs = {k: _frame(hash((seq, k, i)) % 2**32) for k in ("blur", "blur_gamma", "sharp")}
            for k, img in imgs.items():
                _png(root / split / seq / k / f"{i + 1:06d}.png", img)
            truth[(seq, i)] = imgs
    return root, truth


def test_gopro_import_pixels_and_splits(gopro, tmp_path):
    root, truth = gopro
    out = tmp_path / "gopro.h5"
    names = import_benchmark("gopro", root, out, blur="blur_gamma", progress=False)
    assert names == ["GOPR0001_00_00", "GOPR0002_00_00", "GOPR0009_00_00"]
    assert validate(out) == []
    with h5py.File(out, "r") as f:
        g = f["sequences/GOPR0002_00_00"]
        assert "mmp" not in g and "window" not in g
        assert g["blur"].shape == (6, 12, 16, 3)
        for i in range(6):
            assert np.array_equal(g["blur"][i], truth[("GOPR0002_00_00", i)]["blur_gamma"])
            assert np.array_equal(g["sharp"][i], truth[("GOPR0002_00_00", i)]["sharp"])
    infos = read_index(out)
    assert {s.name: s.split for s in infos} == {"GOPR0001_00_00": "train", "GOPR0002_00_00": "train",
                                                "GOPR0009_00_00": "test"}
    sp = split_sequences(infos, 0.5, seed=0)
    assert "GOPR0009_00_00" not in [r.sequence for r in sp.train + sp.val]
    clips = VideoClips(out, sp.train, frames=5, patch=8)
    assert clips[0]["blur"].shape == (5, 3, 8, 8)
    # the other blur choice reads the other folder
    out2 = tmp_path / "gopro_linear.h5"
    import_benchmark("gopro", root / "train", out2, blur="blur", progress=False)
    with h5py.File(out2, "r") as f:
        assert list(f["sequences"]) == ["GOPR0001_00_00", "GOPR0002_00_00"]
        assert np.array_equal(f["sequences/GOPR0001_00_00/blur"][3], truth[("GOPR0001_00_00", 3)]["blur"])


def test_bsd_import_prefixes_repeated_names(tmp_path):
    root = tmp_path / "BSD_2ms16ms"
    truth = {}
    for split in ("train", "valid", "test"):
        for i in range(5):
            b, s = _frame(i), _frame(100 + i)
            if split == "test":
                b = 255 - b
            _png(root / split / "000" / "Blur" / "RGB" / f"{i:08d}.png", b)
            _png(root / split / "000" / "Sharp" / "RGB" / f"{i:08d}.png", s)
            truth[(split, i)] = b
    out = tmp_path / "bsd.h5"
    assert import_benchmark("bsd", root, out, progress=False) == ["test_000", "train_000", "valid_000"]
    with h5py.File(out, "r") as f:
        assert np.array_equal(f["sequences/test_000/blur"][4], truth[("test", 4)])
    sp = split_sequences(read_index(out))
    assert [r.sequence for r in sp.train] == ["train_000"] and [r.sequence for r in sp.val] == ["valid_000"]


def test_bad_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no gopro sequences"):
        import_benchmark("gopro", tmp_path / "empty", tmp_path / "x.h5")
    seq = tmp_path / "odd" / "S1"
    _png(seq / "blur_gamma" / "1.png", _frame(1))
    _png(seq / "blur_gamma" / "2.png", _frame(2))
    _png(seq / "sharp" / "1.png", _frame(3))
    with pytest.raises(InputError, match=r"blur_gamma/2\.png: no sharp frame"):
        import_benchmark("gopro", tmp_path / "odd", tmp_path / "x.h5")


def _gopro_seq(root, blur_names, sharp_names, sizes=None):
    seq = root / "GOPR0001_00_00"
    imgs = {}
    for kind, names in (("blur_gamma", blur_names), ("sharp", sharp_names)):
        for name in names:
            h, w = (sizes or {}).get((kind, name), (12, 16))
            imgs[(kind, name)] = _frame(hash((kind, name)) % 2**32, h, w)
            _png(seq / kind / name, imgs[(kind, name)])
    return seq, imgs


def test_frames_pair_by_index_not_position(tmp_path):
    # equal counts, but blur has a gap (no 3) and sharp an extra frame (no 2): position pairing would silently
    # match blur 4 with sharp 3
    seq, _ = _gopro_seq(tmp_path / "src", ["1.png", "2.png", "4.png"], ["1.png", "3.png", "4.png"])
    with pytest.raises(InputError) as exc:
        import_benchmark("gopro", tmp_path / "src", tmp_path / "x.h5")
    msg = str(exc.value)
    assert "blur_gamma/2.png" in msg and "no sharp frame" in msg and "\n" not in msg
    assert not (tmp_path / "x.h5").exists()


def test_pairing_uses_indices_across_naming_styles(tmp_path):
    # blur 1..10 unpadded (listing order 1, 10, 2 ... if sorted as text), sharp zero-padded: pairs by number
    seq, imgs = _gopro_seq(tmp_path / "src", [f"{i}.png" for i in range(1, 11)], [f"{i:06d}.png" for i in range(1, 11)])
    out = tmp_path / "x.h5"
    import_benchmark("gopro", tmp_path / "src", out, progress=False)
    with h5py.File(out) as f:
        g = f["sequences"]["GOPR0001_00_00"]
        for t in range(10):
            assert np.array_equal(g["blur"][t], imgs[("blur_gamma", f"{t + 1}.png")])
            assert np.array_equal(g["sharp"][t], imgs[("sharp", f"{t + 1:06d}.png")])


def test_size_mismatch_names_the_sharp_file(tmp_path):
    _gopro_seq(tmp_path / "src", ["1.png", "2.png"], ["1.png", "2.png"], sizes={("sharp", "2.png"): (10, 16)})
    with pytest.raises(InputError, match=r"sharp/2\.png: size 16x10 differs"):
        import_benchmark("gopro", tmp_path / "src", tmp_path / "x.h5", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_import_cli(gopro, tmp_path):
    root, _ = gopro
    out = tmp_path / "cli.h5"
    res = CliRunner().invoke(main, ["import", "--layout", "gopro", str(root), "--out", str(out), "--blur", "blur"])
    assert res.exit_code == 0, res.output
    assert "3 sequences" in res.output
    assert [s.name for s in read_index(out)] == ["GOPR0001_00_00", "GOPR0002_00_00", "GOPR0009_00_00"]
    res = CliRunner().invoke(main, ["import", "--layout", "bsd", str(root), "--out", str(out)])
    assert res.exit_code == 2 and "error:" in res.output
