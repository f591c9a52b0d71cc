"""Numeric precision and memory layout of the networks: which dtype runs on which device, and what stays float32.

Why: two-thirds of MMP-RNN's time on a CPU goes to convolutions that run twice as fast in bfloat16 on CPUs with
native bf16 (AVX512-BF16, AMX), and GPUs run float16/bfloat16 on their tensor cores. ``auto`` picks the fast
dtype only where the hardware executes it natively (read from the CPU's flags, never assumed from AVX-512), and
float32 otherwise.

Reduced precision is applied to inference by casting the network's weights once (:func:`for_inference`), not by
autocast, which re-casts every weight on every call. What costs quality for little time stays float32 (measured in
docs/benchmarks.md): the 9x9 skip convolution on the blurry input frame and the final add that forms the output
(:data:`FP32_MODULES`; the model's ``reconstruct`` adds in float32). Training uses autocast (:func:`autocast`):
the optimizer keeps float32 master weights.
"""
from __future__ import annotations

import contextlib
import copy
import logging
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from mmpdata.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["PRECISIONS", "DTYPES", "FP32_MODULES", "cpu_native_bf16", "resolve_precision", "dtype_of",
           "use_channels_last", "for_inference", "for_training", "compute_dtype", "autocast"]

#: Values of every ``--precision`` option.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Submodules (by attribute name on MMP-RNN) kept in float32 at reduced precision: they touch the output at full
#: resolution with 3 channels, so they cost little time and their rounding would land directly in the output.
FP32_MODULES = ("skip",)
#: CPU flags (``/proc/cpuinfo``) that mean bf16 matrix products run natively.
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _flags_say_bf16(cpuinfo: str) -> bool:
    """Whether the first flags line of /proc/cpuinfo text lists AVX512-BF16 or AMX-BF16."""
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            return any(flag in line.split(":", 1)[-1].split() for flag in _BF16_FLAGS)
    return False


@lru_cache(maxsize=1)
def cpu_native_bf16() -> bool:
    """True when this CPU executes bf16 dot products natively (AVX512-BF16 or AMX-BF16), from the CPU flags;
    torch's own capability string is consulted too ('AMX' only appears on such CPUs)."""
    try:
        if "AMX" in str(torch.backends.cpu.get_cpu_capability()).upper():
            return True
    except (AttributeError, RuntimeError):
        pass
    try:
        return _flags_say_bf16(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return False  # not Linux (or no procfs): do not guess


def _as_device(device) -> torch.device:
    return device if isinstance(device, torch.device) else torch.device(device or "cpu")


def resolve_precision(precision: str | None, device: str | torch.device | None = None) -> str:
    """'auto' (or None) -> the concrete precision for ``device``: bf16 on a CPU with native bf16, fp16 on a CUDA GPU
    with tensor cores (compute capability 7.0+), fp32 otherwise. Concrete names pass through; InputError otherwise."""
    name = (precision or "auto").strip().lower()
    if name not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    device = _as_device(device)
    if name != "auto":
        if name != "fp32" and device.type == "cpu" and not cpu_native_bf16():
            log.warning("%s on a CPU without native bf16/AMX is emulated and slower than fp32", name)
        elif name == "fp16" and device.type == "cpu":
            log.warning("fp16 on the CPU is slower than bf16 here; use --precision bf16 or auto")
        return name
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return "fp16" if major >= 7 else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_native_bf16() else "fp32"
    return "fp32"


def dtype_of(precision: str) -> torch.dtype:
    """'fp32'/'bf16'/'fp16' -> the torch dtype (resolve 'auto' first)."""
    try:
        return DTYPES[precision]
    except KeyError:
        raise InputError(f"precision {precision!r} has no dtype: use fp32, bf16 or fp16") from None


def use_channels_last(device: str | torch.device | None) -> bool:
    """Channels-last (NHWC) layout: faster for these convolutions on the CPU (oneDNN) at every precision and on
    CUDA tensor cores (measured in docs/benchmarks.md); frames decoded from HWC arrays already have it."""
    return _as_device(device).type in ("cpu", "cuda")


def compute_dtype(model: nn.Module) -> torch.dtype:
    """The dtype a network's first layer runs in (inputs are cast to it once, at the network's entry)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def for_inference(model: nn.Module, precision: str | None = "auto", device: str | torch.device | None = None,
                  channels_last: bool | None = None) -> tuple[nn.Module, str]:
    """(model ready to run, concrete precision): in eval mode on ``device``, weights cast to the precision's dtype
    except :data:`FP32_MODULES`, channels-last where :func:`use_channels_last` says so.

    The caller's model is never changed: when a cast or a layout change is needed a copy is made (a few MB)."""
    device = _as_device(device) if device is not None else next(model.parameters()).device
    concrete = resolve_precision(precision, device)
    dtype = dtype_of(concrete)
    if channels_last is None:
        channels_last = use_channels_last(device)
    if dtype != torch.float32 or channels_last:
        model = copy.deepcopy(model)
    model = model.to(device).eval()
    if dtype != torch.float32:
        kept = {name: getattr(model, name) for name in FP32_MODULES if isinstance(getattr(model, name, None),
                                                                                   nn.Module)}
        model.to(dtype)
        for module in kept.values():
            module.float()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, concrete


def for_training(model: nn.Module, device: str | torch.device | None = None) -> nn.Module:
    """``model`` moved to ``device`` in place, channels-last where :func:`use_channels_last` says so: an
    MMP-RNN training step at the ``cpu`` recipe's size runs about 1.2x faster on the CPU that way
    (docs/benchmarks.md). Weights keep their values and dtype; checkpoints store the same numbers either way."""
    device = _as_device(device)
    model = model.to(device)
    if use_channels_last(device):
        model.to(memory_format=torch.channels_last)
    return model


def autocast(precision: str | None, device: str | torch.device | None = None):
    """Context for training at ``precision`` (resolved for ``device``): torch.autocast for bf16/fp16, nothing for
    fp32. The optimizer's weights stay float32."""
    device = _as_device(device)
    concrete = resolve_precision(precision, device)
    if concrete == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype_of(concrete))
