"""Problem set "simclr": the check names and the judge of augment.

``augment`` is random, so the judge reads what each image received from images of known content, as the notebook
states the augmentations: a constant grey gives the brightness factor (its mean) and the noise (its spread), a
constant colour the product of the contrast and saturation factors (its chroma over its grey level), a grey sum of
two sinusoids of 12 periods the crop's width and height (the periods it still shows), grey ramps the flips.
"""
from __future__ import annotations

import math

import torch

from ..core import CheckNames, check
from .simclr import GREY, STRENGTHS

CYCLES = 12  # periods of the sinusoids across the grader's 64x64 images
COLOUR = (0.5, 0.2, 0.2)


def crop_sides(images: torch.Tensor) -> tuple:
    """Width and height fractions of the crops of the sinusoid batch (B, H, W): the dominant frequency of the rows
    and of the columns (zero-padded FFT), over the 12 periods of the whole image."""
    def fraction(x):  # (B, R, L): frequency along L
        x = x - x.mean(-1, keepdim=True)
        pad = 16
        spectrum = torch.fft.rfft(x.double(), n=x.shape[-1] * pad).abs().mean(1)  # (B, F)
        spectrum[:, :pad] = 0  # below one period per image
        return spectrum.argmax(-1).double() / pad / CYCLES
    return fraction(images), fraction(images.transpose(1, 2))


def brightness_factors(seen: dict) -> torch.Tensor:
    return seen["grey"]["means"].mean(1).double() / 0.5


def jitter_factors(seen: dict) -> torch.Tensor:
    m = seen["colour"]["means"].double()  # (B, 3)
    grey = (m * torch.tensor(GREY, dtype=torch.double)).sum(1)
    g0 = sum(c * w for c, w in zip(COLOUR, GREY))
    return ((m[:, 0] - m[:, 1]) / grey) / ((COLOUR[0] - COLOUR[1]) / g0)


def orientation(ramps: torch.Tensor, dim: int) -> torch.Tensor:
    """+1 where the second half of each image (along ``dim`` of (B, H, W)) is brighter than the first, else -1."""
    half = ramps.shape[dim] // 2
    first = ramps.narrow(dim, 0, half).mean((1, 2))
    second = ramps.narrow(dim, ramps.shape[dim] - half, half).mean((1, 2))
    return torch.where(second > first, 1, -1)


class AugmentChecks(CheckNames):
    SHAPE = "augment returns a new float tensor of the input's shape and leaves the input unchanged"
    RANGE = "augment clips its output to [0, 1], noise included"
    PER_IMAGE = "augment draws new parameters for every image of a batch"
    CROP = "augment crops areas in the stated range for each strength"
    FLIP = "augment flips horizontally half of the images, never vertically"
    BRIGHTNESS = "augment scales brightness by a factor in the stated range"
    JITTER = "augment jitters contrast and saturation in the stated range"
    NOISE = "augment adds Gaussian noise of the stated standard deviation"
    LOOPS = "augment has no Python loop over the images"


def _strength_problems(label: str, p: dict, seen: dict, problems: dict) -> None:
    b = brightness_factors(seen)
    w, h = crop_sides(seen["sinus"])
    area = w * h
    if b.std() < 0.25 * p["brightness"] or area.std() < 0.02:
        problems["per_image"].append(f"{label}: the brightness factors of 256 images spread by a standard "
                                     f"deviation of {b.std():.3f} and the crop areas of 128 images by {area.std():.3f}")
    a_lo = p["scale"][0]
    below = float((area < a_lo - 0.07).double().mean())
    if below > 0.03 or area.min() > a_lo + 0.1 or area.max() < 0.8:
        problems["crop"].append(f"{label}: crop areas from {area.min():.2f} to {area.max():.2f} of the image "
                                f"({below:.0%} below {a_lo:g}), expected from {a_lo:g} to 1")
    flipped = float((orientation(seen["hramp"], 2) < 0).double().mean())
    vflipped = float((orientation(seen["vramp"], 1) < 0).double().mean())
    if not 0.3 <= flipped <= 0.7 or vflipped > 0.02:
        problems["flip"].append(f"{label}: {flipped:.0%} of 128 images flipped left-right and {vflipped:.0%} "
                                "upside down")
    lo, hi = 1 - p["brightness"], 1 + p["brightness"]
    if b.min() < lo - 0.04 or b.max() > hi + 0.04 or b.min() > lo + 0.2 * p["brightness"] \
            or b.max() < hi - 0.2 * p["brightness"]:
        problems["brightness"].append(f"{label}: brightness factors from {b.min():.2f} to {b.max():.2f}, "
                                      f"expected uniform in [{lo:g}, {hi:g}]")
    j = jitter_factors(seen)
    lo, hi = (1 - p["jitter"]) ** 2, (1 + p["jitter"]) ** 2
    if j.min() < lo - 0.06 or j.max() > hi + 0.06 or j.max() - j.min() < 0.6 * (hi - lo):
        problems["jitter"].append(f"{label}: the colour's chroma was scaled by {j.min():.2f} to {j.max():.2f} "
                                  f"(contrast x saturation), expected {lo:.2f} to {hi:.2f} spread over that range")
    noise = float(seen["grey"]["stds"].median())
    if not 0.8 * p["noise"] <= noise <= 1.2 * p["noise"]:
        problems["noise"].append(f"{label}: the pixels of a constant grey image spread by a standard deviation of "
                                 f"{noise:.4f}, expected {p['noise']:g}")


def judge_augment(obs: dict, inputs: dict) -> list:
    problems = {k: [] for k in ("shape", "range", "per_image", "crop", "flip", "brightness", "jitter", "noise")}
    for strength, p in STRENGTHS.items():
        seen = (obs.get("strengths") or {}).get(strength) or {"error": "no observations"}
        label = f"augment(images, {strength!r})"
        if seen.get("error"):
            for k in problems:
                problems[k].append(seen["error"])
            continue
        for name, batch in inputs["batches"].items():
            shape, dtype = seen["shape"].get(name), seen["dtype"].get(name)
            if shape != list(batch.shape) or dtype != "torch.float32":
                problems["shape"].append(f"{label} gave a {dtype} tensor of shape {tuple(shape or ())} for images "
                                         f"of shape {tuple(batch.shape)} (float32)")
            elif not seen["unchanged"].get(name):
                problems["shape"].append(f"{label} changed the images it was given (work on a copy)")
            lo, hi = seen["range"].get(name, [0.0, 0.0])
            if lo < -1e-6 or hi > 1 + 1e-6:
                problems["range"].append(f"{label} gave values in [{lo:.3f}, {hi:.3f}] for the {name} images")
        if problems["shape"]:
            for k in ("per_image", "crop", "flip", "brightness", "jitter", "noise"):
                problems[k].append(problems["shape"][0])
            continue
        _strength_problems(label, p, seen, problems)
    ops = obs.get("ops") or {}
    small, large = ops.get("small"), ops.get("large")
    msg = lambda k: "; ".join(problems[k][:2])  # noqa: E731
    s, w = STRENGTHS["strong"], STRENGTHS["weak"]
    return [
        check(AugmentChecks.SHAPE, 0.1, not problems["shape"], expected="a float32 tensor (B, 3, H, W) like the input",
              obtained=msg("shape"), hint="Build new tensors (x = x * factor, not x *= factor)."),
        check(AugmentChecks.RANGE, 0.1, not problems["range"], expected="every value in [0, 1]", obtained=msg("range"),
              hint="Clip with .clamp(0, 1) after adding the noise."),
        check(AugmentChecks.PER_IMAGE, 0.1, not problems["per_image"], expected="brightness factors and crops that "
              "differ from image to image", obtained=msg("per_image"),
              hint="Draw one factor per image: torch.rand(B, device=images.device), reshaped to (B, 1, 1, 1)."),
        check(AugmentChecks.CROP, 0.15, not problems["crop"], expected=f"crop areas uniform in [{s['scale'][0]:g}, 1] "
              f"('strong') and [{w['scale'][0]:g}, 1] ('weak'), resized to the image's size", obtained=msg("crop"),
              hint="Draw the area fraction per image in the strength's scale range, the aspect ratio in [3/4, 4/3]; "
                   "crop width sqrt(area * ratio), height sqrt(area / ratio), both at most 1."),
        check(AugmentChecks.FLIP, 0.1, not problems["flip"], expected="a left-right flip with probability 1/2 per image, "
              "no vertical flip", obtained=msg("flip"), hint="Flip the last dimension (width) of the chosen images."),
        check(AugmentChecks.BRIGHTNESS, 0.1, not problems["brightness"], expected=f"factors uniform in [1 - "
              f"{s['brightness']:g}, 1 + {s['brightness']:g}] ('strong'), [1 - {w['brightness']:g}, 1 + "
              f"{w['brightness']:g}] ('weak')", obtained=msg("brightness"), hint="Multiply each image by its factor."),
        check(AugmentChecks.JITTER, 0.1, not problems["jitter"], expected="contrast and saturation factors each uniform "
              f"in [1 - {s['jitter']:g}, 1 + {s['jitter']:g}] ('strong'), [1 - {w['jitter']:g}, 1 + {w['jitter']:g}] "
              "('weak')", obtained=msg("jitter"), hint="Contrast blends with the image's mean grey level, saturation "
              "with each pixel's grey level (0.299 R + 0.587 G + 0.114 B)."),
        check(AugmentChecks.NOISE, 0.1, not problems["noise"], expected=f"Gaussian noise of standard deviation "
              f"{s['noise']:g} ('strong') and {w['noise']:g} ('weak') on every pixel", obtained=msg("noise"),
              hint="Add noise_std * torch.randn_like(x)."),
        check(AugmentChecks.LOOPS, 0.15, isinstance(small, int) and isinstance(large, int) and large <= small + 8,
              expected="as many tensor operations for 64 images as for 4", obtained=(
                  f"{small} tensor operations for 4 images and {large} for 64" if ops else
                  str(obs.get("ops_error", "no count"))),
              hint="Draw the parameters of all images at once and crop them with one F.affine_grid / F.grid_sample."),
    ]


def sinusoids(n: int, size: int = 64) -> torch.Tensor:
    t = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    wave = 0.12 * torch.sin(2 * math.pi * CYCLES * t)
    image = 0.5 + wave[None, :] + wave[:, None]
    return image.expand(n, 3, size, size).clone()


def ramps(n: int, size: int = 32, vertical: bool = False) -> torch.Tensor:
    t = 0.2 + 0.6 * (torch.arange(size, dtype=torch.float32) + 0.5) / size
    image = t[:, None].expand(size, size) if vertical else t[None, :].expand(size, size)
    return image.expand(n, 3, size, size).clone()
