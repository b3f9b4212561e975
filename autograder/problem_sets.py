"""Registry of problem sets, by assignment id."""
from __future__ import annotations

import importlib
from pathlib import Path

from .core import ProblemSet

REPO_ROOT = Path(__file__).resolve().parent.parent
PROBLEM_SETS = ("autoencoder_probing", "simple_clip")


def get_problem_set(pset_id: str) -> ProblemSet:
    """The :class:`ProblemSet` of an assignment id (its module is ``autograder.<id>``)."""
    if pset_id not in PROBLEM_SETS:
        raise KeyError(f"unknown problem set {pset_id!r}; known: {', '.join(PROBLEM_SETS)}")
    return importlib.import_module(f"autograder.{pset_id}").PROBLEM_SET


def source_notebook(pset_id: str) -> Path:
    ps = get_problem_set(pset_id)
    return REPO_ROOT / "source" / pset_id / ps.notebook
