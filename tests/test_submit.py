"""Submission packaging: Colab's personal metadata removed from a copy, checks reported, clear errors."""
import copy
import json
import sys
import types
import zipfile

import nbformat
import pytest

from course_utils.submit import (
    SubmissionError, assignment_name, check_notebook, pdf_tools, prepare_submission, strip_personal_metadata, submit,
)

USER = {"displayName": "Jane Student", "photoUrl": "https://lh3.googleusercontent.com/a/x", "userId": "0123456789"}


def nbgrader(grade_id, solution=False, grade=False, points=0):
    meta = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": not solution, "schema_version": 3}
    if grade:
        meta["points"] = points
    return meta


def colab_notebook():
    """A notebook as Colab saves it: nbformat_minor 0, ids in metadata.id, executionInfo with the
    user's identity, notebook-level colab metadata with provenance, and outputs."""
    def code(cell_id, source, grader=None, outputs=()):
        meta = {"id": cell_id, "outputId": f"out-{cell_id}", "colab": {"base_uri": "https://localhost:8080/"},
                "executionInfo": {"status": "ok", "timestamp": 1712345678901, "user_tz": -120, "elapsed": 41,
                                  "user": dict(USER)}}
        if grader:
            meta["nbgrader"] = grader
        return {"cell_type": "code", "execution_count": 1, "metadata": meta, "source": source, "outputs": list(outputs)}

    stream = {"output_type": "stream", "name": "stdout", "text": ["Decoder: 42,135 parameters\n"]}
    result = {"output_type": "execute_result", "execution_count": 1, "metadata": {},
              "data": {"text/plain": ["tensor(0.25)"]}}
    return {
        "nbformat": 4, "nbformat_minor": 0,
        "metadata": {"colab": {"name": "autoencoder_probing.ipynb", "provenance": [
            {"file_id": "1AbCdEf", "timestamp": 1712345000000, "user": dict(USER), "user_tz": -120}],
            "authorship_tag": "ABX9TyN", "gpuType": "T4"},
            "kernelspec": {"name": "python3", "display_name": "Python 3"}, "accelerator": "GPU"},
        "cells": [
            {"cell_type": "markdown", "metadata": {"id": "intro"}, "source": ["# Autoencoders\n"]},
            code("c1", ["class Decoder(nn.Module):\n", "    pass\n"], nbgrader("decoder", solution=True), [stream]),
            code("c2", ["check_decoder(Decoder)\n"], nbgrader("test_decoder", grade=True, points=1), [result]),
            code("c3", ["def train_ae(model):\n", "    raise NotImplementedError()\n"], nbgrader("train_ae", solution=True)),
        ],
    }


@pytest.fixture
def notebook_file(tmp_path):
    path = tmp_path / "Copy of autoencoder_probing (1).ipynb"
    path.write_text(json.dumps(colab_notebook(), indent=1))
    return path


def test_colab_notebook_comes_out_clean_valid_and_the_original_untouched(notebook_file, tmp_path, capsys):
    before = notebook_file.read_bytes()
    zip_path = prepare_submission(notebook_file, out_dir=tmp_path / "out", student="Jane Student", pdf=False)
    assert notebook_file.read_bytes() == before
    assert zip_path == tmp_path / "out" / "autoencoder_probing_Jane_Student.zip"
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.namelist() == ["autoencoder_probing.ipynb"]
        text = zf.read("autoencoder_probing.ipynb").decode()
    for secret in ("Jane Student", "0123456789", "googleusercontent", "user_tz", "provenance", "1AbCdEf", "ABX9TyN"):
        assert secret not in text, f"{secret!r} survived the cleaning"
    clean = json.loads(text)
    nbformat.validate(nbformat.from_dict(clean))
    original = colab_notebook()
    assert clean["nbformat_minor"] == 0 and len(clean["cells"]) == len(original["cells"])
    for got, want in zip(clean["cells"], original["cells"]):
        assert got["source"] == want["source"] and got.get("outputs") == want.get("outputs")
        assert got["metadata"]["id"] == want["metadata"]["id"]
        assert got["metadata"].get("nbgrader") == want["metadata"].get("nbgrader")
    assert clean["cells"][1]["metadata"]["outputId"] == "out-c1"
    assert clean["cells"][1]["metadata"]["executionInfo"] == {"status": "ok", "timestamp": 1712345678901, "elapsed": 41}
    assert clean["metadata"]["colab"] == {"name": "autoencoder_probing.ipynb", "gpuType": "T4"}
    out = capsys.readouterr().out
    assert "Removed personal metadata" in out and "your file is unchanged" in out
    assert "`train_ae`) still raises NotImplementedError" in out


def test_pdf_is_added_or_its_absence_explained(notebook_file, tmp_path, capsys):
    zip_path = prepare_submission(notebook_file, out_dir=tmp_path, pdf=True)
    names = zipfile.ZipFile(zip_path).namelist()
    assert zip_path.name == "autoencoder_probing_submission.zip"
    if pdf_tools() is None:
        assert names == ["autoencoder_probing.ipynb"]
        assert "PDF export is not available here" in capsys.readouterr().out
    else:  # pragma: no cover - only where xelatex/pandoc or playwright are installed
        assert "autoencoder_probing.ipynb" in names


def test_strip_personal_metadata_does_not_touch_its_input():
    nb = colab_notebook()
    snapshot = copy.deepcopy(nb)
    clean, removed = strip_personal_metadata(nb)
    assert nb == snapshot and clean != nb
    assert "cell.metadata.executionInfo.user" in removed and "metadata.colab.provenance" in removed


@pytest.mark.parametrize("content, message", [
    ('{"nbformat": 4, "cells": [', "JSON breaks at line 1"),
    ('{"hello": "world"}', "not a Jupyter notebook"),
    ('{"nbformat": 3, "cells": []}', "format 3"),
    ('{"nbformat": 4, "nbformat_minor": 0, "metadata": {}, "cells": [{"cell_type": "code", "source": "x"}]}',
     r"not a valid notebook \(cell 1\): 'metadata' is a required property"),
])
def test_malformed_notebook_gives_a_clear_error(tmp_path, content, message):
    path = tmp_path / "broken.ipynb"
    path.write_text(content)
    with pytest.raises(SubmissionError, match=message):
        prepare_submission(path, out_dir=tmp_path, pdf=False)
    assert not list(tmp_path.glob("*.zip")) and path.read_text() == content


def test_missing_file_is_explained(tmp_path):
    with pytest.raises(SubmissionError, match="does not exist"):
        prepare_submission(tmp_path / "nope.ipynb")


def test_check_reports_deleted_duplicated_and_stripped_graded_cells():
    release = colab_notebook()
    nb = colab_notebook()
    del nb["cells"][2]["metadata"]["nbgrader"]  # test cell lost its metadata, content unchanged
    nb["cells"].append(copy.deepcopy(nb["cells"][1]))  # solution cell duplicated
    del nb["cells"][3]  # train_ae deleted
    issues = [str(i) for i in check_notebook(nb, release_notebook=release)]
    assert any("`decoder` appears 2 times" in i and i.startswith("[error]") for i in issues)
    assert any("cell 3 is the graded cell `test_decoder` but lost its nbgrader metadata" in i for i in issues)
    assert any("graded cell `train_ae` is missing" in i and i.startswith("[error]") for i in issues)


def test_check_uses_the_graded_cell_list_of_the_release_and_notices_lost_metadata():
    nb = colab_notebook()
    nb["metadata"]["course_kit"] = {"graded_cells": ["decoder", "test_decoder", "train_ae", "encoder"]}
    assert [str(i) for i in check_notebook(nb) if "missing" in str(i)] == [
        "[error] graded cell `encoder` is missing: it was deleted or replaced. Copy it back from the released "
        "notebook (same place, same content) before submitting."]
    for cell in nb["cells"]:
        cell["metadata"].pop("nbgrader", None)
    assert any("no cell carries nbgrader metadata" in str(i) for i in check_notebook(nb))


def test_assignment_names():
    assert assignment_name("Copy of simple_clip (2).ipynb") == "simple_clip"
    assert assignment_name("x.ipynb", {"metadata": {"course_kit": {"assignment": "ps2 clip"}}}) == "ps2_clip"


def test_submit_locally_uses_the_given_path_or_says_how_to_proceed(notebook_file, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert submit(pdf=False) is None  # says how to proceed instead of breaking "Run all"
    assert "submit('autoencoder_probing.ipynb'" in capsys.readouterr().out
    assert submit("autoencoder_probing", pdf=False) is None  # an assignment id with no such file here
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert submit(pdf=False) is None and "skipped while the notebook is being graded" in capsys.readouterr().out
    monkeypatch.delenv("NBGRADER_EXECUTION")
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook_file))
    zip_path = submit(student="jdoe", pdf=False, out_dir=tmp_path / "up")
    assert zip_path.name == "autoencoder_probing_jdoe.zip" and f"Upload {zip_path}" in capsys.readouterr().out


def test_submit_in_colab_fetches_the_open_notebook_and_downloads_the_zip(tmp_path, monkeypatch):
    """Colab cannot run here: only its modules are simulated (the notebook hand-over and download)."""
    downloads = []
    google = types.ModuleType("google")
    google.__path__ = []
    package = types.ModuleType("google.colab")
    package.__path__ = []
    package.files = types.SimpleNamespace(download=downloads.append)
    package._message = types.SimpleNamespace(blocking_request=lambda kind, timeout_sec: {"ipynb": colab_notebook()})
    google.colab = package
    for name, module in (("google", google), ("google.colab", package),
                         ("google.colab._message", package._message), ("google.colab.files", package.files)):
        monkeypatch.setitem(sys.modules, name, module)
    zip_path = submit(student="jdoe", pdf=False, out_dir=tmp_path)
    assert downloads == [str(zip_path)] and zip_path.name == "autoencoder_probing_jdoe.zip"
    assert "Jane Student" not in zipfile.ZipFile(zip_path).read("autoencoder_probing.ipynb").decode()
