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


def check_schema(data: dict) -> None:
    """Gradescope's results.json: top-level score/output/visibility/stdout_visibility/tests."""
    assert isinstance(data["score"], (int, float)) and isinstance(data["output"], str)
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
    for required in ("setup.sh", "run_autograder", "requirements-gradescope.txt", "pyproject.toml",
                     "autograder/__init__.py", "autograder/grader.py", f"autograder/{PSET}.py",
                     "course_utils/runner.py", "course_utils/probes/kernel.py"):
        assert required in names, required
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR and stat.S_ISREG(modes[script]), script
    assert not any(n.split("/")[0] in ("source", "solutions", "assignments", "tests") for n in names)
    assert not any(n.endswith((".ipynb", ".pyc")) or "__pycache__" in n for n in names)
    assert "download.pytorch.org/whl/cpu" in setup and "requirements-gradescope.txt" in setup
    assert f"--pset {PSET}" in run and "results.json" in run


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
    assert on_disk["score"] == pytest.approx(3.5)
    assert sum(t["max_score"] for t in on_disk["tests"]) == pytest.approx(4.0)  # the manual report is not a test
    assert "graded by hand" in on_disk["output"].lower() and "Report" in on_disk["output"]
    failed = [t for t in on_disk["tests"] if t["score"] < t["max_score"]]
    assert failed and all(t["name"].startswith("Decoder") and "expected" in t["output"] for t in failed)
    assert (submission / "autoencoder_probing.ipynb").read_bytes() == sample.read_bytes()  # graded a copy


def test_crash_still_writes_a_zero_results_json(tmp_path, monkeypatch):
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
    check_schema(data)
    assert data["score"] == 0 and "simulated grader crash" in data["output"]


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
    check_schema(data)
    assert data["score"] == 0 and "could not start" in data["output"]
