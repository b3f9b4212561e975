"""Benchmark: the cost of the grading sandbox, measured side by side in one run.

    python benchmarks/bench_sandbox.py [--n 20] [--workers 2] [--rounds 2] [--psets autoencoder_probing]

Grades the same class of N submissions (the solution and the problem set's wrong samples, in turn)
with ``course-kit grade``'s engine, with the sandbox (bubblewrap, or the user wall where that is what
this machine has) and without it (``--no-sandbox``), alternating the two ``--rounds`` times so that a
change in the machine's load falls on both. Prints each run's wall time, the median of each mode, and
ratio = sandboxed / unsandboxed (target <= 1.10). Both modes must give every submission the same score.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="submissions per problem set")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each mode, alternating")
    parser.add_argument("--psets", nargs="*", default=["autoencoder_probing"])
    args = parser.parse_args(argv)

    from bench_grading import make_class

    from autograder.batch import grade_class
    from autograder.grader import GradeOptions
    from course_utils.grading.sandbox import sandbox_mode

    wall_kind = sandbox_mode()
    print(f"{args.n} submissions per run, {args.workers} workers, {os.cpu_count()} CPU cores, sandbox: {wall_kind}; "
          f"load average {os.getloadavg()[0]:.1f}")
    if wall_kind is None:
        print("no sandbox can start on this machine: nothing to compare")
        return 1
    ok = True
    for pset in args.psets:
        root = Path(tempfile.mkdtemp(prefix=f"bench_sandbox_{pset}_"))
        try:
            make_class(pset, args.n, root)
            walls = {True: [], False: []}
            scores = {}
            for i in range(args.rounds):
                for sandbox in (False, True):
                    out = root / f"out_{int(sandbox)}_{i}"
                    start = time.monotonic()
                    report = grade_class(pset, root, out, workers=args.workers, options=GradeOptions(sandbox=sandbox),
                                         progress=False)
                    wall = time.monotonic() - start
                    walls[sandbox].append(wall)
                    got = {k: r.score for k, r in report.results.items()}
                    scores.setdefault(sandbox, got)
                    ok = ok and not report.errors and got == scores[sandbox]
                    print(f"{pset} round {i + 1} {'sandbox   ' if sandbox else 'no sandbox'} {wall:7.1f} s "
                          f"({len(got)} graded, {sum(1 for r in report.results.values() if r.score == r.max_score)} "
                          f"full marks, {len(report.errors)} grader errors)")
            same = scores[True] == scores[False]
            ratio = statistics.median(walls[True]) / statistics.median(walls[False])
            print(f"== {pset}: median wall with sandbox {statistics.median(walls[True]):.1f} s, without "
                  f"{statistics.median(walls[False]):.1f} s, ratio {ratio:.3f} (target <= 1.10); "
                  f"same scores in both modes: {same}")
            ok = ok and same and ratio <= 1.10
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
