"""Train the bundled weights (`sample-prior`, `sample-deblur`) from scratch: the one reproducible command.

    python bench/train_bundled.py --photos PHOTO_DIR --work bundled/ [--prior-steps 3000] [--deblur-steps 6000]
        [--finetune-steps 2200 3000 1000 --finetune-lr 3e-4 3e-4 1e-4 --finetune-ema 0 0 0.995
         --finetune-still 0 0 0.25 --finetune-preset - A4B4C16F10 -]

PHOTO_DIR holds extra training photographs (we used 24 of Debian's desktop backgrounds, see docs/training.md; several
folders may be given, their files taken in order of file name);
scikit-image's default sample photographs are always added, and its `coffee` and `rocket` never are (they make
the held-out footage). Steps, in order, each resumable (rerun the same command after an interruption):

1. `mmp sample-footage` (GOPRO-like blur for 192x128) from those photographs, 30 sequences x 120 frames;
2. `mmp synthesize --frames 7-13`: stride 1 for MMP-Net, non-overlapping windows (true video) for MMP-RNN;
3. `mmp train-prior --recipe cpu` with more steps, then `mmp train-deblur --recipe cpu` with more steps on top
   of that prior (bf16 autocast on CPUs with native bf16); each `--finetune-steps N` adds one MMP-RNN stage
   (`--init-from` the previous stage's best.pt, cosine from `--finetune-lr`, batch 8, with `--finetune-ema` and
   `--finetune-still` (a share of still clips, train-deblur --still-clips), one value per stage or one for all; stage
   k uses seed k unless `--finetune-seed` says otherwise, hence other crops and another validation split). The values the weights were trained with are pinned here (lr 1e-3 for the
   first stage, no weight average), so the command reproduces them whatever the `cpu` recipe says today;
4. scores the exported files on held-out footage (photographs and camera paths never used in training) and on `--eval DATA`
   files if given (e.g. footage made by bench/other_footage.py);
5. writes the weights (float16, no optimizer state) to mmpmodel/weights/ with their registry entry (index.json:
   architecture, recipe, data, this command, metrics, sha256).

More footage per fine-tuning stage: `--finetune-sequences N ...` renders N sequences (seed 42, the same photographs,
other camera paths) for that stage instead of the 30-sequence training data ('-' keeps it). Four times the
sequences was the first lever measured to move the deblurring gain (docs/training.md). `--init-from sample-deblur`
(a checkpoint or a registered name, with `--init-prior`) starts the fine-tuning stages from those weights and skips
step 3's first runs, so the shipped weights can be extended without retraining them:

    python bench/train_bundled.py --photos photos/train --work bundled/ --init-from sample-deblur \
        --finetune-steps 1500 --finetune-sequences 120 --eval other.h5 other2.h5

(photos/ from bench/debian_photos.py). The registry entry then records the starting weights' own entry as well.

A new `sample-prior` beside the shipped `sample-deblur`: `--prior-sequences N` (with `--init-from`) trains MMP-Net
afresh on N sequences (seed 42, non-overlapping windows) with the settings pinned in `NEW_PRIOR` (`--input-norm
local`, `--prior-steps` steps), instead of copying `--init-prior`. Without `--finetune-steps`, `sample-deblur` is
kept as it is (its own frozen MMP-Net inside) and its registry entry is carried over. Fine-tuning stages after
`--init-from` keep the MMP-Net inside the weights they start from (their MMAM was trained with it):

    python bench/train_bundled.py --photos photos/train photos/train_more --work bundled/ --init-from sample-deblur \
        --prior-sequences 180 --prior-steps 3000 --eval other.h5 other2.h5

`--prior-motion F` or `LO-HI` renders that prior's footage at another speed factor, or with a spread of factors (one
per sequence, `mmp sample-footage --motion LO-HI`): the blur levels MMP-Net learns to expect (docs/training.md,
thirteenth session).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import sys
import time
from pathlib import Path

import cv2
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmpdata.errors import InputError  # noqa: E402
from mmpdata.footage import DEFAULT_IMAGES, IMAGE_SUFFIXES, UNSEEN_IMAGES, parse_motion, render_sample_footage  # noqa: E402
from mmpdata.pipeline import synthesize  # noqa: E402
from mmpmodel.checkpoint import load_checkpoint, load_prior, save_checkpoint  # noqa: E402
from mmpmodel.evaluate import evaluate  # noqa: E402
from mmpmodel.train_deblur import train_deblur  # noqa: E402
from mmpmodel.train_prior import train_prior  # noqa: E402
from mmpmodel.weights import INDEX, WEIGHTS_DIR, registry, resolve_weights, sha256_file  # noqa: E402

log = logging.getLogger("train_bundled")
SIZE = (192, 128)
FINETUNE_SEED = 42  # camera paths of the larger fine-tuning footage (the 30-sequence training footage uses 21)
#: --prior-sequences: the settings of the shipped sample-prior (docs/training.md, tenth session), pinned so the
#: command reproduces it whatever the `cpu` recipe says
NEW_PRIOR = {"input_norm": "local", "batch_size": 8, "patch": 96, "lr": 1e-3, "schedule": "cosine",
             "warmup_steps": 50, "ema": 0.999, "grad_weight": 0.5, "val_every": 250, "val_frames": 32}
KEEP = ("format", "version", "kind", "config", "model", "prior", "step", "metrics")


def _half(state: dict) -> dict:
    return {k: v.half() if torch.is_floating_point(v) else v for k, v in state.items()}


def export(src: Path, dst: Path) -> Path:
    """Our checkpoint without optimizer/scheduler/RNG state, weights stored as float16 (loading casts them back to
    float32): what inference and fine-tuning need, in half the bytes (both files together stay under 10 MB)."""
    ck = torch.load(src, map_location="cpu", weights_only=True)
    slim = {k: ck[k] for k in KEEP if k in ck}
    save_checkpoint(dst, kind=slim["kind"], config=slim["config"], model=_half(slim["model"]),
                    step=slim.get("step", 0), metrics=slim.get("metrics"),
                    prior=_half(slim["prior"]) if slim.get("prior") is not None else None)
    return dst


def shrunk_photos(files: list[Path], widths: list[int], folder: Path) -> list[Path]:
    """Each photograph wider than W shrunk to W px wide (area filter), for each W: NAME_wW.png in ``folder``
    (written once; a rerun reuses them)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        img = None
        for w in widths:
            dst = folder / f"{f.stem}_w{w}.png"
            if not dst.exists():
                img = cv2.imread(str(f), cv2.IMREAD_COLOR) if img is None else img
                if img is None:
                    raise SystemExit(f"{f}: not a readable image; remove it from the --photos folder")
                h0, w0 = img.shape[:2]
                if w0 <= w:
                    continue
                small = cv2.resize(img, (w, round(h0 * w / w0)), interpolation=cv2.INTER_AREA)
                tmp = dst.with_name(dst.stem + ".tmp.png")
                cv2.imwrite(str(tmp), small)
                tmp.replace(dst)
            out.append(dst)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, nargs="+", required=True,
                   help="folders of extra training photographs (*.png/*.jpg/*.webp), taken in order of file name")
    p.add_argument("--work", type=Path, required=True, help="folder for footage, data and runs")
    p.add_argument("--sequences", type=int, default=30)
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--prior-steps", type=int, default=3000)
    p.add_argument("--deblur-steps", type=int, default=6000)
    p.add_argument("--preset", default=None, help="MMP-RNN preset (default: the cpu recipe's)")
    p.add_argument("--precision", default="auto", help="training precision of MMP-RNN (auto: bf16 where native)")
    p.add_argument("--eval", nargs="*", default=[], type=Path, help="extra held-out mmp-h5 files to score")
    p.add_argument("--no-export", action="store_true", help="train and score, but leave mmpmodel/weights alone")
    p.add_argument("--finetune-steps", type=int, nargs="*", default=[],
                   help="fine-tuning stages after the first MMP-RNN run: one number of steps per stage, each starting from "
                        "the previous stage's best.pt at a low learning rate")
    p.add_argument("--finetune-lr", type=float, nargs="+", default=[3e-4],
                   help="peak learning rate of each fine-tuning stage (one value: the same for all)")
    p.add_argument("--finetune-ema", type=float, nargs="+", default=[0.0],
                   help="weight-average decay of each fine-tuning stage (one value: the same for all)")
    p.add_argument("--finetune-still", type=float, nargs="+", default=[0.0],
                   help="share of still clips (--still-clips) of each fine-tuning stage (one value: the same for all)")
    p.add_argument("--finetune-preset", nargs="+", default=["-"],
                   help="preset of each fine-tuning stage ('-': the previous stage's); a deeper one (more A or B) grows "
                        "the previous stage's weights, its added RDBs starting as the identity (mmpmodel/grow.py)")
    p.add_argument("--finetune-ends", nargs="+", default=["skip"], choices=("skip", "reflect", "replicate"),
                   help="train-deblur --ends of each fine-tuning stage: skip (the paper: only frames with real "
                        "neighbours are scored) or reflect/replicate (every frame, the ends extended so; one value: "
                        "the same for all)")
    p.add_argument("--finetune-time-flip", action="store_true",
                   help="train-deblur --time-flip in every fine-tuning stage (half the clips played backwards)")
    p.add_argument("--finetune-batch", type=int, default=8)
    p.add_argument("--finetune-precision", default="fast", choices=("fast", "fp32"),
                   help="training precision of the fine-tuning stages (fast: bf16 where native, as the cpu recipe; "
                        "fp32: slower, and a little ahead in the sixteenth session, docs/training.md)")
    p.add_argument("--finetune-val-every", type=int, default=200, help="validation (and best.pt) every N steps")
    p.add_argument("--finetune-teacher-ensemble", type=int, default=0, choices=(0, 2, 4, 8),
                   help="self-distillation: each fine-tuning stage also learns to match this many-pass self-ensemble "
                        "of the weights it starts from (train-deblur --teacher; 0: off)")
    p.add_argument("--finetune-teacher-weight", type=float, default=1.0,
                   help="weight of the distillation term (train-deblur --teacher-weight)")
    p.add_argument("--finetune-psnr-weight", type=float, default=None,
                   help="weight of the PSNR term in every fine-tuning stage (train-deblur --psnr-weight; default: "
                        "the recipe's, 0: off)")
    p.add_argument("--finetune-char-weight", type=float, default=None,
                   help="weight of the Charbonnier term (train-deblur --char-weight; default: the recipe's, 1)")
    p.add_argument("--finetune-grad-weight", type=float, default=None,
                   help="weight of the gradient term (train-deblur --grad-weight; default: the recipe's, 0.5)")
    p.add_argument("--finetune-seed", type=int, nargs="+", default=None,
                   help="seed of each fine-tuning stage (its crops, shuffle and validation split; one value: the same "
                        "for all; default: the stage's number, 1, 2, ...)")
    p.add_argument("--finetune-sequences", nargs="+", default=["-"],
                   help="footage of each fine-tuning stage: N renders N sequences (seed 42) of the same photographs "
                        "for it; '-' uses the training footage (30 sequences, --sequences)")
    p.add_argument("--init-from", default=None,
                   help="start the fine-tuning stages from this MMP-RNN (a checkpoint or a registered name such as "
                        "sample-deblur) instead of training the prior and the first MMP-RNN run")
    p.add_argument("--init-prior", default="sample-prior",
                   help="with --init-from: the MMP-Net that was trained with it (exported as sample-prior)")
    p.add_argument("--photo-widths", type=int, nargs="*", default=[],
                   help="also use each photograph shrunk (area filter) to each of these widths in px, as pictures of "
                        "their own (written to WORK/photos_shrunk/): a 192x128 view of a 4K photograph shows a few "
                        "hundred of its soft pixels; of a shrunk one, the scene with a camera's pixel-level detail")
    p.add_argument("--prior-sequences", type=int, default=None,
                   help="with --init-from: train a new MMP-Net (NEW_PRIOR's settings, --prior-steps) on this many "
                        "sequences (seed 42) and export it as sample-prior instead of --init-prior")
    p.add_argument("--prior-motion", default="1",
                   help="with --prior-sequences: the speed factor of that footage, or a range LO-HI giving each "
                        "sequence its own factor (mmp sample-footage --motion)")
    p.add_argument("--prior-context", type=int, default=0,
                   help="with --prior-sequences: the neighbouring exposures that MMP-Net reads on each side of a "
                        "frame (mmp train-prior --context; 0: the frame alone, the paper's network)")
    a = p.parse_args()
    stages = len(a.finetune_steps)
    if a.prior_sequences is not None and (not a.init_from or a.prior_sequences < 1):
        p.error("--prior-sequences N (N >= 1) trains a new sample-prior beside --init-from's MMP-RNN: give both")
    try:
        prior_motion = parse_motion(a.prior_motion)
    except InputError as exc:
        p.error(str(exc))
    if prior_motion != 1.0 and not a.prior_sequences:
        p.error("--prior-motion sets the footage of --prior-sequences: give both")
    if a.prior_context and not a.prior_sequences:
        p.error("--prior-context sets the MMP-Net of --prior-sequences: give both")
    if a.prior_context < 0:
        p.error("--prior-context: give a number of frames >= 0")
    if a.init_from and not stages and not a.prior_sequences:
        p.error("--init-from starts the fine-tuning stages: give --finetune-steps (or --prior-sequences)")
    if a.finetune_seed is None:
        a.finetune_seed = list(range(1, stages + 1))
    for opt in ("finetune_lr", "finetune_ema", "finetune_still", "finetune_preset", "finetune_sequences",
                "finetune_seed", "finetune_ends"):
        values = getattr(a, opt)
        if len(values) not in (1, stages) and stages:
            p.error(f"--{opt.replace('_', '-')}: give one value, or one per stage ({stages})")
        setattr(a, opt, values * stages if len(values) == 1 else values)
    for v in a.finetune_sequences:
        if v != "-" and not (v.isdigit() and int(v) > 0):
            p.error(f"--finetune-sequences {v}: give a number of sequences, or '-' for the training footage")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from mmpmodel.precision import resolve_precision

    precision = resolve_precision(a.precision, torch.device("cpu")) if a.precision == "auto" else a.precision
    work = a.work
    previous_entries = registry()  # read before step 5 rewrites it: --init-from's entry describes the start
    for folder in a.photos:
        if not folder.is_dir():
            p.error(f"--photos {folder}: not a folder of photographs (bench/debian_photos.py writes them)")
    # by file name across folders: one folder gives its files in path order, as before several were allowed
    files = [f for d in a.photos for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES]
    if a.photo_widths:
        files += shrunk_photos(files, a.photo_widths, work / "photos_shrunk")
    photos = [str(f) for f in sorted(files, key=lambda f: (f.name, str(f)))]
    shrunk_desc = (f", counting copies shrunk to {', '.join(map(str, a.photo_widths))} px wide (--photo-widths)"
                   if a.photo_widths else "")
    images = photos + [n for n in DEFAULT_IMAGES if n not in UNSEEN_IMAGES]
    t0 = time.time()

    # 1-2. footage and data
    render_sample_footage(work / "heldout_footage", sequences=4, frames=100, size=SIZE, seed=99, split=False,
                          images=UNSEEN_IMAGES)
    prior_h5, video_h5, heldout_h5 = work / "prior.h5", work / "video.h5", work / "heldout.h5"
    synthesize(work / "heldout_footage", heldout_h5, flow="dis", frames="7-13", stride=None, seed=3)
    if not a.init_from or "-" in a.finetune_sequences:
        render_sample_footage(work / "footage", sequences=a.sequences, frames=a.frames, size=SIZE, seed=21,
                              split=False, images=images)
        synthesize(work / "footage", video_h5, flow="dis", frames="7-13", stride=None, seed=1)
    stage_data = {}
    # footage per (sequences, motion): the fine-tuning stages' at motion 1, the new prior's at --prior-motion
    prior_key = None if a.prior_sequences is None else (
        str(a.prior_sequences) if prior_motion == 1.0 else f"{a.prior_sequences}_m{a.prior_motion}")
    wanted = {str(int(v)): (int(v), 1.0) for v in a.finetune_sequences if v != "-"}
    if prior_key:
        wanted[prior_key] = (a.prior_sequences, prior_motion)
    for key, (n, motion) in sorted(wanted.items()):
        render_sample_footage(work / f"footage_{key}", sequences=n, frames=a.frames, size=SIZE, seed=FINETUNE_SEED,
                              split=False, images=images, motion=motion)
        stage_data[key] = work / f"video_{key}.h5"
        synthesize(work / f"footage_{key}", stage_data[key], flow="dis", frames="7-13", stride=None, seed=1)

    # 3. training (resumable: rerun the command), or the weights to start from
    prior_run, deblur_run = work / "runs" / "prior", work / "runs" / "deblur"
    if a.init_from:
        # copies, so that exporting into mmpmodel/weights cannot change what a rerun starts from
        deblur_run.mkdir(parents=True, exist_ok=True)
        prior_run.mkdir(parents=True, exist_ok=True)
        copies = [(resolve_weights(a.init_from, "deblur"), deblur_run / "best.pt")]
        if not a.prior_sequences:
            copies.append((resolve_weights(a.init_prior, "prior"), prior_run / "best.pt"))
        for src, dst in copies:
            if not dst.exists():
                shutil.copyfile(src, dst)
        if a.prior_sequences:
            train_prior(stage_data[prior_key], prior_run, steps=a.prior_steps, context=a.prior_context,
                        resume=(prior_run / "last.pt").exists(), **NEW_PRIOR)
    else:
        synthesize(work / "footage", prior_h5, flow="dis", frames="7-13", stride=1, seed=1)
        train_prior(prior_h5, prior_run, recipe="cpu", steps=a.prior_steps, resume=(prior_run / "last.pt").exists())
    extra = {"preset": a.preset} if a.preset else {}
    pinned = {"lr": 1e-3, "ema": 0.0}  # the cpu recipe's values when sample-deblur's first stage was trained
    if not a.init_from:
        train_deblur(video_h5, deblur_run, recipe="cpu", prior=str(prior_run / "best.pt"), steps=a.deblur_steps,
                     precision=precision, resume=(deblur_run / "last.pt").exists(), **pinned, **extra)

    def distill(start: Path) -> dict:
        """--finetune-teacher-ensemble: the train-deblur settings that distil the stage's start weights' ensemble."""
        if not a.finetune_teacher_ensemble:
            return {}
        return {"teacher": str(start / "best.pt"), "teacher_ensemble": a.finetune_teacher_ensemble,
                "teacher_weight": a.finetune_teacher_weight}

    loss_weights = {k: v for k, v in (("psnr_weight", a.finetune_psnr_weight),
                                      ("char_weight", a.finetune_char_weight),
                                      ("grad_weight", a.finetune_grad_weight)) if v is not None}

    # 3b. optional fine-tuning from that best.pt: the gain appears only once the learning rate is low (docs/training.md),
    # so a second cosine from 3e-4 with twice the batch (another seed: other crops) continues where the first ended
    final_run = deblur_run
    for stage, (steps, lr, ema, still, preset, seqs, seed, ends) in enumerate(
            zip(a.finetune_steps, a.finetune_lr, a.finetune_ema, a.finetune_still, a.finetune_preset,
                a.finetune_sequences, a.finetune_seed, a.finetune_ends), start=1):
        previous, final_run = final_run, work / "runs" / ("deblur_ft" if stage == 1 else f"deblur_ft{stage}")
        grow = {"preset": preset} if preset != "-" else {}
        # fine-tuning shipped weights (--init-from) keeps the MMP-Net inside them, the one their MMAM was trained with
        # (sample-prior was retrained beside sample-deblur in the tenth session, so the two differ since)
        stage_prior = None if a.init_from else str(prior_run / "best.pt")
        train_deblur(stage_data.get(seqs, video_h5), final_run, recipe="cpu", prior=stage_prior,
                     **grow, init_from=str(previous / "best.pt"), steps=steps, batch_size=a.finetune_batch,
                     lr=lr, warmup_steps=20, val_every=a.finetune_val_every, seed=seed, ema=ema, still_clips=still,
                     ends=ends, time_flip=a.finetune_time_flip, precision=a.finetune_precision,
                     resume=(final_run / "last.pt").exists(), **distill(previous), **loss_weights)

    # 4. the bundled files (float16), scored on held-out footage as shipped
    out_dir = WEIGHTS_DIR if not a.no_export else work / "export"
    prior_file = export(prior_run / "best.pt", out_dir / "sample-prior.pt")
    if a.init_from and not stages:  # the MMP-RNN we started from, byte for byte
        deblur_file = out_dir / "sample-deblur.pt"
        out_dir.mkdir(parents=True, exist_ok=True)
        if not deblur_file.exists() or sha256_file(deblur_file) != sha256_file(final_run / "best.pt"):
            shutil.copyfile(final_run / "best.pt", deblur_file)
    else:
        deblur_file = export(final_run / "best.pt", out_dir / "sample-deblur.pt")
    scores = {"prior": {}, "deblur": {}}
    for data in [heldout_h5, *a.eval]:
        pr = evaluate(prior_file, data)
        db = evaluate(deblur_file, data, protocol="all")
        scores["prior"][data.name] = {"l1": round(pr["l1"], 5), "l1_mean_baseline": round(pr["l1_mean_baseline"], 5),
                                      "ratio_to_mean": round(pr["l1"] / pr["l1_mean_baseline"], 3)}
        scores["deblur"][data.name] = {"psnr": round(db["psnr"], 3), "psnr_input": round(db["psnr_input"], 3),
                                       "gain_db": round(db["psnr"] - db["psnr_input"], 3), "ssim": round(db["ssim"], 4)}
    log.info("held-out scores: %s", json.dumps(scores))
    if a.no_export:
        return

    # 5. the bundled files and their registry entries
    command = "python bench/train_bundled.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    data_desc = (f"mmp sample-footage (192x128, GOPRO-like blur, seed 21) of {len(images)} photographs "
                 f"({len(photos)} Debian desktop backgrounds{shrunk_desc} + scikit-image's {', '.join(images[len(photos):])}), "
                 f"{a.sequences} sequences x {a.frames} frames; synthesize --flow dis --frames 7-13")
    command_deblur = command
    deblur_cfg = json.loads((final_run / "config.json").read_text()) if (final_run / "config.json").exists() else \
        {"preset": load_checkpoint(final_run / "best.pt")["config"].get("preset")}
    stages_desc = " + ".join(
        f"{n} (lr {lr:g}" + (f", ema {e:g}" if e else "") + (f", still {s:g}" if s else "")
        + (f", grown to {g}" if g != "-" else "")
        + (f", on {q} sequences of seed {FINETUNE_SEED}" if q != "-" else "")
        + (f", ends {x}" if x != "skip" else "") + (", time flip" if a.finetune_time_flip else "") + ")"
        for n, lr, e, s, g, q, x in zip(a.finetune_steps, a.finetune_lr, a.finetune_ema, a.finetune_still,
                                        a.finetune_preset, a.finetune_sequences, a.finetune_ends))
    stages_desc += (f" steps (batch {deblur_cfg.get('batch_size')}, cosine, one stage each, seeds "
                    f"{', '.join(map(str, a.finetune_seed))}"
                    + (f"; precision {a.finetune_precision}" if a.finetune_precision != "fast" else "")
                    + "".join(f"; {k.replace('_', ' ')} {v:g}" for k, v in loss_weights.items())
                    + (f"; distilled from the {a.finetune_teacher_ensemble}-pass self-ensemble of its start weights, "
                       f"weight {a.finetune_teacher_weight:g}" if a.finetune_teacher_ensemble else "") + ")")
    if a.init_from:
        start = previous_entries.get(a.init_from)
        start_prior = previous_entries.get(a.init_prior)
        origin = (f"{a.init_from} ({start.recipe}; trained by: {start.command})" if start else a.init_from)
        deblur_recipe = f"fine-tuned {stages_desc} from {origin}"
        deblur_data = ((start.data + "; then ") if start else "") + (
            f"fine-tuned on {', '.join(q for q in a.finetune_sequences if q != '-')} sequences x {a.frames} frames "
            f"of {len(images)} pictures ({len(photos)} from {', '.join(d.name + '/' for d in a.photos)}{shrunk_desc}, see "
            f"bench/debian_photos.py, + "
            f"scikit-image's {', '.join(images[len(photos):])}), seed {FINETUNE_SEED}")
        prior_fields = ({"recipe": start_prior.recipe, "data": start_prior.data, "command": start_prior.command}
                        if start_prior else {"recipe": "", "data": "", "command": f"(copied from {a.init_prior})"})
        if a.prior_sequences:
            prior_fields = {
                "recipe": "train-prior " + " ".join(f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else
                                                    f"--{k.replace('_', '-')} {v}" for k, v in NEW_PRIOR.items())
                          + (f" --context {a.prior_context}" if a.prior_context else "")
                          + f" --steps {a.prior_steps} (fp32)",
                "data": (f"{a.prior_sequences} sequences x {a.frames} frames of {len(images)} pictures "
                         f"({len(photos)} from {', '.join(d.name + '/' for d in a.photos)}{shrunk_desc}, see bench/debian_photos.py, "
                         f"+ scikit-image's {', '.join(images[len(photos):])}), seed {FINETUNE_SEED}"
                         + (f", speed factor {a.prior_motion} (--motion"
                            + (", one factor per sequence drawn log-uniformly" if isinstance(prior_motion, tuple)
                               else "") + ")" if prior_motion != 1.0 else "") + "; synthesize "
                         "--flow dis --frames 7-13, non-overlapping windows"),
                "command": command}
        if not stages and start:  # the MMP-RNN is the one we started from: its entry is carried over
            deblur_recipe, deblur_data, command_deblur = start.recipe, start.data, start.command
    else:
        prior_cfg = json.loads((prior_run / "config.json").read_text())
        deblur_recipe = (f"cpu ({a.deblur_steps} steps, lr {pinned['lr']:g}; precision {precision})"
                         + (f", then fine-tuned {stages_desc}" if stages else ""))
        deblur_data = data_desc
        prior_fields = {"recipe": f"cpu ({prior_cfg.get('steps')} steps; precision {prior_cfg.get('precision', 'fp32')})",
                        "data": data_desc, "command": command}
    retrained = ("MMP-RNN trained on synthetic sample footage, with the MMP-Net it was trained with inside "
                 "(sample-prior was retrained after it)")
    if a.prior_sequences:
        deblur_desc = retrained
    elif a.init_from:  # fine-tuning keeps the MMP-Net inside, so it relates to sample-prior as its start did
        deblur_desc = start.description if start else retrained
    else:
        deblur_desc = "MMP-RNN with sample-prior inside, trained on synthetic sample footage"
    prior_context = load_prior(prior_file)[0].context
    prior_arch = f"mmpnet (context {prior_context})" if prior_context else "mmpnet"
    prior_desc = "MMP-Net trained on synthetic sample footage" + (
        f", reading each frame with {prior_context} exposure(s) before and after it (not the paper's single frame; "
        "MMP-RNN cannot use it as its prior)" if prior_context else "")
    entries = []
    for name, kind, dst, arch, fields in (
            ("sample-prior", "prior", prior_file, prior_arch, prior_fields),
            ("sample-deblur", "deblur", deblur_file, deblur_cfg.get("preset"),
             {"recipe": deblur_recipe, "data": deblur_data, "command": command_deblur})):
        entries.append({
            "name": name, "kind": kind, "file": dst.name, "sha256": sha256_file(dst), "architecture": arch,
            **fields, "metrics": {"heldout": scores[kind]},
            "description": prior_desc if kind == "prior" else deblur_desc,
        })
    written = {e["name"] for e in entries}  # other registered weights (sample-prior-frame) are kept as they are
    entries += [e.to_dict() for name, e in previous_entries.items() if name not in written]
    INDEX.parent.mkdir(parents=True, exist_ok=True)
    tmp = INDEX.with_suffix(".tmp")
    tmp.write_text(json.dumps({"weights": entries}, indent=2) + "\n")
    tmp.replace(INDEX)
    log.info("wrote %s and %s in %.0f min", ", ".join(e["file"] for e in entries), INDEX, (time.time() - t0) / 60)


if __name__ == "__main__":
    main()
