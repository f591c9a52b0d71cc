"""Flow estimators: DIS against analytic motion; RAFT plumbing (random weights, CPU, tiny frames); spec errors."""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from mmpdata import flow as flowmod
from mmpdata.errors import InputError
from mmpdata.flow import DISEstimator, RAFTEstimator, make_estimator


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def empty_torch_hub(tmp_path, monkeypatch):
    """torchvision's weight cache pointed at an empty folder: the published weights are 'not downloaded'."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


def shifted_pair(tx, ty, size=(128, 96)):
    """A textured crop and the same crop moved by (tx, ty) px: the true flow first -> second is (tx, ty) everywhere."""
    photo = data.astronaut()
    base = np.float32([[1, 0, -150], [0, 1, -60]])
    moved = base.copy()
    moved[:, 2] += (tx, ty)
    first = cv2.warpAffine(photo, base, size, flags=cv2.INTER_CUBIC)
    second = cv2.warpAffine(photo, moved, size, flags=cv2.INTER_CUBIC)
    return first, second


def random_frames(count, h, w, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(count)]


# ---------------------------------------------------------------- DIS

@pytest.mark.parametrize("tx,ty", [(1.3, -0.6), (-2.7, 0.4), (0.25, 0.0)])
def test_dis_recovers_subpixel_translation(tx, ty):
    first, second = shifted_pair(tx, ty)
    est = make_estimator("dis")
    fl = est.flow([first, second], [second, first])
    assert fl.shape == (2, 96, 128, 2) and fl.dtype == np.float32
    inner = (slice(16, -16), slice(16, -16))
    for f, sign in zip(fl, (1, -1)):
        err = np.hypot(f[..., 0][inner] - sign * tx, f[..., 1][inner] - sign * ty)
        assert err.mean() < 0.1, err.mean()
        assert np.median(err) < 0.05


def test_dis_magnitudes_are_flow_lengths_and_describe():
    first, second = shifted_pair(1.0, 2.0)
    est = make_estimator("dis")
    assert isinstance(est, DISEstimator)
    fl = est.flow([first], [second])
    np.testing.assert_allclose(est.magnitudes([first], [second]), np.hypot(fl[..., 0], fl[..., 1]), rtol=1e-6)
    d = est.describe()
    assert d["estimator"] == "dis" and d["weights"] == "none" and d["preset"] == flowmod.DIS_DEFAULT_PRESET
    assert d["iterations"] == flowmod.DIS_PRESETS[flowmod.DIS_DEFAULT_PRESET]["variational_refinement_iterations"]
    assert make_estimator("dis", iterations=2).describe()["iterations"] == 2


def test_dis_default_is_finer_than_opencv_fast_preset():
    # the reason the default preset exists: it must beat OpenCV's FAST preset on sub-pixel motion
    first, second = shifted_pair(1.3, -0.6)
    inner = (slice(16, -16), slice(16, -16))

    def err(est):
        f = est.flow([first], [second])[0]
        return np.hypot(f[..., 0] - 1.3, f[..., 1] + 0.6)[inner].mean()

    assert err(DISEstimator()) < err(DISEstimator("fast"))


def test_dis_rejects_mismatched_pairs():
    a, b = random_frames(2, 48, 64)
    with pytest.raises(ValueError):
        make_estimator("dis").flow([a], [b[:40]])
    with pytest.raises(InputError, match="medium"):
        DISEstimator("slowest")


# ---------------------------------------------------------------- make_estimator specs

def test_make_estimator_bad_spec_lists_choices():
    with pytest.raises(InputError) as exc:
        make_estimator("farneback")
    for choice in ("auto", "dis", "raft-large", "raft-small"):
        assert choice in str(exc.value)
    assert "\n" not in str(exc.value)
    with pytest.raises(InputError, match="fp16"):
        make_estimator("dis", precision="fp64")


def test_auto_falls_back_to_dis_on_cpu_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="mmpdata.flow"):
        est = make_estimator("auto", device="cpu")
    assert isinstance(est, DISEstimator) and est.describe()["estimator"] == "dis"
    assert any("DIS" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_auto_falls_back_to_dis_without_weights_even_with_cuda(monkeypatch, empty_torch_hub, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with caplog.at_level(logging.WARNING, logger="mmpdata.flow"):
        est = make_estimator("auto")
    assert isinstance(est, DISEstimator)
    assert any("--flow-weights" in r.getMessage() for r in caplog.records)


def test_cuda_device_without_cuda_is_an_input_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="CUDA"):
        make_estimator("raft-small", weights="random", device="cuda")


# ---------------------------------------------------------------- RAFT (random weights, CPU)

@pytest.mark.parametrize("variant", ["raft-small", "raft-large"])
def test_raft_random_weights_runs_on_odd_tiny_frames(variant):
    torch.manual_seed(0)
    est = make_estimator(variant, weights="random", iterations=2, device="cpu", batch=2)
    assert est.describe() == {"estimator": variant, "weights": "random", "iterations": 2, "precision": "fp32"}
    first, second = random_frames(3, 45, 70), random_frames(3, 45, 70, seed=1)
    fl = est.flow(first, second)
    assert fl.shape == (3, 45, 70, 2) and fl.dtype == np.float32 and np.isfinite(fl).all()
    mags = est.magnitudes(first, second)
    assert mags.shape == (3, 45, 70) and mags.dtype == np.float32
    np.testing.assert_allclose(mags, np.hypot(fl[..., 0], fl[..., 1]), rtol=1e-5, atol=1e-6)


def test_raft_matches_torchvision_model_called_directly():
    """Transforms to [-1, 1], (dx, dy) layout, the last of the refinement predictions, replicate pad/crop."""
    torch.manual_seed(1)
    est = RAFTEstimator("raft-small", "random", iterations=3, device="cpu", batch=4)
    first, second = random_frames(2, 45, 70, seed=2), random_frames(2, 45, 70, seed=3)
    got = est.flow(first, second)

    def prep(frames):
        x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255 * 2 - 1
        # 45x70 -> 128x128 (RAFT's minimum): 83 rows and 58 columns of replicated border, split around the image
        return torch.nn.functional.pad(x, (29, 29, 41, 42), mode="replicate")

    with torch.no_grad():
        preds = est.model(prep(first), prep(second), num_flow_updates=3)
    assert len(preds) == 3
    want = preds[-1][:, :, 41:41 + 45, 29:29 + 70].permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert not np.allclose(want, preds[0][:, :, 41:86, 29:99].permute(0, 2, 3, 1).numpy())


def test_raft_batching_does_not_change_results():
    torch.manual_seed(2)
    est = RAFTEstimator("raft-small", "random", iterations=2, device="cpu", batch=3)
    first, second = random_frames(4, 40, 48, seed=4), random_frames(4, 40, 48, seed=5)
    batched = est.flow(first, second)
    est.batch = 1
    # float32 rounding: oneDNN picks other kernels per batch size (seen: 1.1e-5 px on an AVX2-only CPU); a batching
    # bug (pairs mixed up, padding shared) moves flows by whole pixels
    np.testing.assert_allclose(est.flow(first, second), batched, rtol=1e-5, atol=1e-5)


def test_raft_loads_local_state_dict(tmp_path):
    torch.manual_seed(3)
    source = RAFTEstimator("raft-small", "random", iterations=2, device="cpu")
    path = tmp_path / "raft_small_mine.pth"
    torch.save(source.model.state_dict(), path)
    torch.manual_seed(4)
    other = RAFTEstimator("raft-small", "random", iterations=2, device="cpu")
    loaded = make_estimator("raft-small", weights=str(path), iterations=2, device="cpu")
    first, second = random_frames(2, 48, 64, seed=6), random_frames(2, 48, 64, seed=7)
    want = source.flow(first, second)
    np.testing.assert_array_equal(loaded.flow(first, second), want)
    assert not np.allclose(other.flow(first, second), want)  # a different model would have been noticed
    w = loaded.describe()["weights"]
    assert w.startswith("file:raft_small_mine.pth#sha256=")


def test_raft_bad_weight_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        make_estimator("raft-large", weights=str(tmp_path / "nope.pth"), device="cpu")
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(InputError, match="junk.pth"):
        make_estimator("raft-large", weights=str(junk), device="cpu")
    small = tmp_path / "small.pth"
    torch.save(RAFTEstimator("raft-small", "random", device="cpu").model.state_dict(), small)
    with pytest.raises(InputError, match="raft-large state dict"):
        make_estimator("raft-large", weights=str(small), device="cpu")


def test_raft_without_weights_says_what_to_do(empty_torch_hub):
    with pytest.raises(InputError) as exc:
        make_estimator("raft-large", device="cpu", download=False)
    msg = str(exc.value)
    assert "--flow-weights" in msg and "--flow dis" in msg and "\n" not in msg


def test_raft_failed_download_says_what_to_do(empty_torch_hub, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)  # never touches the network
    with pytest.raises(InputError, match="download failed") as exc:
        make_estimator("raft-small", device="cpu")
    assert "--flow-weights" in str(exc.value)


def test_raft_uses_torchvision_cache_when_present(empty_torch_hub):
    torch.manual_seed(5)
    source = RAFTEstimator("raft-small", "random", iterations=2, device="cpu")
    cached = flowmod.torchvision_cache_path("raft-small")
    assert cached.parent.parent == empty_torch_hub
    cached.parent.mkdir(parents=True)
    torch.save(source.model.state_dict(), cached)
    est = make_estimator("raft-small", iterations=2, device="cpu", download=False)
    assert est.describe()["weights"] == "Raft_Small_Weights.C_T_V2"
    frames = random_frames(2, 48, 64, seed=8)
    np.testing.assert_array_equal(est.flow(frames[:1], frames[1:]), source.flow(frames[:1], frames[1:]))


def test_unreadable_cached_weights_are_an_input_error(empty_torch_hub):
    cached = flowmod.torchvision_cache_path("raft-large")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="delete the file"):
        make_estimator("raft-large", device="cpu", download=False)


def test_reduced_precision_on_cpu_falls_back_to_fp32(caplog):
    with caplog.at_level(logging.WARNING, logger="mmpdata.flow"):
        est = make_estimator("raft-small", weights="random", device="cpu", precision="bf16")
    assert est.describe()["precision"] == "fp32"
    assert any("bf16" in r.getMessage() for r in caplog.records)
