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

    def __enter__(self) -> ShardWriter:
        if self.n < 1:
            raise ValueError("a shard needs at least one window")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.temp.unlink(missing_ok=True)
        self._file = h5py.File(self.temp, "w", libver=("earliest", "v110"))
        opts = compression_options(self.compression)
        mmp_opts = {**opts, "shuffle": self.compression in COMPRESSIONS and self.compression != "none"}
        h, w = self.size
        f = self._file
        f.create_dataset("blur", (self.n, h, w, 3), np.uint8, chunks=(1, h, w, 3), **opts)
        f.create_dataset("sharp", (self.n, h, w, 3), np.uint8, chunks=(1, h, w, 3), **opts)
        if self.with_mmp:
            f.create_dataset("mmp", (self.n, h, w), np.float16, chunks=(1, h, w), **mmp_opts)
            f.create_dataset("window", (self.n, 2), np.int32)
        for key, value in self.root_attrs.items():
            f.attrs[key] = value
        f.attrs["complete"] = False
        return self

    def write(self, t: int, blur: np.ndarray, sharp: np.ndarray, mmp: np.ndarray | None = None,
              window: tuple[int, int] | None = None) -> None:
        """Store window ``t``: the blurry frame, its sharp target, the MMP map (stored float16) and [first, last]."""
        f = self._file
        f["blur"][t] = blur
        f["sharp"][t] = sharp
        if self.with_mmp:
            f["mmp"][t] = np.asarray(mmp, dtype=np.float32).astype(np.float16)
            f["window"][t] = np.asarray(window, dtype=np.int32)
        self._written[t] = True

    def __exit__(self, exc_type, exc, tb) -> None:
        f, self._file = self._file, None
        if exc_type is None and not self._written.all():
            missing = int((~self._written).sum())
            f.close()
            self.temp.unlink(missing_ok=True)
            raise RuntimeError(f"{self.final}: {missing} of {self.n} windows were never written")
        if exc_type is not None:
            f.close()
            self.temp.unlink(missing_ok=True)
            return
        f.attrs["complete"] = True
        f.flush()
        f.close()
        _fsync(self.temp)
        os.replace(self.temp, self.final)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(folder: str | os.PathLike, names: list[str] | None = None) -> list[Path]:
    """Delete temporary shards left by a killed run (only those of ``names`` when given, so parallel parts that
    write other sequences into the same folder are left alone). Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = None if names is None else {f".{n}{SHARD_SUFFIX}{TEMP_MARK}" for n in names}
    removed = []
    for p in sorted(folder.glob(f".*{SHARD_SUFFIX}{TEMP_MARK}")):
        if wanted is None or p.name in wanted:
            p.unlink(missing_ok=True)
            removed.append(p)
            log.info("removed %s left by an interrupted run", p)
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
    shards = list_shards(index)
    names, attrs = [], None
    for p in shards:
        if settings is None and attrs is not None:
            diff = attr_differences(decode_attrs(attrs), decode_attrs(_read_attrs(p)))
            if diff:
                raise SettingsMismatch(f"{p} was written with different settings than the other shards "
                                       f"({'; '.join(diff)}); move it away, then run `mmp index {index}` again")
        status = shard_status(p, settings)
        if status != "complete":
            log.warning("%s is not a complete shard; left out of the index", p)
            continue
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
def open_checked(path: Path) -> h5py.File:
    """Open ``path`` read-only after checking it is mmp-h5; FormatError naming it when missing, not HDF5 or foreign."""
    if not path.exists():
        raise FormatError(f"{path}: no such file; pass an mmp-h5 file written by `mmp synthesize` or `mmp import`")
    if not h5py.is_hdf5(path):
        raise FormatError(f"{path}: not an HDF5 file; pass an mmp-h5 file written by `mmp synthesize` or `mmp import`")
    f = h5py.File(path, "r")
    fmt = decode_attrs(f.attrs).get("format")
    if fmt != FORMAT:
        f.close()
        raise FormatError(f"{path}: HDF5 but not mmp-h5 data (format attribute {fmt!r}); "
                          "write it with `mmp synthesize` or `mmp import`")
    return f


class MMPDataset:
    """An open mmp-h5 file: ``.sequences`` (names), ``ds[name]`` → the sequence's h5py group (lazy datasets
    ``blur``, ``sharp``, ``mmp``, ``window``), ``.attrs`` (decoded root attributes). Works on an index or a shard."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = open_checked(self.path)
        self.attrs = decode_attrs(self._file.attrs)
        if "sequences" in self._file:
            self.sequences = sorted(self._file["sequences"].keys())
            self._single = None
        else:  # a shard opened directly: one sequence
            self._single = str(self.attrs.get("sequence", self.path.stem))
            self.sequences = [self._single]

    def __getitem__(self, name: str) -> h5py.Group:
        if self._single is not None:
            if name != self._single:
                raise KeyError(name)
            return self._file["/"]
        try:
            return self._file["sequences"][name]
        except KeyError:
            if name in self.sequences:
                link = self._file["sequences"].get(name, getlink=True)
                raise FormatError(f"{self.path}: sequence {name} links to {link.filename}, which cannot be opened; "
                                  f"run `mmp index {self.path}` to rebuild the index") from None
            raise

    def __contains__(self, name: str) -> bool:
        return name in self.sequences

    def __iter__(self) -> Iterator[str]:
        return iter(self.sequences)

    def __len__(self) -> int:
        return len(self.sequences)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MMPDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_dataset(path: str | os.PathLike) -> MMPDataset:
    """Open an mmp-h5 index (or a single shard) for reading; FormatError when it is missing, not HDF5 or not mmp-h5."""
    return MMPDataset(path)


# --------------------------------------------------------------------------------------------------- validation
def validate(path: str | os.PathLike) -> list[str]:
    """Every problem found in an mmp-h5 file, each naming where it is; an empty list means valid.

    Checks the root attributes, that each sequence link resolves, dataset names, dtypes and shapes, that the shapes
    agree within a sequence, window ranges, shard completeness and that each shard's settings match the index.
    """
    path = Path(path)
    if not path.exists():
        return [f"{path}: no such file"]
    if not h5py.is_hdf5(path):
        return [f"{path}: not an HDF5 file"]
    problems: list[str] = []
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        return [f"{path}: cannot be opened as HDF5 ({exc})"]
    with f:
        attrs = decode_attrs(f.attrs)
        problems += _check_root_attrs(str(path), attrs)
        if "sequences" in f:
            groups = f["sequences"]
            if len(groups) == 0:
                problems.append(f"{path}: the index lists no sequences")
            for name in sorted(groups.keys()):
                where = f"{path}:sequences/{name}"
                link = groups.get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    target = (path.parent / link.filename) if not os.path.isabs(link.filename) else Path(link.filename)
                    where = f"{path}:sequences/{name} (shard {link.filename})"
                    if not target.exists():
                        problems.append(f"{where}: broken external link (the shard file does not exist)")
                        continue
                try:
                    grp = groups[name]
                except (KeyError, OSError) as exc:
                    problems.append(f"{where}: cannot be opened ({exc})")
                    continue
                if not isinstance(grp, h5py.Group):
                    problems.append(f"{where}: is a dataset, expected a group")
                    continue
                problems += _check_sequence(where, grp, attrs, is_shard_root=isinstance(link, h5py.ExternalLink))
        elif "blur" in f:  # a shard opened directly
            problems += _check_sequence(str(path), f["/"], attrs, is_shard_root=True)
        else:
            problems.append(f"{path}: neither a 'sequences' group (index) nor a 'blur' dataset (shard)")
    return problems


def _check_root_attrs(where: str, attrs: dict) -> list[str]:
    problems = []
    if attrs.get("format") != FORMAT:
        problems.append(f"{where}: format attribute is {attrs.get('format')!r}, expected {FORMAT!r}")
    if attrs.get("format_version") != FORMAT_VERSION:
        problems.append(f"{where}: format_version attribute is {attrs.get('format_version')!r}, expected {FORMAT_VERSION}")
    if any(k in attrs for k in SYNTH_ATTRS):  # synthesized data: all settings present and well-formed
        for key in SYNTH_ATTRS:
            if key not in attrs:
                problems.append(f"{where}: attribute {key} is missing")
        if "flow" in attrs and not (isinstance(attrs["flow"], dict) and {"estimator", "weights", "iterations"} <= set(attrs["flow"])):
            problems.append(f"{where}: attribute flow is not a JSON object with estimator, weights, iterations")
        if "frames" in attrs and not (isinstance(attrs["frames"], tuple) and len(attrs["frames"]) == 2):
            problems.append(f"{where}: attribute frames is not a (min, max) pair")
        if "K" in attrs and not (isinstance(attrs["K"], (int, float)) and attrs["K"] > 0):
            problems.append(f"{where}: attribute K is not a positive number")
    return problems


def _check_sequence(where: str, grp: h5py.Group, index_attrs: dict, is_shard_root: bool) -> list[str]:
    problems = []
    if is_shard_root:
        sattrs = decode_attrs(grp.attrs)
        if sattrs.get("complete") is not True:
            problems.append(f"{where}: shard is not marked complete")
        if sattrs.get("format") != FORMAT:
            problems.append(f"{where}: shard format attribute is {sattrs.get('format')!r}, expected {FORMAT!r}")
        for key in ("format_version",) + SYNTH_ATTRS:
            if key in index_attrs and key in sattrs and not _same(index_attrs[key], sattrs[key]):
                problems.append(f"{where}: shard attribute {key} = {_show(sattrs[key])} differs from the index "
                                f"({_show(index_attrs[key])})")
    present = {}
    for name, (dtype, rank, tail) in DATASETS.items():
        if name not in grp:
            if name in REQUIRED or "mmp" in grp or "window" in grp:
                problems.append(f"{where}: dataset {name} is missing")
            continue
        d = grp[name]
        if not isinstance(d, h5py.Dataset):
            problems.append(f"{where}: {name} is not a dataset")
            continue
        present[name] = d
        if d.dtype != np.dtype(dtype):
            problems.append(f"{where}: dataset {name} has dtype {d.dtype}, expected {np.dtype(dtype)}")
        if d.ndim != rank or tuple(d.shape[rank - len(tail):]) != tail:
            want = {"blur": "(T,H,W,3)", "sharp": "(T,H,W,3)", "mmp": "(T,H,W)", "window": "(T,2)"}[name]
            problems.append(f"{where}: dataset {name} has shape {d.shape}, expected {want}")
            present.pop(name)
    shapes = {n: d.shape for n, d in present.items()}
    if "blur" in shapes:
        t, h, w = shapes["blur"][:3]
        if t < 1:
            problems.append(f"{where}: dataset blur has no windows (T = 0)")
        if "sharp" in shapes and shapes["sharp"] != shapes["blur"]:
            problems.append(f"{where}: dataset sharp has shape {shapes['sharp']} differs from blur {shapes['blur']}")
        if "mmp" in shapes and shapes["mmp"] != (t, h, w):
            problems.append(f"{where}: dataset mmp has shape {shapes['mmp']}, expected {(t, h, w)} to match blur")
        if "window" in shapes and shapes["window"][0] != t:
            problems.append(f"{where}: dataset window has {shapes['window'][0]} rows, expected {t} to match blur")
    if "window" in present and present["window"].dtype == np.int32 and present["window"].shape[0] > 0:
        win = present["window"][()]
        if np.any(win[:, 0] < 0) or np.any(win[:, 1] < win[:, 0]):
            problems.append(f"{where}: dataset window rows must be [first, last] with 0 <= first <= last")
        elif np.any(np.diff(win[:, 0]) <= 0):
            problems.append(f"{where}: dataset window: windows are not in increasing time order")
    return problems
