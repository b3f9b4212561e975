"""Broken and hostile submissions, graded as ONE parallel batch next to a good one.

The corpus is built here from the released notebook and the solutions (``fill_solutions`` via
``make_sample_submissions``) by editing cells. Every case must get the score its honest code
deserves (0 or partial credit, never more), a message that says what happened, and leave the
other submissions alone: the good solution graded in the same batch keeps full marks.
Tampering cases start from the wrong-decoder sample (honestly 3.25 / 4: its Decoder ends with a ReLU),
so a tamper that worked would show up as a higher score.

The batch is graded once per test run; with pytest-xdist the workers share it through a lock.
"""
import copy
import fcntl
import json
import os
from pathlib import Path

import pytest

from autograder.batch import grade_class
from autograder.grader import GradeOptions
from autograder.notebooks import nbgrader_meta
from autograder.release import make_sample_submissions

PSET = "autoencoder_probing"
NB = "autoencoder_probing.ipynb"
OPTIONS = GradeOptions(cell_timeout=8, probe_timeout=8, total_timeout=120, memory_mb=1500, max_restarts=3)


# ---- building the corpus ------------------------------------------------------------------------

def _read(path) -> dict:
    return json.loads(Path(path).read_text())


def _cell(nb: dict, grade_id: str) -> dict:
    return next(c for c in nb["cells"] if nbgrader_meta(c).get("grade_id") == grade_id)


def _index(nb: dict, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb["cells"]) if nbgrader_meta(c).get("grade_id") == grade_id)


def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _code(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


def _insert_after(nb: dict, grade_id: str, source: str) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"].insert(_index(nb, grade_id) + 1, _code(source))
    return nb


def _append(nb: dict, source: str) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"].append(_code(source))
    return nb


def colabify(nb: dict) -> dict:
    """What Colab does to a notebook it saves: ids in metadata.id, nbformat_minor 0, executionInfo, outputs."""
    nb = copy.deepcopy(nb)
    nb["nbformat_minor"] = 0
    nb["metadata"] = {"colab": {"provenance": [], "name": NB, "authorship_tag": "ABX9TyN"},
                      "kernelspec": {"name": "python3", "display_name": "Python 3"}, "accelerator": "GPU"}
    for i, cell in enumerate(nb["cells"]):
        cell["metadata"]["id"] = cell.pop("id", None) or f"c{i:04d}"
        cell["metadata"].pop("deletable", None)
        if cell["cell_type"] == "code":
            cell["metadata"]["executionInfo"] = {"status": "ok", "timestamp": 1700000000000 + i, "elapsed": 12,
                                                 "user": {"displayName": "Jane Doe", "userId": "0123456789"},
                                                 "user_tz": -60}
            cell["metadata"]["colab"] = {"base_uri": "https://localhost:8080/"}
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["visible checks passed\n"]}]
            cell["execution_count"] = i + 1
        cell["source"] = _src(cell).splitlines(keepends=True)
    return nb


FAKE_OBS = """
import torch
def _fake(*args, **kwargs):
    out = args[3] if len(args) > 3 else kwargs.get('out_path')
    torch.save({'params': [torch.zeros(42_135)], 'outputs': [torch.full((2, 3, 64, 64), 0.5)]}, out)
"""


def build_corpus(root: Path) -> dict:
    """Write every case in nbgrader's submitted/<student>/<pset>/ layout; return {case: expectation}."""
    samples = make_sample_submissions(PSET, root / "_samples")
    good, wrong = _read(samples["solution"]), _read(samples["wrong_decoder"])
    sub = root / "submitted"
    cases = {}

    def put(case, content, name=NB, **expect):
        path = sub / case / PSET / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=1))
        cases[case] = expect

    put("good", good, score=4.0)
    put("invalid_json", json.dumps(good)[:5000], score=0.0, message="not a valid notebook")
    put("empty_object", "{}", score=0.0, message="no code cells")
    put("no_cells", {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, score=0.0, message="no code cells")
    deleted = copy.deepcopy(good)
    del deleted["cells"][_index(deleted, "decoder")]
    put("graded_cell_deleted", deleted, score=3.0, unit=("test_decoder", 0.0), message="was its cell deleted")
    dup = copy.deepcopy(good)
    first = copy.deepcopy(_cell(wrong, "decoder"))  # a wrong first version, the right one after it
    dup["cells"].insert(_index(dup, "decoder"), first)
    put("graded_cell_duplicated", dup, score=4.0, note="appears 2 times")
    md = copy.deepcopy(good)
    cell = _cell(md, "decoder")
    cell["cell_type"] = "markdown"
    cell.pop("outputs", None)
    cell.pop("execution_count", None)
    put("cell_made_markdown", md, score=3.0, unit=("test_decoder", 0.0),
        message=f"Cell {_index(md, 'decoder') + 1} defines Decoder but is a Markdown cell: change it back to Code")
    ren = copy.deepcopy(good)
    _cell(ren, "decoder")["source"] = _src(_cell(ren, "decoder")).replace("class Decoder(", "class MyDecoder(")
    put("class_renamed", ren, score=3.0, unit=("test_decoder", 0.0), message="did you rename it (MyDecoder)")
    put("loop_in_plain_cell", _insert_after(good, "imports", "while True:\n    pass\n"), score=4.0, note="time limit")
    loop = copy.deepcopy(good)
    c = _cell(loop, "train_ae")
    c["source"] = _src(c).replace("    model.train()\n", "    model.train()\n    while True:\n        pass\n", 1)
    put("loop_in_graded_function", loop, score=3.0, unit=("test_train_ae", 0.0), message="time limit")
    put("loop_ignores_interrupt", _insert_after(good, "imports", "import time\nwhile True:\n    try:\n        time.sleep(0.2)\n"
                                                "    except BaseException:\n        pass\n"),
        score=4.0, note="did not stop when interrupted")
    put("sys_exit", _insert_after(good, "imports", "import sys\nsys.exit()\n"), score=4.0)
    put("os_exit", _insert_after(good, "imports", "import os\nos._exit(0)\n"), score=4.0, note="ended the Python process")
    # Its parent is the process that forked it; the kernel lives on and the grader starts a new one next time.
    put("kills_its_parent", _insert_after(good, "imports", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"),
        score=4.0)
    put("huge_allocation", _insert_after(good, "imports", "x = torch.ones(3_000_000_000 // 4 * 2)\n"),
        score=4.0, note="memory")
    put("memory_creep", _insert_after(good, "imports", "chunks = []\nfor _ in range(40):\n"
                                      "    chunks.append(torch.ones(50_000_000))\n"), score=4.0, note="memory")
    put("prints_fake_pass", _append(wrong, "print('All tests passed')\nprint('score: 4/4')\n"), score=3.25)
    put("patches_allclose", _append(wrong, "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"),
        score=3.25, flagged=True)
    put("fake_autograder_module", _append(wrong, "import sys, types\nfake = types.ModuleType('autograder')\n"
                                          "fake.__path__ = []\nsys.modules['autograder'] = fake\n"
                                          "sys.modules['autograder.autoencoder_probing'] = types.SimpleNamespace("
                                          "test_decoder=lambda D: print('Decoder: all checks passed'))\n"), score=3.25)
    put("patches_run_probe", _append(wrong, FAKE_OBS + "import course_utils.grading.runtime as rt\nrt.run_probe = _fake\n"
                                     "import course_utils.probes.autoencoder_probing as p\n"
                                     "p.probe_decoder = lambda objects, inputs: {'params': [], 'outputs': []}\n"),
        score=3.25, flagged=True)
    put("patches_torch_save", _append(wrong, "import torch\n_orig_save = torch.save\n"
                                      "def _save(obj, f, *a, **k):\n"
                                      "    if isinstance(obj, dict) and 'outputs' in obj:\n"
                                      "        obj = dict(obj, outputs=[torch.sigmoid(o) + 0 * o for o in obj['outputs']])\n"
                                      "    return _orig_save(obj, f, *a, **k)\n"
                                      "torch.save = _save\n"), score=3.25, flagged=True)
    imp = copy.deepcopy(good)
    _cell(imp, "decoder")["source"] = "from autograder.autoencoder_probing import Decoder\n"
    put("imports_autograder", imp, score=3.0, unit=("test_decoder", 0.0), message="not defined")
    put("colab_saved", colabify(good), score=4.0, same_as="good")
    put("wrong_file_name", good, name="Untitled.ipynb", score=4.0, note="instead of 'autoencoder_probing.ipynb'")
    (sub / "two_notebooks" / PSET).mkdir(parents=True)
    (sub / "two_notebooks" / PSET / f"Copy of {NB}").write_text(json.dumps(good))
    put("two_notebooks", wrong, score=3.25, note="the other(s) (Copy of autoencoder_probing.ipynb) were not")
    put("not_a_notebook", "%PDF-1.4 not a notebook", name="autoencoder_probing.pdf", score=0.0,
        message="No notebook was found")
    return cases


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "hostile_batch"
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one xdist worker grades; the other finds the results
        cases_file = shared / "cases.json"
        if cases_file.exists():
            cases = json.loads(cases_file.read_text())
        else:
            cases = build_corpus(shared)
            cases_file.write_text(json.dumps(cases))
        report = grade_class(PSET, shared, shared / "out", workers=2, options=OPTIONS, progress=False)
    return cases, report, shared / "out"


def test_corpus_is_large_enough(batch):
    cases, report, _out = batch
    assert len(cases) >= 15
    assert sorted(report.results) == sorted(cases)
    assert report.errors == {} and report.killed == []


CASES = ["good", "invalid_json", "empty_object", "no_cells", "graded_cell_deleted", "graded_cell_duplicated",
         "cell_made_markdown", "class_renamed", "loop_in_plain_cell", "loop_in_graded_function", "loop_ignores_interrupt",
         "sys_exit", "os_exit", "kills_its_parent", "huge_allocation", "memory_creep", "prints_fake_pass",
         "patches_allclose", "fake_autograder_module", "patches_run_probe", "patches_torch_save", "imports_autograder",
         "colab_saved", "wrong_file_name", "two_notebooks", "not_a_notebook"]


@pytest.mark.parametrize("case", CASES)
def test_case_gets_the_score_its_honest_code_deserves(batch, case):
    cases, report, _out = batch
    expect, r = cases[case], report.results[case]
    messages = " ".join(c.message for u in r.units for c in u.checks) + " " + " ".join(r.notes)
    assert r.score == pytest.approx(expect["score"]), (case, r.score, r.notes, messages[:2000])
    if "unit" in expect:
        grade_id, points = expect["unit"]
        assert r.unit(grade_id).points == pytest.approx(points)
    if "message" in expect:
        assert expect["message"] in messages, messages[:2000]
    if "note" in expect:
        assert any(expect["note"] in n for n in r.notes), r.notes
    if expect.get("flagged"):
        assert r.flags and any("Integrity" in n for n in r.notes), (r.flags, r.notes)
    if "same_as" in expect:
        other = report.results[expect["same_as"]]
        assert [(c.name, c.passed, c.points) for u in r.units for c in u.checks] == \
               [(c.name, c.passed, c.points) for u in other.units for c in u.checks]
    # Every check that failed says why.
    assert all(c.message for u in r.units for c in u.checks if not c.passed)


def test_good_submission_unaffected_by_its_neighbours(batch):
    _cases, report, _out = batch
    good = report.results["good"]
    assert good.score == good.max_score == 4.0 and good.notes == [] and good.flags == []


def test_fake_pass_output_is_not_believed(batch):
    _cases, report, _out = batch
    r = report.results["prints_fake_pass"]
    assert r.unit("test_decoder").points == pytest.approx(0.25)


def test_tampering_is_reported_to_the_instructor(batch):
    _cases, report, out = batch
    assert any("torch.save" in f for f in report.results["patches_torch_save"].flags)
    assert any("run_probe" in f or "probe_decoder" in f for f in report.results["patches_run_probe"].flags)
    assert any("allclose" in f for f in report.results["patches_allclose"].flags)
    csv_text = (out / "grades.csv").read_text()
    assert "torch.save" in csv_text


def test_feedback_shows_checks_and_notes_but_no_code(batch):
    _cases, report, out = batch
    page = (out / "feedback" / "os_exit.html").read_text()
    assert "Decoder output shape" in page and "ended the Python process" in page
    for leak in ("BEGIN HIDDEN TESTS", "BEGIN SOLUTION", "def judge_", "assert_unit", "autograder.autoencoder_probing",
                 "nn.ConvTranspose2d(12, 3"):
        for f in (out / "feedback").glob("*.html"):
            assert leak not in f.read_text(), (leak, f.name)
