"""Commands: synthesize (raw footage → mmp-h5), inspect (summary + validation), index (rebuild from shards)."""
from __future__ import annotations

import json
import sys

import click

from cli.main import main
from cli.params import POSITIVE_FLOAT


@main.command("synthesize")
@click.option("--raw", required=True, type=click.Path(), help="Raw sharp footage: folder of sequence folders "
              "(GOPRO_Large_all layout, optional train/ test/), one sequence folder, or video files.")
@click.option("--out", required=True, type=click.Path(), help="Index file to write, e.g. data/mmp.h5 "
              "(shards go to data/mmp.shards/).")
@click.option("--flow", default="auto", show_default=True,
              help="Flow estimator: auto (RAFT-large on CUDA with weights, else DIS), dis, raft-large, raft-small.")
@click.option("--flow-weights", default=None, help="RAFT state dict (offline use); default: torchvision's weights.")
@click.option("--flow-iters", type=click.IntRange(1), default=None,
              help="RAFT refinement updates (default 20); for DIS the variational refinement iterations.")
@click.option("--frames", default="7-13", show_default=True, help="Frames per window: N (e.g. 9) or a range lo-hi "
              "drawn per window from the seeded RNG.")
@click.option("--stride", type=click.IntRange(1), default=None, help="Frames between window starts (default: the window's N, "
              "non-overlapping; 1 = dense prior data).")
@click.option("--crf", default="gamma2.2", show_default=True, help="Camera response: gamma2.2, srgb, linear, or a "
              ".npy inverse-CRF table.")
@click.option("--k", "k", type=POSITIVE_FLOAT, default=15.0, show_default=True, help="Normalisation K of eq. 3.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the window-length draws.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Parallel sequences (CPU processes; on a "
              "GPU: decoding threads).")
@click.option("--part", default=None, help="i/n: process only part i of n of the sequences (same --out for all "
              "parts).")
@click.option("--batch", type=click.IntRange(1), default=4, show_default=True, help="Flow fields per estimator call (RAFT batch).")
@click.option("--precision", default="fp32", show_default=True, help="RAFT autocast on CUDA: fp32, bf16, fp16.")
@click.option("--device", default=None, help="Torch device for RAFT (default: cuda when available).")
@click.option("--compression", default=None, help="HDF5 compression of the image/MMP datasets (advanced; default "
              "gzip-1, see docs/format.md).")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: when on a terminal).")
def synthesize_cmd(raw, out, flow, flow_weights, flow_iters, frames, stride, crf, k, seed, workers, part, batch,
                   precision, device, compression, progress):
    """Synthesize blurry frames, sharp targets and motion-magnitude maps from raw high-frame-rate footage."""
    from mmpdata import h5format
    from mmpdata.pipeline import synthesize

    result = synthesize(raw, out, flow=flow, flow_weights=flow_weights, flow_iters=flow_iters, frames=frames,
                        stride=stride, crf=crf, k=k, seed=seed, workers=workers, part=part, batch=batch,
                        precision=precision, device=device,
                        compression=compression or h5format.DEFAULT_COMPRESSION, progress=progress)
    click.echo(result.summary())


@main.command("inspect")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--max-windows", type=click.IntRange(0), default=32, show_default=True,
              help="Windows per sequence sampled for MMP statistics (0 = all).")
@click.option("--quick", is_flag=True, help="Only the cheap checks (attributes, shapes, settings); skip reading "
              "every window for damaged chunks and NaN/inf in the MMP maps.")
def inspect_cmd(path, as_json, max_windows, quick):
    """Summarise an mmp-h5 file and validate it (reading every window); exit code 1 when it is damaged."""
    from mmpdata.inspect import format_report, inspect_dataset

    report = inspect_dataset(path, max_windows=max_windows or None, scan=not quick)
    click.echo(json.dumps(report, indent=2, default=str) if as_json else format_report(report))
    if not report["valid"]:
        problems = report["problems"]
        more = f" ({len(problems) - 1} more problems listed above)" if len(problems) > 1 else ""
        click.echo(f"error: {problems[0]}{more}", err=True)
        sys.exit(1)


@main.command("index")
@click.argument("path", type=click.Path())
def index_cmd(path):
    """Rebuild the index PATH from the complete shards in PATH's .shards folder (e.g. after parts on many nodes)."""
    from mmpdata.pipeline import rebuild_index

    names = rebuild_index(path)
    click.echo(f"{path}: index lists {len(names)} sequence(s)")
