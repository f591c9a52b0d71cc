"""An MMP-Net with temporal context (--context 1) wherever a prior runs: eval, show, the Python API, training."""
import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _mmph5 import write_mmp_h5
from cli.main import main
from mmpdata.errors import InputError
from mmpmodel.checkpoint import load_prior, save_checkpoint
from mmpmodel.mmpnet import MMPNet


@pytest.fixture
def context_prior(tmp_path):
    torch.manual_seed(0)
    net = MMPNet(input_norm="local", context=1).eval()
    path = save_checkpoint(tmp_path / "ctx.pt", kind="prior", config=net.config_dict(), model=net.state_dict())
    return path, net


def _stack(frames, t):
    """[t-1, t, t+1] with the missing side mirrored, as (1, 9, H, W) in [0, 1] (hand-written, not the library's)."""
    n = len(frames)
    before = t - 1 if t > 0 else min(t + 1, n - 1)
    after = t + 1 if t < n - 1 else max(t - 1, 0)
    return torch.cat([torch.from_numpy(frames[j]).permute(2, 0, 1)[None].float() / 255 for j in (before, t, after)], 1)


def test_eval_scores_each_frame_with_its_neighbours(context_prior, tmp_path):
    path, net = context_prior
    data = write_mmp_h5(tmp_path / "d.h5", {"a": (4, 32, 48, None), "b": (3, 32, 48, None)})
    res = CliRunner().invoke(main, ["eval", "--model", str(path), "--data", str(data), "--json",
                                    str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "r.json").read_text())
    import h5py
    err, count = 0.0, 0
    with h5py.File(data, "r") as f, torch.no_grad():
        for name in ("a", "b"):
            group = f["sequences"][name]
            blur, mmp = group["blur"][:], np.clip(group["mmp"][:].astype(np.float64), 0, 1)
            for t in range(len(blur)):
                pred = net(_stack(list(blur), t))[0, 0].double().numpy()
                err += float(np.abs(pred - mmp[t]).sum())
                count += pred.size
    assert got["l1"] == pytest.approx(err / count, rel=1e-5)


def test_show_and_the_api_read_a_video_with_neighbours(context_prior, tmp_path):
    import mmpmodel

    path, net = context_prior
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (32, 48, 3), dtype=np.uint8) for _ in range(5)]
    src = tmp_path / "in"
    src.mkdir()
    for t, img in enumerate(frames):
        cv2.imwrite(str(src / f"{t:06d}.png"), img[:, :, ::-1])
    res = CliRunner().invoke(main, ["show", str(src), str(tmp_path / "shown"), "--prior", str(path),
                                    "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "shown").rglob("*.png"))) == 5
    est = mmpmodel.load(path, device="cpu", precision="fp32")
    maps = est.maps(frames)
    with torch.no_grad():
        for t in range(5):
            np.testing.assert_allclose(maps[t], net(_stack(frames, t))[0, 0].clamp(0, 1).numpy(), atol=1e-5)
    with pytest.raises(InputError, match="maps"):
        est.mmp(frames[0])


def test_train_prior_context_is_recorded_and_fine_tuning_keeps_it(tmp_path):
    from mmpmodel.train_prior import train_prior

    torch.set_num_threads(1)
    data = write_mmp_h5(tmp_path / "d.h5", {"a": (6, 32, 32, None), "b": (5, 32, 32, None), "c": (5, 32, 32, None)})
    res = CliRunner().invoke(main, ["train-prior", "--data", str(data), "--out", str(tmp_path / "a"), "--steps", "2",
                                    "--batch-size", "2", "--patch", "32", "--context", "1"])
    assert res.exit_code == 0, res.output
    net, ck = load_prior(tmp_path / "a" / "best.pt")
    assert net.context == 1 and ck["config"]["context"] == 1 and net.head.in_channels == 9
    with pytest.raises(InputError, match="--context 1"):
        train_prior(data, tmp_path / "b", steps=1, batch_size=2, patch=32, progress=False,
                    init_from=tmp_path / "a" / "best.pt")
