"""Short test videos made with the bundled ffmpeg, each with a frame count known by construction."""
from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import numpy as np

from mmpdata.video import ffmpeg_exe


def levels(n: int, offset: int = 0) -> list[int]:
    """Distinct grey levels, far enough apart to be told apart after lossy coding."""
    return [(offset + 37 * i) % 200 + 20 for i in range(n)]


def grey_frames(values, h: int, w: int) -> list[np.ndarray]:
    """Frames of uniform grey, one per value: the decoded order can be read back from the levels."""
    return [np.full((h, w, 3), v, np.uint8) for v in values]


def encode(path: Path, frames, rate: str = "25", codec: list[str] | None = None, extra_inputs: list[str] = (),
           extra_out: list[str] = ()) -> Path:
    """Pipe RGB frames into ffmpeg (ffmpeg's own command line, not the toolkit's writer)."""
    h, w = frames[0].shape[:2]
    codec = codec or ["-c:v", "libx264rgb", "-crf", "0"]
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
           f"{w}x{h}", "-framerate", rate, "-i", "pipe:0", *extra_inputs, "-map", "0:v", *codec, *extra_out,
           str(path)]
    subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames), check=True)
    return path


def lying_avi(path: Path, first, second) -> Path:
    """Two MJPEG AVIs concatenated byte for byte: the header announces len(first) frames, the decoder yields
    len(first) + len(second) (what cameras that append recordings produce)."""
    a = encode(path.with_name("part1.avi"), first, codec=["-c:v", "mjpeg", "-q:v", "2"])
    b = encode(path.with_name("part2.avi"), second, codec=["-c:v", "mjpeg", "-q:v", "2"])
    path.write_bytes(a.read_bytes() + b.read_bytes())
    a.unlink()
    b.unlink()
    return path


def avi_header_frames(path: Path) -> int:
    """dwTotalFrames of the AVI main header (what container-based counts report)."""
    data = Path(path).read_bytes()[:64]
    assert data[:4] == b"RIFF" and data[8:12] == b"AVI " and data[24:28] == b"avih"
    return struct.unpack("<I", data[48:52])[0]


def with_audio(path: Path, frames, rate: str = "24000/1001", audio_codec: str = "aac") -> Path:
    """A video with a sine audio track (lavfi) as long as the video."""
    seconds = len(frames) / eval(rate)  # noqa: S307 - a literal ratio from the test
    return encode(path, frames, rate=rate,
                  extra_inputs=["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds:.4f}"],
                  extra_out=["-map", "1:a", "-c:a", audio_codec])


def vfr(path: Path, frames) -> Path:
    """Variable frame rate: the second half of the frames three times further apart (``-fps_mode vfr``)."""
    half = len(frames) // 2
    return encode(path, frames, rate="10", codec=["-vf", f"setpts='if(lt(N,{half}),N,{half}+(N-{half})*3)/10/TB'",
                                                  "-fps_mode", "vfr", "-c:v", "libx264rgb", "-crf", "0"])


def null_decode_count(path: Path) -> int:
    """Independent truth: frames ffmpeg decodes to its null muxer, rate conversion off."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-fps_mode",
                          "passthrough", "-f", "null", "-"], capture_output=True, text=True).stderr
    return int(re.findall(r"frame=\s*(\d+)", out)[-1])


def probe_stream(path: Path) -> str:
    """ffmpeg's description of the file's streams (for checking audio and codecs)."""
    res = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    return res.stderr
