"""One rank of the DDP test: join a 2-process gloo group through the torchrun environment variables, train, and
save this rank's final weights."""
import os
import sys

import torch


def run(rank: int, world: int, port: int, data: str, out: str, kind: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    if kind == "prior":
        from mmpmodel.train_prior import train_prior
        res = train_prior(data, out, steps=3, batch_size=2, patch=32, seed=0, device="cpu", progress=False)
        state = res["model"].state_dict()
    else:
        from mmpmodel.train_deblur import train_deblur
        res = train_deblur(data, out, preset="A1B1C4F5", steps=3, batch_size=1, patch=32, seed=0, device="cpu",
                           prior=None, use_prior=False, mm_loss=False, progress=False)
        state = res["model"].deblur_state_dict()
    torch.save(state, os.path.join(os.path.dirname(out), f"{kind}_rank{rank}.pt"))


if __name__ == "__main__":
    run(*[int(a) if a.isdigit() else a for a in sys.argv[1:]])
