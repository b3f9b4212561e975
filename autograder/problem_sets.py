"""Registry of problem sets, by assignment id."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from .core import ProblemSet

# The course repository the commands work on: the checkout this package sits in (an editable install), until
# the command line sets it to the repository of the current folder or --repo (see find_repo, autograder.cli).
REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_REPO = "COURSE_KIT_REPO"


def repo_root(root=None) -> Path:
    """``root``, or the course repository the command works on (:data:`REPO_ROOT`, read when called: the
    current folder's or ``--repo``, set by :mod:`autograder.cli`; a default bound at import would keep the
    folder the kit was installed from)."""
    return Path(root) if root is not None else REPO_ROOT


class RepoNotFound(RuntimeError):
    """No course repository where a command needs one."""


def is_course_repo(folder: Path) -> bool:
    return (Path(folder) / "nbgrader_config.py").is_file() and (Path(folder) / "source").is_dir()


def find_repo(explicit=None, start=None) -> Path:
    """The course repository: ``explicit`` (--repo), $COURSE_KIT_REPO, or the current folder or one above it."""
    given = explicit or os.environ.get(ENV_REPO)
    if given:
        folder = Path(given).expanduser().resolve()
        if not is_course_repo(folder):
            raise RepoNotFound(f"{folder} is not a course repository (it needs nbgrader_config.py and source/)")
        return folder
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if is_course_repo(folder):
            return folder
    raise RepoNotFound(f"no course repository in {here} or above it (a folder with nbgrader_config.py and source/): "
                       f"run the command inside your course repository, or pass --repo DIR")
PROBLEM_SETS = ("autoencoder_probing", "simple_clip", "contrastive_shapes", "vae_denoising", "simclr")
# Extras of the course wheel (pyproject's [project.optional-dependencies]) each notebook needs beyond the wheel's
# own requirements: its setup cell installs `course-utils[<extras>]`, and the student wheel declares them.
WHEEL_EXTRAS = {"simple_clip": ("clip",), "contrastive_shapes": ("contrastive",), "vae_denoising": ("vae",),
               "simclr": ("simclr",)}


def wheel_extras(pset_id: str) -> tuple:
    """The course wheel's extras the problem set's notebook needs (``()`` for none)."""
    if pset_id not in PROBLEM_SETS:
        raise KeyError(f"unknown problem set {pset_id!r}; known: {', '.join(PROBLEM_SETS)}")
    return tuple(WHEEL_EXTRAS.get(pset_id, ()))


def get_problem_set(pset_id: str) -> ProblemSet:
    """The :class:`ProblemSet` of an assignment id (its module is ``autograder.<id>``)."""
    if pset_id not in PROBLEM_SETS:
        raise KeyError(f"unknown problem set {pset_id!r}; known: {', '.join(PROBLEM_SETS)}")
    return importlib.import_module(f"autograder.{pset_id}").PROBLEM_SET


def source_notebook(pset_id: str) -> Path:
    ps = get_problem_set(pset_id)
    return REPO_ROOT / "source" / pset_id / ps.notebook
