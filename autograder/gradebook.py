"""One final grade: ``course-kit grade`` results in nbgrader's gradebook, manual scores read back.

``course-kit grade <pset> <submissions> --gradebook course/gradebook.db`` grades the class, then writes
every student's automatic points into nbgrader's gradebook (:func:`write_results`) through
``nbgrader.api.Gradebook``: one ``auto_score`` per graded test cell (``test_encoder`` ...), the same
points as in the student's feedback. Manually graded cells (the written ``report``) are left for nbgrader's
formgrader; the manual scores given there are read back (:func:`read_manual_scores`) into ``grades.csv``
(column ``report (manual)``, total out of the problem set's 5 points). ``nbgrader export`` then gives the
final grade, automatic and manual points together.

What is created when missing: the assignment, its notebook with its graded cells (recorded from
``source/<pset>/`` by nbgrader itself, as ``nbgrader generate_assignment`` does; or, without a source
notebook, the graded cells alone), each student, each student's submission. What is never touched: a
manual score, a comment, an instructor's override of an automatic score (nbgrader shows
``manual_score`` when set).

Students are identified by the same file-system-safe id as ``results/<id>.json`` and
``feedback/<id>.html`` (for nbgrader's ``submitted/<student>/`` layout, the folder name).
"""
from __future__ import annotations

import datetime
import tempfile
import warnings
from pathlib import Path

from . import problem_sets
from .problem_sets import get_problem_set


class GradebookError(RuntimeError):
    """The gradebook cannot take these results; the message says why and what to do."""


def db_url(gradebook) -> str:
    """A database URL from a path (``course/gradebook.db``) or a URL (``sqlite:///...``)."""
    text = str(gradebook)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        raise GradebookError(f"{path} is a folder; give the gradebook's file, e.g. {path / 'gradebook.db'}")
    if not path.parent.is_dir():
        raise GradebookError(f"cannot create the gradebook {path}: its folder {path.parent} does not exist")
    return f"sqlite:///{path}"


def _root(root) -> Path:
    """The course repository: ``root``, or the one the command works on (read when called: see autograder.cli)."""
    return Path(root) if root is not None else problem_sets.REPO_ROOT


def course_id(root: Path | None = None) -> str:
    """nbgrader's course id from ``nbgrader_config.py`` (``default_course`` without one)."""
    root = _root(root)
    try:
        from traitlets.config.loader import PyFileConfigLoader

        cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        return str(cfg.CourseDirectory.get("course_id") or "default_course")
    except Exception:
        return "default_course"


def _open(url: str, root: Path):
    from nbgrader.api import Gradebook

    try:
        return Gradebook(url, course_id(root))
    except Exception as exc:
        raise GradebookError(f"cannot open the gradebook {url}: {type(exc).__name__}: {exc}") from exc


def notebook_id(pset_id: str) -> str:
    return Path(get_problem_set(pset_id).notebook).stem


def _record_from_source(pset_id: str, url: str, root: Path) -> bool:
    """Record the problem set in the gradebook the way ``nbgrader generate_assignment`` does; False: no source."""
    from .release import ReleaseError, _generate

    pset = get_problem_set(pset_id)
    if not (Path(root) / "source" / pset_id / pset.notebook).is_file():
        return False
    with tempfile.TemporaryDirectory(prefix="gradebook_release_") as tmp:
        try:
            _generate(pset_id, Path(root), Path(tmp) / "release", Path(tmp) / "solution", gradebook=url)
        except ReleaseError as exc:
            raise GradebookError(f"could not record {pset_id} in the gradebook: {exc}") from exc
    return True


def ensure_assignment(pset_id: str, url: str, root: Path | None = None) -> None:
    """Make sure the gradebook has the assignment, its notebook and every graded cell of the problem set."""
    from nbgrader.api import MissingEntry

    root = _root(root)
    pset = get_problem_set(pset_id)
    nb_id = notebook_id(pset_id)
    with _open(url, root) as gb:
        try:
            notebook = gb.find_notebook(nb_id, pset_id)
            have = {c.name: c.max_score for c in notebook.grade_cells}
        except MissingEntry:
            have = None
    if have is None:
        if not _record_from_source(pset_id, url, root):
            _record_minimal(pset_id, url, root)
        with _open(url, root) as gb:
            have = {c.name: c.max_score for c in gb.find_notebook(nb_id, pset_id).grade_cells}
    want = {u.grade_id: u.points for u in pset.units} | {m.grade_id: m.points for m in pset.manual}
    wrong = {g: (have.get(g), pts) for g, pts in want.items() if have.get(g) is None or float(have[g]) != float(pts)}
    if wrong:
        details = ", ".join(f"{g} (gradebook: {'missing' if h is None else f'{h:g} pt'}, problem set: {p:g} pt)"
                            for g, (h, p) in sorted(wrong.items()))
        raise GradebookError(f"the gradebook's notebook {pset_id}/{nb_id} does not match the problem set: {details}. "
                             f"Record the current release with `course-kit release` (or `nbgrader generate_assignment "
                             f"{pset_id}`) first.")


def _record_minimal(pset_id: str, url: str, root: Path) -> None:
    """The assignment, notebook and graded cells alone (no source notebook to record them from)."""
    pset = get_problem_set(pset_id)
    nb_id = notebook_id(pset_id)
    with _open(url, root) as gb:
        gb.update_or_create_assignment(pset_id)
        gb.add_notebook(nb_id, pset_id)
        for u in pset.units:
            gb.add_grade_cell(u.grade_id, nb_id, pset_id, max_score=float(u.points), cell_type="code")
        for m in pset.manual:
            gb.add_grade_cell(m.grade_id, nb_id, pset_id, max_score=float(m.points), cell_type="markdown")
            gb.add_solution_cell(m.grade_id, nb_id, pset_id)


def write_results(pset_id: str, results: dict, gradebook, root: Path | None = None) -> int:
    """Write the automatic points of ``results`` ({student id: SubmissionResult}) into the gradebook.

    Returns how many students were written. Manual cells are left for the formgrader (marked as
    needing a manual grade while they have none). A submission the grader failed on (status
    ``grader error``) has no grade: it is not written, so the gradebook never shows it as a 0.
    """
    from nbgrader.api import MissingEntry

    root = _root(root)
    pset = get_problem_set(pset_id)
    url = db_url(gradebook)
    ensure_assignment(pset_id, url, root)
    nb_id = notebook_id(pset_id)
    manual_ids = {m.grade_id for m in pset.manual}
    written = 0
    with _open(url, root) as gb:
        for student_id, result in sorted(results.items()):
            if result.pset != pset_id:
                raise GradebookError(f"the result of {student_id} is for {result.pset}, not {pset_id}")
            if getattr(result, "grader_error", False):
                continue
            gb.update_or_create_student(student_id)
            try:
                gb.find_submission(pset_id, student_id)
            except MissingEntry:
                with warnings.catch_warnings():  # SQLAlchemy's autoflush notes from inside nbgrader: noise here
                    warnings.simplefilter("ignore")
                    gb.add_submission(pset_id, student_id,
                                      timestamp=datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None))
            points = {u.grade_id: u.points for u in result.units if not u.manual}
            for unit in pset.units:
                grade = gb.find_grade(unit.grade_id, nb_id, pset_id, student_id)
                grade.auto_score = float(points.get(unit.grade_id, 0.0))
                grade.needs_manual_grade = False
            for grade_id in manual_ids:
                grade = gb.find_grade(grade_id, nb_id, pset_id, student_id)
                if grade.manual_score is None:
                    grade.auto_score = None
                    grade.needs_manual_grade = True
            gb.db.commit()
            written += 1
    return written


def read_manual_scores(pset_id: str, gradebook, root: Path | None = None) -> dict:
    """{student id: {grade_id: points}} of the manual cells graded so far (ungraded cells are left out)."""
    from nbgrader.api import MissingEntry

    root = _root(root)
    pset = get_problem_set(pset_id)
    url = db_url(gradebook)
    nb_id = notebook_id(pset_id)
    out: dict = {}
    with _open(url, root) as gb:
        try:
            submissions = gb.assignment_submissions(pset_id)
        except MissingEntry:
            return {}
        for sub in submissions:
            for m in pset.manual:
                try:
                    grade = gb.find_grade(m.grade_id, nb_id, pset_id, sub.student_id)
                except MissingEntry:
                    continue
                if grade.manual_score is not None:
                    out.setdefault(sub.student_id, {})[m.grade_id] = float(grade.manual_score)
    return out


def sync_gradebook(pset_id: str, results: dict, gradebook, grades_csv=None, root: Path | None = None) -> dict:
    """Write ``results`` into the gradebook, read the manual scores back, rewrite ``grades_csv`` with them.

    Returns the manual scores ({student id: {grade_id: points}}).
    """
    from .batch import export_csv

    write_results(pset_id, results, gradebook, root)
    manual = read_manual_scores(pset_id, gradebook, root)
    if grades_csv is not None:
        export_csv(pset_id, results, grades_csv, manual=manual)
    return manual

