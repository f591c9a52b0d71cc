"""Typed errors of the toolkit.

Library code raises these with a one-line message that names the offending path and says what to do;
only ``cli/`` turns them into an exit code. Nothing else in the library decides how a run ends.
"""


class MMPError(Exception):
    """Base class: an error a user can fix; its message is shown as-is, without a traceback."""


class InputError(MMPError):
    """Raw footage, an image, a video or a command option that cannot be used."""


class FormatError(MMPError):
    """A file that is not (valid) mmp-h5 data or not one of our checkpoints."""


class SettingsMismatch(MMPError):
    """An existing output was written with different settings than the ones asked for now."""


class TrainingError(MMPError):
    """A training run that cannot go on (for example a non-finite loss)."""
