"""Benchmarks of the synthesis pipeline (issue 3 item 5 and its must-show). Prints figures and ratios.

    python bench/synth.py                       # a, b, c, d at modest sizes (a few minutes on 2 CPU cores)
    python bench/synth.py --only a,d            # some of them
    python bench/synth.py --only scale          # the must-show: four 640x384 sequences of 40 frames
    python bench/synth.py --size 1280x720 --frames-per-seq 15

(a) flow evaluations per window, counted: PairMagnitudes (each pair once) vs recomputing every window's flows,
    stride 1, N = 7..13.
(b) pipeline wall time / pure flow time on the same pairs (DIS, 1280x720; goal <= 1.3).
(c) raw frames per second through the whole pipeline at 1280x720 (CPU DIS; RAFT-large on CUDA when present).
(d) HDF5 write/read MB/s and size per compression option, on real synthesized windows.
scale: wall time of --stride 1 vs --stride 7 (must be <= 2x); --part 1/2 + 2/2 == full run; a run killed
    (SIGKILL) after its first finished shard, then rerun == full run.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmpdata import h5format  # noqa: E402
from mmpdata.flow import make_estimator  # noqa: E402
from mmpdata.footage import render_sample_footage  # noqa: E402
from mmpdata.magnitude import PairMagnitudes  # noqa: E402
from mmpdata.pipeline import synthesize  # noqa: E402
from mmpdata.rawio import discover_sequences  # noqa: E402
from mmpdata.windows import plan_windows  # noqa: E402


# ------------------------------------------------------------------------------------------------------- (a)
class CountingEstimator:
    """Counts flow fields asked for; returns zeros (only the bookkeeping is measured)."""

    batch = 8

    def __init__(self):
        self.fields = 0

    def magnitudes(self, first, second):
        self.fields += len(first)
        return np.zeros((len(first), *first[0].shape[:2]), np.float32)


def bench_flow_counts(length: int = 200) -> None:
    print(f"(a) flow evaluations per window, stride 1, sequence of {length} frames")
    print("    N   windows   pair-cache/window   naive/window   naive/pair-cache   max cached pairs")
    frame = np.zeros((8, 8, 3), np.uint8)
    for n in range(7, 14):
        windows = plan_windows(length, (n, n), 1, 0, "bench")
        est = CountingEstimator()
        pm = PairMagnitudes(lambda i: frame, length, est)
        for w in windows:
            pm.window_mmp(w.first, w.last, 15.0)
        naive = sum(2 * (w.n - 1) for w in windows)
        assert est.fields == pm.flow_evaluations == 2 * (length - 1)
        print(f"   {n:2d}   {len(windows):7d}   {est.fields / len(windows):17.3f}   {naive / len(windows):12.1f}"
              f"   {naive / est.fields:16.2f}   {pm.max_cached_pairs:16d}")


# --------------------------------------------------------------------------------------------------- (b), (c)
def _footage(root: Path, size, frames, sequences, seed=0) -> Path:
    t0 = time.perf_counter()
    render_sample_footage(root, sequences=sequences, frames=frames, size=size, seed=seed, split=False,
                          progress=False)
    print(f"    (rendered {sequences} x {frames} frames at {size[0]}x{size[1]} in {time.perf_counter() - t0:.1f} s)")
    return root


def pure_flow_seconds(raw: Path, spec: str, frames: int, stride: int | None, batch: int = 4, device=None) -> float:
    """Flow alone: the same pairs, same batching, frames already decoded and in memory."""
    est = make_estimator(spec, device=device, batch=batch)
    total = 0.0
    for seq in discover_sequences(raw):
        imgs = [seq.read(i) for i in range(len(seq))]
        windows = plan_windows(len(seq), (frames, frames), stride, 0, seq.name)
        pm = PairMagnitudes(lambda i: imgs[i], len(seq), est)
        t0 = time.perf_counter()
        for w in windows:
            pm.magnitudes(w.first, w.last)
        total += time.perf_counter() - t0
    return total


def bench_pipeline(work: Path, size, frames_per_seq: int, sequences: int = 1) -> Path:
    w, h = size
    print(f"(b)+(c) pipeline vs pure flow, DIS, {w}x{h}, {sequences} sequence(s) of {frames_per_seq} frames, "
          "--frames 7 (stride 7)")
    raw = _footage(work / "raw_bc", size, frames_per_seq, sequences)
    flow_s = pure_flow_seconds(raw, "dis", 7, None)
    out = work / "bc" / "X.h5"
    t0 = time.perf_counter()
    res = synthesize(raw, out, flow="dis", frames="7", seed=0, progress=False)
    wall = time.perf_counter() - t0
    used = sum(len(range(0, frames_per_seq - 6, 7)) * 7 for _ in range(sequences))
    print(f"    pure flow {flow_s:.2f} s; pipeline wall {wall:.2f} s (of which in the estimator {res.flow_seconds:.2f} s)")
    print(f"    (b) pipeline wall / pure flow = {wall / flow_s:.3f}   (goal <= 1.3)")
    print(f"    (c) CPU DIS: {used / wall:.2f} raw frames/s through the pipeline, "
          f"{res.pairs_computed * 2 / flow_s:.2f} flow fields/s pure")
    try:
        import torch

        if torch.cuda.is_available():
            from mmpdata.flow import raft_weights_available

            if raft_weights_available("raft-large"):
                out2 = work / "bc_raft" / "X.h5"
                t0 = time.perf_counter()
                synthesize(raw, out2, flow="raft-large", frames="7", seed=0, progress=False, batch=8)
                wall2 = time.perf_counter() - t0
                print(f"    (c) CUDA RAFT-large: {used / wall2:.2f} raw frames/s through the pipeline")
            else:
                print("    (c) RAFT-large skipped: no weights in the torch hub cache")
        else:
            print("    (c) RAFT-large skipped: no CUDA device")
    except ImportError:
        pass
    return out


# ------------------------------------------------------------------------------------------------------- (d)
def bench_hdf5(work: Path, source: Path, repeats: int = 2) -> None:
    with h5py.File(source, "r") as f:
        name = sorted(f["sequences"])[0]
        g = f["sequences"][name]
        blur, sharp, mmp, window = g["blur"][()], g["sharp"][()], g["mmp"][()], g["window"][()]
    reps = -(-8 // len(window))  # at least 8 windows (repeats of the real ones)
    blur, sharp, mmp, window = (np.concatenate([x] * reps) for x in (blur, sharp, mmp, window))
    t, h, w = mmp.shape
    raw_mb = (blur.nbytes + sharp.nbytes + mmp.nbytes + window.nbytes) / 1e6
    print(f"(d) HDF5 per compression, {t} synthesized windows at {w}x{h} ({raw_mb:.1f} MB uncompressed); "
          "chunk = one window")
    print("    compression       write MB/s   read MB/s   size MB   ratio   plain h5py reads it")
    attrs = {"format": "mmp-h5", "format_version": 1}
    for comp in ["none", "gzip-1", "gzip-4", "lzf", "lz4", "blosc-lz4", "blosc-zstd"]:
        try:
            h5format.compression_options(comp)
        except ValueError:
            continue
        wt, rt = [], []
        path = work / "hdf5" / f"{comp}.h5"
        for _ in range(repeats):
            t0 = time.perf_counter()
            with h5format.ShardWriter(path, t, (h, w), attrs, compression=comp) as wr:
                for i in range(t):
                    wr.write(i, blur[i], sharp[i], mmp[i], window[i])
            wt.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with h5py.File(path, "r") as f:
                for i in range(t):
                    f["blur"][i], f["sharp"][i], f["mmp"][i]
            rt.append(time.perf_counter() - t0)
        size = path.stat().st_size / 1e6
        builtin = comp in ("none", "lzf") or comp.startswith("gzip")
        print(f"    {comp:16s} {raw_mb / min(wt):10.1f}  {raw_mb / min(rt):10.1f}  {size:8.2f}  {raw_mb / size:6.2f}"
              f"   {'yes' if builtin else 'needs hdf5plugin'}")


# ----------------------------------------------------------------------------------------------------- scale
def _contents(index: Path) -> dict:
    out = {}
    with h5py.File(index, "r") as f:
        for name in f["sequences"]:
            g = f["sequences"][name]
            out[name] = {k: g[k][()].tobytes() for k in g}
    return out


def bench_scale(work: Path, size=(640, 384), frames=40, sequences=4) -> None:
    print(f"scale (issue 3 must-show): {sequences} sequences of {frames} frames at {size[0]}x{size[1]}, "
          "--flow dis --frames 7")
    raw = _footage(work / "raw_scale", size, frames, sequences, seed=3)
    walls = {}
    for stride in (7, 1):
        out = work / f"stride{stride}" / "X.h5"
        t0 = time.perf_counter()
        res = synthesize(raw, out, flow="dis", frames="7", stride=stride, seed=1, progress=False)
        walls[stride] = time.perf_counter() - t0
        print(f"    --stride {stride}: {res.windows} windows, {walls[stride]:.1f} s")
    print(f"    stride 1 / stride 7 wall time = {walls[1] / walls[7]:.2f}   (must be <= 2)")
    full = _contents(work / "stride7" / "X.h5")
    parts = work / "parts" / "X.h5"
    for p in ("1/2", "2/2"):
        synthesize(raw, parts, flow="dis", frames="7", stride=7, seed=1, part=p, progress=False)
    print(f"    --part 1/2 then 2/2 == full run: {_contents(parts) == full}")
    killed = work / "killed" / "X.h5"
    code = ("import sys; sys.path.insert(0, sys.argv[3]); from mmpdata.pipeline import synthesize; "
            "synthesize(sys.argv[1], sys.argv[2], flow='dis', frames='7', stride=7, seed=1, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(raw), str(killed), str(Path(__file__).parents[1])])
    while proc.poll() is None and not h5format.list_shards(killed):
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = sorted(p.name for p in h5format.shards_dir(killed).iterdir())
    print(f"    killed after the first shard; left in X.shards: {left}")
    res = synthesize(raw, killed, flow="dis", frames="7", stride=7, seed=1, progress=False)
    print(f"    rerun: {len(res.resumed)} shard(s) kept, {len(res.written)} written; == full run: "
          f"{_contents(killed) == full}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="a,b,d", help="comma-separated: a, b (includes c), d, scale")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames-per-seq", type=int, default=15)
    ap.add_argument("--work", default=None, help="working folder (default: a temporary one, removed)")
    args = ap.parse_args()
    which = set(args.only.split(","))
    size = tuple(int(v) for v in args.size.split("x"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        if "a" in which:
            bench_flow_counts()
        out = None
        if "b" in which or "c" in which or "d" in which:
            out = bench_pipeline(work, size, args.frames_per_seq)
        if "d" in which:
            bench_hdf5(work, out)
        if "scale" in which:
            bench_scale(work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
