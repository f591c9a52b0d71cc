"""Raw footage: finding sequences and reading their frames as RGB uint8.

Accepted inputs (``--raw``): a folder of sequence folders (GOPRO_Large_all layout, with or without ``train/`` and
``test/`` split folders), a single sequence folder, or video files (a folder of them, or one file). Frames of a
folder are ordered by the last number in their file name, so ``1.png, 2.png, 10.png`` sort numerically.
Grey, RGBA and 16-bit images are converted to 8-bit RGB with a logged warning; unreadable files raise InputError.
Videos are decoded by :mod:`mmpdata.video`: their frames are the decoded stream's, never a container's count.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mmpdata.atomic import make_temp_dir
from mmpdata.errors import InputError
from mmpdata.video import VideoReader, count_frames

log = logging.getLogger(__name__)
# OpenCV would print its own warnings (e.g. "PNG input buffer is incomplete") beside our one-line errors.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v"}
SPLIT_NAMES = ("train", "test", "valid", "val", "validation")
#: Frames the toolkit saves are named by index, zero-padded to this width (000000.png, 000001.png, ...), so they sort.
FRAME_DIGITS = 6
_warned: set[tuple[str, str]] = set()


def _warn_once(kind: str, path: Path, message: str) -> None:
    key = (kind, str(path.parent))
    if key not in _warned:
        _warned.add(key)
        log.warning("%s (%s; further frames of this sequence converted silently)", message, path)


def to_rgb8(img: np.ndarray, path: Path, bgr: bool = True) -> np.ndarray:
    """Convert a decoded image (grey, grey+alpha, BGR, BGRA; 8 or 16 bit) to uint8 RGB (H, W, 3)."""
    if img.dtype == np.uint16:
        _warn_once("16bit", path, "16-bit image scaled to 8 bits")
        img = np.rint(img.astype(np.float32) / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"{path}: unsupported pixel type {img.dtype}; convert the frames to 8-bit PNG")
    if img.ndim == 2:
        _warn_once("grey", path, "grey image repeated into RGB")
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"{path}: unsupported image shape {img.shape}; convert the frames to RGB PNG")
    if img.shape[2] in (1, 2):
        _warn_once("grey", path, "grey image repeated into RGB (alpha dropped)")
        return np.repeat(img[:, :, :1], 3, axis=2)
    if img.shape[2] == 4:
        _warn_once("alpha", path, "alpha channel dropped")
        img = img[:, :, :3]
    return np.ascontiguousarray(img[:, :, ::-1] if bgr else img)


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as uint8 RGB (H, W, 3); a missing, unreadable or truncated file raises InputError."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror}); check it exists and is readable") from None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{path}: not a readable image (truncated or corrupt?); re-export or remove this frame")
    return to_rgb8(img, path)


def frame_filename(index: int, suffix: str = ".png") -> str:
    """Name of saved frame ``index``: ``000042.png`` (FRAME_DIGITS digits; wider only past 999999 frames)."""
    return f"{index:0{FRAME_DIGITS}d}{suffix}"


def check_frame_folder_output(folder: str | Path) -> None:
    """A PNG-folder output must be new or an empty folder: its frames are never mixed with other files."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder; choose a new folder name for the PNG frames")
    if folder.is_dir() and any(folder.iterdir()):
        raise InputError(f"{folder}: folder exists and is not empty; choose a new folder for the PNG frames "
                         "(nothing was written)")


class FrameFolderWriter:
    """Writes frames as ``000000.png, 000001.png, ...`` into a hidden temporary folder beside ``folder`` and renames
    it to ``folder`` when closed without error, so ``folder`` only ever holds a complete set."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        check_frame_folder_output(self.folder)
        try:
            self.temp = make_temp_dir(self.folder)
        except OSError as exc:
            raise InputError(f"{self.folder}: cannot write there ({exc.strerror}); check the folder exists, is "
                             "writable and has free space") from None
        self.frames = 0

    def write(self, img: np.ndarray) -> None:
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[:, :, ::-1]))
        if not ok:
            raise InputError(f"{self.folder}: cannot encode frame {self.frames} as PNG")
        try:
            buf.tofile(str(self.temp / frame_filename(self.frames)))
        except OSError as exc:
            raise InputError(f"{self.folder}: cannot write frame {self.frames} ({exc.strerror}); check free space "
                             "and the folder's permissions") from None
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        try:
            if ok:
                check_frame_folder_output(self.folder)  # still new or empty: nothing appeared there meanwhile
                if self.folder.is_dir():
                    self.folder.rmdir()
                os.rename(self.temp, self.folder)
        finally:
            shutil.rmtree(self.temp, ignore_errors=True)


def _frame_key(path: Path) -> tuple[int, str]:
    nums = re.findall(r"\d+", path.stem)
    return (int(nums[-1]) if nums else -1, path.name)


def list_frames(folder: Path) -> list[Path]:
    """Image files of a sequence folder, ordered by the numeric index in their names."""
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")), key=_frame_key)


@dataclass
class RawSequence:
    """One sharp high-frame-rate sequence: a folder of frames or a video file."""

    name: str
    path: Path
    kind: str  # "folder" | "video"
    split: str | None = None
    frames: list[Path] = field(default_factory=list, repr=False)
    _size: tuple[int, int] | None = field(default=None, repr=False)
    _count: int | None = field(default=None, repr=False)
    _reader: object = field(default=None, repr=False, compare=False)
    _next: int = field(default=0, repr=False, compare=False)

    def __getstate__(self):  # video readers do not cross process boundaries (joblib workers)
        state = dict(self.__dict__)
        state["_reader"], state["_next"] = None, 0
        return state

    def __len__(self) -> int:
        if self.kind == "folder":
            return len(self.frames)
        if self._count is None:
            # decoded frames, counted by one decode-only pass (never the container's count): synthesis must plan
            # its windows before reading; streaming readers (iter_frames) never ask
            self._count = count_frames(self.path)
        return self._count

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the sequence, from its first frame."""
        if self._size is None:
            self._size = self._decode(0).shape[:2]
        return self._size

    def frame_name(self, i: int) -> str:
        return str(self.frames[i]) if self.kind == "folder" else f"{self.path} frame {i}"

    def read(self, i: int) -> np.ndarray:
        """Frame ``i`` as uint8 RGB; a frame whose size differs from the first frame's raises InputError."""
        return self._checked(i, self._decode(i))

    def _checked(self, i: int, img: np.ndarray) -> np.ndarray:
        if self._size is None:
            self._size = img.shape[:2]
        elif img.shape[:2] != self._size:
            h, w = self._size
            raise InputError(
                f"{self.frame_name(i)}: size {img.shape[1]}x{img.shape[0]} differs from the sequence's {w}x{h}; "
                "resize or remove this frame")
        return img

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Frames ``start..stop-1`` in order; with ``stop=None`` every frame to the end of the stream (a video is
        then decoded once, as a stream, without counting its frames first)."""
        if self.kind == "video" and stop is None:
            with VideoReader(self.path) as reader:
                for i, img in enumerate(reader):
                    if i >= start:
                        yield self._checked(i, img)
            return
        stop = len(self) if stop is None else stop
        for i in range(start, stop):
            yield self.read(i)

    def _decode(self, i: int) -> np.ndarray:
        if self.kind == "folder":
            return read_image(self.frames[i])
        return self._video_frame(i)

    def close(self) -> None:
        """Stop a video decoder left part-way (reading again restarts it)."""
        if self._reader is not None:
            self._reader[0].close()
            self._reader, self._next = None, 0

    def _video_frame(self, i: int) -> np.ndarray:
        """Sequential decoding of the stream; seeking backwards restarts the decoder."""
        if self._reader is None or i < self._next:
            if self._reader is not None:
                self._reader[0].close()
            reader = VideoReader(self.path)
            self._reader, self._next = (reader, iter(reader)), 0
        reader, frames = self._reader
        for img in frames:
            self._next += 1
            if self._next - 1 == i:
                return img.copy()
        self._reader = None
        raise InputError(f"{self.path}: the video ends after {reader.count} decoded frames, before frame {i}; "
                         "the file may have changed or be truncated")


def _folder_sequence(folder: Path, split: str | None) -> RawSequence | None:
    frames = list_frames(folder)
    return RawSequence(folder.name, folder, "folder", split, frames) if frames else None


def _video_sequence(path: Path, split: str | None) -> RawSequence:
    return RawSequence(path.stem, path, "video", split)


def _scan(folder: Path, split: str | None) -> list[RawSequence]:
    """Sequences directly inside ``folder``: sub-folders holding frames, and video files."""
    found = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):  # hidden: temp folders of an interrupted write, OS metadata
            continue
        if child.is_dir():
            seq = _folder_sequence(child, split)
            if seq is not None:
                found.append(seq)
        elif child.suffix.lower() in VIDEO_SUFFIXES:
            found.append(_video_sequence(child, split))
    return found


def discover_sequences(raw: str | Path) -> list[RawSequence]:
    """All sequences under ``raw`` sorted by name; InputError when there are none or names collide."""
    raw = Path(raw)
    hint = "pass a folder of sequence folders (GOPRO_Large_all layout), one sequence folder, or video files"
    if not raw.exists():
        raise InputError(f"{raw}: no such file or folder; {hint}")
    if raw.is_file():
        if raw.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"{raw}: not a video file ({', '.join(sorted(VIDEO_SUFFIXES))}); {hint}")
        return [_video_sequence(raw, None)]
    single = _folder_sequence(raw, None)
    if single is not None:
        return [single]
    sequences = []
    for child in sorted(raw.iterdir()):
        if child.is_dir() and child.name.lower() in SPLIT_NAMES:
            sequences += _scan(child, child.name.lower())
    sequences += _scan(raw, None)
    if not sequences:
        raise InputError(f"{raw}: no frames or videos found; {hint}")
    names = [s.name for s in sequences]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{raw}: sequence name {dupes[0]} appears more than once (e.g. in two splits); rename one of them")
    return sorted(sequences, key=lambda s: s.name)
