"""The weights registry: names resolve to verified bundled files, paths pass through, mistakes get one line."""
import hashlib
import json

import pytest

import mmpmodel.weights as W
from mmpdata.errors import FormatError, InputError


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    blob = b"not really a checkpoint"
    (tmp_path / "tiny-prior.pt").write_bytes(blob)
    entry = {"name": "tiny-prior", "kind": "prior", "file": "tiny-prior.pt",
             "sha256": hashlib.sha256(blob).hexdigest(), "architecture": "mmpnet", "metrics": {"l1": 0.01}}
    (tmp_path / "index.json").write_text(json.dumps({"weights": [entry]}))
    monkeypatch.setattr(W, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(W, "INDEX", tmp_path / "index.json")
    W._verified.cache_clear()
    return tmp_path


def test_name_resolves_to_the_bundled_file(fake_registry):
    assert W.resolve_weights("tiny-prior") == fake_registry / "tiny-prior.pt"
    assert W.resolve_weights("tiny-prior", kind="prior") == fake_registry / "tiny-prior.pt"
    assert W.registry()["tiny-prior"].metrics == {"l1": 0.01}


def test_wrong_kind_and_unknown_names_are_one_line_errors(fake_registry, tmp_path):
    with pytest.raises(InputError, match="tiny-prior holds prior weights"):
        W.resolve_weights("tiny-prior", kind="deblur")
    with pytest.raises(InputError, match="no registered weights of that name") as err:
        W.resolve_weights("no-such-thing")
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="is a folder"):
        W.resolve_weights(tmp_path)


def test_a_damaged_bundled_file_is_refused(fake_registry):
    (fake_registry / "tiny-prior.pt").write_bytes(b"flipped bits")
    with pytest.raises(FormatError, match="sha256"):
        W.resolve_weights("tiny-prior")


def test_paths_pass_through(tmp_path):
    ck = tmp_path / "mine.pt"
    ck.write_bytes(b"x")
    assert W.resolve_weights(str(ck)) == ck


def test_deblur_without_model_uses_the_bundled_weights(tmp_path):
    """`mmp deblur IN OUT` with no --model: the bundled sample-deblur, a one-line notice, every frame written."""
    import cv2
    import numpy as np
    from click.testing import CliRunner

    from cli.main import main

    assert "sample-deblur" in W.registry() and "sample-prior" in W.registry()
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for t in range(7):
        cv2.imwrite(str(src / f"{t:06d}.png"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    res = CliRunner().invoke(main, ["deblur", str(src), str(tmp_path / "out"), "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{t:06d}.png" for t in range(7)]
    assert "bundled sample-deblur" in res.output  # the notice (logged to stderr, which CliRunner mixes in)
