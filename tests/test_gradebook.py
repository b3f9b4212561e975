"""One final grade: course-kit's automatic points in nbgrader's gradebook, manual points read back.

Results are built here (no kernel); `nbgrader export` runs for real on a temporary gradebook.
"""
import csv
import io
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from autograder import batch
from autograder.batch import BatchReport
from autograder.cli import main as cli_main
from autograder.core import CheckResult, complete
from autograder.feedback import render_feedback
from autograder.gradebook import GradebookError, db_url, read_manual_scores, sync_gradebook, write_results
from autograder.grader import SubmissionResult, UnitResult, _zero_result
from autograder.problem_sets import get_problem_set

PSET = "autoencoder_probing"
NB_ID = "autoencoder_probing"
COURSE = "representation-learning"


def result(student: str, failed: set = frozenset()) -> SubmissionResult:
    """A graded submission whose checks named in ``failed`` failed."""
    pset = get_problem_set(PSET)
    units = []
    for u in pset.units:
        units.append(UnitResult(u.grade_id, u.title, u.points, complete(u, [
            CheckResult(n, 1.0, n not in failed, "passed" if n not in failed else "expected one thing, obtained another.")
            for n in u.check_names])))
    units += [UnitResult(m.grade_id, m.title, m.points, [], manual=True) for m in pset.manual]
    return SubmissionResult(PSET, student, f"{PSET}.ipynb", units)


def class_results() -> dict:
    return {
        "alice": result("alice"),
        "bob": result("bob", {"Decoder output in (0, 1)", "Decoder computes the specified layers",
                              "train_ae returns the loss of every epoch"}),
        "carol": _zero_result(get_problem_set(PSET), "carol", "", "No notebook was found in your submission."),
    }


def grades(db) -> dict:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(db_url(db), COURSE) as gb:
        for sub in gb.assignment_submissions(PSET):
            nb = sub.notebooks[0]
            out[sub.student_id] = {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in nb.grades}
    return out


def give_manual(db, scores: dict) -> None:
    """What the formgrader does when the instructor grades the report."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url(db), COURSE) as gb:
        for student, points in scores.items():
            gb.find_grade("report", NB_ID, PSET, student).manual_score = points
        gb.db.commit()


def nbgrader_export(db, where: Path) -> dict:
    where.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("nbgrader")
    cmd = [exe] if exe else ["python", "-m", "nbgrader"]
    run = subprocess.run(cmd + ["export", "--db", db_url(db), "--course", COURSE, "--to", "export.csv"], cwd=where,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return {row["student_id"]: row for row in csv.DictReader((where / "export.csv").open())}


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    db = tmp_path_factory.mktemp("gb") / "gradebook.db"
    assert write_results(PSET, class_results(), db) == 3
    return db


def test_automatic_points_per_test_cell_and_the_report_left_for_the_formgrader(gradebook):
    got = grades(gradebook)
    assert sorted(got) == ["alice", "bob", "carol"]
    assert got["alice"] == {"test_encoder": (1, None, False), "test_decoder": (1, None, False),
                            "test_train_ae": (1, None, False), "test_train_classifier": (1, None, False),
                            "report": (None, None, True)}
    # half of a unit is shared by its checks, half needs them all: 2 of 4 Decoder checks, 1 of 3 train_ae checks lost
    assert got["bob"]["test_decoder"][0] == pytest.approx(0.25)
    assert got["bob"]["test_train_ae"][0] == pytest.approx(1 / 3)
    assert all(got["carol"][g][0] == 0 for g in ("test_encoder", "test_decoder", "test_train_ae", "test_train_classifier"))


def test_the_gradebook_notebook_is_recorded_by_nbgrader_from_the_source(gradebook):
    from nbgrader.api import Gradebook

    with Gradebook(db_url(gradebook), COURSE) as gb:
        nb = gb.find_notebook(NB_ID, PSET)
        assert {c.name: c.max_score for c in nb.grade_cells} == {
            "test_encoder": 1, "test_decoder": 1, "test_train_ae": 1, "test_train_classifier": 1, "report": 1}
        assert "_ag.test_decoder(Decoder)" in gb.find_source_cell("test_decoder", NB_ID, PSET).source
        assert [c.name for c in nb.solution_cells if c.name == "report"] == ["report"]


def test_manual_points_come_back_and_nbgrader_export_gives_the_final_grade(gradebook, tmp_path):
    results = class_results()
    give_manual(gradebook, {"alice": 1.0, "bob": 0.5})
    assert read_manual_scores(PSET, gradebook) == {"alice": {"report": 1.0}, "bob": {"report": 0.5}}
    # grading again (a regrade) keeps the manual points
    manual = sync_gradebook(PSET, results, gradebook, tmp_path / "grades.csv")
    assert manual == {"alice": {"report": 1.0}, "bob": {"report": 0.5}}
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "grades.csv").open())}
    assert [(rows[s]["report (manual)"], rows[s]["total"], rows[s]["max"]) for s in ("alice", "bob", "carol")] == \
        [("1", "5", "5"), ("0.5", "3.0833", "5"), ("", "0", "5")]
    exported = nbgrader_export(gradebook, tmp_path / "export")
    for student, r in results.items():
        row = exported[student]
        hand = manual.get(student, {}).get("report", 0.0)
        assert float(row["max_score"]) == 5.0
        assert float(row["score"]) == pytest.approx(r.score + hand, abs=1e-5)
        # the same automatic points as the student's feedback page
        assert f"Autograded score: {r.score:.2f}".rstrip("0").rstrip(".") in render_feedback(r)
        assert float(row["score"]) - hand == pytest.approx(r.score, abs=1e-5)


def test_a_gradebook_that_does_not_match_the_problem_set_is_a_clear_error(tmp_path):
    from nbgrader.api import Gradebook

    db = tmp_path / "gradebook.db"
    with Gradebook(db_url(db), COURSE) as gb:
        gb.add_assignment(PSET)
        gb.add_notebook(NB_ID, PSET)
        gb.add_grade_cell("test_encoder", NB_ID, PSET, max_score=2, cell_type="code")
    with pytest.raises(GradebookError, match=r"does not match the problem set: report \(gradebook: missing"):
        write_results(PSET, class_results(), db)
    with pytest.raises(GradebookError, match=r"test_encoder \(gradebook: 2 pt, problem set: 1 pt\).*course-kit release"):
        write_results(PSET, class_results(), db)


def test_gradebook_paths(tmp_path):
    assert db_url(tmp_path / "gb.db") == f"sqlite:///{tmp_path / 'gb.db'}"
    assert db_url("sqlite:////x/y.db") == "sqlite:////x/y.db"
    with pytest.raises(GradebookError, match="is a folder"):
        db_url(tmp_path)
    with pytest.raises(GradebookError, match="does not exist"):
        db_url(tmp_path / "missing" / "gradebook.db")


# ---- course-kit grade --gradebook ---------------------------------------------------------------

@pytest.fixture
def fake_grade_class(monkeypatch):
    """grade_class replaced by one that 'grades' the class of class_results() (no kernels)."""
    calls = []

    def fake(pset_id, source, out_dir, *args, **kwargs):
        calls.append(source)
        results = class_results()
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        batch.export_csv(pset_id, results, Path(out_dir) / "grades.csv")
        return BatchReport(graded=sorted(results), results=results, seconds=1.0)

    monkeypatch.setattr(batch, "grade_class", fake)
    return calls


def test_grade_with_gradebook_writes_the_final_grade(tmp_path, fake_grade_class):
    db, out = tmp_path / "gradebook.db", tmp_path / "graded"
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = cli_main(["grade", PSET, str(tmp_path), "--out", str(out), "--gradebook", str(db), "--no-progress"])
    assert code == 0 and fake_grade_class
    text = buf.getvalue()
    assert "automatic points written for 3 students; manual points read back for 0" in text
    assert text.index("student") < text.index("Class summary") < text.index("3 graded")
    assert grades(db)["bob"]["test_decoder"][0] == pytest.approx(0.25)
    give_manual(db, {"bob": 1.0})
    with redirect_stdout(io.StringIO()):
        assert cli_main(["grade", PSET, str(tmp_path), "--out", str(out), "--gradebook", str(db), "--no-progress"]) == 0
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert (rows["bob"]["report (manual)"], rows["bob"]["total"], rows["bob"]["max"]) == ("1", "3.5833", "5")
    assert (out / "summary.csv").is_file() and (out / "scores.png").is_file()


def test_a_wrong_gradebook_path_is_said_before_grading(tmp_path, fake_grade_class, capsys):
    code = cli_main(["grade", PSET, str(tmp_path), "--gradebook", str(tmp_path / "nowhere" / "gb.db"), "--no-progress"])
    assert code == 2 and fake_grade_class == []
    assert "--gradebook" in capsys.readouterr().err


def test_a_submission_the_grader_failed_on_gets_no_grade_in_the_gradebook(tmp_path):
    from autograder.grader import grader_error_result
    from autograder.summary import summarise, summary_text

    results = class_results()
    results["dave"] = grader_error_result(get_problem_set(PSET), "dave", f"{PSET}.ipynb", "the kernel could not start")
    db = tmp_path / "gradebook.db"
    assert write_results(PSET, results, db) == 3
    assert "dave" not in grades(db), "a grader failure is not a 0"
    summary = summarise(PSET, results)
    assert summary.students == 3 and summary.not_graded == 1
    assert "1 submission(s) could not be graded (grader error) and are left out." in summary_text(summary)
