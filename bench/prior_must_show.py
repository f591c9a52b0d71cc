"""Issue 5's first must-show, run exactly as an evaluator would, through the `mmp` CLI.

sample-footage (6 training sequences, default photographs) -> synthesize (dense prior data) -> train-prior
--steps 300 --batch-size 8 --patch 96 -> unseen footage (coffee, rocket; --seed 5 --no-split) -> synthesize
(--frames 7 --stride 7) -> eval --json. Prints l1, the mean-MMP baseline and their ratio (must be <= 0.8).

    .venv/bin/python bench/prior_must_show.py --work /tmp/pms [--train-seed 0] [--unseen-seed 5] [--seed 0]
        [--train-images astronaut,chelsea,... --train-sequences 12] [--unseen-sequences 4]

Ceiling test (docs/training.md, fourth round): ``--train-images coffee,rocket --train-sequences 12 --train-seed
100`` trains on footage of the very photographs that are scored (other camera paths), so only the motion is unseen.

``--footage-rev REV`` renders the footage with mmpdata/footage.py as of git revision REV (e.g. HEAD before a
change) to compare footage styles; the rest of the toolkit is the working tree's.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MMP = [str(Path(sys.executable).with_name("mmp"))]  # the installed console script, as a user runs it


def run(args: list[str], label: str, times: dict) -> None:
    t0 = time.time()
    proc = subprocess.run(MMP + args, cwd=ROOT, capture_output=True, text=True)
    times[label] = round(time.time() - t0, 1)
    if proc.returncode:
        sys.exit(f"{label} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def render_with_rev(rev: str, out: Path, **kw) -> None:
    """Render footage with footage.py from git revision ``rev`` (loaded as a throwaway module)."""
    import importlib.util
    import tempfile

    src = subprocess.run(["git", "show", f"{rev}:mmpdata/footage.py"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    path = Path(tempfile.mkdtemp()) / "footage_rev.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("footage_rev", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    mod.render_sample_footage(out, progress=False, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="empty working folder")
    ap.add_argument("--train-seed", type=int, default=0, help="seed of the training footage")
    ap.add_argument("--unseen-seed", type=int, default=5, help="seed of the unseen footage")
    ap.add_argument("--seed", type=int, default=0, help="train-prior --seed")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--train-images", default=None,
                    help="comma-separated photographs of the training footage (default: sample-footage's); "
                         "rendered without a test split")
    ap.add_argument("--train-sequences", type=int, default=6, help="number of training sequences")
    ap.add_argument("--unseen-sequences", type=int, default=2, help="number of unseen sequences (coffee, rocket, ...)")
    ap.add_argument("--prior-stride", default="1", help="synthesize --stride for the training data")
    ap.add_argument("--footage-rev", default=None, help="git revision of mmpdata/footage.py to render with")
    a = ap.parse_args()
    w = a.work
    w.mkdir(parents=True, exist_ok=True)
    times: dict = {}
    if a.footage_rev:
        t0 = time.time()
        render_with_rev(a.footage_rev, w / "train_raw", sequences=a.train_sequences, frames=40, seed=a.train_seed)
        from mmpdata.footage import UNSEEN_IMAGES
        render_with_rev(a.footage_rev, w / "unseen_raw", sequences=a.unseen_sequences, frames=40,
                        seed=a.unseen_seed, split=False, images=UNSEEN_IMAGES)
        times["footage"] = round(time.time() - t0, 1)
    else:
        images = ["--images", a.train_images, "--no-split"] if a.train_images else []
        run(["sample-footage", str(w / "train_raw"), "--sequences", str(a.train_sequences), "--frames", "40",
             "--seed", str(a.train_seed)] + images, "footage", times)
        run(["sample-footage", str(w / "unseen_raw"), "--images", "coffee,rocket", "--sequences",
             str(a.unseen_sequences), "--frames",
             "40", "--seed", str(a.unseen_seed), "--no-split"], "unseen footage", times)
    run(["synthesize", "--raw", str(w / "train_raw"), "--out", str(w / "train.h5"), "--flow", "dis", "--frames",
         "7-13", "--stride", a.prior_stride, "--no-progress"], "synthesize train", times)
    run(["synthesize", "--raw", str(w / "unseen_raw"), "--out", str(w / "unseen.h5"), "--flow", "dis", "--frames",
         "7", "--stride", "7", "--no-progress"], "synthesize unseen", times)
    run(["train-prior", "--data", str(w / "train.h5"), "--out", str(w / "run"), "--steps", str(a.steps),
         "--batch-size", "8", "--patch", "96", "--seed", str(a.seed)], "train-prior", times)
    run(["eval", "--model", str(w / "run" / "best.pt"), "--data", str(w / "unseen.h5"), "--json",
         str(w / "eval.json")], "eval", times)
    r = json.loads((w / "eval.json").read_text())
    ratio = r["l1"] / r["l1_mean_baseline"]
    print(json.dumps({"train_images": a.train_images, "train_sequences": a.train_sequences,
                      "unseen_sequences": a.unseen_sequences, "train_seed": a.train_seed,
                      "unseen_seed": a.unseen_seed, "seed": a.seed,
                      "footage_rev": a.footage_rev, "l1": round(r["l1"], 5),
                      "l1_mean_baseline": round(r["l1_mean_baseline"], 5), "mean_mmp": round(r["mean_mmp"], 4),
                      "ratio": round(ratio, 3), "pass": ratio <= 0.8, "seconds": times}))


if __name__ == "__main__":
    main()
