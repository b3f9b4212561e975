"""nbgrader configuration of the course kit.

Released (student) notebooks go to ``assignments/`` and solution notebooks to ``solutions/``, both
generated from ``source/<problem set>/`` and committed (a test fails when they drift). Grading data
(submissions, autograded copies, feedback, the gradebook) lives under ``course/``, which git ignores.
"""
import os

c = get_config()  # noqa: F821 - provided by nbgrader

ROOT = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = ROOT
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.solution_directory = "solutions"
c.CourseDirectory.submitted_directory = os.path.join("course", "submitted")
c.CourseDirectory.autograded_directory = os.path.join("course", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("course", "feedback")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(ROOT, "course", "gradebook.db")
c.CourseDirectory.course_id = "representation-learning"
# Only notebooks are released: nothing else in source/<id>/ may reach students.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Grading runs in the kit's own grader (autograder/grader.py); when nbgrader itself executes a
# notebook (validate, autograde), give training cells room and keep going after an error.
c.ExecutePreprocessor.timeout = 300
c.Execute.interrupt_on_timeout = True
# Solutions are written without executing them, so that the committed solutions/ stays
# reproducible; the main job (`course-kit demo`) executes them separately.
from nbgrader.preprocessors import ClearMarkScheme, ClearOutput, IncludeHeaderFooter, LockCells  # noqa: E402

c.GenerateSolution.preprocessors = [IncludeHeaderFooter, LockCells, ClearOutput, ClearMarkScheme]
