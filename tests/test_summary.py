"""The class summary of `course-kit grade`: summary.csv (pass rate of each check), scores.png, a few lines."""
import csv
import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from autograder import batch
from autograder.batch import BatchReport
from autograder.cli import main as cli_main
from autograder.summary import UNIT_TOTAL, summarise, summary_text, write_summary
from test_gradebook import PSET, class_results


def test_pass_rate_of_every_check_per_unit(tmp_path):
    summary = write_summary(PSET, class_results(), tmp_path)
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert list(rows[0]) == ["unit", "grade_id", "check", "max_points", "passed", "students", "pass_rate", "mean_points"]
    by = {(r["grade_id"], r["check"]): r for r in rows}
    # alice passes everything, bob fails two Decoder checks and one train_ae check, carol has no notebook
    assert by[("test_decoder", "Decoder output in (0, 1)")]["passed"] == "1"
    assert by[("test_decoder", "Decoder output in (0, 1)")]["students"] == "3"
    assert by[("test_decoder", "Decoder output in (0, 1)")]["pass_rate"] == "0.333"
    assert by[("test_decoder", "Decoder output shape")]["pass_rate"] == "0.667"
    assert by[("test_decoder", UNIT_TOTAL)]["passed"] == "1" and by[("test_decoder", UNIT_TOTAL)]["mean_points"] == "0.417"
    assert by[("test_encoder", UNIT_TOTAL)]["passed"] == "2"
    assert [r["grade_id"] for r in rows if r["check"] == UNIT_TOTAL] == \
        ["test_encoder", "test_decoder", "test_train_ae", "test_train_classifier"]
    assert sorted(summary.totals) == pytest.approx([0, 2 + 1 / 4 + 1 / 3, 4])


def test_histogram_is_a_png(tmp_path):
    write_summary(PSET, class_results(), tmp_path)
    data = (tmp_path / "scores.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_text_for_the_instructor():
    text = summary_text(summarise(PSET, class_results()))
    lines = text.splitlines()
    assert lines[0] == ("Class summary (autoencoder_probing): 3 students; total mean 2.19, median 2.58 of 5; "
                        "1 passed every automatic check, 1 scored 0.")
    assert "Manual points graded for 0 of 3 students" in lines[1]
    assert lines[2].startswith("Hardest checks: Decoder computes the specified layers (33% passed); ")
    with_manual = summary_text(summarise(PSET, class_results(), {k: {"report": 1.0} for k in ("alice", "bob", "carol")}))
    assert "total mean 3.19" in with_manual and "Manual points graded for every student" in with_manual
    assert summary_text(summarise(PSET, {})) == "Class summary: no submission was graded."


def test_course_kit_grade_writes_the_summary_beside_grades_csv(tmp_path, monkeypatch):
    def fake(pset_id, source, out_dir, *args, **kwargs):
        results = class_results()
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        batch.export_csv(pset_id, results, Path(out_dir) / "grades.csv")
        return BatchReport(graded=sorted(results), results=results, seconds=1.0)

    monkeypatch.setattr(batch, "grade_class", fake)
    out = tmp_path / "graded"
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert cli_main(["grade", PSET, str(tmp_path), "--out", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["grades.csv", "scores.png", "summary.csv"]
    text = buf.getvalue()
    table_end = text.index("carol")
    assert table_end < text.index("Class summary (autoencoder_probing): 3 students") < text.index("3 graded")
    assert str(out / "summary.csv") in text and str(out / "scores.png") in text
