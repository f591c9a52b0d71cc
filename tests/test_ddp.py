"""Two CPU processes (gloo) train with DDP: both ranks end with identical weights, different from the start."""
import socket

import pytest
import torch
import torch.multiprocessing as mp

import _ddp_worker
from _mmph5 import write_learnable_h5
from mmpmodel.checkpoint import load_checkpoint
from mmpmodel.mmpnet import MMPNet


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_hold_identical_weights(tmp_path):
    data = write_learnable_h5(tmp_path / "d.h5", names=("s0", "s1", "s2", "s3"), t=6, size=(32, 32))
    for kind in ("prior", "deblur"):
        mp.spawn(_ddp_worker.run, args=(2, _free_port(), str(data), str(tmp_path / kind), kind), nprocs=2, join=True)
        a = torch.load(tmp_path / f"{kind}_rank0.pt", weights_only=True)
        b = torch.load(tmp_path / f"{kind}_rank1.pt", weights_only=True)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (kind, k)
        ck = load_checkpoint(tmp_path / kind / "last.pt")  # written once, by rank 0
        assert ck["config"]["world_size"] == 2 and ck["step"] == 3
    torch.manual_seed(0)
    fresh = MMPNet().state_dict()
    a = torch.load(tmp_path / "prior_rank0.pt", weights_only=True)
    assert not torch.equal(a["head.weight"], fresh["head.weight"])  # training moved the weights
