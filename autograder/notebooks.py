"""Reading submitted notebooks, whatever state they arrive in.

A submission may be invalid JSON, an older or Colab-flavoured notebook format (cell ids in
``metadata.id``, ``nbformat_minor`` 0, ``executionInfo``), have graded cells deleted, duplicated,
turned into Markdown or re-ordered. Nothing here modifies the student's file: the grader works on
a copy and reports what it found in words the student can act on.
"""
from __future__ import annotations

import json
import re
from pathlib import Path


class Node(dict):
    """A dict with attribute access, like ``nbformat.NotebookNode`` (nbformat itself is slow to import
    here, because of jsonschema's optional format checkers, and grading does not need it)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __deepcopy__(self, memo):
        return _node(json.loads(json.dumps(self)))


def _node(value):
    if isinstance(value, dict):
        return Node({k: _node(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_node(v) for v in value]
    return value


class SubmissionError(Exception):
    """The submission cannot be executed at all (the message says why, for the student)."""


def load_notebook(path) -> Node:
    """Read a notebook leniently; raise :class:`SubmissionError` with a clear message if impossible."""
    try:
        return _load_notebook(path)
    except RecursionError:  # JSON nested thousands deep: no notebook looks like this
        raise SubmissionError(f"{Path(path).name} is not a notebook the grader can read: its JSON is nested far too "
                              f"deeply. Re-download it from Colab/Jupyter with File > Download > .ipynb and submit "
                              f"again.") from None


def _load_notebook(path) -> Node:
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"no notebook was found at {path.name}.")
    raw = path.read_bytes()
    if not raw.strip():
        raise SubmissionError(f"{path.name} is an empty file, not a notebook.")
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        raise SubmissionError(
            f"{path.name} is not a valid notebook: its JSON is broken at line {exc.lineno}, column {exc.colno} "
            f"({exc.msg}). Re-download it from Colab/Jupyter with File > Download > .ipynb and submit again."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells", []), list):
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook (no list of cells).")
    data.setdefault("metadata", {})
    data.setdefault("nbformat", 4)
    data.setdefault("nbformat_minor", 0)
    data.setdefault("cells", [])
    for cell in data["cells"]:
        if not isinstance(cell, dict):
            continue
        cell.setdefault("metadata", {})
        cell.setdefault("source", "")
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(str(s) for s in cell["source"])
        if cell.get("cell_type") == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    try:
        major = int(data.get("nbformat") or 4)
    except (TypeError, ValueError):
        major = 4
    if major < 4:  # a very old notebook (worksheets): let nbformat convert it
        try:
            import nbformat

            data = json.loads(json.dumps(nbformat.convert(nbformat.from_dict(data), 4)))
        except Exception as exc:
            raise SubmissionError(f"{path.name} is an old notebook format that could not be read ({exc}). "
                                  f"Open it in Jupyter or Colab, save it again and resubmit.") from None
    nb = _node(data)
    cells = []
    for cell in nb.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        if not isinstance(cell.get("source"), str):
            cell["source"] = str(cell.get("source") or "")
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = Node()
        cells.append(cell)
    nb.cells = cells
    return nb


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def is_test_cell(cell) -> bool:
    """An autograded test cell (its checks are the grader's business, not the kernel's)."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def cells_to_run(nb) -> list:
    """(index, source) of every code cell the student's kernel should execute, in notebook order."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or is_test_cell(cell):
            continue
        source = cell.get("source", "")
        if source.strip():
            out.append((i, source))
    return out


_DEF = r"^\s*(?:class|def)\s+{name}\b|^\s*{name}\s*="


def diagnose_missing(nb, name: str) -> str:
    """A hint for a name the grader could not find: where its definition went, if anywhere."""
    pattern = re.compile(_DEF.format(name=re.escape(name)), re.M)
    for i, cell in enumerate(nb.cells, start=1):
        if cell.get("cell_type") != "code" and pattern.search(cell.get("source", "")):
            return f" Cell {i} defines {name} but is a {cell['cell_type'].title()} cell: change it back to Code."
    for i, cell in enumerate(nb.cells, start=1):
        if cell.get("cell_type") == "code" and not is_test_cell(cell) and pattern.search(cell.get("source", "")):
            return ""
    renamed = _similar_definitions(nb, name)
    if renamed:
        return f" No cell defines {name}; did you rename it ({', '.join(renamed)})? Keep the name from the template."
    return f" No cell defines {name}; was its cell deleted? Copy it back from the released notebook."


def _similar_definitions(nb, name: str) -> list:
    found = set()
    stem = name.lower().replace("_", "")
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        for m in re.finditer(r"^\s*(?:class|def)\s+(\w+)", cell.get("source", ""), re.M):
            other = m.group(1)
            if other != name and (stem in other.lower().replace("_", "") or other.lower().replace("_", "") in stem):
                found.add(other)
    return sorted(found)


def graded_cell_report(nb, expected_ids) -> list:
    """Notes about graded cells that were deleted or duplicated (by nbgrader grade_id)."""
    seen, order = {}, []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if gid:
            if gid not in seen:
                order.append(gid)
            seen[gid] = seen.get(gid, 0) + 1
    notes = []
    for gid in expected_ids:
        if gid not in seen:
            notes.append(f"the cell '{gid}' is missing from the notebook (graded by name anyway)")
    for gid in order:
        if seen[gid] > 1:
            notes.append(f"the cell '{gid}' appears {seen[gid]} times (the last definition that ran is graded)")
    return notes
