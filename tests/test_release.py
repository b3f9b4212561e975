"""The committed release matches source/, and released notebooks hold no solution or hidden test."""
import json

import nbformat
import pytest

from autograder.problem_sets import REPO_ROOT, get_problem_set
from autograder.release import available_psets, check_drift, fill_solutions, solution_regions

PSETS = available_psets()
FORBIDDEN = ("### BEGIN SOLUTION", "### END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "import autograder",
             "from autograder", "_ag.")


def test_every_registered_source_is_found():
    assert "autoencoder_probing" in PSETS
    for pset in PSETS:
        assert (REPO_ROOT / "assignments" / pset / get_problem_set(pset).notebook).is_file()
        assert (REPO_ROOT / "solutions" / pset / get_problem_set(pset).notebook).is_file()


@pytest.mark.parametrize("pset", PSETS)
def test_committed_release_has_not_drifted_from_source(pset):
    problems = check_drift(REPO_ROOT, [pset])
    assert problems == [], "\n".join(problems)


def test_drift_is_detected(tmp_path):
    """Edit a source notebook in a copy of the repository: the check must notice."""
    import shutil

    pset = "autoencoder_probing"
    for name in ("source", "assignments", "solutions"):
        shutil.copytree(REPO_ROOT / name / pset, tmp_path / name / pset)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", tmp_path)
    nb_path = tmp_path / "source" / pset / get_problem_set(pset).notebook
    nb = nbformat.read(str(nb_path), 4)
    nb.cells[0].source += "\n\nAn edit that was never released."
    nbformat.write(nb, str(nb_path))
    problems = check_drift(tmp_path, [pset])
    assert any("assignments" in p and "differs" in p for p in problems)


@pytest.mark.parametrize("pset", PSETS)
def test_released_notebooks_hold_no_solution_or_hidden_test(pset):
    release = REPO_ROOT / "assignments" / pset
    files = [p for p in release.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [get_problem_set(pset).notebook], "only the notebook is released"
    text = files[0].read_text()
    for marker in FORBIDDEN:
        assert marker not in text, f"{marker!r} leaked into {files[0]}"
    source = nbformat.read(str(REPO_ROOT / "source" / pset / get_problem_set(pset).notebook), 4)
    for cell in source.cells:
        for region in solution_regions(cell.source):
            for line in region.strip().splitlines():
                line = line.strip()
                if len(line) > 25 and not line.startswith("#"):
                    assert line not in text, f"solution line leaked into the release: {line}"


@pytest.mark.parametrize("pset", PSETS)
def test_release_keeps_the_graded_cells_and_points(pset):
    nb = json.loads((REPO_ROOT / "assignments" / pset / get_problem_set(pset).notebook).read_text())
    graded = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"].get("points")
              for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")}
    ps = get_problem_set(pset)
    expected = {u.grade_id: u.points for u in ps.units} | {m.grade_id: m.points for m in ps.manual}
    assert graded == expected
    assert sum(graded.values()) == 5


def test_fill_solutions_rebuilds_the_solution_code():
    pset = "autoencoder_probing"
    name = get_problem_set(pset).notebook
    release = nbformat.read(str(REPO_ROOT / "assignments" / pset / name), 4)
    source = nbformat.read(str(REPO_ROOT / "source" / pset / name), 4)
    filled = fill_solutions(release, source)
    text = "\n".join(c.source for c in filled.cells if c.cell_type == "code")
    assert "raise NotImplementedError" not in text and "YOUR ANSWER HERE" not in str(filled.cells)
    assert "nn.Conv2d(3, 12, 4, stride=2, padding=1)" in text
    assert "BEGIN SOLUTION" not in text and "import autograder" not in text
    compile(next(c.source for c in filled.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "encoder"),
            "encoder", "exec")
