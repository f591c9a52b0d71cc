"""Checkpoints: round trip, exact RNG restore, atomic replace, clean errors for anything that is not ours."""
import random

import numpy as np
import pytest
import torch

from mmpdata.errors import FormatError, InputError
from mmpmodel.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


def test_round_trip_keeps_everything(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=1e-8)
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched.step()
    prior = {"w": torch.arange(4.0)}
    path = save_checkpoint(tmp_path / "a.pt", kind="deblur", config={"preset": "A1B1C4F5"}, model=net.state_dict(),
                           prior=prior, step=7, metrics={"psnr": 30.5}, optimizer=opt.state_dict(),
                           scheduler=sched.state_dict(), rng=rng_state())
    ck = load_checkpoint(path, kind="deblur")
    assert ck["step"] == 7 and ck["metrics"] == {"psnr": 30.5} and ck["config"]["preset"] == "A1B1C4F5"
    assert torch.equal(ck["model"]["weight"], net.weight.detach())
    assert torch.equal(ck["prior"]["w"], prior["w"])
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    opt2.load_state_dict(ck["optimizer"])
    assert opt2.state_dict()["state"][0]["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary file left behind


def test_rng_state_restores_exactly(tmp_path):
    save_checkpoint(tmp_path / "r.pt", kind="prior", config={}, model={}, rng=rng_state())
    first = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


def test_failed_save_keeps_previous_file(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", kind="prior", config={}, model={"x": torch.ones(2)}, step=1)
    with pytest.raises(Exception):
        save_checkpoint(path, kind="prior", config={}, model={"x": lambda: 0}, step=2)  # cannot be pickled
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_not_a_checkpoint_gets_format_error(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x89HDF\r\n this is not torch")
    with pytest.raises(FormatError, match="junk.pt"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)  # a torch file, but not ours
    with pytest.raises(FormatError, match="other.pt"):
        load_checkpoint(other)
    with pytest.raises(InputError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


class Evil:
    """Any pickled object: loading it would run code, so weights_only loading refuses it."""


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "mmp-checkpoint", "version": 1, "kind": "prior", "obj": Evil()}, path)
    with pytest.raises(FormatError, match="evil.pt"):
        load_checkpoint(path)


def test_wrong_kind_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "p.pt", kind="prior", config={}, model={})
    with pytest.raises(FormatError, match="prior checkpoint"):
        load_checkpoint(path, kind="deblur")


# ---------------------------------------------------------------- issue 13 item 9: crafted and non-finite checkpoints
def _crafted(tmp_path, name, **entries):
    path = tmp_path / name
    torch.save({"format": "mmp-checkpoint", "version": 1, **entries}, path)
    return path


@pytest.mark.parametrize("entries, what", [
    ({"kind": "prior"}, "no 'config' entry"),
    ({"kind": "prior", "config": {}}, "no 'model' entry"),
    ({"kind": "prior", "config": {}, "model": {}}, "no 'step' entry"),
    ({"kind": "weird", "config": {}, "model": {}, "step": 0}, "kind 'weird'"),
    ({"kind": "prior", "config": [1, 2], "model": {}, "step": 0}, "'config' is a list, expected a dict"),
    ({"kind": "prior", "config": {}, "model": [torch.ones(1)], "step": 0}, "'model' is a list"),
    ({"kind": "prior", "config": {}, "model": {}, "step": "3"}, "'step' is a str, expected a int"),
    ({"kind": "prior", "config": {}, "model": {"w": 3.0}, "step": 0}, "names to tensors"),
    ({"kind": "deblur", "config": {}, "model": {}, "step": 0, "prior": "x"}, "'prior' is a str"),
])
def test_crafted_checkpoints_get_one_line_naming_the_file(tmp_path, entries, what):
    path = _crafted(tmp_path, "crafted.pt", **entries)
    with pytest.raises(FormatError) as exc:
        load_checkpoint(path)
    assert str(path) in str(exc.value) and what in str(exc.value) and "\n" not in str(exc.value)


def test_crafted_configs_are_refused_by_the_network_loaders(tmp_path):
    from mmpmodel.checkpoint import load_any, load_deblur, load_prior

    cases = [
        (_crafted(tmp_path, "a.pt", kind="prior", config={"width": "wide"}, model={}, step=0), load_prior),
        (_crafted(tmp_path, "b.pt", kind="deblur", config={}, model={}, step=0), load_deblur),
        (_crafted(tmp_path, "c.pt", kind="deblur", config={"model": {"n_a": "x", "prior": False}}, model={},
                  step=0), load_deblur),
        (_crafted(tmp_path, "d.pt", kind="prior", config={}, model={"tail.weight": torch.ones(3)}, step=0), load_any),
    ]
    for path, loader in cases:
        with pytest.raises(FormatError) as exc:
            loader(path)
        assert str(exc.value).startswith(f"{path}: ") and "\n" not in str(exc.value), exc.value


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load(tmp_path, bad):
    from _mmph5 import random_checkpoints
    from mmpmodel.checkpoint import load_deblur, load_prior

    prior_ck, deblur_ck, _ = random_checkpoints(tmp_path)
    ck = load_checkpoint(prior_ck)
    name = sorted(k for k, v in ck["model"].items() if v.is_floating_point())[3]
    ck["model"][name].view(-1)[0] = bad
    save_checkpoint(tmp_path / "nan_prior.pt", kind="prior", config=ck["config"], model=ck["model"])
    with pytest.raises(FormatError) as exc:
        load_prior(tmp_path / "nan_prior.pt")
    msg = str(exc.value)
    assert str(tmp_path / "nan_prior.pt") in msg and f"model.{name}" in msg and "1 NaN/inf" in msg
    ck = load_checkpoint(deblur_ck)
    ck["prior"][name].view(-1)[-1] = bad  # the prior inside a deblurring checkpoint is checked too
    save_checkpoint(tmp_path / "nan_deblur.pt", kind="deblur", config=ck["config"], model=ck["model"],
                    prior=ck["prior"])
    with pytest.raises(FormatError, match=f"nan_deblur.pt: weight prior.{name}"):
        load_deblur(tmp_path / "nan_deblur.pt")
    load_deblur(deblur_ck)  # the untouched checkpoint still loads


def test_full_disk_while_saving_is_a_plain_enospc_and_keeps_the_previous_file(tmp_path, monkeypatch):
    import errno

    from mmpdata.errors import environment_error

    path = save_checkpoint(tmp_path / "last.pt", kind="prior", config={}, model={"x": torch.ones(2)}, step=1)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("mmpmodel.checkpoint.os.fsync", full)
    with pytest.raises(OSError) as exc:
        save_checkpoint(path, kind="prior", config={}, model={"x": torch.zeros(2)}, step=2)
    assert exc.value.errno == errno.ENOSPC
    assert str(environment_error(exc.value)).startswith(f"{path}: cannot write: no space left")
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]
