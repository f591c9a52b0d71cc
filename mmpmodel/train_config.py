"""Every training setting declared once: one dataclass per task, plus named recipes (partial configurations).

Why: the click options of ``mmp train-prior``/``train-deblur``, ``RUN/config.json``, the ``--resume`` checks and the
recipes all come from these dataclasses, so a setting cannot be documented in one place and ignored in another.

Precedence when a configuration is resolved (:func:`resolve`), lowest first: the dataclass defaults (today's
behaviour), the recipe (``--recipe NAME``), a saved configuration (``--config RUN/config.json``, or the run's own
config.json with ``--resume``), then the options given explicitly.

Field metadata: ``help`` (the option's help text), ``resume`` (False: may change when a run is resumed, e.g. the
device), ``cli`` (False: not a command-line option), ``flag`` (the option's declaration for booleans), ``choices``,
``runtime`` (bound to the machine: not inherited from a saved config.json),
``min`` (smallest allowed value, inclusive), ``positive`` (a positive finite float) and ``fraction`` (in [0, 1)). Paths (``data``, ``prior``,
``init_from``) are compared on resume by content (``data_id``, ``prior_sha256``, ``init_from_sha256`` in
config.json), not by where they lie.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmpdata.errors import InputError

__all__ = ["TrainConfig", "PriorTrainConfig", "DeblurTrainConfig", "Recipe", "RECIPES", "CPU_RECIPES", "CONFIGS",
           "resolve", "prepare", "config_fields", "defaults", "load_config_file", "recipe_names", "resume_keys", "step_fractions", "to_dict",
           "SCHEDULES"]

SCHEDULES = ("cosine", "step", "constant")


def _f(default, help: str, **meta) -> Any:
    """A dataclass field with its help text (and other option metadata) in the metadata."""
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class TrainConfig:
    """Settings shared by both training stages. Subclasses override defaults (see their docstrings)."""

    data: str | None = _f(None, "mmp-h5 index to train on (the run records a fingerprint of its contents, so a "
                                "moved file still resumes).", path=True, resume=False)
    steps: int | None = _f(None, "Optimisation steps (instead of --epochs).", min=1, resume=False)
    epochs: int | None = _f(None, "Epochs (used when --steps is not given).", min=1, resume=False)
    batch_size: int = _f(8, "Batch size per process.", min=1)
    patch: int = _f(256, "Side of the square random training crop, px.", min=16)
    lr: float = _f(3e-4, "Peak learning rate (Adam).", positive=True)
    schedule: str = _f("step", "Learning-rate schedule after the warm-up: cosine (to --min-lr), step (x "
                               "--step-gamma at each fraction of --step-at) or constant.", choices=SCHEDULES)
    warmup_steps: int = _f(0, "Linear warm-up from lr/warmup to lr over this many steps.", min=0)
    min_lr: float = _f(1e-8, "Final learning rate of the cosine schedule.", min=0.0)
    step_at: str = _f("0.5", "Step schedule: comma-separated fractions of the run where the rate is multiplied by "
                             "--step-gamma.")
    step_gamma: float = _f(0.5, "Step schedule: factor applied at each --step-at fraction.", positive=True)
    weight_decay: float = _f(0.0, "Adam L2 weight decay.", min=0.0)
    grad_clip: float | None = _f(None, "Clip the gradient norm to this value (none: no clipping).", positive=True)
    seed: int = _f(0, "Seed of the split, the shuffle, the augmentation and the initial weights.")
    val_fraction: float = _f(0.1, "Share of sequences held out for validation when none is marked valid.",
                             min=0.0, fraction=True)
    val_every: int | None = _f(None, "Validate (and write last.pt/best.pt) every N steps (default: each epoch, "
                                     "at most every 1000 steps).", min=1, resume=False)
    val_images: int = _f(3, "blurry | output | sharp strips written per validation round into RUN/val/.", min=0,
                         resume=False)
    log_every: int = _f(10, "Log the training loss every N steps.", min=1, resume=False)
    ema: float = _f(0.0, "Decay of an exponential moving average of the weights (e.g. 0.999; 0: off). The average "
                         "is what is validated and saved as the model of best.pt/last.pt (last.pt also keeps the "
                         "training weights, for --resume).", min=0.0, fraction=True)
    init_from: str | None = _f(None, "Start from these weights (a checkpoint path or a registered name) instead of "
                                     "a fresh initialisation. train-deblur: a deeper --preset (larger A or B) grows "
                                     "them, the added RDBs starting as the identity.", path=True, resume=False)
    device: str | None = _f(None, "cpu, cuda or cuda:N (default: cuda when available).", resume=False,
                            runtime=True)
    workers: int | None = _f(None, "DataLoader worker processes (default 0 on CPU, 4 on GPU).", min=0,
                             resume=False, runtime=True)
    precision: str = _f("auto", "Forward-pass precision: auto (fp16 AMP on CUDA, fp32 on a CPU), fast (auto, but "
                                "bf16 on CPUs with native bf16: about 2x faster), fp32, bf16 (autocast) or fp16 "
                                "(CUDA, with loss scaling). Weights and the loss stay float32.",
                        choices=("auto", "fast", "fp32", "bf16", "fp16"), resume=False)

    kind = "base"

    def default_epochs(self) -> int:
        return 1


@dataclass
class PriorTrainConfig(TrainConfig):
    """MMP-Net. Defaults = the reference notebook: Adam 3e-4 halved at half the run, L1 + 0.5 x gradient L1."""

    grad_weight: float = _f(0.5, "Weight of the image-gradient L1 term (0: plain L1).", min=0.0)
    level_weight: float = _f(0.0, "Weight of an L1 term on each crop's mean MMP (its blur level), so evidence "
                                  "from textured pixels must reach the smooth ones (0: off, the reference).",
                             min=0.0)
    mse_weight: float = _f(0.0, "Weight of a mean-squared-error term added to the L1 (0: off, the reference); "
                                "it widens the range of predicted blur levels, which L1 pulls to the median.",
                           min=0.0)
    augment: str = _f("reference", "reference: random crops and h/v flips; strong: also crops shrunk by 0.5-1 "
                                   "(MMP scaled alike), 90-degree rotations and colour jitter.",
                      choices=("reference", "strong"))
    input_norm: str = _f("none", "What MMP-Net sees: none (the frame, as in the paper) or local (each pixel's "
                                 "difference from its neighbourhood divided by the neighbourhood's contrast; "
                                 "recorded in the checkpoint).", choices=("none", "local"))
    context: int = _f(0, "Neighbouring frames MMP-Net sees on each side of the frame (0: the frame alone, as in "
                         "the paper; 1: also the previous and next exposures, whose displacement shows the "
                         "motion; recorded in the checkpoint).", min=0)
    val_frames: int = _f(32, "Held-out full frames scored per validation round.", min=1, resume=False)
    width: int = _f(16, "MMP-Net base width (the paper's network: 16).", min=1, cli=False)

    kind = "prior"

    def default_epochs(self) -> int:
        return 400


@dataclass
class DeblurTrainConfig(TrainConfig):
    """MMP-RNN. Defaults = the paper: Adam 5e-4 cosine to 1e-8, clip 20, Charbonnier + 0.5 grad + 1.0 MM."""

    preset: str | None = _f(None, "Architecture: preset A{n_a}B{n_b}C{n_c}F{frames} such as A7B8C16F8 "
                                  "(optional -nommam/-nondf/-noprior).")
    prior: str | None = _f(None, "MMP-Net checkpoint (from train-prior) or registered name, frozen inside the "
                                 "network.", path=True, resume=False)
    frames: int | None = _f(None, "Training clip length F (default: the preset's F).", min=5)
    lr: float = _f(5e-4, "Peak learning rate (Adam).", positive=True)
    schedule: str = _f("cosine", TrainConfig.__dataclass_fields__["schedule"].metadata["help"], choices=SCHEDULES)
    grad_clip: float | None = _f(20.0, "Clip the gradient norm to this value (none: no clipping).", positive=True)
    char_weight: float = _f(1.0, "Weight of the Charbonnier term.", min=0.0)
    grad_weight: float = _f(0.5, "lambda1: weight of the image-gradient term.", min=0.0)
    mm_weight: float = _f(1.0, "lambda2: weight of the motion-magnitude loss (0 drops it; --no-mm-loss).",
                          min=0.0)
    mse_weight: float = _f(0.0, "Weight of a mean-squared-error term (0: off, the paper). PSNR is a squared "
                                "error: the Charbonnier (L1-like) term settles an uncertain pixel on the median "
                                "of what it could be, a squared term on the mean (no better for the bundled "
                                "weights: docs/training.md).", min=0.0)
    psnr_weight: float = _f(0.0, "Weight of a PSNR term: minus the mean PSNR of the scored frames, in dB (0: off, "
                                 "the paper). The score averages per-frame PSNRs, so this term asks for the same "
                                 "relative error reduction on every frame, nearly sharp ones included.", min=0.0)
    grad_form: str = _f("paper", "Gradient term: paper (eq. 7, squared forward differences) or reference (L1 of "
                                 "gradient magnitudes, the authors' code).", choices=("paper", "reference"))
    skip_lr_scale: float = _f(1.0, "Learning-rate multiplier of the 9x9 global skip convolution.", positive=True)
    mmam_gain: float = _f(1.0, "Multiply the initial weights of MMAM's first 1x1 conv by this (fresh runs only; "
                               "--init-from and --resume keep their weights). MMP is about 0.03 on average, so at 1 "
                               "its variations barely move the features and short runs learn to ignore the map.",
                          positive=True)
    mmam: bool = _f(True, "Motion-magnitude attention (ablation: --no-mmam).", flag="--mmam/--no-mmam")
    l_state: bool = _f(True, "Non-deblurred feature state l (ablation: --no-l-state).",
                       flag="--l-state/--no-l-state")
    use_prior: bool = _f(True, "MMP-Net inside the network (ablation: --no-prior; with --no-mm-loss no prior file "
                               "is needed).", flag="--with-prior/--no-prior")
    prior_source: str = _f("net", "net: MMP-Net's estimate; gt: the stored ground-truth MMP (Table 5's bound).",
                           choices=("net", "gt"))
    still_clips: float = _f(0.0, "Share of training clips shown still: the sharp clip as input and target (stored "
                                 "MMP zero), so the network learns to leave sharp frames alone (0: none, as the "
                                 "paper).", min=0.0, fraction=True)
    ends: str = _f("skip", "Which frames of a clip the loss and validation score: skip (the paper: only those with "
                           "two real neighbours on each side) or reflect/replicate (every frame, the ends given "
                           "neighbours as mmp deblur gives them: train for the ends you deblur).",
                   choices=("skip", "reflect", "replicate"))
    time_flip: bool = _f(False, "Play half the training clips backwards (a reversed video is a video; blur is "
                                "symmetric in time).", flag="--time-flip/--no-time-flip")
    teacher: str | None = _f(None, "Distillation: a deblurring checkpoint or registered name whose self-ensemble "
                                   "output the network also learns to match (off by default; the paper trains on "
                                   "the sharp frames alone). On --resume the weights are compared (teacher_sha256 "
                                   "in config.json), not the path, so a moved teacher still resumes.", path=True,
                        resume=False)
    teacher_ensemble: int = _f(8, "Passes of the teacher's self-ensemble (1, 2, 4 or 8, as mmp eval "
                                  "--self-ensemble): the average of the mirrored and transposed passes.", min=1)
    teacher_weight: float = _f(1.0, "Weight of the Charbonnier term between the output and the teacher's.",
                               min=0.0)
    val_clips: int = _f(8, "Held-out full-frame clips scored per validation round.", min=1, resume=False)

    kind = "deblur"

    def default_epochs(self) -> int:
        return 1000


CONFIGS = {"prior": PriorTrainConfig, "deblur": DeblurTrainConfig}


# --------------------------------------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class Recipe:
    """A named partial configuration: ``values`` (field -> value) and where each value comes from."""

    name: str
    about: str
    values: dict
    sources: dict = dataclasses.field(default_factory=dict)


#: The `cpu` recipes: the best each stage reaches in <= 15 minutes on 2 CPU cores. EDIT THE VALUES HERE (one place);
#: the measurements behind them are in docs/training.md ("Recipes").
CPU_RECIPES = {
    "prior": {"steps": 1000, "batch_size": 8, "patch": 96, "lr": 3e-4, "schedule": "step", "warmup_steps": 0,
              "grad_weight": 0.5, "augment": "strong", "input_norm": "local", "val_frames": 16, "val_every": 100},
    "deblur": {"preset": "A2B2C16F10", "steps": 1100, "batch_size": 4, "patch": 64, "lr": 5e-4, "schedule": "cosine",
               "warmup_steps": 50, "grad_clip": 20.0, "char_weight": 1.0, "grad_weight": 0.5, "mm_weight": 0.0,
               "skip_lr_scale": 0.1, "ema": 0.995, "val_clips": 4, "val_every": 100, "precision": "fast"},
}

#: Source line of every `cpu` value; say "measured, docs/training.md (Recipes)" once the values are measured.
_CPU_SOURCE = "measured on 2 CPU cores, docs/training.md (Recipes: cpu)"
_PAPER = "paper §4.1 (MMP-Net implementation details)"
_FACTS = "shared/docs/REFERENCE_FACTS.md (the authors' notebook LearningMMP/MMPtraining.ipynb)"
_PRIOR_PAPER = {
    "values": {"epochs": 400, "batch_size": 8, "lr": 3e-4, "schedule": "step", "step_at": "0.5", "step_gamma": 0.5,
               "patch": 512, "grad_weight": 0.5, "augment": "reference"},
    "sources": {"epochs": _PAPER + ": 400 epochs", "batch_size": _PAPER + ": mini-batch 8",
                "lr": _PAPER + ": Adam, initial rate 0.0003",
                "schedule": _PAPER + ": halved after 200 epochs", "step_at": _PAPER + ": 200 of 400 epochs",
                "step_gamma": _PAPER + ": by half", "patch": _PAPER + ": 512 x 512 patches",
                "grad_weight": _FACTS + ": L1 + 0.5 x L1 of image gradients (the paper names only L1)",
                "augment": _FACTS + ": random 512 crops with h/v flips"},
}
_D = "paper §4.2 (implementation details)"
_DEBLUR_COMMON_VALUES = {"frames": 10, "patch": 256, "batch_size": 8, "lr": 5e-4, "schedule": "cosine",
                         "min_lr": 1e-8, "warmup_steps": 0, "grad_clip": 20.0, "char_weight": 1.0,
                         "grad_weight": 0.5, "mm_weight": 1.0, "grad_form": "paper", "skip_lr_scale": 1.0}
_DEBLUR_COMMON_SOURCES = {
    "frames": _D + ": 10-frame sequences (the authors' main.py used 8)",
    "patch": _D + ": 256 x 256 patches (the authors' GOPRO main.py used 512)",
    "batch_size": _D + ": mini-batch of size 8", "lr": _D + ": Adam, learning rate 0.0005",
    "schedule": _D + ": cosine annealing", "min_lr": "authors' train/optimizer.py: CosineAnnealingLR eta_min 1e-8",
    "warmup_steps": "neither paper nor code warms up",
    "grad_clip": "authors' train/dp.py: clip_grad_norm_ max_norm 20",
    "char_weight": "paper eq. 8", "grad_weight": "paper eq. 8: lambda1 = 0.5",
    "mm_weight": "paper eq. 8: lambda2 = 1.0 (the authors' code never implemented L_MM)",
    "grad_form": "paper eq. 7 (the code: L1 of gradient magnitudes, --grad-form reference)",
    "skip_lr_scale": "one learning rate for all weights (paper and code)",
}

RECIPES: dict[str, dict[str, Recipe]] = {
    "prior": {
        "paper-gopro": Recipe("paper-gopro", "MMP-Net as in the paper (GOPRO raw frames, 7-11/7-13 windows)",
                              **_PRIOR_PAPER),
        "paper-bsd": Recipe("paper-bsd", "the paper trains one MMP-Net (on GOPRO raw frames) and uses it for BSD "
                                         "too: same values as paper-gopro", **_PRIOR_PAPER),
        "cpu": Recipe("cpu", "best MMP-Net in <= 15 minutes on 2 CPU cores (measured, docs/training.md)",
                      CPU_RECIPES["prior"], {k: _CPU_SOURCE for k in CPU_RECIPES["prior"]}),
    },
    "deblur": {
        "paper-gopro": Recipe(
            "paper-gopro", "MMP-RNN A9B10C18 on GOPRO (Table 2's best)",
            {"preset": "A9B10C18F8", "epochs": 1000, **_DEBLUR_COMMON_VALUES},
            {"preset": "paper Table 2 / Table 4 (A9B10C18F8); the authors' GOPRO main.py: n_a 9, n_b 10, C 18",
             "epochs": _D + ": 1,000 epochs for GOPRO", **_DEBLUR_COMMON_SOURCES}),
        "paper-bsd": Recipe(
            "paper-bsd", "MMP-RNN A8B9C18 on BSD 2ms-16ms (Table 3)",
            {"preset": "A8B9C18F8", "epochs": 500, **_DEBLUR_COMMON_VALUES},
            {"preset": "paper Table 3 / Table 4: A8B9C18F8 on BSD",
             "epochs": _D + ": 500 epochs for BSD (also the authors' para/parameter.py default end_epoch)",
             **_DEBLUR_COMMON_SOURCES}),
        "cpu": Recipe("cpu", "best MMP-RNN in <= 15 minutes on 2 CPU cores (measured, docs/training.md)",
                      CPU_RECIPES["deblur"],
                      {k: _CPU_SOURCE for k in CPU_RECIPES["deblur"]}),
    },
}


def recipe_names(kind: str) -> list[str]:
    return list(RECIPES[kind])


# --------------------------------------------------------------------------------------------------- resolving
def config_fields(cls) -> list[dataclasses.Field]:
    """The dataclass fields of ``cls`` in declaration order."""
    return list(dataclasses.fields(cls))


def _check_value(cls, name: str, value):
    """Validate one value against its field's metadata; returns it (tuples from JSON lists become tuples)."""
    f = cls.__dataclass_fields__.get(name)
    if f is None:
        raise InputError(f"unknown {cls.kind} training setting {name!r}")
    if value is None:
        return None
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        raise InputError(f"{name}: {value!r} is not one of {', '.join(meta['choices'])}")
    if meta.get("positive") and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InputError(f"{name}: {value!r} must be a positive finite number")
    if "min" in meta and isinstance(value, (int, float)) and not value >= meta["min"]:
        raise InputError(f"{name}: {value!r} must be at least {meta['min']}")
    if meta.get("fraction") and not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise InputError(f"{name}: {value!r} must be a fraction from 0 up to (not including) 1")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{name}: {value!r} must be a finite number")
    return value


def step_fractions(text: str) -> list[float]:
    """'0.5,0.75' -> [0.5, 0.75]; InputError unless every fraction is in (0, 1)."""
    try:
        values = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise InputError(f"step_at {text!r}: give comma-separated fractions of the run such as 0.5,0.75") from None
    if not all(0 < v < 1 for v in values):
        raise InputError(f"step_at {text!r}: every fraction must lie strictly between 0 and 1")
    return sorted(values)


def load_config_file(path: str | Path, kind: str) -> dict:
    """Setting values from a run's config.json (only this task's fields); InputError naming the file otherwise."""
    path = Path(path)
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such configuration file") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a JSON configuration ({exc.__class__.__name__})") from None
    if not isinstance(saved, dict) or saved.get("kind") != kind:
        raise InputError(f"{path}: not a {kind} training configuration (kind {saved.get('kind')!r}); "
                         f"pass the config.json of a train-{kind} run")
    return _saved_settings(saved, kind)


def _saved_settings(saved: dict, kind: str) -> dict:
    """The settings of a saved config.json that a rerun or resume inherits (not the machine-bound ones: device,
    workers)."""
    fields = [f for f in dataclasses.fields(CONFIGS[kind]) if not f.metadata.get("runtime")]
    settings = {f.name: saved[f.name] for f in fields if f.name in saved}
    if "data_id" in saved:  # written by a run: a setting it lacks was added later, and the run had its default
        base = defaults(CONFIGS[kind])
        settings.update({f.name: base[f.name] for f in fields if f.name not in saved})
    return settings


def resolve(kind: str, recipe: str | None = None, saved: dict | None = None, explicit: dict | None = None):
    """The configuration of one run: defaults < recipe < ``saved`` (a config.json) < ``explicit`` options.

    ``steps`` and ``epochs`` are one setting: a layer that sets one clears the other from the layers below.
    Returns a validated ``PriorTrainConfig``/``DeblurTrainConfig``."""
    cls = CONFIGS[kind]
    layers = []
    if recipe is not None:
        if recipe not in RECIPES[kind]:
            raise InputError(f"unknown recipe {recipe!r} for train-{kind}: use one of {', '.join(recipe_names(kind))}"
                             " (list them with `mmp recipes`)")
        layers.append(dict(RECIPES[kind][recipe].values))
    if saved:
        layers.append(dict(saved))
    if explicit:
        layers.append({k: v for k, v in explicit.items()})
    if explicit and explicit.get("steps") is not None and explicit.get("epochs") is not None:
        raise InputError("give --steps or --epochs, not both")
    values: dict = {}
    for layer in layers:
        if "steps" in layer and layer["steps"] is not None:
            values.pop("epochs", None)
        if "epochs" in layer and layer["epochs"] is not None:
            values.pop("steps", None)
        values.update(layer)
    if values.get("steps") is not None and values.get("epochs") is not None:
        values.pop("epochs")  # a saved config may hold both: the steps were resolved from the epochs
    for name in list(values):
        values[name] = _check_value(cls, name, values[name])
    cfg = cls(**values)
    step_fractions(cfg.step_at)
    if cfg.steps is None and cfg.epochs is None:
        cfg.epochs = cfg.default_epochs()
    return cfg


def prepare(kind: str, out: str | Path | None = None, *, recipe: str | None = None,
            config_file: str | Path | None = None, resume: bool = False, explicit: dict | None = None):
    """The configuration of a run as the commands resolve it: ``config_file`` (``--config``), or with ``resume`` the
    run's own RUN/config.json (required), is the saved layer between the recipe and the explicit settings."""
    saved = None
    if config_file is not None:
        saved = load_config_file(config_file, kind)
    elif resume and out is not None:
        from .runs import read_run_config

        run = read_run_config(out)
        if run.get("kind") != kind:
            raise InputError(f"{Path(out) / 'config.json'}: a {run.get('kind')} run, not a {kind} run")
        saved = _saved_settings(run, kind)
    return resolve(kind, recipe, saved, explicit)


def to_dict(cfg: TrainConfig) -> dict:
    """Plain JSON-ready dict of every setting (``kind`` included)."""
    return {"kind": cfg.kind, **dataclasses.asdict(cfg)}


def defaults(cls) -> dict:
    """Every setting's default value: what a run recorded before that setting existed had in effect."""
    return {f.name: f.default for f in dataclasses.fields(cls)}


def resume_keys(cls) -> tuple[str, ...]:
    """Settings that must not change when a run is resumed."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("resume", True))
