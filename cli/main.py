"""The click group ``mmp``.

Each command lives in its own ``cli/<area>.py`` and registers itself on :data:`main`. This module turns the
library's typed errors into a one-line message and exit code 2, sets up logging (rank-aware under torchrun), and
lists the commands in ``mmp --help`` grouped by the stage of the workflow they belong to.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys

import click

from mmpdata import __version__
from mmpdata.errors import MMPError, environment_error

# Modules that define commands; each does ``@main.command(...)`` at import time.
COMMAND_MODULES = ("cli.data", "cli.footage", "cli.models", "cli.train", "cli.report", "cli.weights")
OPTIONAL_COMMAND_MODULES = ("cli.infer",)  # present once their owners add them

#: ``mmp --help`` sections, in workflow order; a command not listed here appears under "Other commands".
STAGES = (
    ("Data", ("sample-footage", "synthesize", "import", "inspect", "index")),
    ("Training", ("train-prior", "train-deblur", "recipes")),
    ("Evaluation", ("eval", "score", "plot", "profile")),
    ("Inference", ("deblur", "show")),
    ("Weights", ("weights", "import-weights", "average-weights")),
)


def torchrun_rank() -> int:
    """This process's rank as torchrun announces it (RANK), 0 outside torchrun. Read from the environment so
    logging is set up before any process group exists."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def configure_logging(level: int) -> None:
    """Root logging at ``level`` on rank 0; the other torchrun ranks log WARNING and above only, tagged with their
    rank, so every INFO line appears once."""
    rank = torchrun_rank()
    if rank == 0:
        fmt = "%(levelname)s %(name)s: %(message)s"
    else:
        level = max(level, logging.WARNING)
        fmt = f"%(levelname)s [rank {rank}] %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, force=True)


class _Group(click.Group):
    """A group that prints library errors as ``error: <message>`` (one line, exit 2), never a traceback, and
    lists its commands by stage."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MMPError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except (OSError, RuntimeError) as exc:  # the machine's faults (full disk, permissions) anywhere: one line too
            env = environment_error(exc)
            if env is None:
                raise
            click.echo(f"error: {env}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    def format_commands(self, ctx, formatter):
        commands = {}
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                commands[name] = cmd
        if not commands:
            return
        width = 100  # the first sentence whole (write_dl wraps it), rather than cut at the terminal's edge
        placed = set()
        sections = []
        for title, names in STAGES:
            rows = [(n, commands[n].get_short_help_str(width)) for n in names if n in commands]
            placed.update(n for n, _ in rows)
            if rows:
                sections.append((f"{title} commands", rows))
        rest = [(n, c.get_short_help_str(width)) for n, c in commands.items() if n not in placed]
        if rest:
            sections.append(("Other commands", rest))
        for title, rows in sections:
            with formatter.section(title):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mmp")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def main(verbose: int, quiet: bool) -> None:
    """MMP toolkit: motion-magnitude-prior video deblurring (MMP-RNN, ECCV 2022).

    A typical session: sample-footage or import -> synthesize -> train-prior -> train-deblur -> eval / score / plot
    -> deblur. `mmp COMMAND --help` describes each command."""
    configure_logging(logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO))


for _name in COMMAND_MODULES:
    importlib.import_module(_name)
for _name in OPTIONAL_COMMAND_MODULES:
    if importlib.util.find_spec(_name) is not None:
        importlib.import_module(_name)
