"""Visible sanity checks, run by the test cells of the notebooks.

They check what the assignment text already states (shapes, parameter counts, value ranges, that
training changes what it should) and explain failures in words a student can act on. Passing them
is a good sign, not a grade: the autograder runs its own, more thorough, hidden checks.
"""
from __future__ import annotations

import contextlib
import functools

import torch
from torch import nn


@contextlib.contextmanager
def single_thread():
    """Run tiny checks on one CPU thread: several threads only add synchronisation to such small work
    (and on a busy machine make it dozens of times slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _one_thread(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with single_thread():
            return func(*args, **kwargs)
    return wrapper


class CheckFailed(AssertionError):
    """A visible check failed; the message says what was expected and what was obtained."""


# When the hidden tests of a test cell run after its visible checks (nbgrader autograde and validate on
# the instructor's side), the hidden tests decide the cell's points: a visible check that fails must not
# stop the cell, or nbgrader would give 0 for a unit that deserves partial credit. The hidden region at the
# top of such a cell turns this on; the hidden test at its end turns it off. Students never need it.
_report_only = False


def report_failures_only(on: bool = True) -> None:
    """While on, a failed visible check prints what failed (to stdout) instead of raising."""
    global _report_only
    _report_only = bool(on)


def _visible(func):
    """Decorator of the public check_* functions: raise on failure, or print it in report-only mode."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if not _report_only:
            return func(*args, **kwargs)
        import sys
        import warnings

        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout):
                warnings.simplefilter("ignore")
                return func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported, the hidden checks give the points
            what = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
            print(f"Visible check failed: {what}")
            return None
    return wrapper


def _ok(msg: str) -> None:
    print(f"  ok  {msg}")


def _require(cond: bool, expected: str, obtained: str, hint: str = "") -> None:
    if not cond:
        raise CheckFailed(f"expected {expected}, obtained {obtained}." + (f" {hint}" if hint else ""))


class _GradientWatch:
    """Counts optimiser steps whose gradients still held earlier steps' gradients (no zero_grad).

    Every backward pass's gradient of each watched parameter is summed as it arrives; when an
    optimiser steps, each of its parameters' ``.grad`` must equal that sum (what this step's backward passes
    produced). A ``.grad`` that also carries the previous step's gradients means nobody reset it. Any
    loss, any optimiser, zero_grad before or after the step and set_to_none all pass."""

    def __init__(self, params):
        self.params = [p for p in params if p.requires_grad]
        self.fresh = {id(p): None for p in self.params}
        self.steps = self.stale = 0

    def _arrived(self, p):
        def hook(grad):
            old = self.fresh[id(p)]
            self.fresh[id(p)] = grad.detach().clone() if old is None else old + grad.detach()
        return hook

    def _before_step(self, optimizer, args, kwargs):
        stepped = {id(q) for group in optimizer.param_groups for q in group["params"]}
        watched = [p for p in self.params if id(p) in stepped and p.grad is not None and self.fresh[id(p)] is not None]
        if not watched:
            return
        self.steps += 1
        if any(not torch.allclose(p.grad, self.fresh[id(p)], rtol=1e-4, atol=1e-7) for p in watched):
            self.stale += 1
        for p in self.params:
            self.fresh[id(p)] = None

    def __enter__(self):
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        self.handles = [p.register_hook(self._arrived(p)) for p in self.params]
        self.handles.append(register_optimizer_step_pre_hook(self._before_step))
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        return False

    def require_reset(self, what: str) -> None:
        _require(self.stale == 0, f"every optimiser step of {what} to use only that step's gradients",
                 f"{self.stale} of {self.steps} steps whose .grad still held the gradients of earlier batches",
                 "PyTorch adds each backward() to .grad: call optimizer.zero_grad() in every step, before "
                 "loss.backward().")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _shape(t) -> str:
    return "(" + ", ".join(str(int(s)) for s in t.shape) + ")"


def _instantiate(cls, name: str) -> nn.Module:
    try:
        module = cls()
    except NotImplementedError:
        raise CheckFailed(f"{name} is not implemented yet: replace the `raise NotImplementedError(...)` line with your code.") from None
    _require(isinstance(module, nn.Module), f"{name}() to create a torch.nn.Module", type(module).__name__)
    return module


@_one_thread
def check_module(cls, name: str, input_shape: tuple, output_shape: tuple, num_params: int,
                 value_range: tuple = (None, None), range_hint: str = "") -> nn.Module:
    """Instantiate ``cls()``, count its parameters and run it on a random input of ``input_shape``."""
    print(f"Checking {name}:")
    torch.manual_seed(0)
    module = _instantiate(cls, name).eval()
    n = count_parameters(module)
    _require(n == num_params, f"{num_params:,} parameters", f"{n:,}",
             "Every layer uses kernel_size=4, stride=2, padding=1; check the channel counts.")
    _ok(f"{n:,} parameters")
    with torch.no_grad():
        out = module(torch.rand(*input_shape))
    _require(tuple(out.shape) == tuple(output_shape), f"output shape {output_shape} for input {input_shape}",
             _shape(out))
    _ok(f"output shape {tuple(out.shape)}")
    lo, hi = value_range
    strict = lo is not None and hi is not None  # a Sigmoid output lies strictly inside (lo, hi)
    if lo is not None:
        ok = bool((out > lo).all()) if strict else bool((out >= lo).all())
        _require(ok, f"all outputs {'>' if strict else '>='} {lo}", f"minimum {out.min().item():.3g}", range_hint)
    if hi is not None:
        ok = bool((out < hi).all()) if strict else bool((out <= hi).all())
        _require(ok, f"all outputs {'<' if strict else '<='} {hi}", f"maximum {out.max().item():.3g}", range_hint)
    if lo is not None or hi is not None:
        _ok(f"outputs in [{out.min().item():.3f}, {out.max().item():.3f}]")
    return module


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
        _require(not clf_same, f"the classifier to be trained (supervised={supervised})", "unchanged weights")
        if supervised:
            _require(not enc_same, "supervised=True to train the encoder too", "the encoder did not change")
            _ok("supervised=True trains the encoder and the classifier")
        else:
            _require(enc_same, "supervised=False to leave the encoder frozen", "the encoder changed")
            _ok("supervised=False trains the classifier only")
        watch.require_reset(f"train_classifier (supervised={supervised})")
    if SUPERVISED is not None:
        _require(isinstance(SUPERVISED, dict) and set(SUPERVISED) == {"I", "II", "III"}
                 and all(isinstance(v, bool) for v in SUPERVISED.values()),
                 "SUPERVISED to map 'I', 'II', 'III' to True or False", repr(SUPERVISED))
        _ok("SUPERVISED has one True/False per method")
    print("train_classifier: visible checks passed.")
