"""Per problem set: seconds to autograde one submission and minutes for the solution notebook in
``quick`` mode, with the peak memory of each, measured in one run.

    python benchmarks/bench_problem_sets.py [--pset ID] [--skip-quick]

Targets (2-core CPU, where `import torch` alone costs about 4 s): grading one submission <= 20 s;
the autoencoder_probing solution in quick mode <= 3 min, simple_clip <= 5 min.
Peak memory is the resident memory of the kernel process and its children, sampled every 50 ms.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_QUICK_MIN = {"autoencoder_probing": 3.0, "simple_clip": 5.0}


class PeakRSS(threading.Thread):
    """Samples the resident memory of the process tree below ``parent`` (kernels it starts)."""

    def __init__(self, parent_pid: int):
        super().__init__(daemon=True)
        self.parent, self.peak, self._stop = parent_pid, 0, threading.Event()

    def run(self):
        import psutil

        me = psutil.Process(self.parent)
        while not self._stop.wait(0.05):
            try:
                rss = sum(p.memory_info().rss for p in me.children(recursive=True))
            except psutil.Error:
                continue
            self.peak = max(self.peak, rss)

    def stop(self) -> float:
        self._stop.set()
        self.join()
        return self.peak / 2**20


def bench_grading(pset_id: str, workdir: Path) -> tuple:
    from autograder.grader import GradeOptions, grade_submission
    from autograder.release import make_sample_submissions

    samples = make_sample_submissions(pset_id, workdir / "submitted")
    watch = PeakRSS(os.getpid())
    watch.start()
    start = time.perf_counter()
    result = grade_submission(pset_id, samples["solution"], "solution", GradeOptions())
    seconds = time.perf_counter() - start
    peak = watch.stop()
    assert result.score == result.max_score, result.to_dict()
    return seconds, peak


def bench_quick(pset_id: str, workdir: Path) -> tuple:
    from autograder.demo import execute_notebook
    from autograder.problem_sets import get_problem_set

    nb = get_problem_set(pset_id).notebook
    watch = PeakRSS(os.getpid())
    watch.start()
    run = execute_notebook(ROOT / "solutions" / pset_id / nb, workdir / "executed" / nb, mode="quick")
    peak = watch.stop()
    if run["error"]:
        raise SystemExit(f"{pset_id}: the solution notebook failed in quick mode: {run['error']}")
    return run["seconds"] / 60, peak


def main() -> None:
    from autograder.release import available_psets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pset", action="append")
    parser.add_argument("--skip-quick", action="store_true")
    args = parser.parse_args()
    psets = args.pset or available_psets(ROOT)
    print(f"{'problem set':<22}{'grade 1 (s)':>12}{'peak MB':>9}{'quick (min)':>13}{'peak MB':>9}   targets")
    with tempfile.TemporaryDirectory() as tmp:
        for pset in psets:
            g_s, g_mb = bench_grading(pset, Path(tmp) / pset)
            if args.skip_quick:
                q_min, q_mb = float("nan"), float("nan")
            else:
                q_min, q_mb = bench_quick(pset, Path(tmp) / pset)
            print(f"{pset:<22}{g_s:>12.1f}{g_mb:>9.0f}{q_min:>13.2f}{q_mb:>9.0f}   "
                  f"grade <= 20 s ({g_s / 20:.2f}x of target), quick <= {TARGET_QUICK_MIN.get(pset, 5):g} min "
                  f"({q_min / TARGET_QUICK_MIN.get(pset, 5):.2f}x of target)", flush=True)


if __name__ == "__main__":
    main()
