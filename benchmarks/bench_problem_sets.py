"""Per problem set: seconds to autograde one submission and minutes for the solution notebook in
``quick`` mode, with the peak memory of each, measured in one run.

    python benchmarks/bench_problem_sets.py [--pset ID] [--skip-quick]

Targets (2-core CPU, where `import torch` alone costs about 4 s): grading one submission <= 20 s;
the autoencoder_probing solution in quick mode <= 3 min, simple_clip, contrastive_shapes, vae_denoising and simclr <= 5 min.
Peak memory is the resident memory of the notebook's kernel process, sampled every 50 ms.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_QUICK_MIN = {"autoencoder_probing": 3.0, "simple_clip": 5.0, "contrastive_shapes": 5.0, "vae_denoising": 5.0,
                    "simclr": 5.0}


class PeakRSS(threading.Thread):
    """Peak resident memory of one notebook kernel while it watches (sampled every 50 ms).

    Grading kernels are forked from a preloaded helper (same command line) and leave the grader's
    process tree, so kernels are found by their command line; the largest single process is reported."""

    PATTERNS = ("course_utils.grading.kernel", "ipykernel_launcher")

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self._halt = 0, threading.Event()

    def run(self):
        import psutil

        while not self._halt.wait(0.05):
            for proc in psutil.process_iter(["cmdline", "memory_info"]):
                cmd = " ".join(proc.info.get("cmdline") or [])
                if any(p in cmd for p in self.PATTERNS) and proc.info.get("memory_info"):
                    self.peak = max(self.peak, proc.info["memory_info"].rss)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak / 2**20


def bench_grading(pset_id: str, workdir: Path) -> tuple:
    from autograder.grader import GradeOptions, grade_submission
    from autograder.release import make_sample_submissions

    samples = make_sample_submissions(pset_id, workdir / "submitted")
    watch = PeakRSS()
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
    watch = PeakRSS()
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
