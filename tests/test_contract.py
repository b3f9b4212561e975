"""The problem-set contract (docs/ARCHITECTURE.md, "Adding a problem set"): every registered problem set is
the same five files, named after it, wired the same way. A new problem set that skips one fails here."""
from __future__ import annotations

import ast
import importlib
import inspect
import json
from pathlib import Path

import pytest

from autograder.core import CheckNames
from autograder.problem_sets import PROBLEM_SETS, get_problem_set
from course_utils.configs import run_config
from course_utils.modes import MODES

ROOT = Path(__file__).resolve().parent.parent


def _notebook_code(pset_id: str) -> list:
    nb = json.loads((ROOT / "source" / pset_id / f"{pset_id}.ipynb").read_text())
    return [("".join(c["source"]) if isinstance(c["source"], list) else c["source"], c.get("metadata", {}))
            for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("pset_id", PROBLEM_SETS)
def test_the_five_files_exist_and_are_named_after_the_problem_set(pset_id):
    for path in (f"source/{pset_id}/{pset_id}.ipynb", f"course_utils/configs/{pset_id}.py",
                 f"course_utils/checks/{pset_id}.py", f"course_utils/probes/{pset_id}.py", f"autograder/{pset_id}.py"):
        assert (ROOT / path).is_file(), f"{pset_id}: {path} is missing (docs/ARCHITECTURE.md, 'Adding a problem set')"
    pset = get_problem_set(pset_id)
    assert pset.id == pset_id and pset.notebook == f"{pset_id}.ipynb"


@pytest.mark.parametrize("pset_id", PROBLEM_SETS)
def test_run_configuration_gives_every_mode_the_same_settings(pset_id):
    keys = {mode: set(run_config(pset_id, mode).values) for mode in MODES}
    assert len({frozenset(k) for k in keys.values()}) == 1, keys


@pytest.mark.parametrize("pset_id", PROBLEM_SETS)
def test_units_use_the_problem_sets_own_probes_checks_and_entry_points(pset_id):
    pset = get_problem_set(pset_id)
    reference = importlib.import_module(f"autograder.{pset_id}")
    checks = importlib.import_module(f"course_utils.checks.{pset_id}")
    probes = importlib.import_module(f"course_utils.probes.{pset_id}")
    code = _notebook_code(pset_id)
    imports = next(src for src, _ in code if f'run_config("{pset_id}", MODE)' in src)
    assert f"from course_utils.checks import {pset_id} as checks" in imports
    tests = {meta.get("nbgrader", {}).get("grade_id"): src for src, meta in code
             if meta.get("nbgrader", {}).get("grade") and not meta.get("nbgrader", {}).get("solution")}
    for unit in pset.units:
        module, _, name = unit.probe.partition(":")
        assert module == probes.__name__ and callable(getattr(probes, name)), unit.probe
        assert callable(getattr(reference, unit.grade_id)), f"autograder.{pset_id}.{unit.grade_id} (hidden-test entry)"
        cell = tests[unit.grade_id]
        assert f"_ag.{unit.grade_id}(" in cell and f"import autograder.{pset_id} as _ag" in cell, cell
        visible = [line for line in cell.splitlines() if line.startswith("checks.check_")]
        assert visible, f"{unit.grade_id}: no visible check"
        for line in visible:
            assert callable(getattr(checks, line.split("(")[0].split(".")[1])), line
    assert not any("[MODE]" in src for src, _ in code), "a run size outside the run configuration"


@pytest.mark.parametrize("pset_id", PROBLEM_SETS)
def test_student_side_modules_hold_no_reference(pset_id):
    for name in (f"course_utils.checks.{pset_id}", f"course_utils.probes.{pset_id}", f"course_utils.configs.{pset_id}"):
        src = inspect.getsource(importlib.import_module(name))
        assert "import autograder" not in src and "from autograder" not in src, name


def _unit_judge_files(pset_id: str) -> list:
    """``autograder/judges/<id>_<unit>.py``: the judges of single units, moved out of a long judges module."""
    units = {unit.grade_id.removeprefix("test_") for unit in get_problem_set(pset_id).units}
    return [f"{pset_id}_{unit}" for unit in sorted(units)
            if (ROOT / "autograder" / "judges" / f"{pset_id}_{unit}.py").is_file()]


def _grading_modules(pset_id: str) -> list:
    """``autograder.<id>`` and, when the problem set is split, ``autograder.judges.<id>`` and the judges of single
    units, ``autograder.judges.<id>_<unit>``."""
    names = [f"autograder.{pset_id}"] + ([f"autograder.judges.{pset_id}"]
                                         if (ROOT / "autograder" / "judges" / f"{pset_id}.py").is_file() else [])
    names += [f"autograder.judges.{name}" for name in _unit_judge_files(pset_id)]
    return [importlib.import_module(name) for name in names]


def test_judges_folder_holds_only_problem_sets_and_their_common_helpers():
    files = {p.name for p in (ROOT / "autograder" / "judges").glob("*.py")}
    allowed = {f"{pset_id}.py" for pset_id in PROBLEM_SETS}
    allowed |= {f"{name}.py" for pset_id in PROBLEM_SETS for name in _unit_judge_files(pset_id)}
    assert files - {"__init__.py", "common.py"} <= allowed, files - allowed


@pytest.mark.parametrize("pset_id", PROBLEM_SETS)
def test_each_check_name_is_declared_once_and_entry_points_follow_the_units(pset_id):
    pset = get_problem_set(pset_id)
    modules = _grading_modules(pset_id)
    reference = modules[0]
    declared = {cls.names: cls for module in modules for cls in vars(module).values()
                if isinstance(cls, type) and issubclass(cls, CheckNames) and cls is not CheckNames}
    source = "".join(inspect.getsource(module) for module in modules)
    for unit in pset.units:
        assert {unit.judge.__module__, unit.make_inputs.__module__} <= {m.__name__ for m in modules}, unit.grade_id
        assert unit.check_names in declared, f"{unit.grade_id}: check_names=<Unit>Checks.names (core.CheckNames)"
        for name in unit.check_names:
            assert source.count(f'"{name}"') == 1, f"{name!r}: written {source.count(name)} times"
        entry = getattr(reference, unit.grade_id)
        assert entry.__name__ == unit.grade_id, f"{unit.grade_id} is bound to the entry point of {entry.__name__}"
        assert tuple(inspect.signature(entry).parameters) == tuple(unit.names), unit.grade_id
    for judges in modules[1:]:  # judges modules are imported by autograder/<id>.py, never the other way round
        imported = set()
        for node in ast.walk(ast.parse(inspect.getsource(judges))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):  # relative to autograder.judges: level 1 is it, level 2 autograder
                base = ".".join(["autograder", "judges"][:max(0, 3 - node.level)] if node.level else [])
                base = ".".join(filter(None, [base, node.module]))
                imported |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        assert f"autograder.{pset_id}" not in imported, f"{judges.__name__} imports autograder/{pset_id}.py"


def test_no_module_of_the_two_packages_passes_about_400_lines():
    """A module that grows past ~400 lines does more than one job: split it (for a problem set's judges, see
    docs/ARCHITECTURE.md, "Adding a problem set": judges/<id>.py and judges/<id>_<unit>.py)."""
    long = {str(path.relative_to(ROOT)): n for package in ("course_utils", "autograder")
            for path in (ROOT / package).rglob("*.py")
            if (n := len(path.read_text().splitlines())) > 420}
    assert long == {}, f"modules over ~400 lines: {long}"


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py")))
def test_every_benchmark_script_compiles_and_names_only_what_exists(script):
    """The benchmarks are run by hand (make benchmarks), not by the suite: at least the names they import from the
    kit must exist (a renamed helper would otherwise break a benchmark unnoticed)."""
    tree = ast.parse((ROOT / "benchmarks" / script).read_text())
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("autograder", "course_utils"):
            module = importlib.import_module(node.module)
            missing += [f"{node.module}.{a.name}" for a in node.names
                        if not hasattr(module, a.name) and not _is_module(f"{node.module}.{a.name}")]
    assert missing == [], f"{script} imports names that do not exist: {missing}"


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False
