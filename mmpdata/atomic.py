"""Atomic writes that honour the user's umask.

Every output of the toolkit is written under a hidden temporary name in the destination folder and renamed into
place when complete, so a reader never sees half a file. ``tempfile.mkstemp``/``mkdtemp`` create their files 0600
and folders 0700 whatever the umask, which made checkpoints, JSON and footage folders private to their writer;
the helpers here give the temporary the mode an ordinary ``open()``/``mkdir`` would have (0666/0777 minus the umask).
"""
from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["current_umask", "file_mode", "dir_mode", "apply_umask", "atomic_path", "atomic_open", "write_bytes",
           "make_temp_dir"]

_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _lock:  # set-and-restore is the only portable way; the lock keeps our own threads from racing
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode a new regular file gets from ``open()``: 0666 minus the umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Mode a new folder gets from ``mkdir``: 0777 minus the umask."""
    return 0o777 & ~current_umask()


def apply_umask(path: str | Path) -> None:
    """Give ``path`` (a file or a folder made by mkstemp/mkdtemp) the mode the umask would have given it."""
    path = Path(path)
    os.chmod(path, dir_mode() if path.is_dir() else file_mode())


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; when the block ends without error it replaces ``path``
    (umask mode, contents fsynced by the caller if it cares), otherwise it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        os.chmod(tmp, file_mode())
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", fsync: bool = False, **kwargs):
    """``open()`` a temporary beside ``path`` that replaces ``path`` when the block ends without error."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def make_temp_dir(final: str | Path, suffix: str = ".partial") -> Path:
    """A fresh hidden folder beside ``final`` (``.<name>.XXXX.partial``) with the umask's mode, to be renamed to
    ``final`` when complete."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent))
    os.chmod(tmp, dir_mode())
    return tmp
