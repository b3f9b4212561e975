"""Grade one submission: a fresh kernel, time and memory limits, probes in the kernel, judges here.

1. The notebook is read leniently (:mod:`autograder.notebooks`); its code cells (but the test cells)
   run in a fresh IPython kernel started with ``autograder`` out of reach, in ``grading`` mode
   (``NBGRADER_EXECUTION=autograde``: tiny data, a few steps), in an empty working directory.
2. Every cell has a time limit and the whole notebook a time budget; a watchdog kills the kernel
   when its memory passes the limit (and ``RLIMIT_DATA`` makes a huge single allocation fail at
   once). A cell that kills the kernel (``os._exit``, a crash, the memory limit, a loop that ignores
   interrupts) is noted and skipped: the kernel restarts and the other cells run again.
3. For each graded unit, the grader writes inputs to a file and runs the unit's probe in the
   kernel; observations come back as a signed file read with ``weights_only=True``.
4. Judges run here, in the grader's process, where the student's code cannot reach them.

The result is a :class:`SubmissionResult`, which serialises to JSON.

Trust model
-----------
What a submission **cannot** do:

* change a verdict by patching anything in its kernel (``torch.allclose``/``torch.equal``, the
  ``autograder`` entry in ``sys.modules``, printing "All tests passed"): verdicts are computed here
  by the judges, from observations, with the reference implementation;
* import ``autograder`` (the reference solutions and judges) in the kernel;
* run code in the grader through the observations: they are read with ``torch.load(weights_only=True)``
  after a size check;
* hand back forged observations through a replaced ``run_probe``, a replaced ``torch.save``, a module
  swapped in ``sys.modules``, or an IPython hook that rewrites the grader's cell: the probe entry point
  (:mod:`course_utils.grading.runtime`) is armed before any student code runs, restores the originals
  it relies on before each probe (the instructor is told, see ``SubmissionResult.flags``), discards
  observations when the machinery is changed while the probe runs, and signs what it writes with a
  key that only the grader and that entry point hold; anything unsigned scores 0;
* stop the batch: time limits per cell and per probe (a loop that swallows ``KeyboardInterrupt``
  gets its kernel killed), a memory limit, an output-size cap, ``os._exit``/``sys.exit``/crashes
  restart the kernel without the offending cell; each submission has a fresh kernel process.

What is **not** protected (run ``course-kit grade`` for a real class as an unprivileged user, or in
a container, with nothing else readable or reachable):

* The kernel runs as the grading user: it can read any file that user can read (including the
  ``autograder`` sources on disk: importing is blocked, ``open()`` is not), write files, use the
  network if there is one, and signal or kill that user's other processes (the grader's worker, in
  the worst case: the batch then grades that submission again alone, and gives it 0 with a note if
  it happens again).
* A notebook written *against* the grader, that digs the signing key or the kept originals out of
  the kernel's memory (``gc``, closures) or patches them from a background thread during a probe,
  can forge the observations of its own units. Forged observations can only claim what the judges
  cannot recompute with the reference (what a unit's own code returns, e.g. an output's range);
  such code is plain to see in the submission, and the integrity notes flag the simpler attempts.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from course_utils.grading.runtime import verify as verify_observations
from course_utils.grading.kernel import ENV_STARTED_WITH
from course_utils.grading.replay import Replay, replay, restart_allowed
from course_utils.grading.session import KernelSession as _KernelSession

from .results import (GRADER_ERROR, SubmissionResult, UnitResult, _zero_result,  # noqa: F401  (re-exported)
                      grader_error_result)
from .core import HEAVY_MODULES, judge_safely, submission_seed
from .notebooks import SubmissionError, cells_to_run, diagnose_missing, graded_cell_report, load_notebook
from .problem_sets import get_problem_set

@dataclass
class GradeOptions:
    """Limits and settings for grading one submission."""

    cell_timeout: float = 120.0  # seconds one cell of the student's notebook may run
    total_timeout: float = 600.0  # seconds all of the student's cells may run together
    probe_timeout: float = 60.0  # seconds the probe of one unit may run
    memory_mb: int = 4096  # resident memory of the kernel (with its children) before it is killed
    seed: int = int(os.environ.get("AUTOGRADER_SEED", "20261123"))  # inputs of the hidden checks
    threads: int = 1  # torch threads in the kernel (1 when several kernels run side by side)
    max_restarts: int = 3  # kernel deaths survived before the remaining units are given up
    keep_executed: str | None = None  # path to save the executed notebook (student cells + outputs)
    sandbox: bool = True  # run the kernel in the bubblewrap sandbox (course_utils.grading.sandbox); False: --no-sandbox
    job_timeout: float | None = None  # seconds a batch worker may spend on one submission (None: from the limits)


class GraderError(RuntimeError):
    """The grader itself failed (not the student's code): the submission is not graded, never scored."""


def sandbox_advice(problem: str) -> str:
    return (f"the grading sandbox cannot start: {problem}. Fix that, or grade with --no-sandbox (the students' code "
            f"then runs with the grading user's rights; see the README's trust model)")


# ---- grading ------------------------------------------------------------------------------------

MAX_OBSERVATION_BYTES = 256 * 2**20  # an observations file larger than this is not read
_MEMORY_ERRORS = ("can't allocate memory", "MemoryError", "Cannot allocate memory", "out of memory")


def _describe_failure(status: str, where: str, options: GradeOptions, error: str = "", timeout: float | None = None) -> str:
    if status == "error" and any(m in error for m in _MEMORY_ERRORS):
        return (f"{where} tried to use more memory than the grader allows ({options.memory_mb:,} MB): "
                f"{error.splitlines()[0][:200]}")
    limit = options.cell_timeout if timeout is None else timeout
    return {
        "timeout": f"{where} was stopped after {limit:g} s (time limit). Look for an endless loop "
                   f"or work that is too large for grading mode.",
        "memory": f"{where} was stopped because the notebook used more than {options.memory_mb:,} MB of memory "
                  f"(memory limit).",
        "dead": f"{where} ended the Python process (for example os._exit(), exit() or a crash)"
                f"{': ' + error if error else ''}.",
        "error": f"{where} raised {error}",
    }.get(status, f"{where}: {status} {error}")


@dataclass
class _Job:
    """One notebook being graded: what the steps of :data:`STEPS` read and add, in order."""

    pset: object  # ProblemSet
    path: Path
    student: str
    options: GradeOptions
    data_dir: str | None
    start: float = field(default_factory=time.monotonic)
    content: bytes = b""  # the file's bytes (the hidden inputs are drawn from them, see core.submission_seed)
    nb: object = None  # the notebook, read leniently
    cells: list = field(default_factory=list)  # (index, source) of the cells to replay
    notes: list = field(default_factory=list)  # for the student
    flags: list = field(default_factory=list)  # for the instructor
    units: list = field(default_factory=list)  # UnitResult
    state: Replay = field(default_factory=Replay)  # what replaying the cells met
    kernel_modules: list = field(default_factory=list)  # heavy libraries the notebook's cells imported

    def zero(self, message: str) -> SubmissionResult:
        return _zero_result(self.pset, self.student, self.path.name, message)


def _read(job: _Job):
    """The file, read leniently (autograder.notebooks); a file that is no notebook scores 0 with the reason."""
    try:
        job.content = job.path.read_bytes()
    except OSError:
        job.content = b""
    try:
        job.nb = load_notebook(job.path)
    except SubmissionError as exc:
        return job.zero(f"Not graded: {exc}")
    return None


def _find_cells(job: _Job):
    """The graded cells' report (moved, missing, turned to Markdown) and the code cells to run."""
    job.notes += [f"Note: {n}." for n in graded_cell_report(job.nb, [u.grade_id for u in job.pset.units])]
    job.cells = cells_to_run(job.nb)
    if not job.cells:
        return job.zero("Not graded: the notebook has no code cells (was the right file submitted?).")
    return None


def _wall_off(job: _Job):
    """The sandbox can start (else a grader error, never a score); with the user wall, the submission's folder
    is out of the kernel's reach too."""
    if not job.options.sandbox:
        return None
    from course_utils.grading.sandbox import protect, sandbox_mode, sandbox_problem

    problem = sandbox_problem()
    if problem:
        return grader_error_result(job.pset, job.student, job.path.name, sandbox_advice(problem))
    if sandbox_mode() == "user":
        protect([str(job.path.parent)])
    return None


def _run_and_judge(job: _Job):
    """A fresh kernel replays the student's cells; each unit's probe runs in it and its judge here. Anything that
    fails in the grader itself (not in the student's code) makes the submission a grader error, never a score."""
    options, pset = job.options, job.pset
    workdir = Path(tempfile.mkdtemp(prefix="grade_"))
    session = _KernelSession(None if options.sandbox else workdir, options, job.data_dir,
                             preload=pset.preload)

    def run_cells() -> bool:
        try:
            replay(session, job.cells, options.cell_timeout, options.total_timeout, options.max_restarts, job.state,
                   after_start=_check_kernel)
        except GraderError:
            raise
        except Exception as exc:
            raise GraderError(f"the grading kernel did not start: {exc}") from exc
        return job.state.finished

    try:
        alive = run_cells()
        if alive and session.alive:
            job.kernel_modules = _imported_heavy_modules(session)
        for unit in pset.units:
            if alive and not session.alive:  # the previous probe killed the kernel
                alive = restart_allowed(job.state, options.max_restarts) and run_cells()
            if not alive:
                job.units.append(UnitResult(unit.grade_id, unit.title, unit.points,
                                            unit.failed("Not graded: the notebook's kernel kept dying (see the notes).")))
                continue
            seed = submission_seed(options.seed, job.student, job.content, unit.grade_id)
            obs, inputs = _probe(session, unit, options, session.workdir, seed)
            integrity = obs.pop("_integrity", None) if isinstance(obs, dict) else None
            if integrity:
                job.flags.extend(f"{unit.title}: {item}" for item in integrity if isinstance(item, str))
            if isinstance(obs.get("error"), str) and "is not defined in the notebook" in obs["error"]:
                obs["error"] += diagnose_missing(job.nb, unit.names[0])
            job.units.append(UnitResult(unit.grade_id, unit.title, unit.points, judge_safely(unit, obs, inputs)))
    except Exception as exc:  # the grader itself failed: no grade at all, the cause for the instructor
        return grader_error_result(pset, job.student, job.path.name, f"{type(exc).__name__}: {exc}")
    finally:
        session.stop()
        if options.keep_executed:
            _save_executed(job.nb, {i: r["outputs"] for i, r in {**job.state.results, **job.state.fatal}.items()},
                           options.keep_executed)
        shutil.rmtree(workdir, ignore_errors=True)
    return None


def _result(job: _Job):
    """The notes of the replay and of the integrity checks, the manual units, and the result."""
    job.notes += _replay_notes(job.state, job.options)
    if job.flags:
        replaced = sorted({f.split(": ", 1)[-1].replace(" (while the probe ran)", "") for f in job.flags})
        job.notes.append("Integrity: the notebook modified the grading machinery (" + ", ".join(replaced[:8])
                         + (", ..." if len(replaced) > 8 else "") + "). The grader restored the originals before "
                         "checking your work, so this did not earn points; your instructor can see this note.")
    units = job.units + [UnitResult(m.grade_id, m.title, m.points, [], manual=True) for m in job.pset.manual]
    if not job.options.sandbox:
        job.flags.append("graded without a sandbox (--no-sandbox): the notebook ran with the grading user's rights")
    errors = [f"cell {index + 1}: {(res.get('error') or res['status']).strip().splitlines()[0]}"
              for index, res in sorted(job.state.results.items()) if res["status"] != "ok"]
    return SubmissionResult(job.pset.id, job.student, job.path.name, units, job.notes, flags=sorted(set(job.flags)),
                            kernel_modules=job.kernel_modules, cell_errors=errors)


# Grading one notebook, as a declared list of one-job steps (as nbgrader's autograde converter lists its
# preprocessors): each step reads and adds to the job, and returns None to go on or the final result.
STEPS = (_read, _find_cells, _wall_off, _run_and_judge, _result)


def grade_submission(pset_id: str, notebook_path, student: str = "", options: GradeOptions | None = None,
                     data_dir: str | None = None) -> SubmissionResult:
    """Grade one notebook of problem set ``pset_id`` through :data:`STEPS`; never raises for anything the
    student did."""
    path = Path(notebook_path)
    job = _Job(get_problem_set(pset_id), path, student or path.stem, options or GradeOptions(), data_dir)
    for step in STEPS:
        result = step(job)
        if result is not None:
            result.seconds = time.monotonic() - job.start
            return result
    raise AssertionError("the last step of STEPS returns the result")


def grade_candidates(pset_id: str, candidates, student: str, options: GradeOptions | None = None,
                     data_dir: str | None = None, grade=None) -> SubmissionResult:
    """The one front door of ``course-kit grade`` and Gradescope: grade every candidate notebook of one
    submission (``(path, name)`` pairs; a student may hand in several) and keep the best. A grader failure
    on any candidate makes the whole submission a grader error: the one that failed might have been best."""
    grade = grade or grade_submission
    best = None
    for path, name in candidates:
        result = grade(pset_id, path, student, options, data_dir)
        result.notebook = name
        if result.grader_error:
            return result
        if best is None or result.score > best.score:
            best = result
    if best is None:
        raise ValueError("no candidate notebook to grade")
    return best


def _replay_notes(state: Replay, options: GradeOptions) -> list:
    """What the replay of the notebook's cells met, in the notebook's order, in words for the student."""
    notes = []
    for index in sorted({**state.results, **state.fatal}):
        where = f"Cell {index + 1}"
        if index in state.fatal:
            res = state.fatal[index]
            if res["status"] == "timeout":
                notes.append(_describe_failure("timeout", where, options) + " It did not stop when interrupted, so "
                             "it was skipped and the other cells were run again.")
            else:
                notes.append(_describe_failure(res["status"], where, options, res["error"])
                             + " It was skipped and the other cells were run again.")
            continue
        res = state.results[index]
        if res["status"] == "timeout":
            notes.append(_describe_failure("timeout", where, options))
        elif res["status"] == "error" and any(m in res["error"] for m in _MEMORY_ERRORS):
            notes.append(_describe_failure("error", where, options, res["error"]))
    if state.not_run:
        notes.append(f"The notebook's cells took longer than {options.total_timeout:g} s in all; "
                     f"cells from cell {state.not_run[0] + 1} on were not run.")
    if state.gave_up:
        notes.append("The kernel died too often; the remaining units were not graded.")
    return notes


def _check_kernel(session: _KernelSession) -> None:
    """Before any student code: the kernel can run the probes (a broken install fails here, as a grader
    error, instead of scoring every student 0)."""
    _key, entry = session.probe_key
    code = ("import builtins, course_utils.grading.runtime as _r\n"
            f"assert callable(getattr(builtins, {entry!r}, None)), 'the probe entry point was not installed'\n"
            "import torch\nprint('ok')")
    res = session.run(code, 120)
    text = "".join(o.get("text", "") for o in res["outputs"] if o.get("output_type") == "stream")
    if res["status"] != "ok" or "ok" not in text:
        log = session.kernel_log()[-1500:]
        raise GraderError(f"the grading kernel cannot run the hidden tests ({res['status']}: {res['error'] or text}). "
                          f"Kernel log: {log}")


def _imported_heavy_modules(session: _KernelSession) -> list:
    """Which of :data:`core.HEAVY_MODULES` the notebook's cells imported, beyond those the kernel started with (a
    zygote's preloads): what the problem set's ``preload`` should declare."""
    code = ("import os as _o, sys as _s\n"
            f"print(','.join(sorted(_s.modules.keys() & set({list(HEAVY_MODULES)!r})"
            f" - set(_o.environ.get({ENV_STARTED_WITH!r}, '').split(',')))))\n"
            "del _o, _s")
    res = session.run(code, 10)
    text = "".join(o.get("text", "") for o in res["outputs"] if o.get("output_type") == "stream").strip()
    return sorted(m for m in text.split(",") if m in HEAVY_MODULES)


def _probe(session: _KernelSession, unit, options: GradeOptions, workdir: Path, seed: int):
    """Run ``unit``'s probe in the kernel through the signed entry point; (observations, inputs)."""
    inputs = unit.make_inputs(seed)
    tag = os.urandom(8).hex()  # unguessable file names, written only now
    nonce = os.urandom(16).hex()
    inputs_path, out_path = workdir / f"in_{tag}.pt", workdir / f"out_{tag}.pt"
    out_path.unlink(missing_ok=True)
    torch.save(inputs, inputs_path)
    key, entry = session.probe_key
    code = f"{entry}({unit.probe!r}, {list(unit.names)!r}, {str(inputs_path)!r}, {str(out_path)!r}, {nonce!r})"
    timeout = min(unit.timeout, options.probe_timeout)
    res = session.run(code, timeout)
    inputs_path.unlink(missing_ok=True)
    where = f"{unit.title} (run by the grader)"
    if res["status"] != "ok" or not out_path.exists():
        out_path.unlink(missing_ok=True)
        status = res["status"] if res["status"] != "ok" else "error"
        if status == "error" and res["error"].startswith("NameError") and entry in res["error"]:
            return {"error": f"{unit.title} could not be checked: the notebook interfered with the grader's "
                             f"code (its results could not be verified).",
                    "_integrity": ["the grader's probe call was blocked or rewritten"]}, inputs
        msg = _describe_failure(status, where, options, res["error"] or "no result", timeout=timeout)
        return {"error": msg, "status": res["status"]}, inputs
    try:
        if out_path.stat().st_size > MAX_OBSERVATION_BYTES:
            return {"error": f"{unit.title}: the results were too large to be read "
                             f"(more than {MAX_OBSERVATION_BYTES // 2**20} MB)."}, inputs
        payload = verify_observations(out_path.read_bytes(), key, nonce, unit.probe)
        if payload is None:
            return {"error": f"{unit.title} could not be checked: its results were not produced by the grader's "
                             f"own code (the notebook interfered with the grading machinery), so they were discarded.",
                    "_integrity": ["unsigned or altered observations"]}, inputs
        obs = torch.load(io.BytesIO(payload), weights_only=True)
    except Exception as exc:
        return {"error": f"{unit.title}: the grader could not read the observations ({type(exc).__name__})."}, inputs
    finally:
        out_path.unlink(missing_ok=True)
    return (obs if isinstance(obs, dict) else {"error": f"{unit.title}: unexpected observations."}), inputs


def _save_executed(nb, outputs: dict, path) -> None:
    """Write the notebook with the outputs of the grading run (for the instructor)."""
    out = json.loads(json.dumps(nb))
    for i, cell in enumerate(out.get("cells", [])):
        if cell.get("cell_type") == "code":
            cell["outputs"] = [dict(o) for o in outputs.get(i, [])]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        Path(path).write_text(json.dumps(out, indent=1))
    except Exception:
        pass
