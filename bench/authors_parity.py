"""Issue 12's must-show: the authors' own code and ours give the same frames from the same checkpoint.

For each copy of their code (BSD copy: A3B4C16, variant bsd; top-level GOPRO copy: A9B10C18, variant gopro):

1. build THEIR model (``model.model.Model`` imported from the checkout at run time) with random weights, and a
   random MMP-Net file at ``./model_best.pth.tar`` where their RDBCell loads it (its BatchNorm statistics measured
   on the frames, then perturbed, so the map depends on the input; perturbed again inside the MMP-RNN, as their
   training drifted them);
2. save a checkpoint exactly as their ``train/dp.py`` does (``DataParallel`` state_dict, epoch, model,
   register_dict, Adam optimizer and cosine scheduler states);
3. ``mmp import-weights SRC --variant V --out DST.pt`` and ``mmp deblur --model DST.pt FRAMES OUT`` (PNG folder,
   fp32, CPU) on 8 frames of 128x96 RGB PNGs;
4. run their model on the same frames as their test code feeds them (x/255 - 0.5; the BSD copy BGR, as cv2 reads
   them), eval mode;
5. compare frames 2..5: 8-bit differences of our PNGs against their output rounded to 8 bits (and against their
   float output), plus the float outputs of both networks before any rounding.

    mkdir -p /tmp/authors && git -C /work/.mirror/sollynoay+MMP-RNN/repo archive HEAD -- \\
        $(git -C /work/.mirror/sollynoay+MMP-RNN/repo ls-tree -r --name-only HEAD MMP-RNN | grep -v model_best) \\
        | tar -x -C /tmp/authors
    .venv/bin/python bench/authors_parity.py /tmp/authors [--work /tmp/parity] [--seed 0]

Their code is only imported from that path, never copied here. Shims at run time only: ``thop`` (imported by their
MMPRNN.py for profiling) is stubbed when missing, and their Model's hard-coded ``cuda`` device is set to the CPU.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MMP = [str(Path(sys.executable).with_name("mmp"))]  # the installed console script, as a user runs it

#: (name, copy of their code under the checkout, n_a, n_b, n_c, --variant)
CASES = (("bsd", "MMP-RNN/MMP-RNN", 3, 4, 16, "bsd"), ("gopro", "MMP-RNN", 9, 10, 18, "gopro"))
FRAMES, WIDTH, HEIGHT = 8, 128, 96


def make_frames(folder: Path, seed: int) -> np.ndarray:
    """8 frames of 128x96 RGB: a smooth random scene panned a few pixels per frame with motion blur, plus noise;
    saved as 000.png ... 007.png. Returns (8, H, W, 3) uint8 as saved."""
    rng = np.random.default_rng(seed)
    big_h, big_w = HEIGHT + 40, WIDTH + 80
    yy, xx = np.mgrid[0:big_h, 0:big_w] / 20.0
    scene = np.zeros((big_h, big_w, 3))
    for c in range(3):
        for _ in range(6):
            fx, fy, ph = rng.uniform(0.2, 1.5), rng.uniform(0.2, 1.5), rng.uniform(0, 6.3)
            scene[..., c] += np.sin(fx * xx + ph) * np.cos(fy * yy + 2 * ph) / 6
    for _ in range(12):  # hard-edged rectangles: strong gradients for the prior
        y0, x0 = rng.integers(0, big_h - 20), rng.integers(0, big_w - 20)
        scene[y0:y0 + rng.integers(6, 30), x0:x0 + rng.integers(6, 30)] = rng.uniform(-0.5, 0.5, 3)
    scene = np.clip(scene + 0.5, 0, 1)
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for t in range(FRAMES):
        shots = [scene[10 + s // 3:10 + s // 3 + HEIGHT, 5 * t + s:5 * t + s + WIDTH] for s in range(6)]
        img = np.mean(shots, axis=0) + rng.normal(0, 0.01, (HEIGHT, WIDTH, 3))
        img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(img).save(folder / f"{t:03d}.png")
        frames.append(img)
    return np.stack(frames)


@contextlib.contextmanager
def their_code(code_dir: Path, work: Path):
    """Their packages (model, data, ...) importable from ``code_dir``, cwd = ``work``; undone afterwards so the
    other copy (same package names) can be imported next."""
    saved_path, saved_cwd = list(sys.path), os.getcwd()
    saved_modules = set(sys.modules)
    if "thop" not in sys.modules:
        try:
            import thop  # noqa: F401
        except ImportError:  # only their cost_profile uses it
            stub = types.ModuleType("thop")
            stub.profile = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("thop stub"))
            sys.modules["thop"] = stub
    sys.path.insert(0, str(code_dir))
    os.chdir(work)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if name.split(".")[0] in ("model", "data", "para", "train", "utils", "thop"):
                del sys.modules[name]


def calibrate_batchnorm(net: torch.nn.Module, frames: torch.Tensor) -> None:
    """BatchNorm statistics measured on ``frames`` (in their [-0.5, 0.5] input space), as training leaves them:
    with PyTorch's defaults (mean 0, var 1) a randomly initialised UNet's map barely depends on its input, which
    would leave the prior (and the colour order it sees) untested."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration pass
    net.train()
    with torch.no_grad():
        net(frames)
    for m in norms:
        m.momentum = 0.1
    net.eval()


def perturb_batchnorm(net: torch.nn.Module, gen: torch.Generator) -> None:
    """Move every BatchNorm's statistics and affine terms a little (their training drifted the prior's statistics
    away from the MMP-Net file; the defaults would leave the affine terms untested)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.add_(torch.randn(m.running_mean.shape, generator=gen) * 0.1 * m.running_var.sqrt())
                m.running_var.mul_(torch.rand(m.running_var.shape, generator=gen) * 0.4 + 0.8)
                m.weight.copy_(1 + torch.randn(m.weight.shape, generator=gen) * 0.1)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.num_batches_tracked.fill_(int(torch.randint(1, 10000, (1,), generator=gen)))


def build_theirs(code_dir: Path, work: Path, n_a: int, n_b: int, n_c: int, frames: np.ndarray,
                 seed: int) -> tuple[Path, torch.nn.Module]:
    """Build their model, save its checkpoint as train/dp.py does; returns (checkpoint, their network, eval mode)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with their_code(code_dir, work):
        from model.UNet import UNet  # noqa: their module, imported from the checkout

        unet = UNet()
        calibrate_batchnorm(unet, torch.from_numpy(frames).float().permute(0, 3, 1, 2) / 255.0 - 0.5)
        perturb_batchnorm(unet, gen)
        torch.save({"epoch": 400, "state_dict": unet.state_dict()}, work / "model_best.pth.tar")
        from model.model import Model  # their wrapper: Model(para).model is the MMPRNN network
        para = argparse.Namespace(model="MMPRNN", n_features=n_c, n_blocks_a=n_a, n_blocks_b=n_b, future_frames=2,
                                  past_frames=2, activation="gelu", do_skip=True, centralize=True, normalize=True,
                                  profile_H=HEIGHT, profile_W=WIDTH)
        model = Model(para)
        model.model.device = torch.device("cpu")  # their Model hard-codes cuda for the recurrent states
        # Their training leaves the prior's BatchNorm drifted, i.e. not equal to the MMP-Net file: do the same.
        perturb_batchnorm(model.model.cell.prior, gen)
        dp = torch.nn.DataParallel(model)
        optimizer = torch.optim.Adam(dp.parameters(), lr=5e-4)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=500, eta_min=1e-8)
        for p in dp.parameters():  # one Adam step with zero gradients: optimizer state as a run leaves it,
            p.grad = torch.zeros_like(p)  # weights unchanged
        optimizer.step()
        scheduler.step()
        checkpoint = {"epoch": 1, "model": para.model, "state_dict": dp.state_dict(),
                      "register_dict": {"PSNR_valid": {1: 20.0, "max": 20.0, "min": 20.0}},
                      "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        src = work / "checkpoint.pth.tar"
        torch.save(checkpoint, src)
        dp.eval()
        return src, model.model


def their_output(net: torch.nn.Module, frames: np.ndarray, bgr: bool) -> np.ndarray:
    """Their network on (F, H, W, 3) uint8 RGB frames as their test feeds them; outputs for frames 2..F-3 as
    (F-4, H, W, 3) float in 8-bit units, RGB order."""
    x = torch.from_numpy(frames).float().permute(0, 3, 1, 2)  # (F, 3, H, W), RGB
    if bgr:
        x = x.flip(1)  # cv2.imread order
    x = (x / 255.0 - 0.5)[None]  # their normalize(centralize=True, normalize=True, val_range=255)
    with torch.no_grad():
        out = net(x)[0]  # (F-4, 3, H, W) in [-0.5, 0.5] space
    out = (out + 0.5) * 255.0  # their normalize_reverse
    if bgr:
        out = out.flip(1)
    return out.permute(0, 2, 3, 1).numpy().astype(np.float64)


def mmp(args: list[str]) -> str:
    proc = subprocess.run(MMP + args, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"mmp {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout.strip()


def compare(name: str, code_dir: Path, n_a: int, n_b: int, n_c: int, variant: str, work: Path, seed: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    frames_dir = work / "frames"
    frames = make_frames(frames_dir, seed)
    t0 = time.time()
    src, net = build_theirs(code_dir, work, n_a, n_b, n_c, frames, seed=seed)
    theirs = their_output(net, frames, bgr=(variant == "bsd"))
    # mmp deblur gives every frame an output by replicating the end frames twice, so its recurrent state has seen
    # frame 0 three times by frame 2; their test starts at frame 0. The same replicated clip through their code
    # separates that (tiny) difference from the networks'.
    replicated = their_output(net, np.concatenate([frames[:1]] * 2 + [frames] + [frames[-1:]] * 2),
                              bgr=(variant == "bsd"))[2:FRAMES - 2]
    t_theirs = time.time() - t0
    dst, out = work / f"{name}.pt", work / "out"
    t0 = time.time()
    imported = mmp(["import-weights", str(src), "--variant", variant, "--out", str(dst)])
    deblurred = mmp(["deblur", "--model", str(dst), str(frames_dir), str(out), "--device", "cpu",
                     "--precision", "fp32"])  # their code runs fp32; auto would be bf16 on CPUs with native bf16
    t_ours = time.time() - t0
    pngs = sorted(out.glob("*.png"))
    if len(pngs) != FRAMES:
        sys.exit(f"{out}: {len(pngs)} PNGs, expected {FRAMES}")
    ours = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in pngs])[2:FRAMES - 2].astype(np.float64)
    theirs_clipped = np.clip(theirs, 0, 255)
    level = np.abs(ours - np.round(theirs_clipped))
    raw = np.abs(ours - theirs_clipped)
    level_replicated = np.abs(ours - np.round(np.clip(replicated, 0, 255)))

    # The networks before any rounding: our imported model in Python on the same frames.
    from mmpmodel.checkpoint import load_deblur

    model, _ = load_deblur(dst)
    x = torch.from_numpy(frames).float().permute(0, 3, 1, 2).div(255.0)[None]
    with torch.no_grad():
        ours_float = model(x)[0].permute(0, 2, 3, 1).numpy().astype(np.float64) * 255.0
    inside = float(np.mean((theirs > 0) & (theirs < 255)))
    # Their prior on the first frame as their network gets it, and with the colour channels reversed: a map that
    # does not move would leave the prior and the colour order untested.
    x0 = torch.from_numpy(frames[:1]).float().permute(0, 3, 1, 2)
    x0 = (x0.flip(1) if variant == "bsd" else x0) / 255.0 - 0.5
    with torch.no_grad():
        m, m_swapped = net.cell.prior(x0), net.cell.prior(x0.flip(1))
    prior_std, prior_swap = float(m.std()), float((m - m_swapped).abs().max())
    return {"case": name, "preset": model.config.name, "variant": variant, "code": str(code_dir),
            "tensors_in_their_file": len(torch.load(src, map_location="cpu", weights_only=True)["state_dict"]),
            "frames_compared": "2..5", "max_level_diff": float(level.max()), "mean_level_diff": float(level.mean()),
            "pixels_differing": float(np.mean(level > 0)),
            "max_diff_vs_their_float": float(raw.max()), "mean_diff_vs_their_float": float(raw.mean()),
            "replicated_ends_max_level_diff": float(level_replicated.max()),
            "replicated_ends_mean_level_diff": float(level_replicated.mean()),
            "max_float_diff_levels": float(np.abs(ours_float - theirs).max()),
            "their_output_inside_0_255": inside, "their_output_std_levels": float(theirs.std()),
            "their_prior_std": prior_std, "their_prior_max_change_colours_reversed": prior_swap,
            "import": imported, "deblur": deblurred,
            "seconds_theirs": round(t_theirs, 2), "seconds_ours_cli": round(t_ours, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("authors", type=Path, help="checkout of sollynoay/MMP-RNN (holds MMP-RNN/ and MMP-RNN/MMP-RNN/)")
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a new temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--case", choices=[c[0] for c in CASES], action="append", default=None,
                    help="run only this case (repeatable; default: all)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    work = args.work or Path(tempfile.mkdtemp(prefix="authors_parity_"))
    results = []
    for name, sub, n_a, n_b, n_c, variant in CASES:
        if args.case and name not in args.case:
            continue
        code_dir = (args.authors / sub).resolve()
        if not (code_dir / "model" / "MMPRNN.py").is_file():
            sys.exit(f"{code_dir}: no model/MMPRNN.py; pass the root of a checkout of sollynoay/MMP-RNN")
        results.append(compare(name, code_dir, n_a, n_b, n_c, variant, work / name, args.seed))
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
               f"torch {torch.__version__}")
    print(f"authors' code vs mmp import-weights + mmp deblur (PNG, fp32, CPU), {FRAMES} frames {WIDTH}x{HEIGHT}, "
          f"frames 2..5; {machine}; {time.strftime('%Y-%m-%d')}")
    print(f"{'case':<7}{'preset':<16}{'tensors':>8}{'max lvl':>9}{'mean lvl':>10}{'differ':>9}"
          f"{'max float':>11}{'repl max':>10}{'repl mean':>11}{'in 0..255':>11}{'prior std':>11}{'prior swap':>12}")
    ok = True
    for r in results:
        print(f"{r['case']:<7}{r['preset']:<16}{r['tensors_in_their_file']:>8}{r['max_level_diff']:>9.0f}"
              f"{r['mean_level_diff']:>10.4f}{r['pixels_differing']:>9.3%}{r['max_float_diff_levels']:>11.2e}"
              f"{r['replicated_ends_max_level_diff']:>10.0f}{r['replicated_ends_mean_level_diff']:>11.6f}"
              f"{r['their_output_inside_0_255']:>11.1%}{r['their_prior_std']:>11.4f}"
              f"{r['their_prior_max_change_colours_reversed']:>12.4f}")
        ok &= r["max_level_diff"] <= 1 and r["mean_level_diff"] <= 0.05
    print("max/mean lvl, differ: our PNGs vs their output rounded to 8 bits (their test's input, frames 2..5); "
          "max float: both networks' float outputs on the same clip, in 8-bit levels; repl: our PNGs vs their "
          "code fed the clip with end frames replicated as mmp deblur does; in 0..255: share of their output "
          "not clipped; prior std / swap: their prior's map on frame 0 (std over pixels, and its largest change "
          "when the colour channels are reversed)")
    print("must-show (max <= 1 level, mean <= 0.05 levels):", "PASS" if ok else "FAIL")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "date": time.strftime("%Y-%m-%d"), "results": results},
                                        indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
