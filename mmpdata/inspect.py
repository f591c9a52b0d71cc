"""What is in an mmp-h5 file, and whether it is valid: the data behind ``mmp inspect``.

The report lists the root attributes, each sequence (windows, frame size, split, window lengths) and MMP statistics,
together with every problem :func:`mmpdata.h5format.validate` finds, so a damaged file says what is wrong with it.
Unlike opening the data for training (cheap checks only), inspect by default reads every window of every dataset
(``scan``): a damaged chunk or a NaN/inf in a stored MMP map is named with its shard and window. MMP statistics are computed on an evenly spaced sample of windows per sequence (``max_windows``), which keeps
inspecting a 35 000-window dataset quick; pass ``max_windows=None`` for all of them.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from mmpdata import h5format

PERCENTILES = (50, 90, 99)


def _stats(values: np.ndarray) -> dict:
    if values.size == 0:
        return {}
    v = values.astype(np.float64)
    finite = np.isfinite(v)
    out = {"mean": float(v[finite].mean()) if finite.any() else float("nan"),
           "max": float(v[finite].max()) if finite.any() else float("nan"),
           "min": float(v[finite].min()) if finite.any() else float("nan")}
    for p in PERCENTILES:
        out[f"p{p}"] = float(np.percentile(v[finite], p)) if finite.any() else float("nan")
    out["non_finite"] = int((~finite).sum())
    out["above_1"] = float((v[finite] > 1).mean()) if finite.any() else 0.0
    return out


def _sample(n: int, max_windows: int | None) -> np.ndarray:
    if max_windows is None or n <= max_windows:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_windows).round().astype(int))


def inspect_dataset(path: str | Path, max_windows: int | None = 32, scan: bool = True,
                    progress: bool | None = None) -> dict:
    """A JSON-ready report: ``valid``, ``problems``, ``attrs``, ``sequences`` (each with windows, size, MMP stats)
    and ``totals``. Never raises for a damaged file: the damage is listed in ``problems``. ``scan=False`` skips
    reading every window (only the cheap checks then)."""
    path = Path(path)
    problems = h5format.validate(path, scan=scan, progress=progress)
    report = {"path": str(path), "valid": not problems, "problems": problems, "attrs": {}, "sequences": [],
              "totals": {}, "scanned": bool(scan)}
    try:
        ds = h5format.MMPDataset(path, check=False)
    except h5format.FormatError:
        return report
    with ds:
        report["attrs"] = ds.attrs
        samples = []
        windows_total = 0
        for name in ds.sequences:
            entry = {"name": name}
            try:
                grp = ds[name]
                _ = grp.attrs.keys()
            except (h5format.FormatError, KeyError, OSError):
                entry["error"] = "cannot be opened"
                report["sequences"].append(entry)
                continue
            sattrs = h5format.decode_attrs(grp.attrs)
            blur = grp.get("blur")
            if blur is not None and blur.ndim == 4:
                entry["windows"] = int(blur.shape[0])
                entry["size"] = [int(blur.shape[1]), int(blur.shape[2])]
                windows_total += int(blur.shape[0])
            for key in ("split", "raw_frames", "source"):
                if key in sattrs and sattrs[key] != "":
                    entry[key] = sattrs[key]
            win = grp.get("window")
            if win is not None and win.ndim == 2 and win.shape[1] == 2:
                w = win[()]
                entry["window_lengths"] = {int(n): int(c) for n, c in sorted(Counter((w[:, 1] - w[:, 0] + 1).tolist()).items())}
                if len(w):
                    entry["frames_used"] = [int(w[:, 0].min()), int(w[:, 1].max())]
            mmp = grp.get("mmp")
            if mmp is not None and mmp.ndim == 3 and mmp.shape[0] > 0:
                idx = _sample(mmp.shape[0], max_windows)
                try:
                    vals = np.concatenate([mmp[int(i)][::2, ::2].ravel() for i in idx])
                except OSError:  # a damaged chunk: named in problems when scanned
                    report["sequences"].append(entry)
                    continue
                entry["mmp"] = _stats(vals)
                entry["mmp"]["windows_sampled"] = int(len(idx))
                samples.append(vals)
            report["sequences"].append(entry)
        report["totals"] = {"sequences": len(ds.sequences), "windows": windows_total}
        if samples:
            report["totals"]["mmp"] = _stats(np.concatenate(samples))
    return report


def format_report(report: dict) -> str:
    """The report as aligned text for a terminal."""
    lines = [f"{report['path']}: {'valid' if report['valid'] else 'INVALID'} mmp-h5"]
    attrs = report.get("attrs") or {}
    if attrs:
        shown = []
        for key in ("format", "format_version", "K", "crf", "flow", "frames", "stride", "seed", "mmpdata_version",
                    "source"):
            if key in attrs:
                value = attrs[key]
                if key == "flow" and isinstance(value, dict):
                    value = json.dumps(value, sort_keys=True)
                if key == "stride" and value == 0:
                    value = "0 (= N, non-overlapping)"
                shown.append(f"  {key}: {value}")
        lines.append("attributes:")
        lines += shown
    seqs = report.get("sequences") or []
    if seqs:
        lines.append(f"sequences ({len(seqs)}):")
        for s in seqs:
            if "error" in s:
                lines.append(f"  {s['name']}: {s['error']}")
                continue
            size = f"{s['size'][1]}x{s['size'][0]}" if "size" in s else "?"
            text = f"  {s['name']}: {s.get('windows', '?')} windows, {size}"
            if "split" in s:
                text += f", split {s['split']}"
            if "window_lengths" in s:
                text += ", N " + " ".join(f"{n}:{c}" for n, c in s["window_lengths"].items())
            if "mmp" in s:
                m = s["mmp"]
                text += f", MMP mean {m['mean']:.4f} p99 {m['p99']:.4f} max {m['max']:.4f}"
            lines.append(text)
    totals = report.get("totals") or {}
    if totals:
        text = f"total: {totals.get('sequences', 0)} sequences, {totals.get('windows', 0)} windows"
        if "mmp" in totals:
            m = totals["mmp"]
            text += (f"; MMP mean {m['mean']:.4f}, p50 {m['p50']:.4f}, p90 {m['p90']:.4f}, p99 {m['p99']:.4f}, "
                     f"max {m['max']:.4f}, {100 * m['above_1']:.2f}% above 1")
        lines.append(text)
    if report["problems"]:
        lines.append(f"problems ({len(report['problems'])}):")
        lines += [f"  {p}" for p in report["problems"]]
    return "\n".join(lines)
