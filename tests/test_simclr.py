"""Problem set "simclr", grader side: the reference passes its own hidden tests for several seeds, correct solutions
in other styles pass too, each classic mistake loses points on its own unit with a message that names it, and the
judges survive malformed observations."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from autograder import simclr as s
from autograder.core import DEFAULT_SEED, judge_safely, run_unit
from course_utils.simclr import nt_xent_loop

SEEDS = (0, 1, DEFAULT_SEED)
REFERENCE = {"augment": s.augment, "nt_xent_loss": s.nt_xent_loss, "SimCLR": s.SimCLR, "dunn_index": s.dunn_index}


def _run(name, fn, seed=0):
    unit = next(u for u in s.PROBLEM_SET.units if u.names[0] == name)
    results = run_unit(unit, {name: fn}, seed=seed)
    return sum(r.points for r in results), " | ".join(r.message for r in results if not r.passed)


@pytest.mark.parametrize("seed", SEEDS)
def test_reference_passes_its_own_hidden_tests(seed):
    for unit in s.PROBLEM_SET.units:
        results = run_unit(unit, {unit.names[0]: REFERENCE[unit.names[0]]}, seed=seed)
        assert all(r.passed for r in results), [(r.name, r.message) for r in results if not r.passed]
        assert sum(r.max_points for r in results) == pytest.approx(unit.points)


def test_judges_survive_malformed_observations():
    for unit in s.PROBLEM_SET.units:
        for obs in ({}, {"sizes": 3, "values": "x", "strengths": [1]}, None, {"error": "boom"}):
            results = judge_safely(unit, obs, unit.make_inputs(0))
            assert results and not any(r.passed for r in results)


# ---- correct solutions in other styles ---------------------------------------------------------------------

def loss_pairwise_cosine(z1, z2, temperature):
    z = torch.cat([z1, z2])
    n = len(z1)
    sim = F.cosine_similarity(z[:, None], z[None, :], dim=-1) / temperature
    sim = sim - 1e9 * torch.eye(2 * n)
    pos = torch.cat([sim.diagonal(n), sim.diagonal(-n)])
    return (torch.logsumexp(sim, 1) - pos).mean()


def dunn_masks(features, labels):
    d = torch.cdist(features, features)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    return torch.where(same, torch.inf, d).min() / torch.where(same, d, 0).max()


class SimCLRSequentialHead(nn.Module):
    def __init__(self, width=128, projection_dim=64):
        super().__init__()
        layers = []
        for i in range(4):
            layers += [nn.Conv2d(3 if i == 0 else width, width, 3, 2, 1), nn.ReLU()] + ([nn.MaxPool2d(2)] if i < 3 else [])
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(width, width), nn.ReLU())
        self.projection_head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, projection_dim))

    def forward(self, x1, x2):
        z = self.projection_head(self.encoder(torch.cat([x1, x2]) if x1.shape == x2.shape else x1))
        if x1.shape != x2.shape:
            return z, self.projection_head(self.encoder(x2))
        return z[:len(x1)], z[len(x1):]


@pytest.mark.parametrize("name,fn", [("nt_xent_loss", loss_pairwise_cosine), ("dunn_index", dunn_masks),
                                     ("SimCLR", SimCLRSequentialHead)])
def test_correct_solutions_in_other_styles_get_full_marks(name, fn):
    for seed in (0, 5):
        points, message = _run(name, fn, seed)
        assert points == pytest.approx(1.0), message


# ---- classic mistakes ----------------------------------------------------------------------------------------

def _nt_xent(z1, z2, t, mask=True, norm=True, shift=0, rows=None):
    z = torch.cat([z1, z2])
    z = F.normalize(z, dim=1) if norm else z
    n = len(z1)
    sim = z @ z.T / t
    if mask:
        sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = (torch.cat([torch.arange(n, 2 * n), torch.arange(n)]) + shift) % (2 * n)
    losses = F.cross_entropy(sim, target, reduction="none")
    return losses[:rows].mean() if rows else losses.mean()


def _swap(fn, key, value):
    def wrapped(x, strength="strong"):
        old = s.STRENGTHS[strength][key]
        s.STRENGTHS[strength][key] = value
        try:
            return fn(x, strength)
        finally:
            s.STRENGTHS[strength][key] = old
    return wrapped


class HeadWithoutReLU(s.SimCLR):
    def __init__(self, width=128, projection_dim=64):
        super().__init__(width, projection_dim)
        self.projection_head = nn.Sequential(nn.Linear(width, width), nn.Linear(width, projection_dim))


class ReturnsFeatures(s.SimCLR):
    def forward(self, x1, x2):
        return self.encoder(x1), self.encoder(x2)


def _min_off_diagonal(d):
    return d[d > 0].min()


def _dunn(features, labels, inter=torch.min, intra=torch.max, square=False, everywhere=False):
    d = torch.cdist(features, features) ** (2 if square else 1)
    same = labels[:, None] == labels[None, :]
    return inter(d[~same]) / intra(d if everywhere else d[same])


MISTAKES = {
    "self-similarity left in": ("nt_xent_loss", lambda a, b, t: _nt_xent(a, b, t, mask=False), "self-similarity"),
    "positives on the wrong diagonal": ("nt_xent_loss", lambda a, b, t: _nt_xent(a, b, t, shift=1), "wrong diagonal"),
    "no normalisation": ("nt_xent_loss", lambda a, b, t: _nt_xent(a, b, t, norm=False), "L2-normalised"),
    "temperature multiplied": ("nt_xent_loss", lambda a, b, t: _nt_xent(a, b, 1 / t), "multiplied by the temperature"),
    "one direction only": ("nt_xent_loss", lambda a, b, t: _nt_xent(a, b, t, rows=len(a)), "one direction"),
    "the loop version": ("nt_xent_loss", nt_xent_loop, "operations"),
    "crop ignores the scale range": ("augment", _swap(s.augment, "scale", (1.0, 1.0)), "crop areas"),
    "flip never applied": ("augment", _swap(s.augment, "flip", 0.0), "flipped"),
    "flip always applied": ("augment", _swap(s.augment, "flip", 1.0), "flipped"),
    "noise not clipped": ("augment", lambda x, st="strong": s.augment(x, st) + 0.05 * torch.randn_like(x),
                          "values in"),
    "no noise": ("augment", _swap(s.augment, "noise", 0.0), "standard deviation"),
    "a Python loop over images": ("augment", lambda x, st="strong": torch.cat([s.augment(i[None], st) for i in x]),
                                  "operations"),
    "same parameters for the whole batch": ("augment", lambda x, st="strong": _same_params(x, st), "differ"),
    "head without the nonlinearity": ("SimCLR", HeadWithoutReLU, "projection_head"),
    "forward returns features": ("SimCLR", ReturnsFeatures, "features"),
    "dunn min / max swapped": ("dunn_index", lambda x, y: _dunn(x, y, torch.max, _min_off_diagonal), "swapped"),
    "dunn min / max swapped, zero included": ("dunn_index", lambda x, y: _dunn(x, y, torch.max, torch.min),
                                              "infinite"),
    "dunn on squared distances": ("dunn_index", lambda x, y: _dunn(x, y, square=True), "squared"),
    "dunn diameter over all points": ("dunn_index", lambda x, y: _dunn(x, y, everywhere=True), "all points"),
    "dunn ratio inverted": ("dunn_index", lambda x, y: 1 / _dunn(x, y), "inverted"),
}


def _same_params(x, strength="strong"):
    """The reference's augmentations with one draw for the whole batch: every image gets the first image's crop,
    flip, brightness and jitter (the noise stays per pixel)."""
    state = torch.get_rng_state()
    out = []
    for image in x:
        torch.set_rng_state(state)
        out.append(s.augment(image[None], strength))
    return torch.cat(out)


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_classic_mistake_loses_points_on_its_unit_with_a_message_that_names_it(mistake):
    name, fn, words = MISTAKES[mistake]
    points, message = _run(name, fn)
    assert points < 0.9, (points, message)
    assert words in message, message
