"""The public Python API (mmpmodel.load / Deblurrer / MMPEstimator): one output per frame equal to the network run
on the whole clip, every accepted input type, lazy streaming, MMP maps equal to MMP-Net's, and the functions the CLI
calls giving the CLI's numbers."""
import cv2
import numpy as np
import pytest
import torch

import mmpmodel
from _mmph5 import random_checkpoints, write_learnable_h5
from mmpdata.errors import InputError
from mmpmodel.metrics import tensor_to_uint8


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("api")
    prior_ck, deblur_ck, model = random_checkpoints(root)
    rng = np.random.default_rng(0)
    frames = [cv2.GaussianBlur(rng.integers(0, 256, (20, 28, 3)).astype(np.uint8), (5, 5), 1.5) for _ in range(7)]
    with torch.no_grad():  # independent truth: the network on the whole clip at once, ends replicated
        clip = torch.stack([torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in frames])[None]
        truth = [tensor_to_uint8(o.clamp(0, 1)) for o in model.forward_all(clip)[0]]
    return root, prior_ck, deblur_ck, model, frames, truth


def test_numpy_frames_in_three_lines(setup):
    _, _, ck, _, frames, truth = setup
    # --- user code (two lines)
    deblurrer = mmpmodel.load(ck, device="cpu", precision="fp32")
    outputs = deblurrer.deblur(frames)
    # ---
    assert len(outputs) == len(frames) == 7
    for out, want, frame in zip(outputs, truth, frames):
        assert out.dtype == np.uint8 and out.shape == frame.shape
        assert np.abs(out.astype(int) - want.astype(int)).max() <= 1  # streaming == whole clip (up to rounding)
    assert not all(np.array_equal(o, f) for o, f in zip(outputs, frames))  # the network did something


def test_every_input_type_gives_the_same_frames(setup, tmp_path, monkeypatch):
    _, _, ck, _, frames, _ = setup
    d = mmpmodel.Deblurrer.from_checkpoint(ck, device="cpu", precision="fp32")
    ref = d.deblur(frames)
    stack = d.deblur(np.stack(frames))  # (T, H, W, 3) array -> array
    assert stack.shape == (7, 20, 28, 3) and np.array_equal(stack, np.stack(ref))
    floats = d.deblur([f.astype(np.float32) / 255 for f in frames])  # float arrays in [0, 1] -> float arrays
    assert floats[0].dtype == np.float32 and np.abs(floats[3] * 255 - ref[3]).max() <= 0.5 + 1e-3
    tensors = [torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in frames]
    t_out = d.deblur(tensors)  # (3, H, W) float tensors -> tensors
    assert t_out[0].shape == (3, 20, 28) and t_out[0].dtype == torch.float32
    assert np.array_equal(tensor_to_uint8(t_out[5]), ref[5])
    t_stack = d.deblur(torch.stack(tensors))  # (T, 3, H, W) tensor -> tensor
    assert t_stack.shape == (7, 3, 20, 28)
    u8 = d.deblur([torch.from_numpy(f).permute(2, 0, 1) for f in frames])  # uint8 tensors -> uint8 tensors
    assert u8[2].dtype == torch.uint8 and np.array_equal(u8[2].permute(1, 2, 0).numpy(), ref[2])
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:06d}.png"), f[:, :, ::-1])
    from_folder = d.deblur(folder)  # a frame folder -> uint8 arrays
    assert len(from_folder) == 7 and all(np.array_equal(a, b) for a, b in zip(from_folder, ref))
    from mmpmodel import inference

    def no_reload(*a, **k):
        raise AssertionError("deblur_file loaded the checkpoint again")
    monkeypatch.setattr(inference, "load_deblur", no_reload)
    written = d.deblur_file(folder, tmp_path / "out", progress=False)  # what `mmp deblur` writes, same model
    assert written["frames"] == 7 and written["precision"] == "fp32"  # the Deblurrer's precision carried over
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert len(pngs) == 7 and np.array_equal(cv2.imread(str(pngs[4]))[:, :, ::-1], ref[4])


def test_stream_is_lazy(setup):
    _, _, ck, _, frames, _ = setup
    d = mmpmodel.load(ck, device="cpu")
    pulled = []

    def source():
        for f in frames:
            pulled.append(1)
            yield f
    stream = d.stream(source())
    next(stream)
    assert len(pulled) == 3  # frame 0 comes out once frame 2 has arrived, not after the whole video
    assert len(list(stream)) == 6 and len(pulled) == 7


def test_mmp_maps_equal_mmpnet(setup):
    _, prior_ck, ck, model, frames, _ = setup
    with torch.no_grad():
        want = model.prior(torch.from_numpy(frames[1]).permute(2, 0, 1)[None].float() / 255)[0, 0].clamp(0, 1)
    est = mmpmodel.load(prior_ck, device="cpu", precision="fp32")
    assert isinstance(est, mmpmodel.MMPEstimator)
    m = est.mmp(frames[1])
    assert m.shape == (20, 28) and m.dtype == np.float32
    assert np.allclose(m, want.numpy(), atol=1e-6)
    assert np.allclose(mmpmodel.load(ck, device="cpu").mmp(frames[1]), m, atol=1e-6)  # the deblurrer's own prior
    assert len(est.maps(frames)) == 7


def test_precision_and_tiling_pass_through(setup):
    _, _, ck, _, frames, truth = setup
    d = mmpmodel.load(ck, device="cpu", precision="bf16")
    assert d.precision == "bf16" and "bf16" in repr(d)
    out = d.deblur(frames)
    diff = [np.abs(o.astype(int) - t.astype(int)) for o, t in zip(out, truth)]
    assert len(out) == 7 and max(x.mean() for x in diff) < 1.0  # bf16 weights, fp32 skip: close to fp32
    with pytest.raises(InputError, match="tile-overlap needs --tile"):
        mmpmodel.load(ck, device="cpu", overlap=8)


def test_bad_frames_are_named(setup):
    _, _, ck, _, frames, _ = setup
    d = mmpmodel.load(ck, device="cpu")
    with pytest.raises(InputError, match="frame 2: an array frame must be"):
        d.deblur(frames[:2] + [frames[2][..., 0]] + frames[3:])
    with pytest.raises(InputError, match="for a single frame pass"):
        d.deblur(frames[0])
    with pytest.raises(InputError, match="checkpoint.pt: (checkpoint not found|no such checkpoint)"):
        mmpmodel.load("no/such/checkpoint.pt")


def test_cli_functions_give_the_cli_numbers(setup, tmp_path):
    import json

    from click.testing import CliRunner

    from cli.main import main

    root, _, ck, _, _, _ = setup
    data = write_learnable_h5(tmp_path / "d.h5", names=("s0",), t=6, size=(20, 28))
    res = CliRunner().invoke(main, ["eval", "--model", str(ck), "--data", str(data), "--protocol", "all",
                                    "--device", "cpu", "--json", str(tmp_path / "e.json"), "--save",
                                    str(tmp_path / "saved")])
    assert res.exit_code == 0, res.output
    cli = json.loads((tmp_path / "e.json").read_text())
    py = mmpmodel.evaluate_checkpoint(ck, data, protocol="all", device="cpu", progress=False)
    assert py["psnr"] == cli["psnr"] and py["frames"] == cli["frames"] == 6
    assert abs(mmpmodel.score_outputs(tmp_path / "saved", data, progress=False)["psnr"] - cli["psnr"]) < 0.01


def test_public_names():
    from mmpmodel import api

    assert mmpmodel.__all__ == api.__all__
    for name in mmpmodel.__all__:
        assert getattr(mmpmodel, name) is getattr(api, name)


def test_registry_names_load_the_bundled_weights():
    weights = pytest.importorskip("mmpmodel.weights")
    if "sample-deblur" not in weights.registry():
        pytest.skip("no bundled weights in this checkout")
    d = mmpmodel.load("sample-deblur", device="cpu")
    assert isinstance(d, mmpmodel.Deblurrer) and d.checkpoint == weights.resolve_weights("sample-deblur")
    frames = [np.full((32, 48, 3), 128, np.uint8)] * 3
    assert len(d.deblur(frames)) == 3
    assert isinstance(mmpmodel.load("sample-prior", device="cpu"), mmpmodel.MMPEstimator)
    with pytest.raises(InputError, match="prior weights"):
        mmpmodel.Deblurrer.from_checkpoint("sample-prior")
