"""One-shot GPU check (<= 8 minutes on one CUDA GPU): prints one JSON object.

* RAFT-large optical flow pairs/s at 720p (torchvision, random weights: the speed does not depend on them), fp32
  and fp16 autocast.
* MMP-RNN A3B4C16 and A9B10C18 streaming at 720p: seconds per frame for each precision (fp32, fp16, bf16 where the
  GPU has it) with and without channels-last, and each reduced precision's output against fp32's (PSNR, max 8-bit
  difference). Random weights with the decoder's tail at full scale, so the network's own output (not only the
  identity-like skip) shows its rounding.
* One training step of A3B4C16 (batch 8 x 8 frames x 256^2, Adam, clip 20) in fp32 and with AMP (fp16 +
  GradScaler): seconds per step and whether the loss is finite.
* One DistributedDataParallel step in a 1-process NCCL group (rendezvous on localhost).

``--dry-run`` runs the same code on the CPU at tiny sizes (gloo instead of NCCL, bf16 instead of fp16) so the
script is exercised by the tests on machines without a GPU. A section that would overrun the time budget is
skipped and says so.

    python bench/gpu_check.py            # on a CUDA machine
    python bench/gpu_check.py --dry-run  # anywhere
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmpmodel import precision as P  # noqa: E402
from mmpmodel.mmprnn import MMPRNN  # noqa: E402


class Budget:
    """Wall-clock budget: sections ask before starting."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def smooth_frames(n: int, h: int, w: int, device, seed: int = 0) -> torch.Tensor:
    """(n, 3, h, w) in [0, 1]: low-frequency random images, so outputs look like images, not noise."""
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, max(2, h // 16), max(2, w // 16), generator=gen)
    frames = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return frames.to(device).contiguous(memory_format=torch.channels_last)


# -------------------------------------------------------------------------------------------------------- RAFT
def raft_check(device, size, iters, repeats, reduced) -> dict:
    from torchvision.models.optical_flow import raft_large

    w, h = size
    net = raft_large(weights=None, progress=False).to(device).eval()
    a, b = smooth_frames(2, h, w, device).mul(2).sub(1).contiguous().chunk(2)
    out = {"size": [w, h], "flow_updates": iters}
    with torch.inference_mode():
        for name in ("fp32", reduced):
            ctx = P.autocast(name, device)
            with ctx:
                net(a, b, num_flow_updates=iters)  # warm-up
                seconds = timed(lambda: net(a, b, num_flow_updates=iters), device, repeats)
            out[f"pairs_per_s_{name}"] = 1.0 / seconds
    return out


# ------------------------------------------------------------------------------------------------------ MMP-RNN
def _psnr(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """PSNR of 8-bit images in dB; None when they are identical (keeps the JSON strict)."""
    mse = (a.float() - b.float()).pow(2).mean().item()
    return None if mse == 0 else 10 * torch.log10(torch.tensor(255.0 ** 2 / mse)).item()


def mmprnn_check(preset, device, size, frames, precisions, budget) -> dict:
    torch.manual_seed(0)
    base = MMPRNN(preset).eval()
    with torch.no_grad():
        base.decoder[-1].weight.mul_(10)  # undo the near-identity start's 0.1
    w, h = size
    clip = smooth_frames(frames, h, w, device)
    result, reference = {}, None
    for name in precisions:
        for channels_last in (True, False):
            if budget.left() < 20:
                result[f"{name}{'' if channels_last else ', NCHW'}"] = "skipped: time budget"
                continue
            model, _ = P.for_inference(base, name, device, channels_last=channels_last)
            stepper = model.stepper()
            feed = clip if channels_last else clip.contiguous()
            outs = []
            with torch.inference_mode():
                for i in range(3):  # fill the window, pick kernels
                    stepper.push(feed[i:i + 1])
                stepper.finish()
                sync(device)
                start = time.perf_counter()
                for i in range(frames):
                    outs += [o for _, o in stepper.push(feed[i:i + 1])]
                outs += [o for _, o in stepper.finish()]
                sync(device)
                seconds = (time.perf_counter() - start) / frames
            out8 = torch.cat(outs).clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
            row = {"seconds_per_frame": seconds}
            if name == "fp32" and channels_last:
                reference = out8
            elif reference is not None:
                row["psnr_to_fp32"] = _psnr(out8, reference)
                row["max_8bit_diff_to_fp32"] = int((out8.int() - reference.int()).abs().max())
            result[f"{name}{'' if channels_last else ', NCHW'}"] = row
    return result


# ----------------------------------------------------------------------------------------------------- training
def train_check(device, batch, frames, patch, reduced, budget) -> dict:
    out = {"batch": [batch, frames, patch, patch]}
    for name in ("fp32", reduced):
        if budget.left() < 30:
            out[name] = "skipped: time budget"
            continue
        torch.manual_seed(0)
        model = MMPRNN("A3B4C16F5").to(device).train()
        opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")
        clip = torch.rand(batch, frames, 3, patch, patch, device=device)
        target = clip[:, 2:-2]

        def step():
            opt.zero_grad(set_to_none=True)
            with P.autocast(name, device):
                pred = model(clip)
            loss = torch.sqrt((pred.float() - target) ** 2 + 1e-6).mean()
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), 20.0)
            scaler.step(opt)
            scaler.update()
            return loss

        loss = step()  # warm-up
        seconds = timed(step, device, 2)
        out[name] = {"seconds_per_step": seconds, "loss_finite": bool(torch.isfinite(loss).item())}
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_check(device, patch) -> dict:
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(_free_port())
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = MMPRNN("A1B1C4F5").to(device).train()
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index or 0]
                                                        if device.type == "cuda" else None)
        opt = torch.optim.Adam([p for p in ddp.parameters() if p.requires_grad], lr=1e-4)
        clip = torch.rand(2, 5, 3, patch, patch, device=device)
        before = model.head.weight.detach().clone()
        start = time.perf_counter()
        loss = (ddp(clip) - clip[:, 2:3]).abs().mean()
        loss.backward()
        opt.step()
        sync(device)
        return {"backend": backend, "seconds": time.perf_counter() - start,
                "weights_moved": bool((model.head.weight.detach() != before).any().item())}
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes (what the tests run)")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for the whole check (default 7.5 min)")
    args = ap.parse_args(argv)
    budget = Budget(args.budget)
    if args.dry_run:
        device = torch.device("cpu")
        size, frames, raft = (64, 48), 3, dict(size=(128, 128), iters=2, repeats=1)
        precisions, reduced = ["fp32", "bf16"], "bf16"
        train = dict(batch=1, frames=5, patch=32)
        presets = ("A1B1C4F5",)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("error: no CUDA GPU here; run with --dry-run for the CPU path")
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
        size, frames, raft = (1280, 720), 12, dict(size=(1280, 720), iters=12, repeats=5)
        precisions = ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
        reduced = "fp16"
        train = dict(batch=8, frames=8, patch=256)
        presets = ("A3B4C16F5", "A9B10C18F8")
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)",
              "torch": torch.__version__, "auto_precision": P.resolve_precision("auto", device)}
    start = time.perf_counter()
    report["raft_large"] = raft_check(device, raft["size"], raft["iters"], raft["repeats"], reduced)
    report["mmprnn"] = {}
    for preset in presets:
        report["mmprnn"][preset] = mmprnn_check(preset, device, size, frames, precisions, budget)
    report["mmprnn_size"] = list(size)
    report["train_step"] = train_check(device, train["batch"], train["frames"], train["patch"], reduced, budget)
    report["ddp_step"] = ddp_check(device, 32 if args.dry_run else 128)
    report["seconds"] = time.perf_counter() - start
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
