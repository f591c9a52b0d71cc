"""Data-parallel training under ``torchrun``: process group setup, samplers, and rank-0-only side effects.

The same training command runs alone or as ``torchrun --nproc-per-node N mmp train-...``: torchrun sets RANK,
WORLD_SIZE and LOCAL_RANK, and :func:`setup` then joins the process group (NCCL on CUDA, gloo on CPU). Each process
reads its own share of every epoch through a :class:`ResumableSampler` (a DistributedSampler that can start part way
through an epoch, so ``--resume`` continues with exactly the batches that were next). Only rank 0 writes logs and
checkpoints.
"""
from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from mmpdata.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["DistInfo", "resolve_device", "setup", "cleanup", "ResumableSampler", "all_mean", "any_true",
           "broadcast_buffers", "barrier", "env_rank", "quiet_other_ranks"]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(spec: str | None) -> torch.device:
    """None/'auto' -> CUDA when available, else CPU; InputError for a device that is not there."""
    if spec in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise InputError(f"unknown --device {spec!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {spec} asked for, but no CUDA GPU is available here: use --device cpu")
    return device


def env_rank() -> int:
    """This process's rank as torchrun announces it (RANK), 0 outside torchrun; readable before any process group
    exists, so logging can be set up first."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def quiet_other_ranks(rank: int) -> None:
    """On every rank but 0, raise the root logger to WARNING: INFO lines then appear once (from rank 0), while
    warnings and errors of any rank still show. ``mmp`` does this at start-up; :func:`setup` does it for scripts
    that call the training functions under torchrun themselves."""
    if rank != 0:
        root = logging.getLogger()
        if root.getEffectiveLevel() < logging.WARNING:
            root.setLevel(logging.WARNING)


def setup(device: str | None = None) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (each rank on its own GPU); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if world > 1:
        quiet_other_ranks(rank)
        if dev.type == "cuda":
            dev = torch.device("cuda", local)
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            backend = "nccl" if dev.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
            log.info("rank %d of %d joined the %s process group", rank, world, backend)
    return DistInfo(rank, world, local, dev)


def cleanup(info: DistInfo) -> None:
    """Leave the process group together: a rank that tears gloo down while its peer is still in the last
    collective can abort the peer at exit (seen once in CI as SIGABRT, "terminate called without an active
    exception"), so every rank waits at a barrier first."""
    if info.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class ResumableSampler(DistributedSampler):
    """DistributedSampler (shuffled by seed + epoch, same on every rank) that can skip this rank's first
    ``skip`` samples of the epoch, which is where a resumed run picks up."""

    def __init__(self, dataset, info: DistInfo, seed: int, shuffle: bool = True):
        super().__init__(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=seed,
                         drop_last=True)
        self.skip = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


def all_mean(value: float, info: DistInfo) -> float:
    """Mean of a number over all ranks (the number itself when alone)."""
    if not info.distributed:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def any_true(flag: bool, info: DistInfo) -> bool:
    """True on every rank when it is true on any rank (so all ranks stop together)."""
    if not info.distributed:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank, so saved and evaluated weights agree."""
    if info.distributed:
        for buf in module.buffers():
            dist.broadcast(buf.data, src=0)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()
