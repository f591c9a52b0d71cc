"""Commands: profile (model size and cost)."""
from __future__ import annotations

import json

import click

from cli.main import main


@main.command("profile")
@click.argument("name")
@click.option("--size", default="1280x720", show_default=True, help="Frame size WIDTHxHEIGHT.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (params, gmacs[, seconds_per_frame]).")
@click.option("--time", "timed", is_flag=True, help="Also measure seconds per frame (random weights).")
@click.option("--device", default=None, help="Device for --time (default: cuda if available, else cpu).")
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(1), help="Timed frames for --time.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="Number format for --time (auto: what mmp deblur uses on this device).")
@click.option("--tile", type=click.IntRange(16), default=None, help="Time tiles of NxN pixels, as mmp deblur --tile.")
def profile(name: str, size: str, as_json: bool, timed: bool, device: str | None, repeats: int, precision: str,
            tile: int | None) -> None:
    """Parameters and GMACs per output frame of NAME ('mmpnet', a preset such as A7B8C16F8, or a checkpoint file).

    GMACs are per frame in steady state (prior + cell + reconstruction), convolutions only, counted with
    torch.utils.flop_counter on the meta device."""
    from mmpmodel.profile import parse_size, profile_model, time_model

    wh = parse_size(size)
    result = {"name": name, "size": list(wh), **profile_model(name, wh)}
    if timed:
        from mmpmodel.mmprnn import default_device
        from mmpmodel.precision import resolve_precision

        result["device"] = str(device or default_device())
        result["precision"] = resolve_precision(precision, result["device"])
        if tile:
            result["tile"] = tile
        result["seconds_per_frame"] = time_model(name, wh, device=device, repeats=repeats,
                                                 precision=result["precision"], tile=tile)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{name} at {wh[0]}x{wh[1]}: {result['params'] / 1e6:.4f} M parameters, "
               f"{result['gmacs']:.2f} GMACs per frame")
    if timed:
        click.echo(f"{result['seconds_per_frame']:.4f} s per frame on {result['device']} ({result['precision']})")
