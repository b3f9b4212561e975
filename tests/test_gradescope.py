"""Gradescope: the autograder zip, results.json on a real sample submission, and the crash paths."""
import json
import os
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from autograder.gradescope import VISIBILITIES, build_bundle, gradescope_run
from autograder.release import make_sample_submissions

PSET = "autoencoder_probing"


def check_schema(data: dict, scored: bool = True) -> None:
    """Gradescope's results.json: top-level score/output/visibility/stdout_visibility/tests.

    ``scored=False``: the grader failed, so the file must carry no score at all."""
    assert isinstance(data["output"], str)
    if not scored:
        assert "score" not in data and data["tests"] == [] and "NOT graded" in data["output"]
        return
    assert isinstance(data["score"], (int, float))
    assert data["visibility"] in VISIBILITIES and data["stdout_visibility"] in VISIBILITIES
    assert isinstance(data["tests"], list)
    for t in data["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output", "visibility"}, t
        assert t["visibility"] in VISIBILITIES and 0 <= t["score"] <= t["max_score"]
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build_bundle(PSET, tmp_path_factory.mktemp("gs") / "autograder.zip")


def test_bundle_has_the_scripts_and_the_packages_and_no_notebooks(bundle):
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        modes = {i.filename: (i.external_attr >> 16) for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
        run = zf.read("run_autograder").decode()
        wheel = next(n for n in names if n.startswith("wheels/") and n.endswith(".whl"))
        import io

        with zipfile.ZipFile(io.BytesIO(zf.read(wheel))) as whl:
            in_wheel = whl.namelist()
    for required in ("setup.sh", "run_autograder", "requirements-gradescope.txt"):
        assert required in names, required
    for required in ("autograder/__init__.py", "autograder/grader.py", f"autograder/{PSET}.py",
                     "autograder/templates/gradescope/run_autograder", "course_utils/grading/session.py",
                     "course_utils/grading/sandbox.py", "course_utils/grading/kernel.py"):
        assert required in in_wheel, required
    assert not any(n.startswith(("autograder/", "course_utils/")) for n in names)  # only inside the wheel
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR and stat.S_ISREG(modes[script]), script
    assert not any(n.split("/")[0] in ("source", "solutions", "assignments", "tests") for n in names)
    assert not any(n.endswith((".ipynb", ".pyc")) or "__pycache__" in n for n in names)
    assert "download.pytorch.org/whl/cpu" in setup and "requirements-gradescope.txt" in setup
    assert "pip install --no-deps --force-reinstall wheels/*.whl" in setup
    assert f"--pset {PSET}" in run and "results.json" in run and "--no-sandbox" not in run


def test_bundle_declares_the_report_as_a_question_graded_by_hand(bundle):
    """Gradescope takes its outline from its web page; the zip declares it, with the steps, and the points add
    up to the problem set's 5: the autograder's 4 and the report's 1."""
    from autograder.problem_sets import get_problem_set

    pset = get_problem_set(PSET)
    with zipfile.ZipFile(bundle) as zf:
        outline = json.loads(zf.read("gradescope_outline.json"))
        steps = zf.read("GRADESCOPE_SETUP.txt").decode()
    assert outline["autograder_points"] == pset.auto_points == 4
    assert outline["manual_questions"] == [{"title": m.title, "points": m.points, "notebook_cell": m.grade_id}
                                           for m in pset.manual]
    assert [q["notebook_cell"] for q in outline["manual_questions"]] == ["report"]
    assert outline["total_points"] == pset.total_points == 5
    assert "Enable manual grading" in steps and f"'{pset.manual[0].title}' worth 1 point" in steps
    assert "autograder points to 4" in steps and "totals 5 points" in steps


def test_the_command_prints_the_gradescope_steps(tmp_path, capsys):
    from autograder.cli import main as cli_main

    assert cli_main(["gradescope-bundle", PSET, "--out", str(tmp_path / "gs.zip")]) == 0
    out = capsys.readouterr().out
    assert "upload it as the assignment's autograder" in out and "Enable manual grading" in out


def test_unknown_pset_is_refused(tmp_path):
    with pytest.raises(KeyError):
        build_bundle("no_such_pset", tmp_path / "x.zip")


def test_results_json_of_a_sample_submission(tmp_path):
    sample = make_sample_submissions(PSET, tmp_path / "samples")["wrong_decoder"]
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "autoencoder_probing.ipynb").write_bytes(sample.read_bytes())
    results = tmp_path / "results" / "results.json"
    data = gradescope_run(PSET, submission, results)
    on_disk = json.loads(results.read_text())
    assert on_disk == json.loads(json.dumps(data))
    check_schema(on_disk)
    assert on_disk["score"] == pytest.approx(3.25)
    assert sum(t["max_score"] for t in on_disk["tests"]) == pytest.approx(4.0)  # the manual report is not a test
    assert "graded by hand" in on_disk["output"].lower() and "Report" in on_disk["output"]
    failed = [t for t in on_disk["tests"] if t["score"] < t["max_score"]]
    assert failed and all(t["name"].startswith("Decoder") and "expected" in t["output"] for t in failed)
    assert (submission / "autoencoder_probing.ipynb").read_bytes() == sample.read_bytes()  # graded a copy


def test_crash_writes_a_results_json_without_a_score(tmp_path, monkeypatch):
    import autograder.grader

    def boom(*args, **kwargs):
        raise RuntimeError("simulated grader crash")

    monkeypatch.setattr(autograder.grader, "grade_submission", boom)
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "nb.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (submission / "x.ipynb").write_text("{}")
    results = tmp_path / "results.json"
    gradescope_run(PSET, submission, results)
    data = json.loads(results.read_text())
    check_schema(data, scored=False)
    assert "simulated grader crash" in data["output"] and "Regrade" in data["output"]


def test_a_kernel_that_cannot_start_is_no_score(tmp_path, monkeypatch):
    """A grader failure inside grading (here: the kernel cannot start) never becomes a score."""
    import course_utils.grading.session

    def no_kernel(self):
        raise RuntimeError("simulated: the kernel cannot start")

    monkeypatch.setattr(course_utils.grading.session.KernelSession, "start", no_kernel)
    sample = make_sample_submissions(PSET, tmp_path / "samples")["solution"]
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "autoencoder_probing.ipynb").write_bytes(sample.read_bytes())
    data = gradescope_run(PSET, submission, tmp_path / "results.json")
    check_schema(data, scored=False)
    assert "the kernel cannot start" in data["output"]


def test_run_autograder_script_writes_results_without_a_notebook_and_when_python_fails(bundle, tmp_path):
    source = tmp_path / "source"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(source)
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "report.pdf").write_bytes(b"%PDF-1.4")
    env = dict(os.environ, COURSE_KIT_SOURCE=str(source), COURSE_KIT_SUBMISSION=str(submission),
               COURSE_KIT_RESULTS=str(tmp_path / "out" / "results.json"), COURSE_KIT_PYTHON="python")
    subprocess.run(["bash", str(source / "run_autograder")], env=env, check=True, capture_output=True, timeout=300)
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    check_schema(data)
    assert data["score"] == 0 and "No notebook was found" in data["output"]

    env["COURSE_KIT_PYTHON"] = "false"  # Python cannot even start
    env["COURSE_KIT_RESULTS"] = str(tmp_path / "out2" / "results.json")
    subprocess.run(["bash", str(source / "run_autograder")], env=env, check=True, capture_output=True, timeout=60)
    data = json.loads(Path(env["COURSE_KIT_RESULTS"]).read_text())
    check_schema(data, scored=False)
    assert "failed to run" in data["output"]


def _gradescope_root(tmp_path, bundle, notebook: Path):
    """Gradescope's layout under a temporary root: /autograder/{source,submission,results}."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(0o755)
    (root / "submission").mkdir(parents=True)
    (root / "results").mkdir()
    (root / "submission" / notebook.name).write_bytes(notebook.read_bytes())
    return root


@pytest.mark.slow
def test_gradescope_layout_setup_and_run_autograder_from_a_regular_install(bundle, tmp_path):
    """setup.sh installs the kit from the bundle's wheel (not editable) into a fresh virtualenv that sees the
    machine's packages (torch is kept, nothing is downloaded); run_autograder grades the solution with full
    marks and replaces a results.json the student's code wrote."""
    import sys

    sample = make_sample_submissions(PSET, tmp_path / "samples")
    root = _gradescope_root(tmp_path, bundle, sample["solution"])
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    env = dict(os.environ, COURSE_KIT_SOURCE=str(root / "source"), COURSE_KIT_SUBMISSION=str(root / "submission"),
               COURSE_KIT_RESULTS=str(root / "results" / "results.json"), COURSE_KIT_PYTHON=py,
               PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], env=env, capture_output=True, text=True,
                           timeout=600, cwd=tmp_path)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    assert "grading sandbox: bubblewrap (namespaces)" in setup.stdout
    where = subprocess.run([py, "-c", "import autograder, course_utils; print(autograder.__file__); "
                                      "print(course_utils.__file__)"], capture_output=True, text=True, cwd=tmp_path,
                           env=env, check=True).stdout.split()
    assert all(str(venv) in w and "site-packages" in w for w in where), where  # a regular install
    (root / "results" / "results.json").write_text('{"score": 99}')  # as if the student's code wrote it
    subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, check=True, capture_output=True,
                   timeout=600, cwd=tmp_path)
    data = json.loads((root / "results" / "results.json").read_text())
    check_schema(data)
    assert data["score"] == pytest.approx(4.0), data["output"]
