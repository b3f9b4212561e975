"""Visible checks of "simclr", run by the notebook's test cells (see course_utils.checks).

They check what the notebook text states (shapes, value ranges, per-image randomness, a loss and an index worked
out on paper, the readable loop version of the loss, parameter counts) and explain failures in words you can act
on. Passing them is a good sign, not a grade: the autograder runs its own, more thorough, hidden checks.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import CheckFailed, _call, _ok, _one_thread, _require, _shape, _visible, count_parameters

__all__ = ["CheckFailed", "check_augment", "check_nt_xent_loss", "check_simclr", "check_dunn_index"]

SIMCLR_PARAMETERS = 487_616  # SimCLR(width=128, projection_dim=64), as the notebook's table gives it


@_visible
@_one_thread
def check_augment(augment) -> None:
    """Shapes, range, an unchanged input, parameters drawn per image, flips of a ramp, both strengths."""
    print("Checking augment:")
    torch.manual_seed(0)
    for strength in ("weak", "strong"):
        images = torch.rand(16, 3, 32, 32)
        given = images.clone()
        out = _call(f"augment(images, {strength!r})", augment, given, strength)
        _require(torch.is_tensor(out) and tuple(out.shape) == (16, 3, 32, 32),
                 f"augment(images, {strength!r}) to give a tensor of shape (16, 3, 32, 32)",
                 _shape(out) if torch.is_tensor(out) else type(out).__name__)
        _require(torch.equal(given, images), "the images given to augment to stay unchanged", "they changed (in place)")
        lo, hi = float(out.min()), float(out.max())
        _require(lo >= 0 and hi <= 1, "values in [0, 1]", f"values in [{lo:.3f}, {hi:.3f}]",
                 "Clip with .clamp(0, 1) at the end, after the noise.")
        grey = torch.full((64, 3, 16, 16), 0.5)
        means = _call(f"augment(images, {strength!r})", augment, grey, strength).mean((1, 2, 3))
        _require(float(means.std()) > 0.03, "the brightness to differ from image to image of a batch",
                 f"per-image mean brightness spread by only {float(means.std()):.4f}",
                 "Draw one factor per image (a tensor of B factors), not one number for the whole batch.")
        ramp = torch.linspace(0.2, 0.8, 32).expand(64, 3, 32, 32).clone()
        flipped = _call(f"augment(images, {strength!r})", augment, ramp, strength).mean((1, 2))
        share = float((flipped[:, :16].mean(1) > flipped[:, 16:].mean(1)).float().mean())
        _require(0.2 < share < 0.8, "about half of 64 left-to-right ramps flipped", f"{share:.0%} flipped",
                 "Flip each image with probability 1/2 (a random boolean per image), along the width.")
        _ok(f"{strength!r}: shape kept, values in [{lo:.2f}, {hi:.2f}], brightness per image, {share:.0%} flipped")
    print("augment: visible checks passed")


def _two_axes(t: float) -> float:
    """NT-Xent of z1 = z2 = (e1, e2), worked out on paper: every row's positive has similarity 1, its two
    negatives 0."""
    return -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2))


@_visible
@_one_thread
def check_nt_xent_loss(nt_xent_loss, loop_version=None) -> None:
    """A case worked out on paper, a scalar that carries gradients, and (given) the notebook's loop version."""
    print("Checking nt_xent_loss:")
    z = torch.eye(2) * 3.0  # not unit vectors: normalise them first
    for t in (0.1, 0.5):
        got = _call("nt_xent_loss(z1, z2, temperature)", nt_xent_loss, z.clone(), z.clone(), t)
        _require(torch.is_tensor(got) and got.ndim == 0, "a 0-d tensor", _shape(got) if torch.is_tensor(got)
                 else type(got).__name__, "Average the 2N row losses; do not call .item().")
        want = _two_axes(t)
        _require(abs(float(got) - want) < 1e-4, f"{want:.4f} for z1 = z2 = (3 e1, 3 e2) at temperature {t:g} "
                 "(each row: positive similarity 1, two negatives 0, the diagonal masked)", f"{float(got):.4f}",
                 "Normalise the rows, mask the diagonal (self-similarity) with -inf, divide by the temperature.")
    _ok("the worked example gives -log(e^(1/t) / (e^(1/t) + 2)) at t = 0.1 and 0.5")
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 8, requires_grad=True), torch.randn(6, 8, requires_grad=True)
    loss = _call("nt_xent_loss(z1, z2, 0.2)", nt_xent_loss, z1, z2, 0.2)
    _call("loss.backward()", loss.backward)
    _require(z1.grad is not None and z2.grad is not None and bool(z1.grad.abs().sum() > 0),
             "gradients for z1 and z2", "none", "Use torch operations only.")
    _ok("loss.backward() reaches z1 and z2")
    if loop_version is not None:
        with torch.no_grad():
            want = float(loop_version(z1, z2, 0.2))
        _require(abs(loss.item() - want) < 1e-4 * max(1, abs(want)), f"the loop version's {want:.5f}",
                 f"{loss.item():.5f}", "Read the loop version: which rows are positives, which are left out?")
        _ok(f"the same value as the loop version ({want:.4f})")
    print("nt_xent_loss: visible checks passed")


@_visible
@_one_thread
def check_simclr(SimCLR) -> None:
    """Parameter count and output shapes of SimCLR() on 64x64 and 96x96 views."""
    print("Checking SimCLR:")
    torch.manual_seed(0)
    try:
        model = SimCLR()
    except NotImplementedError:
        raise CheckFailed("SimCLR is not implemented yet: replace the `raise NotImplementedError(...)` lines with "
                          "your code.") from None
    _require(isinstance(model, nn.Module), "SimCLR() to create a torch.nn.Module", type(model).__name__)
    n = count_parameters(model)
    _require(n == SIMCLR_PARAMETERS, f"{SIMCLR_PARAMETERS:,} parameters for SimCLR()", f"{n:,}",
             "4 convolutions 3x3 of width 128 (3 -> 128, then 128 -> 128), Linear 128 -> 128 in the encoder; "
             "Linear 128 -> 128 and 128 -> 64 in the head.")
    _ok(f"{n:,} parameters")
    model.eval()
    for size in (64, 96):
        x1, x2 = torch.rand(2, 3, size, size), torch.rand(2, 3, size, size)
        with torch.no_grad():
            h = _call("model.encoder(x)", model.encoder, x1)
            out = _call("model(x1, x2)", model, x1, x2)
        _require(torch.is_tensor(h) and tuple(h.shape) == (2, 128), f"encoder features of shape (2, 128) for "
                 f"{size}x{size} images", _shape(h) if torch.is_tensor(h) else type(h).__name__)
        _require(isinstance(out, (tuple, list)) and len(out) == 2 and all(torch.is_tensor(z) for z in out),
                 "forward(x1, x2) to return a pair (z1, z2)", type(out).__name__)
        _require(all(tuple(z.shape) == (2, 64) for z in out), "projections of shape (2, 64)",
                 ", ".join(_shape(z) for z in out), "Apply the projection head to the encoder's features.")
    _ok("encoder features (B, 128) and projections (B, 64) for 64x64 and 96x96 views")
    print("SimCLR: visible checks passed")


@_visible
@_one_thread
def check_dunn_index(dunn_index) -> None:
    """Two examples on a line, worked out on paper."""
    print("Checking dunn_index:")
    cases = [([0.0, 1.0, 3.0, 5.0], [0, 0, 1, 1], 1.0, "clusters {0, 1} and {3, 5}: closest pair 2, largest "
              "diameter 2"),
             ([0.0, 1.0, 4.0, 6.0, 10.0], [2, 2, 5, 5, 9], 1.5, "clusters {0, 1}, {4, 6}, {10}: closest pair 3, "
              "largest diameter 2")]
    for points, labels, want, why in cases:
        x, y = torch.tensor(points).unsqueeze(1), torch.tensor(labels)
        got = _call("dunn_index(features, labels)", dunn_index, x, y)
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise CheckFailed(f"expected a number, obtained {type(got).__name__}.") from None
        _require(abs(value - want) < 1e-5, f"{want:g} for {why}", f"{value:.4f}",
                 "Separation: the smallest distance between points of different clusters; diameter: the largest "
                 "distance between points of one cluster; Euclidean distances (torch.cdist), not squared.")
    _ok("both examples on a line")
    print("dunn_index: visible checks passed")
