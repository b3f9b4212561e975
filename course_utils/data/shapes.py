"""The built-in shapes dataset: the kit's offline stand-in for STL-10 and Flickr8k.

Every image holds one shape (the label) of one of ten classes in one of ten colours, at a random
size, rotation and position, over a background that is never plain: a soft two-colour gradient,
a low-frequency texture, pixel noise and, in some images, a thin distractor stroke. Shape is the
label; colour and background are nuisances, so a classifier has to look at the outline.

    data = generate_shapes(5000, image_size=72, seed=0)
    data.images      # uint8 (5000, 3, 72, 72)
    data.labels      # long (5000,): index into SHAPE_NAMES
    data.captions[0] # five sentences, e.g. "a small red star in the top left corner" (shape_captions.py)

Images are drawn with signed distance functions on the pixel grid (antialiased edges), in numpy,
vectorised over images. The result depends only on the arguments: the random draws come from
numpy's PCG64 bit stream (uniform doubles only), trigonometry is done once per image with
``math`` and rounded, and the per-pixel work uses only exactly-rounded operations, so the same
arguments give the same bytes on any machine. Results are cached under
``cache_dir("shapes")``; a damaged cache file is simply regenerated.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from typing import List

import numpy as np
import torch

from ..paths import cache_dir
from .loaders import TensorImageDataset

SHAPE_NAMES = ("circle", "square", "triangle", "pentagon", "hexagon", "star", "cross", "diamond", "crescent", "ring")

COLOUR_NAMES = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "white", "black")
COLOUR_RGB = np.array([
    (0.88, 0.16, 0.14),  # red
    (0.96, 0.56, 0.10),  # orange
    (0.95, 0.88, 0.18),  # yellow
    (0.22, 0.70, 0.24),  # green
    (0.18, 0.80, 0.86),  # cyan
    (0.16, 0.30, 0.88),  # blue
    (0.56, 0.22, 0.78),  # purple
    (0.96, 0.52, 0.76),  # pink
    (0.96, 0.96, 0.94),  # white
    (0.08, 0.08, 0.09),  # black
])

SIZE_NAMES = ("small", "medium", "large")

# Bump when the drawing changes, so that old cache files are not reused.
GENERATOR_VERSION = 1

DEFAULT_OPTIONS = {
    "min_size": 0.14,       # smallest shape radius, as a fraction of the image side
    "max_size": 0.34,       # largest shape radius, as a fraction of the image side
    "spread": 1.0,          # how far the centre may stray: 0 = image centre, 1 = anywhere the shape fits
    "rotation": 360.0,      # range of rotation angles in degrees, centred on upright (360 = any angle)
    "noise": 0.05,          # amplitude of the per-pixel noise (pixel values in [0, 1])
    "texture": 0.14,        # amplitude of the low-frequency background texture
    "distractor": 0.5,      # probability of a thin stroke of another colour behind the shape
    "colour_jitter": 0.06,  # per-channel jitter of the shape's colour
    "background": 1.0,      # strength of the two-colour gradient background: 1 = as drawn, 0 = plain black
    "colours": 10,          # the shape's colour is one of the first `colours` of COLOUR_NAMES (9: no black)
}
# Options added after the first release: they enter the cache key only when set to something else than their
# default, so that every earlier call keeps its cache file (and its images, which these defaults do not change).
_LATER_OPTIONS = ("background", "colours")

_CHUNK = 256  # images drawn at once; fixed so results never depend on memory


# --------------------------------------------------------------------------------------------
# Shape outlines: polygons in unit coordinates (radius ~1), or analytic distance functions.
# --------------------------------------------------------------------------------------------

def _regular(n: int, radius: float = 1.0, phase: float = 0.0) -> np.ndarray:
    angles = [phase + 2 * math.pi * k / n for k in range(n)]
    return np.array([(round(radius * math.sin(a), 9), round(-radius * math.cos(a), 9)) for a in angles])


def _star(points: int = 5, outer: float = 1.08, inner: float = 0.44) -> np.ndarray:
    verts = []
    for k in range(2 * points):
        r, a = (outer if k % 2 == 0 else inner), math.pi * k / points
        verts.append((round(r * math.sin(a), 9), round(-r * math.cos(a), 9)))
    return np.array(verts)


_ARM = 0.32
_POLYGONS = {
    "square": _regular(4, 1.0, math.pi / 4),
    "triangle": _regular(3, 1.12),
    "pentagon": _regular(5, 1.0),
    "hexagon": _regular(6, 1.0),
    "star": _star(),
    "cross": np.array([(-_ARM, -1), (_ARM, -1), (_ARM, -_ARM), (1, -_ARM), (1, _ARM), (_ARM, _ARM), (_ARM, 1),
                       (-_ARM, 1), (-_ARM, _ARM), (-1, _ARM), (-1, -_ARM), (-_ARM, -_ARM)], dtype=float),
    "diamond": np.array([(0.0, -1.12), (0.62, 0.0), (0.0, 1.12), (-0.62, 0.0)]),
}


def _polygon_sdf(px: np.ndarray, py: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Signed distance from points (px, py) to a closed polygon (negative inside).

    A vectorised form of the classic per-edge formula: the distance is the minimum over edges of
    the distance to the segment; the sign flips each time a horizontal ray crosses an edge.
    """
    verts = verts.astype(np.float32)
    dist2 = (px - verts[0, 0]) ** 2 + (py - verts[0, 1]) ** 2
    inside = np.zeros(px.shape, dtype=bool)
    n = len(verts)
    for i in range(n):
        (ax, ay), (bx, by) = verts[i], verts[i - 1]
        ex, ey = bx - ax, by - ay
        wx, wy = px - ax, py - ay
        t = np.clip((wx * ex + wy * ey) / np.float32(ex * ex + ey * ey), 0.0, 1.0)
        dx, dy = wx - ex * t, wy - ey * t
        np.minimum(dist2, dx * dx + dy * dy, out=dist2)
        c1, c2, c3 = py >= ay, py < by, ex * wy > ey * wx
        inside ^= (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
    dist = np.sqrt(dist2)
    return np.where(inside, -dist, dist)


def _shape_sdf(name: str, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Signed distance (unit coordinates) to shape ``name`` at points (px, py) (any shape)."""
    if name == "circle":
        return np.sqrt(px * px + py * py) - np.float32(1.0)
    if name == "ring":
        return np.abs(np.sqrt(px * px + py * py) - np.float32(0.78)) - np.float32(0.24)
    if name == "crescent":
        outer = np.sqrt(px * px + py * py) - np.float32(1.0)
        bite = np.sqrt((px - np.float32(0.5)) ** 2 + py * py) - np.float32(0.82)
        return np.maximum(outer, -bite)
    return _polygon_sdf(px, py, _POLYGONS[name])


# --------------------------------------------------------------------------------------------
# Random parameters: drawn once for all images from uniform doubles.
# --------------------------------------------------------------------------------------------

def _q(x: float) -> float:
    """Round a value computed with ``math`` so that 1-ulp libm differences cannot change it."""
    return round(x, 7)


def _draw_parameters(n: int, image_size: int, seed: int, opts: dict) -> dict:
    rng = np.random.Generator(np.random.PCG64(seed))
    u = rng.random((n, 24))  # (N, 24) uniform doubles; each column is one parameter
    s = float(image_size)
    n_classes, n_colours = len(SHAPE_NAMES), int(opts["colours"])
    labels = np.minimum((u[:, 0] * n_classes).astype(np.int64), n_classes - 1)  # (N,)
    colours = np.minimum((u[:, 1] * n_colours).astype(np.int64), n_colours - 1)  # (N,)
    radius = (opts["min_size"] + (opts["max_size"] - opts["min_size"]) * u[:, 2]) * s  # (N,) pixels
    cx = s / 2 + opts["spread"] * (s - 2 * radius) * (u[:, 3] - 0.5)  # (N,) shape centre, fully inside the image
    cy = s / 2 + opts["spread"] * (s - 2 * radius) * (u[:, 4] - 0.5)
    rotation = math.radians(opts["rotation"]) * (u[:, 5] - 0.5)  # (N,) radians
    cos_r = np.array([_q(math.cos(a)) for a in rotation])
    sin_r = np.array([_q(math.sin(a)) for a in rotation])
    fill = COLOUR_RGB[colours] + opts["colour_jitter"] * (2 * u[:, 6:9] - 1)  # (N, 3)
    shade = 0.25 * (2 * u[:, 9] - 1)  # (N,) strength of a light ramp across the shape

    # Background: two muted colours along a random direction, pushed away from the shape's colour.
    grey = u[:, 10:11]  # (N, 1)
    bg0 = 0.5 * (0.1 + 0.8 * u[:, 11:14]) + 0.5 * grey  # (N, 3)
    bg1 = 0.5 * (0.1 + 0.8 * u[:, 14:17]) + 0.5 * (1 - grey)
    too_close = np.abs((bg0 + bg1) / 2 - fill).max(axis=1) < 0.3  # (N,)
    bg0[too_close], bg1[too_close] = 1 - bg0[too_close], 1 - bg1[too_close]
    if opts["background"] != 1:  # fade the gradient towards black (0: a plain black background)
        bg0, bg1 = bg0 * opts["background"], bg1 * opts["background"]
    angle = 2 * math.pi * u[:, 17]
    grad = np.array([(_q(math.cos(a)), _q(math.sin(a))) for a in angle]).reshape(n, 2)  # (N, 2)

    # Distractor: a thin stroke with a random colour, behind the shape.
    has_distractor = u[:, 18] < opts["distractor"]
    d_start = np.stack([u[:, 19], u[:, 20]], axis=1) * s  # (N, 2)
    d_angle = 2 * math.pi * u[:, 21]
    d_len = (0.2 + 0.3 * u[:, 22]) * s
    d_dir = np.array([(_q(math.cos(a)), _q(math.sin(a))) for a in d_angle]).reshape(n, 2)
    d_end = d_start + d_dir * d_len[:, None]
    d_colour = (colours + 1 + (u[:, 23] * (n_colours - 1)).astype(np.int64)) % n_colours  # never the shape's colour
    return {
        "labels": labels, "colours": colours, "radius": radius, "cx": cx, "cy": cy, "rotation": rotation,
        "cos": cos_r, "sin": sin_r, "fill": np.clip(fill, 0, 1), "shade": shade, "bg0": bg0, "bg1": bg1,
        "grad": grad, "has_distractor": has_distractor, "d_start": d_start, "d_end": d_end,
        "d_colour": COLOUR_RGB[d_colour],
    }


# --------------------------------------------------------------------------------------------
# Drawing.
# --------------------------------------------------------------------------------------------

def _bilinear_upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """(B, g, g) -> (B, size, size) bilinear upsampling with elementwise operations only."""
    g = grid.shape[-1]
    pos = (np.arange(size, dtype=np.float32) + np.float32(0.5)) * np.float32((g - 1) / size)  # (size,)
    i0 = np.minimum(pos.astype(np.int64), g - 2)
    t = (pos - i0).astype(np.float32)  # (size,)
    rows = grid[:, i0, :] * (1 - t)[None, :, None] + grid[:, i0 + 1, :] * t[None, :, None]  # (B, size, g)
    return rows[:, :, i0] * (1 - t)[None, None, :] + rows[:, :, i0 + 1] * t[None, None, :]  # (B, size, size)


def _draw_chunk(p: dict, lo: int, hi: int, image_size: int, seed: int, opts: dict) -> np.ndarray:
    """Draw images lo..hi-1 as uint8 (B, 3, H, W)."""
    b, s = hi - lo, image_size
    f32 = np.float32
    q = {k: v[lo:hi] for k, v in p.items()}  # this chunk's parameters
    coords = np.arange(s, dtype=f32) + f32(0.5)  # pixel centres
    X, Y = coords[None, None, :], coords[None, :, None]  # (1, 1, W), (1, H, 1)
    rng = np.random.Generator(np.random.PCG64([seed, lo, 7]))  # per-chunk stream for textures and noise

    # Background: gradient between two colours, plus a tinted low-frequency texture.
    gx, gy = q["grad"][:, 0].astype(f32)[:, None, None], q["grad"][:, 1].astype(f32)[:, None, None]
    t = np.clip(f32(0.5) + ((X - f32(s / 2)) * gx + (Y - f32(s / 2)) * gy) / f32(s), 0, 1)  # (B, H, W)
    bg0, bg1 = q["bg0"].astype(f32)[:, :, None, None], q["bg1"].astype(f32)[:, :, None, None]  # (B, 3, 1, 1)
    img = (bg1 - bg0) * t[:, None]  # (B, 3, H, W)
    img += bg0
    texture = _bilinear_upsample((2 * rng.random((b, 6, 6)) - 1).astype(f32), s)  # (B, H, W)
    tint = (opts["texture"] * (0.6 + 0.4 * rng.random((b, 3)))).astype(f32)  # (B, 3)
    img += texture[:, None] * tint[:, :, None, None]

    # Distractor stroke: distance to a segment, about 2.5 px wide.
    has = np.nonzero(q["has_distractor"])[0]
    if len(has):
        a, e = q["d_start"][has].astype(f32), q["d_end"][has].astype(f32)  # (D, 2)
        ax, ay = a[:, 0, None, None], a[:, 1, None, None]
        ex, ey = (e[:, 0] - a[:, 0])[:, None, None], (e[:, 1] - a[:, 1])[:, None, None]
        wx, wy = X - ax, Y - ay  # (D, 1, W), (D, H, 1)
        h = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0, 1)  # (D, H, W)
        dist = np.sqrt((wx - ex * h) ** 2 + (wy - ey * h) ** 2)
        alpha = np.clip(f32(1.25) - dist, 0, 1)[:, None]  # (D, 1, H, W)
        colour = q["d_colour"][has].astype(f32)[:, :, None, None]  # (D, 3, 1, 1)
        img[has] += alpha * (colour - img[has])

    # The shape: local coordinates per pixel, signed distance, antialiased coverage.
    alpha = np.empty((b, s, s), dtype=f32)  # coverage of every pixel by the shape
    light = np.empty((b, s, s), dtype=f32)  # soft lighting ramp across the shape
    for k, name in enumerate(SHAPE_NAMES):
        idx = np.nonzero(q["labels"] == k)[0]
        if len(idx) == 0:
            continue
        r = q["radius"][idx].astype(f32)[:, None, None]  # (K, 1, 1)
        cx, cy = q["cx"][idx].astype(f32)[:, None, None], q["cy"][idx].astype(f32)[:, None, None]
        c, sn = q["cos"][idx].astype(f32)[:, None, None], q["sin"][idx].astype(f32)[:, None, None]
        dx, dy = X - cx, Y - cy  # (K, 1, W), (K, H, 1) in pixels
        px = (dx * c + dy * sn) / r  # (K, H, W) unit coordinates of the rotated shape
        py = (dy * c - dx * sn) / r
        sdf = _shape_sdf(name, px, py) * r  # (K, H, W) signed distance in pixels
        alpha[idx] = np.clip(f32(0.5) - sdf, 0, 1)
        light[idx] = f32(1) + q["shade"][idx].astype(f32)[:, None, None] * np.clip(py, -1, 1)
    fill = q["fill"].astype(f32)[:, :, None, None] * light[:, None]  # (B, 3, H, W)
    fill -= img
    fill *= alpha[:, None]
    img += fill  # img * (1 - alpha) + fill * alpha

    # Uniform pixel noise from raw random bytes, then quantise to 0..255.
    noise = np.frombuffer(rng.bytes(b * 3 * s * s), dtype=np.uint8).reshape(b, 3, s, s)  # (B, 3, H, W)
    img *= f32(255)
    img += noise.astype(f32) * f32(opts["noise"] * 2) + f32(0.5 - 255 * opts["noise"])  # +-noise*255, +0.5 rounding
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)  # truncation of non-negative values = floor


# --------------------------------------------------------------------------------------------
# Dataset.
# --------------------------------------------------------------------------------------------

class ShapesDataset(TensorImageDataset):
    """Generated shapes with labels and captions (see :func:`generate_shapes`).

    Attributes:
        images: uint8 (N, 3, H, W).
        labels: long (N,), the shape class (index into ``classes`` = ``SHAPE_NAMES``).
        colours: long (N,), index into ``COLOUR_NAMES``.
        sizes: float (N,), shape radius in pixels.
        positions: float (N, 2), shape centre (x, y) in pixels.
        rotations: float (N,), rotation in radians.
        captions: N lists of 5 sentences (made on first use).

    ``dataset[i]`` returns ``(image, label)``: float32 (3, H, W) in [0, 1] and the shape class.
    """

    def __init__(self, images, labels, colours, sizes, positions, rotations, captions=None, options=None,
                 seed: int = 0):
        super().__init__(images, labels, classes=list(SHAPE_NAMES))
        self.colours = torch.as_tensor(colours).long()  # (N,)
        self.sizes = torch.as_tensor(sizes).float()  # (N,)
        self.positions = torch.as_tensor(positions).float().reshape(-1, 2)  # (N, 2)
        self.rotations = torch.as_tensor(rotations).float()  # (N,)
        self.colour_names = list(COLOUR_NAMES)
        self.options = dict(DEFAULT_OPTIONS, **(options or {}))
        self.seed = seed
        self._captions = captions

    @property
    def captions(self) -> List[List[str]]:
        """Five captions per image, e.g. ``"a small red star in the top left corner"``."""
        if self._captions is None:
            from .shape_captions import make_captions

            self._captions = make_captions(self.labels.numpy(), self.colours.numpy(), self.sizes.numpy(),
                                           self.positions.numpy(), self.image_size, self.seed,
                                           self.options["min_size"], self.options["max_size"])
        return self._captions

    def subset(self, indices) -> "ShapesDataset":
        indices = torch.as_tensor(indices, dtype=torch.long)
        return ShapesDataset(self.images[indices], self.labels[indices], self.colours[indices],
                             self.sizes[indices], self.positions[indices], self.rotations[indices],
                             [self.captions[i] for i in indices.tolist()], self.options, self.seed)


def _cache_path(n: int, image_size: int, seed: int, opts: dict):
    opts = {k: v for k, v in opts.items() if k not in _LATER_OPTIONS or v != DEFAULT_OPTIONS[k]}
    key = json.dumps({"n": n, "size": image_size, "seed": seed, "v": GENERATOR_VERSION, **opts}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return cache_dir("shapes") / f"shapes_n{n}_s{image_size}_seed{seed}_{digest}.npz"


def _load_cache(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in ("images", "labels", "colours", "sizes", "positions", "rotations")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # damaged or partial file: regenerate


def _save_cache(path, arrays: dict) -> None:
    """Write ``arrays`` as a compressed ``.npz`` (fast deflate level), atomically."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for name, array in arrays.items():
                with zf.open(name + ".npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, path)  # readers never see a half-written file
    except OSError:  # a read-only or full disk only costs the cache
        if tmp.exists():
            tmp.unlink()


def generate_shapes(n: int, image_size: int = 64, seed: int = 0, cache: bool = True, **options) -> ShapesDataset:
    """Generate ``n`` shape images of ``image_size x image_size`` pixels, deterministically.

    Args:
        n: number of images.
        image_size: side length in pixels (>= 16).
        seed: random seed; the same arguments always give the same images.
        cache: load from / save to ``cache_dir("shapes")`` (a compressed ``.npz`` per argument set).
        **options: drawing options (see ``DEFAULT_OPTIONS``): ``min_size``, ``max_size``, ``spread``,
            ``rotation``, ``noise``, ``texture``, ``distractor``, ``colour_jitter``, ``background`` (0 for a
            plain black background), ``colours`` (how many of ``COLOUR_NAMES`` the shapes take, in order).

    Returns:
        a :class:`ShapesDataset`.
    """
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; known options are {sorted(DEFAULT_OPTIONS)}")
    if int(n) < 0:
        raise ValueError(f"n must be >= 0, obtained {n}")
    if int(image_size) < 16:
        raise ValueError(f"image_size must be at least 16 pixels, obtained {image_size}")
    n, image_size, seed = int(n), int(image_size), int(seed)
    opts = {k: float(options.get(k, v)) for k, v in DEFAULT_OPTIONS.items()}
    if not 0 <= opts["spread"] <= 1:
        raise ValueError(f"spread must be in [0, 1], obtained {opts['spread']}")
    if not 0 < opts["min_size"] <= opts["max_size"] <= 0.5:
        raise ValueError(f"need 0 < min_size <= max_size <= 0.5, obtained {opts['min_size']}, {opts['max_size']}")
    if opts["colours"] != int(opts["colours"]) or not 2 <= opts["colours"] <= len(COLOUR_NAMES):
        raise ValueError(f"colours must be a whole number from 2 to {len(COLOUR_NAMES)}, obtained {opts['colours']}")
    if not 0 <= opts["background"] <= 1:
        raise ValueError(f"background must be in [0, 1], obtained {opts['background']}")

    arrays = None
    path = _cache_path(n, image_size, seed, opts) if cache else None
    if path is not None and path.exists():
        arrays = _load_cache(path)
    if arrays is None:
        p = _draw_parameters(n, image_size, seed, opts)
        images = np.empty((n, 3, image_size, image_size), dtype=np.uint8)
        for lo in range(0, n, _CHUNK):
            hi = min(lo + _CHUNK, n)
            images[lo:hi] = _draw_chunk(p, lo, hi, image_size, seed, opts)
        arrays = {"images": images, "labels": p["labels"], "colours": p["colours"], "sizes": p["radius"],
                  "positions": np.stack([p["cx"], p["cy"]], axis=1).reshape(n, 2), "rotations": p["rotation"]}
        if path is not None:
            _save_cache(path, arrays)
    return ShapesDataset(torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["labels"]),
                         arrays["colours"], arrays["sizes"], arrays["positions"], arrays["rotations"],
                         options=opts, seed=seed)
