"""The grading contract shared by every problem set.

A graded *unit* (``Encoder``, ``train_ae``, ``CLIPModel`` ...) is checked in two halves that
run in different processes, so that a student's code can never reach the verdict:

1. ``probe`` (kernel side, in ``course_utils.probes``; student-visible, holds no solution): it
   receives the student's objects *by name* and inputs chosen by the grader, runs them, and
   returns plain observations (tensors, numbers, strings). Nothing is judged there.
2. ``judge`` (trusted side, here in ``autograder``; never importable from a graded kernel): it
   recomputes what the observations should be with the reference implementation and returns
   one :class:`CheckResult` per check, with points and an "expected ..., obtained ..." message.

Tampering with the kernel (patching ``torch.allclose``, replacing modules in ``sys.modules``,
printing fake "passed" lines) changes nothing: the comparison happens in the grader's process.

The same two halves also run together in one process (:func:`run_unit`), which is what the
hidden region of a source notebook's test cell calls (``autograder.autoencoder_probing.test_decoder(Decoder)``)
so that ``nbgrader validate`` and ``nbgrader autograde`` work on their own. That call
(:func:`score_unit`) prints each failed check's name and message and *returns the unit's points as
a plain float*: nbgrader reads a graded cell's last value (its ``execute_result``) as the cell's
partial credit, so ``nbgrader autograde`` gives the same points as ``course-kit grade``. A test cell
of a source notebook therefore looks like this::

    # Visible checks for Decoder (1 point). The grader also runs hidden checks.
    ### BEGIN HIDDEN TESTS
    import autograder.autoencoder_probing as _ag
    _ag.begin_test_cell()  # the hidden test below gives the points: visible checks report, never stop the cell
    ### END HIDDEN TESTS
    checks.check_decoder(Decoder)
    ### BEGIN HIDDEN TESTS
    _ag.test_decoder(Decoder)
    ### END HIDDEN TESTS

Students see the comment and the visible check only. nbgrader scores a graded cell 0 when it has an
error *or anything written to stderr*, so nothing here raises for a failed check or writes to stderr.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import re
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable


MAX_TEXT = 2000  # characters of any text that came from a kernel (an error message ...) kept in a result


def clip_text(text, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut (a notebook can raise a 280 MB message)."""
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit:
        return text
    return text[:limit] + f" [... {len(text) - limit:,} more characters cut]"


@dataclass
class CheckResult:
    """The outcome of one check of one unit."""

    name: str  # short human name, e.g. "Decoder output shape"
    max_points: float  # points at stake
    passed: bool
    message: str = ""  # what was expected and what was obtained, in words a student can act on

    def __post_init__(self):
        self.name, self.message = clip_text(self.name, 200), clip_text(self.message)

    @property
    def points(self) -> float:
        return self.max_points if self.passed else 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "points": self.points, "max_points": self.max_points,
                "passed": self.passed, "message": self.message}


@dataclass
class Unit:
    """One autograded unit of a problem set."""

    grade_id: str  # nbgrader grade_id of the unit's test cell, e.g. "test_encoder"
    title: str  # what students call it, e.g. "Encoder"
    points: float  # total points of the unit (sum of its checks' max_points)
    names: tuple  # the student objects the probe receives, by name, e.g. ("Encoder",)
    probe: str  # "course_utils.probes.<pset>:<function>"; signature probe(objects, inputs) -> dict
    judge: Callable[[dict, dict], list]  # judge(observations, inputs) -> list[CheckResult]
    make_inputs: Callable[[int], dict]  # make_inputs(seed) -> inputs handed to the probe
    check_names: tuple = ()  # names of the checks, so a unit that could not run lists them at 0
    timeout: float = 60.0  # seconds the probe may take in the grading kernel

    @property
    def whole_check(self) -> str:
        """The name of the check worth half the unit: every other check of the unit passes."""
        return f"{self.title} passes every check"

    @property
    def all_checks(self) -> tuple:
        """Every check a result of this unit lists, in order: the judge's, then the whole-unit check."""
        return tuple(self.check_names or (self.title,)) + (self.whole_check,)

    def failed(self, message: str) -> list:
        """Every check of this unit at 0 points with one message (unit could not run)."""
        names = self.check_names or (self.title,)
        return complete(self, [CheckResult(n, 1.0, False, message) for n in names], message)


class CheckNames:
    """The names of one unit's checks, declared once: the judge writes ``check(EncoderChecks.SHAPE, ...)`` and
    the unit reads ``check_names=EncoderChecks.names``.

    Subclass it with one UPPER_CASE string per check, in the order the judge returns its results::

        class EncoderChecks(CheckNames):
            SHAPE = "Encoder output shape"
            PARAMS = "Encoder parameter count"

    ``names`` is then ``("Encoder output shape", "Encoder parameter count")``. The strings are what students,
    feedback and the class summary see, so a check keeps its name from one term to the next.
    """

    names: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        names = tuple(value for key, value in vars(cls).items() if key.isupper() and isinstance(value, str))
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{cls.__name__} declares a check name twice: {repeated}")
        cls.names = names


def complete(unit: "Unit", results: list, whole_message: str = "") -> list:
    """A judge's checks scaled to half the unit's points, plus the whole-unit check worth the other half.

    The grading rule of every unit: half of its points are shared by its checks (in the judge's
    proportions), the other half is earned only when every check passes. A mistake that breaks what
    the notebook promises therefore costs at least half the unit, while a student whose unit works in
    all but one respect still sees which respect, with partial credit for the rest.
    """
    half = unit.points / 2
    total = sum(r.max_points for r in results)
    scaled = [CheckResult(r.name, r.max_points * half / total if total else 0.0, r.passed, r.message) for r in results]
    failed = [r.name for r in results if not r.passed]
    message = "passed" if not failed else whole_message or (
        f"expected every check of {unit.title} to pass (half of its {unit.points:g} point"
        f"{'s' if unit.points != 1 else ''} is for a unit that works in every respect), obtained "
        f"{len(failed)} that did not: {'; '.join(failed)}.")
    return scaled + [CheckResult(unit.whole_check, unit.points - sum(r.max_points for r in scaled), not failed, message)]


@dataclass
class ManualUnit:
    """A manually graded cell (a written report)."""

    grade_id: str
    title: str
    points: float


# Libraries slow enough to import that a kernel zygote preloads them for the problem sets that use them.
HEAVY_MODULES = ("torchvision", "transformers", "timm", "scipy", "sklearn", "pandas", "seaborn", "optuna")


@dataclass
class ProblemSet:
    id: str  # assignment id, e.g. "autoencoder_probing"
    notebook: str  # notebook file name inside source/<id>/
    units: list = field(default_factory=list)
    manual: list = field(default_factory=list)
    # Heavy libraries (of HEAVY_MODULES) that the notebook's imports cell loads: the grader's kernel zygote imports
    # them once, so that every kernel it forks starts with them (tests/test_contract.py checks the list against
    # what the imports cell really loads).
    preload: tuple = ()

    @property
    def auto_points(self) -> float:
        return sum(u.points for u in self.units)

    @property
    def total_points(self) -> float:
        return self.auto_points + sum(m.points for m in self.manual)

    def unit(self, grade_id: str) -> Unit:
        for u in self.units:
            if u.grade_id == grade_id:
                return u
        raise KeyError(f"{self.id} has no unit {grade_id!r}; known: {[u.grade_id for u in self.units]}")


def load_probe(spec: str) -> Callable:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def judge_safely(unit: Unit, observations: Any, inputs: dict) -> list:
    """Judge observations; anything malformed or missing scores 0 with a clear message."""
    if not isinstance(observations, dict):
        return unit.failed(f"{unit.title} could not be checked: the grader received no observations.")
    if observations.get("error"):
        return unit.failed(str(observations["error"]))
    try:
        results = unit.judge(observations, inputs)
    except Exception as exc:  # malformed observations must never crash a batch
        return unit.failed(f"{unit.title} could not be checked ({type(exc).__name__}: {exc}).")
    return complete(unit, results)


def run_unit(unit: Unit, objects: dict, seed: int = 0) -> list:
    """Probe and judge in this process (source-notebook validation, instructor checks)."""
    from course_utils.checks import single_thread

    inputs = unit.make_inputs(seed)
    try:
        with single_thread():
            observations = load_probe(unit.probe)(objects, inputs)
    except Exception as exc:
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        observations = {"error": f"{unit.title} raised an error when the grader ran it: {tb}"}
    with single_thread():
        return judge_safely(unit, observations, inputs)


# The seed of the hidden checks' inputs: the same as ``course-kit grade`` (``GradeOptions.seed`` in
# autograder/grader.py), so that nbgrader and the kit's grader check the same inputs.
DEFAULT_SEED = 20261123


def hidden_test_seed() -> int:
    return int(os.environ.get("AUTOGRADER_SEED", str(DEFAULT_SEED)))


def submission_seed(base: int, student: str, content: bytes, grade_id: str) -> int:
    """The seed of one unit's hidden inputs for one submission: drawn from the grading seed, the student
    and the submitted file, so that no two students (and no two versions of a notebook) get the same
    inputs, while grading the same file again gives the same inputs (and the same grade)."""
    import hashlib

    digest = hashlib.sha256(f"{int(base)}\0{student}\0{grade_id}\0".encode() + hashlib.sha256(content).digest())
    return int.from_bytes(digest.digest()[:4], "big") % 2**31


def begin_test_cell() -> None:
    """Top of a test cell's hidden tests: the visible checks that follow print their failures instead of
    stopping the cell, since the hidden test at the end of the cell gives its points."""
    try:
        from course_utils import checks
    except ImportError:  # pragma: no cover - course_utils is a dependency of autograder
        return
    checks.report_failures_only(True)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_ROOT_DIR = os.path.dirname(_PACKAGE_DIR)


def student_text(text: str) -> str:
    """A message fit for a student: no path into the instructor's files, no terminal colours."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(text))
    for prefix in (_PACKAGE_DIR, _ROOT_DIR):
        text = text.replace(prefix + os.sep, "").replace(prefix, "")
    return text


def score_unit(unit: Unit, objects: dict, seed: int | None = None) -> float:
    """Hidden-test entry point of a source notebook's test cell: the unit's points as a plain float.

    Runs probe and judge here (:func:`run_unit`), prints one line per failed check (its name, points and
    what was expected and obtained) and returns the points earned, which nbgrader reads as the cell's
    partial credit. It never raises for a failed check and never writes to stderr (nbgrader gives 0 to
    a graded cell with an error or stderr output); warnings of the student's code are silenced here.
    """
    try:
        from course_utils import checks

        checks.report_failures_only(False)
    except ImportError:  # pragma: no cover
        pass
    seed = hidden_test_seed() if seed is None else seed
    with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout):
        warnings.simplefilter("ignore")
        results = run_unit(unit, objects, seed)
    points = round(sum(r.points for r in results), 6)
    failed = [r for r in results if not r.passed]
    if not failed:
        print(f"{unit.title}: all {len(results)} checks passed ({unit.points:g} pt)")
    else:
        print(f"{unit.title}: {points:g} of {unit.points:g} pt; {len(failed)} of {len(results)} hidden checks failed:")
        for r in failed:
            print(f"- {r.name} (0 of {r.max_points:.3g} pt): {student_text(r.message)}")
    return float(points)


def hidden_tests(problem_set: ProblemSet) -> tuple:
    """The hidden-test entry points of a problem set, one per unit in the order of ``problem_set.units``.

    Each is named after its unit's ``grade_id`` and takes the unit's ``names`` as its parameters, in order, so
    that ``test_train_classifier, ... = hidden_tests(PROBLEM_SET)`` gives ``test_train_classifier(train_classifier,
    SUPERVISED)``: a source notebook's hidden region calls it with the student's objects and gets
    :func:`score_unit`'s points. The unit is looked up by its grade_id when the entry point is called.
    """
    return tuple(_hidden_test(problem_set, unit.grade_id, tuple(unit.names), unit.title) for unit in problem_set.units)


def _hidden_test(problem_set: ProblemSet, grade_id: str, names: tuple, title: str) -> Callable:
    signature = inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])

    def entry(*args, **kwargs) -> float:
        objects = dict(signature.bind(*args, **kwargs).arguments)  # TypeError on a wrong call, as a def would
        return score_unit(problem_set.unit(grade_id), objects)

    entry.__name__ = entry.__qualname__ = grade_id
    entry.__signature__ = signature
    entry.__doc__ = (f"Hidden test of {title} ({problem_set.id}): the points of {', '.join(names)} on the "
                     f"grader's inputs, as a float (see score_unit).")
    return entry


def assert_unit(unit: Unit, objects: dict, seed: int = 0) -> list:
    """Run a unit in-process and raise AssertionError listing every failed check."""
    results = run_unit(unit, objects, seed)
    failed = [r for r in results if not r.passed]
    if failed:
        lines = [f"- {r.name} ({r.max_points:g} pt): {r.message}" for r in failed]
        raise AssertionError(f"{unit.title}: {len(failed)} of {len(results)} checks failed\n" + "\n".join(lines))
    print(f"{unit.title}: all {len(results)} checks passed ({unit.points:g} pt)")
    return results


# ---- helpers for judges --------------------------------------------------------------------

def check(name: str, points: float, ok: bool, expected: str = "", obtained: str = "", hint: str = "") -> CheckResult:
    """Build a CheckResult whose failure message says what was expected and what was obtained."""
    if ok:
        return CheckResult(name, points, True, "passed")
    # One full stop at the end, whether or not the judge's text brought its own.
    msg = f"expected {expected}, obtained {obtained.rstrip().rstrip('.')}." if expected else obtained
    if hint:
        msg += f" {hint}"
    return CheckResult(name, points, False, msg)


def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"
