"""Optical flow estimators behind one small interface.

The motion-magnitude maps of eq. 2-3 only need per-pixel flow between adjacent sharp frames, so every backend
answers the same question: given lists of first and second frames (uint8 RGB), return float32 flows
(B, H, W, 2) = (dx, dy) from first to second. ``describe()`` names exactly what produced the numbers, so a
dataset records it and a resumed run can refuse different settings.

Backends:
- ``dis``: OpenCV's Dense Inverse Search on grey images; CPU only, no weights. Its parameters were chosen by
  measurement against analytic affine motion (see ``bench/flow.py`` and docs/benchmarks.md).
- ``raft-large`` / ``raft-small``: RAFT through torchvision (the paper's estimator is RAFT-large, "things" weights
  = torchvision's ``C_T_V1``), 20 refinement updates by default.
- ``auto``: RAFT-large when CUDA and weights are both at hand, otherwise DIS with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np

from mmpdata.errors import InputError

logger = logging.getLogger(__name__)

SPECS = ("auto", "dis", "raft-large", "raft-small")
PRECISIONS = ("fp32", "bf16", "fp16")

# DIS parameters, measured by bench/flow.py against analytic affine motion of photographs at 320x192 (numbers in
# docs/benchmarks.md). OpenCV's presets stop at 1/2 (MEDIUM) or 1/4 (FAST, ULTRAFAST) resolution; "fine" runs the
# patch search down to full resolution, which cuts the flow-length error about 2-3x for ~2x MEDIUM's time.
DIS_PRESETS = {
    "ultrafast": dict(base="ULTRAFAST"),
    "fast": dict(base="FAST"),
    "medium": dict(base="MEDIUM"),
    "fine": dict(base="MEDIUM", finest_scale=0, patch_size=8, patch_stride=6,
                 gradient_descent_iterations=12, variational_refinement_iterations=5),
}
DIS_DEFAULT_PRESET = "fine"


def _check_frames(first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> None:
    if len(first) != len(second):
        raise ValueError(f"flow needs as many first as second frames, got {len(first)} and {len(second)}")
    for a, b in zip(first, second):
        if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"flow needs pairs of equal-size RGB frames, got {a.shape} and {b.shape}")


class FlowEstimator(ABC):
    """Dense optical flow from each first frame to its second frame."""

    name: str
    weights: str
    iterations: int
    device: str
    batch: int = 1

    @abstractmethod
    def flow(self, first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> np.ndarray:
        """float32 (B, H, W, 2) = (dx, dy): where each pixel of ``first[b]`` moves to in ``second[b]``."""

    def magnitudes(self, first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> np.ndarray:
        """float32 (B, H, W) per-pixel flow length; backends may override to save memory or transfers."""
        f = self.flow(first, second)
        return np.sqrt(f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1]).astype(np.float32, copy=False)

    def describe(self) -> dict:
        """What produced the flows: estimator, weights, iterations (stored in dataset attributes)."""
        return {"estimator": self.name, "weights": self.weights, "iterations": int(self.iterations)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()}, device={self.device!r})"


class DISEstimator(FlowEstimator):
    """OpenCV Dense Inverse Search on grey frames (CPU; deterministic; no weights)."""

    name = "dis"
    weights = "none"
    device = "cpu"

    def __init__(self, preset: str = DIS_DEFAULT_PRESET, iterations: int | None = None,
                 threads: int | None = None, **overrides):
        import cv2

        if preset not in DIS_PRESETS:
            raise InputError(f"unknown DIS preset {preset!r}; choose one of {', '.join(DIS_PRESETS)}")
        params = dict(DIS_PRESETS[preset])
        params.update(overrides)
        if iterations is not None:
            params["variational_refinement_iterations"] = int(iterations)
        base = params.pop("base")
        self._cv2 = cv2
        if threads is not None:
            cv2.setNumThreads(int(threads))
        dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{base}"))
        setters = {
            "finest_scale": dis.setFinestScale,
            "patch_size": dis.setPatchSize,
            "patch_stride": dis.setPatchStride,
            "gradient_descent_iterations": dis.setGradientDescentIterations,
            "variational_refinement_iterations": dis.setVariationalRefinementIterations,
            "variational_refinement_alpha": dis.setVariationalRefinementAlpha,
            "variational_refinement_delta": dis.setVariationalRefinementDelta,
            "variational_refinement_gamma": dis.setVariationalRefinementGamma,
            "use_mean_normalization": dis.setUseMeanNormalization,
            "use_spatial_propagation": dis.setUseSpatialPropagation,
        }
        for key, value in params.items():
            if key not in setters:
                raise ValueError(f"unknown DIS parameter {key!r}")
            setters[key](value)
        self._dis = dis
        self.preset = preset
        self.params = params
        self.iterations = int(dis.getVariationalRefinementIterations())

    def _grey(self, img: np.ndarray) -> np.ndarray:
        return self._cv2.cvtColor(np.ascontiguousarray(img), self._cv2.COLOR_RGB2GRAY)

    def flow(self, first, second):
        _check_frames(first, second)
        if not first:
            return np.zeros((0, 0, 0, 2), np.float32)
        out = np.empty((len(first), *first[0].shape[:2], 2), np.float32)
        for b, (a, c) in enumerate(zip(first, second)):
            out[b] = self._dis.calc(self._grey(a), self._grey(c), None)
        return out

    def describe(self):
        d = super().describe()
        d["preset"] = self.preset
        return d


def _state_dict_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _torchvision_weights(variant: str):
    from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights

    return Raft_Large_Weights.C_T_V1 if variant == "raft-large" else Raft_Small_Weights.C_T_V2


def torchvision_cache_path(variant: str) -> Path:
    """Where torchvision keeps the downloaded weights of ``variant`` (torch.hub cache dir)."""
    import torch.hub

    url = _torchvision_weights(variant).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _resolve_device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for but CUDA is not available; use --device cpu or --flow dis")
    return device


class RAFTEstimator(FlowEstimator):
    """RAFT (torchvision) with the published weights, a local state dict, or random weights.

    ``weights``: None = torchvision's weights (cache, or a download when ``download`` is true); a path = a local
    state dict of the matching torchvision model; ``"random"`` = untrained weights, for plumbing tests only
    (the flows mean nothing, and describe() says so).
    """

    MIN_SIZE = 128  # torchvision RAFT: 4-level correlation pyramid on 1/8-resolution features needs >= 16 cells

    def __init__(self, variant: str = "raft-large", weights: str | os.PathLike | None = None,
                 iterations: int | None = None, device: str | None = None, precision: str = "fp32",
                 batch: int = 4, download: bool = True):
        import torch
        from torchvision.models.optical_flow import raft_large, raft_small

        if variant not in ("raft-large", "raft-small"):
            raise InputError(f"unknown RAFT variant {variant!r}; choose raft-large or raft-small")
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if batch < 1:
            raise InputError(f"batch must be at least 1, got {batch}")
        self.name = variant
        self.iterations = 20 if iterations is None else int(iterations)
        if self.iterations < 1:
            raise InputError(f"RAFT needs at least 1 refinement update, got {self.iterations}")
        self.device = _resolve_device(device)
        self.batch = int(batch)
        self.precision = precision
        if precision != "fp32" and not self.device.startswith("cuda"):
            logger.warning("precision %s applies on CUDA only; RAFT runs in fp32 on %s", precision, self.device)
            self.precision = "fp32"
        tv_weights = _torchvision_weights(variant)
        self._transforms = tv_weights.transforms()
        model = (raft_large if variant == "raft-large" else raft_small)(weights=None, progress=False)

        if weights is None:
            state, self.weights = self._published_state(variant, tv_weights, download), str(tv_weights)
        elif str(weights) == "random":
            state, self.weights = None, "random"
        else:
            path = Path(weights)
            state, self.weights = self._local_state(path), f"file:{path.name}#sha256={_state_dict_fingerprint(path)}"
        if state is not None:
            state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                where = weights if weights is not None else torchvision_cache_path(variant)
                raise InputError(f"{where}: not a torchvision {variant} state dict ({str(exc).splitlines()[0]}); "
                                 f"pass weights saved from torchvision.models.optical_flow") from None
        self.model = model.eval().requires_grad_(False).to(self.device)
        self._torch = torch

    @staticmethod
    def _local_state(path: Path) -> dict:
        import torch

        if not path.is_file():
            raise InputError(f"{path}: flow weights file not found; pass an existing state dict to --flow-weights")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle/zip errors come in many types
            raise InputError(f"{path}: cannot read flow weights ({type(exc).__name__}); "
                             f"pass a torch state dict saved with torch.save(model.state_dict())") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise InputError(f"{path}: flow weights are not a state dict; save them with torch.save(model.state_dict())")
        return state

    @staticmethod
    def _published_state(variant: str, tv_weights, download: bool) -> dict:
        import torch
        import torch.hub

        cached = torchvision_cache_path(variant)
        if cached.is_file():
            try:
                return torch.load(cached, map_location="cpu", weights_only=True)
            except Exception as exc:  # a truncated download, say
                raise InputError(f"{cached}: cached {variant} weights are unreadable ({type(exc).__name__}); "
                                 f"delete the file to download again, or pass --flow-weights PATH") from None
        hint = (f"no {variant} weights: {cached} is missing; pass a state dict with --flow-weights PATH "
                f"(torchvision {tv_weights}) or use --flow dis")
        if not download:
            raise InputError(hint)
        logger.info("downloading %s weights from %s", variant, tv_weights.url)
        try:
            return torch.hub.load_state_dict_from_url(tv_weights.url, map_location="cpu", progress=False,
                                                      check_hash=True, weights_only=True)
        except Exception as exc:  # no network, proxy, hash mismatch ...
            raise InputError(f"{hint} (download failed: {type(exc).__name__})") from None

    def describe(self):
        d = super().describe()
        d["precision"] = self.precision
        return d

    def _padding(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) replicate padding to multiples of 8 and at least MIN_SIZE."""
        ph = max(-(-h // 8) * 8, self.MIN_SIZE) - h
        pw = max(-(-w // 8) * 8, self.MIN_SIZE) - w
        return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2

    def _to_tensor(self, frames: Sequence[np.ndarray]):
        torch = self._torch
        x = torch.from_numpy(np.stack([np.ascontiguousarray(f) for f in frames])).to(self.device)
        return x.permute(0, 3, 1, 2)  # uint8 (B, 3, H, W); the weights' transforms scale to [-1, 1]

    def _run(self, first, second):
        """Yield the last RAFT prediction (B, 2, H, W) on the device, per batch."""
        torch = self._torch
        import torch.nn.functional as F

        h, w = first[0].shape[:2]
        left, right, top, bottom = self._padding(h, w)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with torch.inference_mode():
            for s in range(0, len(first), self.batch):
                a, b = self._transforms(self._to_tensor(first[s:s + self.batch]),
                                        self._to_tensor(second[s:s + self.batch]))
                if left or right or top or bottom:
                    a = F.pad(a, (left, right, top, bottom), mode="replicate")
                    b = F.pad(b, (left, right, top, bottom), mode="replicate")
                amp = torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()
                with amp:
                    pred = self.model(a, b, num_flow_updates=self.iterations)[-1]
                yield pred[:, :, top:top + h, left:left + w].float()

    def flow(self, first, second):
        _check_frames(first, second)
        if not first:
            return np.zeros((0, 0, 0, 2), np.float32)
        parts = [p.permute(0, 2, 3, 1).cpu().numpy() for p in self._run(first, second)]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def magnitudes(self, first, second):
        _check_frames(first, second)
        if not first:
            return np.zeros((0, 0, 0), np.float32)
        parts = [self._torch.linalg.vector_norm(p, dim=1).cpu().numpy() for p in self._run(first, second)]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def raft_weights_available(variant: str = "raft-large", weights: str | os.PathLike | None = None) -> bool:
    """True when RAFT can start without a download: a local file, or torchvision's cache holds the weights."""
    if weights is not None:
        return str(weights) == "random" or Path(weights).is_file()
    return torchvision_cache_path(variant).is_file()


def make_estimator(spec: str = "auto", weights: str | os.PathLike | None = None, iterations: int | None = None,
                   device: str | None = None, precision: str = "fp32", batch: int = 4,
                   download: bool = True, threads: int | None = None) -> FlowEstimator:
    """Build the estimator named by ``spec`` (``auto``, ``dis``, ``raft-large``, ``raft-small``).

    ``iterations``: RAFT refinement updates (default 20) or DIS variational refinement iterations.
    ``download``: whether RAFT may fetch torchvision's weights when they are not cached.
    ``threads``: OpenCV threads for DIS (process-wide; 1 when several workers share the cores).
    """
    spec = str(spec).lower()
    if spec not in SPECS:
        raise InputError(f"unknown flow estimator {spec!r}; choose one of {', '.join(SPECS)}")
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if spec == "auto":
        resolved = _resolve_device(device)
        if not resolved.startswith("cuda"):
            logger.warning("flow auto: no CUDA device, using OpenCV DIS instead of RAFT-large")
        elif not raft_weights_available("raft-large", weights):
            logger.warning("flow auto: no RAFT-large weights (%s missing, no --flow-weights), using OpenCV DIS; "
                           "pass --flow-weights PATH to use RAFT", torchvision_cache_path("raft-large"))
        else:
            return RAFTEstimator("raft-large", weights, iterations, resolved, precision, batch, download=False)
        return DISEstimator(iterations=iterations, threads=threads)
    if spec == "dis":
        if weights is not None:
            logger.warning("flow dis uses no weights; ignoring %s", weights)
        return DISEstimator(iterations=iterations, threads=threads)
    return RAFTEstimator(spec, weights, iterations, device, precision, batch, download)
