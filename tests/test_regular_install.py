"""A regular (non-editable) install grades as the editable checkout does.

As an instructor would on a fresh machine: a copy of the course as a fresh clone has it, a fresh virtualenv,
``pip install .`` (not editable: the kit lands in the virtualenv's site-packages, beside everything else),
then ``course-kit grade <pset> <course>`` from inside the course folder. Every problem set's sample
submissions (the solution, the untouched release, the problem set's sample mistakes) must get the same points
per test cell as ``course-kit grade`` from this checkout. (A regular install once graded everyone 0: the
kernel hid the whole site-packages folder because it holds the instructor package, and torch with it.)

The virtualenv sees the machine's packages (``--system-site-packages``) and pip installs with ``--no-index``:
nothing is downloaded, torch is the one already installed. About 3 minutes on 2 CPU cores.
"""
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.problem_sets import REPO_ROOT, get_problem_set
from autograder.release import available_psets, make_sample_submissions
from coursecopy import copy_course

pytestmark = pytest.mark.slow


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "NBGRADER_", "COURSE_KIT_"))}
    env.pop("PYTHONPATH", None)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
                "MPLBACKEND": "Agg", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh clone's files and a virtualenv holding the kit from ``pip install .`` (not editable)."""
    base = tmp_path_factory.mktemp("regular_install")
    course = copy_course(base / "course-kit")
    venv = base / "venv"
    # --without-pip: the machine's pip and setuptools (seen through --system-site-packages) do the install,
    # as pip would with build isolation on a machine that can reach PyPI
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True,
                   timeout=300)
    py = venv / "bin" / "python"
    run = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "."], cwd=course,
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    where = subprocess.run([str(py), "-c", "import autograder, course_utils; print(autograder.__file__); "
                                           "print(course_utils.__file__)"], cwd=base, env=_env(),
                           capture_output=True, text=True, check=True).stdout.split()
    assert all(w.startswith(str(venv)) and "site-packages" in w for w in where), where  # not the checkout
    return {"course": course, "venv": venv, "base": base}


def _grade(cmd: list, cwd: Path, out: Path) -> tuple:
    run = subprocess.run(cmd + ["--out", str(out), "--workers", "2", "--no-progress"], cwd=cwd, env=_env(),
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    return rows, run.stdout + run.stderr


@pytest.mark.parametrize("pset_id", available_psets())
def test_a_regular_install_grades_as_the_checkout_does(installed, pset_id):
    pset = get_problem_set(pset_id)
    course, venv = installed["course"], installed["venv"]
    shutil.rmtree(course / "course" / "submitted", ignore_errors=True)  # another problem set's samples
    samples = make_sample_submissions(pset_id, course / "course" / "submitted", course)
    regular, log = _grade([str(venv / "bin" / "course-kit"), "grade", pset_id, "."], course,
                          installed["base"] / f"regular_{pset_id}")
    assert f"course repository {course}" in log, log[-2000:]  # the course in the current folder, said
    editable, _ = _grade([sys.executable, "-m", "autograder.cli", "grade", pset_id, str(course / "course")],
                         REPO_ROOT, installed["base"] / f"editable_{pset_id}")
    assert sorted(regular) == sorted(editable) == sorted(samples)
    tests = [u.grade_id for u in pset.units]  # the automatic ones (pset.manual: the report)
    for student in samples:
        assert regular[student]["status"] == "graded", (student, regular[student])
        assert {t: regular[student][t] for t in tests} == {t: editable[student][t] for t in tests}, student
        assert float(regular[student]["max"]) == pset.total_points
    assert float(regular["solution"]["total"]) == pset.auto_points
    assert float(regular["untouched"]["total"]) == 0
    wrong = [s for s in samples if s not in ("solution", "untouched")]
    assert wrong and all(0 < float(regular[s]["total"]) < pset.auto_points for s in wrong)
