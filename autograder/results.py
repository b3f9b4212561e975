"""What grading produces, and its serialisation: a submission's result (its units, their checks, notes for the
student, flags for the instructor, status) as written to ``results/<student>.json``, read back by a resumed batch,
turned into grades.csv, feedback pages, nbgrader's gradebook and Gradescope's results.json. No torch here: the
batch's parent process reads results without it."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .core import CheckResult, clip_text
from .fileio import write_atomic


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
    status: str = "graded"  # graded | error (nothing gradable was submitted: 0) | grader error (not graded)
    seconds: float = 0.0
    flags: list = field(default_factory=list)  # for the instructor: what the notebook did to the grading machinery
    fingerprint: str = ""  # sha256 of the graded file(s), so a batch re-run knows when a submission changed
    # Heavy libraries (core.HEAVY_MODULES) the notebook's cells imported, beyond what the kernel started with: for the
    # instructor, beside the problem set's declared ``preload`` (what the grader's kernel zygote imports in advance).
    kernel_modules: list = field(default_factory=list)
    # For the instructor: the cells that failed when the grader replayed the notebook ("cell 5: NameError: ..."). An
    # error that every submission shows in the same cell points at the grading environment, not at the students.
    cell_errors: list = field(default_factory=list)

    def __post_init__(self):
        # Texts that came from the kernel are cut here, once, whatever path they took.
        self.notes = [clip_text(n) for n in self.notes][:100]
        self.flags = [clip_text(f) for f in self.flags][:100]
        self.cell_errors = [clip_text(e, 300) for e in self.cell_errors][:50]
        self.student, self.notebook = clip_text(self.student, 300), clip_text(self.notebook, 300)

    @property
    def score(self) -> float:
        return round(sum(u.points for u in self.units if not u.manual), 6)

    @property
    def grader_error(self) -> bool:
        """The grader failed on this submission: it has no grade (see :data:`GRADER_ERROR`)."""
        return self.status == GRADER_ERROR

    @property
    def max_score(self) -> float:
        return sum(u.max_points for u in self.units if not u.manual)

    def unit(self, grade_id: str) -> UnitResult:
        return next(u for u in self.units if u.grade_id == grade_id)

    def to_dict(self) -> dict:
        return {"pset": self.pset, "student": self.student, "notebook": self.notebook, "status": self.status,
                "score": self.score, "max_score": self.max_score, "seconds": round(self.seconds, 2),
                "notes": list(self.notes), "flags": list(self.flags), "fingerprint": self.fingerprint,
                "kernel_modules": list(self.kernel_modules), "cell_errors": list(self.cell_errors), "units": [u.to_dict() for u in self.units]}

    @classmethod
    def from_dict(cls, d: dict) -> "SubmissionResult":
        return cls(d["pset"], d["student"], d["notebook"], [UnitResult.from_dict(u) for u in d["units"]],
                   list(d.get("notes", [])), d.get("status", "graded"), d.get("seconds", 0.0),
                   list(d.get("flags", [])), d.get("fingerprint", ""), list(d.get("kernel_modules", [])),
                   list(d.get("cell_errors", [])))

    def save(self, path) -> None:
        """Write atomically, so an interrupted batch never leaves a half-written result."""
        write_atomic(path, json.dumps(self.to_dict(), indent=1))


GRADER_ERROR = "grader error"


def grader_error_result(pset, student: str, notebook: str, cause: str) -> SubmissionResult:
    """A submission the grader could not grade: no points at all, the cause for the instructor."""
    units = [UnitResult(u.grade_id, u.title, u.points, [], manual=False) for u in pset.units]
    units += [UnitResult(m.grade_id, m.title, m.points, [], manual=True) for m in pset.manual]
    note = ("Not graded yet: the grader failed on this submission (not because of your work). Your instructor "
            "has to fix the grader and grade it again.")
    return SubmissionResult(pset.id, student, notebook, units, [note], status=GRADER_ERROR,
                            flags=[f"grader error: {cause[:2000]}"])


def _zero_result(pset, student: str, notebook: str, message: str) -> SubmissionResult:
    units = [UnitResult(u.grade_id, u.title, u.points, u.failed(message)) for u in pset.units]
    units += [UnitResult(m.grade_id, m.title, m.points, [], manual=True) for m in pset.manual]
    return SubmissionResult(pset.id, student, notebook, units, [message], status="error")
