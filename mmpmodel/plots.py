"""``mmp plot``: training and validation curves of one or more runs, drawn from RUN/metrics.jsonl into one PNG.

Panels: the training loss (log scale) and one per validation metric the runs logged (``val_psnr`` of train-deblur,
``val_l1`` of train-prior). What a run has to beat is drawn as a dashed line of the same colour: the blurry input's
PSNR next to ``val_psnr`` and the mean predictor's L1 next to ``val_l1``, when the run logged them. Needs matplotlib
(``pip install 'mmp-toolkit[plot]'``); only its object API is used, so no display and no global backend change.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

from mmpdata.errors import FormatError, InputError

log = logging.getLogger(__name__)

__all__ = ["VALIDATION", "read_metrics", "reference_key", "plot_runs"]

#: Validation metrics drawn, with their axis label and whether higher is better.
VALIDATION = {"val_psnr": ("validation PSNR (dB)", True), "val_l1": ("validation L1", False)}


def read_metrics(run: str | Path) -> list[dict]:
    """The JSON records of RUN/metrics.jsonl (a torn last line from a killed run is skipped)."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: not found; pass a run folder written by mmp train-prior or train-deblur")
    records = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                log.warning("%s: last line is incomplete (run killed while writing?); skipped", path)
                continue
            raise FormatError(f"{path}: line {i + 1} is not JSON; the file is damaged") from None
    return records


def reference_key(metric: str, keys) -> str | None:
    """The logged key that holds what ``metric`` has to beat (the blurry input's PSNR for val_psnr, the mean
    predictor's L1 for val_l1), or None when the run did not log one."""
    unit = metric.split("_", 1)[1]
    for key in sorted(keys):
        if key == metric or key.startswith("best_") or unit not in key:
            continue
        if unit == "psnr" and ("input" in key or "blur" in key):
            return key
        if unit == "l1" and ("mean" in key or "baseline" in key):
            return key
    return None


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in records:
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and "step" in r:
            xs.append(int(r["step"]))
            ys.append(float(v))
    return xs, ys


def plot_runs(runs, out: str | Path, labels=None, dpi: int = 120) -> dict:
    """Draw the curves of ``runs`` (run folders) into the PNG ``out`` (written atomically); returns what was
    drawn: {"out", "runs", "panels", "references"}."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise InputError("mmp plot needs matplotlib: pip install 'mmp-toolkit[plot]' (or pip install matplotlib)"
                         ) from None
    runs = [Path(r) for r in runs]
    if not runs:
        raise InputError("give at least one run folder")
    labels = list(labels) if labels else [r.resolve().name for r in runs]
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(f"{out}: --out must end in .png")
    if out.is_dir():
        raise InputError(f"{out}: is a folder; --out names the PNG file to write")
    data = [read_metrics(r) for r in runs]
    keys = set().union(*(set(k for rec in d for k in rec) for d in data))
    metrics = [m for m in VALIDATION if m in keys]
    if not any(_series(d, "loss")[0] for d in data) and not metrics:
        raise InputError(f"{runs[0]}: metrics.jsonl holds no loss or validation value yet; plot after a few steps")
    panels = ["loss"] + metrics
    fig = Figure(figsize=(5.0 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colours = [f"C{i % 10}" for i in range(len(runs))]
    references = {}
    for ax, panel in zip(axes, panels):
        for records, label, colour in zip(data, labels, colours):
            xs, ys = _series(records, panel)
            if not xs:
                continue
            ax.plot(xs, ys, color=colour, marker="o" if panel != "loss" and len(xs) < 30 else None, ms=3,
                    label=label)
            ref = reference_key(panel, {k for r in records for k in r}) if panel != "loss" else None
            if ref:
                rx, ry = _series(records, ref)
                if rx:
                    what = "blurry input" if panel == "val_psnr" else "mean predictor"
                    if len(set(ry)) == 1:  # the same validation frames every round: one level across the plot
                        ax.axhline(ry[0], color=colour, linestyle="--", label=f"{label}: {what}")
                    else:
                        ax.plot(rx, ry, color=colour, linestyle="--", label=f"{label}: {what}")
                    references[label] = ref
        if panel == "loss":
            ax.set_title("training loss")
            ax.set_ylabel("loss")
            if all(y > 0 for d in data for y in _series(d, "loss")[1]):
                ax.set_yscale("log")
        else:
            ax.set_title(f"{VALIDATION[panel][0].split(' (')[0]} ({'higher' if VALIDATION[panel][1] else 'lower'} "
                         "is better)")
            ax.set_ylabel(VALIDATION[panel][0])
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # the user's umask applies, unlike mkstemp's 0600
    try:
        with open(tmp, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"out": str(out), "runs": [str(r) for r in runs], "panels": panels, "references": references}
