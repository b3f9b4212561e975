"""The LMS file-name parser of `course-kit grade` (issue 13): Canvas's late marker, its -1 suffix, bare names."""
import json
import zipfile

import pytest

from autograder.batch import SubmissionNameError, discover, student_from_filename
from autograder.cli import main as cli_main

PSET = "autoencoder_probing"
NB = "autoencoder_probing.ipynb"
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_canvas_late_marker_is_kept_as_information():
    parsed = student_from_filename("jdoe_late_1234_5678_autoencoder_probing.ipynb", PSET)
    assert parsed == ("jdoe", NB)
    assert parsed.late is True
    assert student_from_filename("jdoe_1234_5678_autoencoder_probing.ipynb", PSET).late is False
    assert student_from_filename("jdoe_LATE_1234_5678_autoencoder_probing.ipynb", PSET) == ("jdoe", NB)


@pytest.mark.parametrize("name, original, n", [
    ("jdoe_1234_5678_autoencoder_probing-1.ipynb", NB, 1),
    ("jdoe_late_1234_5678_autoencoder_probing-12.ipynb", NB, 12),
    ("jdoe_1234_5678_Untitled-2.ipynb", "Untitled.ipynb", 2),
    ("jdoe_1234_5678_autoencoder_probing.ipynb", NB, 0),
])
def test_canvas_resubmission_suffix_is_removed(name, original, n):
    parsed = student_from_filename(name, PSET)
    assert parsed == ("jdoe", original) and parsed.resubmission == n


@pytest.mark.parametrize("name", [NB, "autoencoder_probing (1).ipynb", "Copy of autoencoder_probing.ipynb",
                                  "autoencoder_probing-1.ipynb", "autoencoder_probing_submission.zip"])
def test_a_bare_assignment_name_names_no_student(name):
    with pytest.raises(SubmissionNameError) as err:
        student_from_filename(name, PSET)
    text = str(err.value)
    assert f"'{name}'" in text and f"<student>_{PSET}.ipynb" in text and "--name-regex" in text


def test_the_submit_package_names_its_student():
    assert student_from_filename(f"{PSET}_kim.zip", PSET) == ("kim", f"{PSET}.zip")


def test_discover_notes_late_and_does_not_blame_the_resubmission(tmp_path):
    (tmp_path / "jdoe_late_1234_5678_autoencoder_probing-1.ipynb").write_text(NOTEBOOK)
    (tmp_path / "amy_1234_5679_autoencoder_probing-2.ipynb").write_text(NOTEBOOK)
    subs = {s.student: s for s in discover(PSET, tmp_path)}
    assert sorted(subs) == ["amy", "jdoe"]
    assert subs["amy"].names == [NB] and subs["amy"].notes == []
    assert subs["jdoe"].names == [NB]
    assert len(subs["jdoe"].notes) == 1 and "late" in subs["jdoe"].notes[0]


def test_grade_stops_on_a_bare_notebook_with_the_rule(tmp_path, capsys):
    lms = tmp_path / "lms.zip"
    with zipfile.ZipFile(lms, "w") as zf:
        zf.writestr("alice_autoencoder_probing.ipynb", NOTEBOOK)
        zf.writestr(NB, NOTEBOOK)
    assert cli_main(["grade", PSET, str(lms), "--out", str(tmp_path / "out"), "--no-progress",
                     "--no-sandbox"]) == 2
    err = capsys.readouterr().err
    assert f"'{NB}'" in err and "<student>_autoencoder_probing.ipynb" in err
    assert not (tmp_path / "out" / "results" / "autoencoder.json").exists()
