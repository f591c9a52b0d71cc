"""Commands: plot (training curves of runs), score (PSNR/SSIM of finished outputs against sharp frames)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from cli.main import main
from cli.params import OUTPUT_FILE

_EXISTING = click.Path(exists=True, path_type=Path)


@main.command("plot", short_help="Loss and validation curves of run folders, as a PNG.")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="PNG file to write (one panel for the loss, one per validation metric).")
@click.option("--label", "labels", multiple=True,
              help="Legend name of each run, in order (repeat the option; default: the run folder names).")
def plot_cmd(runs, out, labels):
    """Draw loss and validation curves of one or more run folders (RUN/metrics.jsonl) into a PNG, with the blurry
    input's PSNR (or the mean predictor's L1) as a dashed reference line when the run logged it."""
    from mmpdata.errors import InputError
    from mmpmodel.plots import plot_runs

    if labels and len(labels) != len(runs):
        raise InputError(f"{len(labels)} --label for {len(runs)} runs; give one per run or none")
    result = plot_runs(runs, out, labels=labels or None)
    click.echo(f"{len(result['runs'])} run(s), panels {', '.join(result['panels'])} -> {result['out']}")


@main.command("score", short_help="PSNR/SSIM of finished outputs against sharp frames.")
@click.argument("output_dir", type=_EXISTING)
@click.argument("target", type=_EXISTING)
@click.option("--y-channel", is_flag=True,
              help="Score the BT.601 luma Y (16-235, rounded) instead of RGB, as papers that report Y-PSNR do.")
@click.option("--crop", type=click.IntRange(0), default=0, show_default=True,
              help="Leave out this many pixels at every border of both images.")
@click.option("--protocol", type=click.Choice(["all", "paper"]), default="all", show_default=True,
              help="all: every output frame; paper: skip the first/last 2 frames of each sequence, as eval does.")
@click.option("--json", "json_path", type=OUTPUT_FILE, default=None,
              help="Also write the result to this JSON file.")
def score_cmd(output_dir, target, y_channel, crop, protocol, json_path):
    """PSNR/SSIM of finished output frames in OUTPUT_DIR against the sharp frames in TARGET (a folder of frames or
    of per-sequence folders, or an mmp-h5 file), with eval's metrics: RGB uint8, full frame by default."""
    from mmpmodel.runs import write_json
    from mmpmodel.score import score

    result = score(output_dir, target, y_channel=y_channel, crop=crop, protocol=protocol)
    if json_path is not None:
        write_json(json_path, result)
    click.echo(json.dumps(result, indent=2, sort_keys=True))
