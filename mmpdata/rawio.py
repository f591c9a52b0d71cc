"""Raw footage: finding sequences and reading their frames as RGB uint8.

Accepted inputs (``--raw``): a folder of sequence folders (GOPRO_Large_all layout, with or without ``train/`` and
``test/`` split folders), a single sequence folder, or video files (a folder of them, or one file). Frames of a
folder are ordered by the last number in their file name, so ``1.png, 2.png, 10.png`` sort numerically.
Grey, RGBA and 16-bit images are converted to 8-bit RGB with a logged warning; unreadable files raise InputError.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mmpdata.errors import InputError

log = logging.getLogger(__name__)
# OpenCV would print its own warnings (e.g. "PNG input buffer is incomplete") beside our one-line errors.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v"}
SPLIT_NAMES = ("train", "test", "valid", "val", "validation")
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
            import imageio_ffmpeg

            try:
                self._count = int(imageio_ffmpeg.count_frames_and_secs(str(self.path))[0])
            except (RuntimeError, OSError) as exc:
                raise InputError(f"{self.path}: cannot read the video ({exc}); check the file or convert it to mp4") from None
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
        img = self._decode(i)
        if self._size is None:
            self._size = img.shape[:2]
        elif img.shape[:2] != self._size:
            h, w = self._size
            raise InputError(
                f"{self.frame_name(i)}: size {img.shape[1]}x{img.shape[0]} differs from the sequence's {w}x{h}; "
                "resize or remove this frame")
        return img

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        stop = len(self) if stop is None else stop
        for i in range(start, stop):
            yield self.read(i)

    def _decode(self, i: int) -> np.ndarray:
        if self.kind == "folder":
            return read_image(self.frames[i])
        return self._video_frame(i)

    def _video_frame(self, i: int) -> np.ndarray:
        """Sequential decoding with imageio-ffmpeg; seeking backwards restarts the decoder."""
        import imageio_ffmpeg

        if self._reader is None or i < self._next:
            try:
                self._reader = imageio_ffmpeg.read_frames(str(self.path), pix_fmt="rgb24")
                meta = next(self._reader)
            except (RuntimeError, OSError, StopIteration) as exc:
                raise InputError(f"{self.path}: cannot decode the video ({exc}); check the file or convert it to mp4") from None
            self._wh = tuple(meta["size"])
            self._next = 0
        w, h = self._wh
        while True:
            try:
                buf = next(self._reader)
            except StopIteration:
                raise InputError(f"{self.path}: video ends before frame {i}; the file may be truncated") from None
            except RuntimeError as exc:
                raise InputError(f"{self.path}: decoding failed at frame {self._next} ({exc})") from None
            self._next += 1
            if self._next - 1 == i:
                return np.frombuffer(buf, np.uint8).reshape(h, w, 3).copy()


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
