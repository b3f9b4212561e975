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
