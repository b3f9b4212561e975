"""submit() (issue 13): an unanswered written answer is flagged by name; the returned value shows as one
short line when it ends the notebook's last cell."""
import json
from pathlib import Path

import pytest

from course_utils.submit import check_notebook, prepare_submission, submit

ROOT = Path(__file__).resolve().parents[1]
RELEASED = ROOT / "assignments" / "autoencoder_probing" / "autoencoder_probing.ipynb"


def notebook(report_text):
    meta = {"grade": True, "grade_id": "report", "locked": False, "points": 1, "schema_version": 3,
            "solution": True, "task": False}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": "## Report"},
                      {"cell_type": "markdown", "id": "b", "metadata": {"nbgrader": meta}, "source": report_text}]}


def report_warnings(nb):
    return [str(i) for i in check_notebook(nb) if "written answer" in i.message]


def test_the_released_report_cell_is_flagged_by_name():
    warnings = report_warnings(json.loads(RELEASED.read_text()))
    assert len(warnings) == 1
    w = warnings[0]
    assert w.startswith("[warning] cell ") and "`report`" in w and "graded by hand" in w
    assert "YOUR ANSWER HERE" in w and "not answered" in w


@pytest.mark.parametrize("text, flagged", [
    ("YOUR ANSWER HERE", True),
    ("  YOUR ANSWER HERE\n", True),
    ("", True),
    ("Method II is best because the encoder was trained with labels.", False),
    ("YOUR ANSWER HERE\n\nMethod II is best.", False),  # answered; the placeholder left above is harmless
])
def test_unanswered_written_answer(text, flagged):
    assert bool(report_warnings(notebook(text))) is flagged


def test_a_placeholder_cell_that_lost_its_metadata_is_flagged_too():
    nb = notebook("YOUR ANSWER HERE")
    del nb["cells"][1]["metadata"]["nbgrader"]
    assert report_warnings(nb) and "cell 2" in report_warnings(nb)[0]


def test_prepare_submission_prints_the_warning(tmp_path, capsys):
    path = tmp_path / "autoencoder_probing.ipynb"
    path.write_text(json.dumps(notebook("YOUR ANSWER HERE")))
    prepare_submission(path, out_dir=tmp_path / "out", student="jdoe", pdf=False)
    out = capsys.readouterr().out
    assert "cell 2, the written answer `report`" in out and "YOUR ANSWER HERE" in out


def test_submit_value_shows_as_one_short_line(tmp_path, monkeypatch, capsys):
    from IPython.lib.pretty import pretty

    path = tmp_path / "autoencoder_probing.ipynb"
    path.write_text(json.dumps(notebook("An answer.")))
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    zip_path = submit(student="jdoe", pdf=False, out_dir=tmp_path / "a-rather-long-folder-name" / "deeper")
    assert zip_path.is_file() and zip_path.name == "autoencoder_probing_jdoe.zip" and isinstance(zip_path, Path)
    assert repr(zip_path) == pretty(zip_path) == "<submission zip: autoencoder_probing_jdoe.zip>"
    assert str(zip_path).startswith(str(tmp_path))  # still the full path for code
