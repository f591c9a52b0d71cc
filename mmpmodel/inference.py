"""``mmp deblur``: a blurry video (file or frame folder) in, the deblurred video (mp4 or PNG folder) out.

Frames are decoded, deblurred and written one at a time through MMP-RNN's streaming stepper, so memory is bounded by
the network's 5-frame window whatever the length. The first and last frames are handled by replicating the ends:
every input frame gets exactly one output frame, in order.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mmpdata.errors import InputError
from mmpdata.rawio import VIDEO_SUFFIXES, RawSequence, discover_sequences

from .checkpoint import load_deblur
from .distributed import resolve_device
from .evaluate import save_png
from .metrics import tensor_to_uint8
from .mmprnn import deblur_frames

log = logging.getLogger(__name__)

__all__ = ["open_input", "source_fps", "deblur_video"]


def open_input(path: str | Path) -> RawSequence:
    """The one sequence in ``path`` (a video file or a folder of frames); InputError for anything else."""
    seqs = discover_sequences(path)
    if len(seqs) != 1:
        raise InputError(f"{path}: holds {len(seqs)} sequences; pass one video file or one folder of frames")
    return seqs[0]


def source_fps(seq: RawSequence, default: float = 30.0) -> float:
    """Frame rate of a video file (from its header), ``default`` for frame folders."""
    if seq.kind != "video":
        return default
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(seq.path))
    try:
        meta = next(reader)
        return float(meta.get("fps") or default)
    except (RuntimeError, StopIteration):
        return default
    finally:
        reader.close()


class _Mp4Writer:
    """Streams RGB frames into an H.264 mp4 under a temporary name; renamed when closed without error."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        import imageio_ffmpeg

        self.path = path
        self.temp = path.with_name(f".{path.stem}.partial{path.suffix}")
        h, w = size
        params = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"] if (h % 2 or w % 2) else None
        self._gen = imageio_ffmpeg.write_frames(str(self.temp), (w, h), fps=fps, codec="libx264", quality=8,
                                                pix_fmt_out="yuv420p", macro_block_size=1, output_params=params)
        self._gen.send(None)

    def write(self, img: np.ndarray) -> None:
        self._gen.send(np.ascontiguousarray(img))

    def close(self, ok: bool) -> None:
        self._gen.close()
        if ok:
            os.replace(self.temp, self.path)
        else:
            self.temp.unlink(missing_ok=True)


def deblur_video(checkpoint: str | Path, input: str | Path, output: str | Path, device: str | None = None,
                 fps: float | None = None, progress: bool | None = None) -> dict:
    """Deblur every frame of ``input`` with the MMP-RNN checkpoint; ``output`` ending in a video suffix (.mp4)
    becomes a video, anything else a folder of PNGs (named like the input frames, or 000000.png... for videos)."""
    dev = resolve_device(device)
    model, _ = load_deblur(checkpoint)
    model = model.to(dev).eval()
    seq = open_input(input)
    output = Path(output)
    n = len(seq)
    as_video = output.suffix.lower() in VIDEO_SUFFIXES
    if as_video:
        output.parent.mkdir(parents=True, exist_ok=True)
        writer = _Mp4Writer(output, seq.size, fps or source_fps(seq))
        names = None
    else:
        output.mkdir(parents=True, exist_ok=True)
        writer = None
        names = [Path(p).stem for p in seq.frames] if seq.kind == "folder" else [f"{i:06d}" for i in range(n)]

    frames = (torch.from_numpy(img).permute(2, 0, 1).float().div_(255.0) for img in seq.iter_frames())
    start, count, ok = time.perf_counter(), 0, False
    bar = tqdm(total=n, desc="deblur", unit="frame", disable=None if progress is None else not progress)
    try:
        for out in deblur_frames(model, frames, dev):
            img = tensor_to_uint8(out)
            if writer is not None:
                writer.write(img)
            else:
                save_png(output / f"{names[count]}.png", img)
            count += 1
            bar.update(1)
        ok = True
    finally:
        bar.close()
        if writer is not None:
            writer.close(ok)
    seconds = time.perf_counter() - start
    if count != n:
        raise InputError(f"{input}: {n} frames announced but {count} decoded; the input may be truncated")
    return {"input": str(input), "output": str(output), "frames": count, "seconds": round(seconds, 3),
            "seconds_per_frame": seconds / max(count, 1), "device": str(dev), "format": "mp4" if as_video else "png"}
