"""Issue 13's video must-show: `mmp deblur` on videos the toolkit did not make writes one output frame per decoded
input frame, at the input's frame rate, as mp4 and as a PNG folder; hostile outputs/inputs get one line.

The inputs are made with the ffmpeg command line (not the toolkit's writer): photographs from scikit-image panned
and appended as two MJPEG recordings in one AVI (its header announces the first recording only), lavfi test
patterns as H.264 with B-frames at 24000/1001 fps with AAC audio, an odd 97x61 size, a variable-frame-rate MKV.
For each it prints what container-based counts claim (imageio-ffmpeg's count and its reader, OpenCV, the AVI
header), the truth (frames encoded, and ffmpeg's own null decode), and what `mmp deblur` wrote. Then the cost of
the decode-only count pass synthesis uses, beside a full decode to RGB, measured side by side.

    .venv/bin/python bench/video_must_show.py [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmpdata.video import VideoReader, count_frames, ffmpeg_exe  # noqa: E402

MMP = [sys.executable, "-m", "cli"]
FF = ffmpeg_exe()


def ff(*args, data: bytes | None = None) -> None:
    subprocess.run([FF, "-hide_banner", "-loglevel", "error", "-y", *args], input=data, check=True)


def pan(photo: np.ndarray, n: int, h: int, w: int, speed: float, start: float = 0.0) -> list[np.ndarray]:
    """A camera panning over a photograph: n crops moving ``speed`` px per frame."""
    import cv2

    photo = cv2.resize(photo, (max(w * 2, photo.shape[1]), max(h + 8, photo.shape[0])))
    span = photo.shape[1] - w
    return [photo[4:4 + h, int(start + i * speed) % span:int(start + i * speed) % span + w] for i in range(n)]


def encode_rgb(path: Path, frames, rate: str, codec: list[str]) -> Path:
    h, w = frames[0].shape[:2]
    ff("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", rate, "-i", "pipe:0", *codec, str(path),
       data=b"".join(np.ascontiguousarray(f).tobytes() for f in frames))
    return path


def make_inputs(work: Path) -> dict[str, tuple[Path, int]]:
    """name -> (file, frames encoded)."""
    from skimage import data

    vids = {}
    a = encode_rgb(work / "rec1.avi", pan(data.astronaut(), 12, 64, 96, 3.0), "30", ["-c:v", "mjpeg", "-q:v", "3"])
    b = encode_rgb(work / "rec2.avi", pan(data.coffee(), 30, 64, 96, 2.0), "30", ["-c:v", "mjpeg", "-q:v", "3"])
    (work / "appended.avi").write_bytes(a.read_bytes() + b.read_bytes())
    a.unlink()
    b.unlink()
    vids["appended.avi"] = (work / "appended.avi", 42)
    n = 48
    ff("-f", "lavfi", "-i", "testsrc2=size=128x72:rate=24000/1001", "-f", "lavfi", "-i",
       "sine=frequency=440:sample_rate=48000", "-frames:v", str(n), "-t", f"{n * 1001 / 24000:.4f}",
       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "3", "-c:a", "aac", str(work / "film.mp4"))
    vids["film.mp4"] = (work / "film.mp4", n)
    n = 24
    ff("-f", "lavfi", "-i", "mandelbrot=size=97x61:rate=24000/1001", "-f", "lavfi", "-i", "sine=frequency=220",
       "-frames:v", str(n), "-t", f"{n * 1001 / 24000:.4f}", "-c:v", "libx264", "-pix_fmt", "yuv444p", "-c:a", "aac",
       str(work / "odd97x61.mp4"))
    vids["odd97x61.mp4"] = (work / "odd97x61.mp4", n)
    n = 30
    rng = np.random.default_rng(0)
    ff("-f", "lavfi", "-i", "testsrc=size=64x48:rate=30", "-frames:v", str(n), "-vf",
       "setpts='(N+" + "+".join(f"gte(N,{k})*{int(d)}" for k, d in zip(range(5, 30, 5), rng.integers(5, 30, 5)))
       + ")/30/TB'", "-fps_mode", "vfr", "-c:v", "libx264", str(work / "vfr.mkv"))
    vids["vfr.mkv"] = (work / "vfr.mkv", n)
    return vids


def claims(path: Path) -> dict:
    """What container-based counting says."""
    import cv2
    import imageio_ffmpeg

    out = {}
    try:
        out["imageio count"] = imageio_ffmpeg.count_frames_and_secs(str(path))[0]
    except RuntimeError:
        out["imageio count"] = "error"
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    out["imageio meta dur*fps"] = round(meta["duration"] * meta["fps"])
    out["imageio reader"] = sum(1 for _ in gen)
    out["imageio fps"] = meta["fps"]
    out["opencv count"] = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))
    head = path.read_bytes()[:64]
    if head[:4] == b"RIFF":
        out["avi header"] = struct.unpack("<I", head[48:52])[0]
    return out


def null_count(path: Path) -> int:
    err = subprocess.run([FF, "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
                          "-f", "null", "-"], capture_output=True, text=True).stderr
    return int(re.findall(r"frame=\s*(\d+)", err)[-1])


def deblur(ck: Path, src: Path, out: Path, *extra) -> tuple[int, str]:
    res = subprocess.run([*MMP, "deblur", "--model", str(ck), str(src), str(out), *extra], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "2"})
    return res.returncode, (res.stdout + res.stderr).strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="video_must_show_"))
    work.mkdir(parents=True, exist_ok=True)
    import torch

    from mmpmodel.checkpoint import save_checkpoint
    from mmpmodel.mmpnet import MMPNet
    from mmpmodel.mmprnn import MMPRNN

    torch.manual_seed(0)
    prior = MMPNet().eval()
    model = MMPRNN("A1B1C4F5", prior).eval()
    ck = save_checkpoint(work / "random_deblur.pt", kind="deblur", config={
        "preset": model.config.name, "model": model.config.to_dict(), "prior_config": {"width": 16}},
        model=model.deblur_state_dict(), prior=prior.state_dict())
    print(f"work folder {work}; random-weight MMP-RNN A1B1C4F5 (the I/O is what is shown)\n")
    vids = make_inputs(work)
    for name, (path, encoded) in vids.items():
        truth = null_count(path)
        info = VideoReader(path).info
        print(f"== {name}: encoded {encoded} frames, ffmpeg null decode {truth}, stream rate "
              f"{info.rate}, size {info.width}x{info.height}, audio {info.audio or 'none'}")
        print("   container-based:", ", ".join(f"{k} {v}" for k, v in claims(path).items()))
        rc, line = deblur(ck, path, work / f"{path.stem}.out.mp4")
        out_info = VideoReader(work / f"{path.stem}.out.mp4").info if rc == 0 else None
        print(f"   mmp deblur -> mp4 (exit {rc}): {line.splitlines()[-1]}")
        if out_info:
            print(f"     output decodes to {null_count(work / f'{path.stem}.out.mp4')} frames, rate {out_info.rate}, "
                  f"size {out_info.width}x{out_info.height}, audio {out_info.audio or 'none'}")
        rc, line = deblur(ck, path, work / f"{path.stem}.pngs")
        pngs = sorted(p.name for p in (work / f"{path.stem}.pngs").iterdir()) if rc == 0 else []
        print(f"   mmp deblur -> PNG folder (exit {rc}): {len(pngs)} files {pngs[0]} .. {pngs[-1]}")
        ok = truth == encoded and len(pngs) == encoded
        print(f"   one output frame per decoded frame: {'yes' if ok else 'NO'}\n")

    print("== hostile")
    film = vids["film.mp4"][0]
    (work / "clip").mkdir(exist_ok=True)
    subprocess.run([FF, "-hide_banner", "-loglevel", "error", "-y", "-i", str(film), "-frames:v", "6",
                    str(work / "clip" / "%04d.png")], check=True)
    (work / "empty.mp4").write_bytes(b"")
    for label, src, out in (("output folder = input folder", work / "clip", work / "clip"),
                            ("output file = input file", film, film),
                            ("output folder holding the input video", film, work),
                            ("0-byte video", work / "empty.mp4", work / "empty.out.mp4")):
        before = sorted(str(p) for p in work.rglob("*"))
        rc, text = deblur(ck, src, out)
        after = sorted(str(p) for p in work.rglob("*"))
        print(f"   {label}: exit {rc}, {len(text.splitlines())} line: {text}  [files unchanged: {before == after}]")

    print("\n== cost of the decode-only count pass synthesis makes (film.mp4 and appended.avi, best of 3)")
    for name in ("film.mp4", "appended.avi"):
        path = vids[name][0]
        t_count = min(_timed(lambda: count_frames(path)) for _ in range(3))
        t_rgb = min(_timed(lambda: sum(1 for _ in VideoReader(path))) for _ in range(3))
        print(f"   {name}: count pass {t_count:.3f} s, full decode to RGB {t_rgb:.3f} s, ratio {t_count / t_rgb:.2f}")
    print(f"\nrate check: 24000/1001 = {float(Fraction(24000, 1001)):.6f} fps (a rounded 23.98 drifts "
          f"{abs(23.98 - 24000 / 1001) * 3600:.1f} frames per hour)")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
