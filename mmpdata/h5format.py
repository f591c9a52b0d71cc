"""The mmp-h5 dataset format, version 1: shard writer, index, reader and validation.

A synthesized dataset ``OUT.h5`` is an *index*: its group ``sequences/<name>`` is an HDF5 external link to the root
of the shard ``OUT.shards/<name>.h5``, which holds one sequence (datasets ``blur``, ``sharp``, ``mmp``, ``window``).
Shards are written under a hidden temporary name and renamed when complete, so a shard under its final name is
always whole; the index is rebuilt from the shards present (also atomically), so parts of a run on many machines
can share one shards folder. docs/format.md is the user-facing description.
"""
from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from mmpdata import __version__
from mmpdata.errors import FormatError, SettingsMismatch

log = logging.getLogger(__name__)

FORMAT = "mmp-h5"
FORMAT_VERSION = 1
SHARD_SUFFIX = ".h5"
TEMP_MARK = ".partial"

# dataset -> (dtype, rank, trailing shape); T, H, W are checked against each other separately.
DATASETS = {
    "blur": (np.uint8, 4, (3,)),
    "sharp": (np.uint8, 4, (3,)),
    "mmp": (np.float16, 3, ()),
    "window": (np.int32, 2, (2,)),
}
REQUIRED = ("blur", "sharp")  # imported benchmark data has only these
SYNTH_ATTRS = ("K", "crf", "flow", "frames", "stride", "seed")

# Compression of the image and MMP datasets; one chunk = one window (what a training loader reads).
# Chosen by measurement (bench/synth.py --only d; numbers in docs/format.md): gzip level 1 is read by any HDF5
# tool without plugins, compresses better than lzf/lz4 and writes fast enough to hide behind the flow. The float16
# ``mmp`` additionally gets HDF5's byte shuffle with the built-in filters (ratio 1.8 -> 2.4; a no-op on uint8).
COMPRESSIONS: dict[str, dict] = {
    "none": {},
    "gzip-1": {"compression": "gzip", "compression_opts": 1},
    "gzip-4": {"compression": "gzip", "compression_opts": 4},
    "lzf": {"compression": "lzf"},
}
DEFAULT_COMPRESSION = "gzip-1"


def _plugin_compressions() -> dict[str, dict]:
    """Blosc/LZ4 filters from hdf5plugin (readers then need hdf5plugin too, which is why they are not the default)."""
    try:
        import hdf5plugin
    except ImportError:  # pragma: no cover - hdf5plugin is a dependency
        return {}
    return {
        "lz4": dict(hdf5plugin.LZ4()),
        "blosc-lz4": dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)),
        "blosc-zstd": dict(hdf5plugin.Blosc(cname="zstd", clevel=3, shuffle=hdf5plugin.Blosc.SHUFFLE)),
    }


def compression_options(name: str) -> dict:
    """h5py ``create_dataset`` keyword arguments for a compression name (see :data:`COMPRESSIONS`)."""
    if name in COMPRESSIONS:
        return dict(COMPRESSIONS[name])
    table = {**COMPRESSIONS, **_plugin_compressions()}
    if name not in table:
        raise ValueError(f"unknown compression {name!r}; one of {', '.join(table)}")
    return table[name]


# ----------------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """The synthesis settings recorded in every file's root attributes; equal settings are needed to resume."""

    K: float
    crf: str
    flow: Mapping  # {"estimator", "weights", "iterations"}
    frames: tuple[int, int]
    stride: int | None  # None = each window's own N (non-overlapping); stored as 0
    seed: int

    def attrs(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": np.int64(FORMAT_VERSION),
            "K": np.float64(self.K),
            "crf": str(self.crf),
            "flow": json.dumps(dict(self.flow), sort_keys=True),
            "frames": np.asarray(self.frames, dtype=np.int64),
            "stride": np.int64(0 if self.stride is None else self.stride),
            "seed": np.int64(self.seed),
            "mmpdata_version": __version__,
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping) -> Settings:
        a = decode_attrs(attrs)
        stride = int(a["stride"])
        return cls(K=float(a["K"]), crf=str(a["crf"]), flow=dict(a["flow"]), frames=tuple(int(v) for v in a["frames"]),
                   stride=None if stride == 0 else stride, seed=int(a["seed"]))

    def differences(self, attrs: Mapping) -> list[str]:
        """Names (with both values) of the settings that differ from a file's attributes."""
        a = decode_attrs(attrs)
        mine = decode_attrs(self.attrs())
        out = []
        for key in ("format_version",) + SYNTH_ATTRS:
            if key not in a:
                out.append(f"{key} (missing in the file)")
            elif not _same(a[key], mine[key]):
                out.append(f"{key}: file has {_show(a[key])}, asked for {_show(mine[key])}")
        return out


def attr_differences(a: Mapping, b: Mapping) -> list[str]:
    """The settings attributes (format_version, K, crf, ...) on which two decoded attribute sets disagree."""
    out = []
    for key in ("format_version",) + SYNTH_ATTRS:
        if (key in a) != (key in b):
            out.append(f"{key} (present in only one file)")
        elif key in a and not _same(a[key], b[key]):
            out.append(f"{key}: {_show(a[key])} vs {_show(b[key])}")
    return out


def _same(x, y) -> bool:
    if isinstance(x, dict) or isinstance(y, dict):
        return x == y
    if isinstance(x, tuple) or isinstance(y, tuple):
        return tuple(x) == tuple(y)
    if isinstance(x, float) or isinstance(y, float):
        return float(x) == float(y)
    return x == y


def _show(v) -> str:
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, tuple):
        return "-".join(str(x) for x in v) if len(v) == 2 else str(v)
    return str(v)


def decode_attrs(attrs: Mapping) -> dict:
    """HDF5 attributes as plain Python values: bytes → str, ``flow`` JSON → dict, ``frames`` → tuple, numpy → scalars."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.ndarray):
            value = tuple(v.item() for v in value.ravel())
        elif isinstance(value, np.generic):
            value = value.item()
        if key == "flow" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    return out


# ------------------------------------------------------------------------------------------------------ writing
def shards_dir(index: str | os.PathLike) -> Path:
    """``OUT.h5`` → ``OUT.shards``."""
    index = Path(index)
    return index.with_name(index.stem + ".shards") if index.suffix else index.with_name(index.name + ".shards")


def shard_path(index: str | os.PathLike, name: str) -> Path:
    return shards_dir(index) / f"{name}{SHARD_SUFFIX}"


def temp_path(final: Path) -> Path:
    """The hidden name a file is written under until it is complete."""
    return final.with_name(f".{final.name}{TEMP_MARK}")


class ShardWriter:
    """Writes one sequence shard under a temporary name; renames it to its final name only when every window is in.

    Use as a context manager: an exception (or a missing window) removes the temporary file, a SIGKILL leaves it
    to be cleaned by the next run (:func:`remove_stale_temps`), and the final name never holds a partial shard.
    """

    def __init__(self, final: str | os.PathLike, n_windows: int, size: tuple[int, int], root_attrs: Mapping,
                 with_mmp: bool = True, compression: str = DEFAULT_COMPRESSION):
        self.final = Path(final)
        self.temp = temp_path(self.final)
        self.n = int(n_windows)
        self.size = tuple(size)
        self.root_attrs = dict(root_attrs)
        self.with_mmp = with_mmp
        self.compression = compression
        self._written = np.zeros(self.n, bool)
        self._file: h5py.File | None = None
        self._ds: dict[str, h5py.Dataset] = {}

    def __enter__(self) -> ShardWriter:
        if self.n < 1:
            raise ValueError("a shard needs at least one window")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.temp.unlink(missing_ok=True)
        self._file = h5py.File(self.temp, "w", libver=("earliest", "v110"))
        h, w = self.size
        self._window_bytes = h * w * (6 + (2 if self.with_mmp else 0)) + 64
        self._space = DiskReservation(self.temp)
        opts = compression_options(self.compression)
        mmp_opts = {**opts, "shuffle": self.compression in COMPRESSIONS and self.compression != "none"}
        h, w = self.size
        f = self._file
        try:
            # the dataset handles stay open until the end: a write error then surfaces here, not from a
            # temporary handle's destructor ("Exception ignored")
            self._ds = {"blur": f.create_dataset("blur", (self.n, h, w, 3), np.uint8, chunks=(1, h, w, 3), **opts),
                        "sharp": f.create_dataset("sharp", (self.n, h, w, 3), np.uint8, chunks=(1, h, w, 3), **opts)}
            if self.with_mmp:
                self._ds["mmp"] = f.create_dataset("mmp", (self.n, h, w), np.float16, chunks=(1, h, w), **mmp_opts)
                self._ds["window"] = f.create_dataset("window", (self.n, 2), np.int32)
            for key, value in self.root_attrs.items():
                f.attrs[key] = value
            f.attrs["complete"] = False
        except BaseException:
            self._file = None
            self._discard(f)
            raise
        return self

    def write(self, t: int, blur: np.ndarray, sharp: np.ndarray, mmp: np.ndarray | None = None,
              window: tuple[int, int] | None = None) -> None:
        """Store window ``t``: the blurry frame, its sharp target, the MMP map (stored float16) and [first, last]."""
        self._space.reserve(self._window_bytes)
        ds = self._ds
        ds["blur"][t] = blur
        ds["sharp"][t] = sharp
        if self.with_mmp:
            ds["mmp"][t] = np.asarray(mmp, dtype=np.float32).astype(np.float16)
            ds["window"][t] = np.asarray(window, dtype=np.int32)
        self._written[t] = True

    def __exit__(self, exc_type, exc, tb) -> None:
        f, self._file = self._file, None
        if exc_type is None and not self._written.all():
            missing = int((~self._written).sum())
            self._discard(f)
            raise RuntimeError(f"{self.final}: {missing} of {self.n} windows were never written")
        if exc_type is not None:
            self._discard(f)
            return
        try:  # a full disk often shows only here, when HDF5 flushes its buffers
            f.attrs["complete"] = True
            self._ds = {}
            f.flush()
            f.close()
            self._space.release()
            _fsync(self.temp)
            os.replace(self.temp, self.final)
        except BaseException:
            self._discard(f)
            raise

    def _discard(self, f: h5py.File) -> None:
        """Close the temporary file (its reserved space lets HDF5 flush what it holds) and delete it; errors of
        that close are ignored, the original error is the one that matters."""
        self._ds = {}
        try:
            f.close()
        except Exception:  # noqa: BLE001
            pass
        if hasattr(self, "_space"):
            self._space.release()
        self.temp.unlink(missing_ok=True)


class DiskReservation:
    """Disk space reserved ahead of HDF5's writes, so a full disk is an ordinary OSError *before* HDF5 writes.

    Why: when a write fails inside HDF5 (ENOSPC) it keeps dirty buffers it cannot flush, retries on every handle
    release and can crash the interpreter at exit. Before each window, :meth:`reserve` asks the file system for
    the blocks of the file's current size plus the window uncompressed plus a margin for HDF5's caches
    (``fallocate`` with KEEP_SIZE: the file's size does not change). When the disk cannot give them, ENOSPC is
    raised here, HDF5's buffers still fit in what was reserved, and the file closes cleanly. Where the file system
    cannot reserve (EOPNOTSUPP), the free space is compared instead. :meth:`release` frees blocks beyond the end.
    """

    MARGIN = 16 << 20  # HDF5's chunk caches (1 MiB per dataset) and metadata, with room to spare

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_RDWR)
        self._fallocate = _libc_fallocate()

    def reserve(self, nbytes: int) -> None:
        if self._fd is None:
            return
        want = os.fstat(self._fd).st_size + 2 * int(nbytes) + self.MARGIN
        if self._fallocate is not None:
            import ctypes

            if self._fallocate(self._fd, 1, ctypes.c_long(0), ctypes.c_long(want)) == 0:  # 1 = KEEP_SIZE
                return
            code = ctypes.get_errno()
            if code in (28, 122):
                raise OSError(code, os.strerror(code), str(self.path))
            self._fallocate = None  # not supported here: compare the free space instead
        st = os.fstatvfs(self._fd)
        if st.f_bavail * st.f_frsize < want - os.fstat(self._fd).st_size:
            raise OSError(28, os.strerror(28), str(self.path))

    def release(self) -> None:
        """Give back the blocks reserved beyond the end of the file (shrinking frees them) and close."""
        if self._fd is None:
            return
        try:
            size = os.fstat(self._fd).st_size
            os.ftruncate(self._fd, size + 1)
            os.ftruncate(self._fd, size)
        except OSError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None


def _libc_fallocate():
    """libc's ``fallocate(fd, mode, offset, len)`` (Linux), or None."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.fallocate
        fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
        fn.restype = ctypes.c_int
        return fn
    except (OSError, AttributeError):
        return None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileLock:
    """An exclusive advisory lock (``flock``) held on a hidden lock file beside ``target`` (``.<name>.lock``).

    The shard lock makes one writer per shard at a time: a second ``mmp synthesize`` into the same output skips the
    sequences another run is writing (and cleans only temporaries nobody holds), so two runs at once both finish
    and the data equal one run's. The kernel drops the lock when its process dies, SIGKILL included, so a killed
    run never blocks the next. The lock file is deleted on release; :meth:`acquire` re-checks that the file it
    locked is still the one under the name, so a release racing an acquire cannot give two holders.
    """

    def __init__(self, target: str | os.PathLike):
        target = Path(target)
        self.path = target.with_name(f".{target.name}.lock")
        self._fd: int | None = None

    def acquire(self, blocking: bool = False) -> bool:
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                os.ftruncate(fd, 0)
                os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
                return True
            os.close(fd)  # released and deleted by its holder meanwhile: lock the new file

    def holder(self) -> str:
        """``"host pid"`` of the process holding the lock, as far as the lock file says."""
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire(blocking=True)
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def shard_lock(final: str | os.PathLike) -> FileLock:
    """The lock one writer of the shard ``final`` holds while writing it (``OUT.shards/.<name>.h5.lock``)."""
    return FileLock(final)


def remove_stale_temps(folder: str | os.PathLike, names: list[str] | None = None) -> list[Path]:
    """Delete temporary shards (and lock files) left by a killed run: only those of ``names`` when given, and never
    one whose shard lock is held, so runs and parts writing into the same folder right now are left alone.
    Returns the temporary shards removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = None if names is None else set(names)
    removed = []
    stale = {p.name[1:-len(SHARD_SUFFIX + TEMP_MARK)]: p for p in folder.glob(f".*{SHARD_SUFFIX}{TEMP_MARK}")}
    locks = {p.name[1:-len(SHARD_SUFFIX + ".lock")] for p in folder.glob(f".*{SHARD_SUFFIX}.lock")}
    for name in sorted(set(stale) | locks):
        if wanted is not None and name not in wanted:
            continue
        lock = shard_lock(folder / f"{name}{SHARD_SUFFIX}")
        if not lock.acquire():
            log.info("%s is being written by %s; left alone", folder / f"{name}{SHARD_SUFFIX}", lock.holder())
            continue
        try:
            if name in stale:
                stale[name].unlink(missing_ok=True)
                removed.append(stale[name])
                log.info("removed %s left by an interrupted run", stale[name])
        finally:
            lock.release()
    return removed


def shard_status(path: Path, settings: Settings | None) -> str:
    """``"complete"`` when the shard is whole and matches ``settings``; raises SettingsMismatch when it differs;
    ``"incomplete"`` when it is unreadable or not marked complete (it will be rewritten)."""
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            names = set(f.keys())
    except OSError:
        return "incomplete"
    if decode_attrs(attrs).get("format") != FORMAT or not bool(attrs.get("complete", False)):
        return "incomplete"
    if settings is not None:
        diff = settings.differences(attrs)
        if diff:
            raise SettingsMismatch(f"{path} was written with different settings ({'; '.join(diff)}); "
                                   "use another --out or delete the old output")
    if not set(DATASETS if settings is not None else REQUIRED) <= names:
        return "incomplete"
    return "complete"


def _shard_damage(path: Path) -> str | None:
    """The first problem of a damaged shard, as one line naming it and the fix; None when it passes the checks."""
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        return (f"{path}: truncated or damaged shard (HDF5 says: {_short(exc)}); "
                "delete it and rerun `mmp synthesize` (or `mmp import`) with the same options to rewrite it")
    with f:
        problems, _ = check_structure(path, f)
    return problems[0] if problems else None


def list_shards(index: str | os.PathLike) -> list[Path]:
    """The shards under their final names in ``OUT.shards`` (hidden temporary files excluded), sorted by name."""
    folder = shards_dir(index)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"*{SHARD_SUFFIX}") if not p.name.startswith("."))


def build_index(index: str | os.PathLike, settings: Settings | None = None) -> list[str]:
    """(Re)write ``OUT.h5`` with one external link per complete shard in ``OUT.shards``; returns the sequence names.

    The settings come from ``settings`` or else from the shards, which must all agree (SettingsMismatch otherwise).
    Written to a temporary file and renamed, so readers see the old or the new index, never half of one.
    """
    index = Path(index)
    with FileLock(index):  # runs finishing at once: one rewrite at a time, each listing the shards present then
        return _build_index(index, settings)


def _build_index(index: Path, settings: Settings | None) -> list[str]:
    shards = list_shards(index)
    names, attrs = [], None
    for p in shards:
        try:
            shard_attrs = _read_attrs(p)
        except OSError:
            raise FormatError(_shard_damage(p) + f", then run `mmp index {index}`") from None
        if settings is None and attrs is not None:
            diff = attr_differences(decode_attrs(attrs), decode_attrs(shard_attrs))
            if diff:
                raise SettingsMismatch(f"{p} was written with different settings than the other shards "
                                       f"({'; '.join(diff)}); move it away, then run `mmp index {index}` again")
        status = shard_status(p, settings)
        damage = _shard_damage(p)
        if status != "complete" or damage:  # a final name only ever holds a whole shard: this one was damaged since
            raise FormatError((damage or f"{p}: not a complete mmp-h5 shard; delete it and rerun `mmp synthesize` "
                               "with the same options") + f", then run `mmp index {index}`")
        if attrs is None:
            attrs = _read_attrs(p)
        names.append(p.stem)
    if not names:
        raise FormatError(f"{shards_dir(index)}: no complete shards to index; run `mmp synthesize --out {index}` first")
    root = settings.attrs() if settings is not None else {
        k: v for k, v in attrs.items() if k in ("format", "format_version", "mmpdata_version") + SYNTH_ATTRS}
    root["mmpdata_version"] = __version__
    write_index(index, names, root)
    return names


def write_index(index: Path, names: list[str], root_attrs: Mapping) -> None:
    """Write the index file: root attributes plus one relative external link per shard, atomically."""
    tmp = index.with_name(f".{index.name}.{socket.gethostname()}.{os.getpid()}{TEMP_MARK}")
    try:
        with h5py.File(tmp, "w", libver=("earliest", "v110")) as f:
            for key, value in root_attrs.items():
                f.attrs[key] = value
            f.attrs["num_sequences"] = np.int64(len(names))
            grp = f.create_group("sequences")
            folder = os.path.relpath(shards_dir(index), index.parent)
            for name in names:
                grp[name] = h5py.ExternalLink(f"{folder}/{name}{SHARD_SUFFIX}", "/")
        os.replace(tmp, index)
    finally:
        tmp.unlink(missing_ok=True)


def _read_attrs(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return dict(f.attrs)


def read_settings(path: str | os.PathLike) -> dict:
    """The decoded root attributes of an mmp-h5 file (index or shard); FormatError when it is not one."""
    path = Path(path)
    if not h5py.is_hdf5(path):
        raise FormatError(f"{path} is not an HDF5 file; pass an mmp-h5 index written by `mmp synthesize`")
    attrs = decode_attrs(_read_attrs(path))
    if attrs.get("format") != FORMAT:
        raise FormatError(f"{path} is an HDF5 file but not mmp-h5 data (format attribute {attrs.get('format')!r})")
    return attrs


# ------------------------------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class SequenceInfo:
    """Table-of-contents entry of one sequence: its size, split, whether it has MMP, and the shard that holds it."""

    name: str
    frames: int
    height: int
    width: int
    split: str | None
    has_mmp: bool
    shard: str | None = None  # the shard file; None when the sequence lives in the opened file itself


def _short(exc: BaseException) -> str:
    """An HDF5/OS error as a short phrase for a one-line message."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def _rewrite_hint(attrs: Mapping) -> str:
    """How to get a damaged shard back: synthesized data is rewritten by synthesize, imported data by import."""
    if any(k in attrs for k in SYNTH_ATTRS):
        return "delete it and rerun `mmp synthesize` with the same options to rewrite it"
    return "delete it and rerun `mmp import` to rewrite it"


def open_checked(path: Path) -> h5py.File:
    """Open ``path`` read-only after checking it is mmp-h5; FormatError naming it when missing, not HDF5, damaged
    or foreign."""
    if not path.exists():
        raise FormatError(f"{path}: no such file; pass an mmp-h5 file written by `mmp synthesize` or `mmp import`")
    if path.is_dir():
        raise FormatError(f"{path}: is a folder; pass an mmp-h5 file written by `mmp synthesize` or `mmp import`")
    if not h5py.is_hdf5(path):
        raise FormatError(f"{path}: not an HDF5 file; pass an mmp-h5 file written by `mmp synthesize` or `mmp import`")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{path}: truncated or damaged HDF5 file ({_short(exc)}); if it is an index rebuild it "
                          f"with `mmp index {path}`, else write it again") from None
    fmt = decode_attrs(f.attrs).get("format")
    if fmt != FORMAT:
        f.close()
        raise FormatError(f"{path}: HDF5 but not mmp-h5 data (format attribute {fmt!r}); "
                          "write it with `mmp synthesize` or `mmp import`")
    return f


def check_structure(path: str | os.PathLike, f: h5py.File) -> tuple[list[str], list[SequenceInfo]]:
    """The cheap checks (attributes, shapes, dtypes, lengths, completeness, settings; no image data read) of an open
    index or shard: every problem as one line naming the shard and the fix, and the table of contents of the
    sequences that passed."""
    path = Path(path)
    attrs = decode_attrs(f.attrs)
    problems = _check_root_attrs(str(path), attrs)
    infos: list[SequenceInfo] = []
    if "sequences" in f:
        groups = f["sequences"]
        if len(groups) == 0:
            problems.append(f"{path}: the index lists no sequences; run `mmp index {path}` once shards exist")
        for name in sorted(groups.keys()):
            link = groups.get(name, getlink=True)
            if not isinstance(link, h5py.ExternalLink):  # a sequence stored inside the index itself
                grp = groups[name]
                if not isinstance(grp, h5py.Group):
                    problems.append(f"{path}:sequences/{name}: is a dataset, expected a group; write the file again")
                    continue
                found, info = _check_sequence(f"{path}:sequences/{name}", name, grp, attrs, None, _rewrite_hint(attrs),
                                              is_shard_root=False)
                problems += found
                infos += [info] if info and not found else []
                continue
            target = Path(link.filename) if os.path.isabs(link.filename) else path.parent / link.filename
            if not target.exists():
                problems.append(f"{path}:sequences/{name}: broken external link (the shard {link.filename} does not "
                                f"exist); run `mmp index {path}` to rebuild the index from the shards present")
                continue
            try:
                shard = h5py.File(target, "r")
            except OSError as exc:
                problems.append(f"{target}: truncated or damaged shard (sequences/{name} of {path}; HDF5 says: "
                                f"{_short(exc)}); {_rewrite_hint(attrs)}, then run `mmp index {path}`")
                continue
            with shard:
                found, info = _check_sequence(f"{target} (sequences/{name})", name, shard["/"], attrs, str(target),
                                              _rewrite_hint(attrs), is_shard_root=True)
            problems += found
            infos += [info] if info and not found else []
    elif "blur" in f:  # a shard opened directly
        name = str(attrs.get("sequence", path.stem))
        found, info = _check_sequence(str(path), name, f["/"], attrs, None, _rewrite_hint(attrs), is_shard_root=True)
        problems += found
        infos += [info] if info and not found else []
    else:
        problems.append(f"{path}: neither a 'sequences' group (index) nor a 'blur' dataset (shard); "
                        "write it with `mmp synthesize` or `mmp import`")
    return problems, infos


def _check_root_attrs(where: str, attrs: dict) -> list[str]:
    problems = []
    fix = "write the file again with `mmp synthesize` or `mmp import`"
    if attrs.get("format") != FORMAT:
        problems.append(f"{where}: format attribute is {attrs.get('format')!r}, expected {FORMAT!r}; {fix}")
    if attrs.get("format_version") != FORMAT_VERSION:
        problems.append(f"{where}: format_version attribute is {attrs.get('format_version')!r}, expected "
                        f"{FORMAT_VERSION}; {fix}")
    if any(k in attrs for k in SYNTH_ATTRS):  # synthesized data: all settings present and well-formed
        for key in SYNTH_ATTRS:
            if key not in attrs:
                problems.append(f"{where}: attribute {key} is missing; {fix}")
        if "flow" in attrs and not (isinstance(attrs["flow"], dict)
                                    and {"estimator", "weights", "iterations"} <= set(attrs["flow"])):
            problems.append(f"{where}: attribute flow is not a JSON object with estimator, weights, iterations; {fix}")
        if "frames" in attrs and not (isinstance(attrs["frames"], tuple) and len(attrs["frames"]) == 2):
            problems.append(f"{where}: attribute frames is not a (min, max) pair; {fix}")
        if "K" in attrs and not (isinstance(attrs["K"], (int, float)) and np.isfinite(attrs["K"]) and attrs["K"] > 0):
            problems.append(f"{where}: attribute K is not a positive finite number; {fix}")
    return problems


def _check_sequence(where: str, name: str, grp: h5py.Group, index_attrs: dict, shard: str | None, fix: str,
                    is_shard_root: bool) -> tuple[list[str], SequenceInfo | None]:
    problems = []
    sattrs = decode_attrs(grp.attrs)
    if is_shard_root:
        fix = _rewrite_hint({**index_attrs, **sattrs})
        if sattrs.get("complete") is not True:
            problems.append(f"{where}: shard is not marked complete (an interrupted or foreign write); {fix}")
        if sattrs.get("format") != FORMAT:
            problems.append(f"{where}: shard format attribute is {sattrs.get('format')!r}, expected {FORMAT!r}; {fix}")
        if shard is not None:
            move = (f"it was written with other settings: move it out of {Path(shard).parent} (or {fix.split(' and ')[0]}"
                    f" and rewrite it), then run `mmp index` on the index")
            for key in ("format_version",) + SYNTH_ATTRS:
                if key in index_attrs and key not in sattrs:
                    problems.append(f"{where}: shard attribute {key} is missing (the index has "
                                    f"{_show(index_attrs[key])}); {move}")
                elif key in index_attrs and not _same(index_attrs[key], sattrs[key]):
                    problems.append(f"{where}: shard attribute {key} = {_show(sattrs[key])} differs from the index "
                                    f"({_show(index_attrs[key])}); {move}")
    present = {}
    for dname, (dtype, rank, tail) in DATASETS.items():
        if dname not in grp:
            if dname in REQUIRED or "mmp" in grp or "window" in grp:
                problems.append(f"{where}: dataset {dname} is missing; {fix}")
            continue
        d = grp[dname]
        if not isinstance(d, h5py.Dataset):
            problems.append(f"{where}: {dname} is not a dataset; {fix}")
            continue
        present[dname] = d
        if d.dtype != np.dtype(dtype):
            problems.append(f"{where}: dataset {dname} has dtype {d.dtype}, expected {np.dtype(dtype)}; {fix}")
        if d.ndim != rank or tuple(d.shape[rank - len(tail):]) != tail:
            want = {"blur": "(T,H,W,3)", "sharp": "(T,H,W,3)", "mmp": "(T,H,W)", "window": "(T,2)"}[dname]
            problems.append(f"{where}: dataset {dname} has shape {d.shape}, expected {want}; {fix}")
            present.pop(dname)
    shapes = {n: d.shape for n, d in present.items()}
    info = None
    if "blur" in shapes:
        t, h, w = shapes["blur"][:3]
        if t < 1:
            problems.append(f"{where}: dataset blur has no windows (T = 0); {fix}")
        if "sharp" in shapes and shapes["sharp"] != shapes["blur"]:
            problems.append(f"{where}: dataset sharp has shape {shapes['sharp']} differs from blur {shapes['blur']} "
                            f"(unequal lengths or sizes); {fix}")
        if "mmp" in shapes and shapes["mmp"] != (t, h, w):
            problems.append(f"{where}: dataset mmp has shape {shapes['mmp']}, expected {(t, h, w)} to match blur; {fix}")
        if "window" in shapes and shapes["window"][0] != t:
            problems.append(f"{where}: dataset window has {shapes['window'][0]} rows, expected {t} to match blur; {fix}")
        split = sattrs.get("split")
        split = str(split).lower() if split not in (None, "") else None
        info = SequenceInfo(name, int(t), int(h), int(w), split, "mmp" in present, shard)
    if "window" in present and present["window"].dtype == np.int32 and present["window"].shape[0] > 0:
        try:
            win = present["window"][()]
        except OSError as exc:
            problems.append(f"{where}: dataset window cannot be read (damaged data: {_short(exc)}); {fix}")
        else:
            if np.any(win[:, 0] < 0) or np.any(win[:, 1] < win[:, 0]):
                problems.append(f"{where}: dataset window rows must be [first, last] with 0 <= first <= last; {fix}")
            elif np.any(np.diff(win[:, 0]) <= 0):
                problems.append(f"{where}: dataset window: windows are not in increasing time order; {fix}")
    return problems, info


# The validated table of contents per index, so that the datasets, eval and the training loops that open the same
# file in one process check it once. Keyed by the resolved path; valid while the index and every shard keep their
# (inode, size, mtime).
@dataclass(frozen=True)
class _Toc:
    signature: tuple | None
    attrs: dict
    infos: list
    single: str | None
    names: list


_TOC_CACHE: dict[str, _Toc] = {}


def _signature(path: Path, infos: list[SequenceInfo]) -> tuple | None:
    out = []
    for p in [path] + [Path(i.shard) for i in infos if i.shard]:
        try:
            st = p.stat()
        except OSError:
            return None
        out.append((str(p), st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class MMPDataset:
    """The one reader of mmp-h5 data: an index (or a single shard) checked once when opened, then read lazily.

    Opening runs the cheap checks of :func:`check_structure` and raises FormatError with the first problem (one
    line naming the shard and the fix); a second open of an unchanged file in the same process reuses the result.
    ``.sequences`` (names), ``.infos`` (:class:`SequenceInfo`), ``.attrs`` (decoded root attributes), ``ds[name]``
    (the sequence's h5py group), and :meth:`read`, which turns a damaged chunk into FormatError and refuses NaN/inf
    in MMP (checked on every read: cheap next to decompressing the data). The HDF5 handle is opened in whichever
    process first reads (DataLoader workers get their own; pickling drops it), so one reader can serve every dataset
    and worker. ``check=False`` opens a damaged file anyway (for ``mmp inspect``).
    """

    def __init__(self, path: str | os.PathLike, check: bool = True):
        self.path = Path(path)
        key = str(self.path.resolve())
        toc = _TOC_CACHE.get(key) if check else None
        if toc is None or _signature(self.path, toc.infos) != toc.signature:
            f = open_checked(self.path)
            try:
                attrs = decode_attrs(f.attrs)
                problems, infos = check_structure(self.path, f)
                single = None if "sequences" in f else str(attrs.get("sequence", self.path.stem))
                names = sorted(f["sequences"].keys()) if single is None else [single]
            finally:
                f.close()  # reopened lazily by whichever process reads
            if check and problems:
                more = f" ({len(problems) - 1} more: `mmp inspect {self.path}` lists them)" if len(problems) > 1 else ""
                raise FormatError(problems[0] + more)
            toc = _Toc(_signature(self.path, infos), attrs, infos, single, names)
            if check:
                _TOC_CACHE[key] = toc
        self.attrs = dict(toc.attrs)
        self.infos = list(toc.infos)
        self._info = {i.name: i for i in self.infos}
        self._single = toc.single
        self.sequences = list(toc.names)
        self._file: h5py.File | None = None
        self._pid: int | None = None

    # -------------------------------------------------------------------------------------------- the handle
    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as exc:
                raise FormatError(f"{self.path}: cannot be opened any more ({_short(exc)}); was it replaced while "
                                  "in use? Check it with `mmp inspect`") from None
            self._pid = os.getpid()
        return self._file

    @property
    def is_open(self) -> bool:
        return self._file is not None and self._pid == os.getpid()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state

    # ----------------------------------------------------------------------------------------------- access
    def info(self, name: str) -> SequenceInfo:
        return self._info[name]

    def where(self, name: str) -> str:
        """The file that holds sequence ``name`` (its shard, or the opened file), for messages."""
        info = self._info.get(name)
        return info.shard if info is not None and info.shard else str(self.path)

    def __getitem__(self, name: str) -> h5py.Group:
        f = self._handle()
        if self._single is not None:
            if name != self._single:
                raise KeyError(name)
            return f["/"]
        try:
            return f["sequences"][name]
        except KeyError:
            if name in self.sequences:
                link = f["sequences"].get(name, getlink=True)
                raise FormatError(f"{self.path}: sequence {name} links to {link.filename}, which cannot be opened; "
                                  f"run `mmp index {self.path}` to rebuild the index") from None
            raise

    def read(self, name: str, key: str, t, ys: slice = slice(None), xs: slice = slice(None)) -> np.ndarray:
        """``ds[name][key][t, ys, xs]`` (``[t]`` for ``window``) with a one-line FormatError naming the shard when the
        data cannot be decompressed (a damaged chunk) or when ``mmp`` holds NaN/inf."""
        d = self[name][key]
        try:
            a = d[t] if key == "window" else d[t, ys, xs]
        except OSError as exc:
            raise FormatError(f"{self.where(name)}: dataset {key} {_windows_text(t)} cannot be read (damaged data: "
                              f"{_short(exc)}); {_rewrite_hint(self.attrs)}") from None
        if key == "mmp" and not np.isfinite(a).all():
            raise FormatError(f"{self.where(name)}: dataset mmp holds NaN/inf values {_windows_text(t)}; "
                              f"{_rewrite_hint(self.attrs)} (`mmp inspect {self.path}` lists every damaged window)")
        return a

    def __contains__(self, name: str) -> bool:
        return name in self.sequences

    def __iter__(self) -> Iterator[str]:
        return iter(self.sequences)

    def __len__(self) -> int:
        return len(self.sequences)

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __enter__(self) -> MMPDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _windows_text(t) -> str:
    if isinstance(t, slice):
        return f"in windows {t.start or 0}-{(t.stop - 1) if t.stop is not None else 'end'}"
    return f"in window {int(t)}"


def open_dataset(path: str | os.PathLike) -> MMPDataset:
    """Open an mmp-h5 index (or a single shard) for reading, checked (FormatError naming the first problem)."""
    return MMPDataset(path)


# --------------------------------------------------------------------------------------------------- validation
def validate(path: str | os.PathLike, scan: bool = False, progress: bool | None = None) -> list[str]:
    """Every problem found in an mmp-h5 file, each one line naming the shard and the fix; [] means valid.

    Always: the cheap checks of :func:`check_structure`. With ``scan``: also reads every window of every dataset
    (a damaged, undecompressable chunk is named with its window) and looks for NaN/inf in every MMP map.
    """
    path = Path(path)
    if not path.exists():
        return [f"{path}: no such file"]
    if not h5py.is_hdf5(path):
        return [f"{path}: not an HDF5 file"]
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        return [f"{path}: truncated or damaged HDF5 file ({_short(exc)}); if it is an index rebuild it with "
                f"`mmp index {path}`, else write it again"]
    with f:
        problems, infos = check_structure(path, f)
    if scan and infos:
        problems += scan_data(path, infos, progress=progress)
    return problems


def scan_data(path: Path, infos: list[SequenceInfo], progress: bool | None = None, block: int = 8) -> list[str]:
    """Read every window of the sequences in ``infos`` (which passed the cheap checks): damaged chunks and NaN/inf in
    MMP, one problem line per sequence and dataset, naming the windows."""
    from tqdm.auto import tqdm

    problems = []
    ds = MMPDataset(path, check=False)
    total = sum(i.frames * (3 if i.has_mmp else 2) for i in infos)
    bar = tqdm(total=total, desc="scan", unit="window", leave=False, disable=None if progress is None else not progress)
    with ds:
        for info in infos:
            grp = ds[info.name]
            where = info.shard or str(path)
            fix = _rewrite_hint(ds.attrs if info.has_mmp else decode_attrs(grp.attrs))
            for key in ("blur", "sharp", "mmp") if info.has_mmp else ("blur", "sharp"):
                d = grp[key]
                unreadable, nonfinite, first_error = [], [], None
                for t0 in range(0, info.frames, block):
                    stop = min(t0 + block, info.frames)
                    try:
                        parts = [(t0, d[t0:stop])]
                    except OSError:
                        parts = []
                        for t in range(t0, stop):  # find the damaged window(s) of the block
                            try:
                                parts.append((t, d[t:t + 1]))
                            except OSError as exc:
                                unreadable.append(t)
                                first_error = first_error or _short(exc)
                    if key == "mmp":
                        for start, a in parts:
                            bad = ~np.isfinite(a).reshape(len(a), -1).all(axis=1)
                            nonfinite += (start + np.flatnonzero(bad)).tolist()
                    bar.update(stop - t0)
                if unreadable:
                    problems.append(f"{where}: dataset {key} cannot be read in {_list(unreadable)} (damaged data: "
                                    f"{first_error}); {fix}")
                if nonfinite:
                    problems.append(f"{where}: dataset mmp holds NaN/inf values in {_list(nonfinite)}; {fix}")
    bar.close()
    return problems


def _list(windows: list[int]) -> str:
    shown = ", ".join(str(t) for t in windows[:8])
    more = f" and {len(windows) - 8} more" if len(windows) > 8 else ""
    return f"window{'s' if len(windows) > 1 else ''} {shown}{more}"
