"""Releasing with plain nbgrader in a fresh clone, and `course-kit release` never destroying committed files.

A fresh clone has no ``course/`` (git ignores it), where the gradebook lives: ``nbgrader generate_assignment
--force`` used to delete the committed release and then fail with "unable to open database file".
"""
import nbformat
import pytest

from autograder.problem_sets import REPO_ROOT, get_problem_set
from autograder.release import ReleaseError, _canonical, available_psets, build_release
from coursecopy import copy_course, nbgrader

PSET = "autoencoder_probing"
NB = get_problem_set(PSET).notebook


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    return copy_course(tmp_path_factory.mktemp("clone") / "course-kit")


def test_generate_assignment_and_solution_in_a_fresh_clone(clone):
    run = nbgrader(clone, "generate_assignment", PSET, "--force")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "unable to open database file" not in run.stderr
    assert (clone / "course" / "gradebook.db").is_file()
    assert _canonical(clone / "assignments" / PSET / NB) == _canonical(REPO_ROOT / "assignments" / PSET / NB), \
        "nbgrader generate_assignment must give the committed release"
    run = nbgrader(clone, "generate_solution", PSET, "--force")
    assert run.returncode == 0, run.stdout + run.stderr
    assert _canonical(clone / "solutions" / PSET / NB) == _canonical(REPO_ROOT / "solutions" / PSET / NB)


def test_the_gradebook_holds_the_hidden_tests_the_release_does_not(clone):
    from nbgrader.api import Gradebook

    if not (clone / "course" / "gradebook.db").is_file():
        assert nbgrader(clone, "generate_assignment", PSET, "--force").returncode == 0
    with Gradebook(f"sqlite:///{clone / 'course' / 'gradebook.db'}", "representation-learning") as gb:
        cell = gb.find_source_cell("test_decoder", PSET, PSET)
        assert "_ag.test_decoder(Decoder)" in cell.source and "_ag.begin_test_cell()" in cell.source
        grades = {c.name: c.max_score for c in gb.find_notebook(PSET, PSET).grade_cells}
    assert grades == {"test_encoder": 1, "test_decoder": 1, "test_train_ae": 1, "test_train_classifier": 1, "report": 1}
    released = nbformat.read(str(clone / "assignments" / PSET / NB), 4)
    cell = next(c for c in released.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_decoder")
    assert cell.source.splitlines() == ["# Visible checks for Decoder (1 point). The grader also runs hidden checks.",
                                        "checks.check_decoder(Decoder)"]


def test_a_failing_build_leaves_the_committed_release_alone(tmp_path):
    course = copy_course(tmp_path / "course-kit")
    before = {p: p.read_bytes() for p in [course / "assignments" / PSET / NB, course / "solutions" / PSET / NB]}
    src = course / "source" / PSET / NB
    nb = nbformat.read(str(src), 4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_encoder")
    cell.source = cell.source.replace("### END HIDDEN TESTS", "", 1)  # nbgrader: "No end hidden tests statement"
    nbformat.write(nb, str(src))
    with pytest.raises(ReleaseError, match="source/autoencoder_probing"):
        build_release(course, [PSET])
    for path, data in before.items():
        assert path.is_file() and path.read_bytes() == data, f"{path} was changed by a failed build"
    assert sorted(p.name for p in (course / "assignments").iterdir()) == sorted(available_psets(course))


def test_plain_nbgrader_force_with_a_broken_source_puts_the_committed_release_back(tmp_path):
    """nbgrader --force removes assignments/<pset> before converting and what it wrote when the conversion
    fails; the course's nbgrader_config.py makes it put the committed release back (and it still fails)."""
    course = copy_course(tmp_path / "course-kit")
    released = course / "assignments" / PSET / NB
    before = released.read_bytes()
    src = course / "source" / PSET / NB
    nb = nbformat.read(str(src), 4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_encoder")
    cell.source = cell.source.replace("### END HIDDEN TESTS", "", 1)
    nbformat.write(nb, str(src))
    run = nbgrader(course, "generate_assignment", PSET, "--force")
    assert run.returncode != 0, run.stdout + run.stderr  # the failure is still a failure ...
    assert "Removing existing assignment" in run.stderr and "put back as it was before" in run.stderr
    assert released.is_file() and released.read_bytes() == before  # ... but the committed release is kept


def test_build_release_replaces_the_release_and_records_the_gradebook(tmp_path):
    course = copy_course(tmp_path / "course-kit")
    stale = course / "assignments" / PSET / "stale.txt"
    stale.write_text("left from an older release")
    built = build_release(course, [PSET], gradebook=True)
    rel, sol = built[PSET]
    assert rel == course / "assignments" / PSET / NB and sol == course / "solutions" / PSET / NB
    assert not stale.exists(), "the folder is replaced as a whole, as nbgrader --force does"
    assert _canonical(rel) == _canonical(REPO_ROOT / "assignments" / PSET / NB)
    assert _canonical(sol) == _canonical(REPO_ROOT / "solutions" / PSET / NB)
    assert (course / "course" / "gradebook.db").is_file()
    leftovers = [p for d in (course / "assignments", course / "solutions") for p in d.iterdir() if p.name.startswith(".")]
    assert leftovers == [], "no temporary folder left behind"
