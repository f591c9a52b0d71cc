"""mmpdata.video on generated files: every decoded frame in order whatever the container claims, the exact rational
frame rate, audio carried over, odd sizes kept, one-line errors without ffmpeg's banner."""
from fractions import Fraction

import numpy as np
import pytest

from _videos import (avi_header_frames, encode, grey_frames, levels, lying_avi, null_decode_count, probe_stream, vfr,
                     with_audio)
from mmpdata.errors import InputError
from mmpdata.rawio import discover_sequences
from mmpdata.video import VideoReader, VideoWriter, check_video_output, count_frames


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    first, second = levels(4), levels(9, offset=11)
    return {
        "lying": (lying_avi(root / "lying.avi", grey_frames(first, 24, 32), grey_frames(second, 24, 32)),
                  first + second),
        "audio": (with_audio(root / "audio.mp4", grey_frames(levels(12), 61, 97)), levels(12)),
        "vfr": (vfr(root / "vfr.mkv", grey_frames(levels(10), 16, 16)), levels(10)),
    }


def _mean_levels(frames):
    return [int(round(float(f.mean()))) for f in frames]


@pytest.mark.parametrize("name", ["lying", "audio", "vfr"])
def test_every_decoded_frame_in_order(videos, name):
    path, truth = videos[name]
    reader = VideoReader(path)
    got = _mean_levels(reader)
    assert reader.count == len(truth) == null_decode_count(path) == count_frames(path)
    assert all(abs(g - t) <= 3 for g, t in zip(got, truth)), (got, truth)
    assert reader.complete
    (seq,) = discover_sequences(path)
    assert len(seq) == len(truth)
    assert len(list(seq.iter_frames())) == len(truth)
    assert abs(int(seq.read(len(truth) - 1).mean()) - truth[-1]) <= 3
    assert abs(int(seq.read(0).mean()) - truth[0]) <= 3  # backwards: restarts the decoder


def test_container_count_lies_but_not_the_decoder(videos):
    path, truth = videos["lying"]
    assert avi_header_frames(path) == 4  # the header announces only the first recording
    assert VideoReader(path).info.rate == 25
    assert sum(1 for _ in VideoReader(path)) == 13


def test_exact_rate_size_audio(videos):
    info = VideoReader(videos["audio"][0]).info
    assert info.rate == Fraction(24000, 1001)
    assert info.size == (61, 97) and info.audio == ["aac"]
    assert VideoReader(videos["lying"][0]).info.audio == []


def test_variable_frame_rate_is_detected(videos):
    r = VideoReader(videos["vfr"][0])
    list(r)
    assert r.variable_rate and r.count == 10
    assert r.timestamps[6] - r.timestamps[5] == pytest.approx(0.3, abs=0.01)
    c = VideoReader(videos["audio"][0])
    list(c)
    assert not c.variable_rate
    assert c.timestamps[1] - c.timestamps[0] == pytest.approx(1001 / 24000, abs=1e-4)


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 50, "truncated"])
def test_bad_files_one_line(videos, tmp_path, content):
    path = tmp_path / "bad.mp4"
    if content == "truncated":
        content = videos["audio"][0].read_bytes()[:600]
    path.write_bytes(content)
    for call in (lambda: list(VideoReader(path)), lambda: count_frames(path), lambda: len(discover_sequences(path)[0])):
        with pytest.raises(InputError) as exc:
            call()
        msg = str(exc.value)
        assert "\n" not in msg and str(path) in msg
        assert not any(w in msg for w in ("ffmpeg version", "configuration:", "Copyright", "libavutil"))


def test_writer_exact_rate_odd_size_audio_lossless(videos, tmp_path):
    src, _ = videos["audio"]
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (61, 97, 3), dtype=np.uint8) for _ in range(7)]
    out = tmp_path / "out.mp4"
    w = VideoWriter(out, (61, 97), Fraction(24000, 1001), codec="libx264rgb", audio_from=src, audio=["aac"])
    for f in frames:
        w.write(f)
    w.close(True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # temporaries renamed or removed
    r = VideoReader(out)
    back = list(r)
    assert r.info.rate == Fraction(24000, 1001) and r.info.size == (61, 97) and r.info.audio == ["aac"]
    assert len(back) == 7 and all(np.array_equal(a, b) for a, b in zip(back, frames))  # crf 0 RGB: bit-exact
    assert w.audio_result.startswith("copied")


def test_writer_yuv_odd_size_and_pcm_audio_notice(tmp_path):
    src = with_audio(tmp_path / "pcm.mkv", grey_frames(levels(5), 61, 97), rate="25", audio_codec="pcm_alaw")
    assert "pcm_alaw" in probe_stream(src)  # mp4 cannot hold A-law PCM
    w = VideoWriter(tmp_path / "o.mp4", (61, 97), Fraction(25), audio_from=src, audio=["pcm_alaw"])
    for f in grey_frames(levels(5), 61, 97):
        w.write(f)
    w.close(True)
    r = VideoReader(tmp_path / "o.mp4")
    assert r.info.size == (61, 97) and r.info.audio == ["aac"] and sum(1 for _ in r) == 5
    assert "yuv444p" in w.encoding  # 4:2:0 cannot hold odd sizes
    assert any("re-encoded to AAC" in n for n in w.notes)


def test_abandoned_writer_leaves_nothing(tmp_path):
    w = VideoWriter(tmp_path / "o.mkv", (16, 16), Fraction(25), codec="ffv1")
    w.write(np.zeros((16, 16, 3), np.uint8))
    w.close(False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,codec,crf,match", [
    ("o.webm", "libx264", None, "cannot write .webm"), ("o.mp4", "ffv1", None, "cannot hold"),
    ("o.mp4", "libx264", 60, "--crf 60"), ("o.mkv", "ffv1", 10, "lossless"), ("o.mp4", "h264", None, "unknown")])
def test_output_checks(tmp_path, name, codec, crf, match):
    with pytest.raises(InputError, match=match):
        check_video_output(tmp_path / name, codec, crf)
    assert list(tmp_path.iterdir()) == []


def test_encode_helper_truth(tmp_path):
    """The fixtures' own truth: ffmpeg's null decode of a plain encode counts what was piped in."""
    p = encode(tmp_path / "p.mkv", grey_frames(levels(6), 8, 8))
    assert null_decode_count(p) == 6


def test_synthesis_plans_with_the_decoded_count(videos, tmp_path):
    import h5py

    from mmpdata.pipeline import synthesize

    path, truth = videos["lying"]  # header: 4 frames; decoded: 13
    res = synthesize(path, tmp_path / "X.h5", flow="dis", frames="3", seed=0, progress=False)
    assert res.windows == 13 // 3
    with h5py.File(tmp_path / "X.h5") as f:
        g = f["sequences/lying"]
        assert int(g.attrs["raw_frames"]) == 13
        assert [abs(int(g["sharp"][t].mean()) - truth[3 * t + 1]) <= 3 for t in range(4)] == [True] * 4


# ------------------------------------------------------------------------------------------------------ colours
def _colour_bars(h: int = 48, w: int = 64) -> list[np.ndarray]:
    """Saturated colour patches (where YUV matrices differ most: up to ~40 levels between BT.601 and BT.709)."""
    cols = np.array([[250, 20, 20], [20, 230, 30], [30, 40, 240], [240, 230, 20], [200, 30, 220], [128, 128, 128]],
                    np.uint8)
    img = cols[np.minimum(np.arange(w) * len(cols) // w, len(cols) - 1)][None].repeat(h, 0)
    return [img.copy() for _ in range(3)]


def _decode_first(path, matrix: str | None = None) -> np.ndarray:
    """The first frame as RGB, decoded by ffmpeg itself; ``matrix``: as a player that assumes this YUV matrix and
    TV range whatever the file's tags say (BT.709 is what players and browsers assume for untagged HD)."""
    import subprocess

    from mmpdata.video import ffmpeg_exe
    vf = ["-vf", f"scale=in_color_matrix={matrix}:in_range=tv"] if matrix else []
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), *vf, "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(48, 64, 3).astype(int)


def test_a_bt709_video_keeps_its_colours_wherever_it_is_played(tmp_path):
    # The source is encoded (by ffmpeg's own command line) with the BT.709 matrix and tagged so. Rewritten by the
    # toolkit, it must look the same to ffmpeg (which honours tags) and to a player that assumes BT.709 (which
    # most do for HD): written with BT.601 and no tags, as before, the second differed by up to 40 levels.
    src = encode(tmp_path / "709.mp4", _colour_bars(), codec=["-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"],
                 extra_out=["-vf", "scale=out_color_matrix=bt709:out_range=tv,setparams=color_primaries=bt709:"
                                   "color_trc=bt709"])
    reader = VideoReader(src)
    frames = list(reader)
    info = reader.info
    assert (info.colour.range, info.colour.space, info.colour.primaries, info.colour.transfer) == \
        ("tv", "bt709", "bt709", "bt709") and info.bit_depth == 8
    out = tmp_path / "out.mp4"
    w = VideoWriter(out, info.size, info.rate, crf=0, colour=info.colour)
    for f in frames:
        w.write(f)
    w.close()
    assert VideoReader(out).info.colour == info.colour
    truth = _decode_first(src)
    assert np.abs(_decode_first(out) - truth).max() <= 3
    assert np.abs(_decode_first(out, "bt709") - truth).max() <= 3


def test_untagged_stays_untagged_and_frames_without_a_source_are_tagged_bt709(tmp_path):
    bars = _colour_bars()
    src = encode(tmp_path / "plain.mp4", bars, codec=["-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"])
    reader = VideoReader(src)
    frames = list(reader)
    assert reader.info.colour.space is None
    out = tmp_path / "out.mp4"
    w = VideoWriter(out, reader.info.size, reader.info.rate, crf=0, colour=reader.info.colour)
    for f in frames:
        w.write(f)
    w.close()
    assert VideoReader(out).info.colour.space is None  # a player guesses the same for both files
    assert np.abs(_decode_first(out) - _decode_first(src)).max() <= 3

    png = tmp_path / "png.mp4"  # e.g. a PNG folder: sRGB frames, written as tagged BT.709
    w = VideoWriter(png, (48, 64), Fraction(25), crf=0)
    for f in bars:
        w.write(f)
    w.close()
    assert VideoReader(png).info.colour.space == "bt709"
    assert np.abs(_decode_first(png) - bars[0]).max() <= 3
    assert np.abs(_decode_first(png, "bt709") - bars[0]).max() <= 3


def test_high_bit_depth_is_reported(tmp_path):
    src = encode(tmp_path / "ten.mkv", grey_frames(levels(3), 16, 16),
                 codec=["-c:v", "libx264", "-pix_fmt", "yuv420p10le"])
    info = VideoReader(src).info
    assert info.pixel_format == "yuv420p10le" and info.bit_depth == 10
