"""Command: ``mmp sample-footage`` renders test footage with exact motion ground truth."""
from __future__ import annotations

import click

from cli.main import main
from mmpdata.footage import DEFAULT_IMAGES, PHOTOS, SHUTTER, parse_motion, parse_size, render_sample_footage


@main.command("sample-footage")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--sequences", default=3, show_default=True, type=int, help="Number of sequences.")
@click.option("--frames", default=40, show_default=True, type=int, help="Frames per sequence.")
@click.option("--size", default="320x192", show_default=True, help="Frame size WIDTHxHEIGHT.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the camera and sprite paths.")
@click.option("--split/--no-split", default=True, show_default=True,
              help="Put sequences in train/ and test/ (GOPRO_Large_all layout) or directly in OUT_DIR.")
@click.option("--images", default=",".join(DEFAULT_IMAGES), show_default=True,
              help="Comma-separated photographs, one per sequence (cycled): scikit-image names or image file paths. "
                   f"Available: {', '.join(PHOTOS)}.")
@click.option("--foreground/--no-foreground", default=True, show_default=True,
              help="Slide a sprite cut from the next photograph over each sequence.")
@click.option("--shutter", default=SHUTTER, show_default=True, type=float,
              help="Exposure of each rendered frame as a fraction of the frame interval (its own motion blur, as "
                   "a 240 fps camera has); 0 renders instantaneous frames.")
@click.option("--motion", default="1", show_default=True,
              help="Scale of the camera and sprite speeds; 1 gives GOPRO-like blur relative to the frame size "
                   "(speeds are defined for a 1280-px-wide frame and scaled to --size). A range LO-HI (e.g. "
                   "0.6-1.6) gives each sequence its own factor, drawn log-uniformly: a spread of blur levels.")
def sample_footage(out_dir, sequences, frames, size, seed, split, images, foreground, shutter, motion):
    """Render GOPRO-like sequence folders from photographs moved along known smooth camera paths.

    Beside each sequence folder SEQ, SEQ.motion.npz holds the exact per-pair flow magnitudes (fwd, bwd) and
    SEQ.motion.json the affine maps they come from.
    """
    names = tuple(n.strip() for n in images.split(",") if n.strip())
    paths = render_sample_footage(out_dir, sequences=sequences, frames=frames, size=parse_size(size), seed=seed,
                                  split=split, images=names, foreground=foreground,
                                  shutter=shutter, motion=parse_motion(motion))
    for path in paths:
        click.echo(str(path))
    click.echo(f"{len(paths)} sequences x {frames} frames ({size}) with motion ground truth in {out_dir}")
