"""The main job, end to end on the built-in data, and the release commands.

``course-kit demo`` does what an instructor does for a problem set, on this machine's CPU:

1. builds ``assignments/`` and ``solutions/`` from ``source/`` with nbgrader (and says whether the
   committed ones drifted);
2. executes every solution notebook in ``quick`` mode on the built-in shapes data (its hidden-test
   cells run too, so the reference solutions are validated against the hidden tests);
3. writes sample submissions in nbgrader's ``submitted/`` layout: the solution (full marks), the
   untouched release (0) and the problem set's deliberately wrong variants (partial credit);
4. grades them with ``course-kit grade`` and prints the grade table and where the feedback is.

Everything goes under ``course/`` (git-ignored), except the release, which goes to ``assignments/``
and ``solutions/`` as committed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import problem_sets
from .problem_sets import get_problem_set

# Cells whose printed output summarises a solution run (shown by the demo), by problem set.
SUMMARY_CELLS = {"autoencoder_probing": ("run_probes",), "simple_clip": ("linear_probe", "retrieval_recall")}


def _say(msg: str) -> None:
    print(msg, flush=True)


def execute_notebook(path: Path, out_path: Path, mode: str = "quick", timeout: int = 1800) -> dict:
    """Execute a notebook in a fresh kernel in ``mode``; save it with outputs; return cell summaries."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), 4)
    env_backup = dict(os.environ)
    os.environ.update({"COURSE_MODE": mode, "COURSE_SKIP_INSTALL": "1", "MPLBACKEND": "Agg",
                       "COURSE_MOUNT_DRIVE": "0", "TQDM_MININTERVAL": "5",
                       "COURSE_NO_CHECKPOINTS": "1"})  # always train from scratch here
    os.environ.pop("NBGRADER_EXECUTION", None)
    workdir = out_path.parent / (out_path.stem + "_run")
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    error = None
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(workdir)}})
        client.execute()
    except Exception as exc:  # report which cell failed, keep what ran
        error = f"{type(exc).__name__}: {str(exc)[-1500:]}"
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    seconds = time.monotonic() - start
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out_path))
    shutil.rmtree(workdir, ignore_errors=True)
    summaries, scores = {}, {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if cell.cell_type == "code" and gid:
            text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
            summaries[gid] = text
            if meta.get("grade"):  # a test cell: its hidden test's value is its points, as nbgrader reads them
                scores[gid] = (graded_cell_points(cell), float(meta.get("points", 0)))
    return {"seconds": seconds, "error": error, "summaries": summaries, "scores": scores}


def graded_cell_points(cell) -> float | None:
    """The points a test cell's output gives (its last value, as nbgrader reads it); None: no value."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return 0.0
        if out.get("output_type") == "execute_result":
            try:
                return float(str(out.get("data", {}).get("text/plain", "")).strip())
            except ValueError:
                return None
    return None


def grade_samples(pset_id: str, submitted: Path, out: Path, workers: int = 2) -> list:
    """Grade a submitted/ folder with the documented grading command; returns result dicts."""
    cmd = [sys.executable, "-m", "autograder.cli", "grade", pset_id, str(submitted), "--out", str(out),
           "--workers", str(workers), "--regrade"]
    try:
        import autograder.batch  # noqa: F401
        has_batch = True
    except ImportError:
        has_batch = False
    if has_batch:
        subprocess.run(cmd, check=True)
        results = []
        for path in sorted(out.rglob("*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(data, dict) and data.get("pset") == pset_id and "units" in data:
                results.append(data)
        return results
    from .grader import grade_submission  # serial fallback

    results = []
    for nb_path in sorted(submitted.glob(f"*/{pset_id}/*.ipynb")):
        student = nb_path.parent.parent.name
        res = grade_submission(pset_id, nb_path, student)
        res.save(out / "results" / f"{student}.json")
        results.append(res.to_dict())
    return results


def print_table(results: list) -> None:
    if not results:
        _say("  (no results)")
        return
    titles = [u["title"] for u in results[0]["units"] if not u["manual"]]
    header = f"  {'student':<16}" + "".join(f"{t[:16]:>18}" for t in titles) + f"{'total':>10}"
    _say(header)
    for r in sorted(results, key=lambda r: r["student"]):
        pts = {u["title"]: u for u in r["units"]}
        row = f"  {r['student']:<16}" + "".join(
            f"{pts[t]['points']:>11g} / {pts[t]['max_points']:<4g}" for t in titles)
        _say(row + f"{r['score']:>6g} / {r['max_score']:g}")


def run_demo(args) -> int:
    from .release import available_psets, build_release, check_drift, make_sample_submissions

    root = problem_sets.REPO_ROOT
    course = Path(args.out).resolve()
    psets = args.pset or available_psets(root)
    t0 = time.monotonic()
    _say(f"== 1. Release ({', '.join(psets)}) with nbgrader")
    drift = [] if args.skip_drift_check else check_drift(root, psets)
    for line in drift:
        _say(f"  drift: {line}")
    build_release(root, psets)
    _say("  assignments/ and solutions/ are up to date" + (" (they had drifted; now rebuilt)" if drift else ""))
    failures = []
    for pset_id in psets:
        pset = get_problem_set(pset_id)
        if not args.skip_execute:
            _say(f"\n== 2. Execute the solution of {pset_id} in quick mode (CPU, built-in data)")
            run = execute_notebook(root / "solutions" / pset_id / pset.notebook,
                                   course / "executed" / pset_id / pset.notebook, mode="quick")
            _say(f"  {run['seconds'] / 60:.1f} min; executed notebook: "
                 f"{course / 'executed' / pset_id / pset.notebook}")
            for gid in SUMMARY_CELLS.get(pset_id, ()):
                for line in run["summaries"].get(gid, "").strip().splitlines():
                    _say(f"  | {line}")
            if run["error"]:
                failures.append(f"{pset_id}: the solution notebook failed: {run['error']}")
                _say(f"  FAILED: {run['error']}")
            for gid, (points, max_points) in run["scores"].items():
                if points is None or points < max_points:
                    failures.append(f"{pset_id}: the solution's hidden test {gid} gave {points} of {max_points:g} points")
                    _say(f"  FAILED: hidden test {gid}: {points} of {max_points:g} points")
        _say(f"\n== 3. Sample submissions of {pset_id}")
        submitted = course / pset_id / "submitted"  # nbgrader's layout: submitted/<student>/<id>/
        for student in make_sample_submissions(pset_id, submitted, root):
            _say(f"  {submitted / student / pset_id / pset.notebook}")
        _say(f"\n== 4. Grade them (course-kit grade {pset_id} {submitted})")
        results = grade_samples(pset_id, submitted, course / pset_id / "graded")
        print_table(results)
        expected = {"solution": "full", "untouched": "zero"}
        for r in results:
            want = expected.get(r["student"], "partial")
            got = ("full" if r["score"] == r["max_score"] else "zero" if r["score"] == 0 else "partial")
            if got != want:
                failures.append(f"{pset_id}/{r['student']}: expected {want} marks, obtained {r['score']}/{r['max_score']}")
        _say(f"  grades: {course / pset_id / 'graded' / 'grades.csv'}; feedback: {course / pset_id / 'graded' / 'feedback'}")
    _say(f"\nDone in {(time.monotonic() - t0) / 60:.1f} min.")
    for f in failures:
        _say(f"PROBLEM: {f}")
    return 1 if failures else 0


def add_arguments_demo(parser) -> None:
    parser.add_argument("--pset", action="append", help="problem set id (default: every one in source/)")
    parser.add_argument("--out", default=str(problem_sets.REPO_ROOT / "course"),
                        help="working folder (default: course/ in the course repository)")
    parser.add_argument("--skip-execute", action="store_true", help="do not execute the solution notebooks")
    parser.add_argument("--skip-drift-check", action="store_true", help="do not compare with the committed release")


def add_arguments_release(parser) -> None:
    parser.add_argument("pset", nargs="*", help="problem set ids (default: every one in source/)")
    parser.add_argument("--no-gradebook", action="store_true",
                        help="do not record the problem sets in nbgrader's gradebook (course/gradebook.db)")
    from .configure import add_allow_placeholders

    add_allow_placeholders(parser)


def run_release(args) -> int:
    from .configure import placeholder_problem
    from .release import ReleaseError, build_release

    problem = placeholder_problem(problem_sets.REPO_ROOT, "release", getattr(args, "allow_placeholders", False))
    if problem:  # a release students cannot install from is refused before anything is built
        print(problem, file=sys.stderr)
        return 1
    try:
        built = build_release(problem_sets.REPO_ROOT, args.pset or None, gradebook=not args.no_gradebook)
    except (ReleaseError, KeyError) as exc:
        print(f"course-kit release: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        print("assignments/ and solutions/ were left as they were." + (
            "" if args.no_gradebook else " If recording the gradebook is what failed (for example cells added or "
            "removed while it holds submissions), `course-kit release --no-gradebook` releases without it."),
            file=sys.stderr)
        return 1
    for pset, (rel, sol) in built.items():
        root = problem_sets.REPO_ROOT
        _say(f"{pset}: {rel.relative_to(root)}, {sol.relative_to(root)}")
    if not args.no_gradebook:
        _say("recorded in nbgrader's gradebook (course/gradebook.db), as `nbgrader generate_assignment` does")
    return 0


def add_arguments_check_release(parser) -> None:
    parser.add_argument("pset", nargs="*", help="problem set ids (default: every one in source/)")


def run_check_release(args) -> int:
    from .release import check_drift

    problems = check_drift(problem_sets.REPO_ROOT, args.pset or None)
    for p in problems:
        _say(p)
    _say("release is up to date" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0
