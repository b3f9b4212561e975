"""The problem-set contract (docs/ARCHITECTURE.md, "Adding a problem set"): every registered problem set is
the same five files, named after it, wired the same way. A new problem set that skips one fails here."""
from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import pytest

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
