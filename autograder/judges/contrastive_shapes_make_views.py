"""Problem set "contrastive_shapes": the judge of ``make_views`` (its check names and how it reads the views).

How it reads behaviour without fixing the student's random draws: a crop view of an image whose pixels hold their
own coordinates (``probes.ramp_images``) shows the crop's side and position as the slope and start of a ramp
(``probes.measure_crop``); a recoloured view is brightness x one colour, and that colour is read off the brightest
pixel; the number of torch operations for a batch of 4 and of 32 tells a Python loop over the images.
"""
from __future__ import annotations

import math

import torch

from course_utils.probes import contrastive_shapes as probes

from ..core import CheckNames, check, fmt_shape
from .common import tensor_list
from .contrastive_shapes import CROP_SCALE


# ---- Part 2: make_views ---------------------------------------------------------------------------

def _hue(c: torch.Tensor) -> float:
    r, g, b = (float(v) for v in c)
    return (math.atan2(math.sqrt(3) * (g - b), 2 * r - g - b) / (2 * math.pi)) % 1.0


def recolour_fit(view: torch.Tensor, image: torch.Tensor) -> dict:
    """What a recoloured view says: the colour c that best explains it as brightness x c (brightness = the largest
    channel of the input), how far it departs from that, and the same departures for other brightnesses."""
    out = {}
    for name, brightness in (("max", image.amax(dim=0)), ("mean", image.mean(dim=0)),
                             ("luma", (image * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0))):
        flat = brightness.flatten()
        p = int(flat.argmax())
        colour = view.flatten(1)[:, p] / flat[p].clamp(min=1e-6)  # (3,)
        residual = float((view - brightness[None] * colour[:, None, None]).abs().max())
        out[name] = (residual, colour)
    residual, colour = out["max"]
    return {"residual": residual, "colour": colour, "hue": _hue(colour), "mean_residual": out["mean"][0],
            "luma_residual": out["luma"][0]}


class MakeViewsChecks(CheckNames):
    BATCH = "make_views returns a batch like its input"
    SQUARE = "crop views are square crops of their own image, resized"
    DRAWN = "crops are drawn per image: side in [0.3, 1], anywhere inside the image"
    RECOLOR = "recolor keeps each pixel's brightness and paints it one hue colour"
    HUE = "recolor draws a random hue per image"
    LOOP = "make_views has no Python loop over the images"


def judge_make_views(obs: dict, inputs: dict) -> list:
    results = []
    # 1. Shapes, dtype, range, input left alone.
    problems = []
    for key, kind in (("ramps", "crop"), ("shapes", "recolor"), ("noise", "recolor")):
        images = inputs[key]
        if f"{key}_error" in obs:
            problems.append(str(obs[f"{key}_error"]))
            continue
        if f"{key}_type" in obs:
            problems.append(f"make_views(images, {kind!r}) returned a {obs[f'{key}_type']}, not a tensor")
            continue
        views = tensor_list(obs.get(key), "the views")
        bad = [fmt_shape(v.shape) for v in views if tuple(v.shape) != tuple(images.shape)]
        if bad or len(views) != 2:
            problems.append(f"make_views(images, {kind!r}) gave shape {bad[0] if bad else '?'} for images of shape "
                            f"{fmt_shape(images.shape)}")
        elif any(v.min() < -1e-4 or v.max() > 1 + 1e-4 for v in views):
            problems.append(f"make_views(images, {kind!r}) gave values in [{min(v.min().item() for v in views):.3g}, "
                            f"{max(v.max().item() for v in views):.3g}], not in [0, 1]")
        if obs.get(f"{key}_changed_input"):
            problems.append(f"make_views(images, {kind!r}) changed the images it was given (in place)")
    results.append(check(MakeViewsChecks.BATCH, 0.2, not problems,
                         expected="views of the same shape as the images (B, 3, S, S), values in [0, 1], the input "
                                  "left unchanged", obtained="; ".join(problems),
                         hint="Build new tensors; do not write into `images`."))

    # 2-3. Crops, read off the ramp images.
    crop_names = (MakeViewsChecks.SQUARE, MakeViewsChecks.DRAWN)
    ramps = obs.get("ramps")
    if not (isinstance(ramps, list) and len(ramps) == 2 and all(torch.is_tensor(v) and tuple(v.shape) ==
                                                                 tuple(inputs["ramps"].shape) for v in ramps)):
        msg = str(obs.get("ramps_error", "no crop views of the right shape to check"))
        results += [check(name, 0.2 if i else 0.3, False, obtained=msg) for i, name in enumerate(crop_names)]
    else:
        b, s = inputs["ramps"].shape[0], inputs["ramps"].shape[-1]
        fits = [probes.measure_crop(v[i]) for v in ramps for i in range(b)]
        tol = 1.0 / s + 2e-3  # a nearest-pixel resize is a staircase around the line (half an input pixel and more)
        ids = [(i + 1) / (b + 1) for i in range(b)] * 2
        problems = []
        wrong_image = sum(abs(f["image"] - want) > 0.4 / (b + 1) for f, want in zip(fits, ids))
        if wrong_image:
            problems.append(f"{wrong_image} of {len(fits)} views show another image of the batch than their own")
        curved = [f for f in fits if max(f["residual_x"], f["residual_y"]) > tol]
        flipped = [f for f in fits if f not in curved and (f["scale_x"] < 0 or f["scale_y"] < 0)]
        padded = [f for f in curved if f["padding_x"] or f["padding_y"]]
        if padded:
            problems.append(f"{len(padded)} of {len(fits)} crops reach outside the image (the views show its padding)")
        if len(curved) > len(padded):
            worst = max(curved, key=lambda f: max(f["residual_x"], f["residual_y"]))
            problems.append(f"{len(curved) - len(padded)} of {len(fits)} views are not an axis-aligned crop resized to "
                            f"{s}x{s} (a ramp image came back bent or shifted by up to "
                            f"{max(worst['residual_x'], worst['residual_y']):.3f} of the side)")
        if flipped:
            problems.append(f"{len(flipped)} of {len(fits)} views are flipped (crops only: no flip)")
        oblong = [f for f in fits if f not in curved and f not in flipped
                  and abs(f["scale_x"] - f["scale_y"]) > 2.5 / s]  # a nearest resize bends a slope a little too
        if oblong:
            worst = max(oblong, key=lambda f: abs(f["scale_x"] - f["scale_y"]))
            problems.append(f"{len(oblong)} of {len(fits)} crops are not square (e.g. {worst['scale_x']:.2f} of the "
                            f"width by {worst['scale_y']:.2f} of the height)")
        results.append(check(crop_names[0], 0.3, not problems,
                             expected="every crop view to be a square part of its own image, resized to the full "
                                      "size (the grader's images encode each pixel's position)",
                             obtained="; ".join(problems),
                             hint="One affine map per image: theta = [[s, 0, tx], [0, s, ty]] with F.affine_grid "
                                  "and F.grid_sample; no flips, no rotation, no mixing of images."))
        problems = []
        if not (curved or oblong or flipped):
            scales = [(f["scale_x"] + f["scale_y"]) / 2 for f in fits]
            low, high = CROP_SCALE
            out_of_range = [x for x in scales if x < low - 1.5 / s or x > high + 1.5 / s]
            if out_of_range:
                problems.append(f"crop sides of {min(scales):.2f} to {max(scales):.2f} of the image side")
            elif min(scales) > low + 0.15 or max(scales) < high - 0.15:
                problems.append(f"crop sides only from {min(scales):.2f} to {max(scales):.2f} of the image side over "
                                f"{len(scales)} views")
            margin = 0.5 / s + 0.01
            outside = sum(f[f"start_{a}"] < -margin or f[f"start_{a}"] + f[f"scale_{a}"] > 1 + margin
                          for f in fits for a in "xy")
            if outside:
                problems.append(f"{outside} crop edges outside the image")
            small = [f for f, x in zip(fits, scales) if x < 0.7]
            for a in "xy":
                centres = [f[f"start_{a}"] + f[f"scale_{a}"] / 2 for f in small]
                if len(centres) >= 8 and (min(centres) > 0.4 or max(centres) < 0.6):
                    problems.append(f"the centres of the smaller crops only span {min(centres):.2f} to "
                                    f"{max(centres):.2f} of the image along {a}")
            if len({round(x, 3) for x in scales[:b]}) < b // 2:
                problems.append("the same crop size for many images of the batch")
            if torch.equal(ramps[0], ramps[1]):
                problems.append("the same crops on two calls")
        else:
            problems.append("the crops could not be measured (see the check above)")
        results.append(check(crop_names[1], 0.2, not problems,
                             expected=f"for every image its own crop: side s ~ U[{CROP_SCALE[0]}, {CROP_SCALE[1]}] of the "
                                      f"image side, position uniform among those that keep the crop inside the "
                                      f"image, new draws on every call", obtained="; ".join(problems),
                             hint="Draw B sides and B positions at once (torch.rand(B)); a crop of side s fits when "
                                  "its centre lies in [-(1 - s), 1 - s] in affine_grid's coordinates."))

    # 4-5. Recolouring, read off shapes and noise images.
    rec_names = (MakeViewsChecks.RECOLOR, MakeViewsChecks.HUE)
    fits, problems = [], []
    for key in ("shapes", "noise"):
        views = obs.get(key)
        if not (isinstance(views, list) and len(views) == 2 and all(
                torch.is_tensor(v) and tuple(v.shape) == tuple(inputs[key].shape) for v in views)):
            problems.append(str(obs.get(f"{key}_error", f"no recoloured views of the right shape ({key})")))
            continue
        fits += [recolour_fit(v[i], inputs[key][i]) for v in views for i in range(v.shape[0])]
    if problems:
        results += [check(name, 0.3 if i == 0 else 0.2, False, obtained="; ".join(problems))
                    for i, name in enumerate(rec_names)]
    else:
        bad = [f for f in fits if f["residual"] > 2e-3]
        unsaturated = [f for f in fits if f["residual"] <= 2e-3 and (abs(float(f["colour"].max()) - 1) > 0.02
                                                                     or abs(float(f["colour"].min())) > 0.02)]
        problems = []
        if bad:
            worst = max(bad, key=lambda f: f["residual"])
            why = ""
            if all(f["mean_residual"] <= 2e-3 for f in bad):
                why = ": the brightness is taken as the mean of the three channels, not their largest"
            elif all(f["luma_residual"] <= 2e-3 for f in bad):
                why = ": the brightness is the grey level (luma), not the largest channel"
            problems.append(f"{len(bad)} of {len(fits)} views are not brightness x one colour (departure up to "
                            f"{worst['residual']:.3f}){why}")
        if unsaturated:
            c = unsaturated[0]["colour"]
            problems.append(f"{len(unsaturated)} of {len(fits)} views use a colour that is not a hue at full "
                            f"saturation, e.g. RGB ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f})")
        results.append(check(rec_names[0], 0.3, not problems,
                             expected="view = brightness x colour, with brightness = the largest of each pixel's "
                                      "three channels and one colour per image whose largest channel is 1 and "
                                      "smallest 0 (a hue at full saturation)", obtained="; ".join(problems),
                             hint="images.amax(dim=1, keepdim=True) * hue_colours(hues)[:, :, None, None]."))
        problems = []
        if bad or unsaturated:
            problems.append("the colours could not be measured (see the check above)")
        else:
            n = inputs["shapes"].shape[0]
            hues = [f["hue"] for f in fits]
            sextants = {min(int(h * 6), 5) for h in hues}
            if len({round(h, 3) for h in hues[:n]}) < n // 2:
                problems.append(f"only {len({round(h, 3) for h in hues[:n]})} different colours for {n} images")
            elif len(sextants) < 5:
                problems.append(f"hues from only {len(sextants)} of the six sixths of the colour wheel over "
                                f"{len(hues)} views")
            if torch.equal(obs["shapes"][0], obs["shapes"][1]):
                problems.append("the same colours on two calls")
        results.append(check(rec_names[1], 0.2, not problems,
                             expected="a new random hue, uniform on [0, 1), for every image and every call",
                             obtained="; ".join(problems), hint="hues = torch.rand(B), one per image."))

    # 6. No Python loop: the number of torch calls must not grow with the batch.
    calls = obs.get("calls") if isinstance(obs.get("calls"), dict) else {}
    small, large = inputs["loop_small"].shape[0], inputs["loop_large"].shape[0]
    problems = []
    for kind in ("crop", "recolor"):
        counts = calls.get(kind)
        if not (isinstance(counts, list) and len(counts) == 2):
            problems.append(str(obs.get(f"calls_error_{kind}", f"make_views(images, {kind!r}) was not measured")))
        elif counts[1] > counts[0] + 2:
            problems.append(f"kind={kind!r}: {counts[0]} torch calls for {small} images, {counts[1]} for {large}")
    results.append(check(MakeViewsChecks.LOOP, 0.2, not problems,
                         expected="the same number of torch operations for a batch of 4 and a batch of 32 (one "
                                  "operation on the whole batch at a time)", obtained="; ".join(problems),
                         hint="Draw every image's parameters in one tensor and transform the batch at once."))
    return results
