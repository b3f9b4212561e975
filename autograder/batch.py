"""Grade a whole class: ``course-kit grade <pset> <submissions> [--out DIR] [--workers N] ...``.

The submissions are found as :mod:`autograder.submissions` describes (layouts, the naming rule of LMS
downloads, which notebook of a student is graded); they are graded by :mod:`autograder.pool`, and the
results exported by :mod:`autograder.exports`.

Each submission is graded in a worker process (``--workers``, default the number of CPU cores) with
its own fresh kernel (one torch thread), bounded by ``--timeout`` per cell, ``--probe-timeout`` per
unit, ``--total-timeout`` for all cells, and ``--memory-mb``. A result is written to
``<out>/results/<student>.json`` the moment it is known, so an interrupted run loses nothing: running
the command again grades only what is missing or changed (``--regrade`` grades everything again).
Then ``<out>/grades.csv`` (one row per student: per-unit points, manual points when known, total, max) and
``<out>/feedback/<student>.html`` are written and a table is printed, followed by a class summary
(``<out>/summary.csv``: each check's pass rate; ``<out>/scores.png``: histogram of the totals; see
:mod:`autograder.summary`). With ``--gradebook course/gradebook.db`` the automatic points also go into
nbgrader's gradebook and the manual points graded there come back into ``grades.csv``
(:mod:`autograder.gradebook`), so that ``nbgrader export`` gives one final grade.

A worker process that dies while grading (a notebook can signal its grader: see the trust model in
:mod:`autograder.grader`) does not stop the batch: the submissions it was grading are graded again,
one at a time; one that kills its worker again gets 0 with a note.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .exports import export_csv, load_results, print_table  # noqa: F401  (the command's exports)
from .pool import GRADER_ERROR, StopBatch, _grader_failed, _run_pool, grade_job, job_deadline  # noqa: F401
from .problem_sets import get_problem_set
from .submissions import (MAX_CANDIDATES, Submission, SubmissionNameError, discover, safe_extract,  # noqa: F401
                          safe_name, student_from_filename)

EARLY_STOP = 3  # a batch whose first submissions all fail in the grader the same way stops there


# ---- the command --------------------------------------------------------------------------------

@dataclass
class BatchReport:
    graded: list = field(default_factory=list)  # keys graded in this run
    skipped: list = field(default_factory=list)  # keys already graded (unchanged)
    errors: dict = field(default_factory=dict)  # key -> grader bug message
    killed: list = field(default_factory=list)  # keys whose notebook killed its worker twice
    stopped: str = ""  # why the batch stopped early (the grader failed on its first submissions), or ""
    seconds: float = 0.0
    results: dict = field(default_factory=dict)


def grade_class(pset_id: str, source, out_dir, workers: int | None = None, options=None, regrade: bool = False,
                data_dir: str | None = None, name_regex: str | None = None, progress: bool = True,
                grade_fn: str | None = None) -> BatchReport:
    """Grade every submission in ``source`` into ``out_dir`` (resumable); export CSV + feedback."""
    from .feedback import write_feedback
    from .grader import GradeOptions, SubmissionResult

    start = time.monotonic()
    options = options or GradeOptions()
    if options.sandbox:  # before anything: a class graded without the wall is graded only when asked for
        from course_utils.grading.sandbox import sandbox_problem

        from .grader import GraderError, sandbox_advice

        problem = sandbox_problem()
        if problem:
            raise GraderError(sandbox_advice(problem))
        from course_utils.grading.sandbox import protect, sandbox_mode

        if sandbox_mode() == "user":  # the kernels' user: not the submissions, not the results
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            protect([str(source), str(out_dir)])
    out_dir = Path(out_dir)
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    subs = discover(pset_id, source, out_dir / "_extracted" if Path(source).is_file() else None, name_regex)
    report = BatchReport()
    jobs = []
    opts = replace(options, keep_executed=None)  # GradeOptions travel to the workers as they are
    for sub in subs:
        result_path = out_dir / "results" / f"{sub.key}.json"
        if result_path.exists() and not regrade:
            try:
                old = SubmissionResult.from_dict(json.loads(result_path.read_text()))
                if old.fingerprint == sub.fingerprint and old.status not in ("crashed", GRADER_ERROR):
                    report.skipped.append(sub.key)
                    continue
            except Exception:
                pass
        jobs.append({"pset": pset_id, "student": sub.student, "key": sub.key, "files": [str(f) for f in sub.files],
                     "names": list(sub.names), "notes": list(sub.notes), "problem": sub.problem,
                     "fingerprint": sub.fingerprint, "options": opts, "data_dir": data_dir, "out": str(out_dir),
                     "grade_fn": grade_fn})
    workers = max(1, int(workers or os.cpu_count() or 1))
    workers = _fit_workers(workers, options.memory_mb)
    bar = _progress(len(jobs), progress)
    finished: list = []  # per finished job: the grader failure's cause, or None

    def on_done(job, summary):
        if "error" in summary or summary.get("status") == GRADER_ERROR:
            cause = summary.get("error") or summary.get("cause") or "unknown"
            report.errors[job["key"]] = cause
            finished.append(cause)
            if len(finished) == min(EARLY_STOP, len(jobs)) and len(set(finished)) == 1 and len(jobs) > len(finished):
                raise StopBatch(f"the first {len(finished)} submissions all failed in the grader the same way: {cause}")
        else:
            finished.append(None)
            report.graded.append(job["key"])
        if bar is not None:
            bar.set_postfix_str(f"{job['student'][:20]}: {summary.get('score', '?')}/{summary.get('max', '?')}")
            bar.update(1)

    try:
        warm = None
        if grade_fn is None and jobs and any(not j["problem"] for j in jobs):
            from course_utils.grading.session import _zygote_wanted

            warm = {"zygote": _zygote_wanted(None), "options": opts, "data_dir": data_dir,
                    "preload": list(get_problem_set(pset_id).preload)}
        try:
            suspects = _run_pool(jobs, workers, out_dir, on_done, warm)
        except StopBatch as exc:
            report.stopped, suspects = str(exc), []
        for job in suspects:  # alone, so that the culprit is known
            again = _run_pool([job], 1, out_dir, on_done, warm)
            if again:
                report.killed.append(job["key"])
                on_done(job, _grader_failed(job, out_dir, "the grader's worker process died while grading this "
                                                          "submission, twice (alone the second time)"))
    finally:
        if bar is not None:
            bar.close()
    results = load_results(out_dir)
    keys = {s.key for s in subs}
    results = {k: r for k, r in results.items() if k in keys}
    for key, r in results.items():
        write_feedback(r, out_dir / "feedback" / f"{key}.html")
    export_csv(pset_id, results, out_dir / "grades.csv")
    report.results = results
    report.seconds = time.monotonic() - start
    return report


def _fit_workers(workers: int, memory_mb: int) -> int:
    try:
        import psutil

        available = psutil.virtual_memory().available / 2**20
    except Exception:
        return workers
    fit = max(1, int(available // (memory_mb + 1024)))
    if fit < workers:
        print(f"course-kit grade: {workers} workers with {memory_mb} MB each do not fit in "
              f"{available:,.0f} MB of free memory; using {fit}.", file=sys.stderr)
        return fit
    return workers


def _progress(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="grading", unit="submission", dynamic_ncols=True, file=sys.stderr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .grader import GradeOptions

    d = GradeOptions()
    parser.add_argument("pset", help="problem set id, e.g. autoencoder_probing")
    parser.add_argument("submissions", help="nbgrader course root / submitted/ folder, a folder of notebooks, or a zip")
    parser.add_argument("--out", default=None, help="output folder (default: ./graded_<pset>)")
    parser.add_argument("--workers", type=int, default=None, help="parallel graders (default: CPU cores)")
    parser.add_argument("--timeout", type=float, default=d.cell_timeout, help="seconds per notebook cell (default %(default)s)")
    parser.add_argument("--probe-timeout", type=float, default=d.probe_timeout,
                        help="seconds per hidden test of a unit (default %(default)s)")
    parser.add_argument("--total-timeout", type=float, default=d.total_timeout,
                        help="seconds for all of a notebook's cells (default %(default)s)")
    parser.add_argument("--memory-mb", type=int, default=d.memory_mb, help="memory limit per kernel (default %(default)s)")
    parser.add_argument("--job-timeout", type=float, default=None,
                        help="seconds one submission may take in all before its worker is stopped and the submission "
                             "reported as a grader error (default: what the other limits allow)")
    parser.add_argument("--regrade", action="store_true", help="grade again what is already graded")
    parser.add_argument("--data-dir", default=None, help="COURSE_DATA_DIR for the kernels")
    parser.add_argument("--name-regex", default=None,
                        help="regex with a (?P<student>...) group to read student ids from file names")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="grade without the bubblewrap sandbox where it cannot start (the notebooks then run with "
                             "your user's rights; every result says so)")
    parser.add_argument("--gradebook", default=None, metavar="PATH",
                        help="nbgrader gradebook (e.g. course/gradebook.db, or a database URL) to write the automatic "
                             "points into, and to read the manual points back from, for one final grade")


def run(args) -> int:
    from .grader import GradeOptions, GraderError

    try:
        get_problem_set(args.pset)
    except KeyError as exc:
        print(f"course-kit grade: {exc.args[0]}", file=sys.stderr)
        return 2
    if getattr(args, "gradebook", None):  # a wrong path is said now, not after grading the class
        from .gradebook import GradebookError, db_url

        try:
            db_url(args.gradebook)
        except GradebookError as exc:
            print(f"course-kit grade: --gradebook: {exc}", file=sys.stderr)
            return 2
    out = Path(args.out or f"graded_{args.pset}")
    options = GradeOptions(cell_timeout=args.timeout, total_timeout=args.total_timeout,
                           probe_timeout=args.probe_timeout, memory_mb=args.memory_mb, sandbox=not args.no_sandbox,
                           job_timeout=args.job_timeout)
    if args.no_sandbox:
        print("course-kit grade: --no-sandbox: the notebooks run with your user's rights (they can read and change "
              "your files); each result says so.", file=sys.stderr)
    try:
        report = grade_class(args.pset, args.submissions, out, args.workers, options, args.regrade, args.data_dir,
                             args.name_regex, progress=not args.no_progress)
    except (FileNotFoundError, SubmissionNameError) as exc:
        print(f"course-kit grade: {exc}", file=sys.stderr)
        return 2
    except GraderError as exc:
        print(f"course-kit grade: nothing was graded: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncourse-kit grade: interrupted; results so far are saved. Run the same command again to resume.",
              file=sys.stderr)
        return 130
    manual = None
    graded = {k: r for k, r in report.results.items() if not r.grader_error}  # grader errors have no grade
    if getattr(args, "gradebook", None):
        from .gradebook import GradebookError, sync_gradebook

        try:
            manual = sync_gradebook(args.pset, graded, args.gradebook, None)
            export_csv(args.pset, report.results, out / "grades.csv", manual=manual)
        except GradebookError as exc:
            print(f"course-kit grade: gradebook {args.gradebook}: {exc}", file=sys.stderr)
            return 1
    print_table(report.results)
    from .summary import summary_text, write_summary

    print("\n" + summary_text(write_summary(args.pset, graded, out, manual)))
    if manual is not None:
        print(f"Gradebook {args.gradebook}: automatic points written for {len(report.results)} students; "
              f"manual points read back for {len(manual)}. `nbgrader export` gives the final grades.")
    print(f"\n{len(report.graded)} graded, {len(report.skipped)} already graded (skipped), "
          f"{len(report.errors)} grader errors, {len(report.killed)} killed their grader; "
          f"{report.seconds:.1f} s. Results: {out / 'results'}; grades: {out / 'grades.csv'}; "
          f"feedback: {out / 'feedback'}")
    if report.errors:
        causes = sorted(set(report.errors.values()))
        print(f"\ncourse-kit grade: {len(report.errors)} submission(s) were NOT graded because the grader failed "
              f"(not the students): they have no grade in grades.csv (status '{GRADER_ERROR}'). Cause"
              f"{'s' if len(causes) > 1 else ''}:", file=sys.stderr)
        for cause in causes[:5]:
            print(f"  - {cause[:600]}", file=sys.stderr)
        if report.stopped:
            print(f"The batch stopped early: {report.stopped[:300]}.", file=sys.stderr)
        print("Fix the cause, then run the same command again: only the submissions without a grade are graded.",
              file=sys.stderr)
    return 1 if report.errors else 0
