"""Hidden tests as nbgrader reads them: a unit's points as the cell's value, no checksum warnings, clean feedback.

No kernel is started here; tests/test_nbgrader_pipeline.py runs nbgrader itself (slow).
"""
import copy
import io
import logging
import warnings
from contextlib import redirect_stderr, redirect_stdout

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output
from torch import nn

import autograder.autoencoder_probing as ap
from autograder.core import run_unit
from autograder.problem_sets import REPO_ROOT
from course_utils.checks import autoencoder_probing as checks

PSET = "autoencoder_probing"
NB = "autoencoder_probing.ipynb"


class ReluDecoder(ap.Decoder):
    """The `wrong_decoder` sample: ReLU instead of Sigmoid at the end, and noisy on stderr."""

    def __init__(self):
        super().__init__()
        self.net[-1] = nn.ReLU()

    def forward(self, z):
        import sys

        warnings.warn("a student's warning")
        print("a student's message on stderr", file=sys.stderr)
        return super().forward(z)


def _call(fn, *args):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        value = fn(*args)
    return value, out.getvalue(), err.getvalue()


def test_hidden_test_returns_the_units_points_as_a_plain_float():
    value, out, err = _call(ap.test_encoder, ap.Encoder)
    assert type(value) is float and value == 1.0
    assert "Encoder: all 5 checks passed (1 pt)" in out and err == ""


def test_partial_credit_is_returned_not_raised_with_each_failed_check_named():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, out, err = _call(ap.test_decoder, ReluDecoder)
        assert caught == [], "a warning would reach stderr in a kernel"
        expected = sum(r.points for r in run_unit(ap.PROBLEM_SET.unit("test_decoder"), {"Decoder": ReluDecoder},
                                                  seed=20261123))
    assert type(value) is float and 0 < value < 1 and value == pytest.approx(expected)
    assert err == "", "nbgrader gives 0 to a graded cell with anything on stderr"
    assert "Decoder: 0.25 of 1 pt; 3 of 5 hidden checks failed:" in out
    assert "- Decoder output in (0, 1) (0 of 0.125 pt): expected pixel values strictly between 0 and 1" in out
    assert "Traceback" not in out


def test_a_unit_that_raises_scores_zero_with_a_message_and_no_instructor_path():
    def train_ae(model, loader, epochs):
        raise RuntimeError("shapes do not match")

    value, out, err = _call(ap.test_train_ae, train_ae)
    assert value == 0.0 and err == ""
    assert "train_ae raised an error when the grader ran it: RuntimeError: shapes do not match" in out
    for leak in ("Traceback", str(REPO_ROOT), "autograder/", "File \""):
        assert leak not in out


@pytest.mark.filterwarnings("ignore:a student's warning")
def test_visible_checks_report_instead_of_stopping_the_cell_until_the_hidden_test_ends_it():
    with pytest.raises(checks.CheckFailed):  # a student's cell: the visible check stops it
        _call(checks.check_decoder, ReluDecoder)
    ap.begin_test_cell()  # the top of the hidden tests in the source's test cell
    value, out, err = _call(checks.check_decoder, ReluDecoder)
    assert value is None and err == ""
    assert "Visible check failed: expected all outputs > 0" in out
    _call(ap.test_decoder, ReluDecoder)  # the hidden test at the end of the cell turns reporting off
    with pytest.raises(checks.CheckFailed):
        _call(checks.check_decoder, ReluDecoder)


def test_source_test_cells_begin_reporting_and_end_with_the_hidden_test():
    for pset in ("autoencoder_probing", "simple_clip"):
        nb = nbformat.read(str(REPO_ROOT / "source" / pset / f"{pset}.ipynb"), 4)
        cells = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
        assert cells
        for c in cells:
            lines = c.source.strip().splitlines()
            gid = c.metadata.nbgrader.grade_id
            assert lines[-1] == "### END HIDDEN TESTS" and lines[-2].startswith(f"_ag.{gid}("), (gid, lines)
            assert lines.index("_ag.begin_test_cell()  # the hidden test at the end gives the points: visible "
                               "checks only report") < next(i for i, line in enumerate(lines) if "checks" in line
                                                            and not line.startswith(("#", "_ag")))


def test_nbgrader_reads_the_value_as_partial_credit_and_validate_fails_partial_cells():
    from nbgrader.utils import determine_grade
    from nbgrader.validator import Validator

    def cell(value, *extra):
        c = new_code_cell("...", outputs=[*extra, new_output("execute_result", {"text/plain": value}, execution_count=1)])
        c.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": f"t{value}",
                                  "points": 1, "schema_version": 3}
        return c

    full, half = cell("1.0"), cell("0.5", new_output("stream", name="stdout", text="- a check failed\n"))
    assert determine_grade(full) == (1.0, 1.0) and determine_grade(half) == (0.5, 1.0)
    nb = new_notebook(cells=[full, half])
    assert [c.metadata.nbgrader.grade_id for c in Validator()._get_failed_cells(nb)] == ["t0.5"]
    assert [c.metadata.nbgrader.grade_id for c in Validator()._get_passed_cells(nb)] == ["t1.0"]
    noisy = cell("1.0")
    noisy.outputs.insert(0, new_output("stream", name="stderr", text="UserWarning\n"))
    assert determine_grade(noisy) == (0, 1.0), "why nothing may reach stderr in a test cell"


# ---- checksums: OverwriteCells vs RestoreHiddenTests ------------------------------------------------

@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The release and a gradebook recorded as `nbgrader generate_assignment` does."""
    from autograder.release import _generate

    tmp = tmp_path_factory.mktemp("gradebook")
    url = f"sqlite:///{tmp / 'gradebook.db'}"
    _generate(PSET, REPO_ROOT, tmp / "release", tmp / "solution", gradebook=url)
    return nbformat.read(str(tmp / "release" / PSET / NB), 4), url


def _sanitize(pp_class, nb, url):
    pp = pp_class()
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    pp.log.addHandler(handler)
    try:
        out, _ = pp.preprocess(copy.deepcopy(nb), {"nbgrader": {"notebook": PSET, "assignment": PSET, "db_url": url}})
    finally:
        pp.log.removeHandler(handler)
    return out, [r.getMessage() for r in records]


def _cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def test_stock_overwrite_cells_reports_every_test_cell_with_hidden_tests(recorded):
    from nbgrader.preprocessors import OverwriteCells

    release, url = recorded
    _out, warned = _sanitize(OverwriteCells, release, url)
    changed = sorted(m.split("cell ")[1].split(" ")[0] for m in warned if "'checksum'" in m)
    assert changed == ["test_decoder", "test_encoder", "test_train_ae", "test_train_classifier"]


def test_restore_hidden_tests_is_silent_for_untouched_cells_and_puts_the_hidden_tests_back(recorded):
    from autograder.nbgrader_ext import RestoreHiddenTests

    release, url = recorded
    student = copy.deepcopy(release)
    _cell(student, "encoder").source = "class Encoder: pass  # a student's answer"
    out, warned = _sanitize(RestoreHiddenTests, student, url)
    assert warned == []
    assert "_ag.test_encoder(Encoder)" in _cell(out, "test_encoder").source
    assert "_ag.begin_test_cell()" in _cell(out, "test_encoder").source
    assert _cell(out, "encoder").source == "class Encoder: pass  # a student's answer"


def test_restore_hidden_tests_still_reports_a_student_who_edited_a_locked_cell(recorded):
    from autograder.nbgrader_ext import RestoreHiddenTests

    release, url = recorded
    student = copy.deepcopy(release)
    _cell(student, "test_decoder").source = "# Visible checks for Decoder\n1.0  # full marks, please"
    out, warned = _sanitize(RestoreHiddenTests, student, url)
    assert len(warned) == 1 and "'checksum' for cell test_decoder has changed" in warned[0]
    assert "_ag.test_decoder(Decoder)" in _cell(out, "test_decoder").source
    assert "full marks, please" not in _cell(out, "test_decoder").source


# ---- feedback -------------------------------------------------------------------------------------

def test_nbgrader_config_uses_the_kits_preprocessors():
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.nbgrader_ext import CleanFeedback, RestoreHiddenTests

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(REPO_ROOT)).load_config()
    names = [p.__name__ for p in cfg.GenerateFeedback.preprocessors]
    assert names.index("FeedbackClearHiddenTests") < names.index("CleanFeedback") and names[0] == "GetGrades"
    assert CleanFeedback in cfg.GenerateFeedback.preprocessors
    sanitize = cfg.Autograde.sanitize_preprocessors
    assert RestoreHiddenTests in sanitize and "OverwriteCells" not in [p.__name__ for p in sanitize]


def test_clean_feedback_keeps_one_line_per_error_and_no_instructor_path():
    from autograder.nbgrader_ext import CleanFeedback

    where = str(REPO_ROOT / "autograder" / "core.py")
    c = new_code_cell("checks.check_decoder(Decoder)", outputs=[
        new_output("stream", name="stdout", text=f"loading {REPO_ROOT}/course/data\n"),
        new_output("error", ename="CheckFailed", evalue="expected all outputs > 0, obtained minimum 0.",
                   traceback=["\x1b[0;31m---------\x1b[0m", f"File {where}:120, in run_unit", "\x1b[0;31mCheckFailed\x1b[0m"])])
    pp = CleanFeedback(course_root=str(REPO_ROOT))
    nb, _ = pp.preprocess(new_notebook(cells=[c]), {})
    err = nb.cells[0].outputs[1]
    assert err.traceback == ["CheckFailed: expected all outputs > 0, obtained minimum 0."]
    assert nb.cells[0].outputs[0].text == "loading course/data\n"
