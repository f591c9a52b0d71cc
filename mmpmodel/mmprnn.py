"""MMP-RNN: a recurrent video deblurring network guided by the motion-magnitude prior (paper section 3.2, Fig. 3).

The network splits into three parts, which is what makes it cheap to train and to stream:

* ``encode`` (per frame, no recurrence): 5x5 conv, MMAM with the prior map, two RDB + stride-2 downsamplings.
  Its output is the non-deblurred feature l_t (2C channels at 1/4 size). Because it does not depend on the state,
  a whole clip is encoded as one batch, and an end frame that is stepped twice is encoded once.
* ``step`` (recurrent): RDB-Net-A on [l_t, l_{t-1}, h_{t-1}] gives f_t (5C); a small head gives the new state h_t.
* ``reconstruct`` (frame t, once f_{t+2} exists): fuse f_{t-2..t+2} (1x1 conv), RDB-Net-B, two transposed convs,
  5x5 conv to RGB, plus a 9x9 conv on the blurry centre frame as a global skip. With ``fusion_attention`` a channel
  attention reweights the 25C concatenation before the 1x1 fusion (the authors' GOPRO code).

Inputs and outputs are RGB in [0, 1]; inside, frames are shifted to [-0.5, 0.5] as in the published code, and
the output is shifted back (it is not clamped, so the loss sees the raw prediction).

The prior (MMP-Net) is frozen: no gradients, always in eval mode (even after ``.train()``), excluded from
``trainable_parameters()`` and from ``deblur_state_dict()`` so it can be shared or swapped independently.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Iterable, Iterator

import torch
from torch import nn

from mmpdata.errors import FormatError, InputError

from .blocks import RDB, RDBDown, RDBNet, conv, crop_to, pad_to_multiple, up_conv
from .mmpnet import MMPNet
from .presets import MMPRNNConfig, parse_preset

log = logging.getLogger(__name__)

#: Two stride-2 convolutions: frames are padded to a multiple of 4 and the output cropped back.
SIZE_MULTIPLE = 4
#: Frames fused on each side of the centre frame.
RADIUS = 2
#: How :meth:`MMPRNN.forward_all` and :class:`Stepper` give the first and last frames the RADIUS neighbours the
#: network fuses on each side: ``replicate`` repeats frame 0 and frame T-1; ``reflect`` steps through frames
#: RADIUS..1 before frame 0 and T-2..T-1-RADIUS after frame T-1 (real, moving neighbours and a warmed-up state).
#: A network trained the paper's way (loss only on frames with real neighbours) deblurs neither kind of end well:
#: on footage made by other code the first and last frames of the twelfth session's `sample-deblur` gained
#: +0.01 dB replicated and -0.3 dB reflected, against about +1 dB for the rest (docs/training.md, fourteenth
#: session); ``train-deblur --ends`` trains for them. A model runs with the ends it was trained with
#: (``MMPRNN.ends``, from the checkpoint; replicate when it was trained without). The paper's protocol leaves both
#: ends out, so its scores do not move.
ENDS = ("reflect", "replicate")


def check_ends(ends: str) -> None:
    """InputError naming the choices when ``ends`` is not one of :data:`ENDS`."""
    if ends not in ENDS:
        raise InputError(f"unknown ends {ends!r}; use one of {', '.join(ENDS)}")


def end_index(n: int, ends: str = "replicate") -> list[int]:
    """The frame numbers the recurrent cell steps through for a clip of n frames: RADIUS before frame 0, the
    clip, RADIUS after frame n-1 (see :data:`ENDS`). A reflected number beyond the clip (n <= RADIUS) is clamped."""
    check_ends(ends)
    if ends == "replicate":
        return [0] * RADIUS + list(range(n)) + [n - 1] * RADIUS

    def reflect(i: int) -> int:
        i = -i if i < 0 else (2 * (n - 1) - i if i > n - 1 else i)
        return min(max(i, 0), n - 1)

    return [reflect(i) for i in range(-RADIUS, n + RADIUS)]


def check_single_frame_prior(prior: nn.Module | None, source: str = "this MMP-Net", hint: str = "") -> None:
    """InputError when ``prior`` reads neighbouring frames (``MMPNet(context=c)``): MMP-RNN feeds its prior one
    frame at a time, as the paper's MMP-Net."""
    context = getattr(prior, "context", 0)
    if context:
        raise InputError(f"{source}: this MMP-Net sees {context} neighbouring frame(s) on each side; MMP-RNN feeds "
                         f"its prior one frame at a time (the paper's MMP-Net): pass a prior trained without "
                         f"--context{hint}")


class MMAM(nn.Module):
    """Motion Magnitude Attentive Module: gamma = conv1x1(LeakyReLU(conv1x1(M))); features * (1 + gamma).

    The identity path (the '1 +') keeps features where the prior is ~0 (sharp pixels) instead of zeroing them.
    """

    def __init__(self, channels: int):
        super().__init__()
        hidden = max(1, channels // 2)
        self.gamma = nn.Sequential(conv(1, hidden, 1), nn.LeakyReLU(0.1), conv(hidden, channels, 1))

    def forward(self, features: torch.Tensor, mmp: torch.Tensor) -> torch.Tensor:
        return features * (1 + self.gamma(mmp))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: x * sigmoid(conv1x1(ReLU(conv1x1(mean of x over H, W)))), widths C -> C/16 -> C.

    Optional (``fusion_attention``): the authors' GOPRO code applies it to the fused features, so importing their
    GOPRO weights needs it; their BSD code builds it but never calls it, and the paper's parameter counts leave it out.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.reduce = conv(channels, hidden, 1)
        self.expand = conv(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(-2, -1), keepdim=True)
        return x * torch.sigmoid(self.expand(torch.relu(self.reduce(w))))


class MMPRNN(nn.Module):
    """MMP-RNN for one :class:`MMPRNNConfig` (or preset name); `prior` is the (trained) MMP-Net to freeze inside.

    When the config uses a prior and none is given, a fresh MMP-Net is built (load its weights into ``.prior``).
    """

    def __init__(self, config: MMPRNNConfig | str, prior: MMPNet | None = None):
        super().__init__()
        if isinstance(config, str):
            config = parse_preset(config)
        self.config = config
        c = config.n_c
        self.head = conv(3, c, 5)
        self.mmam = MMAM(c) if config.mmam else None
        self.down1 = RDBDown(c, c, 2 * c)
        # Without the l state the cell is ESTRNN's: the second downsampling widens to 4C so [x_t, h_{t-1}] is 5C.
        self.down2 = RDBDown(2 * c, int(1.5 * c), 2 * c if config.l_state else 4 * c)
        self.fem = RDBNet(5 * c, 2 * c, config.n_a)
        self.to_state = nn.Sequential(conv(5 * c, c, 3), RDB(c, c, 3), conv(c, c, 3))
        self.fuse_attention = ChannelAttention((2 * RADIUS + 1) * 5 * c) if config.fusion_attention else None
        self.fuse = conv((2 * RADIUS + 1) * 5 * c, 5 * c, 1)
        self.rm = RDBNet(5 * c, 2 * c, config.n_b)
        self.decoder = nn.Sequential(up_conv(5 * c, 2 * c), up_conv(2 * c, c), conv(c, 3, 5))
        self.skip = conv(3, 3, 9)
        self._init_near_identity()
        #: How whole-clip and streaming inference extend the ends (:data:`ENDS`); load_deblur sets what the
        #: checkpoint was trained for.
        self.ends = "replicate"
        if config.prior:
            check_single_frame_prior(prior)
            self.prior = prior if prior is not None else MMPNet()
            self.prior.requires_grad_(False)
            self.prior.eval()
        else:
            if prior is not None:
                raise InputError(f"preset {config.name} has no prior: do not pass an MMP-Net (or drop -noprior)")
            self.prior = None

    @torch.no_grad()
    def _init_near_identity(self) -> None:
        """Start as (almost) the identity map: the 9x9 skip passes the blurry centre through unchanged and the
        decoder's last conv starts 10x smaller, so training begins at the input's PSNR instead of below it."""
        self.skip.weight.zero_()
        self.skip.bias.zero_()
        for ch in range(3):
            self.skip.weight[ch, ch, 4, 4] = 1.0
        self.decoder[-1].weight.mul_(0.1)
        self.decoder[-1].bias.zero_()

    # ----------------------------------------------------------------------------------- frozen prior handling
    def train(self, mode: bool = True) -> "MMPRNN":
        """Switch the deblurring part's mode; the prior always stays in eval mode (its BatchNorm stats are fixed)."""
        super().train(mode)
        if self.prior is not None:
            self.prior.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters to hand to an optimizer: everything except the frozen prior."""
        return [p for n, p in self.named_parameters() if not n.startswith("prior.") and p.requires_grad]

    def deblur_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict of the deblurring part only (no prior weights), for checkpoints."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("prior.")}

    def load_deblur_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load weights saved by :meth:`deblur_state_dict`; FormatError when they belong to another architecture."""
        expected = set(self.deblur_state_dict())
        given = set(state)
        if given != expected:
            missing, extra = sorted(expected - given), sorted(given - expected)
            raise FormatError(f"deblurring weights do not fit {self.config.name}: missing {missing[:3]}, "
                              f"unexpected {extra[:3]}; use the preset the checkpoint was trained with")
        try:
            self.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1].strip()
            raise FormatError(f"deblurring weights do not fit {self.config.name}: {first}") from None

    # ------------------------------------------------------------------------------------------- the three parts
    def prior_map(self, frames: torch.Tensor) -> torch.Tensor:
        """MMP of (N, 3, H, W) frames in [0, 1] from the frozen prior (no autograd graph is kept)."""
        with torch.no_grad():
            return self.prior(frames)

    def encode(self, frames: torch.Tensor, mmp: torch.Tensor | None = None) -> torch.Tensor:
        """Non-deblurred features l of (N, 3, H, W) frames (H, W multiples of 4); `mmp` replaces the prior's map."""
        # Cast once at the entry: at reduced precision (precision.for_inference) the layers hold bf16/fp16 weights.
        x = self.head((frames - 0.5).to(self.head.weight.dtype))
        if self.mmam is not None:
            if mmp is None:
                mmp = self.prior_map(frames)
            x = self.mmam(x, mmp.to(x.dtype))
        return self.down2(self.down1(x))

    def step(self, l_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None):
        """One recurrent step: (l_t, (l_{t-1}, h_{t-1})) -> (f_t, (l_t, h_t)); state None means zeros (clip start)."""
        if state is None:
            b, _, h, w = l_t.shape
            c = self.config.n_c
            state = (l_t.new_zeros(b, 2 * c, h, w) if self.config.l_state else None, l_t.new_zeros(b, c, h, w))
        l_prev, h_prev = state
        a_t = torch.cat([l_t, l_prev, h_prev] if self.config.l_state else [l_t, h_prev], dim=1)
        f_t = self.fem(a_t)
        h_t = self.to_state(f_t)
        return f_t, (l_t if self.config.l_state else None, h_t)

    def reconstruct(self, features: list[torch.Tensor], centre: torch.Tensor) -> torch.Tensor:
        """Output frame in [0, 1] space from f_{t-2..t+2} and the blurry centre frame (H, W multiples of 4)."""
        x = torch.cat(features, dim=1)
        if self.fuse_attention is not None:
            x = self.fuse_attention(x)
        y = self.decoder(self.rm(self.fuse(x)))
        # The skip and the final add stay float32 at reduced precision (precision.FP32_MODULES): bf16 steps near 1.0
        # are 1/256, an 8-bit level, so rounding here would land directly in the output.
        skip = self.skip((centre - 0.5).to(self.skip.weight.dtype))
        out = torch.promote_types(skip.dtype, torch.float32)
        return y.to(out) + skip.to(out) + 0.5

    # --------------------------------------------------------------------------------------------- whole clips
    def _check_mmp(self, mmp: torch.Tensor | None) -> None:
        if mmp is not None and self.mmam is None:
            raise InputError(f"MMP maps were given but {self.config.name} has no MMAM to use them")

    def _run(self, clip: torch.Tensor, mmp: torch.Tensor | None, index: list[int]) -> torch.Tensor:
        """Encode each frame of `clip` once, run the cell over the time steps `index` (frame numbers, ends may
        repeat), and reconstruct every step that has RADIUS steps on both sides."""
        self._check_mmp(mmp)
        if clip.dim() != 5 or clip.shape[2] != 3:
            raise InputError(f"clip must be (B, F, 3, H, W), got {tuple(clip.shape)}")
        b, f = clip.shape[:2]
        clip, size = pad_to_multiple(clip, SIZE_MULTIPLE)
        flat = clip.reshape(b * f, *clip.shape[2:])
        maps = None
        if mmp is not None:
            maps = pad_to_multiple(mmp, SIZE_MULTIPLE)[0].reshape(b * f, 1, *clip.shape[-2:])
        feats = self.encode(flat, maps)
        feats = feats.reshape(b, f, *feats.shape[1:])
        state, fs = None, []
        for i in index:
            f_t, state = self.step(feats[:, i], state)
            fs.append(f_t)
        outs = [self.reconstruct(fs[s - RADIUS:s + RADIUS + 1], clip[:, index[s]])
                for s in range(RADIUS, len(index) - RADIUS)]
        return crop_to(torch.stack(outs, dim=1), size)

    def forward(self, clip: torch.Tensor, mmp: torch.Tensor | None = None) -> torch.Tensor:
        """(B, F, 3, H, W) in [0, 1] -> (B, F-4, 3, H, W): frames 2..F-3, each with 2 real neighbours per side.

        `mmp` (B, F, 1, H, W) replaces the prior's maps (ground-truth prior ablation)."""
        f = clip.shape[1]
        if f < 2 * RADIUS + 1:
            raise InputError(f"a clip needs at least {2 * RADIUS + 1} frames for forward(), got {f}; "
                             f"use forward_all() or stepper() for short clips")
        return self._run(clip, mmp, list(range(f)))

    def forward_all(self, clip: torch.Tensor, mmp: torch.Tensor | None = None,
                    ends: str | None = None) -> torch.Tensor:
        """(B, F, 3, H, W) -> (B, F, 3, H, W): every frame, the ends given their neighbours as ``ends`` says
        (:data:`ENDS`; None: :attr:`ends`)."""
        return self._run(clip, mmp, end_index(clip.shape[1], ends or self.ends))

    def stepper(self, ends: str | None = None) -> "Stepper":
        """A streaming deblurrer over this model (see :class:`Stepper`; ``ends`` None: :attr:`ends`)."""
        return Stepper(self, ends or self.ends)


class Stepper:
    """Streaming inference: frames go in one at a time, each frame is encoded once, frame t comes out once t+2
    has arrived. The ends get their neighbours as ``ends`` says (:data:`ENDS`; under reflect the first output waits
    for frame RADIUS), so every input frame gets exactly one output, equal to :meth:`MMPRNN.forward_all` on the whole
    clip. Memory holds 5 feature maps and 3 frames, whatever the video length."""

    def __init__(self, model: MMPRNN, ends: str = "replicate"):
        check_ends(ends)
        self.model, self.ends = model, ends
        self._reset()

    def _reset(self) -> None:
        self._state = None
        self._features: deque[torch.Tensor] = deque(maxlen=2 * RADIUS + 1)
        self._centres: deque[torch.Tensor] = deque(maxlen=2 * RADIUS + 1)
        self._recent: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=RADIUS + 1)  # (features l, frame)
        self._pushed = 0
        self._started = False
        self._size: tuple[int, int] | None = None
        self._emitted = 0

    def _advance(self, feats: torch.Tensor, frame: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        f_t, self._state = self.model.step(feats, self._state)
        self._features.append(f_t)
        self._centres.append(frame)
        if len(self._features) < 2 * RADIUS + 1:
            return []
        out = self.model.reconstruct(list(self._features), self._centres[RADIUS])
        t, self._emitted = self._emitted, self._emitted + 1
        return [(t, crop_to(out, self._size))]

    def _run(self, index: list[int]) -> list[tuple[int, torch.Tensor]]:
        """Step through frames by number (all of them still in ``_recent``)."""
        first = self._pushed - len(self._recent)
        ready = []
        for i in index:
            ready += self._advance(*self._recent[i - first])
        return ready

    def push(self, frame: torch.Tensor, mmp: torch.Tensor | None = None) -> list[tuple[int, torch.Tensor]]:
        """Add frame (B, 3, H, W) in [0, 1] (optional map (B, 1, H, W)); returns the (t, output) pairs now ready."""
        self.model._check_mmp(mmp)
        if frame.dim() != 4 or frame.shape[1] != 3:
            raise InputError(f"stepper frames must be (B, 3, H, W), got {tuple(frame.shape)}")
        if self._size is not None and tuple(frame.shape[-2:]) != self._size:
            raise InputError(f"frame size changed mid-stream from {self._size} to {tuple(frame.shape[-2:])}")
        padded, self._size = pad_to_multiple(frame, SIZE_MULTIPLE)
        if mmp is not None:
            mmp = pad_to_multiple(mmp, SIZE_MULTIPLE)[0]
        self._recent.append((self.model.encode(padded, mmp), padded))
        self._pushed += 1
        if self._started:
            return self._run([self._pushed - 1])
        if self._pushed < RADIUS + 1 and self.ends == "reflect":
            return []  # the frames stepped before frame 0 are frames RADIUS..1
        self._started = True
        return self._run(end_index(self._pushed, self.ends)[:RADIUS + self._pushed])

    def finish(self) -> list[tuple[int, torch.Tensor]]:
        """End of the stream: step through the frames after the last one (:data:`ENDS`) to flush the remaining
        outputs; the stepper is then reset."""
        n, ready = self._pushed, []
        if n:
            index = end_index(n, self.ends)
            ready = self._run(index[RADIUS + n:] if self._started else index)
        self._reset()
        return ready


def deblur_frames(model: MMPRNN, frames: Iterable[torch.Tensor], device: str | torch.device | None = None,
                  precision: str | None = "auto", tile: int | None = None, overlap: int | None = None,
                  ensemble: int = 1, ends: str | None = None) -> Iterator[torch.Tensor]:
    """Deblur a stream of (3, H, W) frames in [0, 1]; yields one (3, H, W) float32 output per input, in order,
    clamped to [0, 1], on the model's device (or `device`). Nothing beyond a 5-frame window is kept in memory.

    ``precision``: auto, fp32, bf16 or fp16 (see mmpmodel.precision; ``model`` itself is left unchanged).
    ``tile``: run tiles of tile x tile pixels with ``overlap`` pixels of context each (see mmpmodel.tiling).
    ``ensemble``: 1, 2, 4 or 8 flipped/transposed passes averaged (see mmpmodel.ensemble).
    ``ends``: how the first and last frames get their neighbours (:data:`ENDS`; None: as the model was trained)."""
    from .ensemble import EnsembleStepper
    from .precision import for_inference
    from .tiling import TiledStepper

    device = torch.device(device) if device is not None else next(model.parameters()).device
    model, _ = for_inference(model, precision, device)
    def make_stepper():
        return model.stepper(ends) if not tile else TiledStepper(model, tile, overlap, ends)

    stepper = make_stepper() if ensemble == 1 else EnsembleStepper(make_stepper, ensemble)
    with torch.inference_mode():
        for frame in frames:
            for _, out in stepper.push(frame.to(device=device, dtype=torch.float32)[None]):
                yield out[0].clamp(0, 1)
        for _, out in stepper.finish():
            yield out[0].clamp(0, 1)


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
