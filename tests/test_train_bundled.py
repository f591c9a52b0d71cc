"""bench/train_bundled.py --photo-widths: the shrunk copies of the training photographs."""
import cv2
import numpy as np
import pytest


def test_shrunk_photos_are_block_means_and_skip_narrower_photos(tmp_path, bench_script):
    shrunk_photos = bench_script("train_bundled").shrunk_photos
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (60, 120, 3), dtype=np.uint8)
    src = tmp_path / "wide.png"
    cv2.imwrite(str(src), photo)
    out = shrunk_photos([src], [60, 240], tmp_path / "shrunk")
    assert [p.name for p in out] == ["wide_w60.png"]  # 240 is wider than the photograph: no upscaled copy
    small = cv2.imread(str(out[0]), cv2.IMREAD_COLOR)
    # halving with the area filter = the mean of each 2x2 block (hand-computed here), rounded to uint8
    blocks = photo.astype(np.float64).reshape(30, 2, 60, 2, 3).mean(axis=(1, 3))
    assert small.shape == (30, 60, 3)
    assert np.abs(small.astype(np.float64) - blocks).max() <= 0.5 + 1e-9
    # a rerun reuses the written copy
    before = out[0].stat().st_mtime_ns
    assert shrunk_photos([src], [60], tmp_path / "shrunk") == out
    assert out[0].stat().st_mtime_ns == before


def test_prior_motion_needs_prior_sequences_and_a_valid_factor(tmp_path, monkeypatch, capsys, bench_script):
    main = bench_script("train_bundled").main
    base = ["train_bundled.py", "--photos", str(tmp_path), "--work", str(tmp_path / "w"), "--init-from", "sample-deblur"]
    for extra, message in ((["--finetune-steps", "10", "--prior-motion", "0.6-1.6"], "--prior-sequences"),
                           (["--prior-sequences", "4", "--prior-motion", "2-1"], "--motion 2-1")):
        monkeypatch.setattr("sys.argv", base + extra)
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # refused before anything was written
