"""Shared fixtures: small rendered footage with exact motion ground truth (rendered once per test session).

The folders are shared by every test of the session: read them, never write into them.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mmpdata.footage import render_sample_footage


@pytest.fixture(scope="session")
def footage_factory(tmp_path_factory):
    """``make(**kwargs) -> root``: :func:`render_sample_footage` into a fresh folder, cached per distinct kwargs."""
    cache: dict[str, Path] = {}

    def make(**kwargs) -> Path:
        key = json.dumps(kwargs, sort_keys=True, default=str)
        if key not in cache:
            root = tmp_path_factory.mktemp("footage")
            render_sample_footage(root, progress=False, **kwargs)
            cache[key] = root
        return cache[key]

    return make


@pytest.fixture(scope="session")
def sample_footage(footage_factory) -> Path:
    """Tiny split footage, 64x48: train/GOPR9001_11_00, train/GOPR9002_11_00, test/GOPR9003_11_00, 16 frames each,
    with a moving sprite; truth in <seq>.motion.npz / .json beside each folder (see mmpdata.footage)."""
    return footage_factory(sequences=3, frames=16, size=(64, 48), seed=0, split=True)


@pytest.fixture(scope="session")
def sample_sequence(sample_footage) -> Path:
    """One sequence folder of :func:`sample_footage` (16 frames 000000.png..000015.png, 64x48)."""
    return sample_footage / "train" / "GOPR9001_11_00"


@pytest.fixture(scope="session")
def unseen_footage(footage_factory) -> Path:
    """The issue's "footage the project has never seen": photographs not in the default sample set (coffee, rocket)
    moved by known affine camera paths, 320x192, two sequences of 40 frames, flat layout
    (GOPR9001_11_00, GOPR9002_11_00). No sprite: pure camera motion, no occlusion edges."""
    from mmpdata.footage import UNSEEN_IMAGES

    return footage_factory(sequences=2, frames=40, size=(320, 192), seed=1, split=False,
                           images=UNSEEN_IMAGES, foreground=False)


@pytest.fixture(scope="session")
def bench_script():
    """``load(name) -> module``: a script of bench/ (not a package) imported by path, once per session."""
    cache: dict[str, object] = {}

    def load(name: str):
        if name not in cache:
            spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "bench" / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            cache[name] = module
        return cache[name]

    return load
