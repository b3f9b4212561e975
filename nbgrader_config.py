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
# course/ is git-ignored, so a fresh clone has none: create it, or sqlite cannot open the gradebook
# ("unable to open database file") once `nbgrader generate_assignment --force` has already cleared the release.
os.makedirs(os.path.join(ROOT, "course"), exist_ok=True)
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(ROOT, "course", "gradebook.db")
c.CourseDirectory.course_id = "representation-learning"
# Only notebooks are released: nothing else in source/<id>/ may reach students.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]
# The stub says what to do when it runs ("NotImplementedError: replace this line with your code"), not an empty
# "NotImplementedError:". autograder/release.py's _STUB recognises it (sample submissions); change both together,
# then run `python -m autograder.cli release` to regenerate assignments/.
c.ClearSolutions.code_stub = {"python": '# YOUR CODE HERE\nraise NotImplementedError("replace this line with your code")'}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Grading runs in the kit's own grader (autograder/grader.py); when nbgrader itself executes a
# notebook (validate, autograde), give training cells room and keep going after an error.
c.ExecutePreprocessor.timeout = 300
c.Execute.interrupt_on_timeout = True
# Solutions are written without executing them, so that the committed solutions/ stays
# reproducible; the main job (`course-kit demo`) executes them separately.
from nbgrader.preprocessors import ClearMarkScheme, ClearOutput, IncludeHeaderFooter, LockCells  # noqa: E402

c.GenerateSolution.preprocessors = [IncludeHeaderFooter, LockCells, ClearOutput, ClearMarkScheme]

# nbgrader itself, with the kit's preprocessors (autograder/nbgrader_ext.py explains each):
# - autograde: a test cell whose hidden tests were removed at release is not "changed" (no checksum
#   warning for cells the student could not edit; a student's edit of a locked cell is still reported);
# - feedback: no hidden-test source, no tracebacks, no paths into the instructor's files;
# - generate_assignment / generate_solution --force: a failed conversion leaves the committed folders as they were.
import sys  # noqa: E402

try:
    import autograder.nbgrader_ext  # noqa: F401
except ImportError:  # nbgrader run from a copy of the course that is not installed
    sys.path.insert(0, ROOT)
from autograder.nbgrader_ext import (CleanFeedback, FeedbackClearHiddenTests, RestoreHiddenTests,  # noqa: E402
                                     keep_release_on_failure)

keep_release_on_failure()  # generate_assignment --force: a failed conversion puts the committed release back
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import CheckCellMetadata, DeduplicateIds, GetGrades, OverwriteKernelspec  # noqa: E402

c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, RestoreHiddenTests,
                                      CheckCellMetadata]
c.GenerateFeedback.preprocessors = [GetGrades, FeedbackClearHiddenTests, CleanFeedback, CSSHTMLHeaderPreprocessor]
c.CleanFeedback.course_root = ROOT
