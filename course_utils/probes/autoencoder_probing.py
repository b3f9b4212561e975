"""Kernel-side probes of problem set "autoencoder_probing".

A probe runs the student's objects on inputs the grader chose and returns plain observations
(tensors, numbers, lists). It judges nothing and holds no solution: the verdict is computed by the
grader in its own process. The small models below are *test rigs* (deliberately not the problem
set's architecture), shared with the grader so that it can rebuild them.
"""
from __future__ import annotations

import traceback

import torch
from torch import nn

from .common import load_by_shape


def rig_autoencoder() -> nn.Module:
    """A tiny autoencoder used to exercise ``train_ae``: (B, 3, 16, 16) -> (B, 3, 16, 16)."""
    return nn.Sequential(
        nn.Conv2d(3, 6, 4, 2, 1), nn.ReLU(),  # (B, 6, 8, 8)
        nn.ConvTranspose2d(6, 3, 4, 2, 1), nn.Sigmoid(),  # (B, 3, 16, 16)
    )


def rig_encoder() -> nn.Module:
    """A tiny encoder used to exercise ``train_classifier``: (B, 3, 8, 8) -> (B, 4, 4, 4)."""
    return nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.ReLU())


def rig_classifier(num_classes: int = 3) -> nn.Module:
    """A plain ``nn.Linear(64, num_classes)`` on the flattened rig features, as the notebook promises
    ``train_classifier`` an ``nn.Linear`` (so ``classifier.in_features`` works)."""
    return nn.Linear(64, num_classes)


def _params(module: nn.Module) -> list:
    return [p.detach().cpu().clone() for p in module.parameters()]


def _load(module: nn.Module, params) -> nn.Module:
    with torch.no_grad():
        for p, v in zip(module.parameters(), params):
            p.copy_(v)
    return module


def _as_float_list(value) -> list:
    if value is None:
        return []
    if torch.is_tensor(value):
        value = value.detach().cpu().flatten().tolist()
    try:
        return [float(v) for v in value][:10_000]
    except (TypeError, ValueError):
        try:
            return [float(value)]
        except (TypeError, ValueError):
            return []


def _error(exc: BaseException, what: str) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return f"{what} raised an error when the grader ran it: {last}"


def probe_module(objects: dict, inputs: dict, name: str, input_key: str) -> dict:
    """Instantiate ``objects[name]()``, report its parameters and its output for ``inputs[input_key]``."""
    cls = objects[name]
    torch.manual_seed(int(inputs["seed"]))
    module = cls()
    if not isinstance(module, nn.Module):
        return {"error": f"{name}() should create a torch.nn.Module, obtained a {type(module).__name__}."}
    module = module.cpu().float().eval()
    own = _params(module)  # the student's own initial weights (their shapes and number are checked)
    # The outputs are computed with the grader's random weights loaded into the student's layers, so that
    # the judge can recompute them: a forward pass that ignores its layers cannot match.
    loaded = load_by_shape(module, inputs.get("weights"))
    with torch.no_grad():
        outputs = [module(x.clone()).detach().cpu() for x in inputs[input_key]]
    return {"params": own, "loaded": loaded, "outputs": outputs}


def probe_encoder(objects: dict, inputs: dict) -> dict:
    return probe_module(objects, inputs, "Encoder", "x")


def probe_decoder(objects: dict, inputs: dict) -> dict:
    return probe_module(objects, inputs, "Decoder", "z")


def probe_train_ae(objects: dict, inputs: dict) -> dict:
    """Run the student's ``train_ae`` on the rig autoencoder from grader-given weights and data."""
    train_ae = objects["train_ae"]
    model = _load(rig_autoencoder(), inputs["init"])
    loader = [(b.clone(), torch.zeros(len(b), dtype=torch.long)) for b in inputs["batches"]]
    torch.manual_seed(int(inputs["seed"]))
    returned = train_ae(model, loader, epochs=int(inputs["epochs"]))
    return {"params": _params(model), "returned": _as_float_list(returned)}


def probe_train_classifier(objects: dict, inputs: dict) -> dict:
    """Run ``train_classifier`` with supervised=False and True from the same grader-given weights,
    and report the student's SUPERVISED settings of the three methods."""
    train_classifier = objects["train_classifier"]
    settings = objects.get("SUPERVISED")  # may be missing: the other checks still run
    out = {"settings": {} if not isinstance(settings, dict) else
           {str(k): v for k, v in settings.items() if isinstance(v, bool)}}
    for supervised in (False, True):
        key = "supervised" if supervised else "frozen"
        encoder = _load(rig_encoder(), inputs["encoder"])
        classifier = _load(rig_classifier(), inputs["classifier"])
        loader = [(x.clone(), y.clone()) for x, y in zip(inputs["images"], inputs["labels"])]
        torch.manual_seed(int(inputs["seed"]))
        try:
            train_classifier(encoder, classifier, loader, epochs=int(inputs["epochs"]), supervised=supervised)
        except Exception as exc:  # one setting failing must not hide the other
            out[f"{key}_error"] = _error(exc, f"train_classifier(..., supervised={supervised})")
            continue
        out[key] = {"encoder": _params(encoder), "classifier": _params(classifier)}
    return out
