"""Click parameter types shared by the commands: numbers that must be finite and positive, output file paths.

Python's ``float()`` accepts ``nan``, ``inf`` and ``-0``, so ``type=float`` lets ``--k inf`` or ``--lr nan`` through
to a run that then fails an hour later or writes garbage. These types refuse such values when the command line is
parsed (click's usage error: one line naming the option, exit 2). Use::

    from cli.params import POSITIVE_FLOAT, FRACTION, OUTPUT_FILE
    @click.option("--lr", type=POSITIVE_FLOAT, default=3e-4)
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import click

__all__ = ["FiniteFloat", "PositiveFloat", "NonNegativeFloat", "Fraction", "OutputFile", "FINITE_FLOAT",
           "POSITIVE_FLOAT", "NON_NEGATIVE_FLOAT", "FRACTION", "OUTPUT_FILE", "SELF_ENSEMBLE"]


class FiniteFloat(click.ParamType):
    """A float that is neither NaN nor infinite (optionally bounded; subclasses set the bounds)."""

    name = "number"
    #: what the value must be, for the message
    must_be = "a finite number"

    def convert(self, value, param, ctx):
        if isinstance(value, float) and math.isfinite(value) and self.accepts(value):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number; give {self.must_be}", param, ctx)
        if not math.isfinite(number) or not self.accepts(number):
            self.fail(f"{value!r} is not {self.must_be}", param, ctx)
        return number

    def accepts(self, number: float) -> bool:
        return True


class PositiveFloat(FiniteFloat):
    """A finite number > 0: rates, K, frame rates, learning rates, scales."""

    name = "positive number"
    must_be = "a finite number greater than 0"

    def accepts(self, number: float) -> bool:
        return number > 0


class NonNegativeFloat(FiniteFloat):
    """A finite number >= 0: loss weights, weight decay."""

    name = "number >= 0"
    must_be = "a finite number of at least 0"

    def accepts(self, number: float) -> bool:
        return number >= 0


class Fraction(FiniteFloat):
    """A share in [0, 1) (``--val-fraction``): 1 would leave nothing to train on."""

    name = "fraction"
    must_be = "a fraction from 0 up to (not including) 1"

    def accepts(self, number: float) -> bool:
        return 0 <= number < 1


class OutputFile(click.Path):
    """A file to be written: refused at parse time when the path is an existing folder, its parent is a file or not
    writable, so a run does not fail at its very end (``--json results/`` after an hour of evaluation)."""

    def __init__(self):
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        path = Path(value)
        if path.is_dir():
            self.fail(f"{str(path)!r} is a folder; give a file name inside it, such as {str(path / 'result.json')!r}",
                      param, ctx)
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    self.fail(f"{str(parent)!r} is a file, so {str(path)!r} cannot be created inside it", param, ctx)
                if not os.access(parent, os.W_OK | os.X_OK):
                    self.fail(f"{str(path)!r} cannot be written: {str(parent)!r} is not writable (no permission or a "
                              "read-only disk); choose another file", param, ctx)
                break
        return path


FINITE_FLOAT = FiniteFloat()
POSITIVE_FLOAT = PositiveFloat()
NON_NEGATIVE_FLOAT = NonNegativeFloat()
FRACTION = Fraction()
OUTPUT_FILE = OutputFile()

#: ``--ends`` of ``mmp eval`` and ``mmp deblur`` (mmpmodel.mmprnn.ENDS).
ENDS_OPTION = click.option(
    "--ends", type=click.Choice(["reflect", "replicate"]), default=None,
    help="How the first and last frames get the two neighbours per side the network fuses: replicate (the end "
         "frame repeated) or reflect (the frames after it, in reverse). Default: what the model was trained for "
         "(train-deblur --ends; replicate for models trained without).")

#: ``--self-ensemble N`` of ``mmp eval`` and ``mmp deblur``, passed to the command as the int ``ensemble``.
SELF_ENSEMBLE = click.option(
    "--self-ensemble", "ensemble", type=click.Choice(["1", "2", "4", "8"]), default="1", show_default=True,
    callback=lambda ctx, param, value: int(value),
    help="Average this many passes over the video mirrored/transposed (1: off; 2: + left-right mirror; 4: + up-down "
         "mirror and half turn; 8: + the four transposes). N times the time; a few hundredths of a dB for the bundled "
         "weights (docs/benchmarks.md).")
