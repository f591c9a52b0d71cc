"""Procedural sample footage with exact motion ground truth.

Why: every motion-magnitude claim (flow accuracy, eq. 2-3, the MMP stored in a dataset) needs footage whose true
per-pixel motion is known. We move real photographs (scikit-image's bundled ones, no network) along smooth affine
camera paths and, optionally, slide a soft-edged elliptical sprite cut from another photograph over them. Because
every frame is "photograph warped by a known affine map", the flow between any two frames is known in closed form.
The camera moves like a hand-held high-frame-rate camera (GOPRO): stop-and-go, nearly still for a while, then a fast
pan (up to ~14 px per frame of a 1280-px-wide frame, scaled to the rendered width), with a per-sequence top speed, so blur ranges from none to heavy within and across
sequences (see :func:`random_camera`).

Coordinates: pixel centres sit at integer positions, x = column, y = row (OpenCV's convention). A frame t shows the
background photograph through ``background[t]`` (2x3, photograph pixel -> frame pixel) and, where the sprite covers
it, the sprite photograph through ``sprite[t]`` (2x3, sprite-local -> frame pixel; sprite-local (0, 0) is the centre
of the ellipse with radii ``radii``) composed with ``sprite_source`` (2x3, sprite-local -> sprite photograph pixel).
The sprite is visible at frame pixel x when (q_x/r_x)^2 + (q_y/r_y)^2 <= 1 for q = sprite[t]^-1 x.

Ground truth of the adjacent pair (i, i+1):
  fwd[i](x) = |x' - x| at the pixels x of frame i, x' = A_{i+1} A_i^-1 x, A = the map of the layer visible at x in
  frame i (background or sprite); bwd[i] likewise from frame i+1 to frame i at the pixels of frame i+1.

Layout written by :func:`render_sample_footage` (``--split``; without it the split folders are left out)::

    OUT_DIR/train/GOPR9001_11_00/000000.png ... 000039.png   frames only, RGB PNG, numbered from 0
    OUT_DIR/train/GOPR9001_11_00.motion.json                  the affine maps and settings (truth is recomputable)
    OUT_DIR/train/GOPR9001_11_00.motion.npz                   fwd, bwd: float32 (L-1, H, W) flow magnitudes (px)
    OUT_DIR/test/GOPR9003_11_00/...

Rendering: each frame is drawn on a 2x supersampled canvas with bicubic interpolation and area-downsampled; the
photograph is scaled (and the camera path checked) so the view never leaves it, so no frame has empty borders.
With ``shutter`` > 0 a frame also carries its own motion blur (sub-exposures around its pose, see
:func:`render_frames`); the maps and flows above stay those of the frames' centre poses.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from mmpdata.crf import get_crf
from mmpdata.errors import InputError, SettingsMismatch

log = logging.getLogger(__name__)

FORMAT = "mmp-sample-footage"
FORMAT_VERSION = 1
#: textured photographs (a mostly black one such as hubble_deep_field shows almost no blur to learn from); with
#: ``--split`` the first two thirds of the sequences (the training ones) use the first photographs
DEFAULT_IMAGES = ("astronaut", "chelsea", "motorcycle", "immunohistochemistry", "camera", "brick")
#: photographs the default sample set never uses; tests render "unseen" footage from these
UNSEEN_IMAGES = ("coffee", "rocket")
MIN_SIZE = 32
#: file types --images accepts besides the scikit-image names
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_MARGIN = 3.0  # photograph pixels kept free around the view (bicubic support)


# --------------------------------------------------------------------------------------------------- photographs
def _skimage_photo(name: str) -> np.ndarray:
    from skimage import data

    if name == "motorcycle":
        img = data.stereo_motorcycle()[0]
    else:
        img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3]).astype(np.uint8)


PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "hubble_deep_field", "immunohistochemistry",
          "retina", "camera", "brick", "grass", "gravel", "moon", "coins")


def _is_image_file(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph by name, or any image file by path, as uint8 RGB (grey repeated into RGB);
    InputError for anything else. Files let users train on their own photographs (more content than 14)."""
    if name in PHOTOS:
        return _skimage_photo(name)
    if _is_image_file(name):
        img = cv2.imread(name, cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{name}: not a readable image; name a PNG/JPEG file or one of {', '.join(PHOTOS)}")
        if min(img.shape[:2]) < 2 * MIN_SIZE:
            raise InputError(f"{name}: {img.shape[1]}x{img.shape[0]} is too small to move a view over; "
                             f"use a photograph of at least {2 * MIN_SIZE} px per side")
        return np.ascontiguousarray(img[:, :, ::-1])
    raise InputError(f"unknown photograph {name!r}; choose from {', '.join(PHOTOS)} or give an image file path")


# --------------------------------------------------------------------------------------------------- affine maths
def _h(m: np.ndarray) -> np.ndarray:
    """2x3 affine -> 3x3 homogeneous (float64)."""
    out = np.eye(3)
    out[:2] = m
    return out


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 / 3x3 affine to points (..., 2)."""
    m = np.asarray(m, np.float64)
    return pts @ m[:2, :2].T + m[:2, 2]


def _grid(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([xs, ys], axis=-1)


@dataclass
class Motion:
    """The exact geometry of one rendered sequence; flows and visibility are computed from it in closed form."""

    size: tuple[int, int]                  # (W, H) of the frames
    background: np.ndarray                 # (L, 2, 3) photograph pixel -> frame pixel
    sprite: np.ndarray | None = None       # (L, 2, 3) sprite-local -> frame pixel
    radii: tuple[float, float] | None = None

    @property
    def num_frames(self) -> int:
        return len(self.background)

    def visible(self, t: int, pts: np.ndarray | None = None) -> np.ndarray:
        """Boolean (H, W) (or points' shape) mask: where frame ``t`` shows the sprite."""
        pts = _grid(self.size) if pts is None else pts
        if self.sprite is None:
            return np.zeros(pts.shape[:-1], bool)
        q = _apply(np.linalg.inv(_h(self.sprite[t])), pts)
        rx, ry = self.radii
        return (q[..., 0] / rx) ** 2 + (q[..., 1] / ry) ** 2 <= 1.0

    def flow(self, src: int, dst: int) -> np.ndarray:
        """True flow from frame ``src`` to frame ``dst`` at the pixels of frame ``src``: float32 (H, W, 2) = (dx, dy)."""
        pts = _grid(self.size)
        moved = _apply(_h(self.background[dst]) @ np.linalg.inv(_h(self.background[src])), pts)
        if self.sprite is not None:
            vis = self.visible(src, pts)
            on_sprite = _apply(_h(self.sprite[dst]) @ np.linalg.inv(_h(self.sprite[src])), pts)
            moved[vis] = on_sprite[vis]
        return (moved - pts).astype(np.float32)

    def magnitudes(self) -> tuple[np.ndarray, np.ndarray]:
        """(fwd, bwd), float32 (L-1, H, W): |flow i->i+1| on frame i and |flow i+1->i| on frame i+1."""
        n = self.num_frames - 1
        w, h = self.size
        fwd = np.empty((n, h, w), np.float32)
        bwd = np.empty((n, h, w), np.float32)
        for i in range(n):
            fwd[i] = np.linalg.norm(self.flow(i, i + 1), axis=-1)
            bwd[i] = np.linalg.norm(self.flow(i + 1, i), axis=-1)
        return fwd, bwd


# --------------------------------------------------------------------------------------------------- camera paths
def _camera(t: np.ndarray, centre: np.ndarray, d: np.ndarray, theta: np.ndarray, zoom: np.ndarray) -> np.ndarray:
    """(L, 3, 3) maps reference -> frame: x = c + z R(theta) (x_ref - c - d)."""
    out = np.zeros((len(t), 3, 3))
    c, s = np.cos(theta), np.sin(theta)
    out[:, 0, 0], out[:, 0, 1] = zoom * c, -zoom * s
    out[:, 1, 0], out[:, 1, 1] = zoom * s, zoom * c
    shift = -(centre[None] + d)
    out[:, :2, 2] = np.einsum("lij,lj->li", out[:, :2, :2], shift) + centre
    out[:, 2, 2] = 1.0
    return out


def _wave(rng: np.random.Generator, t: np.ndarray, periods: Sequence[tuple[float, float]],
          shares: Sequence[float]) -> np.ndarray:
    """A smooth signal in about [-1, 1]: a few sinusoids with random periods and phases."""
    out = np.zeros_like(t, dtype=np.float64)
    for (lo, hi), share in zip(periods, shares):
        out += share * np.sin(2 * np.pi / rng.uniform(lo, hi) * t + rng.uniform(0, 2 * np.pi))
    return out


def speed_envelope(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Stop-and-go: a smooth random signal in [0, 1] that rests near 0 (the camera nearly stops) and near 1 (a fast
    pan) with smooth transitions, as hand-held footage does; a random offset makes some sequences mostly calm and
    others mostly busy. About a quarter of 7-frame windows are near-static, a quarter move at full speed."""
    g = _wave(rng, t, [(20, 50), (8, 16)], [0.75, 0.35]) + rng.uniform(-0.35, 0.35)
    return 0.5 * (1.0 + np.tanh(3.0 * g))


def _integrate(rate: np.ndarray) -> np.ndarray:
    """Positions whose step from frame i to i+1 is exactly rate[i] (position 0 at frame 0)."""
    out = np.zeros_like(rate)
    out[1:] = np.cumsum(rate[:-1], axis=0)
    return out


#: Every speed below is in pixels per frame of a 1280-px-wide frame (GOPRO's width) and scales with the rendered
#: width (``motion_scale``), so the blur relative to the frame is the same at any size. At these values, 7-13 frames
#: averaged give GOPRO-like blur: mean MMP about 0.04 at 192x128 (the speeds once used at 576 px, shrunk 3x).
REFERENCE_WIDTH = 1280
#: Per-sequence top pan speed (px per frame at full envelope), drawn log-uniformly: calm to fast hand-held pans.
PAN_SPEED = (4.44, 14.4)
#: Top rotation / zoom speed at the frame corners (px per frame at full envelope): spatial variation of the blur.
CORNER_SPEED = (0.89, 3.56)
#: Peak speed of the sprite's centre (px per frame).
SPRITE_SPEED = (3.33, 7.78)


def sequence_motion(seed: int, index: int, motion: float | tuple[float, float]) -> float:
    """The speed factor of sequence ``index``: ``motion`` itself, or for a range (lo, hi) a log-uniform draw that
    depends only on (seed, index). Why: footage with a spread of blur levels, so that what a network learns to
    expect can be set (docs/training.md, thirteenth session). The draw has its own random stream, so the camera
    path is the one a fixed factor would give, scaled."""
    if not isinstance(motion, (tuple, list)):
        return float(motion)
    lo, hi = motion
    return float(np.exp(np.random.default_rng([seed, index, 7]).uniform(np.log(lo), np.log(hi))))


def parse_motion(text: str) -> float | tuple[float, float]:
    """``--motion``: a factor ("1.5") or a range of factors ("0.6-1.6")."""
    parts = str(text).split("-") if "-" in str(text).lstrip("-") else [str(text)]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    return check_motion(values[0] if len(values) == 1 else tuple(values), shown=str(text))


def check_motion(motion, shown: str | None = None) -> float | tuple[float, float]:
    """``motion`` as render_sample_footage takes it (a positive factor, or (lo, hi) with 0 < lo <= hi), else
    InputError."""
    values = list(motion) if isinstance(motion, (tuple, list)) else [motion]
    if len(values) not in (1, 2) or not all(np.isfinite(v) and v > 0 for v in values) or values != sorted(values):
        shown = shown if shown is not None else "-".join(f"{v:g}" for v in values)
        raise InputError(f"--motion {shown}: give a positive number (1 = GOPRO-like blur for the frame size) or a "
                         "range LO-HI with 0 < LO <= HI, e.g. 0.6-1.6")
    return float(values[0]) if len(values) == 1 else (float(values[0]), float(values[1]))


def motion_scale(width: int, motion: float = 1.0) -> float:
    """Factor from the speeds above (1280-px frame) to px per frame at ``width``, times the user's ``motion``."""
    return motion * width / REFERENCE_WIDTH


def random_camera(rng: np.random.Generator, frames: int, size: tuple[int, int], motion: float = 1.0) -> np.ndarray:
    """Smooth hand-held camera motion (L, 3, 3), reference -> frame pixels: a pan whose speed follows a stop-and-go
    envelope (:func:`speed_envelope`, from ~0 up to a per-sequence top speed in :data:`PAN_SPEED`) along a slowly
    turning (sometimes reversing) heading, plus rotation and zoom about the frame centre whose rates follow the same
    envelope, so the blur varies over time (stops and pans), across sequences (the top speed) and over space.
    Speeds scale with the width (:func:`motion_scale`); ``motion`` multiplies them."""
    w, h = size
    k = motion_scale(w, motion)
    t = np.arange(frames, dtype=np.float64)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    radius = float(np.hypot(w, h) / 2)
    env = speed_envelope(rng, t)
    top = k * float(np.exp(rng.uniform(*np.log(PAN_SPEED))))
    heading = rng.uniform(0, 2 * np.pi) + rng.uniform(0.5, 2.5) * _wave(rng, t, [(40, 100)], [1.0])
    jitter = 0.1 * k * np.stack([_wave(rng, t, [(5, 11)], [1.0]), _wave(rng, t, [(5, 11)], [1.0])], axis=1)
    velocity = (top * env)[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1) + jitter
    d = _integrate(velocity)
    theta = _integrate(env * k * rng.uniform(*CORNER_SPEED) / radius * _wave(rng, t, [(25, 70)], [1.0]))
    zoom = np.exp(_integrate(env * k * rng.uniform(*CORNER_SPEED) / radius * _wave(rng, t, [(25, 70)], [1.0])))
    return _camera(t, centre, d, theta, zoom)


def fit_photo(camera: np.ndarray, size: tuple[int, int], photo_shape: tuple[int, int], rng: np.random.Generator,
              min_scale: float = 0.8) -> np.ndarray:
    """(L, 2, 3) photograph -> frame maps: ``camera`` after a scale b and placement chosen so that every frame's
    view (plus a bicubic margin) stays inside the photograph; b grows (the photograph is upscaled) when needed."""
    w, h = size
    ph, pw = photo_shape
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    corners = np.array([[-1.0, -1.0], [w, -1.0], [-1.0, h], [w, h]])
    ref = np.concatenate([_apply(np.linalg.inv(m), corners) for m in camera]) - c  # view corners, reference px
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    room = np.array([pw - 1 - 2 * _MARGIN, ph - 1 - 2 * _MARGIN])
    b = max(float(np.max((hi - lo) / room)) * 1.001, min_scale)
    # reference point r -> photograph s = s_c + r / b; keep s_c + lo/b >= margin and s_c + hi/b <= size - 1 - margin
    s_lo = _MARGIN - lo / b
    s_hi = np.array([pw - 1, ph - 1]) - _MARGIN - hi / b
    s_c = s_lo + rng.uniform(0, 1, 2) * np.maximum(s_hi - s_lo, 0)
    place = np.array([[b, 0, c[0] - b * s_c[0]], [0, b, c[1] - b * s_c[1]], [0, 0, 1.0]])  # photo -> reference
    return np.stack([(m @ place)[:2] for m in camera])


def random_sprite(rng: np.random.Generator, frames: int, size: tuple[int, int],
                  motion: float = 1.0) -> tuple[np.ndarray, tuple[float, float]]:
    """A translating elliptical sprite: (L, 2, 3) sprite-local -> frame maps and the radii (r_x, r_y) in px.
    The centre follows a Lissajous path that stays inside the frame, peak speed :data:`SPRITE_SPEED`, travelled
    stop-and-go (its own :func:`speed_envelope`), so the sprite too is sometimes still and sometimes blurred."""
    w, h = size
    base = min(w, h)
    radii = (float(rng.uniform(0.22, 0.3) * base), float(rng.uniform(0.17, 0.24) * base))
    t = np.arange(frames, dtype=np.float64)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    amp = np.maximum(centre - np.array(radii) * 0.6, 1.0)
    angle = rng.uniform(0, np.pi / 2)
    speed = motion_scale(w, motion) * rng.uniform(*SPRITE_SPEED) * np.array([np.cos(angle), np.sin(angle)])
    omega = np.maximum(speed / amp, 1e-3)
    phase = rng.uniform(0, 2 * np.pi, 2)
    progress = _integrate(speed_envelope(rng, t))  # "time" along the path: stands still where the envelope is ~0
    pos = centre + amp * np.sin(omega * progress[:, None] + phase)
    maps = np.zeros((frames, 2, 3))
    maps[:, 0, 0] = maps[:, 1, 1] = 1.0
    maps[:, :, 2] = pos
    return maps, radii


def sprite_source(rng: np.random.Generator, radii: tuple[float, float], photo: np.ndarray,
                  candidates: int = 4) -> np.ndarray:
    """2x3 sprite-local -> sprite-photograph map: an ellipse-sized cut-out (upscaled if the photo is small), the
    most textured of a few random places, so that the sprite's motion is observable (not a flat patch of sky)."""
    ph, pw = photo.shape[:2]
    rx, ry = radii
    k = max(1.0, 1.2 * rx / ((pw - 1) / 2 - _MARGIN), 1.2 * ry / ((ph - 1) / 2 - _MARGIN))  # sprite px per photo px
    half = np.array([rx, ry]) * 1.05 / k + _MARGIN
    lo, hi = half, np.array([pw - 1, ph - 1]) - half
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)
    texture = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    best, best_score = None, -1.0
    for _ in range(candidates):
        centre = lo + rng.uniform(0, 1, 2) * np.maximum(hi - lo, 0)
        (x0, y0), (x1, y1) = (centre - half).astype(int), (centre + half).astype(int) + 1
        score = float(texture[max(y0, 0):y1, max(x0, 0):x1].mean())
        if score > best_score:
            best, best_score = centre, score
    return np.array([[1 / k, 0, best[0]], [0, 1 / k, best[1]]])


# --------------------------------------------------------------------------------------------------- rendering
@dataclass
class Scene:
    """What :func:`render_frames` draws: the geometry plus the photographs."""

    motion: Motion
    photo: np.ndarray
    sprite_photo: np.ndarray | None = None
    sprite_source: np.ndarray | None = None  # 2x3 sprite-local -> sprite photograph


def _inverse_on_canvas(frame_to_src: np.ndarray, ss: int) -> np.ndarray:
    """2x3 map canvas pixel -> source pixel for a canvas ``ss`` times larger: frame x = (u - (ss-1)/2) / ss."""
    down = np.array([[1 / ss, 0, -(ss - 1) / (2 * ss)], [0, 1 / ss, -(ss - 1) / (2 * ss)], [0, 0, 1.0]])
    return (frame_to_src @ down)[:2]


#: Default fraction of the frame interval the simulated camera's shutter stays open (see render_frames): 0, the
#: instantaneous frames every measurement in docs/ was made with; ``--shutter 1`` gives GOPRO-like smooth blur.
SHUTTER = 0.0
#: Largest spacing (frame px) between the sub-exposures that make up one frame's own motion blur.
_SUB_STEP = 0.5
_MAX_SUBS = 32
_LIGHT = get_crf("gamma2.2")  # sub-exposures add up as light: averaged in linear space


def _pose(maps: np.ndarray, t: int, tau: float) -> np.ndarray:
    """The 2x3 map at time t + tau (|tau| <= 0.5), linear between frame t and its neighbour (extrapolated at ends)."""
    n = len(maps)
    if tau >= 0:
        nb = t + 1 if t + 1 < n else t - 1
        step = (maps[nb] - maps[t]) * (1 if nb > t else -1)
    else:
        nb = t - 1 if t > 0 else t + 1
        step = (maps[t] - maps[nb]) * (1 if nb < t else -1)
    return maps[t] + tau * step if n > 1 else maps[t]


def _exposures(m: Motion, t: int, shutter: float) -> np.ndarray:
    """Offsets tau in [-shutter/2, shutter/2] of the sub-exposures of frame t: enough that consecutive ones are at
    most _SUB_STEP px apart anywhere in the frame (one exposure, tau = 0, when the frame is still or shutter = 0)."""
    if shutter <= 0 or m.num_frames < 2:
        return np.zeros(1)
    w, h = m.size
    corners = np.array([[0.0, 0.0], [w - 1.0, 0.0], [0.0, h - 1.0], [w - 1.0, h - 1.0]])
    half = shutter / 2
    spread = 0.0
    maps = [m.background] + ([m.sprite] if m.sprite is not None else [])
    for maps_k in maps:
        a, b = _h(_pose(maps_k, t, -half)), _h(_pose(maps_k, t, half))
        ref = _apply(np.linalg.inv(_h(maps_k[t])), corners)  # layer points now at the frame corners
        spread = max(spread, float(np.max(np.linalg.norm(_apply(b, ref) - _apply(a, ref), axis=1))))
    k = int(min(_MAX_SUBS, max(1, np.ceil(spread / _SUB_STEP))))
    return np.zeros(1) if k == 1 else (np.arange(k) + 0.5) / k * shutter - half


def _render_pose(scene: Scene, bg: np.ndarray, sp: np.ndarray | None, ss: int, frame_pts) -> np.ndarray:
    """One instantaneous view (float32 canvas ss times the frame size): background, then the soft-edged sprite."""
    m = scene.motion
    w, h = m.size
    cw, ch = w * ss, h * ss
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    inv = _inverse_on_canvas(np.linalg.inv(_h(bg)), ss)
    canvas = cv2.warpAffine(scene.photo, inv, (cw, ch), flags=flags, borderMode=cv2.BORDER_REFLECT101)
    if sp is None:
        return canvas
    local = np.linalg.inv(_h(sp))
    inv_s = _inverse_on_canvas(_h(scene.sprite_source) @ local, ss)
    layer = cv2.warpAffine(scene.sprite_photo, inv_s, (cw, ch), flags=flags, borderMode=cv2.BORDER_REFLECT101)
    rx, ry = m.radii
    box = _apply(sp, np.array([[-rx, -ry], [rx, -ry], [-rx, ry], [rx, ry]]) * 1.1
                 + np.sign([[-1, -1], [1, -1], [-1, 1], [1, 1]]) * 2)
    (x0, y0), (x1, y1) = box.min(0) * ss - ss, box.max(0) * ss + 2 * ss  # canvas ROI holding the edge
    x0, y0 = max(int(x0), 0), max(int(y0), 0)
    x1, y1 = min(int(x1), cw), min(int(y1), ch)
    if x1 > x0 and y1 > y0:
        q = _apply(local, frame_pts[y0:y1, x0:x1])
        rho = np.sqrt((q[..., 0] / rx) ** 2 + (q[..., 1] / ry) ** 2)
        grad = np.sqrt((q[..., 0] / rx**2) ** 2 + (q[..., 1] / ry**2) ** 2) / np.maximum(rho, 1e-9)
        dist = (rho - 1.0) / np.maximum(grad, 1e-9)  # ~ signed distance to the edge, frame px
        alpha = np.clip(0.5 - dist, 0.0, 1.0).astype(np.float32)[..., None]
        roi = canvas[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1] = alpha * layer[y0:y1, x0:x1] + (1.0 - alpha) * roi
    return canvas


def render_frames(scene: Scene, supersample: int = 2, shutter: float = 0.0) -> list[np.ndarray]:
    """The frames of ``scene`` (uint8 RGB (H, W, 3)): bicubic warps on a supersampled canvas, area-downsampled.

    ``shutter`` > 0 gives each frame the motion blur of a real high-frame-rate camera whose shutter is open that
    fraction of the frame interval, centred on the frame's pose: sub-exposures along the (linearly interpolated)
    path, averaged in linear light. Why: averaging 7-13 instantaneous frames that move several pixels apart
    gives ghosted copies instead of a continuous smear; a camera (GOPRO at 240 fps) integrates light in between,
    so its averaged frames blur smoothly. The truth (maps, flows) stays that of the frames' centre poses.
    """
    m = scene.motion
    w, h = m.size
    ss = supersample
    scene = Scene(m, scene.photo.astype(np.float32),
                  None if scene.sprite_photo is None else scene.sprite_photo.astype(np.float32), scene.sprite_source)
    frame_pts = (_grid((w * ss, h * ss)) - (ss - 1) / 2) / ss if m.sprite is not None else None
    out = []
    for t in range(m.num_frames):
        taus = _exposures(m, t, shutter)
        if len(taus) == 1:
            canvas = _render_pose(scene, m.background[t], None if m.sprite is None else m.sprite[t], ss, frame_pts)
        else:
            acc = None
            for tau in taus:
                view = _render_pose(scene, _pose(m.background, t, tau),
                                    None if m.sprite is None else _pose(m.sprite, t, tau), ss, frame_pts)
                lin = _LIGHT.to_linear(view / 255.0)
                acc = lin if acc is None else acc + lin
            canvas = _LIGHT.from_linear(acc / len(taus)) * 255.0
        frame = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA) if ss > 1 else canvas
        out.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return out


def make_scene(rng: np.random.Generator, frames: int, size: tuple[int, int], image: str,
               sprite_image: str | None, motion: float = 1.0) -> tuple[Scene, dict]:
    """A random scene (camera path, optional sprite) over the named photographs, and its JSON description."""
    photo = load_photo(image)
    camera = random_camera(rng, frames, size, motion)
    background = fit_photo(camera, size, photo.shape[:2], rng)
    desc = {"image": image, "sprite_image": sprite_image}
    if sprite_image is None:
        return Scene(Motion(size, background), photo), desc
    sprite_photo = load_photo(sprite_image)
    sprite, radii = random_sprite(rng, frames, size, motion)
    source = sprite_source(rng, radii, sprite_photo)
    return Scene(Motion(size, background, sprite, radii), photo, sprite_photo, source), desc


# --------------------------------------------------------------------------------------------------- files
def parse_size(spec: str) -> tuple[int, int]:
    """'320x192' -> (320, 192); InputError for anything else or sizes below 32 px."""
    parts = str(spec).lower().replace("×", "x").split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"--size {spec!r}: expected WIDTHxHEIGHT in pixels, e.g. 320x192") from None
    if w < MIN_SIZE or h < MIN_SIZE:
        raise InputError(f"--size {spec!r}: width and height must be at least {MIN_SIZE} px, e.g. 320x192")
    return w, h


def sequence_name(index: int) -> str:
    """GOPRO_Large_all-like name of the ``index``-th sample sequence, e.g. GOPR9001_11_00."""
    return f"GOPR{9001 + index:04d}_11_00"


def _truth_paths(seq_dir: Path) -> tuple[Path, Path]:
    seq_dir = Path(seq_dir)
    return seq_dir.parent / f"{seq_dir.name}.motion.json", seq_dir.parent / f"{seq_dir.name}.motion.npz"


def _motion_json(name: str, scene: Scene, desc: dict, settings: dict) -> dict:
    m = scene.motion
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "sequence": name, "frames": m.num_frames,
        "size": list(m.size), "coordinates": "pixel centres at integers; x = column, y = row",
        "settings": settings,
        "background": {"image": desc["image"], "photo_to_frame": m.background.tolist()},
        "sprite": None if m.sprite is None else {
            "image": desc["sprite_image"], "radii": list(m.radii), "local_to_frame": m.sprite.tolist(),
            "local_to_photo": scene.sprite_source.tolist()},
        "render": {"supersample": 2, "interpolation": "bicubic, area downsampling",
                   "shutter": settings.get("shutter", 0.0),
                   **({"motion_factor": sequence_motion(settings["seed"], settings["index"], settings["motion"])}
                      if isinstance(settings["motion"], list) else {})},
    }


def load_motion(seq_dir: str | Path) -> Motion:
    """The geometry of a rendered sequence from ``<seq>.motion.json`` beside its folder (truth is recomputable)."""
    path, _ = _truth_paths(Path(seq_dir))
    try:
        meta = json.loads(path.read_text())
        sprite = meta.get("sprite")
        return Motion(tuple(meta["size"]), np.array(meta["background"]["photo_to_frame"], np.float64),
                      None if sprite is None else np.array(sprite["local_to_frame"], np.float64),
                      None if sprite is None else tuple(sprite["radii"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: cannot read the motion description ({exc!r}); render the footage again") from None


def load_motion_truth(seq_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair true flow magnitudes (px) of a rendered sequence: (fwd, bwd), float32 (L-1, H, W) each."""
    _, path = _truth_paths(Path(seq_dir))
    try:
        with np.load(path) as data:
            return data["fwd"].astype(np.float32), data["bwd"].astype(np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: no readable motion ground truth ({exc}); render the footage with "
                         "`mmp sample-footage`") from None


def _write_frame(path: Path, img: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", img[:, :, ::-1])
    if not ok:
        raise InputError(f"{path}: PNG encoding failed")
    buf.tofile(str(path))


def _write_sequence(folder: Path, name: str, scene: Scene, meta: dict, shutter: float) -> None:
    """Frames into a hidden temp folder and truth into temp files, renamed into place only when all is written."""
    frames = render_frames(scene, shutter=shutter)
    fwd, bwd = scene.motion.magnitudes()
    json_path, npz_path = _truth_paths(folder / name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=folder))
    try:
        seq_tmp = tmp / name
        seq_tmp.mkdir()
        for i, img in enumerate(frames):
            _write_frame(seq_tmp / f"{i:06d}.png", img)
        np.savez(tmp / "motion.npz", fwd=fwd, bwd=bwd)
        (tmp / "motion.json").write_text(json.dumps(meta))
        os.replace(seq_tmp, folder / name)
        os.replace(tmp / "motion.npz", npz_path)
        os.replace(tmp / "motion.json", json_path)  # written last: marks the sequence complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def render_sample_footage(out_dir: str | Path, sequences: int = 3, frames: int = 40,
                          size: tuple[int, int] = (320, 192), seed: int = 0, split: bool = True,
                          images: Sequence[str] | None = None, foreground: bool = True,
                          progress: bool | None = None, shutter: float = SHUTTER,
                          motion: float | tuple[float, float] = 1.0) -> list[Path]:
    """Render GOPRO_Large_all-like sequence folders with exact motion ground truth; returns the sequence folders.

    Sequence j shows ``images[j % len(images)]`` (default :data:`DEFAULT_IMAGES`) with, when ``foreground``, a
    sprite cut from the next image. Its random path depends only on (seed, j). With ``split`` the last
    max(1, n // 3) sequences go to ``test/`` and the rest to ``train/`` (one sequence: ``train/`` only).
    Speeds are GOPRO-like relative to the frame width (see :data:`PAN_SPEED`); ``motion`` scales them, or
    ``motion=(lo, hi)`` scales each sequence by its own factor drawn in that range (:func:`sequence_motion`).
    An existing complete sequence rendered with the same settings is kept; different settings raise
    SettingsMismatch.
    """
    images = tuple(DEFAULT_IMAGES if images is None else images)
    w, h = size
    if sequences < 1:
        raise InputError(f"--sequences {sequences}: need at least 1 sequence")
    if frames < 2:
        raise InputError(f"--frames {frames}: need at least 2 frames per sequence (one adjacent pair)")
    if w < MIN_SIZE or h < MIN_SIZE:
        raise InputError(f"--size {w}x{h}: width and height must be at least {MIN_SIZE} px, e.g. 320x192")
    if not 0.0 <= shutter <= 1.0:
        raise InputError(f"--shutter {shutter}: must lie in [0, 1] (fraction of the frame interval)")
    motion = check_motion(motion)
    if not images:
        raise InputError("no photographs given; name at least one of " + ", ".join(PHOTOS))
    for name in images:
        if name not in PHOTOS and not (_is_image_file(name) and Path(name).is_file()):
            raise InputError(f"unknown photograph {name!r}; choose from {', '.join(PHOTOS)} or give an image file "
                             "path (.png, .jpg, .webp)")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder; choose another output folder")
    n_test = 0 if (not split or sequences < 2) else max(1, sequences // 3)
    result = []
    for j in tqdm(range(sequences), desc="sample footage", unit="seq", disable=None if progress is None else not progress):
        name = sequence_name(j)
        folder = out_dir / (("test" if j >= sequences - n_test else "train") if split else "")
        image = images[j % len(images)]
        sprite_image = (images[(j + 1) % len(images)] if foreground else None)
        settings = {"seed": seed, "index": j, "frames": frames, "size": [w, h], "image": image,
                    "sprite_image": sprite_image, "motion": list(motion) if isinstance(motion, tuple) else motion}
        if shutter:  # absent when 0, so footage rendered before the option existed is still recognised
            settings["shutter"] = shutter
        json_path, npz_path = _truth_paths(folder / name)
        if json_path.exists() and (folder / name).is_dir() and npz_path.exists():
            old = json.loads(json_path.read_text()).get("settings")
            if old != settings:
                raise SettingsMismatch(f"{folder / name}: exists with other settings ({old}); "
                                       "choose an empty output folder or delete it")
            log.info("%s: already rendered with these settings, kept", folder / name)
            result.append(folder / name)
            continue
        if (folder / name).exists():
            raise SettingsMismatch(f"{folder / name}: exists but is not a complete sample sequence; "
                                   "choose an empty output folder or delete it")
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, j])
        scene, desc = make_scene(rng, frames, (w, h), image, sprite_image, sequence_motion(seed, j, motion))
        _write_sequence(folder, name, scene, _motion_json(name, scene, desc, settings), shutter)
        log.info("%s: %d frames %dx%d (%s%s)", folder / name, frames, w, h, image,
                 f" + sprite from {sprite_image}" if sprite_image else "")
        result.append(folder / name)
    return result
