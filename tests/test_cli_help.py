"""CLI consistency: `mmp --help` lists every command under its stage, every option says what it does, and `--model`
is a checkpoint everywhere except train-deblur (where it is the deprecated preset alias)."""
import click
from click.testing import CliRunner

from cli.main import STAGES, main

def _commands():
    ctx = click.Context(main)
    return {name: main.get_command(ctx, name) for name in main.list_commands(ctx)}


def test_help_groups_commands_by_stage():
    out = CliRunner().invoke(main, ["--help"]).output
    headings = [f"{title} commands:" for title, _ in STAGES]
    positions = [out.index(h) for h in headings if h in out]
    for h in ("Data commands:", "Training commands:", "Evaluation commands:", "Inference commands:"):
        assert h in out, out
    assert positions == sorted(positions)  # workflow order
    sections = {}
    current = None
    for line in out.splitlines():
        if line.endswith("commands:"):
            current = line[:-1]
        elif current and line.startswith("  ") and not line.startswith("   "):  # not a wrapped help line
            sections.setdefault(current, []).append(line.split()[0])
    listed = [c for names in sections.values() for c in names]
    assert sorted(listed) == sorted(n for n, c in _commands().items() if not c.hidden)  # each exactly once
    for title, names in STAGES:
        for name in names:
            if name in listed:
                assert name in sections[f"{title} commands"], (name, title)


def test_every_option_has_help():
    missing = [f"mmp {name} {'/'.join(p.opts)}" for name, cmd in _commands().items()
               for p in cmd.params if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert not missing, "options without help text: " + ", ".join(missing)
    undocumented = [name for name, cmd in _commands().items() if not (cmd.help or "").strip()]
    assert not undocumented


def test_model_is_a_checkpoint_outside_train_deblur():
    for name, cmd in _commands().items():
        if name == "train-deblur":
            continue
        for p in cmd.params:
            if isinstance(p, click.Option) and "--model" in p.opts:
                assert "checkpoint" in p.help.lower() or "weights" in p.help.lower(), (name, p.help)
