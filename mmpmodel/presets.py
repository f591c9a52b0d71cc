"""MMP-RNN configurations and the paper's preset names ``A{n_a}B{n_b}C{n_c}F{frames}``.

A name may carry ablation suffixes (paper Tables 4-5): ``-nommam`` (prior not fed to the network; it can still
drive the motion-magnitude loss), ``-nondf`` (no non-deblurred feature state l), ``-noprior`` (no MMP-Net at all,
hence no MMAM either). Example: ``A9B10C18F8-nommam-nondf``.

One suffix adds a part instead: ``-ca`` (``fusion_attention``) puts a squeeze-and-excitation channel attention on the
25C fusion concatenation, as the authors' GOPRO code did (their published GOPRO weights need it; the paper's
parameter counts do not include it).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from mmpdata.errors import InputError

#: The presets the paper reports (Tables 2-5).
PAPER_PRESETS = ("A3B4C16F5", "A7B8C16F8", "A9B10C18F8", "A8B9C18F8")

_NAME = re.compile(r"^A(\d+)B(\d+)C(\d+)F(\d+)((?:-[a-z]+)*)$", re.IGNORECASE)
_SUFFIXES = {"-nommam": "mmam", "-nondf": "l_state", "-noprior": "prior"}
#: Suffixes that switch an optional part on.
_ON_SUFFIXES = {"-ca": "fusion_attention"}


@dataclass(frozen=True)
class MMPRNNConfig:
    """Widths and switches of one MMP-RNN. `frames` is the training clip length (inference streams any length)."""

    n_a: int
    n_b: int
    n_c: int
    frames: int
    mmam: bool = True
    l_state: bool = True
    prior: bool = True
    #: Channel attention on the fused 25C features (the authors' GOPRO code); off in the paper's presets.
    fusion_attention: bool = False

    def __post_init__(self):
        if self.n_a < 1 or self.n_b < 1:
            raise InputError(f"preset {self.name}: n_a and n_b must be at least 1")
        if self.n_c < 2:
            raise InputError(f"preset {self.name}: n_c must be at least 2")
        if self.frames < 5:
            raise InputError(f"preset {self.name}: F must be at least 5 (2 past + centre + 2 future frames)")
        if self.mmam and not self.prior:
            # Without a prior there is nothing for MMAM to attend to.
            object.__setattr__(self, "mmam", False)

    @property
    def name(self) -> str:
        """Canonical preset name, suffixes included (parse_preset(config.name) == config)."""
        base = f"A{self.n_a}B{self.n_b}C{self.n_c}F{self.frames}"
        ca = "-ca" if self.fusion_attention else ""
        if not self.prior:
            return base + ("" if self.l_state else "-nondf") + "-noprior" + ca
        return base + ("" if self.mmam else "-nommam") + ("" if self.l_state else "-nondf") + ca

    def to_dict(self) -> dict:
        """Plain dict for checkpoints (JSON/weights_only friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MMPRNNConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})


def parse_preset(name: str) -> MMPRNNConfig:
    """'A7B8C16F8' (optionally with -nommam / -nondf / -noprior / -ca) -> MMPRNNConfig; InputError when malformed."""
    match = _NAME.match(name.strip()) if isinstance(name, str) else None
    if match is None:
        raise InputError(f"unknown model name {name!r}: use 'mmpnet' or a preset like A7B8C16F8 "
                         f"(A=n_a, B=n_b, C=n_c, F=frames; optional -nommam, -nondf, -noprior, -ca)")
    n_a, n_b, n_c, frames = (int(g) for g in match.groups()[:4])
    switches = {"mmam": True, "l_state": True, "prior": True, "fusion_attention": False}
    for suffix in re.findall(r"-[a-z]+", match.group(5).lower()):
        if suffix in _ON_SUFFIXES:
            switches[_ON_SUFFIXES[suffix]] = True
        elif suffix in _SUFFIXES:
            switches[_SUFFIXES[suffix]] = False
        else:
            raise InputError(f"unknown preset suffix {suffix!r} in {name!r}: use -nommam, -nondf, -noprior or -ca")
    return MMPRNNConfig(n_a, n_b, n_c, frames, **switches)
