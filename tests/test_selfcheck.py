"""The self-check runs the saved notebook in a fresh process and reports each graded part; a notebook
re-saved by Colab self-checks and grades exactly like the original."""
import json

import pytest

from autograder.grader import grade_submission
from autograder.release import make_sample_submissions
from course_utils.selfcheck import main, run_selfcheck, selfcheck

from nbhelpers import colab_resave


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return make_sample_submissions("autoencoder_probing", tmp_path_factory.mktemp("samples"))


def _statuses(report):
    return {c.grade_id: c.status for c in report.checks}


def test_selfcheck_reports_each_part_with_its_points(samples, capsys):
    report = run_selfcheck(samples["wrong_decoder"])
    assert _statuses(report) == {"test_encoder": "passed", "test_decoder": "failed", "test_train_ae": "passed",
                                 "test_train_classifier": "passed", "report": "manual"}
    failed = next(c for c in report.checks if c.status == "failed")
    assert "Sigmoid" in failed.message
    text = report.summary()
    assert "3 of 4 autograded parts" in text and "(3 of 4 points at stake)" in text


def test_colab_resaved_notebook_selfchecks_and_grades_like_the_original(samples, tmp_path):
    original = samples["wrong_decoder"]
    resaved = tmp_path / "autoencoder_probing.ipynb"
    resaved.write_text(json.dumps(colab_resave(json.loads(original.read_text()))))
    assert _statuses(run_selfcheck(resaved)) == _statuses(run_selfcheck(original))
    a = grade_submission("autoencoder_probing", original, "a").to_dict()
    b = grade_submission("autoencoder_probing", resaved, "b").to_dict()
    # the same checks pass and fail (the messages' numbers differ: hidden inputs are drawn per submission)
    verdicts = lambda r: [[(c["name"], c["passed"], c["points"]) for c in u["checks"]] for u in r["units"]]  # noqa: E731
    assert verdicts(a) == verdicts(b)
    assert a["score"] == b["score"] == 3.25


def test_selfcheck_command_and_in_notebook_call(samples, capsys, monkeypatch):
    assert main([str(samples["untouched"])]) == 1
    out = capsys.readouterr().out
    assert "0 of 4 autograded parts" in out and "NotImplementedError" in out
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # inside a grading kernel it never recurses
    assert selfcheck(samples["untouched"]) is None


def test_selfcheck_by_assignment_id_finds_the_notebook_or_says_how(samples, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert selfcheck("autoencoder_probing") is None
    assert "selfcheck('autoencoder_probing.ipynb')" in capsys.readouterr().out
