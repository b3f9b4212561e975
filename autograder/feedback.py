"""Per-student feedback as a standalone HTML page, built from a graded result only.

The page shows, for every unit, each check's name, points and message, then the notes about the
notebook (cells that timed out, ended the kernel, a file that was renamed...). It is rendered from
:class:`autograder.grader.SubmissionResult` and nothing else: no notebook (student, source or
solution) and no grader code is ever read here, so hidden tests cannot leak into feedback (the
nbgrader complaint: hidden test cells shown in generated feedback). As a second guard, any text
between nbgrader's hidden-test or solution markers is removed from what is shown.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from .fileio import write_atomic

_HIDDEN = re.compile(r"#+\s*BEGIN (HIDDEN TESTS|SOLUTION).*?(#+\s*END (HIDDEN TESTS|SOLUTION)|\Z)", re.S | re.I)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem;margin-bottom:.2rem} .sub{color:#555;margin-top:0}
.score{font-size:1.2rem;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem} th,td{border:1px solid #ddd;padding:.35rem .5rem;vertical-align:top;text-align:left}
th{background:#f5f5f5} td.pts{white-space:nowrap;text-align:right;width:6rem}
tr.pass td.pts{color:#1a7f37} tr.fail td.pts{color:#b42318}
.unit{font-weight:600;background:#fafafa} .notes li{margin:.3rem 0} .manual{color:#555;font-style:italic}
"""


def clean(text) -> str:
    """Text safe to show a student: no hidden-test/solution regions, no terminal colour codes."""
    text = _ANSI.sub("", str(text))
    return _HIDDEN.sub("[hidden]", text)


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x else "0"


def render_feedback(result, title: str | None = None) -> str:
    """The HTML page for one :class:`~autograder.grader.SubmissionResult` (or its ``to_dict()``)."""
    if isinstance(result, dict):
        from .grader import SubmissionResult

        result = SubmissionResult.from_dict(result)
    e = lambda s: html.escape(clean(s))  # noqa: E731
    title = title or f"Feedback: {result.pset}"
    rows = []
    for unit in result.units:
        if unit.manual:
            rows.append(f'<tr class="unit"><td>{e(unit.title)}</td><td class="pts">– / {_fmt(unit.max_points)}</td>'
                        f'<td class="manual">graded by hand</td></tr>')
            continue
        rows.append(f'<tr class="unit"><td>{e(unit.title)}</td><td class="pts">{_fmt(unit.points)} / '
                    f'{_fmt(unit.max_points)}</td><td></td></tr>')
        for check in unit.checks:
            cls = "pass" if check.passed else "fail"
            msg = "passed" if check.passed else check.message
            rows.append(f'<tr class="{cls}"><td>&nbsp;&nbsp;{e(check.name)}</td><td class="pts">{_fmt(check.points)} / '
                        f'{_fmt(check.max_points)}</td><td>{e(msg)}</td></tr>')
    notes = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    manual_max = sum(u.max_points for u in result.units if u.manual)
    manual = f" (plus {_fmt(manual_max)} point(s) graded by hand)" if manual_max else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}: {e(result.student)}</title><style>{_CSS}</style></head>
<body>
<h1>{e(title)}</h1>
<p class="sub">Student: <b>{e(result.student)}</b> &middot; notebook: {e(result.notebook)}</p>
<p class="score">Autograded score: {_fmt(result.score)} / {_fmt(result.max_score)}{manual}</p>
<table><thead><tr><th>Check</th><th>Points</th><th>Message</th></tr></thead><tbody>
{''.join(rows)}
</tbody></table>
{'<h2>Notes</h2><ul class="notes">' + notes + '</ul>' if notes else ''}
</body></html>
"""


def write_feedback(result, path) -> Path:
    """Write :func:`render_feedback` to ``path`` atomically."""

    return write_atomic(path, render_feedback(result))
