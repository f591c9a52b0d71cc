"""Seconds per MMP-RNN training step at the default ``mmp train-deblur`` settings: this tree against an older revision.

Issue 14's must-show "a training step at the default settings is no slower than today". One step is what
:func:`mmpmodel.train_loop.fit` does per batch for :class:`mmpmodel.train_deblur.DeblurTask`, on random clips held in
memory (no data loading, no logging, no validation, no checkpoints):

* settings: :class:`mmpmodel.train_config.DeblurTrainConfig` defaults (Adam lr 5e-4, no weight decay, gradient-norm
  clip 20, Charbonnier + 0.5 x gradient (paper form) + 1.0 x motion-magnitude loss, MMAM, l state, prior inside,
  one learning rate for all weights, precision ``auto`` = fp32 on a CPU), read from each tree's own dataclass;
  the architecture ``--preset`` (A3B4C16) at ``--frames`` (8) frames, ``--batch`` (2) clips of ``--patch`` (128)
  pixels square;
* the frozen prior: a seeded MMP-Net (width 16, random weights time the same as trained ones) inside the network
  (MMAM) and as the motion-magnitude loss, frozen and in eval mode, as train-deblur uses it;
* the step: forward under the training precision's autocast context, ``deblur_loss`` (float32) on the supervised
  centre frames, the non-finite check, ``zero_grad(set_to_none=True)``, backward, ``clip_grad_norm_`` over the
  trainable parameters, ``Adam.step``. The learning-rate schedule's assignment and the disabled GradScaler (fp16
  only) are left out: no arithmetic on tensors.

Each side runs in its own subprocess with the tree's root first on ``sys.path``; the subprocess checks that every
``mmpmodel``/``mmpdata`` module it loaded came from that tree (the project's editable install would otherwise serve
a module the old tree lacks from the working tree): ``torch.set_num_threads(--threads)``, ``--warmup`` steps,
then ``--steps`` timed steps; it prints one JSON line. The parent runs the sides in interleaved rounds (baseline,
current[, current bf16], baseline, current, ...) so that load from other jobs hits both alike, and prints a markdown
table: s/step per round, by the wall clock and by the process's CPU time (the latter barely moved by other jobs
when ``--threads 1``), the median over rounds and current / baseline (the median of the per-round ratios).

The baseline (``--baseline REV``; default: the parent of the first commit that added ``mmpmodel/precision.py``,
i.e. the tree before issue 14's precision/tiling work) is extracted with ``git archive REV | tar -x`` into a
temporary folder. Per-side adaptation, reported in the output: a tree whose ``mmpmodel/precision.py`` is missing
(the default baseline: its ``train_loop.autocast_context`` imports the module, which only arrived in the next
commit; in a plain checkout of that revision ``fit`` fails there) gets no autocast context for fp32, which is what
fp32 means in both trees (``precision.autocast("fp32")`` is a null context). ``--current`` is the working tree by
default (``--current REV`` extracts a revision instead).

``--bf16`` adds a row, current tree only and for information: the same step under ``--precision bf16``
(``mmpmodel.precision.autocast("bf16", "cpu")`` through ``autocast_context``).

    nice -n 19 python bench/train_step.py                         # 3 rounds, 2 threads, default baseline
    nice -n 19 python bench/train_step.py --threads 1 --rounds 3 --bf16 --json /tmp/train_step.json
    python bench/train_step.py --baseline HEAD --dry-run          # both sides, tiny clips, one step (the test)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------------ the child
def child(args) -> None:
    """One side: build the step from the tree at ``args.root``, warm up, time, print one JSON line."""
    root = Path(args.root).resolve()
    sys.path.insert(0, str(root))
    import contextlib
    import dataclasses
    import math

    import torch

    torch.set_num_threads(args.threads)
    import mmpmodel

    where = Path(mmpmodel.__file__).resolve()
    if root not in where.parents:
        raise SystemExit(f"mmpmodel imported from {where}, not from {root}")
    from mmpmodel.mmpnet import MMPNet
    from mmpmodel.mmprnn import MMPRNN, RADIUS
    from mmpmodel.train_config import DeblurTrainConfig
    from mmpmodel.train_deblur import build_config, deblur_loss

    adaptations = []
    cfg = DeblurTrainConfig(preset=args.preset, frames=args.frames, batch_size=args.batch, patch=args.patch)
    if args.precision is not None:
        cfg = dataclasses.replace(cfg, precision=args.precision)
    device = torch.device("cpu")
    has_precision = (root / "mmpmodel" / "precision.py").is_file()
    if has_precision:
        from mmpmodel.train_loop import autocast_context, training_precision

        precision = training_precision(cfg, device)

        def context():
            return autocast_context(cfg, device)
    else:
        if cfg.precision not in ("auto", "fp32"):
            raise SystemExit(f"{root}: no mmpmodel/precision.py, so no --precision {cfg.precision}")
        precision = "fp32"
        adaptations.append("no mmpmodel/precision.py (train_loop.autocast_context would fail to import it): "
                           "fp32 forward without an autocast context")

        def context():
            return contextlib.nullcontext()

    torch.manual_seed(0)
    try:
        from mmpmodel.train_config import PriorTrainConfig

        width = PriorTrainConfig().width
    except (ImportError, AttributeError):
        width = 16
    arch = build_config(cfg.preset, cfg.frames, cfg.mmam, cfg.l_state, cfg.use_prior)
    prior = MMPNet(width=width) if (arch.prior or cfg.mm_weight) else None
    if prior is not None:  # as DeblurTask: frozen, eval mode (load_prior returns it in eval mode)
        prior.requires_grad_(False)
        prior.eval()
    model = MMPRNN(arch, prior if arch.prior else None).to(device)
    try:  # as DeblurTask: the tree's training layout (channels-last on the CPU since the ninth session)
        from mmpmodel.precision import for_training

        model = for_training(model, device)
    except ImportError:
        pass
    loss_prior = prior if (cfg.mm_weight and prior is not None) else None
    # DeblurTask.param_groups
    skip = {id(p) for p in model.skip.parameters()}
    params = model.trainable_parameters()
    if cfg.skip_lr_scale == 1.0:
        groups = [{"params": params, "lr_scale": 1.0}]
    else:
        groups = [{"params": [p for p in params if id(p) not in skip], "lr_scale": 1.0},
                  {"params": [p for p in params if id(p) in skip], "lr_scale": cfg.skip_lr_scale}]
    optimizer = torch.optim.Adam([{"params": g["params"], "lr": cfg.lr * g["lr_scale"]} for g in groups],
                                 lr=cfg.lr, weight_decay=cfg.weight_decay)
    params = [p for g in groups for p in g["params"]]
    blur = torch.rand(cfg.batch_size, arch.frames, 3, cfg.patch, cfg.patch)
    sharp = torch.rand(cfg.batch_size, arch.frames, 3, cfg.patch, cfg.patch)
    target = sharp[:, RADIUS:sharp.shape[1] - RADIUS]
    model.train()

    def step() -> float:
        with context():
            output = model(blur, None)  # DeblurTask.forward (prior_source "net": no stored MMP)
        loss, _ = deblur_loss(output.float(), target, loss_prior, cfg)
        if not torch.isfinite(loss).item():
            raise SystemExit("non-finite loss")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip else math.inf)
        optimizer.step()
        return float(loss)

    losses = [step() for _ in range(args.warmup)]
    times, cpu = [], []
    for _ in range(args.steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        losses.append(step())
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    # An editable install of the project can serve a module that the tree lacks from the working tree (its finder
    # comes after sys.path): every project module must come from this side's tree.
    strays = sorted(name for name, mod in list(sys.modules.items())
                    if name.split(".")[0] in ("mmpmodel", "mmpdata") and getattr(mod, "__file__", None)
                    and root not in Path(mod.__file__).resolve().parents)
    if strays:
        raise SystemExit(f"{root}: modules imported from outside the tree: {', '.join(strays)}")
    print(json.dumps({"root": str(root), "mmpmodel": str(where.parent), "precision": precision,
                      "settings": {k: getattr(cfg, k, None) for k in ("lr", "weight_decay", "grad_clip", "char_weight",
                                                                  "grad_weight", "mm_weight", "grad_form",
                                                                  "skip_lr_scale", "mmam", "l_state", "use_prior",
                                                                  "prior_source", "precision")},
                      "arch": arch.name, "trainable_parameters": sum(p.numel() for p in params),
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "seconds_per_step": sum(times) / len(times), "step_seconds": times,
                      "cpu_seconds_per_step": sum(cpu) / len(cpu), "losses": losses,
                      "adaptations": adaptations}))


# ----------------------------------------------------------------------------------------------------- the parent
def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def default_baseline() -> str:
    """The parent of the first commit that added mmpmodel/precision.py."""
    added = git("log", "--diff-filter=A", "--format=%H", "--", "mmpmodel/precision.py").split()
    if not added:
        raise SystemExit("no commit adds mmpmodel/precision.py: pass --baseline REV")
    return git("rev-parse", added[-1] + "^")


def extract(rev: str, into: Path) -> Path:
    """``git archive REV | tar -x`` of the revision's mmpmodel/ and mmpdata/ into ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "mmpmodel", "mmpdata"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_side(args, root: Path, precision: str | None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(root), "--threads", str(args.threads),
           "--warmup", str(args.warmup), "--steps", str(args.steps), "--preset", args.preset,
           "--frames", str(args.frames), "--batch", str(args.batch), "--patch", str(args.patch)]
    if precision:
        cmd += ["--precision", precision]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("OMP_NUM_THREADS", str(args.threads))
    res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{root}: the step failed:\n{res.stderr.strip()}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def markdown(result: dict) -> str:
    m, s = result["machine"], result["shape"]
    rounds = len(result["rows"][0]["per_round"])
    lines = [f"{s['preset']}, clips {s['batch']} x {s['frames']} frames x {s['patch']}x{s['patch']}, "
             f"{s['warmup']} warm-up + {s['steps']} timed steps per side per round, {rounds} interleaved rounds; "
             f"{m['cpu']} ({m['cores']} cores), torch {m['torch']}, {m['threads']} thread(s); {result['date']}", "",
             "| side | precision | clock | " + " | ".join(f"round {i + 1} (s/step)" for i in range(rounds))
             + " | median s/step | / baseline |", "|---|---|---|" + "---|" * rounds + "---|---|"]
    for r in result["rows"]:
        for clock, per, med, ratio in (("wall", r["per_round"], r["median"], r["vs_baseline"]),
                                       ("process CPU", r["cpu_per_round"], r["cpu_median"], r["cpu_vs_baseline"])):
            ratio = "1.00" if r["name"] == "baseline" else f"{ratio:.2f}"
            lines.append(f"| {r['label']} | {r['precision']} | {clock} | " + " | ".join(f"{t:.3f}" for t in per)
                         + f" | {med:.3f} | {ratio} |")
    lines.append("")
    lines.append("/ baseline: median over rounds of (this side's s/step / the baseline's in the same round). Process "
                 "CPU: CPU seconds of the side's process per step (all its threads); with one thread it is the least "
                 "sensitive to other jobs' load.")
    for r in result["rows"]:
        for a in r["adaptations"]:
            lines.append(f"{r['label']}: {a}.")
    lines.append(f"Settings read from each tree's DeblurTrainConfig equal on both sides: "
                 f"{'yes' if result['settings_equal'] else 'no'}; first-step loss equal (same seed, same step): "
                 f"{'yes' if result['first_loss_equal'] else 'no'}.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default=None, help="git revision to compare against (default: the parent of the "
                                                     "first commit that added mmpmodel/precision.py)")
    ap.add_argument("--current", default=None, help="git revision for the current side (default: the working tree)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per side per round")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in each side's subprocess")
    ap.add_argument("--preset", default="A3B4C16F8")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--bf16", action="store_true", help="also time the current tree at --precision bf16 (info)")
    ap.add_argument("--dry-run", action="store_true", help="tiny clips (1 x 5 x 32x32), 1 round, 1 step, no warm-up")
    ap.add_argument("--json", default=None, help="also write the result here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--precision", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.root = args.child
        child(args)
        return
    if args.dry_run:
        args.rounds, args.steps, args.warmup, args.batch, args.frames, args.patch = 1, 1, 0, 1, 5, 32
    baseline = git("rev-parse", args.baseline) if args.baseline else default_baseline()
    tmp = Path(tempfile.mkdtemp(prefix="ts_"))
    try:
        day = git("log", "-1", "--format=%ad", "--date=short", baseline)
        sides = {"baseline": (extract(baseline, tmp / "base"), None, f"baseline {baseline[:7]} ({day})")}
        if args.current:
            rev = git("rev-parse", args.current)
            sides["current"] = (extract(rev, tmp / "current"), None, f"current {rev[:7]}")
        else:
            dirty = git("status", "--porcelain", "--", "mmpmodel", "mmpdata")
            head = git("rev-parse", "--short=7", "HEAD")
            sides["current"] = (ROOT, None, f"current (working tree, HEAD {head}"
                                + (", mmpmodel/ with uncommitted changes)" if dirty else ")"))
        if args.bf16:
            sides["current_bf16"] = (sides["current"][0], "bf16", "current, --precision bf16 (information)")
        runs = {name: [] for name in sides}
        for r in range(args.rounds):
            for name, (root, precision, _) in sides.items():
                runs[name].append(run_side(args, root, precision))
            done = ", ".join(f"{n}={v[-1]['seconds_per_step']:.3f}s (cpu {v[-1]['cpu_seconds_per_step']:.3f}s)"
                             for n, v in runs.items())
            print(f"round {r + 1}: {done}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base_times = [x["seconds_per_step"] for x in runs["baseline"]]
    base_cpu = [x["cpu_seconds_per_step"] for x in runs["baseline"]]
    rows = []
    for name, (_, _, label) in sides.items():
        times = [x["seconds_per_step"] for x in runs[name]]
        cpu = [x["cpu_seconds_per_step"] for x in runs[name]]
        rows.append({"name": name, "label": label, "precision": runs[name][0]["precision"], "per_round": times,
                     "median": statistics.median(times),
                     "vs_baseline": statistics.median(t / b for t, b in zip(times, base_times)),
                     "cpu_per_round": cpu, "cpu_median": statistics.median(cpu),
                     "cpu_vs_baseline": statistics.median(t / b for t, b in zip(cpu, base_cpu)),
                     "adaptations": runs[name][0]["adaptations"], "settings": runs[name][0]["settings"],
                     "arch": runs[name][0]["arch"], "trainable_parameters": runs[name][0]["trainable_parameters"],
                     "first_loss": runs[name][0]["losses"][0], "runs": runs[name]})
    first = runs["current"][0]["losses"][0], runs["baseline"][0]["losses"][0]
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": runs["current"][0]["torch"],
                          "threads": runs["current"][0]["threads"]},
              "shape": {"preset": rows[0]["arch"], "batch": args.batch, "frames": args.frames, "patch": args.patch,
                        "warmup": args.warmup, "steps": args.steps},
              "baseline": baseline, "first_loss_equal": first[0] == first[1],
              "settings_equal": rows[0]["settings"] == rows[1]["settings"], "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(markdown(result))


if __name__ == "__main__":
    main()
