"""Raw footage discovery and frame reading, including every kind of bad input."""
import cv2
import numpy as np
import pytest

from mmpdata.errors import InputError
from mmpdata.rawio import discover_sequences, read_image


def _write_seq(folder, n=3, size=(12, 10), start=0, digits=6):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    frames = []
    for i in range(n):
        rgb = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{start + i:0{digits}d}.png"), rgb[:, :, ::-1])
        frames.append(rgb)
    return frames


def test_split_layout_and_rgb_order(tmp_path):
    a = _write_seq(tmp_path / "train" / "GOPR0001_11_00")
    _write_seq(tmp_path / "test" / "GOPR0002_07_00")
    seqs = discover_sequences(tmp_path)
    assert [(s.name, s.split) for s in seqs] == [("GOPR0001_11_00", "train"), ("GOPR0002_07_00", "test")]
    assert len(seqs[0]) == 3 and seqs[0].size == (10, 12)
    assert np.array_equal(seqs[0].read(1), a[1])  # RGB, not BGR


def test_flat_layout_single_folder_and_numeric_order(tmp_path):
    seq = tmp_path / "seq"
    seq.mkdir()
    for i in (1, 2, 10):  # lexical order would put 10 before 2
        cv2.imwrite(str(seq / f"{i}.png"), np.full((4, 4, 3), i, np.uint8))
    (found,) = discover_sequences(seq)
    assert [int(found.read(i)[0, 0, 0]) for i in range(3)] == [1, 2, 10]
    (flat,) = discover_sequences(tmp_path)
    assert flat.name == "seq" and flat.split is None


def test_grey_rgba_and_16bit_are_converted(tmp_path):
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    assert np.array_equal(read_image(tmp_path / "g.png"), np.repeat(grey[:, :, None], 3, 2))
    bgra = np.zeros((4, 5, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 10, 200, 255
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert read_image(tmp_path / "a.png")[0, 0].tolist() == [200, 0, 10]
    deep = np.full((4, 5, 3), 257 * 100, np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    assert read_image(tmp_path / "d.png").max() == 100


def test_truncated_image_is_named(tmp_path):
    _write_seq(tmp_path / "s", n=1, size=(64, 64))
    path = tmp_path / "s" / "000000.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(InputError, match="000000.png"):
        read_image(path)


def test_frame_of_other_size_is_named(tmp_path):
    _write_seq(tmp_path / "s", n=2)
    cv2.imwrite(str(tmp_path / "s" / "000002.png"), np.zeros((7, 7, 3), np.uint8))
    (seq,) = discover_sequences(tmp_path)
    seq.read(0)
    with pytest.raises(InputError, match="000002.png.*differs"):
        seq.read(2)


@pytest.mark.parametrize("make", ["missing", "empty", "text_file"])
def test_missing_or_empty_input(tmp_path, make):
    target = tmp_path / "raw"
    if make == "empty":
        target.mkdir()
        (target / "notes.txt").write_text("no frames here")
    elif make == "text_file":
        target = tmp_path / "raw.txt"
        target.write_text("x")
    with pytest.raises(InputError, match=str(target.name)):
        discover_sequences(target)


def test_duplicate_names_across_splits(tmp_path):
    _write_seq(tmp_path / "train" / "same")
    _write_seq(tmp_path / "test" / "same")
    with pytest.raises(InputError, match="same"):
        discover_sequences(tmp_path)


def test_video_file_frames_in_order(tmp_path):
    import imageio_ffmpeg

    path = tmp_path / "clip.mp4"
    writer = imageio_ffmpeg.write_frames(str(path), (32, 16), fps=10, quality=10, macro_block_size=1)
    writer.send(None)
    levels = [30, 120, 220]
    for v in levels:
        writer.send(np.full((16, 32, 3), v, np.uint8).tobytes())
    writer.close()
    (seq,) = discover_sequences(tmp_path)
    assert seq.kind == "video" and seq.name == "clip" and len(seq) == 3
    got = [int(f.mean().round()) for f in seq.iter_frames()]
    assert all(abs(g - v) <= 4 for g, v in zip(got, levels))
    assert abs(int(seq.read(0).mean()) - 30) <= 4  # seeking backwards restarts the decoder


def test_hidden_folders_are_ignored(tmp_path):
    _write_seq(tmp_path / "GOPR0001_11_00")
    _write_seq(tmp_path / ".GOPR0002_11_00.partial")
    assert [s.name for s in discover_sequences(tmp_path)] == ["GOPR0001_11_00"]
