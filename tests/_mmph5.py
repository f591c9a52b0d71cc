"""Tiny mmp-h5 files written directly with h5py from DESIGN.md's format v1 (independent of our writer).

Pixel values encode where they came from: blur channel 0 = row, channel 1 = column, channel 2 = frame index;
sharp is the same with channel 2 = frame index + 100; mmp = row / 16 (so values above 1 exist and must be clipped).
"""
import json
from pathlib import Path

import h5py
import numpy as np

#: Root attributes of every test index and shard (a valid mmp-h5 v1 header).
ROOT_ATTRS = {"format": "mmp-h5", "format_version": 1, "K": 15.0, "crf": "gamma2.2",
              "flow": json.dumps({"estimator": "test", "weights": "none", "iterations": 0}),
              "frames": np.array([7, 7]), "stride": 7, "seed": 0, "mmpdata_version": "test"}


def coded_frames(t: int, h: int, w: int, offset: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[..., 0] = y
    frames[..., 1] = x
    frames[..., 2] = (np.arange(t) + offset)[:, None, None]
    return frames


def write_mmp_h5(path, sequences: dict, with_mmp: bool = True) -> Path:
    """sequences: name -> (T, H, W, split or None). Index + one shard per sequence via external links."""
    path = Path(path)
    shards = path.with_suffix(".shards")
    shards.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as index:
        index.attrs.update(ROOT_ATTRS)
        grp = index.create_group("sequences")
        for name, (t, h, w, split) in sequences.items():
            shard = shards / f"{name}.h5"
            with h5py.File(shard, "w") as f:
                f.attrs.update(ROOT_ATTRS)
                f.attrs["complete"] = True
                if split is not None:
                    f.attrs["split"] = split
                f["blur"] = coded_frames(t, h, w)
                f["sharp"] = coded_frames(t, h, w, offset=100)
                if with_mmp:
                    y = np.mgrid[0:h, 0:w][0]
                    f["mmp"] = np.broadcast_to((y / 16.0).astype(np.float16), (t, h, w)).copy()
                    f["window"] = np.stack([np.arange(t) * 7, np.arange(t) * 7 + 6], 1).astype(np.int32)
            grp[name] = h5py.ExternalLink(f"{path.stem}.shards/{name}.h5", "/")
    return path


def random_checkpoints(root, preset: str = "A1B1C4F5"):
    """A randomly initialised MMP-Net and MMP-RNN saved as our checkpoints: (prior.pt path, deblur.pt path, the
    MMP-RNN in eval mode). Imports are local so data-only tests stay light."""
    from mmpmodel.checkpoint import save_checkpoint
    from mmpmodel.mmpnet import MMPNet
    from mmpmodel.mmprnn import MMPRNN

    root = Path(root)
    prior = MMPNet().eval()
    prior_ck = save_checkpoint(root / "prior.pt", kind="prior", config={"width": 16}, model=prior.state_dict())
    model = MMPRNN(preset, prior).eval()
    cfg = {"preset": model.config.name, "model": model.config.to_dict(), "prior_config": {"width": 16}}
    deblur_ck = save_checkpoint(root / "deblur.pt", kind="deblur", config=cfg, model=model.deblur_state_dict(),
                                prior=prior.state_dict())
    return prior_ck, deblur_ck, model


def write_learnable_h5(path, names=("s0", "s1", "s2", "s3"), t: int = 6, size=(40, 40), seed: int = 0) -> Path:
    """Random smooth colour images whose 'MMP' is a fixed per-pixel function of the image (red channel / 255 / 2),
    so a network can learn it in a few dozen steps; sharp = blur shifted by one grey level."""
    import cv2

    path = Path(path)
    shards = path.with_suffix(".shards")
    shards.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    with h5py.File(path, "w") as index:
        index.attrs.update(ROOT_ATTRS)
        grp = index.create_group("sequences")
        for name in names:
            small = rng.integers(0, 256, (t, h // 4, w // 4, 3)).astype(np.uint8)
            blur = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in small])
            with h5py.File(shards / f"{name}.h5", "w") as f:
                f.attrs.update(ROOT_ATTRS)
                f.attrs["complete"] = True
                f["blur"] = blur
                f["sharp"] = np.clip(blur.astype(int) + 1, 0, 255).astype(np.uint8)
                f["mmp"] = (blur[..., 0] / 255.0 / 2).astype(np.float16)
                f["window"] = np.stack([np.arange(t) * 7, np.arange(t) * 7 + 6], 1).astype(np.int32)
            grp[name] = h5py.ExternalLink(f"{path.stem}.shards/{name}.h5", "/")
    return path
