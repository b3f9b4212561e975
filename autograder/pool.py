"""Grading submissions in worker processes: one job per submission, a deadline per job, and a worker
that dies (a notebook can signal its grader) costs nobody a grade: its jobs are graded again, alone.
"""
from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .results import GRADER_ERROR  # noqa: F401  (batch imports it from here)

# ---- grading in worker processes ----------------------------------------------------------------

class StopBatch(Exception):
    """Raised by a batch's bookkeeping to stop grading (the grader fails on every submission)."""



def _load_callable(spec: str):
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _worker_init(warm: dict | None = None) -> None:
    """Set up a worker; start its kernel zygote at once, so that it preloads while the worker imports."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business; results are already saved
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if warm and warm.get("zygote"):
        def start_zygote():
            try:
                from course_utils.grading.session import _Zygote, kernel_env

                env = kernel_env(warm["options"], warm.get("data_dir"))
                sandbox = bool(warm["options"].sandbox)
                if sandbox:
                    from course_utils.grading.sandbox import sandbox_mode

                    if sandbox_mode() != "bwrap":  # the user wall starts each kernel afresh: no zygote
                        return
                _Zygote.get(env, sandbox, warm.get("preload") or ())
            except Exception:
                pass

        threading.Thread(target=start_zygote, daemon=True).start()
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:
        pass


def grade_job(job: dict) -> dict:
    """Grade one student's submission in a worker; write its result file; return a summary."""
    from .grader import _zero_result, grade_candidates
    from .problem_sets import get_problem_set

    out_dir = Path(job["out"])
    marker = out_dir / ".running" / job["key"]
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    try:
        pset = get_problem_set(job["pset"])
        if job["problem"]:
            result = _zero_result(pset, job["student"], "", job["problem"])
        else:
            grade = _load_callable(job.get("grade_fn") or "autograder.grader:grade_submission")
            result = grade_candidates(job["pset"], zip(job["files"], job["names"]), job["student"],
                                      job["options"], job.get("data_dir"), grade)
        if job["notes"]:
            result.notes = list(job["notes"]) + list(result.notes)
        result.fingerprint = job["fingerprint"]
        result.save(out_dir / "results" / f"{job['key']}.json")
        return {"key": job["key"], "student": result.student, "score": result.score, "max": result.max_score,
                "status": result.status, "seconds": result.seconds,
                "cause": next((f[len("grader error: "):] for f in result.flags if f.startswith("grader error: ")), "")}
    finally:
        marker.unlink(missing_ok=True)


def _grader_failed(job: dict, out_dir: Path, cause: str) -> dict:
    """Write a submission the grader failed on (a worker that died or passed its deadline): no grade, the
    cause for the instructor; the next run of the batch grades it again. Returns the job's summary."""
    from .grader import grader_error_result
    from .problem_sets import get_problem_set

    result = grader_error_result(get_problem_set(job["pset"]), job["student"], (job["names"] or [""])[0], cause)
    result.notes = list(job["notes"]) + list(result.notes)
    result.fingerprint = job["fingerprint"]
    result.save(out_dir / "results" / f"{job['key']}.json")
    return {"key": job["key"], "student": job["student"], "status": result.status, "cause": cause}


def job_deadline(job: dict) -> float:
    """Seconds a worker may spend on one job before it is stopped: every cell, probe and restart the
    limits allow, for each candidate notebook, with room for starting kernels."""
    o = job["options"]  # GradeOptions
    if o.job_timeout:
        return float(o.job_timeout)
    per_file = (o.total_timeout + 8 * o.probe_timeout + 120) * (int(o.max_restarts) + 1)
    return per_file * max(1, len(job["files"])) + 60


def _stop_overdue(running_dir: Path, jobs: dict) -> set:
    """Kill the worker of every job past its deadline; return those jobs' keys."""
    import psutil

    overdue = set()
    for marker in list(running_dir.glob("*")) if running_dir.is_dir() else []:
        job = jobs.get(marker.name)
        try:
            started, pid = marker.stat().st_mtime, int(marker.read_text().strip() or 0)
        except (OSError, ValueError):
            continue
        if job is None or not pid or time.time() - started <= job_deadline(job):
            continue
        overdue.add(marker.name)
        try:
            proc = psutil.Process(pid)
            for p in proc.children(recursive=True) + [proc]:
                p.kill()
        except psutil.Error:
            pass
    return overdue


def _run_pool(jobs: list, workers: int, out_dir: Path, on_done, warm: dict | None = None) -> list:
    """Run jobs in a pool; return the jobs that were running when a worker died (the suspects)."""
    import multiprocessing

    if not jobs:
        return []
    running_dir = out_dir / ".running"
    shutil.rmtree(running_dir, ignore_errors=True)
    ctx = multiprocessing.get_context("spawn")
    remaining = list(jobs)
    suspects = []
    while remaining:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(remaining)), mp_context=ctx, initializer=_worker_init,
                                   initargs=(warm,))
        futures = {pool.submit(grade_job, job): job for job in remaining}
        by_key = {job["key"]: job for job in remaining}
        broken = False
        overdue: set = set()
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
                overdue |= _stop_overdue(running_dir, by_key)
                for fut in done:
                    job = futures[fut]
                    try:
                        on_done(job, fut.result())
                    except StopBatch:
                        raise
                    except BrokenProcessPool:
                        broken = True
                    except Exception as exc:  # a bug in the grader for this one submission
                        on_done(job, {"key": job["key"], "student": job["student"], "error": f"{type(exc).__name__}: {exc}"})
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)
        if not broken:
            break
        running = {p.name for p in running_dir.glob("*")} if running_dir.is_dir() else set()
        shutil.rmtree(running_dir, ignore_errors=True)
        for key in sorted(overdue):  # a job past its deadline is not tried again: a grader error, no grade
            job = by_key[key]
            on_done(job, _grader_failed(job, out_dir, f"grading this submission took longer than its deadline of "
                                                      f"{job_deadline(job):g} s; the worker was stopped"))
        running -= overdue
        unfinished = [j for j in remaining if j["key"] not in overdue and
                      (not (out_dir / "results" / f"{j['key']}.json").exists() or j["key"] in running)]
        newly = [j for j in unfinished if j["key"] in running]
        if not newly and unfinished:  # no submission was being graded: the workers themselves fail
            raise RuntimeError("the grading worker processes died before grading anything (can they start? "
                               "a script that calls grade_class needs an `if __name__ == '__main__':` guard)")
        suspects += newly
        remaining = [j for j in unfinished if j not in newly]
    return suspects
