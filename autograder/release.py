"""Release problem sets with nbgrader, check the committed release for drift, make sample submissions.

``build_release`` runs ``nbgrader generate_assignment`` and ``nbgrader generate_solution`` on
``source/<id>/`` (configuration in ``nbgrader_config.py``: released notebooks to ``assignments/``,
solutions to ``solutions/``). It builds into a temporary folder and replaces ``assignments/<id>`` and
``solutions/<id>`` only once nbgrader has succeeded for every problem set, so a failing build never
destroys the committed files (``nbgrader generate_assignment --force`` deletes the release before it
converts anything). With ``gradebook=True`` (``course-kit release``) the problem set is also recorded
in nbgrader's gradebook, as ``nbgrader generate_assignment`` does, so that ``nbgrader autograde`` restores
the hidden tests of the source that was released. ``check_drift`` rebuilds into a temporary folder and
compares with the committed files, so a source edit that was not released is caught by the tests.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from .notebooks import nbgrader_meta
from .problem_sets import PROBLEM_SETS, get_problem_set, repo_root


class ReleaseError(RuntimeError):
    """nbgrader could not build a release; the message carries the end of its log."""


def _load_nbgrader_config(root: Path, release_dir: Path, solution_dir: Path, gradebook=False):
    """nbgrader's configuration of the course at ``root``; ``gradebook``: record the release in the
    gradebook (``True``: the configured one; a string: that database URL; ``False``: none)."""
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    cfg.CourseDirectory.root = str(root)
    cfg.CourseDirectory.release_directory = str(release_dir)
    cfg.CourseDirectory.solution_directory = str(solution_dir)
    if not gradebook:  # a drift check or a build elsewhere: the gradebook is left alone
        cfg.GenerateAssignment.no_database = True
        cfg.SaveCells.enabled = False
    elif isinstance(gradebook, str):
        cfg.CourseDirectory.db_url = gradebook
    cfg.BaseConverter.force = True
    return cfg


def _generate(pset: str, root: Path, release_dir: Path, solution_dir: Path, gradebook=False) -> None:
    """``nbgrader generate_assignment`` + ``generate_solution`` for one problem set, in this process."""
    import logging

    from nbgrader.converters import GenerateAssignment, GenerateSolution
    from nbgrader.converters.base import BaseConverter
    from nbgrader.coursedir import CourseDirectory

    class _Solution(GenerateSolution):
        def init_assignment(self, assignment_id, student_id):  # no gradebook lookup: releasing needs none
            BaseConverter.init_assignment(self, assignment_id, student_id)

    cfg = _load_nbgrader_config(root, release_dir, solution_dir, gradebook)
    for converter_cls in (GenerateAssignment, _Solution):
        coursedir = CourseDirectory(config=cfg)
        coursedir.assignment_id = pset
        converter = converter_cls(coursedir=coursedir, config=cfg)
        converter.log.setLevel(logging.WARNING)
        try:
            converter.start()
        except Exception as exc:
            raise ReleaseError(f"nbgrader could not convert source/{pset}: {type(exc).__name__}: {exc}") from exc


def available_psets(root: Path | None = None) -> list:
    """Problem sets that have a source notebook in this repository."""
    root = repo_root(root)
    return [p for p in PROBLEM_SETS if (root / "source" / p).is_dir()
            and (root / "source" / p / get_problem_set(p).notebook).is_file()]


def build_release(root: Path | None = None, psets=None, release_dir=None, solution_dir=None,
                  gradebook=False) -> dict:
    """Generate the student and solution notebooks; returns {pset: (release path, solution path)}.

    Everything is built in a temporary folder first; ``<release_dir>/<pset>`` and ``<solution_dir>/<pset>``
    are replaced only when nbgrader has built every problem set, so a failure leaves them as they were.
    ``gradebook``: also record the problem sets in nbgrader's gradebook (``True``: ``nbgrader_config.py``'s
    db_url; a string: that database URL).
    """
    root = repo_root(root)
    psets = list(psets or available_psets(root))
    release_dir = Path(release_dir or root / "assignments").resolve()
    solution_dir = Path(solution_dir or root / "solutions").resolve()
    release_dir.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    with tempfile.TemporaryDirectory(prefix="release_") as tmp:
        tmp_release, tmp_solution = Path(tmp) / "assignments", Path(tmp) / "solutions"
        for pset in psets:
            nb_name = get_problem_set(pset).notebook
            _generate(pset, root, tmp_release, tmp_solution, gradebook)
            for built in (tmp_release / pset / nb_name, tmp_solution / pset / nb_name):
                if not built.is_file():
                    raise ReleaseError(f"nbgrader wrote no notebook for {pset}; check source/{pset}/{nb_name}. "
                                       f"{release_dir.name}/ and {solution_dir.name}/ were left as they were.")
        for pset in psets:  # nbgrader succeeded for every problem set: now replace what was there
            nb_name = get_problem_set(pset).notebook
            for built_dir, final_dir in ((tmp_release, release_dir), (tmp_solution, solution_dir)):
                _replace_dir(built_dir / pset, final_dir / pset)
            out[pset] = (release_dir / pset / nb_name, solution_dir / pset / nb_name)
    return out


def _replace_dir(new: Path, target: Path) -> None:
    """Put folder ``new`` where ``target`` is, keeping ``target`` until ``new`` is in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.new")
    old = target.with_name(f".{target.name}.old")
    for leftover in (staged, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(new, staged)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def _canonical(path: Path) -> str:
    nb = json.loads(Path(path).read_text())
    return json.dumps(nb, sort_keys=True, indent=1)


def check_drift(root: Path | None = None, psets=None) -> list:
    """Differences between the committed ``assignments/`` + ``solutions/`` and a fresh build."""
    root = repo_root(root)
    problems = []
    with tempfile.TemporaryDirectory(prefix="release_") as tmp:
        built = build_release(root, psets, Path(tmp) / "assignments", Path(tmp) / "solutions")
        for pset, (rel, sol) in built.items():
            for kind, fresh, committed in (("assignments", rel, root / "assignments" / pset / rel.name),
                                           ("solutions", sol, root / "solutions" / pset / sol.name)):
                if not committed.is_file():
                    problems.append(f"{kind}/{pset}/{rel.name} is missing; run `course-kit release`.")
                elif _canonical(fresh) != _canonical(committed):
                    problems.append(f"{kind}/{pset}/{rel.name} differs from what source/{pset} generates; "
                                    f"run `course-kit release` and commit the result.")
            extra = sorted(p.name for p in (root / "assignments" / pset).glob("*") if p.name != rel.name) \
                if (root / "assignments" / pset).is_dir() else []
            if extra:
                problems.append(f"assignments/{pset} holds files the source does not release: {extra}")
    return problems


# ---- sample submissions ---------------------------------------------------------------------

_REGION = re.compile(r"[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)[ \t]*### END SOLUTION[^\n]*\n?", re.S)
# nbgrader_config.py's ClearSolutions.code_stub (with or without its message)
_STUB = re.compile(r"[ \t]*# YOUR CODE HERE\n[ \t]*raise NotImplementedError\((?:\"[^\"\n]*\"|'[^'\n]*')?\)\n?")


def solution_regions(source: str) -> list:
    return [m.group(1) for m in _REGION.finditer(source)]


def fill_solutions(release_nb, source_nb):
    """The released notebook with every code stub replaced by the source's solution (a perfect student)."""
    nb = copy.deepcopy(release_nb)
    by_id = {nbgrader_meta(c).get("grade_id"): c for c in source_nb.cells if nbgrader_meta(c).get("solution")}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        src = by_id.get(meta.get("grade_id"))
        if not meta.get("solution") or src is None:
            continue
        if cell.cell_type == "code":
            regions = iter(solution_regions(src.source))
            cell.source = _STUB.sub(lambda _m: _ensure_newline(next(regions, "")), cell.source)
        else:
            cell.source = "".join(solution_regions(src.source + "\n")) or cell.source
    return nb


def _ensure_newline(code: str) -> str:
    return code if code.endswith("\n") else code + "\n"


def make_sample_submissions(pset_id: str, out_dir, root: Path | None = None) -> dict:
    """Write the problem set's sample submissions in nbgrader's ``submitted/<student>/<id>/`` layout.

    ``solution``: the release with the solutions filled in (full marks); ``untouched``: the release as
    it is (0); plus the problem set's ``SAMPLE_MUTATIONS`` (partial credit). Returns {student: path}.
    """
    root = repo_root(root)
    pset = get_problem_set(pset_id)
    module = sys.modules[f"autograder.{pset_id}"]
    release_nb = nbformat.read(str(root / "assignments" / pset_id / pset.notebook), 4)
    source_nb = nbformat.read(str(root / "source" / pset_id / pset.notebook), 4)
    solved = fill_solutions(release_nb, source_nb)
    samples = {"solution": solved, "untouched": release_nb}
    for student, (grade_id, old, new) in getattr(module, "SAMPLE_MUTATIONS", {}).items():
        nb = copy.deepcopy(solved)
        cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
        if old not in cell.source:
            raise ValueError(f"sample mutation {student!r}: {old!r} not found in cell {grade_id!r}")
        cell.source = cell.source.replace(old, new, 1)
        samples[student] = nb
    out = {}
    for student, nb in samples.items():
        path = Path(out_dir) / student / pset_id / pset.notebook
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        out[student] = path
    return out
