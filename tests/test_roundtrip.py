"""The nbgrader round trip of every problem set: release -> sample submissions -> grade.

The solution gets full marks, the untouched release 0, each deliberately wrong sample partial
credit; and the source notebook executes top to bottom in ``grading`` mode with its hidden tests
passing (what ``nbgrader validate`` checks for the instructor).
"""
import os
import time

import nbformat
import pytest

from autograder.demo import graded_cell_points
from autograder.grader import GradeOptions, grade_submission
from autograder.problem_sets import REPO_ROOT, get_problem_set
from autograder.release import available_psets, make_sample_submissions

PSETS = available_psets()


@pytest.fixture(scope="module", params=PSETS)
def graded(request, tmp_path_factory):
    pset = request.param
    out = tmp_path_factory.mktemp(f"submitted_{pset}")
    samples = make_sample_submissions(pset, out)
    results = {student: grade_submission(pset, path, student, GradeOptions(cell_timeout=120))
               for student, path in samples.items()}
    return pset, results


def test_solution_gets_full_marks(graded):
    pset, results = graded
    r = results["solution"]
    failed = [(u.title, c.name, c.message) for u in r.units for c in u.checks if not c.passed]
    assert failed == [] and r.score == r.max_score == get_problem_set(pset).auto_points
    assert r.status == "graded"
    assert not r.flags, f"an honest solution was flagged: {r.flags} {r.notes}"
    # Every cell ran in the grader's sandbox too (there the data folder is read-only, and the test session's is new).
    assert r.cell_errors == [], r.cell_errors


def test_problem_set_declares_the_heavy_libraries_its_notebook_loads(graded):
    """The grader's kernel zygote imports a problem set's ``preload`` once for every kernel it forks: a heavy library
    the solution's cells still import themselves (costing seconds in every submission's kernel) must be declared."""
    pset, results = graded
    missed = results["solution"].kernel_modules
    assert missed == [], f"{pset}: add {tuple(missed)!r} to preload= in its PROBLEM_SET (autograder/{pset}.py)"


def test_untouched_release_gets_zero(graded):
    _pset, results = graded
    r = results["untouched"]
    assert r.score == 0
    messages = [c.message for u in r.units for c in u.checks]
    # Every check says why: the template's NotImplementedError, or what was expected.
    assert all(("NotImplementedError" in m or "not defined" in m or "expected" in m) for m in messages), messages
    assert sum("NotImplementedError" in m for m in messages) >= len(messages) // 2


def test_wrong_samples_get_partial_credit(graded):
    pset, results = graded
    wrong = [s for s in results if s not in ("solution", "untouched")]
    assert wrong, f"{pset} has no SAMPLE_MUTATIONS"
    for student in wrong:
        r = results[student]
        assert 0 < r.score < r.max_score, (student, r.score)
        assert not r.flags, f"an honest submission was flagged: {r.flags}"
        failed = [c for u in r.units for c in u.checks if not c.passed]
        assert all("expected" in c.message for c in failed), [c.message for c in failed]


def test_manual_report_is_listed_but_not_autograded(graded):
    _pset, results = graded
    manual = [u for u in results["solution"].units if u.manual]
    assert [u.grade_id for u in manual] == ["report"] and manual[0].max_points == 1


@pytest.mark.parametrize("pset", PSETS)
def test_source_notebook_runs_in_grading_mode_with_hidden_tests_passing(pset, tmp_path, monkeypatch):
    """Like `nbgrader validate` on the source: every cell runs, every hidden test passes, in seconds."""
    from nbclient import NotebookClient

    nb = nbformat.read(str(REPO_ROOT / "source" / pset / get_problem_set(pset).notebook), 4)
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    monkeypatch.setenv("COURSE_SKIP_INSTALL", "1")
    monkeypatch.setenv("COURSE_MOUNT_DRIVE", "0")
    start = time.monotonic()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.monotonic() - start
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert graded
    for cell in graded:
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert "all" in text and "checks passed" in text, text
        # the hidden test's value is the cell's points, which nbgrader reads as its score
        assert graded_cell_points(cell) == cell.metadata.nbgrader.points, text
    assert seconds < 240, f"grading mode took {seconds:.0f} s"
    assert os.environ.get("COURSE_MODE") != "full"
