"""--tile: the receptive radius against autograd, tiled == untiled inside tiles, the grid, bad sizes."""
import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _mmph5 import random_checkpoints
from cli.main import main
from mmpdata.errors import InputError
from mmpmodel.mmpnet import MMPNet
from mmpmodel.mmprnn import MMPRNN, deblur_frames
from mmpmodel.tiling import TiledStepper, _prior_reach, receptive_radius, tile_grid


def lively(preset, seed=0):
    """Random weights large enough that every path carries a gradient (the near-identity start would hide some)."""
    torch.manual_seed(seed)
    model = MMPRNN(preset).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    return model


def reach_of_centre(grad: torch.Tensor, c: int) -> int:
    ys, xs = torch.nonzero(grad > 0, as_tuple=True)
    return max(c - ys.min().item(), ys.max().item() - c, c - xs.min().item(), xs.max().item() - c)


def test_receptive_radius_bounds_the_autograd_reach():
    """The gradient of one output pixel is zero beyond receptive_radius(model, T) and reaches within 16 px of it."""
    model = lively("A1B1C2F5-noprior")
    s, c = 448, 224
    x = torch.rand(1, 1, 3, s, s, requires_grad=True)
    model.forward_all(x)[0, 0, :, c, c].sum().backward()
    reach = reach_of_centre(x.grad.abs().sum(dim=(0, 1, 2)), c)
    radius = receptive_radius(model, frames=1)
    assert reach <= radius <= reach + 16
    assert receptive_radius(model) < radius  # one frame's pass leaves out the state's history


@pytest.mark.parametrize("input_norm, s", [("none", 352), ("local", 512)])
def test_prior_reach_bounds_the_autograd_reach(input_norm, s):
    # with input_norm="local" the normalisation's two Gaussians reach 3 x (8 + 16) px further
    torch.manual_seed(0)
    net = MMPNet(input_norm=input_norm).eval()
    c = s // 2
    x = torch.rand(1, 3, s, s, requires_grad=True)
    net(x)[0, 0, c, c].backward()
    reach = reach_of_centre(x.grad.abs().sum(dim=(0, 1)), c)
    assert reach <= _prior_reach(net) <= reach + 16


def test_grid_covers_every_pixel_once():
    h, w = 70, 100
    seen = np.zeros((h, w), int)
    for rows, cols, core_rows, core_cols in tile_grid((h, w), 32, 16):
        crop = np.zeros((h, w), int)
        crop[rows, cols] = 1
        assert crop.sum() == (rows.stop - rows.start) * (cols.stop - cols.start)
        core = np.arange(h * w).reshape(h, w)[rows, cols][core_rows, core_cols]
        seen.flat[core.ravel()] += 1
        assert rows.start % 16 == 0 and cols.start % 16 == 0
    assert (seen == 1).all()


@pytest.mark.parametrize("tile, overlap", [(20, 16), (32, 8), (32, -16), (8, 0)])
def test_bad_tiles_are_refused(tile, overlap):
    with pytest.raises(InputError):
        tile_grid((64, 64), tile, overlap)


@pytest.mark.slow
def test_tiled_equals_untiled_when_the_overlap_covers_the_stream():
    """Without MMP-Net the network is translation-equivariant on the 16-px grid: with an overlap of
    receptive_radius(model, T) the stitched stream equals the untiled one; with no overlap it does not."""
    model = lively("A1B1C2F5-noprior", seed=1)
    frames = torch.rand(1, 3, 448, 432)
    full = torch.stack(list(deblur_frames(model, iter(frames), precision="fp32")))
    overlap = -(-receptive_radius(model, frames=1) // 16) * 16
    tiled = torch.stack(list(deblur_frames(model, iter(frames), precision="fp32", tile=144, overlap=overlap)))
    assert (tiled - full).abs().max().item() < 1e-5
    seams = torch.stack(list(deblur_frames(model, iter(frames), precision="fp32", tile=144, overlap=0)))
    assert (seams - full).abs().max().item() > 1e-3


def test_each_tile_is_the_network_on_its_crop():
    """With MMP-Net too: each tile's core is exactly what the network makes of that crop's video."""
    torch.manual_seed(0)
    model = MMPRNN("A1B1C4F5").eval()
    clip = torch.rand(1, 4, 3, 70, 90)
    stepper = TiledStepper(model, 32, 16)
    outs = []
    with torch.no_grad():
        for t in range(4):
            outs += stepper.push(clip[:, t])
        outs += stepper.finish()
        tiled = torch.stack([o for _, o in outs], dim=1)
        for rows, cols, core_rows, core_cols in tile_grid((70, 90), 32, 16):
            crop = model.forward_all(clip[..., rows, cols])
            want = crop[..., core_rows, core_cols]
            got = tiled[..., rows, cols][..., core_rows, core_cols]
            assert torch.allclose(got, want, atol=1e-5)


def test_deblur_command_with_tiles(tmp_path):
    torch.manual_seed(0)
    _, ck, model = random_checkpoints(tmp_path)
    folder = tmp_path / "clip"
    folder.mkdir()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (40, 52, 3), dtype=np.uint8) for _ in range(3)]
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i}.png"), f[:, :, ::-1])
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["deblur", "--model", str(ck), str(folder), str(out), "--tile", "32",
                                    "--tile-overlap", "16", "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    clip = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    want = list(deblur_frames(model, iter(clip), precision="fp32", tile=32, overlap=16))
    for i in range(3):
        got = cv2.imread(str(out / f"{i:06d}.png"))[:, :, ::-1].astype(int)
        assert np.abs(got - np.rint(want[i].permute(1, 2, 0).numpy() * 255)).max() <= 1
    bad = CliRunner().invoke(main, ["deblur", "--model", str(ck), str(folder), str(tmp_path / "o2"), "--tile", "40"])
    assert bad.exit_code == 2 and "multiple of 16" in bad.output
    assert not (tmp_path / "o2").exists()


def test_tiles_and_self_ensemble_compose():
    """Each mirrored member runs its own tiled stream: with a covering overlap the result equals the untiled
    ensemble, and it differs from the single pass."""
    model = lively("A1B1C2F5-noprior", seed=2)
    frames = torch.rand(2, 3, 208, 176)
    overlap = -(-receptive_radius(model, frames=1) // 16) * 16
    full = torch.stack(list(deblur_frames(model, iter(frames), precision="fp32", ensemble=2)))
    tiled = torch.stack(list(deblur_frames(model, iter(frames), precision="fp32", tile=96, overlap=overlap,
                                           ensemble=2)))
    single = torch.stack(list(deblur_frames(model, iter(frames), precision="fp32")))
    assert (tiled - full).abs().max().item() < 1e-5
    assert (single - full).abs().max().item() > 1e-4
