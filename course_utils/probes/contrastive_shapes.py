"""Kernel-side probes of problem set "contrastive_shapes".

A probe runs the student's objects on inputs the grader chose and returns plain observations (tensors,
numbers, lists). It judges nothing and holds no solution: the verdict is computed by the grader in its own
process. :func:`count_torch_calls` counts the torch operations a call makes (a Python loop over the images
of a batch makes more of them for a larger batch); :func:`ramp_images` builds the images whose pixels say
where they come from, on which a crop shows its position and size.
"""
from __future__ import annotations


import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .common import load_by_shape, as_tensor as _tensor, error_text as _error, parameters_of as _params

MAX_ITEMS = 1000  # items of a returned list kept


class _CallCounter(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def count_torch_calls(fn, *args, **kwargs):
    """(result of ``fn(*args, **kwargs)``, number of torch functions and tensor methods it called)."""
    counter = _CallCounter()
    with counter:
        result = fn(*args, **kwargs)
    return result, counter.calls


def ramp_images(batch: int, size: int) -> torch.Tensor:
    """(B, 3, S, S) images whose pixels say where they come from: channel 0 is the pixel's column (x) and
    channel 1 its row (y), both as the fraction ``(index + 0.5) / S`` of the side; channel 2 is the image's
    number, ``(b + 1) / (B + 1)``. A crop resized to full size turns channels 0 and 1 into ramps whose slope
    is the crop's side and whose start is its position; channel 2 tells which image a view came from."""
    steps = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # (S,)
    x = steps.view(1, 1, size).expand(batch, size, size)  # (B, S, S)
    y = steps.view(1, size, 1).expand(batch, size, size)
    ids = ((torch.arange(batch, dtype=torch.float32) + 1) / (batch + 1)).view(batch, 1, 1).expand(batch, size, size)
    return torch.stack([x, y, ids], dim=1).contiguous()  # (B, 3, S, S)


def measure_crop(view: torch.Tensor) -> dict:
    """What a view of a ramp image says about its crop: side fractions (x, y), left / top edges (as fractions of
    the side), the largest departure from an axis-aligned linear ramp, and the image number it came from."""
    s = view.shape[-1]
    inner = slice(2, s - 2)  # pixels away from the border, where interpolation may blend in padding
    u = (torch.arange(s, dtype=torch.float64)[inner] + 0.5) / s  # output pixel centres, fractions of the side
    out = {}
    for axis, channel in (("x", 0), ("y", 1)):
        ramp = view[channel].double()[inner, inner]  # (S-4, S-4)
        if axis == "y":
            ramp = ramp.T  # rows become columns
        profile = ramp.mean(dim=0)  # (S-4,) along the axis
        slope = float(((u - u.mean()) * (profile - profile.mean())).sum() / ((u - u.mean()) ** 2).sum())
        start = float(profile.mean() - slope * u.mean())
        out[f"scale_{axis}"], out[f"start_{axis}"] = slope, start
        out[f"residual_{axis}"] = float((ramp - (start + slope * u)[None, :]).abs().max())
        out[f"padding_{axis}"] = bool(ramp.min() < 0.25 / s)  # below the image's first pixel centre: padding
    out["image"] = float(view[2, inner, inner].max())  # padding can only lower it
    return out


# --------------------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------------------

def probe_conv_autoencoder(objects: dict, inputs: dict) -> dict:
    """For every image size the grader names: ``ConvAutoencoder(image_size=S)``'s parameters, then, with the
    grader's weights loaded into its layers (matched by shape), ``encode(x)`` and ``forward(x)``."""
    cls = objects["ConvAutoencoder"]
    out = {"sizes": {}}
    for size, x, weights in zip(inputs["sizes"], inputs["x"], inputs["weights"]):
        key = str(int(size))
        torch.manual_seed(int(inputs["seed"]))
        try:
            model = cls(image_size=int(size))
        except Exception as exc:
            out["sizes"][key] = {"error": _error(exc, f"ConvAutoencoder(image_size={int(size)})")}
            continue
        if not isinstance(model, nn.Module):
            return {"error": f"ConvAutoencoder(...) should create a torch.nn.Module, obtained a {type(model).__name__}."}
        model = model.cpu().float().eval()
        seen = {"params": _params(model)}
        seen["loaded"] = load_by_shape(model, weights)
        try:
            with torch.no_grad():
                seen["encoded"] = _tensor(model.encode(x.clone()))
        except Exception as exc:
            seen["encode_error"] = _error(exc, "ConvAutoencoder.encode")
        try:
            with torch.no_grad():
                seen["reconstructed"] = _tensor(model(x.clone()))
        except Exception as exc:
            seen["forward_error"] = _error(exc, "ConvAutoencoder.forward")
        out["sizes"][key] = {k: v for k, v in seen.items() if v is not None}
    return out


def probe_make_views(objects: dict, inputs: dict) -> dict:
    """``make_views`` on the grader's images: two calls per kind (fresh randomness each), whether the input was
    left as it was, and the torch calls made for a small and a large batch."""
    make_views = objects["make_views"]
    torch.manual_seed(int(inputs["seed"]))
    out = {}
    for kind, key in (("crop", "ramps"), ("recolor", "shapes"), ("recolor", "noise")):
        images = inputs[key]
        results = []
        try:
            for _ in range(2):
                given = images.clone()
                view = make_views(given, kind)
                results.append(_tensor(view) if torch.is_tensor(view) else None)
                out[f"{key}_changed_input"] = bool(out.get(f"{key}_changed_input")) or not torch.equal(given, images)
                if results[-1] is None:
                    out[f"{key}_type"] = type(view).__name__
                    break
        except Exception as exc:
            out[f"{key}_error"] = _error(exc, f"make_views(images, {kind!r})")
            continue
        out[key] = [r for r in results if r is not None]
    calls = {}
    for kind in ("crop", "recolor"):
        try:
            calls[kind] = [count_torch_calls(make_views, inputs["loop_small"].clone(), kind)[1],
                           count_torch_calls(make_views, inputs["loop_large"].clone(), kind)[1]]
        except Exception as exc:
            out[f"calls_error_{kind}"] = _error(exc, f"make_views(images, {kind!r})")
    out["calls"] = calls
    return out


def probe_triplet_loss(objects: dict, inputs: dict) -> dict:
    """``triplet_loss`` on the grader's triplets: with the default margin, with margins the grader names (as
    ``margin=...``), and the gradients of one loss with respect to its three inputs."""
    triplet_loss = objects["triplet_loss"]
    out = {"default": [], "margins": [], "scalar": []}
    try:
        for a, p, n in inputs["cases"]:
            value = triplet_loss(a.clone(), p.clone(), n.clone())
            out["scalar"].append(bool(torch.is_tensor(value) and value.ndim == 0))
            out["default"].append(_tensor(value) if _tensor(value) is not None else torch.tensor(float("nan")))
        for margin, (a, p, n) in zip(inputs["margins"], inputs["margin_cases"]):
            value = triplet_loss(a.clone(), p.clone(), n.clone(), margin=float(margin))
            out["margins"].append(_tensor(value) if _tensor(value) is not None else torch.tensor(float("nan")))
    except Exception as exc:
        return {"error": _error(exc, "triplet_loss")}
    a, p, n = (t.clone().requires_grad_(True) for t in inputs["grad_case"])
    try:
        value = triplet_loss(a, p, n)
        if not (torch.is_tensor(value) and value.requires_grad):
            out["grad_error"] = "the loss it returned carries no gradient (a number, or a tensor cut off from its inputs)"
        else:
            value.reshape(-1)[0].backward()
            out["grads"] = [t.grad.detach().clone() if t.grad is not None else torch.zeros_like(t) for t in (a, p, n)]
    except Exception as exc:
        out["grad_error"] = _error(exc, "backward() through triplet_loss")
    return out


def _indices(value) -> list:
    """The indices a search returned, as a list of ints, or a one-item list describing what came back instead."""
    if isinstance(value, tuple) and len(value) == 2 and all(torch.is_tensor(v) for v in value):
        return ["<a (values, indices) pair>"]
    if torch.is_tensor(value):
        if value.is_floating_point():
            return [f"<a float tensor of shape {tuple(value.shape)}>"]
        value = value.detach().cpu().reshape(-1).tolist()
    elif hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()  # numpy
    if not isinstance(value, (list, tuple)):
        return [f"<{type(value).__name__}>"]
    items = []
    for v in list(value)[:MAX_ITEMS]:
        if torch.is_tensor(v) and v.numel() == 1 and not v.is_floating_point():
            v = int(v)
        items.append(int(v) if isinstance(v, int) and not isinstance(v, bool) else f"<{type(v).__name__} {v!r}>"[:60])
    return items


def probe_nearest_neighbours(objects: dict, inputs: dict) -> dict:
    """``nearest_neighbours`` for every (embeddings, query, k) the grader lists (k None: the default)."""
    nearest_neighbours = objects["nearest_neighbours"]
    out = {"results": []}
    for case in inputs["cases"]:
        embeddings = inputs["embeddings"][case["embeddings"]]
        try:
            if case["k"] is None:
                value = nearest_neighbours(embeddings.clone(), int(case["query"]))
            else:
                value = nearest_neighbours(embeddings.clone(), int(case["query"]), k=int(case["k"]))
        except Exception as exc:
            return {"error": _error(exc, "nearest_neighbours")}
        out["results"].append(_indices(value))
    return out
