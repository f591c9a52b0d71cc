"""The synthesis pipeline: raw sharp sequences → one mmp-h5 shard per sequence → the index.

Per sequence: plan the windows, decode each needed raw frame once (in background threads, so decoding overlaps
the flow work), synthesize each window's blur (eq. 1), take its centre frame as the sharp target, build its MMP from
per-pair flow magnitudes computed once per pair (eq. 2-3), and write the shard (in a background thread) under a
temporary name that is renamed when complete. Sequences are independent: joblib runs them in worker processes on
the CPU, ``--part i/n`` splits them over machines, and a rerun skips the shards already complete. Every result is
a function of (sequence, settings) only, so it is the same whatever the workers, parts or interruptions were.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from mmpdata import h5format
from mmpdata.blur import blur_from_linear
from mmpdata.crf import CRF, get_crf
from mmpdata.errors import InputError, OutputError, SettingsMismatch, environment_error
from mmpdata.flow import FlowEstimator, make_estimator
from mmpdata.magnitude import PairMagnitudes
from mmpdata.rawio import RawSequence, discover_sequences, read_image
from mmpdata.windows import Window, parse_frames, plan_windows

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------- options
def parse_part(part: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"2/4"`` → (2, 4); None → (1, 1)."""
    if part is None:
        return 1, 1
    if isinstance(part, tuple):
        i, n = part
    else:
        try:
            i, n = (int(x) for x in str(part).split("/"))
        except ValueError:
            raise InputError(f"--part {part!r}: expected i/n with 1 <= i <= n, e.g. --part 1/4") from None
    if not 1 <= i <= n:
        raise InputError(f"--part {part!r}: expected i/n with 1 <= i <= n, e.g. --part 1/4")
    return i, n


def select_part(sequences: list[RawSequence], part: tuple[int, int]) -> list[RawSequence]:
    """Round-robin over the name-sorted sequence list: part i of n takes sequences i-1, i-1+n, i-1+2n, ...

    Depends only on the names, so every machine computes the same disjoint split without talking to the others.
    """
    i, n = part
    return sorted(sequences, key=lambda s: s.name)[i - 1::n]


@dataclass
class FlowSpec:
    """How to build the flow estimator; a worker process builds its own from this (estimators do not pickle)."""

    spec: str = "auto"
    weights: str | None = None
    iterations: int | None = None
    device: str | None = None
    precision: str = "fp32"
    batch: int = 4
    threads: int | None = None

    def build(self) -> FlowEstimator:
        return make_estimator(self.spec, weights=self.weights, iterations=self.iterations, device=self.device,
                              precision=self.precision, batch=self.batch, threads=self.threads)


_ESTIMATORS: dict[tuple, FlowEstimator] = {}


def _cached_estimator(spec: FlowSpec) -> FlowEstimator:
    """One estimator per worker process and spec (building RAFT takes a while)."""
    key = tuple(sorted(vars(spec).items()))
    if key not in _ESTIMATORS:
        _ESTIMATORS[key] = spec.build()
    return _ESTIMATORS[key]


# ---------------------------------------------------------------------------------------------- frame reading
class FrameSource:
    """Decodes the frames a sequence needs, in order, ahead of use in background threads; each frame once.

    ``get(i)`` returns frame i (indices must be among ``indices``); ``release_before(i)`` forgets older frames.
    A frame whose size differs from the sequence's first frame raises InputError naming it.
    """

    def __init__(self, seq: RawSequence, indices: list[int], threads: int = 1, lookahead: int = 16):
        self.seq = seq
        self.indices = list(indices)
        # video frames decode sequentially; image files can decode in parallel
        threads = 1 if seq.kind != "folder" else max(1, int(threads))
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"decode-{seq.name}")
        self._lookahead = max(lookahead, threads)
        self._futures: dict[int, object] = {}
        self._next = 0  # position in self.indices of the next frame to submit
        self._frames: dict[int, np.ndarray] = {}
        self._size: tuple[int, int] | None = None
        self.decoded = 0
        self._fill()

    def _decode(self, i: int) -> np.ndarray:
        return read_image(self.seq.frames[i]) if self.seq.kind == "folder" else self.seq.read(i)

    def _fill(self) -> None:
        while self._next < len(self.indices) and len(self._futures) < self._lookahead:
            i = self.indices[self._next]
            self._futures[i] = self._pool.submit(self._decode, i)
            self._next += 1

    def get(self, i: int) -> np.ndarray:
        if i not in self._frames:
            fut = self._futures.pop(i, None)
            if fut is None:
                raise KeyError(f"frame {i} of {self.seq.name} was not planned or was already released")
            img = fut.result()
            self.decoded += 1
            if self._size is None:
                self._size = img.shape[:2]
            elif img.shape[:2] != self._size:
                h, w = self._size
                raise InputError(f"{self.seq.frame_name(i)}: size {img.shape[1]}x{img.shape[0]} differs from the "
                                 f"sequence's {w}x{h}; resize or remove this frame")
            self._frames[i] = img
            self._fill()
        return self._frames[i]

    def release_before(self, i: int) -> None:
        for j in [j for j in self._frames if j < i]:
            del self._frames[j]

    def close(self) -> None:
        for fut in self._futures.values():
            fut.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._futures.clear()
        self._frames.clear()
        self.seq.close()  # a video's decoder may still hold the frames after the last window


class _BackgroundWriter:
    """Runs ShardWriter.write calls in one background thread so compression overlaps the flow work."""

    def __init__(self, writer: h5format.ShardWriter, depth: int = 4):
        self.writer = writer
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"write-{writer.final.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self.writer.write(*item)
                except BaseException as exc:  # re-raised in the main thread by put()/close()
                    self._error = exc

    def put(self, *item) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(item)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class _TimedEstimator:
    """Forwards to an estimator and adds up the seconds spent in it (for the pipeline/flow time ratio)."""

    def __init__(self, inner: FlowEstimator):
        self.inner = inner
        self.batch = getattr(inner, "batch", 1)
        self.seconds = 0.0

    def magnitudes(self, first, second):
        t0 = time.perf_counter()
        try:
            return self.inner.magnitudes(first, second)
        finally:
            self.seconds += time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------ one sequence
@dataclass
class SequenceJob:
    """Everything a worker needs to write one shard (picklable)."""

    seq: RawSequence
    windows: list[Window]
    shard: Path
    settings: h5format.Settings
    crf: CRF
    flow: FlowSpec
    compression: str = h5format.DEFAULT_COMPRESSION
    decode_threads: int = 1
    progress: bool | None = None


@dataclass
class SequenceResult:
    name: str
    windows: int
    frames_decoded: int
    pairs_computed: int
    flow_seconds: float
    seconds: float
    pid: int = 0
    status: str = "written"  # "written", "resumed" (complete already), "busy" (another run is writing it)
    holder: str = ""  # for "busy": host and pid of that run


def synthesize_sequence(job: SequenceJob, estimator: FlowEstimator | None = None) -> SequenceResult:
    """Write the shard of one sequence (temporary name, renamed when complete) while holding its shard lock; a
    sequence another run is writing right now is skipped (status "busy"), one it finished meanwhile is kept."""
    lock = h5format.shard_lock(job.shard)
    if not lock.acquire():
        return SequenceResult(job.seq.name, 0, 0, 0, 0.0, 0.0, os.getpid(), status="busy", holder=lock.holder())
    try:
        if job.shard.exists() and h5format.shard_status(job.shard, job.settings) == "complete":
            return SequenceResult(job.seq.name, 0, 0, 0, 0.0, 0.0, os.getpid(), status="resumed")
        return _write_sequence(job, estimator)
    finally:
        lock.release()


def _write_sequence(job: SequenceJob, estimator: FlowEstimator | None) -> SequenceResult:
    t0 = time.perf_counter()
    seq, windows = job.seq, job.windows
    timed = _TimedEstimator(estimator if estimator is not None else _cached_estimator(job.flow))
    needed = sorted({i for w in windows for i in range(w.first, w.last + 1)})
    hi = max(w.n for w in windows)
    source = FrameSource(seq, needed, threads=job.decode_threads, lookahead=max(16, 2 * hi))
    pairs = PairMagnitudes(source.get, len(seq), timed)
    k = float(job.settings.K)
    try:
        first = source.get(needed[0])
        h, w = first.shape[:2]
        attrs = {**job.settings.attrs(), "sequence": seq.name, "split": seq.split or "", "source": str(seq.path),
                 "raw_frames": np.int64(len(seq)), "raw_size": np.asarray((h, w), np.int64)}
        with h5format.ShardWriter(job.shard, len(windows), (h, w), attrs, compression=job.compression) as writer:
            bg = _BackgroundWriter(writer)
            try:
                bar = tqdm(windows, desc=seq.name, unit="window", leave=False, disable=_disable(job.progress))
                linear: dict[int, np.ndarray] = {}  # each frame through the inverse CRF once, not once per window
                for t, win in enumerate(bar):
                    for i in range(win.first, win.last + 1):
                        if i not in linear:
                            linear[i] = job.crf.to_linear(source.get(i))
                    blur = blur_from_linear([linear[i] for i in range(win.first, win.last + 1)], job.crf)
                    mmp = pairs.window_mmp(win.first, win.last, k)
                    bg.put(t, blur, source.get(win.centre), mmp, (win.first, win.last))
                    nxt = windows[t + 1].first if t + 1 < len(windows) else win.last + 1
                    source.release_before(nxt)
                    for i in [i for i in linear if i < nxt]:
                        del linear[i]
            finally:
                bg.close()
    finally:
        source.close()
    return SequenceResult(seq.name, len(windows), source.decoded, pairs.pairs_computed, timed.seconds,
                          time.perf_counter() - t0, os.getpid())


def _disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None = automatic (off when not a terminal)."""
    return None if progress is None else not progress


def _worker(job: SequenceJob) -> SequenceResult:
    return synthesize_sequence(job)


# ------------------------------------------------------------------------------------------------- whole run
@dataclass
class SynthesisResult:
    index: Path
    flow: dict
    written: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    too_short: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # being written by another run at the same time
    indexed: list[str] = field(default_factory=list)
    windows: int = 0
    pairs_computed: int = 0
    flow_seconds: float = 0.0
    seconds: float = 0.0
    pids: set = field(default_factory=set)  # processes that wrote shards (workers)

    def summary(self) -> str:
        busy = (f", {len(self.busy)} being written by another run (it rewrites the index when it ends)"
                if self.busy else "")
        return (f"{self.index}: wrote {len(self.written)} sequence(s) ({self.windows} windows), "
                f"{len(self.resumed)} already complete, {len(self.too_short)} too short{busy}; "
                f"index lists {len(self.indexed)} sequence(s); flow {self.flow.get('estimator')} "
                f"in {self.seconds:.1f} s")


def synthesize(raw: str | os.PathLike, out: str | os.PathLike, *, flow: str = "auto", flow_weights: str | None = None,
               flow_iters: int | None = None, frames: str | tuple[int, int] = "7-13", stride: int | None = None,
               crf: str = "gamma2.2", k: float = 15.0, seed: int = 0, workers: int = 1,
               part: str | tuple[int, int] | None = None, batch: int = 4, precision: str = "fp32",
               device: str | None = None, compression: str = h5format.DEFAULT_COMPRESSION,
               progress: bool | None = None) -> SynthesisResult:
    """Synthesize (blur, sharp, MMP) windows from the raw sequences under ``raw`` into the mmp-h5 dataset ``out``.

    Checks every option and the existing output before writing anything; resumes from complete shards written with
    the same settings; rebuilds the index from all complete shards present at the end (other parts' included).
    """
    t0 = time.perf_counter()
    out = Path(out)
    lohi = frames if isinstance(frames, tuple) else parse_frames(frames)
    curve = get_crf(crf)
    if not (math.isfinite(k) and k > 0):
        raise InputError(f"--k {k}: K must be a positive finite number (the paper uses 15)")
    if stride is not None and stride < 1:
        raise InputError(f"--stride {stride}: must be a positive number of frames")
    if workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    if batch < 1:
        raise InputError(f"--batch {batch}: must be at least 1")
    which = parse_part(part)
    try:
        h5format.compression_options(compression)
    except ValueError as exc:
        raise InputError(f"--compression: {exc}") from None
    _check_out_path(out)
    spec = FlowSpec(flow, None if flow_weights is None else str(flow_weights), flow_iters, device, precision, batch)
    estimator = spec.build()
    on_gpu = str(getattr(estimator, "device", "cpu")).startswith("cuda")
    settings = h5format.Settings(K=float(k), crf=curve.name, flow=estimator.describe(), frames=lohi,
                                 stride=stride, seed=int(seed))
    _check_existing_index(out, settings)

    sequences = select_part(discover_sequences(raw), which)
    result = SynthesisResult(index=out, flow=estimator.describe())
    jobs = _plan_jobs(sequences, out, settings, curve, spec, compression, result, raw, which)

    created: list[Path] = []
    todo: list[SequenceJob] = []
    try:
        created = _make_dirs(h5format.shards_dir(out))
        h5format.remove_stale_temps(h5format.shards_dir(out), [s.name for s in sequences])
        for job in jobs:
            if job.shard.exists() and h5format.shard_status(job.shard, settings) == "complete":
                result.resumed.append(job.seq.name)
            else:
                todo.append(job)
        if result.resumed:
            shown = result.resumed[:5]
            more = f", ... {len(result.resumed) - len(shown)} more" if len(result.resumed) > len(shown) else ""
            log.info("resuming: %d complete shard(s) kept (%s%s)", len(result.resumed), ", ".join(shown), more)
        for res in _run_jobs(todo, estimator, spec, workers, on_gpu, progress):
            if res.status == "busy":
                result.busy.append(res.name)
                log.warning("%s is being written by another run (%s) right now; left to it", res.name, res.holder)
                continue
            if res.status == "resumed":
                result.resumed.append(res.name)
                continue
            result.written.append(res.name)
            result.windows += res.windows
            result.pairs_computed += res.pairs_computed
            result.flow_seconds += res.flow_seconds
            result.pids.add(res.pid)
            log.info("%s: %d windows in %.1f s (flow %.1f s)", res.name, res.windows, res.seconds, res.flow_seconds)
        if h5format.list_shards(out):
            result.indexed = h5format.build_index(out, settings)
    except BaseException as exc:
        # worker processes stopped by the failure may leave temporaries; finished shards stay for the rerun
        try:
            h5format.remove_stale_temps(h5format.shards_dir(out), [j.seq.name for j in todo])
        except OSError:
            pass
        _remove_if_empty(created)
        env = environment_error(exc, h5format.shards_dir(out))
        if env is not None:
            raise env from None
        raise
    result.written.sort()
    result.seconds = time.perf_counter() - t0
    return result


def _check_out_path(out: Path) -> None:
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is a file, not a folder; choose another --out")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out}: {parent} is not writable (permission denied or a read-only disk); "
                          "choose an --out in a folder you can write")
    if out.exists() and not out.is_file():
        raise InputError(f"--out {out}: exists and is not a file; pass a file name such as data/mmp.h5")
    if out.exists() and not h5py.is_hdf5(out):
        raise InputError(f"--out {out}: exists and is not an mmp-h5 index; choose another --out or delete it")
    if h5format.shards_dir(out).exists() and not h5format.shards_dir(out).is_dir():
        raise InputError(f"{h5format.shards_dir(out)}: exists and is not a folder; move it away or choose another --out")


def _check_existing_index(out: Path, settings: h5format.Settings) -> None:
    """An existing index must have been written with the same settings (then the run resumes)."""
    if not out.exists():
        return
    try:
        attrs = h5format.read_settings(out)
    except h5format.FormatError:
        raise InputError(f"--out {out}: exists and is not an mmp-h5 index; choose another --out or delete it") from None
    diff = settings.differences(attrs)
    if diff:
        raise SettingsMismatch(f"{out} was written with different settings ({'; '.join(diff)}); "
                               "rerun with the same settings to resume, or choose another --out")


def _plan_jobs(sequences, out, settings, curve, spec, compression, result, raw, which) -> list[SequenceJob]:
    jobs = []
    for seq in sequences:
        windows = plan_windows(len(seq), settings.frames, settings.stride, settings.seed, seq.name)
        if not windows:
            lo, hi = settings.frames
            n = str(lo) if lo == hi else f"{lo}-{hi}"
            log.warning("%s: %d frames, too short for a window of --frames %s; skipped", seq.path, len(seq), n)
            result.too_short.append(seq.name)
            continue
        jobs.append(SequenceJob(seq, windows, h5format.shard_path(out, seq.name), settings, curve, spec, compression))
    if not jobs and result.too_short:
        names = ", ".join(result.too_short)
        lo, hi = settings.frames
        raise InputError(f"{raw}: every sequence is shorter than one window of --frames "
                         f"{lo if lo == hi else f'{lo}-{hi}'} ({names}); use shorter --frames or longer footage")
    if not sequences:
        log.warning("part %d/%d of %s holds no sequences", which[0], which[1], raw)
    return jobs


def _run_jobs(jobs: list[SequenceJob], estimator, spec: FlowSpec, workers: int, on_gpu: bool, progress):
    """Yield each job's result. GPU: one process keeps the flow on the device, ``workers`` threads decode.
    CPU with several workers: joblib (loky processes), each worker building its own estimator."""
    bar = tqdm(total=len(jobs), desc="sequences", unit="seq", disable=_disable(progress))
    try:
        if workers == 1 or on_gpu or len(jobs) <= 1:
            for job in jobs:
                job.decode_threads = workers if on_gpu else 1
                job.progress = progress
                yield synthesize_sequence(job, estimator)
                bar.update()
            return
        from joblib import Parallel, delayed

        worker_spec = FlowSpec(**{**vars(spec), "threads": 1})  # the workers share the cores
        for job in jobs:
            job.flow, job.progress = worker_spec, False
        par = Parallel(n_jobs=min(workers, len(jobs)), backend="loky", return_as="generator_unordered")
        for res in par(delayed(_worker)(job) for job in jobs):
            yield res
            bar.update()
    finally:
        bar.close()


def _make_dirs(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (innermost last) so a failed run can remove them again."""
    created = []
    p = folder
    while not p.exists():
        created.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created[::-1]


def _remove_if_empty(created: list[Path]) -> None:
    for p in reversed(created):
        try:
            p.rmdir()
        except OSError:
            break


def rebuild_index(out: str | os.PathLike) -> list[str]:
    """``mmp index``: rewrite ``OUT.h5`` from the complete shards in ``OUT.shards`` (their settings must agree)."""
    out = Path(out)
    folder = h5format.shards_dir(out)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; run `mmp synthesize --out {out}` first")
    return h5format.build_index(out)
