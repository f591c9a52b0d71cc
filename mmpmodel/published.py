"""Import the authors' published checkpoints (sollynoay/MMP-RNN) as our own checkpoints.

Their network is ours apart from the names of its tensors, so importing is a rename: every tensor of their file is
mapped by a fixed, mechanical key map (:func:`their_key_to_ours`) onto :class:`~mmpmodel.mmprnn.MMPRNN`, shapes are
checked one by one, and anything that does not fit is refused with a one-line error naming the first tensor at
fault. Three facts of their code need more than a rename:

* **Variant.** Their top-level (GOPRO) copy applies a channel attention to the fused features; their BSD copy builds
  it but never calls it. Both save it, so the file cannot tell: the user says ``variant`` ("gopro" turns on
  ``fusion_attention``, "bsd" drops the unused tensors).
* **Colour order.** Their BSD model (prior included) was trained and tested on BGR frames (cv2 without a swap).
  Importing with ``variant="bsd"`` permutes the input channels of the first convolutions (5x5 head, 9x9 skip, the
  prior's 9x9 head) and the output channels of the last layers (decoder's 5x5 conv, skip), so our RGB pipeline gets
  exactly what theirs gave on the BGR-loaded frames.
* **Padding.** Their UNet floors at each max-pool and pads inside the upsampling; imported priors use
  ``MMPNet(padding="reference")`` so the output matches theirs at every frame size.

Their files are read with ``torch.load(weights_only=True)``: no pickled code is ever run.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from mmpdata.errors import FormatError, InputError

from .checkpoint import FORMAT, save_checkpoint
from .mmpnet import MMPNet
from .mmprnn import RADIUS, MMPRNN
from .presets import MMPRNNConfig
from .weights import sha256_file

log = logging.getLogger(__name__)

__all__ = ["VARIANTS", "PRIOR_PADDING", "their_key_to_ours", "read_published", "read_published_prior",
           "infer_config", "convert", "bgr_to_rgb", "import_published", "import_published_prior"]

#: The two copies of their code; the user says which one wrote the file.
VARIANTS = ("gopro", "bsd")
#: Imported priors reproduce their UNet's padding.
PRIOR_PADDING = "reference"
#: Clip length of their training (``para.frames`` in both main.py); only used if the model is fine-tuned.
TRAINING_FRAMES = 8
#: Where their code comes from, recorded in every imported checkpoint.
ORIGIN = "sollynoay/MMP-RNN"

#: Blocks named at the top of their model (``module.model.`` stripped) -> ours. Exactly one must match.
_TOP = (
    (r"^cell\.F_B0\.", "head."),
    (r"^cell\.MMAM1\.MMAM_conv0\.", "mmam.gamma.0."),
    (r"^cell\.MMAM1\.MMAM_conv1\.", "mmam.gamma.2."),
    (r"^cell\.F_B1\.", "down1."),
    (r"^cell\.F_B2\.", "down2."),
    (r"^cell\.F_R\.", "fem."),
    (r"^cell\.F_h\.", "to_state."),
    (r"^cell\.prior\.", "prior."),
    (r"^recons\.D_Net\.", "rm."),
    (r"^recons\.model\.", "decoder."),
    (r"^fusion\.fusion\.", "fuse."),
    (r"^fusion\.ca\.conv_du\.0\.", "fuse_attention.reduce."),
    (r"^fusion\.ca\.conv_du\.2\.", "fuse_attention.expand."),
    (r"^skip\.", "skip."),
)
#: Names inside blocks, applied after _TOP in this order (RDB-Net ends first, then RDB parts, then the UNet).
_INNER = (
    (r"^(fem|rm)\.conv1x1\.", r"\1.squeeze."),
    (r"^(fem|rm)\.conv3x3\.", r"\1.conv."),
    (r"\.RDBs\.(\d+)\.", r".blocks.\1."),
    (r"\.dense_layers\.", ".dense."),
    (r"\.conv1x1\.", ".fuse."),
    (r"\.down_sampling\.", ".down."),
    (r"^prior\.conv9x9\.", "prior.head."),
    (r"^prior\.inc\.double_conv\.", "prior.inc.body."),
    (r"^prior\.(down\d)\.maxpool_conv\.1\.double_conv\.", r"prior.\1.conv.body."),
    (r"^prior\.(up\d)\.conv\.double_conv\.", r"prior.\1.conv.body."),
    (r"^prior\.outc\.conv\.", "prior.tail."),
)
#: (our tensor, dimension) pairs that see the colour channels: inputs of the first convs, outputs of the last.
_COLOUR_DIMS = (("head.weight", 1), ("skip.weight", 1), ("prior.head.weight", 1),
                ("decoder.2.weight", 0), ("decoder.2.bias", 0), ("skip.weight", 0), ("skip.bias", 0))


def their_key_to_ours(key: str) -> str | None:
    """Their tensor name (prefixes ``module.``/``model.`` already stripped) -> ours, or None when it is not theirs."""
    for pattern, repl in _TOP:
        if re.match(pattern, key):
            key = re.sub(pattern, repl, key, count=1)
            break
    else:
        return None
    for pattern, repl in _INNER:
        key = re.sub(pattern, repl, key)
    return key


def _strip(key: str) -> str:
    """Drop the wrappers their training added: ``module.`` (DataParallel), then ``model.`` (their Model class)."""
    for prefix in ("module.", "model."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


def read_published(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors of one of their files with prefixes stripped, and the file's other fields (epoch, model name).

    Accepts what ``train/dp.py`` saves (a dict with ``state_dict``), a bare state_dict, and their MMP-Net file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or holding pickled objects
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{path}: cannot be read as a PyTorch checkpoint ({reason}); "
                          "pass the .pth.tar file their code saved, complete and unmodified") from None
    if not isinstance(payload, dict):
        raise FormatError(f"{path}: holds a {type(payload).__name__}, not a checkpoint dict; "
                          "pass the .pth.tar file their code saved")
    if payload.get("format") == FORMAT:
        raise FormatError(f"{path}: is already one of our checkpoints; use it directly (no import needed)")
    meta = {}
    state = payload
    if isinstance(payload.get("state_dict"), dict):
        state = payload["state_dict"]
        meta = {k: v for k, v in payload.items() if k in ("epoch", "model") and isinstance(v, (int, str))}
    tensors = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise FormatError(f"{path}: entry {key!r} is not a tensor: not a state_dict of their code "
                              "(expected a dict with 'state_dict', or a bare state_dict)")
        tensors[_strip(key)] = value
    if not tensors:
        raise FormatError(f"{path}: holds no tensors; pass the .pth.tar file their code saved")
    return tensors, meta


def _block_count(tensors: dict, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({m.group(1) for k in tensors if (m := pattern.match(k))})


def infer_config(tensors: dict[str, torch.Tensor], variant: str, source: str = "checkpoint") -> MMPRNNConfig:
    """n_a, n_b, n_c from tensor shapes; refuses anything but their MMP-RNN fusing 2 past + 2 future frames."""
    head = tensors.get("cell.F_B0.weight")
    if head is None or head.dim() != 4:
        first = next(iter(tensors))
        hint = " (an MMP-Net file: use --prior-only)" if "conv9x9.weight" in tensors else ""
        raise FormatError(f"{source}: no cell.F_B0.weight, so not an MMP-RNN checkpoint of their code "
                          f"(first tensor: {first}){hint}")
    n_c = int(head.shape[0])
    n_a, n_b = _block_count(tensors, "cell.F_R.RDBs."), _block_count(tensors, "recons.D_Net.RDBs.")
    if n_a == 0 or n_b == 0:
        raise FormatError(f"{source}: no cell.F_R.RDBs.* or recons.D_Net.RDBs.* tensors: not their MMP-RNN")
    fusion = tensors.get("fusion.fusion.weight")
    if fusion is None or fusion.dim() != 4:
        raise FormatError(f"{source}: no fusion.fusion.weight (1x1 fusion conv): not their MMP-RNN "
                          "(ESTRNN-style attention fusion is not supported)")
    width = 5 * n_c
    frames = int(fusion.shape[1]) / width
    if frames != 2 * RADIUS + 1:
        raise FormatError(f"{source}: fusion.fusion.weight takes {int(fusion.shape[1])} channels = {frames:g} frames "
                          f"of {width}; only 2 past + 2 future frames ({(2 * RADIUS + 1) * width} channels) "
                          "are supported")
    return MMPRNNConfig(n_a, n_b, n_c, TRAINING_FRAMES, fusion_attention=(variant == "gopro"))


def _reference_shapes(config: MMPRNNConfig) -> dict[str, tuple[torch.Size, torch.dtype]]:
    with torch.device("meta"):
        model = MMPRNN(config, MMPNet(padding=PRIOR_PADDING))
    return {k: (v.shape, v.dtype) for k, v in model.state_dict().items()}


def convert(tensors: dict[str, torch.Tensor], config: MMPRNNConfig, variant: str, source: str = "checkpoint",
            need_prior: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """Their tensors -> (our deblurring state_dict, our prior state_dict (may be empty when not needed), dropped).

    Every tensor must map onto a tensor of ``config`` with the same shape, and every tensor of ours must be filled
    (the prior's only when ``need_prior``); otherwise FormatError naming the first one at fault."""
    reference = _reference_shapes(config)
    mapped, dropped = {}, []
    for key, value in tensors.items():
        if variant == "bsd" and key.startswith("fusion.ca."):
            dropped.append(key)  # built but never called by their BSD copy
            continue
        ours = their_key_to_ours(key)
        if ours is None or ours not in reference:
            raise FormatError(f"{source}: unknown tensor {key!r} (not part of their MMP-RNN); "
                              f"{config.name} has no place for it")
        shape, dtype = reference[ours]
        if tuple(value.shape) != tuple(shape):
            raise FormatError(f"{source}: tensor {key!r} has shape {tuple(value.shape)}, but {ours} of "
                              f"{config.name} (inferred from the shapes) needs {tuple(shape)}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise FormatError(f"{source}: tensor {key!r} holds NaN or infinite values; the file is damaged")
        mapped[ours] = value.detach().to(dtype).clone()
    for ours in reference:
        if ours not in mapped and (need_prior or not ours.startswith("prior.")):
            if ours.startswith("prior."):
                raise FormatError(f"{source}: holds no prior (cell.prior.*); pass --prior-from with their "
                                  "MMP-Net file (model_best.pth.tar)")
            what = "fusion.ca (GOPRO channel attention); import with --variant bsd" \
                if ours.startswith("fuse_attention.") else f"the tensor that becomes {ours}"
            raise FormatError(f"{source}: lacks {what}; not a complete MMP-RNN checkpoint of their code")
    deblur = {k: v for k, v in mapped.items() if not k.startswith("prior.")}
    prior = {k[len("prior."):]: v for k, v in mapped.items() if k.startswith("prior.")}
    return deblur, prior, dropped


def read_published_prior(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """Our MMP-Net state_dict from their MMP-Net file (UNet keys) or from the prior inside their MMP-RNN file;
    returns (state_dict, what it was taken from)."""
    tensors, _ = read_published(path)
    if any(k.startswith("cell.prior.") for k in tensors):
        named = {k: v for k, v in tensors.items() if k.startswith("cell.prior.")}
        origin = "cell.prior.* of an MMP-RNN checkpoint"
    elif "conv9x9.weight" in tensors:
        named = {"cell.prior." + k: v for k, v in tensors.items()}
        origin = "MMP-Net (UNet) file"
    else:
        raise FormatError(f"{path}: neither their MMP-Net file (conv9x9.weight ...) nor an MMP-RNN checkpoint "
                          f"with its prior (cell.prior.*); first tensor: {next(iter(tensors))}")
    with torch.device("meta"):
        reference = {k: (v.shape, v.dtype) for k, v in MMPNet(padding=PRIOR_PADDING).state_dict().items()}
    state = {}
    for key, value in named.items():
        shown = key if origin.startswith("cell") else key[len("cell.prior."):]
        ours = their_key_to_ours(key)
        ours = ours[len("prior."):] if ours is not None else None
        if ours not in reference:
            raise FormatError(f"{path}: unknown MMP-Net tensor {shown!r}; not their UNet prior")
        shape, dtype = reference[ours]
        if tuple(value.shape) != tuple(shape):
            raise FormatError(f"{path}: MMP-Net tensor {shown!r} has shape {tuple(value.shape)}, "
                              f"{ours} needs {tuple(shape)}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise FormatError(f"{path}: tensor {shown!r} holds NaN or infinite values; the file is damaged")
        state[ours] = value.detach().to(dtype).clone()
    missing = [k for k in reference if k not in state]
    if missing:
        raise FormatError(f"{path}: MMP-Net weights incomplete (no tensor for {missing[0]}); pass the whole file")
    return state, origin


def bgr_to_rgb(deblur: dict[str, torch.Tensor], prior: dict[str, torch.Tensor]) -> None:
    """In place: a network trained on BGR frames becomes one that does the same to RGB frames (colour dims of the
    first and last layers reversed, see _COLOUR_DIMS)."""
    flip = torch.tensor([2, 1, 0])
    for name, dim in _COLOUR_DIMS:
        table, key = (prior, name[len("prior."):]) if name.startswith("prior.") else (deblur, name)
        if key in table:
            table[key] = table[key].index_select(dim, flip).contiguous()


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}: use gopro (their top-level code, RGB, fusion attention) "
                         "or bsd (their BSD copy, BGR frames, no fusion attention)")


def _check_output(out: Path, *inputs: Path | None) -> None:
    for source in inputs:
        if source is not None and out.resolve() == Path(source).resolve():
            raise InputError(f"{out}: is the file being imported; write the checkpoint under another name")
    if out.is_dir():
        raise InputError(f"{out}: is a folder; --out takes a checkpoint file name such as gopro.pt")


def _provenance(path: Path, variant: str, meta: dict | None = None) -> dict:
    info = {"origin": ORIGIN, "source": path.name, "sha256": sha256_file(path), "variant": variant,
            "colour_order": "bgr (channels permuted to rgb on import)" if variant == "bsd" else "rgb"}
    if meta:
        info.update({f"source_{k}": v for k, v in meta.items()})
    return info


def import_published(src: str | Path, out: str | Path, variant: str, prior_from: str | Path | None = None) -> dict:
    """Their MMP-RNN checkpoint ``src`` -> our deblurring checkpoint ``out`` (prior included); returns a summary.

    The prior comes from ``cell.prior.*`` of ``src`` (their training drifted its BatchNorm statistics away from the
    MMP-Net file, so that is the prior the deblurring weights were trained with) unless ``prior_from`` names their
    MMP-Net file or another of their MMP-RNN checkpoints."""
    _check_variant(variant)
    src, out = Path(src), Path(out)
    _check_output(out, src, prior_from)
    tensors, meta = read_published(src)
    config = infer_config(tensors, variant, str(src))
    deblur, prior, dropped = convert(tensors, config, variant, str(src), need_prior=prior_from is None)
    prior_info = {"prior_source": f"{src.name} (cell.prior.*)"}
    if prior_from is not None:
        prior, origin = read_published_prior(prior_from)
        prior_info = {"prior_source": f"{Path(prior_from).name} ({origin})", "prior_sha256": sha256_file(prior_from)}
    if variant == "bsd":
        bgr_to_rgb(deblur, prior)
    # Load into the network once: whatever reaches the file is known to build and run.
    model = MMPRNN(config, MMPNet(padding=PRIOR_PADDING))
    model.load_deblur_state_dict(deblur)
    model.prior.load_state_dict(prior)
    provenance = {**_provenance(src, variant, meta), **prior_info, "tensors": len(tensors), "dropped": dropped}
    ck_config = {"kind": "deblur", "preset": config.name, "model": config.to_dict(),
                 "prior_config": model.prior.config_dict(), "imported": provenance}
    save_checkpoint(out, kind="deblur", config=ck_config, model=model.deblur_state_dict(),
                    prior=model.prior.state_dict(), extra={"imported": provenance})
    log.info("imported %s (%s, %d tensors) as %s -> %s", src, variant, len(tensors), config.name, out)
    return {"out": str(out), "kind": "deblur", "preset": config.name, "variant": variant,
            "tensors": len(tensors), "dropped": len(dropped), **prior_info, "sha256": provenance["sha256"]}


def import_published_prior(src: str | Path, out: str | Path, variant: str) -> dict:
    """Their MMP-Net file (or the prior inside their MMP-RNN checkpoint) -> our prior checkpoint ``out``.

    ``variant="bsd"`` permutes the input channels for a prior that was fed BGR frames (the one inside their BSD
    checkpoint); their MMP-Net file itself was trained on RGB (PIL), so import it with ``gopro``."""
    _check_variant(variant)
    src, out = Path(src), Path(out)
    _check_output(out, src)
    state, origin = read_published_prior(src)
    if variant == "bsd":
        bgr_to_rgb({}, state)
    net = MMPNet(padding=PRIOR_PADDING)
    net.load_state_dict(state)
    provenance = {**_provenance(src, variant), "prior_source": origin}
    config = {"kind": "prior", **net.config_dict(), "imported": provenance}
    save_checkpoint(out, kind="prior", config=config, model=net.state_dict(), extra={"imported": provenance})
    log.info("imported the MMP-Net of %s (%s) -> %s", src, origin, out)
    return {"out": str(out), "kind": "prior", "variant": variant, "prior_source": origin,
            "tensors": len(state), "sha256": provenance["sha256"]}
