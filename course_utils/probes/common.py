"""Helpers shared by the kernel-side probes (no solution, no verdict)."""
from __future__ import annotations

import traceback

import torch
from torch import nn


def weight_groups(module: nn.Module) -> list:
    """The parameters of ``module`` grouped by the layer that owns them (weight and bias of one conv ...),
    in registration order."""
    return [list(m.parameters(recurse=False)) for m in module.modules() if list(m.parameters(recurse=False))]


def _signature(group) -> tuple:
    return tuple(tuple(t.shape) for t in group)


def _match(own: list, given: list):
    """Pairs (own item, given item) with equal signatures, each given item used once; None if impossible."""
    if len(own) != len(given):
        return None
    free = list(range(len(given)))
    pairs = []
    for item in own:
        sig = _signature(item)
        index = next((i for i in free if _signature(given[i]) == sig), None)
        if index is None:
            return None
        free.remove(index)
        pairs.append((item, given[index]))
    return pairs


def load_by_shape(module: nn.Module, weights) -> bool:
    """Copy the grader's ``weights`` (a list of layers, each a list of tensors: weight, bias) into ``module``.

    Layers are matched by the shapes of their parameters, not by registration order, so layers declared
    in another order than they run still receive the right tensors (the layers of the specified networks
    all differ in shape; equal ones are taken in order). A module whose parameters are not owned layer by
    layer (``nn.Parameter``\\ s on one module) is matched tensor by tensor. Returns False, leaving the module
    as it was, when the shapes are not exactly those of ``weights``."""
    if not isinstance(weights, (list, tuple)) or not all(
            isinstance(g, (list, tuple)) and all(torch.is_tensor(t) for t in g) for g in weights):
        return False
    pairs = _match(weight_groups(module), list(weights))
    if pairs is None:
        flat = [[t] for g in weights for t in g]
        pairs = _match([[p] for p in module.parameters()], flat)
    if pairs is None:
        return False
    with torch.no_grad():
        for group, values in pairs:
            for p, v in zip(group, values):
                p.copy_(v.to(p.dtype))
    return True


# ---- what a probe returns about a student's value ---------------------------------------------

def error_text(exc: BaseException, what: str) -> str:
    """``what`` raised ``exc``: one line for the judge's message (the exception's last line, no traceback)."""
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return f"{what} raised an error when the grader ran it: {last}"


def parameters_of(module: nn.Module) -> list:
    """The module's parameters, detached CPU copies, in registration order."""
    return [p.detach().cpu().clone() for p in module.parameters()]


def as_tensor(value):
    """A student's return value as a detached CPU float tensor (a number becomes a 0-d tensor); None if neither."""
    if torch.is_tensor(value):
        return value.detach().cpu().float()
    try:
        return torch.tensor(float(value))
    except (TypeError, ValueError):
        return None


def describe_value(value) -> str:
    """What a value is, in words: "a tensor of shape (4, 2)", "a tuple of 3 items", "a float"."""
    if torch.is_tensor(value):
        return "a tensor of shape (" + ", ".join(str(int(s)) for s in value.shape) + ")"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"
