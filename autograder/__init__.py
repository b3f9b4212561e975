"""autograder: the instructor's side of the course kit (never shipped to students).

Reference implementations of every graded unit, the trusted judges of the hidden tests, and the
commands that release problem sets, grade a class, export grades and build the Gradescope bundle.
"""
from .problem_sets import PROBLEM_SETS, get_problem_set

__all__ = ["PROBLEM_SETS", "get_problem_set"]
