"""Problem set "contrastive_shapes": the reference implementation, the check names and the judges.

Everything that decides a grade, in the grader's process (``autograder/contrastive_shapes.py`` holds the grader
inputs, the units and the entry points, and imports this module). The reference follows the notebook's text:
a convolutional autoencoder with a 128-d embedding, two kinds of views (random square crops, recolouring), the
triplet loss with L2 distances and margin 0.3, and nearest neighbours by cosine similarity.

The judges of make_views and nearest_neighbours, the longest, are in ``contrastive_shapes_make_views.py`` and
``contrastive_shapes_nearest_neighbours.py`` beside this module (docs/ARCHITECTURE.md, "Adding a problem set").
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.contrastive import hue_colours

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
