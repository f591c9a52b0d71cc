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


#: errno -> (what happened, what to do) for the faults of the machine an output is written on.
_ENVIRONMENT = {
    28: ("no space left on the device", "free some space or write elsewhere; rerun to resume"),  # ENOSPC
    122: ("disk quota exceeded", "free some space or write elsewhere; rerun to resume"),  # EDQUOT
    30: ("read-only file system", "write to a folder on a writable disk"),  # EROFS
    13: ("permission denied", "write to a folder you may write to"),  # EACCES
    1: ("operation not permitted", "write to a folder you may write to"),  # EPERM
    21: ("is a folder", "give a file name"),  # EISDIR
    20: ("a part of the path is not a folder", "give a path whose parents are folders"),  # ENOTDIR
    27: ("file too large for this file system", "write to another disk"),  # EFBIG
}


def environment_error(exc: BaseException, where=None) -> OutputError | None:
    """An OSError caused by the machine (full disk, quota, read-only disk, no permission, a folder or file in the
    way) as a one-line OutputError naming the file and what to do; None for any other error. h5py reports these as
    OSError or RuntimeError without ``errno`` but with ``errno = N`` in its message, which is read too."""
    import re

    if not isinstance(exc, (OSError, RuntimeError)):  # h5py's flush and torch.save say it with a RuntimeError
        return None
    code = getattr(exc, "errno", None)
    if code is None:
        found = re.search(r"errno\s*=\s*(\d+)", str(exc))
        code = int(found.group(1)) if found else None
    if code not in _ENVIRONMENT:
        return None
    what, fix = _ENVIRONMENT[code]
    name = getattr(exc, "filename", None)
    if not name:
        found = re.search(r"filename = '([^']+)'", str(exc))
        name = found.group(1) if found else where
    return OutputError(f"{name + ': ' if name else ''}cannot write: {what}; {fix}")
