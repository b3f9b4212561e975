"""The class at a glance, written by ``course-kit grade`` beside ``grades.csv``.

* ``summary.csv``: for every unit and every check of that unit, how many students passed it, out of how
  many, the pass rate and the mean points earned; one row per unit (check ``(unit total)``) counts the
  students who earned all of the unit's points.
* ``scores.png``: a histogram of the students' total scores (automatic points plus the manual points
  graded so far, out of the problem set's total).
* a few lines of text (:func:`summary_text`), printed after the grade table: class size, mean and median,
  full marks and zeros, the checks the fewest students passed.
"""
from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .fileio import atomic_path
from .problem_sets import get_problem_set

UNIT_TOTAL = "(unit total)"


@dataclass
class CheckRate:
    unit: str  # the unit's title, e.g. "Decoder"
    grade_id: str  # the unit's test cell, e.g. "test_decoder"
    check: str  # the check's name, or UNIT_TOTAL
    max_points: float
    passed: int = 0
    graded: int = 0
    points: float = 0.0  # summed over the class

    @property
    def rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0

    @property
    def mean_points(self) -> float:
        return self.points / self.graded if self.graded else 0.0


@dataclass
class ClassSummary:
    pset: str
    students: int
    totals: list = field(default_factory=list)  # one total per student (automatic + manual known so far)
    max_total: float = 0.0
    auto_max: float = 0.0
    manual_graded: int = 0  # students with every manual cell graded
    has_manual: bool = False
    rates: list = field(default_factory=list)  # CheckRate, in the problem set's order
    full_auto: int = 0  # students with every automatic check passed
    zero: int = 0  # students with a total of 0
    not_graded: int = 0  # submissions the grader failed on (status "grader error"): left out of everything
    csv_path: Path | None = None
    png_path: Path | None = None


def summarise(pset_id: str, results: dict, manual: dict | None = None) -> ClassSummary:
    """Pass rates and totals of ``results`` ({student id: SubmissionResult}); ``manual`` as in grades.csv."""
    pset = get_problem_set(pset_id)
    manual = manual or {}
    rates: dict = {}
    order: list = []

    def rate(unit, check, max_points):
        key = (unit.grade_id, check)
        if key not in rates:
            rates[key] = CheckRate(unit.title, unit.grade_id, check, float(max_points))
            order.append(key)
        return rates[key]

    for unit in pset.units:  # the problem set's order, and every unit even when nobody reached it
        rate(unit, UNIT_TOTAL, unit.points)
        for check in unit.failed(""):
            rate(unit, check.name, check.max_points)
    not_graded = {k for k, r in results.items() if getattr(r, "grader_error", False)}  # no grade: left out
    summary = ClassSummary(pset_id, len(results) - len(not_graded), max_total=pset.total_points,
                           auto_max=pset.auto_points, has_manual=bool(pset.manual), not_graded=len(not_graded))
    for key, r in results.items():
        if key in not_graded:
            continue
        by_id = {u.grade_id: u for u in r.units if not u.manual}
        for unit in pset.units:
            got = by_id.get(unit.grade_id)
            total = rate(unit, UNIT_TOTAL, unit.points)
            total.graded += 1
            if got is None:
                for name in unit.all_checks:
                    rate(unit, name, 0).graded += 1
                continue
            total.points += got.points
            total.passed += int(got.checks != [] and all(c.passed for c in got.checks))
            for c in got.checks:
                row = rate(unit, c.name, c.max_points)
                row.max_points = float(c.max_points)
                row.graded += 1
                row.passed += int(c.passed)
                row.points += c.points
        given = manual.get(key, {})
        hand = [given.get(m.grade_id) for m in pset.manual]
        total_points = r.score + sum(x for x in hand if x is not None)
        summary.totals.append(round(total_points, 6))
        summary.manual_graded += int(bool(pset.manual) and all(x is not None for x in hand))
        summary.full_auto += int(r.score >= r.max_score > 0)
        summary.zero += int(total_points == 0)
    summary.rates = [rates[k] for k in order]
    return summary


def write_summary_csv(summary: ClassSummary, path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["unit", "grade_id", "check", "max_points", "passed", "students", "pass_rate", "mean_points"])
        for r in summary.rates:
            w.writerow([r.unit, r.grade_id, r.check, _num(r.max_points, 3), r.passed, r.graded, f"{r.rate:.3f}",
                        _num(r.mean_points, 3)])
    return path


def write_histogram(summary: ClassSummary, path) -> Path:
    """scores.png: the totals, in bins of half a point from 0 to the problem set's total (matplotlib Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    top = float(summary.max_total) or 1.0
    edges = [i * 0.5 for i in range(int(top * 2) + 2)]
    ax.hist(summary.totals, bins=edges, color="#3b6ea8", edgecolor="white")  # [0, 0.5), [0.5, 1) ... [top, top + 0.5)
    ax.set_xlim(0, top + 0.5)
    ax.set_xticks([float(i) for i in range(int(top) + 1)])
    ax.yaxis.get_major_locator().set_params(integer=True)
    manual = (f"; manual points graded for {summary.manual_graded} of {summary.students}"
              if summary.has_manual else "")
    ax.set_xlabel(f"total points (out of {_num(top)}{manual})")
    ax.set_ylabel("students")
    ax.set_title(f"{summary.pset}: {summary.students} students, mean {_num(_mean(summary.totals))}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def summary_text(summary: ClassSummary, hardest: int = 3) -> str:
    """A few lines for the instructor, printed after the grade table."""
    failed = (f" {summary.not_graded} submission(s) could not be graded (grader error) and are left out."
              if summary.not_graded else "")
    if not summary.students:
        return "Class summary: no submission was graded." + failed
    lines = [f"Class summary ({summary.pset}): {summary.students} students; total mean {_num(_mean(summary.totals))}, "
             f"median {_num(statistics.median(summary.totals))} of {_num(summary.max_total)}; "
             f"{summary.full_auto} passed every automatic check, {summary.zero} scored 0.{failed}"]
    if summary.has_manual:
        if summary.manual_graded < summary.students:
            lines.append(f"Manual points graded for {summary.manual_graded} of {summary.students} students "
                         f"(grade them in nbgrader's formgrader; `--gradebook` reads them back).")
        else:
            lines.append("Manual points graded for every student; totals include them.")
    checks = sorted((r for r in summary.rates if r.check != UNIT_TOTAL and r.graded and r.rate < 1.0),
                    key=lambda r: (r.rate, r.unit, r.check))[:hardest]
    if checks:
        named = [r.check if r.check.startswith(r.unit) else f"{r.unit}: {r.check}" for r in checks]
        lines.append("Hardest checks: " + "; ".join(f"{n} ({r.rate:.0%} passed)" for n, r in zip(named, checks)) + ".")
    else:
        lines.append("Every student passed every automatic check.")
    if summary.csv_path or summary.png_path:
        lines.append(f"Pass rate of every check: {summary.csv_path}; histogram of the totals: {summary.png_path}")
    return "\n".join(lines)


def write_summary(pset_id: str, results: dict, out_dir, manual: dict | None = None) -> ClassSummary:
    """Write ``summary.csv`` and ``scores.png`` into ``out_dir``; returns the summary (see :func:`summary_text`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(pset_id, results, manual)
    summary.csv_path = write_summary_csv(summary, out_dir / "summary.csv")
    summary.png_path = write_histogram(summary, out_dir / "scores.png")
    return summary


def _mean(values) -> float:
    return sum(values) / len(values) if values else 0.0


def _num(x: float, places: int = 2) -> str:
    return f"{x:.{places}f}".rstrip("0").rstrip(".") if x else "0"
