"""The hostile set of issue 13: every case must end with exit != 0, one error line naming the culprit, no traceback,
no output under a final name and every input byte-identical; two synthesize runs into one output at once must
both succeed (or one refuse in one line) and, after a rerun, equal one run's data.

Each case runs the real `mmp` command in a fresh process (as the user would), on files made here: rendered sample
footage, a synthesized dataset (DIS flow), random-weight checkpoints, a short H.264 video. Inputs are hashed
before and after; outputs are listed. Needs root for two cases (a tmpfs for the full disk; the read-only folder
needs permission checks as for a normal user: root ignores permissions, so those runs drop the capabilities that let
root override them with `setpriv --bounding-set -dac_override,-dac_read_search,-fowner`, and the folder belongs to
`nobody`, mode 555); without root they are reported as skipped.

    .venv/bin/python bench/hostile.py [--work DIR] [--json results.json] [--concurrent 3]

Prints a Markdown table (docs/robustness.md holds the last one). Exit code 0 when every case passes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MMP = [sys.executable, "-c", "from cli.main import main; main()"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}


# ------------------------------------------------------------------------------------------------------ helpers
def files_of(paths) -> dict[str, str]:
    """sha256 of every file under ``paths`` (files or folders), by path."""
    out = {}
    for p in map(Path, paths):
        items = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else []
        for q in items:
            out[str(q)] = hashlib.sha256(q.read_bytes()).hexdigest()
    return out


def listing(paths) -> list[str]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(str(q) for q in p.rglob("*"))
        elif p.exists():
            out.append(str(p))
    return out


AS_NORMAL_USER = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]


def mmp(*args, user: str | None = None) -> subprocess.CompletedProcess:
    cmd = [*MMP, *map(str, args)]
    if user is not None:  # "normal": the kernel's permission checks apply (no override capabilities)
        cmd = [*AS_NORMAL_USER, *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)


@dataclass
class Case:
    name: str
    owner: str  # who fixes it (issue 13's split)
    args: list
    culprit: str  # text the error line must contain
    inputs: list  # files/folders whose bytes must not change
    outputs: list = field(default_factory=list)  # final names that must not appear (or, when present before, change)
    user: str | None = None
    skip: str | None = None
    no_hidden: Path | None = None  # a folder that must hold no temporary (hidden) file afterwards


@dataclass
class Result:
    case: str
    owner: str
    exit: int | None
    error_lines: int
    names_culprit: bool
    traceback: bool
    outputs_ok: bool
    inputs_ok: bool
    message: str
    seconds: float
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return (self.skipped is None and self.exit not in (0, None) and self.error_lines == 1 and self.names_culprit
                and not self.traceback and self.outputs_ok and self.inputs_ok)


def run_case(case: Case, work: Path) -> Result:
    if case.skip:
        return Result(case.name, case.owner, None, 0, False, False, True, True, "", 0.0, skipped=case.skip)
    before_in = files_of(case.inputs)
    before_out = files_of(case.outputs)
    existed = set(listing(case.outputs))
    t0 = time.perf_counter()
    proc = mmp(*case.args, user=case.user)
    seconds = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.lower().startswith("error:")]
    message = errors[0] if errors else (proc.stderr.strip().splitlines() or [""])[-1]
    after_out = files_of(case.outputs)
    new = sorted(set(listing(case.outputs)) - existed)
    changed = [p for p in before_out if after_out.get(p) != before_out[p]]
    hidden = [p.name for p in case.no_hidden.iterdir() if p.name.startswith(".")] \
        if case.no_hidden is not None and case.no_hidden.is_dir() else []
    if hidden:
        message += f" [left: {', '.join(hidden)}]"
    return Result(case.name, case.owner, proc.returncode, len(errors), case.culprit in message,
                  "Traceback" in text, not new and not changed and not hidden, files_of(case.inputs) == before_in,
                  message, seconds)


# ------------------------------------------------------------------------------------------------------ fixtures
def make_fixtures(work: Path) -> dict:
    """Footage, data, checkpoints and videos the cases use (all under ``work``)."""
    from mmpdata.footage import render_sample_footage
    from mmpdata.pipeline import synthesize
    from mmpmodel.checkpoint import save_checkpoint
    from mmpmodel.mmpnet import MMPNet
    from mmpmodel.mmprnn import MMPRNN

    fx: dict = {}
    raw = work / "raw"
    render_sample_footage(raw, sequences=2, frames=30, size=(64, 48), seed=0, split=False, progress=False)
    fx["raw"] = raw
    fx["raw_big"] = work / "raw_big"
    render_sample_footage(fx["raw_big"], sequences=4, frames=40, size=(320, 192), seed=3, split=False,
                          progress=False)
    fx["frames"] = sorted(p for p in raw.rglob("*") if p.is_dir() and list(p.glob("*.png")))[0]
    data = work / "data" / "X.h5"
    synthesize(raw, data, flow="dis", frames="5", seed=0, progress=False)
    fx["data"] = data
    for kind in ("nan", "trunc"):
        dst = work / f"data_{kind}"
        shutil.copytree(data.parent, dst)
        fx[f"data_{kind}"] = dst / "X.h5"
    shard = sorted((work / "data_nan" / "X.shards").glob("*.h5"))[0]
    with h5py.File(shard, "a") as f:
        m = f["mmp"][1]
        m[10, 10] = np.nan
        f["mmp"][1] = m
    fx["nan_shard"] = shard
    shard = sorted((work / "data_trunc" / "X.shards").glob("*.h5"))[-1]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    fx["trunc_shard"] = shard
    # more damage of item 4, one copy each: bits flipped inside a compressed chunk, the index's K changed in one
    # shard, the `complete` mark cleared, one dataset shortened
    for kind in ("rot", "settings", "incomplete", "lengths"):
        dst = work / f"data_{kind}"
        shutil.copytree(data.parent, dst)
        fx[f"data_{kind}"] = dst / "X.h5"
        fx[f"{kind}_shard"] = shard = sorted((dst / "X.shards").glob("*.h5"))[-1]
        if kind == "rot":
            with h5py.File(shard, "r") as f:
                info = f["blur"].id.get_chunk_info(2)
            raw_bytes = bytearray(shard.read_bytes())
            for k in range(info.byte_offset + info.size // 3, info.byte_offset + info.size // 3 + 16):
                raw_bytes[k] ^= 0xFF
            shard.write_bytes(bytes(raw_bytes))
            continue
        with h5py.File(shard, "a") as f:
            if kind == "settings":
                f.attrs["K"] = 10.0
            elif kind == "incomplete":
                f.attrs["complete"] = False
            else:
                sharp = f["sharp"][:-1]
                del f["sharp"]
                f["sharp"] = sharp

    torch = __import__("torch")
    cks = work / "ck"
    for i, name in enumerate(("prior", "prior2")):
        torch.manual_seed(i)
        net = MMPNet().eval()
        save_checkpoint(cks / f"{name}.pt", kind="prior", config={"width": 16}, model=net.state_dict())
    torch.manual_seed(0)
    prior = MMPNet().eval()
    model = MMPRNN("A1B1C4F5", prior).eval()
    cfg = {"preset": model.config.name, "model": model.config.to_dict(), "prior_config": {"width": 16}}
    save_checkpoint(cks / "deblur.pt", kind="deblur", config=cfg, model=model.deblur_state_dict(),
                    prior=prior.state_dict())
    state = model.deblur_state_dict()
    key = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    save_checkpoint(cks / "deblur_nan.pt", kind="deblur", config=cfg, model=state, prior=prior.state_dict())
    fx.update(prior=cks / "prior.pt", prior2=cks / "prior2.pt", deblur=cks / "deblur.pt",
              deblur_nan=cks / "deblur_nan.pt")

    import imageio_ffmpeg

    import cv2

    frames = [cv2.imread(str(p))[:, :, ::-1] for p in sorted(fx["frames"].glob("*.png"))]
    video = work / "video" / "clip.mp4"
    video.parent.mkdir()
    writer = imageio_ffmpeg.write_frames(str(video), (frames[0].shape[1], frames[0].shape[0]), fps=25,
                                         macro_block_size=1, quality=8)
    writer.send(None)
    for fr in frames:
        writer.send(np.ascontiguousarray(fr))
    writer.close()
    fx["video"] = video
    empty = work / "video" / "empty.mp4"
    empty.write_bytes(b"")
    fx["empty"] = empty

    # GOPRO layout whose blur and sharp folders do not pair: frame 000003 blurry only, 000004 sharp only
    gp = work / "gopro" / "train" / "GOPR0001_00_00"
    src = sorted(fx["frames"].glob("*.png"))
    for side, idx in (("blur_gamma", (1, 2, 3)), ("sharp", (1, 2, 4))):
        (gp / side).mkdir(parents=True)
        for i in idx:
            shutil.copy(src[i], gp / side / f"{i:06d}.png")
    fx["gopro"] = work / "gopro"

    # a train-deblur run with prior.pt, to be resumed with prior2.pt
    run = work / "run"
    proc = mmp("train-deblur", "--data", data, "--prior", fx["prior"], "--preset", "A1B1C4F5", "--out", run,
               "--steps", "2", "--batch-size", "1", "--patch", "32", "--val-every", "2")
    fx["run"] = run
    fx["run_ok"] = proc.returncode == 0 and (run / "last.pt").exists()
    fx["run_error"] = (proc.stderr.strip().splitlines() or [""])[-1]

    (work / "some_folder").mkdir()
    fx["folder"] = work / "some_folder"
    return fx


def mount_tmpfs(path: Path, size: str) -> str | None:
    """A tiny tmpfs at ``path`` (a full disk); None on success, else why not."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "needs root (mount -t tmpfs)"
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    return None if proc.returncode == 0 else f"mount failed: {proc.stderr.strip()}"


def cases(fx: dict, work: Path) -> list[Case]:
    out = []
    full = work / "full"
    why_full = mount_tmpfs(full, "192k")
    full2 = work / "full2"
    why_full2 = mount_tmpfs(full2, "20m")
    full3 = work / "full3"
    why_full3 = mount_tmpfs(full3, "1m")
    fx["tmpfs"] = [p for p, why in ((full, why_full), (full2, why_full2), (full3, why_full3)) if why is None]
    ro = work / "readonly"
    ro.mkdir()
    can_drop = os.geteuid() == 0 and shutil.which("setpriv") is not None
    why_ro = None if can_drop else "needs root and setpriv (to run with a normal user's permission checks)"
    if can_drop:
        os.chown(ro, 65534, 65534)  # nobody's folder, r-x for everyone else
    ro.chmod(0o555)
    data, raw = fx["data"], fx["raw"]
    out += [
        Case("output folder = input folder (deblur)", "B", ["deblur", "--model", fx["deblur"], fx["frames"],
                                                              fx["frames"]],
             fx["frames"].name, [fx["frames"], fx["deblur"]], []),
        Case("mispaired import", "B", ["import", "--layout", "gopro", fx["gopro"], "--out", work / "imp" / "G.h5"],
             "00000", [fx["gopro"]], [work / "imp"]),
        Case("NaN in stored maps: train-prior", "C/F", ["train-prior", "--data", fx["data_nan"], "--out",
                                                       work / "r_nan", "--steps", "2", "--batch-size", "1",
                                                       "--patch", "32", "--val-every", "1"],
             fx["nan_shard"].name, [fx["data_nan"].parent], [work / "r_nan"]),
        Case("NaN in stored maps: eval", "C", ["eval", "--model", fx["prior"], "--data", fx["data_nan"]],
             fx["nan_shard"].name, [fx["data_nan"].parent, fx["prior"]], []),
        Case("NaN in stored maps: inspect", "C", ["inspect", fx["data_nan"]], fx["nan_shard"].name,
             [fx["data_nan"].parent], []),
        Case("bit rot in a chunk: eval", "C", ["eval", "--model", fx["deblur"], "--data", fx["data_rot"]],
             fx["rot_shard"].name, [fx["data_rot"].parent, fx["deblur"]], []),
        Case("bit rot in a chunk: inspect", "C", ["inspect", fx["data_rot"]], fx["rot_shard"].name,
             [fx["data_rot"].parent], []),
        Case("shard settings differ from the index: train-prior", "C",
             ["train-prior", "--data", fx["data_settings"], "--out", work / "r_set", "--steps", "2",
              "--batch-size", "1", "--patch", "32"], fx["settings_shard"].name, [fx["data_settings"].parent],
             [work / "r_set"]),
        Case("missing complete mark: eval", "C", ["eval", "--model", fx["prior"], "--data", fx["data_incomplete"]],
             fx["incomplete_shard"].name, [fx["data_incomplete"].parent, fx["prior"]], []),
        Case("unequal dataset lengths: train-deblur", "C",
             ["train-deblur", "--data", fx["data_lengths"], "--prior", fx["prior"], "--preset", "A1B1C4F5", "--out",
              work / "r_len", "--steps", "2", "--batch-size", "1", "--patch", "32"], fx["lengths_shard"].name,
             [fx["data_lengths"].parent, fx["prior"]], [work / "r_len"]),
        Case("--k inf (synthesize)", "C", ["synthesize", "--raw", raw, "--out", work / "k" / "X.h5", "--k", "inf"],
             "--k", [raw], [work / "k"]),
        Case("truncated shard: inspect", "C", ["inspect", fx["data_trunc"]], fx["trunc_shard"].name,
             [fx["data_trunc"].parent], []),
        Case("truncated shard: train-prior", "C", ["train-prior", "--data", fx["data_trunc"], "--out",
                                                    work / "r_trunc", "--steps", "2", "--batch-size", "1",
                                                    "--patch", "32"],
             fx["trunc_shard"].name, [fx["data_trunc"].parent], [work / "r_trunc"]),
        Case("truncated shard: train-deblur", "C", ["train-deblur", "--data", fx["data_trunc"], "--prior",
                                                     fx["prior"], "--preset", "A1B1C4F5", "--out", work / "r_trunc2",
                                                     "--steps", "2", "--batch-size", "1", "--patch", "32"],
             fx["trunc_shard"].name, [fx["data_trunc"].parent, fx["prior"]], [work / "r_trunc2"]),
        Case("truncated shard: mmp index", "C", ["index", fx["data_trunc"]], fx["trunc_shard"].name,
             [fx["data_trunc"].parent], []),
        Case("full disk (synthesize into a 192 KiB tmpfs)", "C", ["synthesize", "--raw", raw, "--out", full / "X.h5",
                                                                  "--flow", "dis", "--frames", "5"],
             "no space left", [raw], [full / "X.h5"], skip=why_full, no_hidden=full / "X.shards"),
        Case("full disk mid-run (synthesize 320x192 footage into a 20 MiB tmpfs)", "C",
             ["synthesize", "--raw", fx["raw_big"], "--out", full2 / "X.h5", "--flow", "dis", "--frames", "5"],
             "no space left", [fx["raw_big"]], [full2 / "X.h5"], skip=why_full2, no_hidden=full2 / "X.shards"),
        Case("full disk during train-prior (checkpoint into a 1 MiB tmpfs)", "C/F",
             ["train-prior", "--data", data, "--out", full3 / "run", "--steps", "2", "--batch-size", "1", "--patch",
              "32", "--val-every", "2"], "no space left", [data.parent], [full3 / "run"], skip=why_full3,
             no_hidden=full3 / "run"),
        Case("--json into a folder (eval)", "C", ["eval", "--model", fx["prior"], "--data", data, "--json",
                                                  fx["folder"]],
             str(fx["folder"]), [data.parent, fx["prior"]], [fx["folder"]]),
        Case("0-byte video (deblur)", "B", ["deblur", "--model", fx["deblur"], fx["empty"], work / "o0.mp4"],
             fx["empty"].name, [fx["empty"]], [work / "o0.mp4"]),
        Case("checkpoint with NaN weights (deblur)", "C", ["deblur", "--model", fx["deblur_nan"], fx["video"],
                                                           work / "onan.mp4"],
             fx["deblur_nan"].name, [fx["deblur_nan"], fx["video"]], [work / "onan.mp4"]),
        Case("checkpoint with NaN weights (eval)", "C", ["eval", "--model", fx["deblur_nan"], "--data", data],
             fx["deblur_nan"].name, [fx["deblur_nan"], data.parent], []),
        Case("--resume with another prior (train-deblur)", "F",
             ["train-deblur", "--data", data, "--prior", fx["prior2"], "--preset", "A1B1C4F5", "--out", fx["run"],
              "--resume", "--steps", "4", "--batch-size", "1", "--patch", "32", "--val-every", "2"],
             "prior", [data.parent, fx["prior"], fx["prior2"]], [fx["run"]],
             skip=None if fx["run_ok"] else f"the first train-deblur run failed: {fx['run_error']}"),
        Case("--fps nan (deblur)", "B", ["deblur", "--model", fx["deblur"], fx["video"], work / "ofps.mp4",
                                         "--fps", "nan"],
             "--fps", [fx["video"], fx["deblur"]], [work / "ofps.mp4"]),
        Case("read-only output folder, normal user (synthesize)", "C",
             ["synthesize", "--raw", raw, "--out", ro / "X.h5", "--flow", "dis", "--frames", "5"], str(ro), [raw],
             [ro], user="nobody", skip=why_ro),
        Case("read-only output folder, normal user (eval --json)", "C",
             ["eval", "--model", fx["prior"], "--data", data, "--json", ro / "r.json"], str(ro / "r.json"),
             [data.parent, fx["prior"]], [ro], user="nobody", skip=why_ro),
        Case("read-only output folder, normal user (deblur)", "B",
             ["deblur", "--model", fx["deblur"], fx["video"], ro / "o.mp4"], str(ro), [fx["video"], fx["deblur"]],
             [ro], user="nobody", skip=why_ro),
    ]
    return out


# --------------------------------------------------------------------------------------------------- concurrency
def contents(index: Path) -> dict:
    """Every dataset's bytes and every attribute a reader sees (index and shards)."""
    out = {}
    with h5py.File(index, "r") as f:
        out["index"] = {k: np.asarray(v).tolist() for k, v in f.attrs.items()}
        for name in f["sequences"]:
            g = f["sequences"][name]
            out[name] = {k: hashlib.sha256(g[k][()].tobytes()).hexdigest() for k in g}
            out[name]["attrs"] = {k: np.asarray(v).tolist() for k, v in g.attrs.items()}
    return out


def concurrent_runs(work: Path, trials: int) -> list[dict]:
    from mmpdata.footage import render_sample_footage
    from mmpdata.pipeline import synthesize

    raw = work / "raw_conc"
    render_sample_footage(raw, sequences=4, frames=30, size=(96, 64), seed=5, split=False, progress=False)
    single = work / "conc_single" / "X.h5"
    synthesize(raw, single, flow="dis", frames="5", stride=1, seed=1, progress=False)
    want = contents(single)
    rows = []
    for trial in range(trials):
        out = work / f"conc_{trial}" / "X.h5"
        args = ["synthesize", "--raw", raw, "--out", out, "--flow", "dis", "--frames", "5", "--stride", "1",
                "--seed", "1", "--no-progress"]
        procs = [subprocess.Popen([*MMP, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=ENV, cwd=ROOT) for _ in range(2)]
        res = [(p.wait(), *p.communicate()) for p in procs]
        equal_before = out.exists() and contents(out) == want
        rerun = subprocess.run([*MMP, *map(str, args)], capture_output=True, text=True, env=ENV, cwd=ROOT)
        rows.append({
            "trial": trial + 1,
            "exits": [r[0] for r in res],
            "summaries": [(r[1].strip().splitlines() or [""])[-1] for r in res],
            "refusals_one_line": all(r[0] == 0 or len([ln for ln in r[2].splitlines()
                                                        if ln.startswith("error:")]) == 1 for r in res),
            "traceback": any("Traceback" in r[2] for r in res),
            "equal_without_rerun": equal_before,
            "rerun_exit": rerun.returncode,
            "equal_after_rerun": out.exists() and contents(out) == want,
            "leftovers": sorted(p.name for p in (out.parent / "X.shards").iterdir() if p.name.startswith(".")),
        })
    return rows


# ------------------------------------------------------------------------------------------------------- report
def table(results: list[Result]) -> str:
    head = ("| case | owner | exit | error lines | names culprit | traceback | no final output | inputs intact | "
            "result | message |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    yes = {True: "yes", False: "**no**"}
    for r in results:
        if r.skipped:
            lines.append(f"| {r.case} | {r.owner} | – | – | – | – | – | – | skipped | {r.skipped} |")
            continue
        msg = r.message.replace("|", "\\|")
        msg = msg if len(msg) <= 160 else msg[:157] + "..."
        lines.append(f"| {r.case} | {r.owner} | {r.exit} | {r.error_lines} | {yes[r.names_culprit]} | "
                     f"{'**yes**' if r.traceback else 'no'} | {yes[r.outputs_ok]} | {yes[r.inputs_ok]} | "
                     f"{'PASS' if r.ok else '**FAIL**'} | `{msg}` |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="Working folder (default: a new temporary one).")
    ap.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    ap.add_argument("--concurrent", type=int, default=3, help="Trials of two synthesize runs at once.")
    ap.add_argument("--only", default=None, help="Run only the cases whose name contains this text.")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="mmp-hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    t0 = time.perf_counter()
    fx = make_fixtures(work)
    all_cases = cases(fx, work)
    results = []
    try:
        for case in all_cases:
            if a.only and a.only not in case.name:
                continue
            r = run_case(case, work)
            results.append(r)
            print(f"{'PASS' if r.ok else ('skip' if r.skipped else 'FAIL')}  {case.name}: exit {r.exit}; "
                  f"{r.message[:140]}", flush=True)
    finally:
        for p in fx.get("tmpfs") or []:
            left = sorted(str(q.relative_to(p)) for q in p.rglob("*"))
            print(f"left on the full disk {p}: {left or 'nothing'}")
            subprocess.run(["umount", str(p)], check=False)
    conc = concurrent_runs(work, a.concurrent) if a.concurrent and not a.only else []
    print()
    print(table(results))
    if conc:
        print("\n| trial | exits | one-line refusals | traceback | equal to one run (before rerun) | rerun exit | "
              "equal to one run after rerun | hidden files left |\n|---|---|---|---|---|---|---|---|")
        for c in conc:
            print(f"| {c['trial']} | {c['exits']} | {c['refusals_one_line']} | {c['traceback']} | "
                  f"{c['equal_without_rerun']} | {c['rerun_exit']} | {c['equal_after_rerun']} | "
                  f"{c['leftovers'] or 'none'} |")
        for c in conc:
            print(f"trial {c['trial']}: " + " / ".join(c["summaries"]))
    failed = [r for r in results if not r.ok and not r.skipped]
    print(f"\n{len(results) - len(failed) - sum(1 for r in results if r.skipped)} pass, {len(failed)} fail, "
          f"{sum(1 for r in results if r.skipped)} skipped; {time.perf_counter() - t0:.0f} s; work folder {work}")
    if failed:
        print("failing (owner): " + "; ".join(f"{r.case} ({r.owner})" for r in failed))
    if a.json:
        a.json.write_text(json.dumps({"cases": [r.__dict__ | {"ok": r.ok} for r in results],
                                      "concurrent": conc}, indent=2, default=str))
    conc_ok = all(c["refusals_one_line"] and not c["traceback"] and c["equal_after_rerun"] and not c["leftovers"]
                  for c in conc)
    return 0 if not failed and conc_ok else 1


if __name__ == "__main__":
    sys.exit(main())
