"""Reading a unit's results in the tests of the problem sets ({check name: CheckResult})."""
from __future__ import annotations

WHOLE = " passes every check"  # the name's end of the whole-unit check (autograder.core.Unit.whole_check)


def failed_checks(results: dict) -> list:
    """The judge's failed checks; the whole-unit check (half the points) fails exactly when one of them does."""
    failed = sorted(name for name, r in results.items() if not r.passed and not name.endswith(WHOLE))
    whole = [r for name, r in results.items() if name.endswith(WHOLE)]
    assert len(whole) == 1 and whole[0].passed == (not failed), (failed, whole)
    return failed


def points(results: dict) -> float:
    return sum(r.points for r in results.values())


# ---- the fairness corpora: grading one unit in-process, several seeds -------------------------------------------

def grade_unit(pset, grade_id: str, objects: dict, seed: int):
    """(unit, results list) of ``pset``'s hidden test ``grade_id`` on the student's ``objects``."""
    from autograder.core import run_unit

    unit = pset.unit(grade_id)
    return unit, run_unit(unit, dict(objects), seed=seed)


def report(results) -> str:
    return "\n".join(f"  [{'ok' if r.passed else 'FAIL'}] {r.name} ({r.points:g}/{r.max_points:g}): {r.message}"
                     for r in results)


def full_marks_problems(pset, grade_id: str, objects: dict, seeds) -> list:
    """What keeps a correct solution from full marks, for every seed ([] when nothing does)."""
    problems = []
    for seed in seeds:
        unit, results = grade_unit(pset, grade_id, objects, seed)
        got = sum(r.points for r in results)
        if abs(got - unit.points) > 1e-6:
            problems.append(f"a correct solution lost points on {grade_id} (seed {seed}): {got:g}\n" + report(results))
    return problems


def mistake_problems(pset, grade_id: str, objects: dict, keywords, seeds) -> list:
    """What a classic mistake got away with, for every seed: over half of its unit kept, or no failing check's
    message that names it (one of ``keywords``)."""
    problems = []
    for seed in seeds:
        unit, results = grade_unit(pset, grade_id, objects, seed)
        got = sum(r.points for r in results)
        detail = f"{grade_id} (seed {seed}): {got:g} / {unit.points:g}\n" + report(results)
        if got > unit.points / 2 + 1e-9:
            problems.append("kept over half of " + detail)
        messages = " ".join(r.message for r in results if not r.passed).lower()
        if not any(k.lower() in messages for k in keywords):
            problems.append(f"no failing check's message names the problem (none of {keywords}) on " + detail)
    return problems
