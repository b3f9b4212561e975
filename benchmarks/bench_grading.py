"""Benchmark: grade 20 submissions of each problem set with 2 workers, against the kernel floor.

    python benchmarks/bench_grading.py [--n 20] [--workers 2]

For every problem set with a source notebook, a release and an ``autograder.<pset>`` module, it
grades N submissions (the solution and the problem set's wrong samples, in turn) with
``course-kit grade``'s engine and prints

* the wall time of the batch and the median time per submission (as each result records it);
* the *floor*, measured in the same run: a fresh kernel started the way a kernel is normally
  started (a new Python process, ``python -m course_utils.grading.kernel``) that imports what the
  notebook imports (torch, course_utils, matplotlib, ...) and does nothing else; also the cost of a
  kernel forked by the grader's preloaded zygote, for comparison;
* ratio = wall / (floor x N / workers): how grading a class compares with merely starting one such
  kernel per submission on the same workers (target <= 1.5);
* where the time of one submission goes (kernel start, the notebook's cells, the probes).

The numbers depend on the machine's load; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def available_psets() -> list:
    from autograder.problem_sets import PROBLEM_SETS, get_problem_set

    out = []
    for pset in PROBLEM_SETS:
        try:
            nb = get_problem_set(pset).notebook
        except Exception:
            continue
        if (ROOT / "source" / pset / nb).is_file() and (ROOT / "assignments" / pset / nb).is_file():
            out.append(pset)
    return out


def notebook_imports(path: Path) -> list:
    """The notebook's import statements, as written (what every kernel that runs it must import)."""
    nb = json.loads(path.read_text())
    stmts = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                stmt = ast.unparse(node)
                if "autograder" not in stmt and stmt not in stmts:
                    stmts.append(stmt)
    return stmts


def measure_floor(modules: list, zygote: bool, repeats: int = 3, preload=()) -> float:
    from autograder.grader import GradeOptions
    from course_utils.grading.session import KernelSession

    code = "\n".join(f"try:\n    {m}\nexcept Exception:\n    pass" for m in modules) or "pass"
    times = []
    for _ in range(repeats):
        work = Path(tempfile.mkdtemp(prefix="floor_"))
        session = KernelSession(work, GradeOptions(), zygote=zygote, preload=preload)
        start = time.monotonic()
        session.start()
        session.run(code, 300)
        session.stop()
        times.append(time.monotonic() - start)
        shutil.rmtree(work, ignore_errors=True)
    return statistics.median(times)


def make_class(pset: str, n: int, root: Path) -> Path:
    from autograder.release import make_sample_submissions

    samples = make_sample_submissions(pset, root / "_samples")
    kinds = ["solution"] + [k for k in samples if k not in ("solution", "untouched")]
    for i in range(n):
        kind = kinds[i % len(kinds)]
        dest = root / "submitted" / f"student{i:02d}_{kind}" / pset / samples[kind].name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(samples[kind], dest)
    return root


def profile_one(pset: str, path: Path) -> dict:
    """Seconds spent in kernel starts, notebook cells and probes while grading one submission."""
    import course_utils.grading.session as runner
    from autograder.grader import grade_submission

    spent = {"kernel start": 0.0, "cells": 0.0, "probes": 0.0}
    orig_start, orig_run = runner.KernelSession.start, runner.KernelSession.run

    def start(self):
        t = time.monotonic()
        try:
            return orig_start(self)
        finally:
            spent["kernel start"] += time.monotonic() - t

    def run(self, source, timeout):
        t = time.monotonic()
        try:
            return orig_run(self, source, timeout)
        finally:
            key = "probes" if source.startswith("_ck_") else "cells"
            spent[key] += time.monotonic() - t

    runner.KernelSession.start, runner.KernelSession.run = start, run
    try:
        t = time.monotonic()
        result = grade_submission(pset, path)
        spent["total"] = time.monotonic() - t
        spent["score"] = f"{result.score:g}/{result.max_score:g}"
    finally:
        runner.KernelSession.start, runner.KernelSession.run = orig_start, orig_run
    return spent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="submissions per problem set")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--psets", nargs="*", default=None)
    args = parser.parse_args(argv)

    from autograder.batch import grade_class
    from autograder.grader import GradeOptions
    from autograder.problem_sets import get_problem_set

    psets = args.psets or available_psets()
    print(f"problem sets: {', '.join(psets)}; {args.n} submissions each, {args.workers} workers, "
          f"{os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.1f}")
    ok = True
    for pset in psets:
        root = Path(tempfile.mkdtemp(prefix=f"bench_{pset}_"))
        try:
            make_class(pset, args.n, root)
            release = ROOT / "assignments" / pset / get_problem_set(pset).notebook
            modules = notebook_imports(release)
            t = time.monotonic()
            report = grade_class(pset, root, root / "out", workers=args.workers, options=GradeOptions(), progress=False)
            wall = time.monotonic() - t
            per = [r.seconds for r in report.results.values()]
            full = sum(1 for r in report.results.values() if r.score == r.max_score)
            sample = next(iter(sorted((root / "submitted").glob(f"*/{pset}/*.ipynb"))))
            profile = profile_one(pset, sample)  # also learns which heavy libraries the notebook ends up importing
            heavy = list(get_problem_set(pset).preload)
            modules += [f"import {m}" for m in heavy]
            floor = measure_floor(modules, zygote=False)
            forked = measure_floor(modules, zygote=True, preload=heavy)
            ratio = wall / (floor * args.n / args.workers)
            print(f"\n== {pset}: {len(per)} submissions graded ({full} full marks), errors: {len(report.errors)}")
            print(f"wall time                      {wall:7.1f} s")
            print(f"median per submission          {statistics.median(per):7.1f} s  "
                  f"(min {min(per):.1f}, max {max(per):.1f}; includes each worker's first-time start)")
            print(f"floor: cold kernel + imports   {floor:7.1f} s  (imports: {'; '.join(modules)})")
            print(f"kernel forked by the zygote    {forked:7.1f} s  (same imports, preloaded)")
            print(f"ratio wall / (floor x {args.n} / {args.workers})  {ratio:7.2f}  (target <= 1.5)")
            print("one submission, in process:    " + ", ".join(
                f"{k} {v:.1f} s" if isinstance(v, float) else f"{k} {v}" for k, v in profile.items()))
            ok = ok and ratio <= 1.5 and not report.errors
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
