"""A batch's results on disk, and what is made of them: grades.csv and the printed table."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from .fileio import atomic_path

# ---- exports ------------------------------------------------------------------------------------

def load_results(out_dir) -> dict:
    from .grader import SubmissionResult

    results = {}
    for path in sorted((Path(out_dir) / "results").glob("*.json")):
        try:
            results[path.stem] = SubmissionResult.from_dict(json.loads(path.read_text()))
        except Exception:
            continue
    return results


def export_csv(pset_id: str, results: dict, path, manual: dict | None = None) -> Path:
    """grades.csv: one row per student, the points of every unit, total and max.

    ``manual``: {student id (the key of ``results``): {grade_id: points}} of the manually graded cells, as
    read from nbgrader's gradebook (:func:`autograder.gradebook.read_manual_scores`); a manual cell not
    graded yet stays empty. ``total`` is the automatic points plus the manual points known so far, out of
    ``max``, the problem set's total (automatic + manual, e.g. 4 + 1 = 5).
    """
    from .problem_sets import get_problem_set

    pset = get_problem_set(pset_id)
    auto = [u.grade_id for u in pset.units]
    manual_ids = [m.grade_id for m in pset.manual]
    manual = manual or {}
    header = ["student", *auto, *[f"{m} (manual)" for m in manual_ids], "total", "max", "status", "notebook",
              "flags", "notes"]
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for key in sorted(results, key=lambda k: results[k].student.lower()):
            r = results[key]
            points = {u.grade_id: u.points for u in r.units if not u.manual}
            given = manual.get(key, {})
            hand = [given.get(m) for m in manual_ids]
            total = r.score + sum(x for x in hand if x is not None)
            if r.grader_error:  # not graded: no points at all, so that nobody mistakes it for a 0
                w.writerow([r.student, *["" for _ in auto], *["" for _ in hand], "", _num(pset.total_points), r.status,
                            r.notebook, " | ".join(r.flags), " | ".join(r.notes)])
                continue
            w.writerow([r.student, *[_num(points.get(g, 0.0)) for g in auto], *["" if x is None else _num(x) for x in hand],
                        _num(total), _num(pset.total_points), r.status, r.notebook, " | ".join(r.flags),
                        " | ".join(r.notes)])
    return path


def _num(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x else "0"


def print_table(results: dict, file=None) -> None:
    file = file or sys.stdout
    rows = sorted(results.values(), key=lambda r: r.student.lower())
    width = min(40, max([7] + [len(r.student) for r in rows]))
    print(f"{'student':<{width}}  {'score':>11}  {'status':<7}  {'time':>6}  notes", file=file)
    for r in rows:
        extra = ("flagged; " if r.flags else "") + (r.notes[0][:70] if r.notes else "")
        print(f"{r.student:<{width}}  {_num(r.score):>5} / {_num(r.max_score):<3}  {r.status:<7}  {r.seconds:5.1f}s  {extra}",
              file=file)
