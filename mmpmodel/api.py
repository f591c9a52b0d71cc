"""The toolkit from Python: load a checkpoint once, then deblur frames or get their motion-magnitude maps.

    import mmpmodel
    deblurrer = mmpmodel.load("runs/rnn/best.pt")        # a path, or a registry name such as "sample-deblur"
    sharp = deblurrer.deblur(frames)                     # one output per input frame, in order

Frames are numpy uint8 (H, W, 3) RGB arrays, float numpy arrays in [0, 1], or torch tensors (3, H, W) (float in
[0, 1] or uint8); a list, a (T, H, W, 3) array / (T, 3, H, W) tensor, any iterator of frames, or the path of a video
file or frame folder. Every output has the type, layout and value range of its input (paths give uint8 arrays).
The streaming network keeps only a 5-frame window, so :meth:`Deblurrer.stream` deblurs videos of any length.

The functions the ``mmp`` commands call are exported next to it under names that say what they do
(:func:`synthesize`, :func:`evaluate_checkpoint`, :func:`score_outputs`, :func:`plot_runs`, :func:`deblur_video`,
:func:`show_maps`), so a script and the shell give the same numbers.
"""
from __future__ import annotations

import importlib.util
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from mmpdata.errors import InputError
from mmpdata.neighbours import stream_neighbours

from .checkpoint import load_any, load_deblur, load_prior
from .distributed import resolve_device
from .ensemble import check_ensemble
from .evaluate import evaluate as _evaluate
from .inference import deblur_video as _deblur_video
from .inference import open_input
from .metrics import tensor_to_uint8
from .mmprnn import deblur_frames
from .plots import plot_runs
from .precision import for_inference, resolve_precision
from .score import score as score_outputs
from .tiling import check_tiling
from .visualize import show as _show

__all__ = ["load", "Deblurrer", "MMPEstimator", "resolve_checkpoint", "synthesize", "evaluate_checkpoint",
           "score_outputs", "plot_runs", "deblur_video", "show_maps"]


def resolve_checkpoint(name_or_path: str | Path, kind: str | None = None) -> Path:
    """A checkpoint file path, or a name of the bundled weights registry (``mmp weights`` lists them), -> the file.
    ``kind`` ("deblur"/"prior") refuses a registered name of the other kind.

    Why: the shell and Python accept the same names, resolved by the same function."""
    if importlib.util.find_spec("mmpmodel.weights") is None:
        return Path(name_or_path)
    from .weights import resolve_weights

    return Path(resolve_weights(name_or_path, kind))


def synthesize(raw, out, **options):
    """``mmp synthesize``: blurry frames, sharp targets and MMP maps from raw footage (options as the command's,
    e.g. ``flow="dis", frames="7-13"``); returns the pipeline's result (``.summary()`` is what the command prints)."""
    from mmpdata.pipeline import synthesize as _synthesize

    return _synthesize(raw, out, **options)


def evaluate_checkpoint(checkpoint, data, **options) -> dict:
    """``mmp eval``: PSNR/SSIM (deblurring) or L1 (prior) of a checkpoint on mmp-h5 data, with the same protocol
    options (``protocol="paper"``, ``save=DIR``, ``device``); returns the JSON the command prints."""
    return _evaluate(resolve_checkpoint(checkpoint), data, **options)


def deblur_video(checkpoint, input, output, **options) -> dict:
    """``mmp deblur``: a video file or frame folder in, an mp4 (``output`` ending in .mp4) or PNG folder out."""
    return _deblur_video(resolve_checkpoint(checkpoint), input, output, **options)


def show_maps(source, prior, out_dir, **options) -> dict:
    """``mmp show``: MMP heat maps over the frames of an mmp-h5 file, a video or a frame folder, as PNGs."""
    return _show(source, resolve_checkpoint(prior), out_dir, **options)


# ------------------------------------------------------------------------------------------------ frames
def _frame_tensor(frame, i: int) -> tuple[torch.Tensor, tuple]:
    """One input frame -> ((3, H, W) float tensor in [0, 1], how to give the output back)."""
    if isinstance(frame, torch.Tensor):
        if frame.dim() != 3 or frame.shape[0] != 3:
            raise InputError(f"frame {i}: a tensor frame must be (3, H, W) RGB, got {tuple(frame.shape)}")
        if frame.dtype == torch.uint8:
            return frame.float().div(255.0), ("tensor-uint8", frame.device)
        if not frame.is_floating_point():
            raise InputError(f"frame {i}: tensor of {frame.dtype}; pass uint8 or float in [0, 1]")
        return frame.float(), ("tensor", frame.device, frame.dtype)
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"frame {i}: an array frame must be (H, W, 3) RGB, got shape {a.shape}"
                         + ("; convert grey frames to RGB" if a.ndim == 2 else ""))
    if a.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float().div_(255.0), ("uint8",)
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"frame {i}: array of {a.dtype}; pass uint8 (0-255) or float in [0, 1]")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1), ("float", a.dtype)


def _give_back(out: torch.Tensor, how: tuple):
    """A (3, H, W) float output -> the type and layout its input had."""
    if how[0] == "uint8":
        return tensor_to_uint8(out)
    if how[0] == "float":
        return out.permute(1, 2, 0).float().cpu().numpy().astype(how[1], copy=False)
    if how[0] == "tensor-uint8":
        return out.clamp(0, 1).mul(255.0).round().to(device=how[1], dtype=torch.uint8)
    return out.to(device=how[1], dtype=how[2])


def _frames(source) -> Iterable:
    """The frames of any accepted input, lazily."""
    if isinstance(source, (str, Path)):
        return open_input(source).iter_frames()
    if isinstance(source, torch.Tensor) or isinstance(source, np.ndarray):
        if source.ndim != 4:
            raise InputError(f"a frame stack must be 4-D ((T, H, W, 3) array or (T, 3, H, W) tensor), got shape "
                             f"{tuple(source.shape)}; for a single frame pass [frame]")
        return iter(source)
    if isinstance(source, Iterable):
        return source
    raise InputError(f"cannot deblur a {type(source).__name__}: pass frames (a list, an array stack, an iterator), "
                     "or the path of a video file or frame folder")


class Deblurrer:
    """An MMP-RNN loaded once (ours, or published weights converted by ``mmp import-weights``), in eval mode on
    ``device``; deblurs any number of videos, one :meth:`stream` at a time.

    ``precision`` (auto, fp32, bf16, fp16), ``tile``/``overlap`` and ``ensemble`` run the network as ``mmp deblur
    --precision --tile --tile-overlap --self-ensemble`` do (see :mod:`mmpmodel.precision`, :mod:`mmpmodel.tiling`,
    :mod:`mmpmodel.ensemble`); ``model`` keeps float32 weights either way."""

    def __init__(self, model, device: str | torch.device | None = None, checkpoint: Path | None = None,
                 precision: str | None = "auto", tile: int | None = None, overlap: int | None = None,
                 ensemble: int = 1):
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.model = model.to(self.device).eval()
        self.checkpoint = checkpoint
        self.precision = resolve_precision(precision, self.device)
        check_tiling(tile, overlap)
        self.tile, self.overlap = tile, overlap
        self.ensemble = check_ensemble(ensemble)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device: str | None = None, precision: str | None = "auto",
                        tile: int | None = None, overlap: int | None = None, ensemble: int = 1) -> "Deblurrer":
        """Load a deblurring checkpoint (path or registry name)."""
        path = resolve_checkpoint(checkpoint, "deblur")
        model, _ = load_deblur(path)
        return cls(model, device, path, precision, tile, overlap, ensemble)

    def __repr__(self) -> str:
        tiles = f", tile={self.tile}" if self.tile else ""
        tiles += f", ensemble={self.ensemble}" if self.ensemble > 1 else ""
        return (f"Deblurrer({self.model.config.name}, device={self.device}, precision={self.precision}{tiles}, "
                f"checkpoint={self.checkpoint})")

    def stream(self, frames) -> Iterator:
        """Deblur lazily: yields one output per input frame, in order, as soon as the network's window allows
        (two frames behind the input). Memory stays bounded whatever the length."""
        hows: deque[tuple] = deque()  # how to give each pending output back; outputs come in input order

        def tensors():
            for i, frame in enumerate(_frames(frames)):
                x, how = _frame_tensor(frame, i)
                hows.append(how)
                yield x

        for out in deblur_frames(self.model, tensors(), self.device, precision=self.precision, tile=self.tile,
                                 overlap=self.overlap, ensemble=self.ensemble):
            yield _give_back(out, hows.popleft())

    def deblur(self, frames):
        """Deblur a whole sequence: a list of outputs (one per frame); a (T, H, W, 3) array or (T, 3, H, W) tensor
        comes back as one stack of the same shape."""
        outs = list(self.stream(frames))
        if isinstance(frames, np.ndarray):
            return np.stack(outs) if outs else frames[:0].copy()
        if isinstance(frames, torch.Tensor):
            return torch.stack(outs) if outs else frames[:0].clone()
        return outs

    def mmp(self, frame):
        """The motion-magnitude map of one frame from the network's own MMP-Net: (H, W) float32 in [0, 1] for an
        array frame, (H, W) tensor for a tensor frame."""
        if self.model.prior is None:
            raise InputError(f"{self.checkpoint or 'this model'}: trained without a prior (-noprior), so it has no "
                             "MMP map; load a prior checkpoint with mmpmodel.load")
        return _prior_map(self.model.prior, [frame], 0, self.device)  # float32: one pass, no speed to gain

    def deblur_file(self, input: str | Path, output: str | Path, **options) -> dict:
        """``mmp deblur`` with this model: a video file or frame folder in, an mp4 or PNG folder out."""
        options = {"precision": self.precision, "tile": self.tile, "overlap": self.overlap,
                   "ensemble": self.ensemble, **options}
        return _deblur_video(self.model, input, output, device=str(self.device), **options)


def _prior_map(net, stack: list, centre: int, device: torch.device):
    """MMP of ``stack[centre]``, given back as that frame came: the frames the network reads (the frame alone, or
    with context its neighbours too, in time order)."""
    parts = [_frame_tensor(f, 0) for f in stack]
    x, how = torch.cat([p[0] for p in parts], 0), parts[centre][1]
    with torch.inference_mode():
        m = net(x.to(device)[None])[0, 0].float().clamp(0, 1)
    if how[0].startswith("tensor"):
        return m.to(how[1])
    return m.float().cpu().numpy()


class MMPEstimator:
    """MMP-Net loaded once: motion-magnitude maps of frames (1 = a mean motion of K pixels), at
    ``precision`` as ``mmp show --precision`` runs it."""

    def __init__(self, net, device: str | torch.device | None = None, checkpoint: Path | None = None,
                 precision: str | None = "auto"):
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.net, self.precision = for_inference(net, precision, self.device)
        self.checkpoint = checkpoint

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device: str | None = None,
                        precision: str | None = "auto") -> "MMPEstimator":
        """Load a prior checkpoint, or the prior inside a deblurring checkpoint (path or registry name)."""
        path = resolve_checkpoint(checkpoint)
        net, _ = load_prior(path)
        return cls(net, device, path, precision)

    def __repr__(self) -> str:
        return f"MMPEstimator(device={self.device}, precision={self.precision}, checkpoint={self.checkpoint})"

    def mmp(self, frame):
        """(H, W) map in [0, 1] of one frame (float32 array for an array frame, tensor for a tensor frame)."""
        if self.context:
            raise InputError(f"{self.checkpoint or 'this MMP-Net'} sees {self.context} neighbouring frame(s) on each "
                             "side: pass the whole sequence to maps(frames)")
        return _prior_map(self.net, [frame], 0, self.device)

    @property
    def context(self) -> int:
        """Neighbouring frames the network reads on each side (0: the frame alone, the paper's MMP-Net)."""
        return getattr(self.net, "context", 0)

    def maps(self, frames) -> list:
        """:meth:`mmp` of every frame of a sequence (anything :meth:`Deblurrer.stream` accepts); a network with
        context reads each frame's neighbours in the sequence (mirrored at its ends), holding at most 2c + 1."""
        return [_prior_map(self.net, stack, self.context, self.device)
                for _, _, stack in stream_neighbours(_frames(frames), self.context)]


def load(checkpoint: str | Path, device: str | None = None, precision: str | None = "auto",
         **options) -> Deblurrer | MMPEstimator:
    """A checkpoint (path or registry name) -> a :class:`Deblurrer` for deblurring checkpoints (``tile=``,
    ``overlap=``, ``ensemble=`` as :class:`Deblurrer`), an :class:`MMPEstimator` for prior checkpoints."""
    path = resolve_checkpoint(checkpoint)
    kind, net, _ = load_any(path)
    if kind == "prior":
        if options:
            raise InputError(f"{checkpoint}: a prior checkpoint; {'/'.join(options)} apply to deblurring "
                             "checkpoints")
        return MMPEstimator(net, device, path, precision)
    return Deblurrer(net, device, path, precision, **options)
