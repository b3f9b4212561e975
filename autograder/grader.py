"""Grade one submission: a fresh kernel, time and memory limits, probes in the kernel, judges here.

1. The notebook is read leniently (:mod:`autograder.notebooks`); its code cells (but the test cells)
   run in a fresh IPython kernel started with ``autograder`` out of reach, in ``grading`` mode
   (``NBGRADER_EXECUTION=autograde``: tiny data, a few steps), in an empty working directory.
2. Every cell has a time limit and the whole notebook a time budget; a watchdog kills the kernel
   when its memory passes the limit. A cell that kills the kernel (``os._exit``, a crash, the
   memory limit) is noted and skipped: the kernel restarts and the other cells run again.
3. For each graded unit, the grader writes inputs to a file and runs the unit's probe in the
   kernel; observations come back as a file read with ``weights_only=True``.
4. Judges run here, in the grader's process, where the student's code cannot reach them.

The result is a :class:`SubmissionResult`, which serialises to JSON.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from course_utils.runner import KernelSession as _KernelSession

from .core import CheckResult, judge_safely
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


@dataclass
class UnitResult:
    grade_id: str
    title: str
    max_points: float
    checks: list = field(default_factory=list)  # CheckResult
    manual: bool = False

    @property
    def points(self) -> float:
        return round(sum(c.points for c in self.checks), 6)

    def to_dict(self) -> dict:
        return {"grade_id": self.grade_id, "title": self.title, "points": self.points, "max_points": self.max_points,
                "manual": self.manual, "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, d: dict) -> "UnitResult":
        checks = [CheckResult(c["name"], c["max_points"], c["passed"], c.get("message", "")) for c in d["checks"]]
        return cls(d["grade_id"], d["title"], d["max_points"], checks, d.get("manual", False))


@dataclass
class SubmissionResult:
    pset: str
    student: str
    notebook: str
    units: list = field(default_factory=list)  # UnitResult
    notes: list = field(default_factory=list)  # notebook-level messages for the student
    status: str = "graded"  # graded | error
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return round(sum(u.points for u in self.units if not u.manual), 6)

    @property
    def max_score(self) -> float:
        return sum(u.max_points for u in self.units if not u.manual)

    def unit(self, grade_id: str) -> UnitResult:
        return next(u for u in self.units if u.grade_id == grade_id)

    def to_dict(self) -> dict:
        return {"pset": self.pset, "student": self.student, "notebook": self.notebook, "status": self.status,
                "score": self.score, "max_score": self.max_score, "seconds": round(self.seconds, 2),
                "notes": list(self.notes), "units": [u.to_dict() for u in self.units]}

    @classmethod
    def from_dict(cls, d: dict) -> "SubmissionResult":
        return cls(d["pset"], d["student"], d["notebook"], [UnitResult.from_dict(u) for u in d["units"]],
                   list(d.get("notes", [])), d.get("status", "graded"), d.get("seconds", 0.0))

    def save(self, path) -> None:
        """Write atomically, so an interrupted batch never leaves a half-written result."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        os.replace(tmp, path)


def _zero_result(pset, student: str, notebook: str, message: str) -> SubmissionResult:
    units = [UnitResult(u.grade_id, u.title, u.points, u.failed(message)) for u in pset.units]
    units += [UnitResult(m.grade_id, m.title, m.points, [], manual=True) for m in pset.manual]
    return SubmissionResult(pset.id, student, notebook, units, [message], status="error")


# ---- grading ------------------------------------------------------------------------------------

def _describe_failure(status: str, where: str, options: GradeOptions, error: str = "") -> str:
    return {
        "timeout": f"{where} was stopped after {options.cell_timeout:g} s (time limit). Look for an endless loop "
                   f"or work that is too large for grading mode.",
        "memory": f"{where} was stopped because the notebook used more than {options.memory_mb:,} MB of memory "
                  f"(memory limit).",
        "dead": f"{where} ended the Python process (for example os._exit() or a crash){': ' + error if error else ''}.",
        "error": f"{where} raised {error}",
    }.get(status, f"{where}: {status} {error}")


def grade_submission(pset_id: str, notebook_path, student: str = "", options: GradeOptions | None = None,
                     data_dir: str | None = None) -> SubmissionResult:
    """Grade one notebook of problem set ``pset_id``; never raises for anything the student did."""
    options = options or GradeOptions()
    pset = get_problem_set(pset_id)
    notebook_path = Path(notebook_path)
    student = student or notebook_path.stem
    start = time.monotonic()
    try:
        nb = load_notebook(notebook_path)
    except SubmissionError as exc:
        result = _zero_result(pset, student, notebook_path.name, f"Not graded: {exc}")
        result.seconds = time.monotonic() - start
        return result

    notes = [f"Note: {n}." for n in graded_cell_report(nb, [u.grade_id for u in pset.units])]
    cells = cells_to_run(nb)
    if not cells:
        result = _zero_result(pset, student, notebook_path.name, "Not graded: the notebook has no code cells.")
        result.seconds = time.monotonic() - start
        return result
    workdir = Path(tempfile.mkdtemp(prefix="grade_"))
    session = _KernelSession(workdir, options, data_dir)
    fatal: set = set()  # notebook indices of cells that killed the kernel
    outputs: dict = {}

    def replay(upto: int | None = None) -> bool:
        """Run the student's cells (all, or those before notebook index ``upto``) in a fresh kernel."""
        session.stop()
        session.start()
        session.run(f"import torch; torch.set_num_threads({int(options.threads)})", 60)
        deadline = time.monotonic() + options.total_timeout
        for index, source in cells:
            if upto is not None and index >= upto:
                break
            if index in fatal:
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 1:
                notes.append(f"The notebook's cells took longer than {options.total_timeout:g} s in all; "
                             f"cells from cell {index + 1} on were not run.")
                return True
            res = session.run(source, min(options.cell_timeout, remaining))
            outputs[index] = res["outputs"]
            if res["status"] in ("dead", "memory"):
                fatal.add(index)
                notes.append(_describe_failure(res["status"], f"Cell {index + 1}", options, res["error"])
                             + " It was skipped and the other cells were run again.")
                if session.restarts >= options.max_restarts:
                    notes.append("The kernel died too often; the remaining units were not graded.")
                    return False
                session.restarts += 1
                return replay(upto)
            if res["status"] == "timeout":
                notes.append(_describe_failure("timeout", f"Cell {index + 1}", options))
        return True

    units = []
    try:
        alive = replay()
        for unit in pset.units:
            if not alive:
                units.append(UnitResult(unit.grade_id, unit.title, unit.points,
                                        unit.failed("Not graded: the notebook's kernel kept dying (see the notes).")))
                continue
            obs, inputs = _probe(session, unit, options, workdir)
            if obs.get("status") in ("dead", "memory") and session.restarts < options.max_restarts:
                session.restarts += 1
                alive = replay()
            if isinstance(obs.get("error"), str) and "is not defined in the notebook" in obs["error"]:
                obs["error"] += diagnose_missing(nb, unit.names[0])
            units.append(UnitResult(unit.grade_id, unit.title, unit.points, judge_safely(unit, obs, inputs)))
    except Exception as exc:  # the grader itself failed: say so, grade nothing as passed
        done = {u.grade_id for u in units}
        for unit in pset.units:
            if unit.grade_id not in done:
                units.append(UnitResult(unit.grade_id, unit.title, unit.points,
                                        unit.failed(f"Not graded: the grader failed ({type(exc).__name__}: {exc}). "
                                                    f"Your instructor has been told; this is not your fault.")))
        notes.append(f"Grader error: {type(exc).__name__}: {exc}")
    finally:
        session.stop()
        if options.keep_executed:
            _save_executed(nb, outputs, options.keep_executed)
        shutil.rmtree(workdir, ignore_errors=True)
    units += [UnitResult(m.grade_id, m.title, m.points, [], manual=True) for m in pset.manual]
    result = SubmissionResult(pset.id, student, notebook_path.name, units, notes)
    result.seconds = time.monotonic() - start
    return result


def _probe(session: _KernelSession, unit, options: GradeOptions, workdir: Path):
    inputs = unit.make_inputs(options.seed)
    tag = os.urandom(6).hex()  # unguessable file names, written only now
    inputs_path, out_path = workdir / f"in_{tag}.pt", workdir / f"out_{tag}.pt"
    torch.save(inputs, inputs_path)
    code = (f"__import__('course_utils.probes.runtime', fromlist=['run_probe']).run_probe("
            f"{unit.probe!r}, {list(unit.names)!r}, {str(inputs_path)!r}, {str(out_path)!r})")
    res = session.run(code, min(unit.timeout, options.probe_timeout))
    try:
        inputs_path.unlink()
    except OSError:
        pass
    if res["status"] != "ok" or not out_path.exists():
        where = f"{unit.title} (run by the grader)"
        status = res["status"] if res["status"] != "ok" else "error"
        msg = _describe_failure(status, where, options, res["error"] or "no result")
        return {"error": msg, "status": res["status"]}, inputs
    try:
        obs = torch.load(out_path, weights_only=True)
    except Exception as exc:
        return {"error": f"{unit.title}: the grader could not read the observations ({type(exc).__name__})."}, inputs
    finally:
        out_path.unlink(missing_ok=True)
    return (obs if isinstance(obs, dict) else {"error": f"{unit.title}: unexpected observations."}), inputs


def _save_executed(nb, outputs: dict, path) -> None:
    import copy

    import nbformat

    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        if cell.get("cell_type") == "code":
            cell["outputs"] = outputs.get(i, [])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        nbformat.write(out, str(path))
    except Exception:
        pass
