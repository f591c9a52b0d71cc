"""Commands: train-prior, train-deblur, recipes, eval (thin wrappers over mmpmodel / mmpdata); deblur, show and import live in
cli/infer.py."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click
from click.core import ParameterSource

from cli.main import main
from cli.params import (ENDS_OPTION, FINITE_FLOAT, FRACTION, NON_NEGATIVE_FLOAT, OUTPUT_FILE, POSITIVE_FLOAT,
                        SELF_ENSEMBLE)
from mmpmodel.train_config import DeblurTrainConfig, PriorTrainConfig, config_fields

_PATH = click.Path(path_type=Path)
_EXISTING = click.Path(exists=True, path_type=Path)


def _echo_json(result: dict) -> None:
    click.echo(json.dumps({k: v for k, v in result.items() if k != "model"}, indent=2, sort_keys=True))


def _is_rank0() -> bool:
    """Under torchrun only rank 0 prints the summary."""
    return int(os.environ.get("RANK", "0")) == 0


# ------------------------------------------------------------------------- options generated from the dataclasses
def _click_type(fld):
    """The click type of one config field, from its annotation and metadata."""
    meta, kind = fld.metadata, str(fld.type).replace(" | None", "")
    if "choices" in meta:
        return click.Choice(list(meta["choices"]))
    if meta.get("path"):
        return _EXISTING if fld.name == "data" else str
    if kind == "int":
        return click.IntRange(meta["min"]) if "min" in meta else int
    if kind == "float":
        if meta.get("fraction"):
            return FRACTION
        if meta.get("positive"):
            return POSITIVE_FLOAT
        return NON_NEGATIVE_FLOAT if meta.get("min") == 0.0 else FINITE_FLOAT
    return str


def _default_text(fld) -> str:
    if fld.default is None:
        return ""
    value = fld.default
    if isinstance(value, bool):
        return f" [default: {'on' if value else 'off'}]"
    return f" [default: {value}]"


def config_options(cls):
    """Decorator: one click option per field of the config dataclass ``cls`` (name --field-name, help from the
    field's metadata). Options default to None; :func:`_explicit` keeps only those given on the command line."""
    def decorate(command):
        for fld in reversed(config_fields(cls)):
            meta = fld.metadata
            if not meta.get("cli", True):
                continue
            help_text = meta["help"] + _default_text(fld)
            if str(fld.type) == "bool":
                flag = meta.get("flag", f"--{fld.name.replace('_', '-')}/--no-{fld.name.replace('_', '-')}")
                command = click.option(flag, fld.name, default=None, help=help_text)(command)
            else:
                command = click.option(f"--{fld.name.replace('_', '-')}", fld.name, type=_click_type(fld),
                                       default=None, help=help_text)(command)
        return command
    return decorate


def _explicit(ctx: click.Context, cls, values: dict) -> dict:
    """The config settings given explicitly on the command line (or through the environment)."""
    names = {f.name for f in config_fields(cls)}
    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    out = {}
    for name, value in values.items():
        if name in names and ctx.get_parameter_source(name) in given and value is not None:
            out[name] = str(value) if isinstance(value, Path) else value
    return out


def _run_options(command):
    """--out, --recipe, --config, --resume: how a run is set up, shared by both training commands."""
    command = click.option("--resume", is_flag=True,
                           help="Continue RUN/last.pt exactly where it stopped, with the settings of RUN/config.json "
                                "(a larger --steps/--epochs extends a finished run).")(command)
    command = click.option("--config", "config_file", type=_EXISTING, default=None,
                           help="Settings from a run's config.json (rerun it); explicit options override them.")(command)
    command = click.option("--recipe", default=None,
                           help="Named settings (see `mmp recipes`): paper-gopro, paper-bsd, cpu; explicit options "
                                "override them.")(command)
    command = click.option("--out", required=True, type=_PATH,
                           help="Run folder: last.pt, best.pt, config.json, metrics.jsonl, val/*.png.")(command)
    return command


@main.command("train-prior")
@_run_options
@config_options(PriorTrainConfig)
@click.option("--no-grad-loss", is_flag=True, help="Plain L1 loss (the same as --grad-weight 0).")
@click.pass_context
def train_prior_cmd(ctx, out, recipe, config_file, resume, no_grad_loss, **values):
    """Train MMP-Net (blurry frame -> motion-magnitude prior)."""
    from mmpmodel.train_config import prepare
    from mmpmodel.train_prior import run_prior

    explicit = _explicit(ctx, PriorTrainConfig, values)
    if no_grad_loss:
        explicit["grad_weight"] = 0.0
    cfg = prepare("prior", out, recipe=recipe, config_file=config_file, resume=resume, explicit=explicit)
    result = run_prior(cfg, out, resume=resume, recipe=recipe)
    if _is_rank0():
        _echo_json(result)


@main.command("train-deblur")
@_run_options
@config_options(DeblurTrainConfig)
@click.option("--model", "model_alias", default=None, hidden=True,
              help="Deprecated alias of --preset (in the other commands --model is a checkpoint).")
@click.option("--no-mm-loss", is_flag=True, help="Drop the motion-magnitude loss (the same as --mm-weight 0).")
@click.pass_context
def train_deblur_cmd(ctx, out, recipe, config_file, resume, model_alias, no_mm_loss, **values):
    """Train MMP-RNN with a frozen MMP-Net."""
    from mmpmodel.train_config import prepare
    from mmpmodel.train_deblur import run_deblur

    explicit = _explicit(ctx, DeblurTrainConfig, values)
    if model_alias is not None:
        click.echo("warning: train-deblur --model is deprecated; use --preset (--model names a checkpoint "
                   "elsewhere)", err=True)
        if "preset" in explicit and explicit["preset"] != model_alias:
            raise click.UsageError("--model (deprecated) and --preset disagree; give --preset only")
        explicit["preset"] = model_alias
    if no_mm_loss:
        explicit["mm_weight"] = 0.0
    cfg = prepare("deblur", out, recipe=recipe, config_file=config_file, resume=resume, explicit=explicit)
    result = run_deblur(cfg, out, resume=resume, recipe=recipe, explicit_prior="prior" in explicit)
    if _is_rank0():
        _echo_json(result)


@main.command("recipes")
@click.option("--task", type=click.Choice(["prior", "deblur"]), default=None, help="Only this stage's recipes.")
@click.option("--json", "as_json", is_flag=True, help="Print the recipes as JSON (values and sources).")
def recipes_cmd(task, as_json):
    """List the training recipes (--recipe NAME) with their values; unset settings keep the defaults."""
    from mmpmodel.train_config import RECIPES

    kinds = [task] if task else ["prior", "deblur"]
    if as_json:
        click.echo(json.dumps({k: {n: {"about": r.about, "values": r.values, "sources": r.sources}
                                   for n, r in RECIPES[k].items()} for k in kinds}, indent=2))
        return
    for kind in kinds:
        for name, recipe in RECIPES[kind].items():
            click.echo(f"train-{kind} --recipe {name}: {recipe.about}")
            for key, value in recipe.values.items():
                source = recipe.sources.get(key)
                click.echo(f"    --{key.replace('_', '-')} {value}" + (f"    ({source})" if source else ""))
            click.echo("")


@main.command("eval")
@click.option("--model", "checkpoint", required=True,
              help="Prior or deblurring checkpoint: a file or a registered name such as sample-deblur (`mmp weights`).")
@click.option("--data", required=True, type=_EXISTING, help="mmp-h5 file to score on.")
@click.option("--protocol", type=click.Choice(["paper", "all"]), default="paper", show_default=True,
              help="paper: skip the first/last 2 frames of each sequence; all: every frame.")
@click.option("--json", "json_path", type=OUTPUT_FILE, default=None, help="Also write the result to this JSON file.")
@click.option("--save", type=_PATH, default=None, help="Write every scored output as DIR/<sequence>/<index>.png (000000.png, 6 digits).")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available, else cpu).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="Number format of the network (fp32: the published numbers); recorded in the JSON.")
@click.option("--prior-source", type=click.Choice(["net", "gt", "zero"]), default="net", show_default=True,
              help="What a deblurring model's MMAM is fed: net (its MMP-Net), gt (the stored MMP, Table 5's bound) or "
                   "zero (no motion); comparing them shows how much the model uses its prior.")
@SELF_ENSEMBLE
@ENDS_OPTION
def eval_cmd(checkpoint, data, protocol, json_path, save, device, precision, prior_source, ensemble, ends):
    """PSNR/SSIM (deblurring) or L1 (prior) with params, GMACs and seconds per frame."""
    from mmpmodel.evaluate import evaluate
    from mmpmodel.runs import write_json
    from mmpmodel.weights import resolve_weights

    checkpoint = resolve_weights(checkpoint)
    result = evaluate(checkpoint, data, protocol=protocol, save=save, device=device, precision=precision,
                      prior_source=prior_source, ensemble=ensemble, ends=ends)
    if json_path is not None:
        write_json(json_path, result)
    _echo_json(result)
