"""Fairness corpus of problem set "simclr": CORRECT solutions in the styles the notebook's text allows must all get
full marks, and the CLASSIC MISTAKES (each one change of a correct solution, listed in tests/test_simclr.py) must
each lose points on their own unit with a message that names the problem.

The solutions were written from the released student notebook only: Part 1's four numbered steps and table,
Part 2's formula and its vectorised recipe, Part 3's table of layers, Part 4's formula and recipe. Every case is
graded in-process by the hidden tests (``autograder.core.run_unit``) with three seeds, since the hidden inputs are
drawn per student; the same corpus then goes through the visible checks, which must pass every correct solution and
catch what they can.
"""
from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from autograder import simclr as s
from autograder.core import run_unit
from course_utils.checks import simclr as checks
from course_utils.simclr import nt_xent_loop
from test_simclr import MISTAKES, SimCLRSequentialHead, dunn_masks, loss_pairwise_cosine

SEEDS = (11, 20261123, 987654321)
TABLE = {"weak": dict(scale=(0.75, 1.0), brightness=0.3, jitter=0.1, noise=0.02),
         "strong": dict(scale=(0.25, 1.0), brightness=0.6, jitter=0.2, noise=0.05)}  # the notebook's table


# ---- augment ----------------------------------------------------------------------------------------------

def augment_theta(images, strength):
    """The text's recipe: one (B, 2, 3) theta, a scale of -w on x for the flipped images, jitter step by step,
    noise, one clip at the end."""
    p = TABLE[strength]
    b, _, h, w = images.shape
    dev = images.device
    area = torch.rand(b, device=dev) * (p["scale"][1] - p["scale"][0]) + p["scale"][0]
    log_r = torch.rand(b, device=dev) * (math.log(4 / 3) - math.log(3 / 4)) + math.log(3 / 4)
    r = log_r.exp()
    cw, ch = torch.sqrt(area * r).clamp(max=1), torch.sqrt(area / r).clamp(max=1)
    tx, ty = (torch.rand(b, device=dev) * 2 - 1) * (1 - cw), (torch.rand(b, device=dev) * 2 - 1) * (1 - ch)
    flip = torch.rand(b, device=dev) < 0.5
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = torch.where(flip, -cw, cw)
    theta[:, 0, 2] = tx
    theta[:, 1, 1] = ch
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    x = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    bf = torch.empty(b, 1, 1, 1, device=dev).uniform_(1 - p["brightness"], 1 + p["brightness"])
    x = x * bf
    weights = torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1)
    m = (x * weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    c = torch.empty(b, 1, 1, 1, device=dev).uniform_(1 - p["jitter"], 1 + p["jitter"])
    x = m + c * (x - m)
    g = (x * weights).sum(1, keepdim=True)
    sat = torch.empty(b, 1, 1, 1, device=dev).uniform_(1 - p["jitter"], 1 + p["jitter"])
    x = g + sat * (x - g)
    return (x + p["noise"] * torch.randn_like(x)).clamp(0, 1)


def augment_where_flip(images, strength="strong"):
    """Crop with align_corners=True and no flip in theta, then torch.where on x.flip(-1); clips before and after
    the noise; grey levels with einsum; draws through torch.distributions."""
    p = TABLE[strength]
    b = images.shape[0]
    dev = images.device
    U = torch.distributions.Uniform
    area = U(torch.tensor(p["scale"][0], device=dev), torch.tensor(p["scale"][1], device=dev)).sample((b,))
    ratio = torch.exp(U(torch.tensor(math.log(0.75), device=dev), torch.tensor(math.log(4 / 3), device=dev)).sample((b,)))
    sw, sh = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
    theta = torch.stack([torch.stack([sw, torch.zeros_like(sw), (2 * torch.rand(b, device=dev) - 1) * (1 - sw)], 1),
                         torch.stack([torch.zeros_like(sh), sh, (2 * torch.rand(b, device=dev) - 1) * (1 - sh)], 1)], 1)
    x = F.grid_sample(images, F.affine_grid(theta, images.shape, align_corners=True), align_corners=True)
    x = torch.where((torch.rand(b, device=dev) < 0.5).view(b, 1, 1, 1), x.flip(-1), x)
    w = torch.tensor([0.299, 0.587, 0.114], device=dev)
    x = x * U(1 - p["brightness"], 1 + p["brightness"]).sample((b, 1, 1, 1)).to(dev)
    m = torch.einsum("bchw,c->b", x, w).view(b, 1, 1, 1) / (x.shape[2] * x.shape[3])
    x = torch.lerp(m.expand_as(x), x, U(1 - p["jitter"], 1 + p["jitter"]).sample((b, 1, 1, 1)).to(dev))
    g = torch.einsum("bchw,c->bhw", x, w).unsqueeze(1)
    x = torch.lerp(g.expand_as(x), x, U(1 - p["jitter"], 1 + p["jitter"]).sample((b, 1, 1, 1)).to(dev))
    x = x.clamp(0, 1)
    return (x + torch.randn(x.shape, device=dev) * p["noise"]).clamp(0, 1)


# ---- nt_xent_loss -------------------------------------------------------------------------------------------

def loss_recipe(z1, z2, temperature=0.1):
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    n = z1.shape[0]
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.arange(2 * n, device=z.device).roll(n)
    return F.cross_entropy(sim, targets)


def loss_logsumexp(z1, z2, temperature=0.1):
    n = len(z1)
    z = torch.cat([z1 / z1.norm(dim=1, keepdim=True), z2 / z2.norm(dim=1, keepdim=True)])
    sim = torch.mm(z, z.T) / temperature
    eye = torch.eye(2 * n, dtype=torch.bool)
    positives = torch.cat([torch.diagonal(sim, n), torch.diagonal(sim, -n)])
    return (torch.logsumexp(torch.where(eye, torch.full_like(sim, -1e9), sim), dim=1) - positives).mean()


# ---- SimCLR -------------------------------------------------------------------------------------------------

class SimCLRText(nn.Module):
    """The table row by row, with the given-encoder branch."""

    def __init__(self, width=128, projection_dim=64, encoder=None):
        super().__init__()
        if encoder is None:
            encoder = nn.Sequential(
                nn.Conv2d(3, width, 3, 2, 1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(),
                nn.Flatten(), nn.Linear(width, width), nn.ReLU())
        self.encoder = encoder
        self.projection_head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, projection_dim))

    def forward(self, x1, x2):
        return self.projection_head(self.encoder(x1)), self.projection_head(self.encoder(x2))


class _Encoder(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(3 if i == 0 else width, width, kernel_size=3, stride=2, padding=1)
                                   for i in range(4))
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i < 3:
                x = F.max_pool2d(x, 2)
        return F.relu(self.fc(torch.flatten(x, 1)))


class SimCLRFunctional(nn.Module):
    """A ModuleList of convs with functional ReLU and max-pool; the head declared before the encoder."""

    def __init__(self, width=128, projection_dim=64, encoder=None):
        super().__init__()
        self.projection_head = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True),
                                             nn.Linear(width, projection_dim))
        self.encoder = encoder if encoder is not None else _Encoder(width)

    def forward(self, x1, x2):
        h1, h2 = self.encoder(x1), self.encoder(x2)
        return self.projection_head(h1), self.projection_head(h2)


# ---- dunn_index ---------------------------------------------------------------------------------------------

def dunn_recipe(features, labels):
    d = torch.cdist(features, features)
    same = labels[:, None] == labels[None, :]
    return d[~same].min() / d[same].max()


def dunn_float(features, labels):
    d = torch.cdist(features.double(), features.double(), p=2)
    diff = labels.view(-1, 1) != labels.view(1, -1)
    return (d.masked_fill(~diff, float("inf")).amin() / d.masked_fill(diff, 0.0).amax()).item()


CORRECT = [
    ("augment", "augment-theta", augment_theta),
    ("augment", "augment-where-flip", augment_where_flip),
    ("augment", "augment-reference", s.augment),
    ("nt_xent_loss", "loss-recipe", loss_recipe),
    ("nt_xent_loss", "loss-logsumexp", loss_logsumexp),
    ("nt_xent_loss", "loss-pairwise-cosine", loss_pairwise_cosine),
    ("SimCLR", "simclr-text", SimCLRText),
    ("SimCLR", "simclr-functional", SimCLRFunctional),
    ("SimCLR", "simclr-sequential-batch", SimCLRSequentialHead),
    ("dunn_index", "dunn-recipe", dunn_recipe),
    ("dunn_index", "dunn-float", dunn_float),
    ("dunn_index", "dunn-masks", dunn_masks),
]


def _unit(name):
    return next(u for u in s.PROBLEM_SET.units if u.names[0] == name)


@pytest.mark.parametrize("name,case_id,fn", CORRECT, ids=[c[1] for c in CORRECT])
def test_correct_solution_gets_full_marks(name, case_id, fn):
    for seed in SEEDS:
        results = run_unit(_unit(name), {name: fn}, seed=seed)
        assert all(r.passed for r in results), (seed, [(r.name, r.message) for r in results if not r.passed])


def test_corpus_size():
    assert len(CORRECT) >= 8 and len({c[0] for c in CORRECT}) == 4
    assert len(MISTAKES) >= 15 and len({m[0] for m in MISTAKES.values()}) == 4


VISIBLE = {"augment": checks.check_augment, "nt_xent_loss": lambda f: checks.check_nt_xent_loss(f, nt_xent_loop),
           "SimCLR": checks.check_simclr, "dunn_index": checks.check_dunn_index}


def _visible_verdict(name, fn):
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            VISIBLE[name](fn)
    except Exception as exc:  # a failed check, or the code raising inside it: the cell fails
        return f"{type(exc).__name__}: {exc}"
    return None


# Mistakes the visible checks miss, and why; the hidden tests catch every one of them.
VISIBLE_MISSES = {
    "the loop version": "the visible checks compare values and gradients, not the number of operations",
    "a Python loop over images": "the same pictures as a vectorised augment; only counting operations (hidden) "
                                 "shows the loop",
    "crop ignores the scale range": "the visible checks read shapes, range, per-image brightness and flips; crop "
                                    "areas need the hidden sinusoids",
    "no noise": "the visible checks do not measure the noise (a constant grey would show it, as the hidden check "
                "does, but only with the brightness factors read out first)",
    "head without the nonlinearity": "right parameter count and shapes: only loading known weights (hidden) shows it",
}


def test_visible_checks_pass_every_correct_solution_and_catch_what_they_can():
    torch.manual_seed(0)
    wrong = [(c[1], v) for c in CORRECT if (v := _visible_verdict(c[0], c[2])) is not None]
    assert not wrong, f"visible checks fail correct solutions: {wrong}"
    missed = {m for m, (name, fn, _) in MISTAKES.items() if _visible_verdict(name, fn) is None}
    assert missed == set(VISIBLE_MISSES), (f"missed, not declared: {missed - set(VISIBLE_MISSES)}; declared, "
                                           f"caught: {set(VISIBLE_MISSES) - missed}")
