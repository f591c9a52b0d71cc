"""Self-ensemble (``--self-ensemble``): transforms undo exactly, outputs are the average of independently computed
transformed passes, every frame comes out, and the options refuse what they cannot do."""
import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _mmph5 import random_checkpoints, write_learnable_h5
from cli.main import main
from mmpdata.errors import InputError
from mmpmodel.ensemble import ENSEMBLE_SIZES, TRANSFORMS, EnsembleStepper, check_ensemble
from mmpmodel.mmprnn import MMPRNN, deblur_frames


def test_each_transform_is_undone_by_its_inverse_and_the_eight_are_distinct():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)  # not square: a wrong axis shows
    seen = set()
    for name, forward, inverse in TRANSFORMS:
        y = forward(x)
        assert torch.equal(inverse(y), x), name
        seen.add((tuple(y.shape), tuple(y.flatten().tolist())))
    assert len(seen) == 8
    # the quarter turns are what their names say: rot90 moves the top-right corner to the top-left
    rot90 = dict((n, f) for n, f, _ in TRANSFORMS)["rot90"]
    img = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert torch.equal(rot90(img), torch.rot90(img, k=-1))


def _clip(seed=0, frames=7, h=20, w=28):
    rng = np.random.default_rng(seed)
    imgs = [cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 1.5) for _ in range(frames)]
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255


def test_an_identity_network_gives_the_input_back_at_every_size():
    """Decoder off, skip = centre tap: each member returns its (transformed) input, so a wrong inverse would show."""
    torch.manual_seed(0)
    model = MMPRNN("A1B1C4F5").eval()
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
    clip = _clip()
    for size in ENSEMBLE_SIZES:
        outs = list(deblur_frames(model, iter(clip), precision="fp32", ensemble=size))
        assert len(outs) == len(clip)
        assert max((o - c).abs().max().item() for o, c in zip(outs, clip)) < 1e-6, size


def test_the_output_is_the_mean_of_the_transformed_passes():
    torch.manual_seed(1)
    model = MMPRNN("A1B1C4F5").eval()
    clip = _clip(seed=2)
    with torch.no_grad():
        want = sum(inverse(model.forward_all(forward(clip)[None])[0]) for _, forward, inverse in TRANSFORMS[:4]) / 4
        got = torch.stack(list(deblur_frames(model, iter(clip), precision="fp32", ensemble=4)))
        single = torch.stack(list(deblur_frames(model, iter(clip), precision="fp32")))
    assert (got - want.clamp(0, 1)).abs().max().item() < 1e-5
    assert (single - got).abs().max().item() > 1e-4  # the random network is not mirror-symmetric


@pytest.mark.parametrize("size", [0, 3, 16, True])
def test_sizes_other_than_1_2_4_8_are_refused(size):
    with pytest.raises(InputError, match="self-ensemble"):
        check_ensemble(size)
    with pytest.raises(InputError):
        EnsembleStepper(lambda: None, size)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("ens")
    prior_ck, ck, _ = random_checkpoints(root)
    data = write_learnable_h5(root / "d.h5", names=("s0",), t=6, size=(24, 32))
    return root, prior_ck, ck, data


def test_eval_records_the_ensemble_and_scores_every_frame(files, tmp_path):
    _, _, ck, data = files
    runs = {}
    for size in ("1", "2"):
        out = tmp_path / f"e{size}.json"
        res = CliRunner().invoke(main, ["eval", "--model", str(ck), "--data", str(data), "--protocol", "all",
                                        "--json", str(out), "--self-ensemble", size])
        assert res.exit_code == 0, res.output
        runs[size] = json.loads(out.read_text())
    assert runs["1"]["self_ensemble"] == 1 and runs["2"]["self_ensemble"] == 2
    assert runs["1"]["frames"] == runs["2"]["frames"] == 6
    assert runs["1"]["psnr"] != runs["2"]["psnr"]


def test_eval_of_a_prior_refuses_the_ensemble_in_one_line(files):
    _, prior_ck, _, data = files
    res = CliRunner().invoke(main, ["eval", "--model", str(prior_ck), "--data", str(data), "--self-ensemble", "2"])
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "--self-ensemble" in lines[0] and str(prior_ck) in lines[0], res.output


def test_deblur_writes_every_frame_with_the_ensemble(files, tmp_path):
    _, _, ck, _ = files
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, frame in enumerate(_clip(seed=3, frames=6, h=18, w=26)):
        img = (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        cv2.imwrite(str(folder / f"f{i}.png"), img[:, :, ::-1])
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["deblur", "--model", str(ck), str(folder), str(out), "--self-ensemble", "8"])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:06d}.png" for i in range(6)]
    assert cv2.imread(str(out / "000000.png")).shape == (18, 26, 3)


def test_bench_prints_both_sizes_against_the_single_pass(files, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    _, _, ck, data = files
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "rows.json"
    res = subprocess.run([sys.executable, str(root / "bench" / "self_ensemble.py"), "--model", str(ck), "--data",
                          str(data), "--sizes", "2", "1", "--json", str(out)], capture_output=True, text=True,
                         timeout=300, cwd=root)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [r["size"] for r in rows] == [1, 2]  # N = 1 first: the reference of the ratios
    assert rows[0]["gain_over_1"] == 0.0 and rows[0]["time_ratio"] == 1.0
    assert rows[1]["gain_over_1"] == pytest.approx(rows[1]["psnr"] - rows[0]["psnr"])
