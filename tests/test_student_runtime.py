"""The student's side, tried for real: a Colab-like runtime that has torch, torchvision, jupyter and matplotlib
but neither the course library nor the instructor's package; the kit arrives only through the notebook's setup
cell, from the student bundle's wheel. Each problem set's solution (the released notebook with its answers
filled in) then runs from the first cell to the last in quick mode, the self-check and submit cells included.

The runtime is a virtual environment over this machine's packages (``--system-site-packages``: torch and the
other heavy packages are not downloaded again), in which the development checkout is made invisible: the
editable install's import hook is replaced by a stub, so ``course_utils`` and ``autograder`` cannot be imported
until the setup cell installs the wheel. pip runs with ``PIP_NO_INDEX=1``: everything the wheel declares must
already be in the runtime, as it is on Colab (nothing is downloaded).

The quick-mode minutes and the figures each notebook printed are written to ``student_runtime.json`` in the
test's folder and printed (``pytest -s``).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.problem_sets import PROBLEM_SETS, REPO_ROOT, get_problem_set, wheel_extras
from figures import measured_figures, stated_figures_hold

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """(python of the runtime, the course wheel, a JUPYTER_PATH holding the runtime's kernel spec)."""
    import site

    from autograder.bundle import build_wheel

    root = tmp_path_factory.mktemp("student_runtime")
    wheel = build_wheel(REPO_ROOT, root / "wheels")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    venv_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    # The development checkout's editable install is found through a hook that a .pth file of the system's
    # site-packages imports by name; a module of that name in the runtime's own site-packages wins, and does nothing.
    for folder in site.getsitepackages():
        for hook in Path(folder).glob("__editable__*finder.py"):
            (venv_site / hook.name).write_text("def install():\n    pass\n")
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; "
                            "print(u.find_spec('course_utils') is None, u.find_spec('autograder') is None)"],
                           capture_output=True, text=True, cwd=root)
    if probe.stdout.split() != ["True", "True"]:
        pytest.skip(f"the development checkout stays importable in the runtime ({probe.stdout} {probe.stderr})")
    kernels = root / "jupyter" / "kernels" / "student"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like student runtime", "language": "python"}))
    return python, wheel, root / "jupyter"


def _solution_notebook(pset_id: str, folder: Path, wheel: Path) -> Path:
    """The released notebook with the solutions filled in, its setup cell installing ``wheel``."""
    from autograder.release import make_sample_submissions

    path = make_sample_submissions(pset_id, folder / "samples")["solution"]
    nb = json.loads(path.read_text())
    extras = wheel_extras(pset_id)
    package = f"course-utils[{','.join(extras)}] @ {wheel.as_uri()}" if extras else str(wheel)
    setup = next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup")
    source = "".join(setup["source"])
    source, n = re.subn(r"^COURSE_PACKAGE = .*$", f"COURSE_PACKAGE = {package!r}", source, flags=re.M)
    assert n == 1, source
    setup["source"] = source
    work = folder / "work"
    work.mkdir()
    out = work / get_problem_set(pset_id).notebook
    out.write_text(json.dumps(nb, indent=1))
    return out


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _execute(notebook: Path, monkeypatch, jupyter_path, data_dir: Path, fresh: bool = False):
    """Run ``notebook`` top to bottom in the runtime's kernel, in quick mode; (executed notebook, minutes, error).
    ``fresh``: train from scratch (no checkpoint of an earlier run is reused)."""
    import nbformat
    from nbclient import NotebookClient

    for key in ("COURSE_SKIP_INSTALL", "NBGRADER_EXECUTION", "COURSE_NO_CHECKPOINTS", "COURSE_RESTART_TRAINING"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {"JUPYTER_PATH": str(jupyter_path), "PIP_NO_INDEX": "1", "COURSE_MODE": "quick",
                       "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "COURSE_DATA_DIR": str(data_dir),
                       "COURSE_MOUNT_DRIVE": "0", "PYTHONPATH": ""}.items():
        monkeypatch.setenv(key, value)
    if fresh:
        monkeypatch.setenv("COURSE_NO_CHECKPOINTS", "1")
    nb = nbformat.read(str(notebook), 4)
    start = time.monotonic()
    client = NotebookClient(nb, timeout=1200, kernel_name="student", resources={"metadata": {"path": str(notebook.parent)}})
    error = None
    try:
        client.execute()
    except Exception as exc:  # keep what ran, say which cell failed
        error = f"{type(exc).__name__}: {str(exc)[-3000:]}"
    return nb, (time.monotonic() - start) / 60, error


@pytest.mark.parametrize("pset_id", PROBLEM_SETS)
def test_solution_runs_in_a_colab_like_runtime_from_the_bundle_wheel(pset_id, runtime, tmp_path, monkeypatch):
    """From the setup cell to submit, with the figures the notebook states, twice with the same figures."""
    import nbformat

    python, wheel, jupyter_path = runtime
    notebook = _solution_notebook(pset_id, tmp_path, wheel)
    nb, minutes, error = _execute(notebook, monkeypatch, jupyter_path, tmp_path / "data")
    nbformat.write(nb, str(tmp_path / f"{pset_id}_executed.ipynb"))
    cells = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    assert error is None, error

    setup_out = _text(cells["setup"])
    # the wheel, by the setup cell (the runtime is shared: the first notebook installs it, the next finds it)
    assert ("installed from" in setup_out and wheel.name in setup_out) or "already installed" in setup_out, setup_out
    check = subprocess.run([str(python), "-c", "import course_utils, importlib.util as u; "
                            "print(course_utils.__file__); print(u.find_spec('autograder'))"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert "site-packages" in check.stdout and str(REPO_ROOT) not in check.stdout and "None" in check.stdout, check
    selfcheck_out = _text(cells["selfcheck"]) + "".join(
        o.get("data", {}).get("text/plain", "") for o in cells["selfcheck"].get("outputs", []))
    auto = len(get_problem_set(pset_id).units)
    assert f"Visible checks pass for {auto} of {auto}" in selfcheck_out, selfcheck_out
    assert "raised an error" not in selfcheck_out, selfcheck_out
    assert list(notebook.parent.glob("*.zip")), "the submit cell wrote no zip"
    errors = [c for c in nb.cells if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.outputs)]
    assert not errors
    measured = measured_figures(pset_id, {gid: _text(c) for gid, c in cells.items() if gid}, minutes)
    problems = stated_figures_hold(pset_id, measured)
    assert not problems, "\n".join(problems)

    # Quick mode gives the same figures on every run: the same notebook again, from scratch (no checkpoint reused).
    again_nb, again_minutes, error = _execute(notebook, monkeypatch, jupyter_path, tmp_path / "data-again", fresh=True)
    assert error is None, error
    again = measured_figures(pset_id, {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): _text(c)
                                       for c in again_nb.cells}, again_minutes)
    assert {k: v for k, v in again.items() if k != "minutes"} == {k: v for k, v in measured.items() if k != "minutes"}
    record = {"pset": pset_id, "minutes": round(minutes, 2), "figures": measured, "torch": subprocess.run(
        [str(python), "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True).stdout.strip(),
        "printed": {gid: _text(c)[-600:] for gid, c in cells.items() if gid and c.cell_type == "code"}}
    log = tmp_path.parent / "student_runtime.json"
    previous = json.loads(log.read_text()) if log.exists() else []
    log.write_text(json.dumps(previous + [record], indent=1))
    print(f"\n{pset_id}: {minutes:.1f} min in quick mode (setup cell to submit) in the Colab-like runtime; {measured}")

