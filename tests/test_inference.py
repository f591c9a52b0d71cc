"""mmp deblur (folder -> PNGs, video -> mp4: one output per input frame, equal to the whole-clip network) and
mmp show (heat-map panels)."""
import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _mmph5 import random_checkpoints, write_learnable_h5
from cli.main import main
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
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(f"frame_{i + 1}.png" for i in range(7))
    clip = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[None].float() / 255
    with torch.no_grad():
        whole = model.forward_all(clip)[0].clamp(0, 1)
    for i in range(7):
        got = cv2.imread(str(out / f"frame_{i + 1}.png"))[:, :, ::-1].astype(int)
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
    n, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert n == 7
    assert not list(tmp_path.glob(".*partial*"))


def test_show_panels(setup, tmp_path):
    _, _, prior_ck, folder, _ = setup
    res = CliRunner().invoke(main, ["show", str(folder), "--prior", str(prior_ck), str(tmp_path / "vis"),
                                    "--every", "3"])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "vis" / "clip").glob("*.png"))
    assert [p.stem for p in files] == ["0", "3", "6"]
    assert cv2.imread(str(files[0])).shape == (22, 60, 3)  # frame | prediction overlay
    data = write_learnable_h5(tmp_path / "d.h5", names=("s0",), t=3, size=(16, 24))
    res = CliRunner().invoke(main, ["show", str(data), "--prior", str(prior_ck), str(tmp_path / "vis2")])
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(tmp_path / "vis2" / "s0" / "2.png")).shape == (16, 72, 3)  # + ground truth overlay


def test_heat_overlay_colours():
    black = np.zeros((2, 2, 3), np.uint8)
    cold = heat_overlay(black, np.zeros((2, 2)), alpha=1.0)[0, 0]
    hot = heat_overlay(black, np.ones((2, 2)), alpha=1.0)[0, 0]
    assert cold[2] > 100 and cold[0] == 0  # jet: 0 is blue
    assert hot[0] > 100 and hot[2] == 0    # 1 is red
