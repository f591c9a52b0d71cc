"""--ema: the average is hand-checkable, is what best.pt/last.pt hold, and a resumed run is bit-identical."""
import pytest
import torch

from test_train_deblur import _run, setup  # noqa: F401  (the module fixture)
from mmpmodel.checkpoint import load_checkpoint
from mmpmodel.ema import WeightAverage


def test_average_follows_the_ramped_decay_by_hand():
    avg = WeightAverage({"w": torch.tensor([0.0]), "n": torch.tensor(0)}, decay=0.5)
    # first update: decay min(0.5, 1/10) = 0.1 -> 0.1 * 0 + 0.9 * 10 = 9
    avg.update({"w": torch.tensor([10.0]), "n": torch.tensor(3)})
    assert avg.shadow["w"].item() == pytest.approx(9.0) and avg.shadow["n"].item() == 3
    # second: decay min(0.5, 2/11) = 2/11 -> 2/11 * 9 + 9/11 * 20 = 198/11
    avg.update({"w": torch.tensor([20.0]), "n": torch.tensor(4)})
    assert avg.shadow["w"].item() == pytest.approx(198 / 11)
    avg.count = 100  # past the ramp the decay is the configured one
    assert avg.current_decay() == 0.5
    with pytest.raises(ValueError):
        WeightAverage({}, decay=1.0)


def test_applied_restores_the_training_weights_exactly():
    net = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    avg = WeightAverage(net.state_dict(), decay=0.9)
    with torch.no_grad():
        net.weight.add_(1.0)
    avg.update(net.state_dict())
    with avg.applied(net.state_dict, net.load_state_dict):
        assert torch.allclose(net.weight, before["weight"] + 0.9)  # 0.1 * w + 0.9 * (w + 1)
    assert torch.equal(net.weight, before["weight"] + 1.0)


def test_checkpoints_hold_the_average_and_resume_is_exact(setup, tmp_path):  # noqa: F811
    torch.set_num_threads(1)
    plain = _run(setup, tmp_path / "plain")["model"].deblur_state_dict()
    seen = []

    def record(step, model):
        seen.append({k: v.detach().clone() for k, v in model.deblur_state_dict().items()})
    straight = _run(setup, tmp_path / "a", ema=0.5, hook=record)
    trained = straight["model"].deblur_state_dict()
    for k in plain:  # the average does not change what the optimiser does
        assert torch.equal(plain[k], trained[k]), k
    # hand-computed average of the four steps' weights: decays (1 + t) / (10 + t) = 0.1, 2/11, 3/12, 4/13 (under 0.5)
    ck = load_checkpoint(tmp_path / "a" / "last.pt", kind="deblur")
    key = "skip.weight"
    kept = load_checkpoint(tmp_path / "a" / "last.pt")["extra"]["train_model"][key]
    assert torch.equal(kept, trained[key])  # last.pt keeps the training weights beside the average
    first = _run(setup, tmp_path / "init", steps=4, lr=1e-30, ema=0.5)["model"].deblur_state_dict()[key]
    expect = first.clone()
    for d, w in zip((0.1, 2 / 11, 0.25, 4 / 13), seen):
        expect = d * expect + (1 - d) * w[key]
    assert torch.allclose(ck["model"][key], expect, atol=1e-6)
    assert not torch.equal(ck["model"][key], trained[key])
    assert ck["extra"]["ema_count"] == 4

    def stop(step, model):
        if step == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _run(setup, tmp_path / "b", ema=0.5, hook=stop)
    _run(setup, tmp_path / "b", resume=True)
    resumed = load_checkpoint(tmp_path / "b" / "last.pt", kind="deblur")
    for k in ck["model"]:
        assert torch.equal(ck["model"][k], resumed["model"][k]), k
        assert torch.equal(ck["extra"]["train_model"][k], resumed["extra"]["train_model"][k]), k
