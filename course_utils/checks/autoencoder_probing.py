"""Visible checks of "autoencoder_probing", run by the notebook's test cells (see course_utils.checks)."""
from __future__ import annotations

import torch
from torch import nn

from . import CheckFailed, _GradientWatch, _ok, _one_thread, _require, _visible, check_module

__all__ = ["CheckFailed", "check_encoder", "check_decoder", "check_train_ae", "check_train_classifier"]


@_visible
@_one_thread
def check_encoder(Encoder) -> None:  # noqa: N803 - the student's class
    check_module(Encoder, "Encoder", (2, 3, 64, 64), (2, 24, 4, 4), 42_156, (0, None),
                 "The encoder ends with a ReLU, so its features are non-negative.")
    torch.manual_seed(0)
    with torch.no_grad():
        features = Encoder()(torch.rand(2, 3, 64, 64))
    _require(bool((features == 0).any()), "some features to be exactly 0 (a ReLU sets every negative value to 0)",
             f"none: features in [{features.min().item():.4f}, {features.max().item():.4f}]",
             "The encoder's last activation is a ReLU, not a Sigmoid or another function.")
    _ok("the last activation is a ReLU (some features are exactly 0)")
    print("Encoder: visible checks passed.")


@_visible
@_one_thread
def check_decoder(Decoder) -> None:  # noqa: N803
    check_module(Decoder, "Decoder", (2, 24, 4, 4), (2, 3, 64, 64), 42_135, (0, 1),
                 "The decoder ends with a Sigmoid, so its pixels lie strictly between 0 and 1.")
    print("Decoder: visible checks passed.")


def _tiny_autoencoder() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.Sigmoid())


@_visible
@_one_thread
def check_train_ae(train_ae) -> None:
    """Train a tiny autoencoder for 8 epochs on 2 fixed batches; the loss must go down."""
    print("Checking train_ae:")
    torch.manual_seed(0)
    model = _tiny_autoencoder()
    colours = torch.rand(2, 8, 3, 1, 1)  # two batches of 8 flat-coloured images
    loader = [(c.expand(8, 3, 16, 16).contiguous(), torch.zeros(8, dtype=torch.long)) for c in colours]
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        loss0 = sum(nn.functional.mse_loss(model(x), x) for x, _ in loader).item() / 2
    try:
        with _GradientWatch(model.parameters()) as watch:
            history = train_ae(model, loader, epochs=8)
    except NotImplementedError:
        raise CheckFailed("train_ae is not implemented yet: replace the `raise NotImplementedError(...)` line with your code.") from None
    _require(any(not torch.equal(a, b) for a, b in zip(before, model.parameters())),
             "the model's weights to change", "unchanged weights", "Did you call optimizer.step()?")
    _ok("the weights changed")
    watch.require_reset("train_ae")
    _ok("every step starts from fresh gradients")
    with torch.no_grad():
        loss1 = sum(nn.functional.mse_loss(model(x), x) for x, _ in loader).item() / 2
    _require(loss1 < loss0, f"the reconstruction MSE to fall below {loss0:.4f}", f"{loss1:.4f}")
    _ok(f"reconstruction MSE {loss0:.4f} -> {loss1:.4f}")
    _require(history is not None and len(history) == 8, "a list of 8 per-epoch losses to be returned",
             "None" if history is None else f"{len(history)} values")
    _ok("returned one loss per epoch")
    print("train_ae: visible checks passed.")


@_visible
@_one_thread
def check_train_classifier(train_classifier, SUPERVISED=None) -> None:  # noqa: N803
    """supervised=False must leave the encoder untouched; supervised=True must train it."""
    print("Checking train_classifier:")
    for supervised in (False, True):
        torch.manual_seed(0)
        encoder = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.ReLU())
        classifier = nn.Linear(64, 3)
        x = torch.rand(12, 3, 8, 8)
        loader = [(x, torch.arange(12) % 3)]
        before = [p.detach().clone() for p in encoder.parameters()]
        clf_before = [p.detach().clone() for p in classifier.parameters()]
        try:
            with _GradientWatch(list(encoder.parameters()) + list(classifier.parameters())) as watch:
                train_classifier(encoder, classifier, loader, epochs=3, supervised=supervised)
        except NotImplementedError:
            raise CheckFailed("train_classifier is not implemented yet: replace the `raise NotImplementedError(...)` line with your code.") from None
        enc_same = all(torch.equal(a, b) for a, b in zip(before, encoder.parameters()))
        clf_same = all(torch.equal(a, b) for a, b in zip(clf_before, classifier.parameters()))
        _require(not clf_same, f"the classifier to be trained (supervised={supervised})", "unchanged weights",
                 "Give the classifier's parameters to the optimiser, and call loss.backward() and optimizer.step().")
        if supervised:
            _require(not enc_same, "supervised=True to train the encoder too", "the encoder did not change",
                     "With supervised=True the optimiser also gets the encoder's parameters, and the features are "
                     "computed with gradients (no torch.no_grad() or .detach()).")
            _ok("supervised=True trains the encoder and the classifier")
        else:
            _require(enc_same, "supervised=False to leave the encoder frozen", "the encoder changed",
                     "With supervised=False give only the classifier's parameters to the optimiser (or call "
                     "encoder.requires_grad_(False)); weight decay alone changes every parameter it is given.")
            _ok("supervised=False trains the classifier only")
        watch.require_reset(f"train_classifier (supervised={supervised})")
    if SUPERVISED is not None:
        _require(isinstance(SUPERVISED, dict) and set(SUPERVISED) == {"I", "II", "III"}
                 and all(isinstance(v, bool) for v in SUPERVISED.values()),
                 "SUPERVISED to map 'I', 'II', 'III' to True or False", repr(SUPERVISED))
        _ok("SUPERVISED has one True/False per method")
    print("train_classifier: visible checks passed.")
