"""Commands: train-prior, train-deblur, eval, deblur, show, import (thin wrappers over mmpmodel / mmpdata)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from cli.main import main

_PATH = click.Path(path_type=Path)
_EXISTING = click.Path(exists=True, path_type=Path)


def _length(steps, epochs):
    if steps is not None and epochs is not None:
        raise click.UsageError("give --steps or --epochs, not both")
    return steps, epochs


def _echo_json(result: dict) -> None:
    click.echo(json.dumps({k: v for k, v in result.items() if k != "model"}, indent=2, sort_keys=True))


@main.command("train-prior")
@click.option("--data", required=True, type=_EXISTING, help="mmp-h5 file with MMP (from mmp synthesize).")
@click.option("--out", required=True, type=_PATH, help="Run folder: last.pt, best.pt, config.json, metrics.jsonl.")
@click.option("--steps", type=click.IntRange(1), default=None, help="Optimisation steps.")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Epochs (default 400 when --steps is not given).")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Per process.")
@click.option("--patch", type=click.IntRange(16), default=256, show_default=True, help="Square crop size.")
@click.option("--lr", type=float, default=3e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available).")
@click.option("--resume", is_flag=True, help="Continue RUN/last.pt exactly where it stopped.")
@click.option("--grad-loss/--no-grad-loss", default=True, show_default=True,
              help="Add 0.5 x L1 of image gradients (the reference's loss).")
@click.option("--workers", type=click.IntRange(0), default=None, help="DataLoader workers (default 0 on CPU, 4 on GPU).")
@click.option("--val-fraction", type=float, default=0.1, show_default=True,
              help="Share of sequences held out when none is marked valid.")
@click.option("--val-every", type=click.IntRange(1), default=None, help="Validate every N steps (default: each epoch).")
def train_prior_cmd(data, out, steps, epochs, batch_size, patch, lr, seed, device, resume, grad_loss, workers,
                    val_fraction, val_every):
    """Train MMP-Net (blurry frame -> motion-magnitude prior)."""
    from mmpmodel.train_prior import train_prior

    steps, epochs = _length(steps, epochs)
    result = train_prior(data, out, steps=steps, epochs=epochs, batch_size=batch_size, patch=patch, lr=lr, seed=seed,
                         device=device, resume=resume, grad_weight=0.5 if grad_loss else 0.0, workers=workers,
                         val_fraction=val_fraction, val_every=val_every)
    _echo_json(result)


@main.command("train-deblur")
@click.option("--data", required=True, type=_EXISTING, help="mmp-h5 file (synthesized or imported).")
@click.option("--prior", type=_EXISTING, default=None, help="MMP-Net checkpoint from train-prior.")
@click.option("--model", "preset", required=True, help="Preset such as A7B8C16F8 (A=n_a, B=n_b, C=n_c, F=frames).")
@click.option("--out", required=True, type=_PATH, help="Run folder.")
@click.option("--steps", type=click.IntRange(1), default=None)
@click.option("--epochs", type=click.IntRange(1), default=None, help="Default 1000 when --steps is not given.")
@click.option("--frames", type=click.IntRange(5), default=None, help="Clip length F (default: the preset's).")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Per process.")
@click.option("--patch", type=click.IntRange(16), default=256, show_default=True)
@click.option("--lr", type=float, default=5e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None)
@click.option("--resume", is_flag=True)
@click.option("--no-mm-loss", is_flag=True, help="Drop the motion-magnitude loss (lambda2 = 0).")
@click.option("--no-mmam", is_flag=True, help="Ablation: no motion-magnitude attention.")
@click.option("--no-l-state", is_flag=True, help="Ablation: no non-deblurred feature state l.")
@click.option("--no-prior", is_flag=True, help="Ablation: no MMP-Net in the network.")
@click.option("--prior-source", type=click.Choice(["net", "gt"]), default="net", show_default=True,
              help="gt: feed the stored ground-truth MMP instead of MMP-Net's (Table 5's upper bound).")
@click.option("--workers", type=click.IntRange(0), default=None)
@click.option("--val-fraction", type=float, default=0.1, show_default=True)
@click.option("--val-every", type=click.IntRange(1), default=None)
def train_deblur_cmd(data, prior, preset, out, steps, epochs, frames, batch_size, patch, lr, seed, device, resume,
                     no_mm_loss, no_mmam, no_l_state, no_prior, prior_source, workers, val_fraction, val_every):
    """Train MMP-RNN with a frozen MMP-Net."""
    from mmpmodel.train_deblur import train_deblur

    steps, epochs = _length(steps, epochs)
    result = train_deblur(data, out, preset=preset, prior=prior, steps=steps, epochs=epochs, frames=frames,
                          batch_size=batch_size, patch=patch, lr=lr, seed=seed, device=device, resume=resume,
                          mm_loss=not no_mm_loss, mmam=not no_mmam, l_state=not no_l_state, use_prior=not no_prior,
                          prior_source=prior_source, workers=workers, val_fraction=val_fraction, val_every=val_every)
    _echo_json(result)


@main.command("eval")
@click.option("--model", "checkpoint", required=True, type=_EXISTING, help="Prior or deblurring checkpoint.")
@click.option("--data", required=True, type=_EXISTING, help="mmp-h5 file to score on.")
@click.option("--protocol", type=click.Choice(["paper", "all"]), default="paper", show_default=True,
              help="paper: skip the first/last 2 frames of each sequence; all: every frame.")
@click.option("--json", "json_path", type=_PATH, default=None, help="Also write the result to this JSON file.")
@click.option("--save", type=_PATH, default=None, help="Write every scored output as DIR/<sequence>/<index>.png.")
@click.option("--device", default=None)
def eval_cmd(checkpoint, data, protocol, json_path, save, device):
    """PSNR/SSIM (deblurring) or L1 (prior) with params, GMACs and seconds per frame."""
    from mmpmodel.evaluate import evaluate
    from mmpmodel.runs import write_json

    result = evaluate(checkpoint, data, protocol=protocol, save=save, device=device)
    if json_path is not None:
        write_json(json_path, result)
    _echo_json(result)


@main.command("deblur")
@click.option("--model", "checkpoint", required=True, type=_EXISTING, help="Deblurring checkpoint.")
@click.argument("input", type=_EXISTING)
@click.argument("output", type=_PATH)
@click.option("--device", default=None)
@click.option("--fps", type=float, default=None, help="Frame rate of an mp4 output (default: the input's, or 30).")
def deblur_cmd(checkpoint, input, output, device, fps):
    """Deblur a video file or frame folder into an mp4 (OUTPUT ends in .mp4) or a folder of PNGs."""
    from mmpmodel.inference import deblur_video

    result = deblur_video(checkpoint, input, output, device=device, fps=fps)
    click.echo(f"{result['frames']} frames -> {result['output']} ({result['seconds_per_frame']:.3f} s/frame)")


@main.command("show")
@click.argument("source", type=_EXISTING)
@click.option("--prior", required=True, type=_EXISTING, help="MMP-Net (or deblurring) checkpoint.")
@click.argument("out_dir", type=_PATH)
@click.option("--every", type=click.IntRange(1), default=1, show_default=True, help="Show every N-th frame.")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="At most this many frames per sequence.")
@click.option("--device", default=None)
def show_cmd(source, prior, out_dir, every, max_frames, device):
    """MMP heat maps over the frames of an mmp-h5 file or a video/frame folder, as PNGs."""
    from mmpmodel.visualize import show

    result = show(source, prior, out_dir, every=every, max_frames=max_frames, device=device)
    click.echo(f"{result['images']} images -> {result['out']}")


@main.command("import")
@click.option("--layout", required=True, type=click.Choice(["gopro", "bsd"]), help="Benchmark folder layout.")
@click.argument("src", type=_EXISTING)
@click.option("--out", required=True, type=_PATH, help="mmp-h5 file to write (+ OUT.shards/).")
@click.option("--blur", type=click.Choice(["blur_gamma", "blur"]), default="blur_gamma", show_default=True,
              help="GOPRO_Large: which blurry frames to import.")
def import_cmd(layout, src, out, blur):
    """Convert GOPRO_Large or BSD folders into mmp-h5 (blur + sharp, no MMP)."""
    from mmpdata.importers import import_benchmark

    names = import_benchmark(layout, src, out, blur=blur)
    click.echo(f"{len(names)} sequences -> {out}")
