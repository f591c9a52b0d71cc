"""mmpmodel: networks (MMP-Net, MMP-RNN), losses, metrics, profiling, training, evaluation and inference.

The public Python API (see docs/api.md) is importable from here::

    import mmpmodel
    deblurrer = mmpmodel.load("runs/rnn/best.pt")
    outputs = deblurrer.deblur(frames)   # numpy uint8 (H, W, 3) RGB frames in, the same out, one per frame

Names are loaded on first use (PEP 562), so ``import mmpmodel.metrics`` stays as light as before.
"""
from __future__ import annotations

__all__ = ["load", "Deblurrer", "MMPEstimator", "resolve_checkpoint", "synthesize", "evaluate_checkpoint",
           "score_outputs", "plot_runs", "deblur_video", "show_maps"]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'mmpmodel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
