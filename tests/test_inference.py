"""mmp deblur (folder -> PNGs, video -> mp4: one output per input frame, equal to the whole-clip network) and
mmp show (heat-map panels)."""
from fractions import Fraction

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _mmph5 import random_checkpoints, write_learnable_h5
from _videos import grey_frames, levels, lying_avi, null_decode_count, with_audio
from cli.main import main
from mmpdata.video import VideoReader
from mmpmodel.visualize import heat_overlay


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("infer")
    prior_ck, ck, model = random_checkpoints(root)
    rng = np.random.default_rng(0)
    frames = [cv2.GaussianBlur(rng.integers(0, 256, (22, 30, 3), dtype=np.uint8), (5, 5), 1.5) for _ in range(7)]
    folder = root / "clip"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"frame_{i + 1}.png"), f[:, :, ::-1])
    return model, ck, prior_ck, folder, frames


def test_folder_to_pngs_every_frame(setup, tmp_path):
    model, ck, _, folder, frames = setup
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["deblur", "--model", str(ck), str(folder), str(out)])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:06d}.png" for i in range(7)]  # fixed width, in input order
    clip = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[None].float() / 255
    with torch.no_grad():
        whole = model.forward_all(clip)[0].clamp(0, 1)
    for i in range(7):
        got = cv2.imread(str(out / f"{i:06d}.png"))[:, :, ::-1].astype(int)
        want = np.rint(whole[i].permute(1, 2, 0).numpy() * 255).astype(int)
        assert got.shape == (22, 30, 3) and np.abs(got - want).max() <= 1


def test_video_to_mp4(setup, tmp_path):
    _, ck, _, _, frames = setup
    src = tmp_path / "in.mp4"
    w = imageio_ffmpeg.write_frames(str(src), (30, 22), fps=24, macro_block_size=1, pix_fmt_out="yuv444p")
    w.send(None)
    for f in frames:
        w.send(np.ascontiguousarray(f))
    w.close()
    out = tmp_path / "out.mp4"
    res = CliRunner().invoke(main, ["deblur", "--model", str(ck), str(src), str(out)])
    assert res.exit_code == 0, res.output
    assert "7 frames" in res.output
    assert null_decode_count(out) == 7
    assert VideoReader(out).info.rate == 24
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]  # no temporaries left


def test_show_panels(setup, tmp_path):
    _, _, prior_ck, folder, _ = setup
    res = CliRunner().invoke(main, ["show", str(folder), "--prior", str(prior_ck), str(tmp_path / "vis"),
                                    "--every", "3"])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "vis" / "clip").glob("*.png"))
    assert [p.stem for p in files] == ["000000", "000003", "000006"]
    assert cv2.imread(str(files[0])).shape == (22, 60, 3)  # frame | prediction overlay
    data = write_learnable_h5(tmp_path / "d.h5", names=("s0",), t=3, size=(16, 24))
    res = CliRunner().invoke(main, ["show", str(data), "--prior", str(prior_ck), str(tmp_path / "vis2")])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(tmp_path / "vis2" / "s0" / "000002.png")).shape == (16, 72, 3)  # + ground truth overlay


def test_heat_overlay_colours():
    black = np.zeros((2, 2, 3), np.uint8)
    cold = heat_overlay(black, np.zeros((2, 2)), alpha=1.0)[0, 0]
    hot = heat_overlay(black, np.ones((2, 2)), alpha=1.0)[0, 0]
    assert cold[2] > 100 and cold[0] == 0  # jet: 0 is blue
    assert hot[0] > 100 and hot[2] == 0    # 1 is red


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A lying-header AVI (header 3 frames, 8 decoded) and a 97x61 24000/1001 mp4 with AAC audio (9 frames)."""
    root = tmp_path_factory.mktemp("hostile")
    avi = lying_avi(root / "cam.avi", grey_frames(levels(3), 24, 32), grey_frames(levels(5, 7), 24, 32))
    mp4 = with_audio(root / "odd.mp4", grey_frames(levels(9), 61, 97))
    return avi, mp4


def test_lying_avi_every_decoded_frame_as_mp4_and_pngs(setup, hostile, tmp_path):
    ck, (avi, _) = setup[1], hostile
    res = CliRunner().invoke(main, ["deblur", "--model", str(ck), str(avi), str(tmp_path / "out.mp4")])
    assert res.exit_code == 0, res.output
    assert null_decode_count(tmp_path / "out.mp4") == null_decode_count(avi) == 8
    assert VideoReader(tmp_path / "out.mp4").info.rate == 25
    res = CliRunner().invoke(main, ["deblur", "--model", str(ck), str(avi), str(tmp_path / "pngs")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == [f"{i:06d}.png" for i in range(8)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "pngs"]


@pytest.mark.parametrize("name,codec", [("out.mp4", "libx264"), ("out.mkv", "ffv1")])
def test_rate_audio_and_odd_size_kept(setup, hostile, tmp_path, name, codec):
    ck, (_, mp4) = setup[1], hostile
    out = tmp_path / name
    res = CliRunner().invoke(main, ["deblur", "--model", str(ck), str(mp4), str(out), "--codec", codec])
    assert res.exit_code == 0, res.output
    assert "24000/1001 fps" in res.output and "audio copied (aac)" in res.output
    r = VideoReader(out)
    assert r.info.rate == Fraction(24000, 1001) and r.info.size == (61, 97) and r.info.audio == ["aac"]
    assert sum(1 for _ in r) == 9


def test_fps_override_is_exact(setup, hostile, tmp_path):
    ck, (avi, _) = setup[1], hostile
    res = CliRunner().invoke(main, ["deblur", "--model", str(ck), str(avi), str(tmp_path / "o.mkv"),
                                    "--fps", "30000/1001"])
    assert res.exit_code == 0, res.output
    assert VideoReader(tmp_path / "o.mkv").info.rate == Fraction(30000, 1001)


def _listing(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


@pytest.mark.parametrize("case", ["same_folder", "same_file", "video_folder", "nonempty", "zero_bytes", "text",
                                  "webm", "fps_nan", "crf_ffv1", "under_file_mp4", "under_file_pngs"])
def test_refused_in_one_line_nothing_written(setup, hostile, tmp_path, case):
    _, ck, _, folder, _ = setup
    work = tmp_path / "w"
    work.mkdir()
    clip = work / "clip"
    clip.mkdir()
    for p in folder.iterdir():
        (clip / p.name).write_bytes(p.read_bytes())
    video = work / "v.mp4"
    video.write_bytes(hostile[1].read_bytes())
    (work / "zero.mp4").write_bytes(b"")
    (work / "text.avi").write_text("hello\n" * 20)
    (work / "full").mkdir()
    (work / "full" / "notes.txt").write_text("keep")
    args = {"same_folder": [clip, clip], "same_file": [video, video], "video_folder": [video, work],
            "nonempty": [clip, work / "full"], "zero_bytes": [work / "zero.mp4", work / "o.mp4"],
            "text": [work / "text.avi", work / "pngs"], "webm": [video, work / "o.webm"],
            "fps_nan": [video, work / "o.mp4", "--fps", "nan"], "under_file_mp4": [video, work / "zero.mp4" / "o.mp4"],
            "under_file_pngs": [clip, work / "zero.mp4" / "pngs"], "crf_ffv1": [video, work / "o.mkv", "--codec", "ffv1",
                                                                               "--crf", "3"]}[case]
    before = _listing(work)
    res = CliRunner().invoke(main, ["deblur", "--model", str(ck), *map(str, args)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.output, res.output
    assert str(args[0]) in lines[0] or str(args[1]) in lines[0] or "--fps" in lines[0] or "--crf" in lines[0]
    assert _listing(work) == before  # nothing written, nothing lost


def test_show_every_decoded_frame_of_a_lying_avi(setup, hostile, tmp_path):
    prior_ck, (avi, _) = setup[2], hostile
    res = CliRunner().invoke(main, ["show", str(avi), "--prior", str(prior_ck), str(tmp_path / "vis")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "vis" / "cam").iterdir()) == [f"{i:06d}.png" for i in range(8)]
