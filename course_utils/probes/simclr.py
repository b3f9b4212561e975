"""Kernel-side probes of problem set "simclr".

A probe runs the student's objects on inputs the grader chose and returns plain observations (tensors, numbers,
strings); it judges nothing and holds no solution. ``augment`` is random: it is observed on many images of known
content (constant greys and colours, ramps, sinusoids), after ``torch.manual_seed``, so that the grader can read the
crop, flip, jitter and noise each image received. The number of tensor operations a call dispatches, counted for a
small and a large batch, tells a vectorised function from a Python loop over the batch.
"""
from __future__ import annotations


import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from .common import load_by_shape, as_tensor as _tensor, describe_value as _kind, error_text as _error


class _CountOps(TorchDispatchMode):
    """Counts the tensor operations dispatched while it is active."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def count_ops(fn, *args) -> int:
    with torch.no_grad(), _CountOps() as counter:
        fn(*args)
    return counter.count


def probe_augment(objects: dict, inputs: dict) -> dict:
    """For each strength, the outputs on the grader's batches (grey, bright, colour: per-image channel means and
    stds; sinusoids and ramps: the channel mean of every pixel), the input left unchanged, shape and dtype; and the
    operations counted for 4 and 64 images."""
    augment = objects["augment"]
    seed = int(inputs["seed"])
    out = {"strengths": {}}
    for strength in ("weak", "strong"):
        seen = {}
        try:
            for name, batch in inputs["batches"].items():
                given = batch.clone()
                torch.manual_seed(seed)
                result = augment(given, strength)
                if not torch.is_tensor(result):
                    seen = {"error": f"augment(images, {strength!r}) returned {_kind(result)}, not a tensor"}
                    break
                seen.setdefault("shape", {})[name] = [int(s) for s in result.shape]
                seen.setdefault("dtype", {})[name] = str(result.dtype)
                seen.setdefault("unchanged", {})[name] = bool(torch.equal(given, batch))
                r = result.detach().cpu().float()
                seen.setdefault("range", {})[name] = [float(r.min()), float(r.max())] if r.numel() else [0.0, 0.0]
                if r.ndim != 4 or r.shape[1] != batch.shape[1]:
                    continue
                if name in ("grey", "bright", "colour"):
                    seen[name] = {"means": r.mean((2, 3)), "stds": r.std((2, 3))}
                else:
                    seen[name] = r.mean(1)
        except Exception as exc:
            seen = {"error": _error(exc, f"augment(images, {strength!r})")}
        out["strengths"][strength] = seen
    try:
        out["ops"] = {"small": count_ops(augment, inputs["ops_small"].clone(), "strong"),
                      "large": count_ops(augment, inputs["ops_large"].clone(), "strong")}
    except Exception as exc:
        out["ops_error"] = _error(exc, "augment")
    return out


def probe_nt_xent_loss(objects: dict, inputs: dict) -> dict:
    """The loss of every grader case, whether it is 0-d, its gradients on one case, operations for N=4 and N=64."""
    loss_fn = objects["nt_xent_loss"]
    out = {"values": [], "scalar": [], "errors": {}}
    for i, ((z1, z2), t) in enumerate(zip(inputs["cases"], inputs["temperatures"])):
        try:
            value = loss_fn(z1.clone(), z2.clone(), float(t))
            out["scalar"].append(torch.is_tensor(value) and value.ndim == 0)
            out["values"].append(_tensor(value) if _tensor(value) is not None else torch.tensor(float("nan")))
        except Exception as exc:
            out["scalar"].append(False)
            out["values"].append(torch.tensor(float("nan")))
            out["errors"][str(i)] = _error(exc, f"nt_xent_loss on case {i}")
    try:
        i = int(inputs["grad_case"])
        z1, z2 = (t.clone().requires_grad_(True) for t in inputs["cases"][i])
        loss_fn(z1, z2, float(inputs["temperatures"][i])).backward()
        out["grads"] = [_tensor(z.grad) if z.grad is not None else torch.zeros_like(z) for z in (z1, z2)]
    except Exception as exc:
        out["grad_error"] = _error(exc, "backward through nt_xent_loss")
    try:
        out["ops"] = {"small": count_ops(loss_fn, *[t.clone() for t in inputs["ops_small"]], 0.5),
                      "large": count_ops(loss_fn, *[t.clone() for t in inputs["ops_large"]], 0.5)}
    except Exception as exc:
        out["ops_error"] = _error(exc, "nt_xent_loss")
    return out


def load_parts(model: nn.Module, weights) -> bool:
    """The grader's weights of each part ({"encoder": layers, "projection_head": layers}) into that attribute of
    ``model``, matched by shape within the part; False when a part is missing or its shapes differ."""
    if not isinstance(weights, dict):
        return False
    parts = [getattr(model, name, None) for name in weights]
    if not all(isinstance(part, nn.Module) for part in parts):
        return False
    return all([load_by_shape(part, weights[name]) for part, name in zip(parts, weights)])


def probe_simclr(objects: dict, inputs: dict) -> dict:
    """For each size: parameter shapes; with the grader's weights loaded (by shape) encoder features (64x64 and
    96x96), the head on the features, forward on a pair of batches."""
    cls = objects["SimCLR"]
    out = {"sizes": {}}
    for (width, pdim), weights, x64, x96 in zip(inputs["sizes"], inputs["weights"], inputs["x64"], inputs["x96"]):
        key = f"{int(width)}x{int(pdim)}"
        try:
            torch.manual_seed(int(inputs["seed"]))
            model = cls(width=int(width), projection_dim=int(pdim))
            if not isinstance(model, nn.Module):
                raise TypeError(f"SimCLR(...) should create a torch.nn.Module, obtained a {type(model).__name__}")
            model = model.cpu().float().eval()
        except Exception as exc:
            out["sizes"][key] = {"error": _error(exc, f"SimCLR(width={int(width)}, projection_dim={int(pdim)})")}
            continue
        params = list(model.parameters())
        seen = {"shapes": [list(p.shape) for p in params], "sizes_n": [p.numel() for p in params],
                "loaded": load_parts(model, weights)}
        steps = (("features", lambda: model.encoder(x64.clone())), ("features96", lambda: model.encoder(x96.clone())))
        for name, fn in steps:
            try:
                with torch.no_grad():
                    value = fn()
                seen[name] = _tensor(value) if torch.is_tensor(value) else None
                seen[name + "_kind"] = _kind(value)
            except Exception as exc:
                seen[name + "_error"] = _error(exc, "SimCLR.encoder")
        try:
            with torch.no_grad():
                feats = model.encoder(x64.clone())
                seen["head"] = _tensor(model.projection_head(feats))
        except Exception as exc:
            seen["head_error"] = _error(exc, "SimCLR.projection_head")
        try:
            with torch.no_grad():
                fwd = model(x64.clone(), x96.clone())
            seen["forward_kind"] = _kind(fwd)
            if isinstance(fwd, (tuple, list)):
                seen["forward"] = [_tensor(t) for t in fwd]
        except Exception as exc:
            seen["forward_kind"] = _error(exc, "SimCLR.forward")
        out["sizes"][key] = seen
    return out


def probe_dunn_index(objects: dict, inputs: dict) -> dict:
    """The index of every grader case (a float, or the error), operations for 40 and 400 points."""
    dunn = objects["dunn_index"]
    out = {"values": [], "errors": {}}
    for i, (x, y) in enumerate(inputs["cases"]):
        try:
            value = _tensor(dunn(x.clone(), y.clone()))
            out["values"].append(float(value.reshape(-1)[0]) if value is not None and value.numel() == 1 else None)
        except Exception as exc:
            out["values"].append(None)
            out["errors"][str(i)] = _error(exc, f"dunn_index on case {i}")
    try:
        out["ops"] = {"small": count_ops(dunn, *[t.clone() for t in inputs["ops_small"]]),
                      "large": count_ops(dunn, *[t.clone() for t in inputs["ops_large"]])}
    except Exception as exc:
        out["ops_error"] = _error(exc, "dunn_index")
    return out
