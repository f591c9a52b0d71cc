"""Video files in and out through the bundled ffmpeg, as a stream of decoded frames.

Reading: the frames are whatever the decoder yields, in decode-output order, with ffmpeg's frame-rate conversion off
(``-fps_mode passthrough``: no frame duplicated or dropped to fit a constant rate). Container frame counts, durations
and "nb_frames" are never trusted; the true count is known when the stream ends. The exact frame rate (a rational
such as 24000/1001) and each frame's timestamp come from ffmpeg's ``showinfo`` filter on the decoded stream, the
frame size from the raw output stream ffmpeg announces, audio tracks from its stream listing.

Writing: RGB frames are piped into ffmpeg at the exact rational rate, under a hidden temporary name that is renamed
when complete; audio of the source is then stream-copied into the result (re-encoded to AAC only when the container
cannot hold it, with a notice). ffmpeg's own output never reaches the user: errors become one line naming the file
and the last thing ffmpeg said.
"""
from __future__ import annotations

import collections
import logging
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from mmpdata.atomic import file_mode
from mmpdata.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["CODECS", "OUTPUT_SUFFIXES", "Colour", "VideoInfo", "VideoReader", "VideoWriter", "count_frames",
           "ffmpeg_exe", "check_video_output", "format_rate"]

#: Encoders offered for video output and their default --crf (None: the codec is lossless and has no CRF).
CODECS = {"libx264": 18, "libx264rgb": 0, "ffv1": None}
#: Containers an output video may use, and the codecs each can hold.
OUTPUT_SUFFIXES = {".mp4": ("libx264", "libx264rgb"), ".m4v": ("libx264", "libx264rgb"),
                   ".mov": ("libx264", "libx264rgb"), ".mkv": ("libx264", "libx264rgb", "ffv1"),
                   ".avi": ("libx264", "libx264rgb", "ffv1")}
_QUIET = ["-hide_banner", "-nostdin", "-nostats"]


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise InputError(f"ffmpeg not found ({exc}); install it with `pip install imageio-ffmpeg`") from None


def format_rate(rate: Fraction) -> str:
    """24000/1001 or 25 (integers without a denominator)."""
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


_PREFIX = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*")
_NOISE = ("frame=", "Press [q]", "progress=", "Stream mapping", "Input #", "Output #", "Duration:", "Metadata:",
          "[Parsed_showinfo")


def last_message(lines) -> str:
    """The last thing ffmpeg said that is worth a user's eyes (no banner, no stream dump, no progress line)."""
    for line in reversed(list(lines)):
        text = line.strip()
        if not text or line.startswith(" ") or text.startswith(_NOISE):
            continue
        return _PREFIX.sub("", text)
    return "no message"


class _Stderr:
    """Drains an ffmpeg stderr pipe in a thread (so ffmpeg never blocks on it), keeping the tail and handing each
    line to ``on_line``."""

    def __init__(self, pipe, on_line=None, keep: int = 40):
        self.tail: collections.deque[str] = collections.deque(maxlen=keep)
        self._on_line = on_line
        self._thread = threading.Thread(target=self._run, args=(pipe,), daemon=True, name="ffmpeg-stderr")
        self._thread.start()

    def _run(self, pipe) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line.startswith("[Parsed_showinfo"):
                self.tail.append(line)
            if self._on_line is not None:
                self._on_line(line)
        pipe.close()

    def join(self) -> None:
        self._thread.join()

    def message(self) -> str:
        return last_message(self.tail)


def count_frames(path: str | Path) -> int:
    """Frames the decoder yields for the first video stream, by decoding it once to nowhere (no colour conversion,
    no pipe). For callers that must plan with the count before reading (synthesis); readers do not need it."""
    path = Path(path)
    cmd = [ffmpeg_exe(), *_QUIET, "-progress", "pipe:1", "-i", str(path), "-map", "0:v:0", "-fps_mode",
           "passthrough", "-f", "null", "-"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    counts = re.findall(rb"^frame=(\d+)", proc.stdout, re.M)
    if proc.returncode != 0 or not counts:
        msg = last_message(proc.stderr.decode("utf-8", "replace").splitlines())
        raise InputError(f"{path}: cannot decode the video (ffmpeg: {msg}); check the file or convert it to mp4")
    return int(counts[-1])


#: ffmpeg's colour-space names -> the YUV matrix names of its scale filter (out_color_matrix).
_MATRIX = {"bt709": "bt709", "bt470bg": "bt470", "smpte170m": "smpte170m", "smpte240m": "smpte240m",
           "fcc": "fcc", "bt2020nc": "bt2020", "bt2020c": "bt2020"}
_RANGES = ("tv", "pc")  # limited (studio) and full range


@dataclass(frozen=True)
class Colour:
    """How a video's YUV samples map to colours: range (tv/pc), matrix (colour space), primaries and transfer, in
    ffmpeg's names; None where the file does not say.

    Why: a player shows an untagged stream with its own guess (BT.709 for HD in most players and browsers), so an
    output encoded with one matrix and tagged with none can change every colour by tens of levels. The writer
    encodes with the input's matrix and range and copies its tags: input and output then look alike wherever
    they are played."""

    range: str | None = None
    space: str | None = None
    primaries: str | None = None
    transfer: str | None = None

    #: What frames that come without tags (PNG folders, sRGB) are written as: BT.709, the HD standard.
    @classmethod
    def bt709(cls) -> "Colour":
        return cls("tv", "bt709", "bt709", "bt709")

    @classmethod
    def parse(cls, details: str) -> "Colour":
        """From the parenthesised part after the pixel format in ffmpeg's stream line, e.g. ``tv, bt709`` or
        ``tv, bt2020nc/bt2020/arib-std-b67, progressive``."""
        rng, names = None, (None, None, None)
        for part in (p.strip() for p in details.split(",")):
            if part in _RANGES:
                rng = part
            elif "/" in part and part.count("/") == 2:
                names = tuple(part.split("/"))
            elif part in _MATRIX or part in ("gbr", "ycgco", "unknown", "reserved"):
                names = (part, part, part)
        known = [None if n in (None, "unknown", "reserved", "unspecified") else n for n in names]
        return cls(rng, *known)

    def encoder_args(self, yuv: bool) -> list[str]:
        """ffmpeg output options that convert RGB with this matrix and range (``yuv``: the codec stores YUV) and tag
        the stream with what is known."""
        scale, tags = [], []  # the conversion (scale filter), then the frames' tags (setparams filter)
        if yuv and self.space in _MATRIX:
            scale.append(f"out_color_matrix={_MATRIX[self.space]}")
            tags.append(f"colorspace={self.space}")
        if yuv and self.range:
            scale.append(f"out_range={self.range}")
            tags.append(f"range={self.range}")
        if self.primaries:
            tags.append(f"color_primaries={self.primaries}")
        if self.transfer:
            tags.append(f"color_trc={self.transfer}")
        chain = ([f"scale={':'.join(scale)}"] if scale else []) + ([f"setparams={':'.join(tags)}"] if tags else [])
        return ["-vf", ",".join(chain)] if chain else []


@dataclass
class VideoInfo:
    """What the decoded stream announced before its first frame."""

    path: Path
    width: int
    height: int
    rate: Fraction | None  # frame rate of the decoded stream (None when ffmpeg reports none)
    codec: str = ""
    audio: list[str] = field(default_factory=list)  # codec of each audio track of the file
    pixel_format: str = ""  # the decoder's, e.g. yuv420p10le (frames are read as 8-bit RGB whatever it is)
    colour: Colour = field(default_factory=Colour)  # the stream's range, matrix, primaries and transfer tags

    @property
    def bit_depth(self) -> int:
        """Bits per sample of the source's pixel format (8 when ffmpeg's name does not say)."""
        m = re.search(r"p(9|10|12|14|16)(le|be)?$", self.pixel_format) or re.search(r"(48|64)(le|be)$",
                                                                                      self.pixel_format)
        return {"48": 16, "64": 16}.get(m.group(1), int(m.group(1))) if m else 8

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        return self.height, self.width


class VideoReader:
    """The frames of a video file's first video stream as RGB uint8 (H, W, 3), in order, each decoded once.

    Iterate it (once); ``count`` is the number of frames yielded so far and the true total when iteration ended,
    ``timestamps`` the frames' presentation times in seconds (as far as ffmpeg reported them). A file ffmpeg cannot
    open, or a stream that fails part-way, raises InputError with one line naming the file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.count = 0
        self.timestamps: list[float] = []
        self._rate: Fraction | None = None
        self._size: tuple[int, int] | None = None
        self._codec = ""
        self._pixel_format = ""
        self._colour = Colour()
        self._audio: list[str] = []
        self._section = "input"
        self._header = threading.Event()
        self._info: VideoInfo | None = None
        self._done = False
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such video file")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: empty file (0 bytes); not a video")
        cmd = [ffmpeg_exe(), *_QUIET, "-loglevel", "info", "-i", str(self.path), "-map", "0:v:0", "-vf", "showinfo",
               "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      bufsize=0)
        self._stderr = _Stderr(self._proc.stderr, self._parse)

    # ------------------------------------------------------------------------------------------ stderr parsing
    _STREAM = re.compile(r"^\s*Stream #\d+:\d+\S*: (Video|Audio): (\w+)")
    _SIZE = re.compile(r", (\d+)x(\d+)\b")
    _PIXFMT = re.compile(r"Video: .*?, ([a-z][a-z0-9_]*)(?:\(([^)]*)\))?, \d+x\d+")
    _CONFIG = re.compile(r"config in time_base: \S+, frame_rate: (\d+)/(\d+)")
    _FRAME = re.compile(r"\] n:\s*\d+ pts:\s*-?\d+ pts_time:(\S+)")

    def _parse(self, line: str) -> None:
        if line.startswith("[Parsed_showinfo"):
            m = self._FRAME.search(line)
            if m:
                try:
                    self.timestamps.append(float(m.group(1)))
                except ValueError:
                    pass
                return
            m = self._CONFIG.search(line)
            if m and self._rate is None and int(m.group(2)) > 0 and int(m.group(1)) > 0:
                self._rate = Fraction(int(m.group(1)), int(m.group(2)))
            return
        if line.startswith("Output #"):
            self._section = "output"
            return
        m = self._STREAM.match(line)
        if not m:
            return
        kind, codec = m.groups()
        if self._section == "input":
            if kind == "Audio":
                self._audio.append(codec)
            elif not self._codec:
                self._codec = codec
                fmt = self._PIXFMT.search(line)
                if fmt:
                    self._pixel_format = fmt.group(1)
                    self._colour = Colour.parse(fmt.group(2) or "")
        elif kind == "Video" and self._size is None:
            s = self._SIZE.search(line)
            if s:
                self._size = (int(s.group(2)), int(s.group(1)))
                self._header.set()

    # ----------------------------------------------------------------------------------------------- reading
    @property
    def info(self) -> VideoInfo:
        """Size, frame rate and audio tracks; waits until ffmpeg has opened the stream."""
        if self._info is None:
            while not self._header.wait(0.05):
                if self._proc.poll() is not None:
                    self._stderr.join()
                    if not self._header.is_set():
                        self.close()
                        raise InputError(f"{self.path}: cannot decode the video (ffmpeg: {self._stderr.message()}); "
                                         "check the file or convert it to mp4")
            h, w = self._size
            self._info = VideoInfo(self.path, w, h, self._rate, self._codec, list(self._audio), self._pixel_format,
                                   self._colour)
        return self._info

    def __iter__(self) -> Iterator[np.ndarray]:
        info = self.info
        nbytes = info.width * info.height * 3
        out = self._proc.stdout
        try:
            while True:
                buf = _read_exactly(out, nbytes)
                if not buf:
                    break
                if len(buf) < nbytes:
                    raise InputError(f"{self.path}: decoding stopped inside frame {self.count} "
                                     f"(ffmpeg: {self._finish_message()}); the file may be damaged")
                self.count += 1
                yield np.frombuffer(buf, np.uint8).reshape(info.height, info.width, 3)
            rc = self._proc.wait()
            self._stderr.join()
            if rc != 0:
                raise InputError(f"{self.path}: decoding failed after {self.count} frames (ffmpeg: "
                                 f"{self._stderr.message()}); the file may be damaged")
            if self.count == 0:
                raise InputError(f"{self.path}: the video stream holds no decodable frame "
                                 f"(ffmpeg: {self._stderr.message()})")
            self._done = True
        finally:
            self.close()

    def _finish_message(self) -> str:
        self._proc.wait()
        self._stderr.join()
        return self._stderr.message()

    @property
    def variable_rate(self) -> bool:
        """True when the frames' timestamps stray more than half a frame from a constant-rate grid."""
        if self._rate is None or len(self.timestamps) < 3:
            return False
        period = 1.0 / float(self._rate)
        t0 = self.timestamps[0]
        return any(abs((t - t0) - i * period) > 0.5 * period for i, t in enumerate(self.timestamps))

    @property
    def complete(self) -> bool:
        """True once every frame has been read and ffmpeg ended without error."""
        return self._done

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.join()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_exactly(pipe, n: int) -> bytearray:
    """Up to ``n`` bytes (fewer only at the end of the stream) into a fresh, writable buffer."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = pipe.readinto(view[got:])
        if not k:
            break
        got += k
    del view
    return buf if got == n else buf[:got]


# ------------------------------------------------------------------------------------------------------ writing
def check_video_output(path: str | Path, codec: str = "libx264", crf: int | None = None) -> int | None:
    """Validate an output video's container, codec and CRF before anything is written; returns the CRF to use."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"{path}: cannot write {suffix or 'a file without suffix'} video; use one of "
                         f"{', '.join(sorted(OUTPUT_SUFFIXES))} (or a folder name for PNG frames)")
    if codec not in CODECS:
        raise InputError(f"--codec {codec}: unknown; use one of {', '.join(CODECS)}")
    if codec not in OUTPUT_SUFFIXES[suffix]:
        raise InputError(f"{path}: {suffix} cannot hold --codec {codec}; use .mkv or .avi")
    if CODECS[codec] is None:
        if crf is not None:
            raise InputError(f"--crf {crf}: {codec} is lossless and has no quality setting; leave --crf out")
        return None
    crf = CODECS[codec] if crf is None else crf
    if not 0 <= crf <= 51:
        raise InputError(f"--crf {crf}: must be 0 (lossless) to 51 (worst); 18 is visually near-lossless")
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: exists and is not a file; choose another output name")
    return crf


def _encoder_args(codec: str, crf: int | None, size: tuple[int, int], suffix: str,
                  colour: Colour) -> tuple[list[str], str]:
    """ffmpeg output options and a short description of the pixel format written."""
    h, w = size
    if codec == "ffv1":
        return ["-c:v", "ffv1", "-level", "3", "-pix_fmt", "bgr0", *colour.encoder_args(yuv=False)], \
            "ffv1 lossless RGB"
    if codec == "libx264rgb":
        args, desc = ["-c:v", "libx264rgb", "-preset", "medium", "-crf", str(crf), "-pix_fmt", "rgb24",
                      *colour.encoder_args(yuv=False)], "RGB"
    else:
        # 4:2:0 needs even sizes and is not lossless: odd sizes and --crf 0 use 4:4:4 (kept at the input size)
        pix = "yuv444p" if (h % 2 or w % 2 or crf == 0) else "yuv420p"
        args = ["-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-pix_fmt", pix,
                *colour.encoder_args(yuv=True)]
        desc = pix + (f" {colour.space}" if colour.space in _MATRIX else "")
    if suffix in (".mp4", ".m4v", ".mov"):
        args += ["-movflags", "+faststart"]
    return args, f"{codec} crf {crf} {desc}"


def _temp_beside(path: Path, tag: str) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".{tag}.partial{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise InputError(f"{path}: cannot write there ({exc.strerror}); check the folder exists, is writable "
                         "and has free space") from None
    os.fchmod(fd, file_mode())
    os.close(fd)
    return Path(tmp)


class VideoWriter:
    """Encodes RGB uint8 frames into ``path`` at the exact ``rate``; ``close(ok=True)`` muxes the audio of
    ``audio_from`` (if any) and renames the result into place. Nothing appears under ``path`` unless it completes.
    ``notes`` collects what the user should know (pixel format, audio handling). ``colour``: the source video's
    (:class:`Colour`; its matrix, range and tags are kept, an untagged source stays untagged); None for frames
    without one (PNG folders), which are written as tagged BT.709."""

    def __init__(self, path: str | Path, size: tuple[int, int], rate: Fraction, codec: str = "libx264",
                 crf: int | None = None, audio_from: str | Path | None = None, audio: list[str] | None = None,
                 colour: Colour | None = None):
        self.path = Path(path)
        crf = check_video_output(self.path, codec, crf)
        self.size, self.rate = size, Fraction(rate)
        self.audio_from, self.audio = (Path(audio_from) if audio_from else None), list(audio or [])
        self.notes: list[str] = []
        self.frames = 0
        self.audio_result = "none in the input" if not self.audio else "not written"
        h, w = size
        args, self.encoding = _encoder_args(codec, crf, size, self.path.suffix.lower(),
                                            Colour.bt709() if colour is None else colour)
        self.temp = _temp_beside(self.path, "video")
        self._temps = [self.temp]
        cmd = [ffmpeg_exe(), *_QUIET, "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-framerate", format_rate(self.rate), "-i", "pipe:0", "-map", "0:v:0", *args, "-y", str(self.temp)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._stderr = _Stderr(self._proc.stderr)

    def write(self, img: np.ndarray) -> None:
        if img.shape != (*self.size, 3) or img.dtype != np.uint8:
            raise ValueError(f"frame of shape {img.shape} {img.dtype}; expected {(*self.size, 3)} uint8")
        try:
            self._proc.stdin.write(np.ascontiguousarray(img).tobytes())
        except (BrokenPipeError, OSError):
            self._proc.wait()
            self._stderr.join()
            raise InputError(f"{self.path}: ffmpeg stopped writing the video ({self._stderr.message()})") from None
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        """Finish (``ok``) or abandon the output; on failure nothing is left under ``path`` or a temporary name."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        rc = self._proc.wait()
        self._stderr.join()
        try:
            if not ok:
                return
            if rc != 0:
                raise InputError(f"{self.path}: ffmpeg could not write the video ({self._stderr.message()}); "
                                 "check free space and the folder's permissions")
            final = self._mux_audio() if self.audio and self.audio_from is not None else self.temp
            os.replace(final, self.path)
        finally:
            for tmp in self._temps:  # the one renamed into place is gone already
                tmp.unlink(missing_ok=True)

    def _mux_audio(self) -> Path:
        """Copy the source's audio next to the new video stream; AAC when the container refuses the original codec;
        the video alone (with a notice) when neither works."""
        out = _temp_beside(self.path, "mux")
        self._temps.append(out)
        for audio_args, result in ((["-c:a", "copy"], f"copied ({', '.join(self.audio)})"),
                                   (["-c:a", "aac", "-b:a", "192k"],
                                    f"re-encoded to AAC ({self.path.suffix} cannot hold {', '.join(self.audio)}; "
                                    "use .mkv to keep it unchanged)")):
            cmd = [ffmpeg_exe(), *_QUIET, "-loglevel", "error", "-i", str(self.temp), "-i", str(self.audio_from),
                   "-map", "0:v:0", "-map", "1:a", "-c:v", "copy", *audio_args, "-y", str(out)]
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if proc.returncode == 0:
                self.audio_result = result
                if "re-encoded" in result:
                    self.notes.append(f"audio {result}")
                return out
            said = last_message(proc.stderr.decode("utf-8", "replace").splitlines())
        self.audio_result = f"not carried over (ffmpeg: {said})"
        self.notes.append(f"audio of {self.audio_from} {self.audio_result}")
        return self.temp
