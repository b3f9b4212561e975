"""Judges of the problem sets whose ``autograder/<id>.py`` would pass ~400 lines: ``judges/<id>.py`` holds the
reference implementation, the check names and the judges (everything that decides a grade), and
``autograder/<id>.py`` imports them (docs/ARCHITECTURE.md, "Adding a problem set"). Helpers shared by every
problem set's judges and grader inputs are in ``judges/common.py``."""
