"""``python -m cli.demo --out DIR`` (``make demo``): what the toolkit does, shown on footage it never saw.

1. renders footage of photographs the bundled weights never saw (scikit-image's coffee and rocket, camera paths of
   another seed) and synthesizes blurry/sharp/MMP data from it (OpenCV DIS flow);
2. scores the bundled weights on it: ``sample-deblur`` (PSNR gain over the blurry input) and ``sample-prior``
   (L1 against the mean-MMP predictor);
3. runs the training loop for a few steps, fine-tuning both networks from the bundled weights on the project's
   own sample footage (the loop, checkpoints, metrics and validation strips), and scores the result again;
4. deblurs a blurry video (mp4 in, mp4 out) with the bundled weights;
5. draws blurry | deblurred | sharp | MMP side by side (DIR/comparison.png) and ends with a summary that states the
   gain in dB (also DIR/summary.json).
Each step calls the same library function as the matching ``mmp`` command.
"""
from __future__ import annotations

import logging
import time
from fractions import Fraction
from pathlib import Path

import click
import numpy as np

log = logging.getLogger("cli.demo")

FULL = dict(size=(192, 128), unseen_sequences=3, unseen_frames=80, train_sequences=4, train_frames=120,
            clip_frames=8, batch=4, finetune_steps=40, finetune_val_every=20)
QUICK = dict(size=(96, 64), unseen_sequences=1, unseen_frames=24, train_sequences=2, train_frames=60,
             clip_frames=5, batch=1, finetune_steps=2, finetune_val_every=2)


def _blurry_video(data: Path, sequence: str, path: Path) -> Path:
    """The blurry frames of one synthesized sequence as an mp4 (near-lossless): a blurry video to deblur."""
    from mmpdata.datasets import open_data
    from mmpdata.video import VideoWriter

    ds = open_data(data)
    info = next(i for i in ds.infos if i.name == sequence)
    writer = VideoWriter(path, (info.height, info.width), Fraction(30), crf=0)
    ok = False
    try:
        for t in range(info.frames):
            writer.write(ds.read(sequence, "blur", t))
        ok = True
    finally:
        writer.close(ok)
    return path


def _comparison(data: Path, saved: Path, prior: str, path: Path) -> Path:
    """One frame of the first sequence: blurry | deblurred (the saved eval output) | sharp | MMP-Net's map."""
    import cv2

    from mmpdata.datasets import open_data
    from mmpmodel.api import load
    from mmpmodel.evaluate import save_png
    from mmpmodel.visualize import heat_overlay

    ds = open_data(data)
    info = ds.infos[0]
    pngs = sorted((saved / info.name).glob("*.png"))
    png = pngs[len(pngs) // 2]
    t = int(png.stem)
    blur, sharp = ds.read(info.name, "blur", t), ds.read(info.name, "sharp", t)
    out = cv2.imread(str(png))[:, :, ::-1]
    # the whole sequence (non-overlapping windows, so stored neighbours are the next exposures): a prior with
    # context reads frame t with its neighbours
    mmp = load(prior).maps([ds.read(info.name, "blur", j) for j in range(info.frames)])[t]
    panels = []
    for img, label in ((blur, "blurry"), (out, "deblurred"), (sharp, "sharp"), (heat_overlay(blur, mmp), "MMP")):
        img = cv2.resize(np.ascontiguousarray(img), (img.shape[1] * 2, img.shape[0] * 2),
                         interpolation=cv2.INTER_NEAREST)
        cv2.putText(img, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(img)
    save_png(path, np.concatenate(panels, axis=1))
    return path


def run_demo(out: str | Path, quick: bool = False, progress: bool | None = None) -> dict:
    """Run every step into ``out``; returns the summary (paths and numbers)."""
    from mmpdata.footage import DEFAULT_IMAGES, UNSEEN_IMAGES, render_sample_footage
    from mmpdata.pipeline import synthesize
    from mmpmodel.checkpoint import load_prior
    from mmpmodel.evaluate import evaluate
    from mmpmodel.inference import deblur_video
    from mmpmodel.runs import write_json
    from mmpmodel.train_deblur import train_deblur
    from mmpmodel.train_prior import train_prior
    from mmpmodel.weights import resolve_weights

    p = QUICK if quick else FULL
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    times, s = {}, {"out": str(out)}

    def tick(name):
        times[name] = round(time.time() - t0 - sum(times.values()), 1)
        log.info("demo: %s done (%.1f s)", name, times[name])

    bundled_deblur, bundled_prior = resolve_weights("sample-deblur", "deblur"), resolve_weights("sample-prior", "prior")

    # 1. footage never seen in training (other photographs, other camera paths) and the project's own footage
    render_sample_footage(out / "unseen_footage", sequences=p["unseen_sequences"], frames=p["unseen_frames"],
                          size=p["size"], seed=7, split=False, images=UNSEEN_IMAGES, progress=progress)
    render_sample_footage(out / "footage", sequences=p["train_sequences"], frames=p["train_frames"], size=p["size"],
                          seed=0, split=False, images=DEFAULT_IMAGES, progress=progress)
    unseen_h5, prior_h5, video_h5 = out / "unseen.h5", out / "train_prior.h5", out / "train_video.h5"
    synthesize(out / "unseen_footage", unseen_h5, flow="dis", frames="7-13", stride=None, seed=3, progress=progress)
    synthesize(out / "footage", prior_h5, flow="dis", frames="7-13", stride=2, seed=1, progress=progress)
    synthesize(out / "footage", video_h5, flow="dis", frames="7-13", stride=None, seed=1, progress=progress)
    tick("footage + synthesize")

    # 2. the bundled weights on unseen footage
    save = out / "eval_frames"
    deblur_eval = evaluate(bundled_deblur, unseen_h5, protocol="all", save=save, progress=progress)
    prior_eval = evaluate(bundled_prior, unseen_h5, progress=progress)
    write_json(out / "eval_deblur.json", deblur_eval)
    write_json(out / "eval_prior.json", prior_eval)
    tick("eval bundled weights")

    # 3. the training loop: fine-tune both from the bundled weights for a few steps, score again
    prior_run, deblur_run = out / "runs" / "prior", out / "runs" / "deblur"
    n, every = p["finetune_steps"], p["finetune_val_every"]
    # fine-tuning keeps what the network sees (input_norm, context) and the MMP-Net the MMP-RNN was trained with
    # (inside it)
    bundled_prior_net = load_prior(bundled_prior)[0]
    train_prior(prior_h5, prior_run, recipe="cpu", init_from="sample-prior", steps=n, val_every=every,
                input_norm=bundled_prior_net.input_norm, context=bundled_prior_net.context,
                batch_size=2 * p["batch"], patch=min(96, min(p["size"])),
                lr=1e-4, resume=(prior_run / "last.pt").exists(), progress=progress)
    train_deblur(video_h5, deblur_run, recipe="cpu", init_from="sample-deblur", steps=n,
                 frames=p["clip_frames"], batch_size=p["batch"], val_every=every, lr=1e-4, warmup_steps=0, resume=(deblur_run / "last.pt").exists(),
                 progress=progress)
    tuned_eval = evaluate(deblur_run / "last.pt", unseen_h5, protocol="all", progress=progress)
    tick("fine-tune + eval")

    # 4-5. a blurry video in, a deblurred video out; the picture
    first = sorted(deblur_eval["sequences"])[0]
    blurry = _blurry_video(unseen_h5, first, out / "blurry.mp4")
    deblurred = deblur_video(bundled_deblur, blurry, out / "deblurred.mp4", progress=progress)
    picture = _comparison(unseen_h5, save, "sample-prior", out / "comparison.png")
    tick("deblur + picture")

    gain = deblur_eval["psnr"] - deblur_eval["psnr_input"]
    s.update({
        "unseen_footage": str(out / "unseen_footage"), "unseen_data": str(unseen_h5),
        "bundled_deblur": "sample-deblur", "bundled_prior": "sample-prior",
        "psnr": deblur_eval["psnr"], "psnr_input": deblur_eval["psnr_input"], "gain_db": gain,
        "ssim": deblur_eval["ssim"], "ssim_input": deblur_eval.get("ssim_input"),
        "prior_l1": prior_eval["l1"], "prior_l1_mean_baseline": prior_eval["l1_mean_baseline"],
        "deblur_eval": str(out / "eval_deblur.json"), "prior_eval": str(out / "eval_prior.json"),
        "eval_frames": str(save),
        "prior_run": str(prior_run), "deblur_run": str(deblur_run), "finetune_steps": n,
        "finetuned_psnr": tuned_eval["psnr"], "finetuned_gain_db": tuned_eval["psnr"] - tuned_eval["psnr_input"],
        "blurry_video": str(blurry), "deblurred_video": deblurred["output"], "deblurred_frames": deblurred["frames"],
        "comparison": str(picture),
        "seconds": times, "total_seconds": round(time.time() - t0, 1),
    })
    write_json(out / "summary.json", s)
    return s


@click.command()
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for every output.")
@click.option("--quick", is_flag=True, help="Tiny sizes and step counts (seconds; used by the tests).")
def demo(out: Path, quick: bool) -> None:
    """Run the end-to-end demo and print what it shows and where every output is."""
    from mmpdata.errors import MMPError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        s = run_demo(out, quick=quick)
    except MMPError as exc:
        raise click.ClickException(str(exc)) from None
    ratio = s["prior_l1"] / s["prior_l1_mean_baseline"] if s["prior_l1_mean_baseline"] else float("nan")
    click.echo("\nMMP demo finished in %.0f s (%s)\n" % (s["total_seconds"],
               ", ".join(f"{k} {v:.0f} s" for k, v in s["seconds"].items())))
    rows = [
        ("unseen footage", s["unseen_footage"]), ("unseen data", s["unseen_data"]),
        ("sample-deblur on unseen footage", f"PSNR {s['psnr']:.2f} dB vs blurry input {s['psnr_input']:.2f} dB "
                                            f"({s['gain_db']:+.2f} dB), SSIM {s['ssim']:.4f}  [{s['deblur_eval']}]"),
        ("sample-prior on unseen footage", f"L1 {s['prior_l1']:.4f} vs mean-MMP predictor "
                                           f"{s['prior_l1_mean_baseline']:.4f} ({ratio:.2f}x)  [{s['prior_eval']}]"),
        ("scored output frames", s["eval_frames"]),
        (f"fine-tuned {s['finetune_steps']} steps", f"{s['deblur_run']}, {s['prior_run']} "
                                                    f"(PSNR {s['finetuned_psnr']:.2f} dB, "
                                                    f"{s['finetuned_gain_db']:+.2f} dB)"),
        ("blurry video", s["blurry_video"]),
        ("deblurred video", f"{s['deblurred_video']} ({s['deblurred_frames']} frames)"),
        ("blurry | deblurred | sharp | MMP", s["comparison"]),
        ("this summary", str(Path(s["out"]) / "summary.json")),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"  {k:<{width}}  {v}")
    click.echo(f"\nOn footage it never saw, the bundled MMP-RNN gains {s['gain_db']:+.2f} dB PSNR over the blurry "
               f"input ({s['psnr_input']:.2f} -> {s['psnr']:.2f} dB); the bundled MMP-Net's error is {ratio:.2f}x "
               "the mean predictor's. (Trained on synthetic sample footage on a CPU; see docs/weights.md for the "
               "published weights.)")


if __name__ == "__main__":
    demo()
