"""The real nbgrader pipeline on a copy of the course (the files git tracks, as a fresh clone has them):
generate_assignment -> sample submissions in course/submitted/ -> autograde -> generate_feedback -> export.

nbgrader's points must equal `course-kit grade`'s on the same notebooks (per test cell), with no checksum
warning, and the feedback must hold no hidden test, no traceback and no path into the instructor's files.
About a minute and a half per problem set on 2 CPU cores (nbgrader runs each notebook in grading mode, the
kit's grader runs it again).
"""
import csv
import json

import nbformat
import pytest

from autograder.gradebook import write_results
from autograder.grader import GradeOptions, grade_submission
from autograder.problem_sets import REPO_ROOT, get_problem_set
from autograder.release import available_psets, make_sample_submissions
from coursecopy import copy_course, nbgrader

pytestmark = pytest.mark.slow

LEAKS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "autograder", "_ag.", "begin_test_cell", "Traceback (most recent",
         "----> ", "File \"", "site-packages")


def _gradebook_scores(course, pset_id):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'course' / 'gradebook.db'}", "representation-learning") as gb:
        return {sub.student_id: {g.name: g.auto_score for g in sub.notebooks[0].grades}
                for sub in gb.assignment_submissions(pset_id)}


def _export(course):
    run = nbgrader(course, "export")
    assert run.returncode == 0, run.stdout + run.stderr
    return {(r["assignment"], r["student_id"]): r for r in csv.DictReader((course / "grades.csv").open())}


@pytest.fixture(scope="module", params=available_psets())
def pipeline(request, tmp_path_factory):
    pset_id = request.param
    pset = get_problem_set(pset_id)
    course = copy_course(tmp_path_factory.mktemp(f"nbgrader_{pset_id}") / "course-kit")
    logs = {}
    for step in (("generate_assignment", pset_id, "--force"),):
        run = nbgrader(course, *step)
        assert run.returncode == 0, run.stdout + run.stderr
    samples = make_sample_submissions(pset_id, course / "course" / "submitted", course)
    run = nbgrader(course, "autograde", pset_id)
    logs["autograde"] = run.stdout + run.stderr
    assert run.returncode == 0, logs["autograde"]
    run = nbgrader(course, "generate_feedback", pset_id)
    logs["feedback"] = run.stdout + run.stderr
    assert run.returncode == 0, logs["feedback"]
    assert "not recognized" not in logs["feedback"], logs["feedback"]  # the kit's preprocessors take nbgrader's config
    kit = {}
    for student, path in samples.items():
        kit[student] = grade_submission(pset_id, path, student, GradeOptions(cell_timeout=120))
        assert kit[student].status != "grader error", (pset_id, student, kit[student].flags)
    nbg = _gradebook_scores(course, pset_id)
    lines = [f"{pset_id}: student, nbgrader autograde, course-kit grade (automatic points of {pset.auto_points:g})"]
    for student, r in sorted(kit.items()):
        lines.append(f"  {student}: {sum(v or 0 for k, v in nbg[student].items() if k != 'report'):g}, {r.score:g}  "
                     + json.dumps({u.grade_id: [nbg[student][u.grade_id], u.points] for u in r.units if not u.manual}))
    print("\n".join(lines))
    return {"pset": pset, "course": course, "samples": samples, "kit": kit, "nbgrader": nbg, "logs": logs}


def test_nbgrader_autograde_gives_the_same_points_as_course_kit_grade(pipeline):
    pset, kit, nbg = pipeline["pset"], pipeline["kit"], pipeline["nbgrader"]
    assert sorted(nbg) == sorted(kit)
    for student, r in kit.items():
        assert r.status == "graded" and not r.flags, (student, r.notes, r.flags)
        for unit in pset.units:
            assert nbg[student][unit.grade_id] == pytest.approx(r.unit(unit.grade_id).points, abs=1e-6), \
                (student, unit.grade_id)
    assert kit["solution"].score == pset.auto_points and kit["untouched"].score == 0
    wrong = [s for s in kit if s not in ("solution", "untouched")]
    assert wrong and all(0 < kit[s].score < pset.auto_points for s in wrong), "partial credit, in both graders"


def test_no_checksum_warning_for_cells_the_student_could_not_edit(pipeline):
    log = pipeline["logs"]["autograde"]
    assert "checksum" not in log.lower() and "has changed" not in log, log[-3000:]
    assert "Inconsistent checksums" not in log


def test_feedback_holds_no_hidden_test_traceback_or_instructor_path(pipeline):
    course, pset = pipeline["course"], pipeline["pset"]
    pages = sorted((course / "course" / "feedback").glob(f"*/{pset.id}/*.html"))
    assert len(pages) == len(pipeline["samples"])
    for page in pages:
        text = page.read_text()
        for leak in LEAKS + (str(course), str(REPO_ROOT)):
            assert leak not in text, f"{leak!r} in {page.relative_to(course)}"
        assert "Visible checks for" in text  # the test cells are there, without their hidden regions
    wrong = next(p for p in pages if p.parts[-3] not in ("solution", "untouched")).read_text()
    assert "hidden checks failed" in wrong  # what failed, in words the student can act on


def test_nbgrader_export_gives_the_final_grade_out_of_5_and_course_kit_can_write_the_same(pipeline):
    course, pset, kit = pipeline["course"], pipeline["pset"], pipeline["kit"]
    before = _export(course)
    for student, r in kit.items():
        row = before[(pset.id, student)]
        assert float(row["max_score"]) == pset.total_points == 5
        assert float(row["score"]) == pytest.approx(r.score, abs=1e-5)  # the report is not graded yet
    # course-kit's results written into the gradebook nbgrader autograded: the same final grades
    write_results(pset.id, kit, course / "course" / "gradebook.db", root=course)
    after = _export(course)
    assert {k: v["score"] for k, v in after.items()} == {k: v["score"] for k, v in before.items()}


def test_nbgrader_validate_passes_the_source_and_reports_partial_credit(pipeline, tmp_path):
    course, pset = pipeline["course"], pipeline["pset"]
    if pset.id != "autoencoder_probing":
        pytest.skip("one problem set is enough to check validate")
    run = nbgrader(course, "validate", f"source/{pset.id}/{pset.notebook}")
    assert run.returncode == 0 and "Success! Your notebook passes all the tests." in run.stdout, run.stdout + run.stderr
    nb = nbformat.read(str(course / "source" / pset.id / pset.notebook), 4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "decoder")
    cell.source = cell.source.replace("nn.Sigmoid()", "nn.ReLU()")  # the wrong_decoder sample's slip
    wrong = tmp_path / pset.notebook
    nbformat.write(nb, str(wrong))
    run = nbgrader(course, "validate", str(wrong))
    assert "Partial credit; passed some but not all of the tests" in run.stdout, run.stdout + run.stderr
    assert "test_decoder" in run.stdout or "_ag.test_decoder" in run.stdout or "checks.check_decoder" in run.stdout
