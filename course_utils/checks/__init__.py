"""Visible sanity checks, run by the test cells of the notebooks: the helpers every problem set's
checks share. Each problem set's checks live in ``course_utils/checks/<problem set>.py``; a notebook
imports its own as ``from course_utils.checks import <problem set> as checks``.

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

    def _render_traceback_(self):
        """What a notebook shows: the message alone, without the frames of the checking library (IPython calls
        this); the cause, when the student's own code raised, is shown below it with its traceback."""
        lines = [f"CheckFailed: {self}"]
        if self.__cause__ is not None:
            import traceback

            lines += ["", "It came from this error in your code:"]
            lines += [line.rstrip("\n") for line in traceback.format_exception(self.__cause__)]
        return lines


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


_NOT_DONE = "is not implemented yet: replace the `raise NotImplementedError(...)` line with your code."


def _call(what: str, fn, *args, hint: str = "", **kwargs):
    """``fn(*args, **kwargs)``; an error of the student's code becomes a failed check that names the call
    (the original traceback stays attached, to find the line)."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{what} {_NOT_DONE}") from None
    except CheckFailed:
        raise
    except Exception as exc:
        raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}" + (f". {hint}" if hint else "")) from exc
