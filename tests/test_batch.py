"""course-kit grade: finding submissions in every layout, resuming, exports, a worker that dies.

Grading itself is replaced by a fast fake (``grade_fn``) here, so these tests start no kernel; the
real grading of a whole batch is exercised by tests/test_hostile.py.
"""
import csv
import json
import time
import textwrap
import zipfile
from pathlib import Path

import pytest

from autograder.batch import discover, grade_class, safe_extract, student_from_filename
from autograder.cli import main as cli_main
from autograder.core import CheckResult
from autograder.grader import GradeOptions, SubmissionResult, UnitResult

PSET = "autoencoder_probing"
NB = "autoencoder_probing.ipynb"
NOTEBOOK = json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [],
                                  "execution_count": None}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})

FAKE = textwrap.dedent('''
    """A fast stand-in for grade_submission: the score is read from the notebook's first cell."""
    import json, os
    from pathlib import Path
    from autograder.grader import SubmissionResult, UnitResult
    from autograder.core import CheckResult
    from autograder.problem_sets import get_problem_set

    def grade(pset_id, path, student="", options=None, data_dir=None):
        nb = json.loads(Path(path).read_text())
        src = nb["cells"][0]["source"] if nb.get("cells") else ""
        if "DIE" in src:
            os._exit(3)          # kills the worker process, as a hostile notebook could
        if "BROKEN" in src:      # the grader itself fails (as a kernel that cannot start would)
            raise RuntimeError("the kernel could not start: no such file /opt/python")
        if "HANG" in src:
            import time
            time.sleep(3600)     # a grader that never returns (a stuck kernel, a stopped process)
        score = float(src.split("=")[1]) if "score=" in src else 1.0
        pset = get_problem_set(pset_id)
        units = []
        for u in pset.units:
            ok = score >= u.points
            score -= u.points if ok else 0
            units.append(UnitResult(u.grade_id, u.title, u.points, [CheckResult(u.title, u.points, ok, "" if ok else "expected more")]))
        units += [UnitResult(m.grade_id, m.title, m.points, [], manual=True) for m in pset.manual]
        with open(os.environ["FAKE_GRADE_LOG"], "a") as fh:
            fh.write(student + "\\n")
        return SubmissionResult(pset_id, student, Path(path).name, units, [])
''')


def nb_with(source: str) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                                  "execution_count": None}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture
def fake_grader(tmp_path, monkeypatch):
    mod = tmp_path / "fakegrade_mod"
    mod.mkdir()
    (mod / "fake_grade_module.py").write_text(FAKE)
    monkeypatch.syspath_prepend(str(mod))
    log = tmp_path / "graded.log"
    log.write_text("")
    monkeypatch.setenv("FAKE_GRADE_LOG", str(log))
    return "fake_grade_module:grade", log


# ---- discovery ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, student, original", [
    ("jdoe_autoencoder_probing.ipynb", "jdoe", "autoencoder_probing.ipynb"),
    ("jdoe-autoencoder_probing (1).ipynb", "jdoe", "autoencoder_probing (1).ipynb"),
    ("jdoe_late_1234_5678_autoencoder_probing.ipynb", "jdoe", "autoencoder_probing.ipynb"),
    ("jdoe_1234_5678_Untitled.ipynb", "jdoe", "Untitled.ipynb"),
    ("jdoe_Untitled.ipynb", "jdoe", "Untitled.ipynb"),
    ("jdoe.ipynb", "jdoe", "jdoe.ipynb"),
])
def test_student_from_file_name(name, student, original):
    assert student_from_filename(name, PSET) == (student, original)


def test_name_regex_wins():
    assert student_from_filename("hw1-s12345-final.ipynb", PSET, r"hw1-(?P<student>s\d+)-")[0] == "s12345"


def test_nbgrader_layout_from_course_root(tmp_path):
    for student in ("alice", "bob"):
        p = tmp_path / "course" / "submitted" / student / PSET / NB
        p.parent.mkdir(parents=True)
        p.write_text(NOTEBOOK)
    (tmp_path / "course" / "submitted" / "alice" / PSET / ".ipynb_checkpoints").mkdir()
    (tmp_path / "course" / "submitted" / "alice" / PSET / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text(NOTEBOOK)
    subs = discover(PSET, tmp_path / "course")
    assert [(s.student, s.names, s.notes) for s in subs] == [("alice", [NB], []), ("bob", [NB], [])]
    # the course repository (nbgrader_config.py sets course/submitted): its submissions, not its own files
    (tmp_path / "nbgrader_config.py").write_text("")
    (tmp_path / "Makefile").write_text("")
    (tmp_path / "source").mkdir()
    assert [s.student for s in discover(PSET, tmp_path)] == ["alice", "bob"]


def test_the_course_repository_without_submissions_is_said(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("")
    (tmp_path / "source" / PSET).mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="is the course repository and holds no submissions yet"):
        discover(PSET, tmp_path)


def test_lms_zip_with_every_naming_case(tmp_path):
    files = {
        "alice_autoencoder_probing.ipynb": NOTEBOOK,                  # the usual
        "bob_autoencoder_probing (1).ipynb": NOTEBOOK,                # browser renamed it: only notebook, graded
        "carol_Untitled.ipynb": NOTEBOOK,
        "dave_autoencoder_probing.pdf": "%PDF",                       # no notebook at all
        "erin_autoencoder_probing.ipynb": NOTEBOOK,                   # two notebooks, one with the exact name
        "erin_Copy of autoencoder_probing.ipynb": NOTEBOOK,
        "frank_notes.ipynb": NOTEBOOK,                                # two notebooks, neither exact: both graded
        "frank_scratch.ipynb": NOTEBOOK,
        "gina_autoencoder_probing.ipynb.txt": NOTEBOOK,               # a notebook with the wrong extension
    }
    zpath = tmp_path / "download.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr("../evil.ipynb", NOTEBOOK)                        # zip-slip: ignored
    subs = {s.student: s for s in discover(PSET, zpath, tmp_path / "x")}
    assert sorted(subs) == ["alice", "bob", "carol", "dave", "erin", "frank", "gina"]
    assert not (tmp_path / "evil.ipynb").exists()
    assert subs["alice"].names == [NB] and subs["alice"].notes == []
    assert subs["bob"].names == ["autoencoder_probing (1).ipynb"] and "only notebook" in subs["bob"].notes[0]
    assert "Untitled.ipynb" in subs["carol"].notes[0]
    assert subs["dave"].files == [] and "No notebook was found" in subs["dave"].problem
    assert subs["erin"].names == [NB] and "Copy of" in subs["erin"].notes[0]
    assert len(subs["frank"].files) == 2 and "best score counts" in subs["frank"].notes[0]
    assert len(subs["gina"].files) == 1 and "holds a notebook" in subs["gina"].notes[0]


def test_student_folders_moodle_names_and_nested_submit_zip(tmp_path):
    root = tmp_path / "dl"
    (root / "Jane Doe_123_assignsubmission_file_").mkdir(parents=True)
    (root / "Jane Doe_123_assignsubmission_file_" / NB).write_text(NOTEBOOK)
    (root / "kim").mkdir()
    with zipfile.ZipFile(root / "kim" / f"{PSET}_kim.zip", "w") as zf:  # what course_utils.submit() makes
        zf.writestr(NB, NOTEBOOK)
        zf.writestr("manifest.json", "{}")
    subs = {s.student: s for s in discover(PSET, root)}
    assert subs["Jane Doe"].names == [NB]
    assert subs["kim"].names == [NB]


def test_safe_extract_refuses_absolute_and_parent_paths(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("/abs.txt", "x")
        zf.writestr("a/../../up.txt", "x")
        zf.writestr("ok/fine.txt", "x")
    safe_extract(z, tmp_path / "out")
    assert (tmp_path / "out" / "ok" / "fine.txt").exists()
    assert not (tmp_path / "up.txt").exists() and not Path("/abs.txt").exists()


# ---- grading a class (fake grader) -------------------------------------------------------------

def _class(root: Path, scores: dict) -> Path:
    for student, src in scores.items():
        p = root / "submitted" / student / PSET / NB
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(nb_with(src))
    return root


def test_resume_regrade_changed_and_exports(tmp_path, fake_grader):
    fn, log = fake_grader
    course = _class(tmp_path / "course", {"alice": "score=4", "bob": "score=2", "carol": "score=0"})
    out = tmp_path / "out"
    r1 = grade_class(PSET, course, out, workers=2, options=GradeOptions(), progress=False, grade_fn=fn)
    assert sorted(r1.graded) == ["alice", "bob", "carol"] and r1.skipped == []
    assert sorted(log.read_text().split()) == ["alice", "bob", "carol"]
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol"]
    assert list(rows[0])[:8] == ["student", "test_encoder", "test_decoder", "test_train_ae", "test_train_classifier",
                                 "report (manual)", "total", "max"]
    # max: the problem set's total, automatic (4) + manual (1); the report is not graded yet
    assert [(r["total"], r["max"], r["report (manual)"]) for r in rows] == [("4", "5", ""), ("2", "5", ""), ("0", "5", "")]
    page = (out / "feedback" / "bob.html").read_text()
    assert "expected more" in page and "graded by hand" in page

    log.write_text("")  # a second run grades nothing ...
    r2 = grade_class(PSET, course, out, workers=2, progress=False, grade_fn=fn)
    assert r2.graded == [] and sorted(r2.skipped) == ["alice", "bob", "carol"] and log.read_text() == ""
    (course / "submitted" / "bob" / PSET / NB).write_text(nb_with("score=3"))  # ... but what changed
    r3 = grade_class(PSET, course, out, workers=2, progress=False, grade_fn=fn)
    assert r3.graded == ["bob"] and r3.results["bob"].score == 3
    r4 = grade_class(PSET, course, out, workers=2, regrade=True, progress=False, grade_fn=fn)
    assert sorted(r4.graded) == ["alice", "bob", "carol"]


def test_interrupted_run_keeps_what_was_graded(tmp_path, fake_grader):
    fn, log = fake_grader
    course = _class(tmp_path / "course", {"alice": "score=4", "bob": "score=2"})
    out = tmp_path / "out"
    grade_class(PSET, course, out, workers=1, progress=False, grade_fn=fn)
    (out / "results" / "bob.json").unlink()  # as if the run had stopped after alice
    (out / "results" / "alice.json.tmp").write_text("{half")  # a half-written file never counts
    log.write_text("")
    r = grade_class(PSET, course, out, workers=1, progress=False, grade_fn=fn)
    assert r.graded == ["bob"] and log.read_text().split() == ["bob"]


def test_a_submission_that_kills_its_worker_does_not_stop_the_batch(tmp_path, fake_grader):
    fn, log = fake_grader
    course = _class(tmp_path / "course", {"alice": "score=4", "mallory": "DIE", "bob": "score=2", "carol": "score=1"})
    r = grade_class(PSET, course, tmp_path / "out", workers=2, progress=False, grade_fn=fn)
    assert r.killed == ["mallory"] and list(r.errors) == ["mallory"] and "died" in r.errors["mallory"]
    # a worker that died twice on one submission is the grader's failure: no grade, graded again next run
    assert r.results["mallory"].grader_error and "Not graded yet" in r.results["mallory"].notes[0]
    assert {k: v.score for k, v in r.results.items() if not v.grader_error} == {"alice": 4, "bob": 2, "carol": 1}
    rows = {row["student"]: row["total"] for row in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert rows == {"alice": "4", "bob": "2", "carol": "1", "mallory": ""}


def test_a_job_past_its_deadline_is_stopped_and_not_scored(tmp_path, fake_grader):
    fn, log = fake_grader
    course = _class(tmp_path / "course", {"alice": "score=4", "hugo": "HANG", "bob": "score=2"})
    start = time.monotonic()
    r = grade_class(PSET, course, tmp_path / "out", workers=2, progress=False, grade_fn=fn,
                    options=GradeOptions(job_timeout=6))
    assert time.monotonic() - start < 60
    assert list(r.errors) == ["hugo"] and "deadline of 6 s" in r.errors["hugo"]
    assert r.results["hugo"].grader_error
    assert {k: v.score for k, v in r.results.items() if not v.grader_error} == {"alice": 4, "bob": 2}


def test_a_batch_whose_first_submissions_all_fail_in_the_grader_stops_and_grades_nobody(tmp_path, fake_grader,
                                                                                      monkeypatch, capsys):
    """A grader that cannot work (here: every kernel fails to start) must not grade a class of 0s: the first
    submissions fail the same way, the batch stops there, nobody gets a score, and the command exits non-zero
    saying what failed and what to do."""
    import functools

    from autograder import batch

    fn, log = fake_grader
    course = _class(tmp_path / "course", {f"s{i}": "BROKEN" for i in range(8)})
    monkeypatch.setattr(batch, "grade_class", functools.partial(batch.grade_class, grade_fn=fn))
    rc = cli_main(["grade", PSET, str(course), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "were NOT graded because the grader failed (not the students)" in err
    assert "the kernel could not start" in err and "The batch stopped early" in err and "run the same command" in err
    assert len(log.read_text().split()) == 0  # the fake raised before logging: nothing was graded
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert all(r["total"] == "" and r["status"] == "grader error" for r in rows)  # no 0 written for anyone
    results = list((tmp_path / "out" / "results").glob("*.json"))
    assert len(results) <= 3  # stopped after the first three, the rest never started
    assert all(json.loads(p.read_text()).get("score") is None for p in results)


def test_different_grader_failures_do_not_stop_the_batch(tmp_path, fake_grader):
    fn, log = fake_grader
    course = _class(tmp_path / "course", {"a": "BROKEN", "b": "DIE", "c": "score=4", "d": "score=2"})
    r = grade_class(PSET, course, tmp_path / "out", workers=1, progress=False, grade_fn=fn)
    assert not r.stopped and sorted(r.errors) == ["a", "b"]
    assert {k: v.score for k, v in r.results.items() if not v.grader_error} == {"c": 4, "d": 2}


def test_cli_grade_command(tmp_path, capsys):
    lms = tmp_path / "lms"
    lms.mkdir()
    (lms / "dave_autoencoder_probing.pdf").write_text("%PDF")  # no kernel needed: nothing to run
    (lms / "erin_autoencoder_probing.ipynb").write_text("{broken")
    rc = cli_main(["grade", PSET, str(lms), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "dave" in out and "erin" in out and "2 graded" in out
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert {r["student"]: r["total"] for r in rows} == {"dave": "0", "erin": "0"}
    assert "not a valid notebook" in (tmp_path / "out" / "feedback" / "erin.html").read_text()
    assert cli_main(["grade", "nope", str(lms)]) == 2


def test_one_front_door_keeps_the_best_candidate_and_never_scores_a_grader_failure():
    from autograder.grader import grade_candidates, grader_error_result
    from autograder.problem_sets import get_problem_set

    pset = get_problem_set(PSET)

    def fake(pset_id, path, student, options=None, data_dir=None):
        if path == "broken-grader":
            return grader_error_result(pset, student, path, "the kernel did not start")
        score = float(path)
        units = [UnitResult(u.grade_id, u.title, u.points, [CheckResult(u.title, u.points, score >= i + 1, "")])
                 for i, u in enumerate(pset.units)]
        return SubmissionResult(pset_id, student, path, units, [])

    best = grade_candidates(PSET, [("1", "a.ipynb"), ("3", "b.ipynb"), ("2", "c.ipynb")], "s", grade=fake)
    assert best.score == 3 and best.notebook == "b.ipynb"
    failed = grade_candidates(PSET, [("4", "a.ipynb"), ("broken-grader", "b.ipynb")], "s", grade=fake)
    assert failed.grader_error and failed.notebook == "b.ipynb"
