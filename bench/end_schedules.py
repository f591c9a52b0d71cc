"""How should a recurrent deblurrer start a sequence? The gain of the first and last frames under other schedules.

Why: MMP-RNN fuses the features of RADIUS frames on each side and carries a state from the past. At a sequence's
start it has neither; `--ends replicate` repeats frame 0 instead. `mmp eval`'s `gain_by_position` shows the first
frame gaining a fraction of what the next ones gain. This script asks whether a better start helps, without
training: run the recurrent cell through frames K..1 first (a state that has seen real, neighbouring content), run
the video backwards (frame 0 is then the last frame, with a real past), or average a forward and a backward pass.

    python bench/end_schedules.py sample-deblur other.h5 [--schedules replicate warm3 backward average]

Schedules: ``replicate`` (as shipped), ``warmK`` (frames K..1 stepped before the replicated start; their outputs
dropped), ``reflect-warmK`` (frames K..1 then the sequence: the fused neighbours of frame 0 are frames 2, 1),
``backward`` (the time-reversed video, replicate ends), ``first-backward`` (frame 0 from the backward pass, the rest
forward), ``average`` (mean of the forward and backward outputs: two passes).

``--starts K ...`` (default 1 2) also deblurs each sequence from frame K on and prints frame K's gain as the first
frame beside its gain in place: the cost of the position itself, apart from what frame 0's content is.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmpdata.datasets import open_data  # noqa: E402
from mmpmodel.blocks import crop_to, pad_to_multiple  # noqa: E402
from mmpmodel.checkpoint import load_deblur  # noqa: E402
from mmpmodel.metrics import psnr, tensor_to_uint8  # noqa: E402
from mmpmodel.mmprnn import RADIUS, SIZE_MULTIPLE, end_index  # noqa: E402
from mmpmodel.weights import resolve_weights  # noqa: E402


def run_steps(model, clip: torch.Tensor, steps: list[int], first: int) -> torch.Tensor:
    """Step the cell through frame numbers ``steps`` of clip (1, F, 3, H, W); the outputs of the F steps from
    position ``first`` on (each fused with the RADIUS steps around it)."""
    size = tuple(clip.shape[-2:])
    clip = pad_to_multiple(clip, SIZE_MULTIPLE)[0]
    feats = model.encode(clip[0])
    state, fs = None, []
    for i in steps:
        f_t, state = model.step(feats[i:i + 1], state)
        fs.append(f_t)
    n = clip.shape[1]
    return crop_to(torch.cat([model.reconstruct(fs[s - RADIUS:s + RADIUS + 1], clip[:, steps[s]])
                              for s in range(first, first + n)]), size)


def deblur(model, clip: torch.Tensor, schedule: str) -> torch.Tensor:
    """(F, 3, H, W) outputs of clip (1, F, 3, H, W) under ``schedule`` (see the module docstring)."""
    n = clip.shape[1]
    if schedule in ("replicate", "backward", "first-backward", "average"):
        forward = run_steps(model, clip, end_index(n, "replicate"), RADIUS)
        if schedule == "replicate":
            return forward
        backward = run_steps(model, clip.flip(1), end_index(n, "replicate"), RADIUS).flip(0)
        if schedule == "backward":
            return backward
        if schedule == "average":
            return (forward + backward) / 2
        return torch.cat([backward[:1], forward[1:]])
    for prefix, replicated in (("reflect-warm", False), ("warm", True)):
        if schedule.startswith(prefix):
            k = min(int(schedule[len(prefix):]), n - 1)
            pre = list(range(k, 0, -1))
            start = [0] * RADIUS if replicated else []
            steps = pre + start + list(range(n)) + [n - 1] * RADIUS
            return run_steps(model, clip, steps, len(pre) + len(start))
    raise SystemExit(f"unknown schedule {schedule!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="deblurring checkpoint or registered name (e.g. sample-deblur)")
    p.add_argument("data", type=Path, help="mmp-h5 file with blur and sharp frames")
    p.add_argument("--schedules", nargs="+", default=["replicate", "warm3", "reflect-warm3", "backward",
                                                        "first-backward", "average"])
    p.add_argument("--starts", type=int, nargs="*", default=[1, 2],
                   help="also deblur each sequence from frame K on (replicate ends) and compare frame K's gain as "
                        "the first frame with its gain in place: what the position costs, apart from the content")
    a = p.parse_args()
    model, _ = load_deblur(resolve_weights(a.model, "deblur"))
    gains = {s: [] for s in a.schedules}
    as_first = {k: [] for k in a.starts}  # frame k's gain when the clip starts at k, and in place (replicate)
    with open_data(a.data) as ds, torch.inference_mode():
        for info in ds.infos:
            blur = ds.read(info.name, "blur", slice(None))
            sharp = ds.read(info.name, "sharp", slice(None))
            clip = torch.from_numpy(blur).permute(0, 3, 1, 2)[None].float() / 255
            base = np.array([psnr(b, s) for b, s in zip(blur, sharp)])

            def gain(out: torch.Tensor, start: int = 0) -> np.ndarray:
                """Gain over the input of outputs for frames start, start + 1, ..."""
                return np.array([psnr(tensor_to_uint8(o), sharp[start + i]) - base[start + i]
                                 for i, o in enumerate(out)])

            wanted = set(a.schedules) | ({"replicate"} if a.starts else set())
            by_schedule = {s: gain(deblur(model, clip, s)) for s in wanted}  # each schedule run once
            for schedule in a.schedules:
                gains[schedule].append(by_schedule[schedule])
            for k in (k for k in a.starts if 0 < k < len(blur)):
                first = gain(deblur(model, clip[:, k:], "replicate")[:1], k)[0]
                as_first[k].append((first, by_schedule["replicate"][k]))
    print(f"## {a.model} on {a.data}: gain over the blurry input (dB)\n")
    print("| schedule | all frames | first | second | second to last | last |\n|---|---|---|---|---|---|")
    for schedule, g in gains.items():
        at = lambda i: np.mean([x[i] for x in g])  # noqa: E731
        print(f"| {schedule} | {np.concatenate(g).mean():+.3f} | {at(0):+.3f} | {at(1):+.3f} | {at(-2):+.3f} | "
              f"{at(-1):+.3f} |")
    if any(as_first.values()):
        print("\n| frame | gain as the first frame (the clip starts there) | gain in place | sequences |\n|---|---|---|---|")
        for k, pairs in as_first.items():
            if pairs:
                first, placed = np.mean(pairs, axis=0)
                print(f"| {k} | {first:+.3f} | {placed:+.3f} | {len(pairs)} |")


if __name__ == "__main__":
    main()
