"""Commands: deblur, show, import (thin wrappers over mmpmodel.inference / mmpmodel.visualize / mmpdata.importers)."""
from __future__ import annotations

from pathlib import Path

import click

from cli.main import main
from cli.params import ENDS_OPTION, SELF_ENSEMBLE
from mmpdata.video import CODECS

_PATH = click.Path(path_type=Path)
_EXISTING = click.Path(exists=True, path_type=Path)


@main.command("deblur")
@click.option("--model", "checkpoint", default=None,
              help="Deblurring checkpoint: a file or a registered name (`mmp weights`). Default: the bundled "
                   "sample-deblur, trained on synthetic sample footage (for real footage use published or your own "
                   "weights).")
@click.argument("input", type=_EXISTING)
@click.argument("output", type=_PATH)
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available, else cpu).")
@click.option("--fps", default=None,
              help="Frame rate of a video output, e.g. 25 or 24000/1001 (default: the input's exact rate; 30 for "
                   "frame folders).")
@click.option("--codec", type=click.Choice(list(CODECS)), default="libx264", show_default=True,
              help="Video encoder: libx264 (H.264), libx264rgb (H.264 in RGB, lossless at --crf 0), "
                   "ffv1 (lossless RGB; .mkv/.avi).")
@click.option("--crf", type=int, default=None,
              help="Quality 0-51, lower is better, 0 lossless (default 18 for libx264: visually near-lossless; "
                   "0 for libx264rgb).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="Number format of the network: auto = bf16 on CPUs with native bf16 (AVX512-BF16/AMX), fp16 on "
                   "CUDA, else fp32 (docs/benchmarks.md: speed and the measured quality cost).")
@click.option("--tile", type=click.IntRange(16), default=None,
              help="Run the frames in tiles of NxN pixels (a multiple of 16) to bound memory on large frames.")
@click.option("--tile-overlap", type=click.IntRange(0), default=None,
              help="Context pixels around each tile (a multiple of 16; default: the network's reach in one frame).")
@SELF_ENSEMBLE
@ENDS_OPTION
def deblur_cmd(checkpoint, input, output, device, fps, codec, crf, precision, tile, tile_overlap, ensemble, ends):
    """Deblur a video file or frame folder into a video (OUTPUT ends in .mp4/.mkv/.mov/.avi) or a new folder of
    PNGs (000000.png, ...): one output frame per decoded input frame, the input's frame rate and audio kept."""
    from mmpmodel.inference import deblur_video
    from mmpmodel.weights import default_weights, resolve_weights

    checkpoint = resolve_weights(checkpoint, "deblur") if checkpoint else default_weights("deblur")
    result = deblur_video(checkpoint, input, output, device=device, fps=fps, codec=codec, crf=crf,
                          precision=precision, tile=tile, overlap=tile_overlap, ensemble=ensemble, ends=ends)
    extra = f", {result['fps']} fps, audio {result['audio']}" if "fps" in result else ""
    click.echo(f"{result['frames']} frames -> {result['output']} ({result['seconds_per_frame']:.3f} s/frame{extra})")


@main.command("show")
@click.argument("source", type=_EXISTING)
@click.option("--prior", default=None,
              help="MMP-Net (or deblurring) checkpoint: a file or a registered name (`mmp weights`). Default: the "
                   "bundled sample-prior, trained on synthetic sample footage.")
@click.argument("out_dir", type=_PATH)
@click.option("--every", type=click.IntRange(1), default=1, show_default=True, help="Show every N-th frame.")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="At most this many frames per sequence.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available, else cpu).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="Number format of MMP-Net: auto = bf16 on CPUs with native bf16, fp16 on CUDA, else fp32.")
def show_cmd(source, prior, out_dir, every, max_frames, device, precision):
    """MMP heat maps over the frames of an mmp-h5 file or a video/frame folder, as OUT_DIR/<sequence>/000000.png..."""
    from mmpmodel.visualize import show
    from mmpmodel.weights import default_weights, resolve_weights

    prior = resolve_weights(prior) if prior else default_weights("prior")
    result = show(source, prior, out_dir, every=every, max_frames=max_frames, device=device, precision=precision)
    click.echo(f"{result['images']} images -> {result['out']}")


@main.command("import")
@click.option("--layout", required=True, type=click.Choice(["gopro", "bsd"]), help="Benchmark folder layout.")
@click.argument("src", type=_EXISTING)
@click.option("--out", required=True, type=_PATH, help="mmp-h5 file to write (+ OUT.shards/).")
@click.option("--blur", type=click.Choice(["blur_gamma", "blur"]), default="blur_gamma", show_default=True,
              help="GOPRO_Large: which blurry frames to import.")
def import_cmd(layout, src, out, blur):
    """Convert GOPRO_Large or BSD folders into mmp-h5 (blur + sharp, no MMP); frames pair by their index."""
    from mmpdata.importers import import_benchmark

    names = import_benchmark(layout, src, out, blur=blur)
    click.echo(f"{len(names)} sequences -> {out}")
