"""Self-check: run the visible checks on your *saved* notebook, the way the grader runs it.

From the notebook (save it first)::

    from course_utils.selfcheck import selfcheck
    selfcheck("autoencoder_probing")

or from a terminal::

    course-selfcheck path/to/autoencoder_probing.ipynb

The notebook is executed from top to bottom in a fresh process, in ``grading`` mode (tiny data, a
few steps), with the grader's own kernel, time and memory limits (:mod:`course_utils.grading.session`). Each
test cell's visible checks run, and you get one line per graded part with the points at stake. Only
the visible checks run here: the grader also runs hidden ones, so passing is a good sign, not a grade.
Running the saved file catches what running cells by hand hides: a cell that depends on one you
deleted, cells run out of order, a name defined only in a cell you later changed.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .modes import is_grading
from .grading.replay import replay
from .grading.session import KernelSession, RunLimits


@dataclass
class CellCheck:
    grade_id: str
    points: float
    status: str  # passed | failed | not run | manual
    message: str = ""


@dataclass
class SelfCheckReport:
    notebook: str
    checks: list = field(default_factory=list)  # CellCheck
    errors: list = field(default_factory=list)  # errors of other cells: (cell number, message)
    seconds: float = 0.0

    @property
    def points_passed(self) -> float:
        return sum(c.points for c in self.checks if c.status == "passed")

    @property
    def points_auto(self) -> float:
        return sum(c.points for c in self.checks if c.status != "manual")

    def summary(self) -> str:
        lines = [f"Self-check of {self.notebook} (visible checks only; the grader also runs hidden checks)"]
        for c in self.checks:
            status = {"passed": "passed", "failed": "FAILED", "manual": "graded by hand", "not run": "NOT RUN"}[c.status]
            line = f"  {c.grade_id:<24} {c.points:g} pt  {status}"
            if c.message and c.status in ("failed", "not run"):
                line += f"\n      {c.message}"
            lines.append(line)
        for number, message in self.errors:
            lines.append(f"  cell {number} raised {message}")
        auto = [c for c in self.checks if c.status != "manual"]
        passed = [c for c in auto if c.status == "passed"]
        verdict = (f"Visible checks pass for {len(passed)} of {len(auto)} autograded parts "
                   f"({self.points_passed:g} of {self.points_auto:g} points at stake); {self.seconds:.0f} s.")
        if self.errors:
            verdict += (f" But {len(self.errors)} other cell{'s' if len(self.errors) > 1 else ''} raised an error: the "
                        f"grader runs the same cells, and whatever they should define will be missing for its "
                        f"hidden checks. Fix {'them' if len(self.errors) > 1 else 'it'} first.")
        lines.append(verdict)
        return "\n".join(lines)

    def __repr__(self) -> str:  # a notebook cell's Out[] shows this: the verdict, not the dataclass
        return self.summary().splitlines()[-1]


def _nbgrader(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _death(result: dict, limits: RunLimits) -> str:
    if result["status"] == "memory":
        return f"this cell killed the kernel (memory limit, {limits.memory_mb:,} MB)."
    if result["status"] == "timeout":
        return f"this cell ran past {limits.cell_timeout:g} s and did not stop when interrupted."
    return "this cell killed the kernel (os._exit(), exit() or a crash?)."


def run_selfcheck(notebook_path, limits: Optional[RunLimits] = None, max_restarts: int = 3) -> SelfCheckReport:
    """Execute the saved notebook in a fresh grading kernel and collect each test cell's outcome."""
    import nbformat

    limits = limits or RunLimits(cell_timeout=120, total_timeout=900, memory_mb=6144, threads=1)
    path = Path(notebook_path)
    nb = nbformat.read(str(path), as_version=4)
    report = SelfCheckReport(path.name)
    start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="selfcheck_"))
    session = KernelSession(workdir, limits)
    cells = [(i, c["source"]) for i, c in enumerate(nb.cells)
             if c.get("cell_type") == "code" and c.get("source", "").strip()]
    try:
        state = replay(session, cells, limits.cell_timeout, limits.total_timeout, max_restarts,
                       after_start=lambda s: s.run(f"import torch; torch.set_num_threads({limits.threads})", 60))
    finally:
        session.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    for index, cell in enumerate(nb.cells):
        meta = _nbgrader(cell)
        grade_id, points = meta.get("grade_id", f"cell {index + 1}"), float(meta.get("points", 0) or 0)
        if meta.get("grade") and meta.get("solution") and cell.get("cell_type") == "markdown":
            report.checks.append(CellCheck(grade_id, points, "manual"))
            continue
        if cell.get("cell_type") != "code" or not cell.get("source", "").strip():
            continue
        is_test = bool(meta.get("grade")) and not meta.get("solution")
        if index in state.fatal:
            result = state.fatal[index]
            status, message = "failed", _death(result, limits) + " The grader skips such a cell and runs the others again."
        elif index in state.results:
            result = state.results[index]
            status = "passed" if result["status"] == "ok" else "failed"
            message = (f"stopped after {limits.cell_timeout:g} s (time limit)" if result["status"] == "timeout"
                       else result["error"])
        else:
            status, message = "not run", ("the notebook ran out of time before this cell" if index in state.not_run
                                          else "the kernel kept dying before this cell")
        if is_test:
            report.checks.append(CellCheck(grade_id, points, status, message))
        elif status != "passed":
            report.errors.append((index + 1, message))
    report.seconds = time.monotonic() - start
    return report


def selfcheck(notebook_path=None) -> Optional[SelfCheckReport]:
    """Run the visible checks on the saved notebook and print a per-part summary (one line in a notebook)."""
    if is_grading():
        print("selfcheck(): skipped while the notebook is being checked or graded.")
        return None
    from .submit import find_notebook

    notebook_path, example = find_notebook(notebook_path)
    if notebook_path is None:
        print("selfcheck(): cannot tell which file this notebook is. Save it, then run for example\n"
              f"    selfcheck('{example}')")
        return None
    print(f"Running {Path(notebook_path).name} from top to bottom in a fresh process (grading mode) ...", flush=True)
    report = run_selfcheck(notebook_path)
    print(report.summary())
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="course-selfcheck", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser) -> None:
    parser.add_argument("notebook", help="the saved notebook (.ipynb)")


def run(args) -> int:
    if not Path(args.notebook).is_file():
        print(f"no such notebook: {args.notebook}", file=sys.stderr)
        return 2
    report = run_selfcheck(args.notebook)
    print(report.summary())
    return 0 if all(c.status in ("passed", "manual") for c in report.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
