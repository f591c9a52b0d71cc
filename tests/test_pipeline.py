"""The synthesis pipeline end to end, against independent truth: numpy blur, raw centre frames, analytic MMP.

Also: windows and centres, parts, workers, resume after an interruption (simulated and a real SIGKILL), RAFT.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from mmpdata import h5format as hf
from mmpdata.errors import SettingsMismatch
from mmpdata.footage import UNSEEN_IMAGES, load_motion_truth
from mmpdata.blur import blur_window
from mmpdata.crf import get_crf
from mmpdata.blur import blur_from_linear
from mmpdata.pipeline import parse_part, rebuild_index, select_part, synthesize
from mmpdata.rawio import discover_sequences

K = 15.0


def raw_frames(seq_dir: Path) -> list[np.ndarray]:
    """The raw frames read independently of mmpdata (cv2, BGR → RGB), in numeric order."""
    paths = sorted(seq_dir.glob("*.png"), key=lambda p: int(p.stem))
    return [cv2.imread(str(p), cv2.IMREAD_COLOR)[:, :, ::-1] for p in paths]


def analytic_mmp(fwd, bwd, a, b, k=K):
    """Eq. 2-3 written out from the true per-pair magnitudes: ends use one flow, interior frames the mean of two."""
    m = [fwd[a]] + [(bwd[i - 1] + fwd[i]) / 2 for i in range(a + 1, b)] + [bwd[b - 1]]
    return np.mean(np.asarray(m, np.float64), axis=0) / k


def gamma_blur(frames):
    lin = np.mean([(f.astype(np.float64) / 255.0) ** 2.2 for f in frames], axis=0)
    return np.rint(lin ** (1 / 2.2) * 255.0)


def contents(index: Path) -> dict:
    """Everything a reader can see: every dataset's bytes and every attribute (index and shards)."""
    out = {}
    with h5py.File(index, "r") as f:
        out["index"] = {k: np.asarray(v).tolist() for k, v in f.attrs.items()}
        for name in f["sequences"]:
            g = f["sequences"][name]
            out[name] = {k: g[k][()].tobytes() for k in g}
            out[name]["attrs"] = {k: np.asarray(v).tolist() for k, v in g.attrs.items()}
    return out


def check_truth(index: Path, seq_dirs, centre_offset, max_mae=0.006, border=16):
    with hf.open_dataset(index) as ds:
        assert ds.sequences == sorted(d.name for d in seq_dirs)
        for seq in seq_dirs:
            frames = raw_frames(seq)
            fwd, bwd = load_motion_truth(seq)
            g = ds[seq.name]
            errors = []
            for t, (a, b) in enumerate(g["window"][()]):
                blur = g["blur"][t].astype(np.float64)
                assert np.abs(blur - gamma_blur(frames[a:b + 1])).max() <= 1
                np.testing.assert_array_equal(g["sharp"][t], frames[a + centre_offset(b - a + 1)])
                truth = analytic_mmp(fwd, bwd, a, b)
                err = np.abs(g["mmp"][t].astype(np.float64) - truth)[border:-border, border:-border]
                errors.append(err.mean())
            assert np.mean(errors) <= max_mae, (seq.name, errors)
            assert g["mmp"].dtype == np.float16 and g["blur"].dtype == np.uint8


@pytest.fixture(scope="module")
def truth_footage(footage_factory):
    return footage_factory(sequences=2, frames=15, size=(160, 96), seed=5, split=False, images=UNSEEN_IMAGES)


def test_blur_sharp_and_mmp_match_independent_truth(truth_footage, tmp_path):
    out = tmp_path / "X.h5"
    res = synthesize(truth_footage, out, flow="dis", frames="7", stride=7, crf="gamma2.2", seed=1, progress=False)
    assert res.written == ["GOPR9001_11_00", "GOPR9002_11_00"] and res.windows == 4
    seqs = sorted(p for p in truth_footage.iterdir() if p.is_dir())
    check_truth(out, seqs, centre_offset=lambda n: (n - 1) // 2)
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["sequences/GOPR9001_11_00/window"][()], [[0, 6], [7, 13]])
    assert hf.validate(out) == []


@pytest.mark.parametrize("crf", ["gamma2.2", "srgb", "linear", "table"])
def test_blur_from_cached_linear_frames_equals_blur_window(crf, tmp_path):
    if crf == "table":
        np.save(tmp_path / "c.npy", np.linspace(0, 1, 256) ** 1.7)
        crf = str(tmp_path / "c.npy")
    curve = get_crf(crf)
    frames = list(np.random.default_rng(0).integers(0, 256, (9, 20, 30, 3), dtype=np.uint8))
    lin = [curve.to_linear(f) for f in frames]
    np.testing.assert_array_equal(blur_from_linear(lin, curve), blur_window(frames, curve))


def test_window_lengths_strides_and_centres(sample_footage, tmp_path):
    seq = sample_footage / "train" / "GOPR9001_11_00"
    frames = raw_frames(seq)
    out = tmp_path / "dense.h5"
    synthesize(seq, out, flow="dis", frames="3-5", stride=1, seed=7, progress=False)
    with h5py.File(out) as f:
        g = f["sequences/GOPR9001_11_00"]
        win = g["window"][()]
        n = win[:, 1] - win[:, 0] + 1
        np.testing.assert_array_equal(win[:, 0], np.arange(len(win)))  # stride 1: one window per start frame
        assert n.min() >= 3 and n.max() <= 5 and len(set(n.tolist())) > 1  # N drawn from 3-5
        assert win[-1, 1] <= 15
        for t, (a, b) in enumerate(win):  # even N: the earlier of the two middle frames
            np.testing.assert_array_equal(g["sharp"][t], frames[a + (b - a) // 2])
        assert tuple(f.attrs["frames"]) == (3, 5) and f.attrs["stride"] == 1
    out2 = tmp_path / "video.h5"  # default stride = N: consecutive, non-overlapping
    synthesize(seq, out2, flow="dis", frames="3-5", seed=7, progress=False)
    with h5py.File(out2) as f:
        win = f["sequences/GOPR9001_11_00/window"][()]
        np.testing.assert_array_equal(win[1:, 0], win[:-1, 1] + 1)
        assert win[0, 0] == 0 and f.attrs["stride"] == 0


def test_parts_split_deterministically_and_together_equal_a_full_run(sample_footage, tmp_path):
    seqs = discover_sequences(sample_footage)
    halves = [select_part(seqs, (i, 2)) for i in (1, 2)]
    assert sorted(s.name for h in halves for s in h) == [s.name for s in seqs]
    assert not {s.name for s in halves[0]} & {s.name for s in halves[1]}
    assert parse_part("2/3") == (2, 3) and parse_part(None) == (1, 1)
    full = tmp_path / "full" / "X.h5"
    synthesize(sample_footage, full, flow="dis", frames="5", seed=2, progress=False)
    split = tmp_path / "parts" / "X.h5"
    r1 = synthesize(sample_footage, split, flow="dis", frames="5", seed=2, part="1/2", progress=False)
    assert r1.indexed == sorted(s.name for s in halves[0])  # the index lists what is there so far
    r2 = synthesize(sample_footage, split, flow="dis", frames="5", seed=2, part="2/2", progress=False)
    assert r2.indexed == [s.name for s in seqs]
    assert contents(split) == contents(full)


def test_workers_give_the_same_bytes(sample_footage, tmp_path):
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    synthesize(sample_footage, one, flow="dis", frames="4-6", seed=3, workers=1, progress=False)
    res = synthesize(sample_footage, two, flow="dis", frames="4-6", seed=3, workers=2, progress=False)
    assert os.getpid() not in res.pids  # the sequences really ran in worker processes
    for name in ("GOPR9001_11_00", "GOPR9002_11_00", "GOPR9003_11_00"):
        assert hf.shard_path(one, name).read_bytes() == hf.shard_path(two, name).read_bytes()


def test_resume_after_interruption_equals_a_full_run(sample_footage, tmp_path):
    full = tmp_path / "full" / "X.h5"
    synthesize(sample_footage, full, flow="dis", frames="5", seed=4, progress=False)
    out = tmp_path / "resumed" / "X.h5"
    shards = hf.shards_dir(out)
    shards.mkdir(parents=True)
    # what a kill leaves: one finished shard, a half-written temporary of the next, no index
    shutil.copy(hf.shard_path(full, "GOPR9001_11_00"), shards)
    kept = os.stat(shards / "GOPR9001_11_00.h5").st_mtime_ns
    hf.temp_path(shards / "GOPR9002_11_00.h5").write_bytes(b"\x89HDF\r\n half of a shard")
    res = synthesize(sample_footage, out, flow="dis", frames="5", seed=4, progress=False)
    assert res.resumed == ["GOPR9001_11_00"] and res.written == ["GOPR9002_11_00", "GOPR9003_11_00"]
    assert os.stat(shards / "GOPR9001_11_00.h5").st_mtime_ns == kept  # not rewritten
    assert sorted(p.name for p in shards.iterdir()) == [f"GOPR900{i}_11_00.h5" for i in (1, 2, 3)]
    assert contents(out) == contents(full)
    again = synthesize(sample_footage, out, flow="dis", frames="5", seed=4, progress=False)
    assert again.written == [] and len(again.resumed) == 3
    with pytest.raises(SettingsMismatch, match=r"X\.h5.*seed: file has 4, asked for 5"):
        synthesize(sample_footage, out, flow="dis", frames="5", seed=5, progress=False)
    assert contents(out) == contents(full)


def test_mismatched_shard_is_refused_even_without_an_index(sample_footage, tmp_path):
    out = tmp_path / "X.h5"
    synthesize(sample_footage, out, flow="dis", frames="5", seed=4, part="1/3", progress=False)
    out.unlink()
    with pytest.raises(SettingsMismatch, match=r"GOPR9001_11_00\.h5.*crf"):
        synthesize(sample_footage, out, flow="dis", frames="5", seed=4, crf="srgb", progress=False)


def test_index_rebuild_on_demand(sample_footage, tmp_path):
    out = tmp_path / "X.h5"
    synthesize(sample_footage, out, flow="dis", frames="5", seed=4, progress=False)
    before = contents(out)
    out.unlink()
    assert rebuild_index(out) == ["GOPR9001_11_00", "GOPR9002_11_00", "GOPR9003_11_00"]
    assert contents(out) == before


@pytest.mark.slow
def test_sigkill_leaves_no_partial_shard_and_rerun_equals_full_run(footage_factory, tmp_path):
    raw = footage_factory(sequences=3, frames=40, size=(160, 96), seed=9, split=False)
    full = tmp_path / "full" / "X.h5"
    synthesize(raw, full, flow="dis", frames="5", stride=1, seed=1, progress=False)
    out = tmp_path / "killed" / "X.h5"
    code = ("import sys; from mmpdata.pipeline import synthesize; "
            "synthesize(sys.argv[1], sys.argv[2], flow='dis', frames='5', stride=1, seed=1, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(raw), str(out)])
    shards = hf.shards_dir(out)
    deadline = time.time() + 60
    while time.time() < deadline and not (shards.is_dir() and hf.list_shards(out)):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = hf.list_shards(out)
    assert 1 <= len(done) < 3, "kill the run after its first shard, before the last"
    for p in done:  # whatever carries a final name is complete
        assert hf.shard_status(p, None) == "complete"
    synthesize(raw, out, flow="dis", frames="5", stride=1, seed=1, progress=False)
    assert contents(out) == contents(full)
    assert not [p for p in shards.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_must_show_320x192_against_truth(footage_factory, tmp_path):
    """Issue 2 must-show: two unseen 320x192 sequences of 40 frames, --frames 7 --stride 7 --seed 1."""
    raw = footage_factory(sequences=2, frames=40, size=(320, 192), seed=11, split=False, images=UNSEEN_IMAGES)
    out = tmp_path / "X.h5"
    synthesize(raw, out, flow="dis", frames="7", stride=7, crf="gamma2.2", seed=1, progress=False)
    check_truth(out, sorted(p for p in raw.iterdir() if p.is_dir()), centre_offset=lambda n: (n - 1) // 2)


def test_raft_with_local_weights_through_the_pipeline(sample_footage, tmp_path):
    import torch
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    weights = tmp_path / "raft_small.pt"
    torch.save(raft_small(weights=None).state_dict(), weights)
    seq = sample_footage / "train" / "GOPR9001_11_00"
    out = tmp_path / "X.h5"
    torch.set_num_threads(1)
    synthesize(seq, out, flow="raft-small", flow_weights=str(weights), flow_iters=2, frames="3", stride=6,
               seed=0, device="cpu", batch=4, progress=False)
    with hf.open_dataset(out) as ds:
        flow = ds.attrs["flow"]
        assert flow["estimator"] == "raft-small" and flow["iterations"] == 2
        assert flow["weights"].startswith("file:raft_small.pt")
        g = ds["GOPR9001_11_00"]
        np.testing.assert_array_equal(g["window"][()], [[0, 2], [6, 8], [12, 14]])
        mmp = g["mmp"][()].astype(np.float32)
        assert mmp.shape == (3, 48, 64) and np.isfinite(mmp).all() and (mmp >= 0).all()
    assert hf.validate(out) == []
    # the same file resumes; another estimator is refused
    assert synthesize(seq, out, flow="raft-small", flow_weights=str(weights), flow_iters=2, frames="3", stride=6,
                      seed=0, device="cpu", progress=False).resumed == ["GOPR9001_11_00"]
    with pytest.raises(SettingsMismatch, match="flow"):
        synthesize(seq, out, flow="dis", frames="3", stride=6, seed=0, progress=False)


def test_raft_random_weights_through_the_pipeline(sample_footage, tmp_path):
    import torch

    torch.set_num_threads(1)
    seq = sample_footage / "test" / "GOPR9003_11_00"
    out = tmp_path / "X.h5"
    synthesize(seq, out, flow="raft-large", flow_weights="random", flow_iters=1, frames="2", stride=8, seed=0,
               device="cpu", progress=False)
    with hf.open_dataset(out) as ds:
        assert ds.attrs["flow"]["estimator"] == "raft-large" and ds.attrs["flow"]["weights"] == "random"
        assert ds["GOPR9003_11_00"]["mmp"].shape == (2, 48, 64)


def test_frame_source_decodes_each_frame_once_in_threads(sample_sequence, monkeypatch):
    import mmpdata.pipeline as pl

    calls = []
    real = pl.read_image
    monkeypatch.setattr(pl, "read_image", lambda p: calls.append(p) or real(p))
    (seq,) = discover_sequences(sample_sequence)
    wanted = [0, 1, 2, 5, 6, 7, 12]  # windows with gaps (stride > N) need only these
    src = pl.FrameSource(seq, wanted, threads=3, lookahead=4)
    frames = raw_frames(sample_sequence)
    for i in wanted:
        np.testing.assert_array_equal(src.get(i), frames[i])
        np.testing.assert_array_equal(src.get(i), frames[i])  # cached, not decoded again
        src.release_before(i)
    src.close()
    assert sorted(calls) == [seq.frames[i] for i in wanted] and src.decoded == len(wanted)


def test_video_input(tmp_path, sample_sequence):
    import imageio_ffmpeg

    frames = raw_frames(sample_sequence)[:12]
    video = tmp_path / "clip.mp4"
    writer = imageio_ffmpeg.write_frames(str(video), (64, 48), fps=240, quality=10, macro_block_size=16)
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()
    out = tmp_path / "X.h5"
    res = synthesize(video, out, flow="dis", frames="3", seed=0, progress=False)
    assert res.written == ["clip"] and res.windows == 4
    (seq,) = discover_sequences(video)
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["sequences/clip/window"][()], [[0, 2], [3, 5], [6, 8], [9, 11]])
        np.testing.assert_array_equal(f["sequences/clip/sharp"][2], seq.read(7))  # centre of [6, 8]
