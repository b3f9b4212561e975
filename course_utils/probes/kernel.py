"""The IPython kernel that runs a submission while it is graded.

It is an ordinary IPython kernel started with the instructor's ``autograder`` package out of
reach: the package is removed from the import machinery before any student code runs, so a
notebook cannot import the reference solutions or the judges. (The verdicts never depend on this:
judges run in the grader's own process; see docs/ARCHITECTURE.md.)

Started by the grader as ``python -m course_utils.probes.kernel -f <connection file>``.
"""
from __future__ import annotations

import importlib.abc
import os
import sys

HIDDEN_PACKAGES = ("autograder",)


class _Blocked(importlib.abc.MetaPathFinder):
    """Refuses to import the instructor's packages."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in HIDDEN_PACKAGES:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not available while grading)", name=fullname)
        return None


def hide_instructor_packages() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in HIDDEN_PACKAGES:
            del sys.modules[name]
        mapping = getattr(sys.modules.get(name), "MAPPING", None) if name.startswith("__editable__") else None
        if isinstance(mapping, dict):  # setuptools' editable-install finder
            for pkg in HIDDEN_PACKAGES:
                mapping.pop(pkg, None)
    # Remove path entries from which the packages could be found (a source checkout on sys.path).
    sys.path[:] = [p for p in sys.path
                   if not any(os.path.isfile(os.path.join(p or os.getcwd(), pkg, "__init__.py")) for pkg in HIDDEN_PACKAGES)]
    sys.meta_path.insert(0, _Blocked())


def main() -> None:
    hide_instructor_packages()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
