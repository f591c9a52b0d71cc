"""``mmp deblur``: a blurry video (file or frame folder) in, the deblurred video (mp4/mkv/... or PNG folder) out.

Frames are decoded, deblurred and written one at a time through MMP-RNN's streaming stepper, so memory is bounded by
the network's 5-frame window whatever the length. The first and last frames are handled by replicating the ends:
every decoded input frame gets exactly one output frame, in order. Input and output files are handled by
:mod:`mmpdata.video` (decoded stream in; exact frame rate, audio copied, temporary name renamed when complete out)
and :class:`mmpdata.rawio.FrameFolderWriter` (PNG frames 000000.png, ... in a temporary folder renamed when
complete); everything about the output is checked before the model is loaded or anything is written.
"""
from __future__ import annotations

import logging
import os
import time
from fractions import Fraction
from pathlib import Path

import torch
from tqdm import tqdm

from mmpdata.errors import InputError
from mmpdata.rawio import VIDEO_SUFFIXES, FrameFolderWriter, RawSequence, check_frame_folder_output, discover_sequences
from mmpdata.video import VideoReader, VideoWriter, check_video_output, format_rate

from .checkpoint import load_deblur
from .distributed import resolve_device
from .ensemble import check_ensemble
from .metrics import tensor_to_uint8
from .mmprnn import deblur_frames
from .precision import resolve_precision
from .tiling import check_tiling

log = logging.getLogger(__name__)

__all__ = ["open_input", "parse_rate", "check_output", "InputFrames", "deblur_video"]

#: Frame rate of a video written from a frame folder when --fps is not given.
DEFAULT_FPS = Fraction(30)


def open_input(path: str | Path) -> RawSequence:
    """The one sequence in ``path`` (a video file or a folder of frames); InputError for anything else."""
    seqs = discover_sequences(path)
    if len(seqs) != 1:
        raise InputError(f"{path}: holds {len(seqs)} sequences; pass one video file or one folder of frames")
    return seqs[0]


def parse_rate(fps) -> Fraction:
    """``--fps``: 25, 29.97 or an exact ratio such as 24000/1001; positive and finite."""
    try:
        rate = fps if isinstance(fps, Fraction) else Fraction(str(fps).strip())
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--fps {fps}: not a frame rate; give a positive number such as 25 or 24000/1001") from None
    if rate <= 0:
        raise InputError(f"--fps {fps}: must be positive, such as 25 or 24000/1001")
    return rate


def _same_place(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output(seq: RawSequence, output: str | Path, codec: str = "libx264", crf: int | None = None) -> int | None:
    """Refuse an output that is the input or would overwrite or mix with other files, before anything is written.
    Returns the CRF a video output will use (None for PNG folders and lossless codecs)."""
    output = Path(output)
    if _same_place(output, seq.path):
        raise InputError(f"{output}: is the input {seq.path}; choose another output (nothing was written)")
    if output.suffix.lower() in VIDEO_SUFFIXES:
        return check_video_output(output, codec, crf)
    if output.suffix.lower() == ".png" or output.suffix.lower() in {".jpg", ".jpeg", ".gif", ".webp"}:
        raise InputError(f"{output}: looks like an image file; give a folder name for PNG frames or a .mp4/.mkv file")
    check_frame_folder_output(output)
    return None


class InputFrames:
    """The frames of the input as one stream: RGB uint8 in order, with their size, frame rate (None for frame
    folders) and audio tracks known before the first frame; ``count`` is the true total once the stream ended."""

    def __init__(self, seq: RawSequence):
        self.seq = seq
        self.count = 0
        self._reader = VideoReader(seq.path) if seq.kind == "video" else None
        if self._reader is not None:
            info = self._reader.info  # opens the stream: an unreadable video fails here, before any output
            self.size, self.rate, self.audio = info.size, info.rate, list(info.audio)
            self.colour, self.bit_depth, self.pixel_format = info.colour, info.bit_depth, info.pixel_format
        else:
            self.size, self.rate, self.audio = seq.size, None, []
            self.colour, self.bit_depth, self.pixel_format = None, 8, ""

    @property
    def total(self) -> int | None:
        """Frame count when known in advance (frame folders); videos tell it only at the end."""
        return len(self.seq) if self._reader is None else None

    @property
    def variable_rate(self) -> bool:
        return self._reader is not None and self._reader.variable_rate

    def __iter__(self):
        frames = iter(self._reader) if self._reader is not None else self.seq.iter_frames()
        for img in frames:
            self.count += 1
            yield img

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def deblur_video(checkpoint: str | Path, input: str | Path, output: str | Path, device: str | None = None,
                 fps: float | str | Fraction | None = None, progress: bool | None = None, codec: str = "libx264",
                 crf: int | None = None, precision: str | None = "auto", tile: int | None = None,
                 overlap: int | None = None, ensemble: int = 1, ends: str | None = None) -> dict:
    """Deblur every decoded frame of ``input`` with the MMP-RNN checkpoint. ``output`` ending in a video suffix
    (.mp4, .mkv, .mov, .avi, .m4v) becomes a video at the input's exact frame rate (``fps`` overrides; frame folders
    default to 30) with the input's audio; anything else a new folder of PNGs 000000.png, 000001.png, ..."""
    seq = open_input(input)
    output = Path(output)
    as_video = output.suffix.lower() in VIDEO_SUFFIXES
    crf = check_output(seq, output, codec, crf)
    rate_override = parse_rate(fps) if fps is not None else None
    dev = resolve_device(device)
    precision = resolve_precision(precision, dev)  # the network runs as mmpmodel.precision / tiling say
    check_tiling(tile, overlap)
    check_ensemble(ensemble)
    # an MMP-RNN already in memory (mmpmodel.api.Deblurrer.deblur_file) is used as it is: loaded once per script
    model = checkpoint if isinstance(checkpoint, torch.nn.Module) else load_deblur(checkpoint)[0]
    model = model.to(dev).eval()

    source = InputFrames(seq)
    rate = rate_override or source.rate or DEFAULT_FPS
    try:
        if as_video:
            writer = VideoWriter(output, source.size, rate, codec=codec, crf=crf,
                                 audio_from=seq.path if source.audio else None, audio=source.audio,
                                 colour=source.colour)
        else:
            writer = FrameFolderWriter(output)
    except BaseException:
        source.close()
        raise
    frames = (torch.from_numpy(img).permute(2, 0, 1).float().div_(255.0) for img in source)
    start, count, ok = time.perf_counter(), 0, False
    bar = tqdm(total=source.total, desc="deblur", unit="frame", disable=None if progress is None else not progress)
    try:
        for out in deblur_frames(model, frames, dev, precision=precision, tile=tile, overlap=overlap,
                                 ensemble=ensemble, ends=ends):
            writer.write(tensor_to_uint8(out))
            count += 1
            bar.update(1)
        if count != source.count:
            raise InputError(f"{input}: {source.count} frames decoded but {count} deblurred; please report this")
        ok = True
    finally:
        bar.close()
        source.close()
        writer.close(ok)
    seconds = time.perf_counter() - start
    for note in getattr(writer, "notes", []):
        log.warning("%s", note)
    if source.bit_depth > 8:
        log.warning("%s: %d-bit video (%s); it was decoded, deblurred and written at 8 bits per channel", input,
                    source.bit_depth, source.pixel_format)
    if source.variable_rate:
        log.warning("%s: variable frame rate; the %d frames were written at a constant %s fps (individual frame "
                    "timings are not kept, audio may drift)", input, count, format_rate(rate))
    result = {"input": str(input), "output": str(output), "frames": count, "seconds": round(seconds, 3),
              "seconds_per_frame": seconds / max(count, 1), "device": str(dev), "precision": precision,
              "self_ensemble": ensemble, "ends": ends or model.ends,
              "format": output.suffix.lower().lstrip(".") if as_video else "png"}
    if as_video:
        result.update(fps=format_rate(rate), encoding=writer.encoding, audio=writer.audio_result,
                      variable_frame_rate=source.variable_rate)
    return result
