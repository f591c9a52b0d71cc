"""Inference speed, quality cost and memory of --precision / channels-last / --tile, measured side by side.

Timing (``--only time``): every variant streams the same random frames with random weights, in interleaved rounds
(variant A, B, C, ... then again), so load from other jobs hits all of them alike; each round's times are divided
by the round's fp32 baseline (ours before this work: float32, NCHW frames) and, given ``--authors PATH`` (a checkout
of the authors' repository), by their own fp32 code run as their test.py runs it: 20-frame chunks, time per output
frame. The authors' modules are imported from PATH at run time (never copied); the MMP-Net file their code loads
from the working directory is written there from a freshly initialised UNet (random weights time the same). The
``mmp profile --time --json`` command itself is run in each round too (a subprocess, default precision).

Quality (``--only quality --checkpoint CK --data H5``): one trained checkpoint on every frame of every sequence of
an mmp-h5 file, at fp32 and at each reduced-precision variant: PSNR against the sharp frames, the difference to the
fp32 PSNR, the PSNR of the variant's output against the fp32 output and the largest 8-bit difference; tiled
against untiled too.

Memory (``--only memory``): peak resident memory of a subprocess that deblurs a few frames of a given size,
untiled and tiled (``--memory-sizes``, ``--tiles``).

    python bench/infer.py --authors /tmp/authors/MMP-RNN --rounds 3
    python bench/infer.py --only quality --checkpoint RUN/best.pt --data sample.h5
    python bench/infer.py --only memory --memory-sizes 1920x1080,3840x2160 --tiles 0,512
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmpmodel import precision as P  # noqa: E402
from mmpmodel.mmprnn import RADIUS, MMPRNN  # noqa: E402
from mmpmodel.profile import parse_size  # noqa: E402

AUTHORS_CHUNK = 20  # frames per forward in their test.py (para.test_frames)


# ------------------------------------------------------------------------------------------------ the variants
class Ours:
    """Our streaming stepper over one variant: (precision, channels_last, fp32 modules, autocast)."""

    def __init__(self, base: MMPRNN, precision: str, channels_last: bool, frame: torch.Tensor, keep=None,
                 autocast: bool = False):
        saved = P.FP32_MODULES
        if keep is not None:
            P.FP32_MODULES = keep
        try:
            self.model, _ = P.for_inference(base, precision, "cpu", channels_last=channels_last)
        finally:
            P.FP32_MODULES = saved
        self.frame = frame
        self.autocast = autocast
        self.stepper = self.model.stepper()

    def _ctx(self):
        return torch.autocast("cpu", torch.bfloat16) if self.autocast else contextlib.nullcontext()

    def time(self, frames: int) -> float:
        with torch.inference_mode(), self._ctx():
            if not self.stepper._features:
                for _ in range(RADIUS + 3):  # fill the window, select kernels
                    self.stepper.push(self.frame)
            start = time.perf_counter()
            for _ in range(frames):
                self.stepper.push(self.frame)
            return (time.perf_counter() - start) / frames


@contextlib.contextmanager
def authors_code(code_dir: Path, work: Path):
    """Their packages importable from ``code_dir`` with cwd = ``work`` (their cell loads ./model_best.pth.tar);
    ``thop`` (only their FLOP counter uses it) stubbed when missing; their ``data`` package entered without its
    __init__ (which pulls in lmdb readers). Undone afterwards."""
    saved_path, saved_cwd, saved_modules = list(sys.path), os.getcwd(), set(sys.modules)
    if "thop" not in sys.modules:
        stub = types.ModuleType("thop")
        stub.profile = None
        sys.modules["thop"] = stub
    data = types.ModuleType("data")
    data.__path__ = [str(code_dir / "data")]
    sys.modules["data"] = data
    sys.path.insert(0, str(code_dir))
    os.chdir(work)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if name.split(".")[0] in ("model", "data", "thop"):
                del sys.modules[name]


class Authors:
    """Their MMPRNN (fp32, CPU) on 20-frame chunks: seconds per output frame (16 per chunk), as their test.py."""

    def __init__(self, code_dir: Path, n_a: int, n_b: int, n_c: int, size: tuple[int, int]):
        import importlib

        self.work = Path(tempfile.mkdtemp(prefix="authors_"))
        with authors_code(code_dir, self.work):
            unet = importlib.import_module("model.UNet").UNet()
            torch.save({"state_dict": unet.state_dict()}, self.work / "model_best.pth.tar")
            net_module = importlib.import_module("model.MMPRNN")
            para = argparse.Namespace(model="MMPRNN", n_features=n_c, n_blocks_a=n_a, n_blocks_b=n_b,
                                      future_frames=2, past_frames=2, activation="gelu", do_skip=True,
                                      centralize=True, normalize=True)
            self.net = net_module.Model(para).eval()
        self.net.device = torch.device("cpu")  # their Model hard-codes cuda for the recurrent states
        w, h = size
        self.chunk = torch.rand(1, AUTHORS_CHUNK, 3, h, w) - 0.5
        with torch.no_grad():
            self.net(self.chunk[:, :6])  # warm-up

    def time(self, frames: int) -> float:
        with torch.no_grad():
            start = time.perf_counter()
            out = self.net(self.chunk)
            return (time.perf_counter() - start) / out.shape[1]


class ProfileCommand:
    """``mmp profile PRESET --size WxH --time --json`` (default precision) as a user runs it: seconds_per_frame."""

    def __init__(self, preset: str, size: tuple[int, int]):
        self.args = [sys.executable, "-m", "cli", "profile", preset, "--size", f"{size[0]}x{size[1]}", "--time",
                     "--json"]
        self.precision = None

    def time(self, frames: int) -> float:
        out = subprocess.run(self.args + ["--repeats", str(frames)], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
        result = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
        self.precision = result["precision"]
        return result["seconds_per_frame"]


def run_timing(args) -> dict:
    size = parse_size(args.size)
    w, h = size
    torch.manual_seed(0)
    base = MMPRNN(args.preset).eval()
    nchw = torch.rand(1, 3, h, w)
    decoded = torch.rand(1, h, w, 3).permute(0, 3, 1, 2)  # as a decoded HWC frame arrives: channels-last strides
    auto = P.resolve_precision("auto", "cpu")
    variants = {
        "ours fp32, NCHW (before)": Ours(base, "fp32", False, nchw),
        "ours fp32, channels-last": Ours(base, "fp32", True, decoded),
        "ours autocast bf16, NCHW": Ours(base, "fp32", False, nchw, autocast=True),
        "ours bf16, channels-last, skip+add fp32 (--precision bf16)": Ours(base, "bf16", True, decoded),
        "ours bf16, channels-last, skip bf16": Ours(base, "bf16", True, decoded, keep=()),
        "ours bf16, channels-last, prior fp32": None,
    }
    prior32 = Ours(base, "bf16", True, decoded)
    if prior32.model.prior is not None:
        prior32.model.prior.float().to(memory_format=torch.channels_last)
        prior32.stepper = prior32.model.stepper()
        variants["ours bf16, channels-last, prior fp32"] = prior32
    else:
        del variants["ours bf16, channels-last, prior fp32"]
    if args.profile_command:
        variants[f"`mmp profile {args.preset} --size {args.size} --time --json` (default: {auto})"] = \
            ProfileCommand(args.preset, size)
    if args.authors:
        cfg = base.config
        variants["authors' code, fp32, 20-frame chunks"] = Authors(Path(args.authors), cfg.n_a, cfg.n_b, cfg.n_c,
                                                                   size)
    baseline = "ours fp32, NCHW (before)"
    times = {name: [] for name in variants}
    for r in range(args.rounds):
        for name, variant in variants.items():
            times[name].append(variant.time(args.frames))
        print(f"round {r + 1}: " + ", ".join(f"{n.split(' (')[0][:40]}={t[-1]:.3f}" for n, t in times.items()),
              file=sys.stderr, flush=True)
    rows = []
    authors = "authors' code, fp32, 20-frame chunks"
    for name, ts in times.items():
        row = {"variant": name, "seconds_per_frame": statistics.median(ts), "all": [round(t, 4) for t in ts],
               "vs_fp32_before": statistics.median(t / b for t, b in zip(ts, times[baseline]))}
        if authors in times:
            row["vs_authors"] = statistics.median(t / a for t, a in zip(ts, times[authors]))
        rows.append(row)
    return {"preset": args.preset, "size": list(size), "threads": torch.get_num_threads(), "rounds": args.rounds,
            "frames_per_round": args.frames, "auto": auto, "rows": rows}


# ------------------------------------------------------------------------------------------------------ quality
def _uint8(x: torch.Tensor) -> np.ndarray:
    return x[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _stream(model, frames, tile=None):
    from mmpmodel.tiling import TiledStepper

    stepper = TiledStepper(model, tile) if tile else model.stepper()
    outs = []
    with torch.inference_mode():
        for img in frames:
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div_(255.0)
            outs += [_uint8(o) for _, o in stepper.push(x)]
        outs += [_uint8(o) for _, o in stepper.finish()]
    return outs


def run_quality(args) -> dict:
    from mmpdata.datasets import open_h5, read_index
    from mmpmodel.checkpoint import load_deblur
    from mmpmodel.metrics import psnr

    base, _ = load_deblur(args.checkpoint)
    base.eval()
    variants = {"fp32": lambda: P.for_inference(base, "fp32", "cpu")[0],
                "bf16 (skip + final add fp32)": lambda: P.for_inference(base, "bf16", "cpu")[0]}

    def skip_bf16():
        saved, P.FP32_MODULES = P.FP32_MODULES, ()
        try:
            return P.for_inference(base, "bf16", "cpu")[0]
        finally:
            P.FP32_MODULES = saved

    variants["bf16, skip conv in bf16"] = skip_bf16
    if base.prior is not None:
        def prior_fp32():
            m = P.for_inference(base, "bf16", "cpu")[0]
            m.prior.float().to(memory_format=torch.channels_last)
            return m
        variants["bf16, prior fp32"] = prior_fp32
    if args.quality_fp16:
        variants["fp16"] = lambda: P.for_inference(base, "fp16", "cpu")[0]
    tiles = [int(t) for t in args.quality_tiles.split(",") if t]
    outs = {name: [] for name in list(variants) + [f"fp32, --tile {t}" for t in tiles]}
    sharp, names = [], []
    infos = read_index(args.data)
    with open_h5(args.data) as f:
        for info in infos:
            g = f["sequences"][info.name]
            blur = [g["blur"][t] for t in range(info.frames)]
            sharp += [g["sharp"][t] for t in range(info.frames)]
            names.append(info.name)
            for name, make in variants.items():
                outs[name] += _stream(make(), blur)
            for t in tiles:
                outs[f"fp32, --tile {t}"] += _stream(variants["fp32"](), blur, tile=t)
    ref = outs["fp32"]
    ref_psnr = float(np.mean([psnr(o, s) for o, s in zip(ref, sharp)]))
    rows = []
    for name, os_ in outs.items():
        p = float(np.mean([psnr(o, s) for o, s in zip(os_, sharp)]))
        diff = [np.abs(o.astype(int) - r.astype(int)) for o, r in zip(os_, ref)]
        same = [psnr(o, r) for o, r in zip(os_, ref)]
        rows.append({"variant": name, "psnr": p, "psnr_minus_fp32": p - ref_psnr,
                     "max_8bit_diff_to_fp32": int(max(d.max() for d in diff)),
                     "pixels_differing_from_fp32": float(np.mean([(d > 0).mean() for d in diff])),
                     "psnr_to_fp32_output": float(np.mean(same)) if name != "fp32" else None})
    w, h = infos[0].width, infos[0].height
    return {"checkpoint": str(args.checkpoint), "model": base.config.name, "data": str(args.data),
            "sequences": names, "frames": len(sharp), "size": [w, h], "rows": rows}


# ------------------------------------------------------------------------------------------------------- memory
_MEMORY_CHILD = r"""
import json, resource, sys, time, torch
from mmpmodel.mmprnn import MMPRNN, deblur_frames
preset, w, h, tile, frames, precision = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), \
    int(sys.argv[5]), sys.argv[6]
torch.manual_seed(0)
model = MMPRNN(preset).eval()
img = torch.rand(1, h, w, 3)
def gen():
    for _ in range(frames):
        yield img[0].permute(2, 0, 1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
n = sum(1 for _ in deblur_frames(model, gen(), "cpu", precision=precision, tile=tile or None))
seconds = (time.perf_counter() - start) / n
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_rss_gib": peak / 2**20, "model_rss_gib": before / 2**20, "seconds_per_frame": seconds}))
"""


def run_memory(args) -> dict:
    rows = []
    for size in args.memory_sizes.split(","):
        w, h = parse_size(size)
        for tile in [int(t) for t in args.tiles.split(",")]:
            if tile and tile >= max(w, h):
                continue
            cmd = [sys.executable, "-c", _MEMORY_CHILD, args.preset, str(w), str(h), str(tile),
                   str(args.memory_frames), args.memory_precision]
            res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if res.returncode != 0:
                rows.append({"size": [w, h], "tile": tile or None, "error": res.stderr.strip().splitlines()[-1]})
            else:
                rows.append({"size": [w, h], "tile": tile or None, **json.loads(res.stdout.strip().splitlines()[-1])})
            print(rows[-1], file=sys.stderr, flush=True)
    return {"preset": args.preset, "precision": P.resolve_precision(args.memory_precision, "cpu"),
            "frames": args.memory_frames, "rows": rows}


# ------------------------------------------------------------------------------------------------------ output
def markdown(result: dict) -> str:
    lines = []
    if "timing" in result:
        t = result["timing"]
        has_authors = any("vs_authors" in r for r in t["rows"])
        lines += [f"{t['preset']} streaming {t['size'][0]}x{t['size'][1]}, {t['threads']} threads, median of "
                  f"{t['rounds']} interleaved rounds ({t['frames_per_round']} frames per variant per round):", "",
                  "| variant | s/frame | / ours fp32 before |" + (" / authors' fp32 |" if has_authors else ""),
                  "|---|---|---|" + ("---|" if has_authors else "")]
        for r in t["rows"]:
            lines.append(f"| {r['variant']} | {r['seconds_per_frame']:.3f} | {r['vs_fp32_before']:.2f} |"
                         + (f" {r['vs_authors']:.2f} |" if has_authors else ""))
        lines.append("")
    if "quality" in result:
        q = result["quality"]
        lines += [f"{q['model']} checkpoint {q['checkpoint']} on {q['data']} ({q['frames']} frames "
                  f"{q['size'][0]}x{q['size'][1]}, every frame):", "",
                  "| variant | PSNR (dB) | − fp32 PSNR (dB) | PSNR to fp32 output (dB) | max 8-bit diff to fp32 | "
                  "pixels ≠ fp32 |", "|---|---|---|---|---|---|"]
        for r in q["rows"]:
            to32 = "—" if r["psnr_to_fp32_output"] is None else f"{r['psnr_to_fp32_output']:.2f}"
            lines.append(f"| {r['variant']} | {r['psnr']:.4f} | {r['psnr_minus_fp32']:+.4f} | {to32} | "
                         f"{r['max_8bit_diff_to_fp32']} | {100 * r['pixels_differing_from_fp32']:.2f} % |")
        lines.append("")
    if "memory" in result:
        m = result["memory"]
        lines += [f"{m['preset']} at {m['precision']}, {m['frames']} frames, random weights; peak resident memory "
                  "of the whole process:", "", "| frame | tile | peak RSS (GiB) | s/frame |", "|---|---|---|---|"]
        for r in m["rows"]:
            if "error" in r:
                lines.append(f"| {r['size'][0]}x{r['size'][1]} | {r['tile'] or 'none'} | {r['error']} | |")
            else:
                lines.append(f"| {r['size'][0]}x{r['size'][1]} | {r['tile'] or 'none'} | {r['peak_rss_gib']:.2f} | "
                             f"{r['seconds_per_frame']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="time", help="comma list of time, quality, memory")
    ap.add_argument("--preset", default="A3B4C16F5")
    ap.add_argument("--size", default="640x352")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=4, help="timed frames per variant per round")
    ap.add_argument("--authors", default=None, help="the authors' MMP-RNN code folder (with model/, data/)")
    ap.add_argument("--no-profile-command", dest="profile_command", action="store_false")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--quality-tiles", default="", help="also compare fp32 tiled runs, e.g. 64,128")
    ap.add_argument("--quality-fp16", action="store_true")
    ap.add_argument("--memory-sizes", default="1920x1080")
    ap.add_argument("--tiles", default="0,512")
    ap.add_argument("--memory-frames", type=int, default=3)
    ap.add_argument("--memory-precision", default="auto")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    parts = set(args.only.split(","))
    result = {"machine": {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "native_bf16": P.cpu_native_bf16(), "torch": torch.__version__,
                          "threads": torch.get_num_threads()}, "date": time.strftime("%Y-%m-%d %H:%M")}
    if "time" in parts:
        result["timing"] = run_timing(args)
    if "quality" in parts:
        if not (args.checkpoint and args.data):
            ap.error("--only quality needs --checkpoint and --data")
        result["quality"] = run_quality(args)
    if "memory" in parts:
        result["memory"] = run_memory(args)
    if args.json:
        tmp = Path(args.json).with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, args.json)
    print(markdown(result))


if __name__ == "__main__":
    main()
