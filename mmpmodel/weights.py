"""Named weights: a registry of checkpoints that ship inside the package, as torchvision's weight enums do.

Why: a new user should deblur a video, or fine-tune, without training for days first and without knowing where a
file lives. Every ``--model``/``--prior``/``--init-from`` option accepts a registry name (``sample-deblur``) as
well as a checkpoint path; :func:`resolve_weights` turns either into a verified path.

Each entry says what the weights are (architecture, recipe, training data, the command that made them, measured
metrics, sha256). The entries live in ``mmpmodel/weights/index.json`` beside the files, written by the command
that trained them (``bench/train_bundled.py``), so the metrics recorded are the ones that command measured.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mmpdata.errors import FormatError, InputError

log = logging.getLogger(__name__)

__all__ = ["WEIGHTS_DIR", "WeightsEntry", "registry", "resolve_weights", "default_weights", "sha256_file"]

#: Folder of the bundled checkpoints and their index (package data).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
INDEX = WEIGHTS_DIR / "index.json"
#: What inference commands use when no checkpoint is named.
DEFAULTS = {"deblur": "sample-deblur", "prior": "sample-prior"}
#: Said once whenever bundled weights stand in for a checkpoint the user did not name.
BUNDLED_NOTICE = ("trained on synthetic sample footage (see `mmp weights`); for real footage use published weights "
                  "(`mmp import-weights`, docs/weights.md) or your own")


@dataclass(frozen=True)
class WeightsEntry:
    """One named checkpoint: where it is and what it is."""

    name: str
    kind: str                 #: "prior" (MMP-Net) or "deblur" (MMP-RNN with its prior)
    file: str                 #: file name inside :data:`WEIGHTS_DIR`
    sha256: str
    architecture: str         #: "mmpnet" or an MMP-RNN preset name
    recipe: str = ""
    data: str = ""            #: the training footage and how it was made
    command: str = ""         #: the command that trained it
    metrics: dict = field(default_factory=dict)
    description: str = ""

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "file": self.file, "sha256": self.sha256,
                "architecture": self.architecture, "recipe": self.recipe, "data": self.data,
                "command": self.command, "metrics": dict(self.metrics), "description": self.description}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def registry() -> dict[str, WeightsEntry]:
    """Every registered name -> entry (empty when the package ships no weights)."""
    if not INDEX.exists():
        return {}
    try:
        raw = json.loads(INDEX.read_text())
        return {e["name"]: WeightsEntry(**e) for e in raw["weights"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"{INDEX}: broken weights index ({exc!r}); reinstall the package") from None


@lru_cache(maxsize=None)
def _verified(path: str, sha256: str, mtime: float) -> None:
    digest = sha256_file(path)
    if digest != sha256:
        raise FormatError(f"{path}: sha256 {digest[:12]}… does not match the registry ({sha256[:12]}…); "
                          "the bundled file is damaged: reinstall the package")


def resolve_weights(name_or_path: str | Path, kind: str | None = None) -> Path:
    """A registry name (checked against its sha256) or an existing checkpoint path -> the path to load.

    ``kind`` ("prior"/"deblur"), when given, refuses a registry entry of the other kind with a clear message."""
    text = str(name_or_path)
    entries = registry()
    if text in entries:
        entry = entries[text]
        if kind is not None and entry.kind != kind:
            raise InputError(f"{text} holds {entry.kind} weights, but {kind} weights are needed here; "
                             f"choose one of: {', '.join(n for n, e in entries.items() if e.kind == kind) or 'none'}")
        if not entry.path.exists():
            raise InputError(f"{text}: the bundled file {entry.path} is missing; reinstall the package")
        _verified(str(entry.path), entry.sha256, entry.path.stat().st_mtime)
        return entry.path
    path = Path(name_or_path)
    if path.exists():
        if path.is_dir():
            raise InputError(f"{path} is a folder; name a checkpoint file (e.g. {path / 'best.pt'}) "
                             "or a registered name (`mmp weights`)")
        return path
    known = ", ".join(sorted(entries)) or "none bundled"
    raise InputError(f"{text}: no such checkpoint file and no registered weights of that name ({known}); "
                     "see `mmp weights`")


def default_weights(kind: str) -> Path:
    """The bundled checkpoint that inference uses when the user names none; logs where it comes from."""
    name = DEFAULTS[kind]
    path = resolve_weights(name, kind)
    log.warning("no --%s given: using the bundled %s weights, %s", "model" if kind == "deblur" else "prior",
                name, BUNDLED_NOTICE)
    return path
