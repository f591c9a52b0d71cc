"""Sample footage: the motion ground truth is exact (analytic cases, photometric warp check) and the files are right."""
from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from mmpdata import footage as F
from mmpdata.errors import InputError, SettingsMismatch
from mmpdata.rawio import discover_sequences, read_image


def _grid(w, h):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return xs, ys


def _translations(shifts):
    """photo -> frame maps x = s + t_k (the frame shows the photo displaced by t_k)."""
    return np.array([[[1.0, 0.0, tx], [0.0, 1.0, ty]] for tx, ty in shifts])


def _about_centre(lin, w, h, offset=(-150.0, -120.0)):
    """photo -> frame map: place the photo at ``offset``, then apply the 2x2 ``lin`` about the frame centre."""
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = c - lin @ c
    place = np.eye(3)
    place[:2, 2] = offset
    return (m @ place)[:2]


def _blur(img):
    return cv2.GaussianBlur(np.asarray(img, np.float32), (0, 0), 1.0)


def _backwarp(img, flow):
    """Sample ``img`` at x + flow(x): with the true flow i -> i+1, frame i+1 sampled this way is frame i."""
    h, w = flow.shape[:2]
    xs, ys = _grid(w, h)
    return cv2.remap(np.asarray(img, np.float32), (xs + flow[..., 0]).astype(np.float32),
                     (ys + flow[..., 1]).astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


# ------------------------------------------------------------------------------------------ truth, analytic cases
def test_translation_truth_equals_known_shift():
    shifts = [(-200.0, -150.0), (-198.5, -152.0), (-198.5, -152.0), (-195.0, -151.0)]
    fwd, bwd = F.Motion((40, 30), _translations(shifts)).magnitudes()
    expected = [2.5, 0.0, np.hypot(3.5, 1.0)]  # |t_{i+1} - t_i| by hand
    assert fwd.shape == bwd.shape == (3, 30, 40) and fwd.dtype == bwd.dtype == np.float32
    for i, e in enumerate(expected):
        np.testing.assert_allclose(fwd[i], e, atol=1e-5)
        np.testing.assert_allclose(bwd[i], e, atol=1e-5)
    flow = F.Motion((40, 30), _translations(shifts)).flow(0, 1)
    np.testing.assert_allclose(flow[..., 0], 1.5, atol=1e-5)
    np.testing.assert_allclose(flow[..., 1], -2.0, atol=1e-5)


def test_rotation_and_zoom_truth_vary_with_distance_from_centre():
    w, h, alpha, z = 60, 40, 0.01, 1.02
    xs, ys = _grid(w, h)
    r = np.hypot(xs - (w - 1) / 2, ys - (h - 1) / 2)
    rot = lambda a: np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # noqa: E731
    fwd, bwd = F.Motion((w, h), np.stack([_about_centre(rot(k * alpha), w, h) for k in range(3)])).magnitudes()
    np.testing.assert_allclose(fwd, np.broadcast_to(2 * r * np.sin(alpha / 2), fwd.shape), atol=1e-4)
    np.testing.assert_allclose(bwd, fwd, atol=1e-4)
    fwd, bwd = F.Motion((w, h), np.stack([_about_centre(np.eye(2) * z**k, w, h) for k in range(3)])).magnitudes()
    np.testing.assert_allclose(fwd, np.broadcast_to((z - 1) * r, fwd.shape), atol=1e-4)  # zoom in: r -> z r
    np.testing.assert_allclose(bwd, np.broadcast_to((1 - 1 / z) * r, bwd.shape), atol=1e-4)  # back: r -> r / z


def test_sprite_pixels_carry_the_sprite_motion():
    w, h = 50, 40
    still = _translations([(-100.0, -100.0)] * 3)
    sprite = _translations([(20.0, 20.0), (23.0, 24.0), (23.0, 21.0)])  # centre path of the sprite
    m = F.Motion((w, h), still, sprite, (8.0, 5.0))
    xs, ys = _grid(w, h)
    inside = lambda cx, cy: ((xs - cx) / 8.0) ** 2 + ((ys - cy) / 5.0) ** 2 <= 1  # noqa: E731
    fwd, bwd = m.magnitudes()
    np.testing.assert_allclose(fwd[0], np.where(inside(20, 20), 5.0, 0.0), atol=1e-5)
    np.testing.assert_allclose(bwd[0], np.where(inside(23, 24), 5.0, 0.0), atol=1e-5)
    np.testing.assert_allclose(fwd[1], np.where(inside(23, 24), 3.0, 0.0), atol=1e-5)
    np.testing.assert_allclose(bwd[1], np.where(inside(23, 21), 3.0, 0.0), atol=1e-5)
    assert inside(20, 20).sum() > 100


# ------------------------------------------------------------------------------------------ rendering
def test_render_uses_pixel_centre_convention():
    photo = F.load_photo("astronaut")
    w, h, ox, oy = 96, 64, 200, 150
    frame = F.render_frames(F.Scene(F.Motion((w, h), _translations([(-ox, -oy)])), photo))[0]
    xs, ys = _grid(w, h)

    def crop(dx):  # the photograph sampled at x + o + dx, independently of the renderer
        return cv2.remap(photo.astype(np.float32), (xs + ox + dx).astype(np.float32), (ys + oy).astype(np.float32),
                         cv2.INTER_CUBIC)

    err = lambda dx: np.abs(_blur(frame) - _blur(crop(dx)))[4:-4, 4:-4].mean()  # noqa: E731
    assert err(0.0) < 0.3
    assert err(0.25) > 3 * err(0.0) and err(-0.25) > 3 * err(0.0)


def test_integer_translation_renders_exact_shift():
    photo = F.load_photo("chelsea")
    shifts = [(-150, -100), (-148, -101), (-145, -101)]
    frames = F.render_frames(F.Scene(F.Motion((64, 48), _translations(shifts)), photo))
    # frame_{i+1}(x) = frame_i(x - delta), exactly, wherever both are defined
    a, b, c = (f.astype(int) for f in frames)
    assert np.array_equal(b[0:47, 2:64], a[1:48, 0:62])   # delta = (2, -1): b[y, x] = a[y + 1, x - 2]
    assert np.array_equal(c[:, 3:64], b[:, 0:61])          # delta = (3, 0)
    assert not np.array_equal(c, b)


@pytest.mark.parametrize("images", [("astronaut", "chelsea"), F.UNSEEN_IMAGES])
def test_warping_with_truth_reproduces_frames(images):
    """Photometric check of render + truth together: frame i+1 sampled at x + fwd(x) is frame i (and back)."""
    rng = np.random.default_rng([7, 0])
    scene, _ = F.make_scene(rng, 12, (160, 96), images[0], images[1], motion=576 / 160)
    frames, m = F.render_frames(scene), scene.motion
    assert m.visible(0).mean() > 0.05  # the sprite is in the picture
    speed = m.magnitudes()[0].mean(axis=(1, 2))
    slow, fast = int(np.argmin(speed)), int(np.argmax(speed))
    assert speed[fast] > 2.5  # the 5 % check below needs motion well above interpolation noise
    for i in (slow, fast):
        for src, dst in ((i, i + 1), (i + 1, i)):
            flow = m.flow(src, dst)
            band = np.zeros(flow.shape[:2], bool)  # occlusion edges of the sprite, where no flow can explain colour
            for t in (src, dst):
                v = m.visible(t).astype(np.uint8)
                band |= cv2.dilate(v, np.ones((9, 9))) != cv2.erode(v, np.ones((9, 9)))
            ok = ~band
            ok[:8], ok[-8:], ok[:, :8], ok[:, -8:] = False, False, False, False
            err = lambda f: np.abs(_blur(_backwarp(frames[dst], f)) - _blur(frames[src])).mean(-1)[ok].mean()  # noqa: E731
            truth = err(flow)
            assert truth < 0.6                         # grey levels, after a sigma-1 blur (interpolation noise)
            assert err(flow + 0.1) > 1.8 * truth       # a tenth of a pixel off is clearly worse
            if i == fast:
                assert err(flow * 1.05) > 1.8 * truth  # so is 5 % too much motion
            assert np.linalg.norm(flow, axis=-1)[ok].mean() > 0.5


def test_motion_is_stop_and_go_like_hand_held_footage():
    """GOPRO-like motion: the camera nearly stops, then pans fast; calm and busy sequences; varies over space."""
    windows, seq_means, spatial, peak = [], [], [], 0.0
    for j in range(16):
        rng = np.random.default_rng([0, j])
        size = (160, 96)
        # speeds are defined for a 1280-px frame; motion 576/160 gives the px speeds of a 576-px-wide frame
        m = F.Motion(size, F.fit_photo(F.random_camera(rng, 40, size, motion=576 / 160), size, (300, 451), rng))
        fwd, bwd = m.magnitudes()
        pair = (fwd.mean(axis=(1, 2)) + bwd.mean(axis=(1, 2))) / 2
        windows += [pair[a:a + 6].mean() for a in range(0, len(pair) - 5, 3)]  # 7-frame windows
        seq_means.append(pair.mean())
        spatial.append(np.median(fwd.std(axis=(1, 2))))
        peak = max(peak, float(fwd.max()), float(bwd.max()))
    windows = np.array(windows)
    assert np.mean(windows < 0.5) > 0.15            # a good share of windows nearly static (MMP ~ 0)
    assert np.mean(windows > 3.0) > 0.10            # and some fast pans (MMP > 0.2 with K = 15)
    assert 8.0 > peak > 5.0                          # top speeds up to ~6 px per frame, MMP stays well below 1
    assert np.std(seq_means) > 0.5                   # per-sequence speed scale: calm and busy sequences
    assert np.median(spatial) > 0.05                 # rotation and zoom: not a uniform shift


def test_sprite_moves_stop_and_go():
    """The sprite, like the camera, stands nearly still for a while and then moves (at most 3.5 px per frame), so
    its blur is not one constant level that a network could tie to 'the sprite'."""
    steps = []
    for j in range(8):
        rng = np.random.default_rng([0, j])
        maps, _ = F.random_sprite(rng, 40, (160, 96), motion=576 / 160)
        steps.append(np.linalg.norm(np.diff(maps[:, :, 2], axis=0), axis=1))  # centre displacement per frame, px
        assert steps[-1].min() < 0.1 and steps[-1].max() > 1.0
    steps = np.concatenate(steps)
    assert np.mean(steps < 0.3) > 0.2 and steps.max() > 1.5 and steps.max() < 3.5 * np.sqrt(2)


def test_stored_truth_is_in_the_mmp_range(sample_footage):
    fwd, bwd = F.load_motion_truth(sample_footage / "train" / "GOPR9001_11_00")
    both = np.concatenate([fwd, bwd])
    assert 0.1 < both.mean() < 5.0
    assert np.mean(both / 15 <= 0.6) > 0.99           # MMP = magnitude / K within 0..0.6
    assert fwd.mean(axis=(1, 2)).std() > 0.05         # over time


def test_views_never_leave_the_photograph():
    rng = np.random.default_rng(3)
    for frames, size in ((40, (320, 192)), (300, (64, 48))):
        camera = F.random_camera(rng, frames, size)
        maps = F.fit_photo(camera, size, (300, 451), rng)
        w, h = size
        corners = np.array([[-1, -1], [w, -1], [-1, h], [w, h]], float)
        for m in maps:
            full = np.vstack([m, [0, 0, 1]])
            src = corners @ np.linalg.inv(full)[:2, :2].T + np.linalg.inv(full)[:2, 2]
            assert src.min() >= 2.0 and (src[:, 0] <= 450 - 2).all() and (src[:, 1] <= 299 - 2).all()


# ------------------------------------------------------------------------------------------ files
def test_layout_gopro_like(sample_footage):
    seqs = sorted(p.relative_to(sample_footage).as_posix() for p in sample_footage.glob("*/*") if p.is_dir())
    assert seqs == ["test/GOPR9003_11_00", "train/GOPR9001_11_00", "train/GOPR9002_11_00"]
    for rel in seqs:
        folder = sample_footage / rel
        names = sorted(p.name for p in folder.iterdir())
        assert names == [f"{i:06d}.png" for i in range(16)]  # frames only
        assert read_image(folder / "000000.png").shape == (48, 64, 3)
        meta = json.loads((folder.parent / f"{folder.name}.motion.json").read_text())
        assert meta["frames"] == 16 and meta["size"] == [64, 48] and re.fullmatch(r"GOPR\d{4}_\d\d_\d\d", meta["sequence"])
        fwd, bwd = F.load_motion_truth(folder)
        assert fwd.shape == bwd.shape == (15, 48, 64) and fwd.dtype == np.float32
        # the stored truth is the one the stored affine maps give
        rfwd, rbwd = F.load_motion(folder).magnitudes()
        np.testing.assert_array_equal(fwd, rfwd)
        np.testing.assert_array_equal(bwd, rbwd)
    found = discover_sequences(sample_footage)
    assert [(s.name, s.split, len(s)) for s in found] == [
        ("GOPR9001_11_00", "train", 16), ("GOPR9002_11_00", "train", 16), ("GOPR9003_11_00", "test", 16)]


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_with_seed(tmp_path):
    kw = dict(sequences=2, frames=4, size=(48, 32), split=False, progress=False)
    F.render_sample_footage(tmp_path / "a", seed=3, **kw)
    F.render_sample_footage(tmp_path / "b", seed=3, **kw)
    F.render_sample_footage(tmp_path / "c", seed=4, **kw)
    F.render_sample_footage(tmp_path / "d", seed=3, **{**kw, "sequences": 1})
    a, b, c, d = (_tree(tmp_path / x) for x in "abcd")
    assert a == b
    assert a.keys() == c.keys() and a["GOPR9001_11_00/000000.png"] != c["GOPR9001_11_00/000000.png"]
    assert all(a[k] == v for k, v in d.items())  # sequence j depends on (seed, j) only


def test_unseen_photographs(tmp_path):
    assert not set(F.UNSEEN_IMAGES) & set(F.DEFAULT_IMAGES)
    paths = F.render_sample_footage(tmp_path, images=("coffee", "rocket"), size=(64, 48), frames=3, sequences=2,
                                    seed=1, split=False, progress=False)
    assert [p.name for p in paths] == ["GOPR9001_11_00", "GOPR9002_11_00"]
    metas = [json.loads((p.parent / f"{p.name}.motion.json").read_text()) for p in paths]
    assert [(m["background"]["image"], m["sprite"]["image"]) for m in metas] == [("coffee", "rocket"), ("rocket", "coffee")]
    no_fg = F.render_sample_footage(tmp_path / "plain", images=("coffee",), size=(64, 48), frames=3, sequences=1,
                                    foreground=False, split=False, progress=False)
    assert F.load_motion(no_fg[0]).sprite is None


def test_motion_range_scales_each_sequence_by_its_own_factor(tmp_path):
    """--motion LO-HI: sequence j moves exactly as a fixed-factor render with j's drawn factor would (same camera
    path, scaled), the factors lie in the range and differ between sequences."""
    kw = dict(frames=6, size=(64, 48), split=False, progress=False, images=("coffee", "rocket"), seed=4)
    paths = F.render_sample_footage(tmp_path / "range", sequences=4, motion=(0.5, 2.0), **kw)
    factors = [json.loads((p.parent / f"{p.name}.motion.json").read_text())["render"]["motion_factor"] for p in paths]
    assert all(0.5 <= f <= 2.0 for f in factors) and len(set(factors)) == 4
    assert factors == [F.sequence_motion(4, j, (0.5, 2.0)) for j in range(4)]
    for j in (0, 3):
        (fixed,) = F.render_sample_footage(tmp_path / f"fixed{j}", sequences=j + 1, motion=factors[j], **kw)[j:]
        for got, want in zip(F.load_motion_truth(paths[j]), F.load_motion_truth(fixed)):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert F.sequence_motion(4, 1, 1.5) == 1.5


def test_existing_output_resumes_or_refuses(tmp_path):
    kw = dict(sequences=1, frames=3, size=(48, 32), split=False, progress=False)
    (path,) = F.render_sample_footage(tmp_path, seed=0, **kw)
    stamp = (path / "000000.png").stat().st_mtime_ns
    F.render_sample_footage(tmp_path, seed=0, **kw)
    assert (path / "000000.png").stat().st_mtime_ns == stamp
    with pytest.raises(SettingsMismatch, match="GOPR9001_11_00"):
        F.render_sample_footage(tmp_path, seed=1, **kw)


def test_failed_render_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(path, img):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        cv2.imwrite(str(path), img)

    monkeypatch.setattr(F, "_write_frame", failing)
    with pytest.raises(OSError):
        F.render_sample_footage(tmp_path, sequences=1, frames=4, size=(48, 32), split=False, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments():
    assert F.parse_size("320x192") == (320, 192) and F.parse_size("64×48") == (64, 48)
    for bad in ("320", "axb", "320x", "16x192", "320x192x3"):
        with pytest.raises(InputError, match="--size"):
            F.parse_size(bad)
    with pytest.raises(InputError, match="lena"):
        F.render_sample_footage("unused", images=("lena",))
    with pytest.raises(InputError, match="--frames"):
        F.render_sample_footage("unused", frames=1)
    with pytest.raises(InputError, match="motion"):
        F.load_motion_truth("/nonexistent/GOPR0001_00_00")
    assert F.parse_motion("1.5") == 1.5 and F.parse_motion("0.6-1.6") == (0.6, 1.6)
    for bad in ("0", "-1", "2-1", "a", "1-2-3", "1-"):
        with pytest.raises(InputError, match="--motion"):
            F.parse_motion(bad)
    with pytest.raises(InputError, match="--motion"):
        F.render_sample_footage("unused", motion=(2.0, 1.0))


# ------------------------------------------------------------------------------------------ CLI
def test_cli_renders(tmp_path):
    out = tmp_path / "raw"
    res = CliRunner().invoke(main, ["sample-footage", str(out), "--sequences", "2", "--frames", "3", "--size",
                                    "48x32", "--no-split", "--images", "coffee,rocket", "--seed", "2"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "GOPR9001_11_00", "GOPR9001_11_00.motion.json", "GOPR9001_11_00.motion.npz",
        "GOPR9002_11_00", "GOPR9002_11_00.motion.json", "GOPR9002_11_00.motion.npz"]
    assert str(out / "GOPR9001_11_00") in res.output


@pytest.mark.parametrize("args, word", [(["--size", "big"], "--size"), (["--frames", "1"], "--frames"),
                                        (["--images", "nope"], "nope")])
def test_cli_bad_input_is_one_clean_line(tmp_path, args, word):
    res = CliRunner().invoke(main, ["sample-footage", str(tmp_path / "x"), *args])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0]
    assert "Traceback" not in res.output and not (tmp_path / "x").exists()


def test_unseen_fixture_matches_the_issue(unseen_footage):
    """The must-show footage: 2 x 40 frames of 320x192 from photographs outside the default sample set."""
    seqs = sorted(p for p in unseen_footage.iterdir() if p.is_dir())
    assert [p.name for p in seqs] == ["GOPR9001_11_00", "GOPR9002_11_00"]
    for p in seqs:
        assert len(list(p.glob("*.png"))) == 40 and read_image(p / "000039.png").shape == (192, 320, 3)
        meta = json.loads((p.parent / f"{p.name}.motion.json").read_text())
        assert meta["background"]["image"] not in F.DEFAULT_IMAGES and meta["sprite"] is None
        assert F.load_motion_truth(p)[0].shape == (39, 192, 320)


# ------------------------------------------------------------------------------------------ shutter (own motion blur)
def test_shutter_averages_subexposures_in_linear_light():
    """A pan of 4 px per frame with the shutter open the whole interval: frame t is the linear-light mean of
    instantaneous views at t + tau, tau spread evenly over [-0.5, 0.5], built here from shutter-0 renders."""
    photo = F.load_photo("astronaut")
    v = 4.0
    shifts = [(-150 - v * i, -120) for i in range(3)]
    blurred = F.render_frames(F.Scene(F.Motion((64, 48), _translations(shifts)), photo), shutter=1.0)
    k = 8  # 4 px spread / 0.5 px sub-step
    taus = (np.arange(k) + 0.5) / k - 0.5
    views = F.render_frames(F.Scene(F.Motion((64, 48), _translations([(-150 - v * (1 + t), -120) for t in taus])),
                                    photo))
    lin = np.mean([(f.astype(np.float64) / 255) ** 2.2 for f in views], axis=0)
    expected = 255 * lin ** (1 / 2.2)
    err = np.abs(blurred[1] - expected)  # the renderer averages before area downsampling and rounding
    assert err.mean() < 0.3 and np.percentile(err, 99) < 1.5, (err.mean(), np.percentile(err, 99))
    sharp = F.render_frames(F.Scene(F.Motion((64, 48), _translations(shifts)), photo))[1]
    # and the blur is real and follows the motion: horizontal detail drops more than vertical detail
    dx = lambda f: np.abs(np.diff(f.astype(float), axis=1)).mean()  # noqa: E731
    dy = lambda f: np.abs(np.diff(f.astype(float), axis=0)).mean()  # noqa: E731
    assert dx(blurred[1]) / dx(sharp) < 0.8 and dx(blurred[1]) / dx(sharp) < dy(blurred[1]) / dy(sharp) - 0.1


def test_shutter_leaves_still_frames_sharp_and_is_validated(tmp_path):
    photo = F.load_photo("chelsea")
    still = [(-100, -80)] * 3
    scene = F.Scene(F.Motion((64, 48), _translations(still)), photo)
    assert all(np.array_equal(a, b) for a, b in zip(F.render_frames(scene, shutter=1.0), F.render_frames(scene)))
    with pytest.raises(InputError, match="--shutter"):
        F.render_sample_footage(tmp_path / "x", sequences=1, frames=3, size=(64, 48), shutter=1.5)


def test_shutter_is_part_of_the_settings_a_rerun_must_match(tmp_path):
    kw = dict(sequences=1, frames=3, size=(64, 48), seed=2)
    F.render_sample_footage(tmp_path, **kw)
    F.render_sample_footage(tmp_path, **kw)  # same settings: kept
    with pytest.raises(SettingsMismatch):
        F.render_sample_footage(tmp_path, shutter=1.0, **kw)


def test_speeds_scale_with_the_frame_width_and_motion():
    """Speeds are defined for a 1280-px frame: the same random path at half the width moves half as many pixels,
    and --motion multiplies them (so the blur relative to the frame does not depend on --size)."""
    def pan(size, motion=1.0):
        cam = F.random_camera(np.random.default_rng(5), 30, size, motion)
        centre = np.array([(size[0] - 1) / 2, (size[1] - 1) / 2, 1.0])
        path = np.array([np.linalg.inv(m) @ centre for m in cam])[:, :2]  # view centre in reference px
        return np.linalg.norm(np.diff(path, axis=0), axis=1)

    full, half = pan((1280, 720)), pan((640, 360))
    np.testing.assert_allclose(half, full / 2, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(pan((640, 360), motion=3.0), 3 * half, rtol=1e-6, atol=1e-9)
    assert 4.0 < full.max() < 14.5 * 1.2               # top pan speed within PAN_SPEED (px/frame at 1280 px)


def test_images_may_be_files(tmp_path):
    """--images takes image file paths too: the rendered view shows that file's content (here a flipped
    astronaut, which no bundled name gives), and unreadable or unknown names are one-line errors."""
    import cv2

    photo = np.ascontiguousarray(F.load_photo("astronaut")[::-1])
    path = tmp_path / "mine.png"
    cv2.imwrite(str(path), photo[:, :, ::-1])
    np.testing.assert_array_equal(F.load_photo(str(path)), photo)
    seqs = F.render_sample_footage(tmp_path / "out", sequences=1, frames=3, size=(64, 48), images=[str(path)],
                                   foreground=False, split=False)
    assert len(list(seqs[0].glob("*.png"))) == 3
    (tmp_path / "broken.png").write_bytes(b"no image")
    with pytest.raises(InputError, match="broken.png: not a readable image"):
        F.load_photo(str(tmp_path / "broken.png"))
    with pytest.raises(InputError, match="unknown photograph"):
        F.render_sample_footage(tmp_path / "o2", sequences=1, frames=3, images=["nope.png"])
