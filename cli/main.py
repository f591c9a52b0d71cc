"""The click group ``mmp``.

Each command lives in its own ``cli/<area>.py`` and registers itself on :data:`main`. This module turns the
library's typed errors into a one-line message and exit code 2, and sets up logging.
"""
from __future__ import annotations

import importlib
import logging
import sys

import click

from mmpdata import __version__
from mmpdata.errors import MMPError

# Modules that define commands; each does ``@main.command(...)`` at import time.
COMMAND_MODULES = ("cli.data", "cli.footage", "cli.models", "cli.train")


class _Group(click.Group):
    """A group that prints library errors as ``error: <message>`` (one line, exit 2), never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MMPError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mmp")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def main(verbose: int, quiet: bool) -> None:
    """MMP toolkit: motion-magnitude-prior video deblurring (MMP-RNN, ECCV 2022)."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


for _name in COMMAND_MODULES:
    importlib.import_module(_name)
