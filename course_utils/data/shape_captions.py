"""Words for the built-in shapes (:mod:`course_utils.data.shapes`): five differently phrased captions per image
from its shape, colour, size and position ("a small red star in the top left corner"), the captions that stand in
for Flickr8k's, and a one-line description of an image."""
from __future__ import annotations

import math
import random
from typing import List

import numpy as np

from .shapes import COLOUR_NAMES, DEFAULT_OPTIONS, SHAPE_NAMES, SIZE_NAMES


_POSITION_PHRASES = {
    ("top", "left"): ["in the top left corner", "at the top left", "in the upper left"],
    ("top", "centre"): ["at the top", "near the top", "at the top of the picture"],
    ("top", "right"): ["in the top right corner", "at the top right", "in the upper right"],
    ("middle", "left"): ["on the left", "on the left side", "at the left"],
    ("middle", "centre"): ["near the centre", "in the middle", "in the centre of the image"],
    ("middle", "right"): ["on the right", "on the right side", "at the right"],
    ("bottom", "left"): ["in the bottom left corner", "at the bottom left", "in the lower left"],
    ("bottom", "centre"): ["at the bottom", "near the bottom", "at the bottom of the picture"],
    ("bottom", "right"): ["in the bottom right corner", "at the bottom right", "in the lower right"],
}
_SIZE_WORDS = {"small": ["small", "little", "tiny"], "medium": ["medium-sized", "mid-sized", "medium"],
               "large": ["large", "big", "huge"]}
_TEMPLATES = [
    "{a_size} {colour} {shape} {pos}",
    "{a_colour} {shape} {pos}",
    "there is {a_colour} {shape} {pos}",
    "{a_size} {colour} {shape}",
    "the picture shows {a_size} {colour} {shape}",
    "{a_shape} in {colour}, {pos}",
    "one {colour} {shape} on a textured background",
    "{a_size} {shape} coloured {colour} {pos}",
]


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _region(x: float, y: float, size: int):
    row = ("top", "middle", "bottom")[min(int(3 * y / size), 2)]
    col = ("left", "centre", "right")[min(int(3 * x / size), 2)]
    return row, col


def size_names(radius: np.ndarray, image_size: int, min_size: float, max_size: float) -> List[str]:
    """``small`` / ``medium`` / ``large``: thirds of the radius range."""
    frac = (np.asarray(radius) / image_size - min_size) / max(max_size - min_size, 1e-9)
    return [SIZE_NAMES[min(max(int(3 * f), 0), 2)] for f in frac]


def make_captions(labels, colours, radius, positions, image_size: int, seed: int = 0,
                  min_size: float = DEFAULT_OPTIONS["min_size"], max_size: float = DEFAULT_OPTIONS["max_size"],
                  per_image: int = 5) -> List[List[str]]:
    """Five differently phrased captions per image from its shape, colour, size and position."""
    rnd = random.Random(f"shapes-captions-{seed}")
    sizes = size_names(radius, image_size, min_size, max_size)
    captions = []
    for i in range(len(labels)):
        shape, colour = SHAPE_NAMES[int(labels[i])], COLOUR_NAMES[int(colours[i])]
        region = _region(float(positions[i][0]), float(positions[i][1]), image_size)
        templates = rnd.sample(_TEMPLATES, per_image)
        out = []
        for template in templates:
            size = rnd.choice(_SIZE_WORDS[sizes[i]])
            out.append(template.format(
                a_size=_article(size), a_colour=_article(colour), a_shape=_article(shape),
                size=size, colour=colour, shape=shape, pos=rnd.choice(_POSITION_PHRASES[region])))
        captions.append(out)
    return captions


def describe(dataset, index: int) -> str:
    """One line describing an image: ``"large red star at (30, 41), rotated 12 degrees"``."""
    x, y = dataset.positions[index].tolist()
    size = size_names(dataset.sizes[index : index + 1].numpy(), dataset.image_size,
                      dataset.options.get("min_size", DEFAULT_OPTIONS["min_size"]),
                      dataset.options.get("max_size", DEFAULT_OPTIONS["max_size"]))[0]
    return (f"{size} {COLOUR_NAMES[int(dataset.colours[index])]} {SHAPE_NAMES[int(dataset.labels[index])]} "
            f"at ({x:.0f}, {y:.0f}), rotated {math.degrees(float(dataset.rotations[index])):.0f} degrees")
