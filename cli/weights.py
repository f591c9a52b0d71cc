"""Commands about weights: import-weights (the authors' published checkpoints -> ours), average-weights.

The weights registry listing (``mmp weights``) belongs here too.
"""
from __future__ import annotations

from pathlib import Path

import click

from cli.main import main


@main.command("import-weights")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--variant", required=True, type=click.Choice(["gopro", "bsd"]),
              help="Which copy of their code wrote SRC: gopro (top-level code, RGB, fusion channel attention) or "
                   "bsd (their BSD copy: BGR frames, permuted to RGB on import; no fusion attention).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Our checkpoint to write (.pt).")
@click.option("--prior-from", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Take the MMP-Net from this file (their model_best.pth.tar, or another of their MMP-RNN "
                   "checkpoints) instead of SRC's own cell.prior.*.")
@click.option("--prior-only", is_flag=True,
              help="SRC is their MMP-Net file (or an MMP-RNN checkpoint): write only our prior checkpoint.")
def import_weights_cmd(src: Path, variant: str, out: Path, prior_from: Path | None, prior_only: bool) -> None:
    """Import the authors' published MMP-RNN checkpoint SRC (sollynoay/MMP-RNN) as our deblurring checkpoint.

    n_a, n_b, n_c are read from the tensor shapes; every tensor is mapped by name and shape or the import is
    refused. The result works with mmp deblur, eval, profile and fine-tuning; see docs/weights.md."""
    from mmpmodel.published import import_published, import_published_prior

    if prior_only:
        if prior_from is not None:
            raise click.UsageError("--prior-only reads the prior from SRC; drop --prior-from")
        result = import_published_prior(src, out, variant)
        click.echo(f"MMP-Net ({result['prior_source']}, {variant}) -> {result['out']}")
        return
    result = import_published(src, out, variant, prior_from=prior_from)
    click.echo(f"{result['preset']} ({variant}, {result['tensors']} tensors, prior from {result['prior_source']}) "
               f"-> {result['out']}")


@main.command("weights")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as one JSON object.")
def weights_cmd(as_json: bool) -> None:
    """List the registered weights: names that every --model/--prior/--init-from option accepts.

    Each entry gives its architecture, recipe, training data, the command that trained it, measured metrics and
    sha256 (checked whenever the name is used)."""
    import json

    from mmpmodel.weights import registry

    entries = registry()
    if as_json:
        click.echo(json.dumps({name: e.to_dict() for name, e in entries.items()}, indent=2, sort_keys=True))
        return
    if not entries:
        click.echo("no weights are bundled with this installation; see docs/weights.md for the published ones")
        return
    for name, e in entries.items():
        click.echo(f"{name}  ({e.kind}, {e.architecture}, recipe {e.recipe or '-'})")
        if e.description:
            click.echo(f"    {e.description}")
        click.echo(f"    data: {e.data}")
        if e.metrics:
            click.echo("    metrics: " + ", ".join(f"{k} {v}" for k, v in sorted(e.metrics.items())))
        click.echo(f"    sha256 {e.sha256}  file {e.path}")


@main.command("average-weights")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The averaged checkpoint to write (.pt); never one of SOURCES.")
@click.option("--weights", "mix", default=None,
              help="Comma-separated averaging weights, one per checkpoint (normalised to sum 1; default: equal).")
def average_weights_cmd(sources: tuple[str, ...], out: Path, mix: str | None) -> None:
    """Average the weights of SOURCES (two or more checkpoints or registered names of one network) into one.

    For seeds fine-tuned from the same start, or checkpoints along one run ("model soup", checkpoint averaging):
    one network at inference where a self-ensemble runs several passes. The inputs must share kind, architecture
    and (for MMP-RNN) the frozen MMP-Net; the result works with eval, deblur and --init-from (docs/training.md)."""
    from mmpmodel.average import average_checkpoints

    weights = None
    if mix is not None:
        try:
            weights = [float(w) for w in mix.split(",")]
        except ValueError:
            raise click.BadParameter(f"{mix!r} is not a comma-separated list of numbers", param_hint="--weights")
    result = average_checkpoints(list(sources), out, weights)
    parts = ", ".join(f"{Path(s).name} x{w:.3g}" for s, w in zip(result["sources"], result["weights"]))
    click.echo(f"{result['kind']}: {parts} -> {result['out']}")
