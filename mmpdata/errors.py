"""Typed errors of the toolkit.

Library code raises these with a one-line message that names the offending path and says what to do;
only ``cli/`` turns them into an exit code. Nothing else in the library decides how a run ends.
"""


class MMPError(Exception):
    """Base class: an error a user can fix; its message is shown as-is, without a traceback."""

    def __init__(self, message: str = "", *args):
        # torch's DataLoader re-raises a worker's exception as ``type(exc)("Caught ... Original Traceback ...")``:
        # keep only the original one-line message, so the user still sees one line.
        if isinstance(message, str) and "\nOriginal Traceback" in message:
            last = [line for line in message.strip().splitlines() if line.strip()][-1]
            message = last.split(": ", 1)[1] if last.split(": ", 1)[0].endswith(type(self).__name__) else last
        super().__init__(message, *args)


class InputError(MMPError):
    """Raw footage, an image, a video or a command option that cannot be used."""


class FormatError(MMPError):
    """A file that is not (valid) mmp-h5 data or not one of our checkpoints."""


class SettingsMismatch(MMPError):
    """An existing output was written with different settings than the ones asked for now."""


class TrainingError(MMPError):
    """A training run that cannot go on (for example a non-finite loss)."""


class OutputError(MMPError):
    """An output that cannot be written: a full disk, no permission, a read-only file system, a folder in the way."""
