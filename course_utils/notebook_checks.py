"""Reading a notebook before it is handed in, and what the grader would run into: not a notebook, damaged,
graded cells deleted or stripped of their metadata, duplicated cell ids, answers still to write
(used by :func:`course_utils.submit.submit`)."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

UNANSWERED = re.compile(r"raise\s+NotImplementedError\s*\(")
# The placeholder of a written answer in a released notebook (nbgrader_config.py: ClearSolutions.text_stub).
ANSWER_STUB = "YOUR ANSWER HERE"


class SubmissionError(ValueError):
    """The notebook cannot be packaged (not a notebook, damaged, ...)."""


@dataclass
class Issue:
    """Something the student should look at before uploading."""

    level: str  # "error": the grader will lose points here; "warning": worth a look; "info"
    message: str

    def __str__(self) -> str:
        return f"[{self.level}] {self.message}"


# --------------------------------------------------------------------------------------------
# Reading and checking
# --------------------------------------------------------------------------------------------
def read_notebook(path: Union[str, Path]) -> dict:
    """Read a notebook as plain JSON and check it against the notebook format (nbformat).

    Raises :class:`SubmissionError` with what is wrong and what to do."""
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path} does not exist; pass the path of your notebook (.ipynb).")
    redownload = ("Open the notebook again and save a fresh copy (Colab: File -> Download -> Download .ipynb; "
                  "Jupyter: File -> Save and Checkpoint), then run this again.")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SubmissionError(f"{path} is not a text file, so not a notebook. {redownload}") from None
    except json.JSONDecodeError as err:
        raise SubmissionError(
            f"{path} is not a valid notebook: its JSON breaks at line {err.lineno}, column {err.colno} "
            f"({err.msg}); the file was probably cut short or edited by hand. {redownload}"
        ) from None
    if not isinstance(nb, dict) or "cells" not in nb or "nbformat" not in nb:
        raise SubmissionError(f"{path} is JSON but not a Jupyter notebook (no 'cells' / 'nbformat'). "
                              "Did you pick the right file? It should end in .ipynb.")
    if nb.get("nbformat") != 4:
        raise SubmissionError(f"{path} uses notebook format {nb.get('nbformat')}; format 4 is expected. {redownload}")
    validate(nb, path)
    return nb


def validate(nb: dict, path: Union[str, Path] = "notebook") -> None:
    """Validate against the notebook schema; raise :class:`SubmissionError` naming the bad cell."""
    import nbformat

    try:
        nbformat.validate(nbformat.from_dict(copy.deepcopy(nb)))
    except nbformat.ValidationError as err:
        where = list(getattr(err, "absolute_path", []) or [])
        cell = f" (cell {where[1] + 1})" if len(where) > 1 and where[0] == "cells" and isinstance(where[1], int) else ""
        message = getattr(err, "message", None) or str(err).splitlines()[0]
        raise SubmissionError(
            f"{path} is not a valid notebook{cell}: {message}. Open it in Jupyter or Colab, save it again "
            "and retry; if this persists, copy your answers into a fresh copy of the released notebook."
        ) from None


def _nbgrader(cell: dict) -> Optional[dict]:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else None


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def check_notebook(nb: Union[dict, str, Path], release_notebook: Union[dict, str, Path, None] = None) -> list:
    """Report what could cost points at grading, without changing anything.

    Compares graded cells (found by their nbgrader metadata) with the released notebook when one is
    given, else with the list of graded cell ids a released notebook carries in its metadata
    (``metadata.course_kit.graded_cells``). Returns a list of :class:`Issue`.
    """
    if not isinstance(nb, dict):
        nb = read_notebook(nb)
    if release_notebook is not None and not isinstance(release_notebook, dict):
        release_notebook = read_notebook(release_notebook)
    issues = []
    cells = nb.get("cells", [])
    ids: dict = {}
    for index, cell in enumerate(cells):
        meta = _nbgrader(cell)
        if meta and meta.get("grade_id"):
            ids.setdefault(meta["grade_id"], []).append(index)
    for grade_id, where in ids.items():
        if len(where) > 1:
            issues.append(Issue("error", f"graded cell `{grade_id}` appears {len(where)} times (cells "
                                         f"{', '.join(str(i + 1) for i in where)}), e.g. after copying a cell: keep one "
                                         "and delete the copies, or the grader cannot tell which one counts."))

    expected: dict = {}  # grade_id -> source in the release (None if unknown)
    if release_notebook is not None:
        for cell in release_notebook.get("cells", []):
            meta = _nbgrader(cell)
            if meta and meta.get("grade_id") and (meta.get("grade") or meta.get("solution") or meta.get("task")):
                expected[meta["grade_id"]] = _source(cell)
    else:
        listed = nb.get("metadata", {}).get("course_kit", {}).get("graded_cells") or []
        expected = {grade_id: None for grade_id in listed if isinstance(grade_id, str)}

    if not ids:
        issues.append(Issue("warning", "no cell carries nbgrader metadata any more (this happens when answers are "
                                       "pasted into a new notebook). The grader finds your functions and classes by "
                                       "name, so keep their names exactly as released; better, submit the released "
                                       "notebook with your answers in it."))
    for grade_id, source in expected.items():
        if grade_id in ids:
            continue
        twin = None
        if source and source.strip():
            twin = next((i for i, c in enumerate(cells) if _nbgrader(c) is None and _source(c).strip() == source.strip()),
                        None)
        if twin is not None:
            issues.append(Issue("warning", f"cell {twin + 1} is the graded cell `{grade_id}` but lost its nbgrader "
                                           "metadata (Colab or a copy-paste can do this); the grader matches it by its "
                                           "content and names, nothing to do unless grading reports it missing."))
        else:
            issues.append(Issue("error", f"graded cell `{grade_id}` is missing: it was deleted or replaced. Copy it back "
                                         "from the released notebook (same place, same content) before submitting."))
    for index, cell in enumerate(cells):
        meta = _nbgrader(cell)
        if cell.get("cell_type") == "code" and meta and meta.get("solution") and UNANSWERED.search(_source(cell)):
            issues.append(Issue("warning", f"cell {index + 1} (`{meta.get('grade_id', '?')}`) still raises "
                                           "NotImplementedError: this answer is not written yet."))
        elif cell.get("cell_type") != "code" and _unanswered_text(cell, meta):
            what = (f"the written answer `{meta.get('grade_id', '?')}`"
                    + (f" ({meta['points']:g} point{'s' if meta['points'] != 1 else ''}, graded by hand)"
                       if isinstance(meta.get("points"), (int, float)) and meta.get("grade") else "")) if meta \
                else "a written answer"
            held = (f"it still holds the placeholder \"{ANSWER_STUB}\"" if ANSWER_STUB in _source(cell)
                    else "it is empty")
            issues.append(Issue("warning", f"cell {index + 1}, {what}, is not answered: {held}. Double-click the "
                                           "cell, write your answer in place of the placeholder, save, and run "
                                           "this again."))
    return issues


def _unanswered_text(cell: dict, meta: Optional[dict]) -> bool:
    """A written-answer cell (nbgrader ``solution``; or metadata lost) that holds only the released placeholder."""
    text = _source(cell)
    if meta and meta.get("solution"):
        return not text.replace(ANSWER_STUB, "").strip()
    return text.strip() == ANSWER_STUB
