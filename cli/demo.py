"""``python -m cli.demo --out DIR`` (``make demo``): the whole toolkit on generated footage, in minutes on a CPU.

sample footage -> synthesize -> train-prior -> eval (prior, on footage never seen in training) -> train-deblur ->
eval --protocol all --save (and a recomputation of PSNR from the saved frames) -> deblur (a blurry video to mp4) ->
show (MMP heat maps). Ends with a summary of where every output is (also in DIR/summary.json).
Each step calls the same library function as the matching ``mmp`` command.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import click
import numpy as np

log = logging.getLogger("cli.demo")

FULL = dict(train_sequences=6, frames=30, size=(320, 192), prior_steps=300, prior_batch=8, prior_patch=96,
            deblur_preset="A2B2C8F5", deblur_steps=60, deblur_batch=4, deblur_patch=64, show_frames=3)
QUICK = dict(train_sequences=3, frames=24, size=(96, 64), prior_steps=12, prior_batch=4, prior_patch=48,
             deblur_preset="A1B1C4F5", deblur_steps=4, deblur_batch=2, deblur_patch=32, show_frames=1)


def _psnr_from_saved(save: Path, data: Path) -> float:
    """Mean PSNR recomputed from the PNGs written by eval --save (the check that the reported number is real)."""
    import cv2
    import h5py

    from mmpmodel.metrics import psnr

    scores = []
    with h5py.File(data, "r") as f:
        for seq_dir in sorted(p for p in save.iterdir() if p.is_dir()):
            sharp = f["sequences"][seq_dir.name]["sharp"]
            for png in seq_dir.glob("*.png"):
                scores.append(psnr(cv2.imread(str(png))[:, :, ::-1], sharp[int(png.stem)]))
    return float(np.mean(scores))


def _export_blurry_video(data: Path, sequence: str, folder: Path) -> Path:
    """The blurry frames of one synthesized sequence as a PNG folder: a blurry video to deblur."""
    import h5py

    from mmpmodel.evaluate import save_png

    with h5py.File(data, "r") as f:
        blur = f["sequences"][sequence]["blur"]
        for t in range(blur.shape[0]):
            save_png(folder / f"{t:06d}.png", blur[t])
    return folder


def run_demo(out: str | Path, quick: bool = False, progress: bool | None = None) -> dict:
    """Run every step into ``out``; returns the summary (paths and numbers)."""
    from mmpdata.footage import UNSEEN_IMAGES, render_sample_footage
    from mmpdata.pipeline import synthesize
    from mmpmodel.evaluate import evaluate
    from mmpmodel.inference import deblur_video
    from mmpmodel.runs import write_json
    from mmpmodel.train_deblur import train_deblur
    from mmpmodel.train_prior import train_prior
    from mmpmodel.visualize import show

    p = QUICK if quick else FULL
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    times, s = {}, {"out": str(out)}

    def tick(name):
        times[name] = round(time.time() - t0 - sum(times.values()), 1)
        log.info("demo: %s done (%.1f s)", name, times[name])

    # 1. footage: training sequences (train/ and test/ splits) and footage with photographs never used in training
    render_sample_footage(out / "footage", sequences=p["train_sequences"], frames=p["frames"], size=p["size"],
                          seed=0, split=True, progress=progress)
    render_sample_footage(out / "unseen_footage", sequences=2, frames=p["frames"], size=p["size"], seed=7,
                          split=False, images=UNSEEN_IMAGES, foreground=True, progress=progress)
    tick("footage")
    # 2. synthesize (OpenCV DIS flow: runs anywhere; use RAFT on a GPU for real data)
    train_h5, unseen_h5 = out / "train.h5", out / "unseen.h5"
    synthesize(out / "footage", train_h5, flow="dis", frames="7-13", stride=2, progress=progress)
    synthesize(out / "unseen_footage", unseen_h5, flow="dis", frames="7-13", stride=None, progress=progress)
    tick("synthesize")
    # 3. MMP-Net
    prior_run = out / "runs" / "prior"
    train_prior(train_h5, prior_run, steps=p["prior_steps"], batch_size=p["prior_batch"], patch=p["prior_patch"],
                resume=(prior_run / "last.pt").exists(), progress=progress)
    prior_eval = evaluate(prior_run / "best.pt", unseen_h5, progress=progress)
    write_json(out / "eval_prior.json", prior_eval)
    tick("train-prior + eval")
    # 4. MMP-RNN
    deblur_run = out / "runs" / "deblur"
    train_deblur(train_h5, deblur_run, preset=p["deblur_preset"], prior=prior_run / "best.pt",
                 steps=p["deblur_steps"], batch_size=p["deblur_batch"], patch=p["deblur_patch"],
                 resume=(deblur_run / "last.pt").exists(), progress=progress)
    save = out / "eval_frames"
    deblur_eval = evaluate(deblur_run / "best.pt", unseen_h5, protocol="all", save=save, progress=progress)
    write_json(out / "eval_deblur.json", deblur_eval)
    recomputed = _psnr_from_saved(save, unseen_h5)
    tick("train-deblur + eval")
    # 5. deblur a blurry video, show the prior
    first = sorted(deblur_eval["sequences"])[0]
    blurry = _export_blurry_video(unseen_h5, first, out / "blurry_video")
    deblurred = deblur_video(deblur_run / "best.pt", blurry, out / "deblurred.mp4", progress=progress)
    shown = show(unseen_h5, prior_run / "best.pt", out / "show", max_frames=p["show_frames"], progress=progress)
    tick("deblur + show")

    s.update({
        "footage": str(out / "footage"), "unseen_footage": str(out / "unseen_footage"),
        "train_data": str(train_h5), "unseen_data": str(unseen_h5),
        "prior_run": str(prior_run), "prior_checkpoint": str(prior_run / "best.pt"),
        "prior_eval": str(out / "eval_prior.json"), "prior_l1": prior_eval["l1"],
        "prior_l1_mean_baseline": prior_eval["l1_mean_baseline"],
        "deblur_run": str(deblur_run), "deblur_checkpoint": str(deblur_run / "best.pt"),
        "deblur_eval": str(out / "eval_deblur.json"), "eval_frames": str(save),
        "psnr": deblur_eval["psnr"], "psnr_input": deblur_eval["psnr_input"], "ssim": deblur_eval["ssim"], "psnr_recomputed_from_saved": recomputed,
        "blurry_video": str(blurry), "deblurred_video": deblurred["output"], "show": shown["out"],
        "seconds": times, "total_seconds": round(time.time() - t0, 1),
    })
    write_json(out / "summary.json", s)
    return s


@click.command()
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for every output.")
@click.option("--quick", is_flag=True, help="Tiny sizes and step counts (seconds; used by the tests).")
def demo(out: Path, quick: bool) -> None:
    """Run the end-to-end demo and print where every output is."""
    from mmpdata.errors import MMPError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        s = run_demo(out, quick=quick)
    except MMPError as exc:
        raise click.ClickException(str(exc)) from None
    red = 100 * (s["prior_l1"] / s["prior_l1_mean_baseline"] - 1) if s["prior_l1_mean_baseline"] else float("nan")
    click.echo("\nMMP demo finished in %.0f s (%s)\n" % (s["total_seconds"],
               ", ".join(f"{k} {v:.0f} s" for k, v in s["seconds"].items())))
    rows = [
        ("raw footage (train/test)", s["footage"]), ("unseen footage", s["unseen_footage"]),
        ("training data", s["train_data"]), ("unseen data", s["unseen_data"]),
        ("MMP-Net run", s["prior_run"]), ("MMP-Net checkpoint", s["prior_checkpoint"]),
        ("MMP-Net eval (unseen)", f"{s['prior_eval']}  L1 {s['prior_l1']:.4f} vs mean-MMP baseline "
                                  f"{s['prior_l1_mean_baseline']:.4f} ({red:+.0f} %)"),
        ("MMP-RNN run", s["deblur_run"]), ("MMP-RNN checkpoint", s["deblur_checkpoint"]),
        ("MMP-RNN eval (unseen, all frames)", f"{s['deblur_eval']}  PSNR {s['psnr']:.2f} dB "
                                              f"(recomputed from saved frames {s['psnr_recomputed_from_saved']:.2f})"
                                              f", SSIM {s['ssim']:.4f}; blurry input {s['psnr_input']:.2f} dB"),
        ("scored output frames", s["eval_frames"]), ("blurry input video", s["blurry_video"]),
        ("deblurred video", s["deblurred_video"]), ("MMP heat maps", s["show"]),
        ("this summary", str(Path(s["out"]) / "summary.json")),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"  {k:<{width}}  {v}")


if __name__ == "__main__":
    demo()
