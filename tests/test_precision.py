"""--precision: what auto picks, what the cast model holds, what stays float32, and that every command records it."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _mmph5 import random_checkpoints, write_learnable_h5
from cli.main import main
from mmpdata.errors import InputError
from mmpmodel import precision as P
from mmpmodel.mmprnn import MMPRNN, deblur_frames


def small(preset="A1B1C4F5"):
    torch.manual_seed(0)
    model = MMPRNN(preset).eval()
    with torch.no_grad():  # leave the near-identity start so the network's own output matters
        model.decoder[-1].weight.normal_(0, 0.05)
    return model


@pytest.mark.parametrize("text, native", [
    ("processor : 0\nflags : fpu sse2 avx2 avx512f avx512bw\n", False),  # AVX-512 alone is not native bf16
    ("flags : fpu avx512f avx512_bf16 avx512_fp16\n", True),
    ("flags : fpu avx2 amx_bf16 amx_tile\n", True),
    ("Features : fp asimd bf16\n", False),  # neither x86 flag
    ("", False),
])
def test_native_bf16_read_from_cpu_flags(text, native):
    assert P._flags_say_bf16(text) is native


def test_auto_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(P, "cpu_native_bf16", lambda: True)
    assert P.resolve_precision("auto", "cpu") == "bf16"
    assert P.resolve_precision(None, "cpu") == "bf16"
    monkeypatch.setattr(P, "cpu_native_bf16", lambda: False)
    assert P.resolve_precision("auto", "cpu") == "fp32"
    assert P.resolve_precision("bf16", "cpu") == "bf16"  # asked for explicitly: honoured
    with pytest.raises(InputError, match="unknown precision"):
        P.resolve_precision("int8", "cpu")


def test_cast_model_keeps_skip_in_fp32_and_leaves_the_callers_model_alone():
    model = small()
    fast, concrete = P.for_inference(model, "bf16", "cpu")
    assert concrete == "bf16"
    assert fast.head.weight.dtype == torch.bfloat16 and fast.prior.head.weight.dtype == torch.bfloat16
    assert fast.skip.weight.dtype == torch.float32
    assert fast.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.head.weight.dtype == torch.float32 and model.head.weight.is_contiguous()


def test_identity_network_passes_frames_exactly_at_bf16():
    """Decoder silenced, skip = delta: the network is the identity. Its float32 skip and final add keep the
    frame to float32 rounding; a bf16 skip would move it by up to ~1/500."""
    model = MMPRNN("A1B1C4F5").eval()
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
        model.decoder[-1].bias.zero_()
    clip = torch.rand(5, 3, 12, 16)
    outs = list(deblur_frames(model, iter(clip), precision="bf16"))
    assert all(o.dtype == torch.float32 for o in outs)
    assert max((o - f).abs().max().item() for o, f in zip(outs, clip)) < 1e-6
    P_FP32 = P.FP32_MODULES
    try:
        P.FP32_MODULES = ()
        outs = list(deblur_frames(model, iter(clip), precision="bf16"))
    finally:
        P.FP32_MODULES = P_FP32
    assert max((o - f).abs().max().item() for o, f in zip(outs, clip)) > 1e-4


def test_bf16_output_is_close_to_fp32_but_not_the_same():
    model = small()
    clip = torch.rand(6, 3, 16, 20)
    ref = torch.stack(list(deblur_frames(model, iter(clip), precision="fp32")))
    with torch.no_grad():
        whole = model.forward_all(clip[None])[0].clamp(0, 1)
    assert torch.allclose(ref, whole, atol=1e-5)  # channels-last fp32 = the whole-clip network
    low = torch.stack(list(deblur_frames(model, iter(clip), precision="bf16")))
    diff = (low - ref).abs().max().item()
    assert 0 < diff < 0.02


def test_decoded_frames_are_already_channels_last():
    """No layout conversion per frame: an (H, W, 3) array seen as (1, 3, H, W) already has the NHWC layout."""
    img = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    x = torch.from_numpy(img).permute(2, 0, 1).float().div_(255.0)[None]
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_training_autocast():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    with P.autocast("bf16", "cpu"):
        assert conv(x).dtype == torch.bfloat16
    with P.autocast("fp32", "cpu"):
        assert conv(x).dtype == torch.float32


def test_training_layout_is_channels_last_with_the_same_loss_and_gradients():
    """for_training changes only the memory layout: loss and gradients of a training step match the NCHW model's."""
    torch.manual_seed(0)
    ref = MMPRNN("A1B1C8F5")
    fast = P.for_training(MMPRNN("A1B1C8F5"), "cpu")
    fast.load_state_dict(ref.state_dict())
    assert fast.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.prior.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert not ref.head.weight.is_contiguous(memory_format=torch.channels_last)
    clip = torch.rand(2, 5, 3, 16, 20)
    losses = []
    for net in (ref, fast):
        net.train()
        loss = (net(clip) - clip[:, 2:3]).abs().mean()
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for (name, a), b in zip(ref.named_parameters(), fast.parameters()):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-6), name
    assert not torch.equal(ref.head.weight.grad, torch.zeros_like(ref.head.weight.grad))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("prec")
    prior_ck, ck, _ = random_checkpoints(root)
    data = write_learnable_h5(root / "d.h5", names=("s0",), t=5, size=(24, 32))
    return root, prior_ck, ck, data


def test_eval_defaults_to_fp32_and_records_precision(files, tmp_path):
    root, _, ck, data = files
    runs = {}
    for extra in ([], ["--precision", "bf16"]):
        out = tmp_path / f"e{len(extra)}.json"
        res = CliRunner().invoke(main, ["eval", "--model", str(ck), "--data", str(data), "--protocol", "all",
                                        "--json", str(out), *extra])
        assert res.exit_code == 0, res.output
        runs[len(extra)] = json.loads(out.read_text())
    assert runs[0]["precision"] == "fp32" and runs[2]["precision"] == "bf16"
    assert runs[0]["psnr"] != runs[2]["psnr"] and abs(runs[0]["psnr"] - runs[2]["psnr"]) < 1.0


def test_profile_and_show_record_precision(files, tmp_path):
    root, prior_ck, _, data = files
    res = CliRunner().invoke(main, ["profile", "A1B1C4F5", "--size", "32x24", "--time", "--json", "--repeats", "1",
                                    "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("{"))
    assert json.loads(line)["precision"] == "fp32"
    from mmpmodel.visualize import show

    r = show(data, prior_ck, tmp_path / "maps", max_frames=1, precision="bf16", progress=False)
    assert r["precision"] == "bf16" and r["images"] == 1
