"""Problem set "contrastive_shapes": the reference implementation, the check names and the judges.

Everything that decides a grade, in the grader's process (``autograder/contrastive_shapes.py`` holds the grader
inputs, the units and the entry points, and imports this module). The reference follows the notebook's text:
a convolutional autoencoder with a 128-d embedding, two kinds of views (random square crops, recolouring), the
triplet loss with L2 distances and margin 0.3, and nearest neighbours by cosine similarity.

How the judges read behaviour without fixing the student's random draws: a crop view of an image whose pixels
hold their own coordinates (``probes.ramp_images``) shows the crop's side and position as the slope and start
of a ramp (``probes.measure_crop``); a recoloured view is brightness x one colour, and that colour is read off
the brightest pixel; the number of torch operations for a batch of 4 and of 32 tells a Python loop over the
images.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.contrastive import hue_colours
from course_utils.probes import contrastive_shapes as probes

from ..core import CheckNames, check, fmt_shape
from .common import layer_shapes, tensor_list

EMBED_DIM = 128  # the report's M
CROP_SCALE = (0.3, 1.0)  # side of a crop, as a fraction of the image side
MARGIN = 0.3  # the report's triplet margin
TOL = 1e-5  # absolute (and relative) tolerance on loss values


# ---- reference implementations ----------------------------------------------------------------

def stage_channels(image_size: int) -> list:
    """[3, 8, 16, ...]: the channels of the encoder's stages, one stride-2 stage per halving down to 4x4."""
    stages = int(round(math.log2(int(image_size) // 4)))
    return [3] + [8 * 2 ** i for i in range(stages)]


class ConvAutoencoder(nn.Module):
    """(B, 3, S, S) -> encode -> (B, 128) -> decode -> (B, 3, S, S) in (0, 1), for S = 16, 32, 64, 128."""

    def __init__(self, image_size=64):
        super().__init__()
        channels = stage_channels(image_size)  # 64: [3, 8, 16, 32, 64]
        layers = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]  # halves the side
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels[-1] * 16, EMBED_DIM))  # (B, 128)
        layers = [nn.Linear(EMBED_DIM, channels[-1] * 16), nn.ReLU(), nn.Unflatten(1, (channels[-1], 4, 4))]
        back = channels[::-1]  # 64: [64, 32, 16, 8, 3]
        for c_in, c_out in zip(back[:-1], back[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.Sigmoid() if c_out == 3 else nn.ReLU()]
        self.decoder = nn.Sequential(*layers)

    def encode(self, x):
        return self.encoder(x)  # (B, 128)

    def forward(self, x):
        return self.decoder(self.encode(x))  # (B, 3, S, S)


def make_views(images, kind):
    """A random view of every image: ``"crop"`` (a square of side s*S, s ~ U[0.3, 1], anywhere inside the image,
    resized to S x S, bilinear) or ``"recolor"`` (each pixel's brightness, its largest channel, times one random
    hue colour per image)."""
    b = images.shape[0]
    if kind == "crop":
        low, high = CROP_SCALE
        scale = low + (high - low) * torch.rand(b, device=images.device)  # (B,) side fraction
        shift = (1 - scale)[:, None] * (2 * torch.rand(b, 2, device=images.device) - 1)  # (B, 2) centre in [-1, 1]
        theta = torch.zeros(b, 2, 3, device=images.device)  # (B, 2, 3) output -> input coordinates
        theta[:, 0, 0] = theta[:, 1, 1] = scale
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, S, S, 2)
        return F.grid_sample(images, grid, mode="bilinear", align_corners=False)  # (B, 3, S, S)
    if kind == "recolor":
        brightness = images.amax(dim=1, keepdim=True)  # (B, 1, S, S)
        colours = hue_colours(torch.rand(b, device=images.device))  # (B, 3)
        return brightness * colours[:, :, None, None]  # (B, 3, S, S)
    raise ValueError(f"unknown kind {kind!r}: use 'crop' or 'recolor'")


def triplet_loss(anchor, positive, negative, margin=MARGIN):
    """mean over the batch of max(||a - p|| - ||a - n|| + margin, 0), L2 distances between rows."""
    d_positive = (anchor - positive).norm(dim=1)  # (B,)
    d_negative = (anchor - negative).norm(dim=1)  # (B,)
    return F.relu(d_positive - d_negative + margin).mean()


def nearest_neighbours(embeddings, query_index, k=5):
    """The indices of the k rows with the highest cosine similarity to row ``query_index``, itself left out."""
    unit = F.normalize(embeddings, dim=-1)  # (N, D)
    similarity = unit @ unit[query_index]  # (N,)
    similarity[query_index] = float("-inf")
    return similarity.topk(k).indices  # (k,), nearest first


# ---- helpers -------------------------------------------------------------------------------------

def _close(a: float, b: float, tol: float = TOL) -> bool:
    return abs(a - b) <= tol + tol * abs(b)


def _reference_with(image_size: int, weights: list) -> nn.Module:
    ref = ConvAutoencoder(image_size)
    with torch.no_grad():
        for p, q in zip(ref.parameters(), [t for group in weights for t in group]):
            p.copy_(q)
    return ref.eval()


def parameter_count(image_size: int) -> int:
    return sum(p.numel() for p in ConvAutoencoder(image_size).parameters())


# ---- Part 1: ConvAutoencoder ------------------------------------------------------------------------

class ConvAutoencoderChecks(CheckNames):
    SHAPES = "ConvAutoencoder output shapes"
    PARAMS = "ConvAutoencoder parameter count"
    RANGE = "ConvAutoencoder reconstructions lie in (0, 1)"
    ENCODE = "encode computes the specified layers"
    FORWARD = "forward computes the specified layers"


def judge_conv_autoencoder(obs: dict, inputs: dict) -> list:
    sizes = obs.get("sizes")
    if not isinstance(sizes, dict):
        raise ValueError("no observations per image size")
    shapes_ok, counts_ok, range_ok, enc_ok, dec_ok = True, True, True, True, True
    shapes_msg, counts_msg, range_msg, enc_msg, dec_msg = [], [], [], [], []
    enc_hint = ("The encoder is the conv stages (Conv2d, kernel 4, stride 2, padding 1, then ReLU), then Flatten and "
                "Linear(channels * 4 * 4, 128), with nothing after that Linear: the embedding may be negative.")
    dec_hint = ("forward(x) is the decoder applied to encode(x): Linear(128, channels * 4 * 4), ReLU, reshape to "
                "(channels, 4, 4), ConvTranspose2d stages (kernel 4, stride 2, padding 1) with ReLU between them, "
                "Sigmoid after the last.")
    for size, x, weights in zip(inputs["sizes"], inputs["x"], inputs["weights"]):
        size = int(size)
        seen = sizes.get(str(size)) or {}
        where = f"ConvAutoencoder(image_size={size})"
        if "error" in seen:
            msg = str(seen["error"])
            for lst in (shapes_msg, counts_msg, range_msg, enc_msg, dec_msg):
                lst.append(msg)
            shapes_ok = counts_ok = range_ok = enc_ok = dec_ok = False
            continue
        enc, rec = seen.get("encoded"), seen.get("reconstructed")
        want_enc, want_rec = (x.shape[0], EMBED_DIM), tuple(x.shape)
        got_enc = fmt_shape(enc.shape) if torch.is_tensor(enc) else seen.get("encode_error", "nothing")
        got_rec = fmt_shape(rec.shape) if torch.is_tensor(rec) else seen.get("forward_error", "nothing")
        if not (torch.is_tensor(enc) and tuple(enc.shape) == want_enc and torch.is_tensor(rec)
                and tuple(rec.shape) == want_rec):
            shapes_ok = False
            shapes_msg.append(f"{where}: encode gave {got_enc} (expected {fmt_shape(want_enc)}), forward gave "
                              f"{got_rec} (expected {fmt_shape(want_rec)})")
        params = tensor_list(seen.get("params"), "the parameters")
        n, want_n = sum(p.numel() for p in params), parameter_count(size)
        if n != want_n:
            counts_ok = False
            ref_shapes = layer_shapes(list(ConvAutoencoder(size).parameters()))
            counts_msg.append(f"{where}: {n:,} parameters (layers {layer_shapes(params)}), expected {want_n:,} "
                              f"(layers {ref_shapes})")
        if torch.is_tensor(rec) and rec.numel():
            if not bool(((rec > 0) & (rec < 1)).all()):
                range_ok = False
                range_msg.append(f"{where}: values in [{rec.min().item():.3g}, {rec.max().item():.3g}]")
        else:
            range_ok = False
            range_msg.append(f"{where}: no reconstruction ({got_rec})")
        if seen.get("loaded") is not True:
            enc_ok = dec_ok = False
            msg = (f"{where}: layers with weight/bias shapes {layer_shapes(params)}, not those specified "
                   f"({layer_shapes(list(ConvAutoencoder(size).parameters()))}), so the grader could not load its "
                   f"weights into them")
            enc_msg.append(msg)
            dec_msg.append(msg)
            continue
        ref = _reference_with(size, weights)
        with torch.no_grad():
            e, r = ref.encode(x), ref(x)
        if not (torch.is_tensor(enc) and enc.shape == e.shape and torch.allclose(enc, e, atol=1e-5, rtol=1e-4)):
            enc_ok = False
            detail = "the same shape but different values" if torch.is_tensor(enc) and enc.shape == e.shape else got_enc
            if torch.is_tensor(enc) and enc.shape == e.shape and bool((enc >= 0).all()) and bool((e < 0).any()):
                detail += " (all >= 0: is there an activation after the last Linear?)"
            enc_msg.append(f"{where}: {detail}")
        if not (torch.is_tensor(rec) and rec.shape == r.shape and torch.allclose(rec, r, atol=1e-5, rtol=1e-4)):
            dec_ok = False
            dec_msg.append(f"{where}: " + ("the same shape but different values" if torch.is_tensor(rec)
                                            and rec.shape == r.shape else got_rec))
    return [
        check(ConvAutoencoderChecks.SHAPES, 0.25, shapes_ok, expected=f"encode(x) of shape (B, {EMBED_DIM}) and forward(x) of x's shape",
              obtained="; ".join(shapes_msg),
              hint="One stride-2 stage per halving of the side down to 4x4: log2(image_size / 4) stages."),
        check(ConvAutoencoderChecks.PARAMS, 0.25, counts_ok, expected=f"{parameter_count(64):,} parameters for image_size=64 and "
                                                      f"{parameter_count(32):,} for image_size=32",
              obtained="; ".join(counts_msg),
              hint="Stage i (from 0) has 8 * 2**i channels; every conv has kernel 4, stride 2, padding 1."),
        check(ConvAutoencoderChecks.RANGE, 0.25, range_ok, expected="reconstructed pixels strictly between 0 and 1, as a Sigmoid at the "
                                                     "end gives", obtained="; ".join(range_msg),
              hint="The decoder ends with a Sigmoid."),
        check(ConvAutoencoderChecks.ENCODE, 0.25, enc_ok, expected="the embedding of the specified layers (the grader loaded its own "
                                                   "random weights into your layers)", obtained="; ".join(enc_msg),
              hint=enc_hint),
        check(ConvAutoencoderChecks.FORWARD, 0.25, dec_ok, expected="the reconstruction of the specified layers (the grader loaded its "
                                                   "own random weights into your layers)", obtained="; ".join(dec_msg),
              hint=dec_hint),
    ]


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


# ---- Part 3: triplet_loss -------------------------------------------------------------------------------

def _triplet_variants(a, p, n, m: float) -> dict:
    """What the classic mistakes compute, so that a failure message can name the one that matches."""
    dp, dn = (a - p).norm(dim=1), (a - n).norm(dim=1)
    na, np_, nn_ = (F.normalize(t, dim=1) for t in (a, p, n))
    return {
        "you use squared distances (||a - p||^2) instead of the distances themselves":
            float(F.relu(dp ** 2 - dn ** 2 + m).mean()),
        "you clamp at 0 after averaging, or not at all: clamp every triplet's term at 0 (max(., 0)), then average":
            float(F.relu((dp - dn + m).mean())),
        "there is no hinge: clamp each triplet's term at 0 (max(., 0)) before averaging":
            float((dp - dn + m).mean()),
        "you sum over the batch instead of taking the mean": float(F.relu(dp - dn + m).sum()),
        "you take the largest term of the batch instead of the mean": float(F.relu(dp - dn + m).max()),
        "the positive and the negative are swapped": float(F.relu(dn - dp + m).mean()),
        "you subtract the margin instead of adding it": float(F.relu(dp - dn - m).mean()),
        "you use the cosine distance (1 - cosine similarity) instead of the L2 distance":
            float(F.relu((1 - (na * np_).sum(1)) - (1 - (na * nn_).sum(1)) + m).mean()),
        "you use the L1 distance instead of the L2 distance":
            float(F.relu((a - p).abs().sum(1) - (a - n).abs().sum(1) + m).mean()),
        "you L2-normalise the embeddings inside the loss (the model already does; the loss must not)":
            float(F.relu((na - np_).norm(dim=1) - (na - nn_).norm(dim=1) + m).mean()),
        "you take the norms over the batch (dim=0) instead of over each row (dim=1)":
            float(F.relu((a - p).norm(dim=0) - (a - n).norm(dim=0) + m).mean()),
        "you ignore the margin argument and always use 0.3": float(F.relu(dp - dn + MARGIN).mean()),
    }


def _triplet_mistake(value: float, a, p, n, m: float) -> str:
    for mistake, v in _triplet_variants(a, p, n, m).items():
        if _close(value, v, 1e-4) and not _close(value, float(triplet_loss(a, p, n, m)), 1e-4):
            return f"It looks like {mistake}. "
    return ""


class TripletLossChecks(CheckNames):
    SCALAR = "triplet_loss returns a scalar tensor"
    VALUE = "triplet_loss is the mean hinge on L2 distances"
    MARGIN_ARGUMENT = "triplet_loss uses its margin argument"
    GRADIENTS = "gradients flow through triplet_loss to its three inputs"


def judge_triplet_loss(obs: dict, inputs: dict) -> list:
    cases, defaults = inputs["cases"], tensor_list(obs.get("default"), "the losses")
    scalar = obs.get("scalar") or []
    results = [check(TripletLossChecks.SCALAR, 0.2, len(scalar) == len(cases) and all(scalar),
                     expected="a 0-d tensor (one number) for every batch of triplets",
                     obtained=f"{sum(1 for s in scalar if not s)} of {len(cases)} results were not 0-d tensors",
                     hint="Reduce to one number with .mean(); do not call .item() (the loss must carry gradients).")]
    problems, mistake = [], ""
    for (a, p, n), got, is_scalar in zip(cases, defaults, scalar + [True] * len(cases)):
        value, want = float(got.reshape(-1)[0]), float(triplet_loss(a, p, n))
        if not is_scalar:
            problems.append(f"a tensor of shape {fmt_shape(got.shape)}, not one number, for a batch of {a.shape[0]} "
                            f"triplets (expected {want:.6f})")
            break
        if not _close(value, want):
            problems.append(f"{value:.6f} instead of {want:.6f} for a batch of {a.shape[0]} triplets")
            mistake = _triplet_mistake(value, a, p, n, MARGIN)
            break
    value_ok = not problems and len(defaults) == len(cases)
    results.append(check(TripletLossChecks.VALUE, 0.4, value_ok,
                         expected=f"mean over the batch of max(||a - p|| - ||a - n|| + margin, 0) with margin "
                                  f"{MARGIN} (tolerance {TOL:g})", obtained=" ".join(problems) or "no values",
                         hint=mistake + "Distances per row: (anchor - positive).norm(dim=1); compare with "
                                        "torch.nn.TripletMarginLoss(margin=0.3)."))
    problems, mistake = [], ""
    margins = tensor_list(obs.get("margins"), "the losses")
    for m, (a, p, n), got in zip(inputs["margins"], inputs["margin_cases"], margins):
        value, want = float(got.reshape(-1)[0]), float(triplet_loss(a, p, n, float(m)))
        if got.numel() == 1 and not _close(value, want):
            problems.append(f"{value:.6f} instead of {want:.6f} with margin={m:g}")
            mistake = _triplet_mistake(value, a, p, n, float(m))
            break
        if got.numel() != 1:
            problems.append(f"a tensor of shape {fmt_shape(got.shape)} with margin={m:g}, not one number")
            break
    margins_text = " and ".join(f"margin={m:g}" for m in inputs["margins"])
    results.append(check(TripletLossChecks.MARGIN_ARGUMENT, 0.2, not problems and len(margins) == len(inputs["margins"]),
                         expected=f"the loss with the margin it is given ({margins_text})",
                         obtained=" ".join(problems) or "no values",
                         hint=mistake + "Use the `margin` argument, whose default is 0.3."))
    if "grads" in obs:
        grads = tensor_list(obs["grads"], "the gradients")
        a, p, n = (t.clone().requires_grad_(True) for t in inputs["grad_case"])
        triplet_loss(a, p, n).backward()
        want = [a.grad, p.grad, n.grad]
        finite = all(bool(torch.isfinite(gr).all()) for gr in grads)
        reached = [name for name, gr, w in zip(("anchor", "positive", "negative"), grads, want)
                   if w.abs().max() > 0 and gr.abs().max() == 0]
        same = len(grads) == 3 and all(gr.shape == w.shape and torch.allclose(gr, w, atol=1e-5, rtol=1e-4)
                                       for gr, w in zip(grads, want))
        ok = finite and not reached and (same or not value_ok)
        obtained = ("gradients that are not finite" if not finite else
                    f"no gradient for the {', '.join(reached)}" if reached else
                    "gradients that differ from those of the loss it computes (is part of it detached or computed "
                    "outside torch?)")
    else:
        ok, obtained = False, str(obs.get("grad_error", "no gradients"))
    results.append(check(TripletLossChecks.GRADIENTS, 0.2, ok, expected="loss.backward() to give the gradients of the loss with "
                                                         "respect to anchor, positive and negative", obtained=obtained,
                         hint="Compute the loss with torch operations on the tensors themselves (no .item(), "
                              ".detach(), numpy or torch.no_grad())."))
    return results


# ---- Part 4: nearest_neighbours ----------------------------------------------------------------------------

def cosine_topk(emb: torch.Tensor, q: int, k: int) -> list:
    return [int(i) for i in nearest_neighbours(emb, q, k)]


def _farthest(emb: torch.Tensor, q: int, k: int) -> list:
    unit = F.normalize(emb, dim=-1)
    s = -(unit @ unit[q])
    s[q] = float("-inf")
    return s.topk(k).indices.tolist()


def _batch_normalised_topk(emb: torch.Tensor, q: int, k: int) -> list:
    unit = F.normalize(emb, dim=0)  # every dimension scaled over the batch, the rows left at their lengths
    s = unit @ unit[q]
    s[q] = float("-inf")
    return s.topk(k).indices.tolist()


def l2_topk(emb: torch.Tensor, q: int, k: int) -> list:
    d = (emb - emb[q]).norm(dim=1)
    d[q] = float("inf")
    return (-d).topk(k).indices.tolist()


def dot_topk(emb: torch.Tensor, q: int, k: int) -> list:
    s = emb @ emb[q]
    s[q] = float("-inf")
    return s.topk(k).indices.tolist()


class NearestNeighboursChecks(CheckNames):
    K = "nearest_neighbours returns k indices"
    QUERY = "nearest_neighbours leaves out the query, and only the query"
    FIRST = "nearest_neighbours ranks the nearest first"
    COSINE = "nearest_neighbours uses the cosine similarity"


def judge_nearest_neighbours(obs: dict, inputs: dict) -> list:
    got = obs.get("results")
    cases = inputs["cases"]
    if not isinstance(got, list) or len(got) != len(cases):
        raise ValueError("no result for every query")
    embeddings = inputs["embeddings"]

    def want(case):
        return cosine_topk(embeddings[case["embeddings"]], int(case["query"]), 5 if case["k"] is None else int(case["k"]))

    # 1. k distinct valid indices.
    problems = []
    for case, result in zip(cases, got):
        k = 5 if case["k"] is None else int(case["k"])
        n = embeddings[case["embeddings"]].shape[0]
        if not all(isinstance(i, int) for i in result):
            problems.append(f"{result[:3]} (expected a tensor or list of k integer indices)")
            break
        if len(result) != k or len(set(result)) != k or not all(0 <= i < n for i in result):
            problems.append(f"{result} with k={'5 (the default)' if case['k'] is None else k}")
            break
    results = [check(NearestNeighboursChecks.K, 0.2, not problems, expected="k different row indices (k=5 by default)",
                     obtained="; ".join(problems),
                     hint="Return torch.topk(...).indices (a LongTensor of k indices), not the similarities.")]
    formed = not problems

    # 2. The query left out; a duplicate of it kept.
    problems = []
    if formed:
        with_query = [c["query"] for c, r in zip(cases, got) if c["query"] in r]
        if with_query:
            problems.append(f"the query itself among its neighbours (query {with_query[0]})")
        for case, result in zip(cases, got):
            dup = inputs["duplicates"].get(str(case["query"])) if case["embeddings"] == "dups" else None
            if dup is not None and dup not in result:
                problems.append(f"row {dup}, an exact copy of query {case['query']}'s embedding (cosine similarity 1), "
                                f"left out: {result}")
                break
    else:
        problems.append("the results could not be read (see the check above)")
    results.append(check(NearestNeighboursChecks.QUERY, 0.2, not problems,
                         expected="the query's own row never among the results, every other row eligible",
                         obtained="; ".join(problems),
                         hint="Set the query's own similarity to -inf before torch.topk; do not drop the first "
                              "result instead (when another image has the same embedding, the first result need not "
                              "be the query)."))

    # 3. Ranking on unit rows (where cosine, L2 and dot product agree).
    problems = []
    for case, result in zip(cases, got):
        if case["embeddings"] != "unit":
            continue
        w = want(case)
        if result != w:
            emb, q = embeddings["unit"], int(case["query"])
            words = ("the ranking of embeddings normalised over the batch (dim=0) instead of one by one (dim=-1)"
                     if result == _batch_normalised_topk(emb, q, len(w)) else
                     "the right images, but not nearest first" if sorted(result) == sorted(w) else
                     "the farthest images, not the nearest" if sorted(result) == sorted(_farthest(emb, q, len(w)))
                     else "not the nearest images")
            problems.append(f"{result} for query {case['query']} (k={case['k'] or 5}): {words}; expected {w}")
            break
    results.append(check(NearestNeighboursChecks.FIRST, 0.3, formed and not problems,
                         expected="the k most similar rows, most similar first", obtained="; ".join(problems)
                         or "the results could not be read",
                         hint="torch.topk returns the largest values first."))

    # 4. Cosine on rows of different lengths.
    problems = []
    for case, result in zip(cases, got):
        if case["embeddings"] != "scaled":
            continue
        emb, q = embeddings["scaled"], int(case["query"])
        w = want(case)
        if result != w:
            words = ("the ranking by L2 distance on the raw embeddings" if result == l2_topk(emb, q, 5) else
                     "the ranking by raw dot products (the embeddings were not normalised)"
                     if result == dot_topk(emb, q, 5) else
                     "the ranking of embeddings normalised over the batch (dim=0) instead of one by one (dim=-1)"
                     if result == _batch_normalised_topk(emb, q, 5) else "not the ranking by cosine similarity")
            problems.append(f"{result} for query {q}: {words}; expected {w}")
            break
    results.append(check(NearestNeighboursChecks.COSINE, 0.3, formed and not problems,
                         expected="the ranking by cosine similarity when the embeddings have different lengths",
                         obtained="; ".join(problems) or "the results could not be read",
                         hint="L2-normalise every embedding first (F.normalize(embeddings, dim=-1)); then the dot "
                              "products are cosine similarities."))
    return results
