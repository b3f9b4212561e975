"""Helpers shared by the problem sets' grader inputs and judges (``autograder/<id>.py``, ``judges/<id>.py``)."""
from __future__ import annotations

import torch
from torch import nn

from ..core import fmt_shape


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``: grader inputs drawn from it are the same on every machine."""
    return torch.Generator().manual_seed(int(seed))


def clone_params(module: nn.Module) -> list:
    """Detached copies of ``module``'s parameters, in ``parameters()`` order."""
    return [p.detach().clone() for p in module.parameters()]


def load_into(module: nn.Module, params: list) -> bool:
    """Load ``params`` (in ``parameters()`` order) into ``module``; False when the shapes differ."""
    own = list(module.parameters())
    if len(own) != len(params) or any(p.shape != q.shape for p, q in zip(own, params)):
        return False
    with torch.no_grad():
        for p, q in zip(own, params):
            p.copy_(q.to(p.dtype))
    return True


def tensor_list(obj, what: str) -> list:
    """``obj`` as a list of tensors (an observation from the kernel); ValueError naming ``what`` otherwise."""
    if not isinstance(obj, (list, tuple)) or not all(torch.is_tensor(t) for t in obj):
        raise ValueError(f"{what} were not a list of tensors")
    return list(obj)


def layer_shapes(params: list) -> str:
    """The parameters' shapes in words, e.g. ``(12, 3, 4, 4), (12,)``."""
    return ", ".join(fmt_shape(p.shape) for p in params) or "no parameters"


def unit_rows(x: torch.Tensor) -> bool:
    """Whether ``x`` is a non-empty 2-D tensor of rows with L2 norm 1 (to 1e-4): L2-normalised embeddings."""
    return x.ndim == 2 and x.numel() > 0 and bool(torch.allclose(x.norm(dim=-1), torch.ones(x.shape[0]), atol=1e-4))


def row_norms(x: torch.Tensor) -> str:
    """The range of ``x``'s row norms in words, for a message about embeddings that should be L2-normalised."""
    norms = x.norm(dim=-1)
    return f"row norms in [{norms.min().item():.4f}, {norms.max().item():.4f}]" if x.numel() else "an empty tensor"
