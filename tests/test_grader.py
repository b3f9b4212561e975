"""Grader pieces that need no notebook run: result JSON, lenient loading, the signed probe channel."""
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from autograder.feedback import clean, render_feedback
from autograder.grader import SubmissionResult, UnitResult, _zero_result
from autograder.notebooks import SubmissionError, cells_to_run, graded_cell_report, load_notebook
from autograder.problem_sets import get_problem_set
from course_utils.grading.runtime import MAGIC, verify


def test_result_json_round_trip_and_old_files_still_load(tmp_path):
    r = _zero_result(get_problem_set("autoencoder_probing"), "jdoe", "x.ipynb", "Not graded: reason")
    r.flags, r.fingerprint = ["Decoder: torch.save"], "abc"
    r.save(tmp_path / "r.json")
    assert not list(tmp_path.glob("*.tmp"))
    back = SubmissionResult.from_dict(json.loads((tmp_path / "r.json").read_text()))
    assert back.to_dict() == r.to_dict()
    old = r.to_dict()
    del old["flags"], old["fingerprint"]  # a result written before these fields existed
    assert SubmissionResult.from_dict(old).flags == []


def test_lenient_loading(tmp_path):
    p = tmp_path / "nb.ipynb"
    p.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["a = 1\n", "b = 2"]},
                                       {"cell_type": "weird", "source": "x"}, "not a cell",
                                       {"cell_type": "code", "metadata": {"id": "colab1", "executionInfo": {"user": {}}},
                                        "source": "c = 3", "outputs": [{"output_type": "stream", "text": "hi"}]}]}))
    nb = load_notebook(p)
    assert [src for _i, src in cells_to_run(nb)] == ["a = 1\nb = 2", "c = 3"]
    for bad, words in (("", "empty file"), ("{not json", "JSON is broken"), ("[1, 2]", "not a Jupyter notebook")):
        p.write_text(bad)
        with pytest.raises(SubmissionError, match=words):
            load_notebook(p)


def test_duplicates_of_any_graded_cell_are_reported():
    nb = load_notebook_from({"cells": [
        {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "decoder", "solution": True}}, "source": "a"},
        {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "decoder", "solution": True}}, "source": "b"}]})
    notes = graded_cell_report(nb, ["test_decoder"])
    assert any("'test_decoder' is missing" in n for n in notes)
    assert any("'decoder' appears 2 times" in n for n in notes)


def load_notebook_from(data, tmp=None):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "nb.ipynb"
    path.write_text(json.dumps(data))
    return load_notebook(path)


def test_signed_observations_reject_forgery():
    import hashlib
    import hmac
    import io

    key, nonce, spec = b"k" * 32, "n1", "course_utils.probes.autoencoder_probing:probe_decoder"
    buf = io.BytesIO()
    torch.save({"outputs": [torch.ones(2)]}, buf)
    payload = buf.getvalue()
    mac = hmac.new(key, nonce.encode() + b"\0" + spec.encode() + b"\0" + payload, hashlib.sha256).digest()
    assert verify(MAGIC + mac + payload, key, nonce, spec) == payload
    assert verify(MAGIC + mac + payload, key, "other nonce", spec) is None  # no replay
    assert verify(MAGIC + mac + payload + b"x", key, nonce, spec) is None  # no edit
    assert verify(payload, key, nonce, spec) is None  # unsigned (plain torch.save)


def test_armed_entry_restores_patched_machinery_and_signs():
    """In a fresh process: arm, let 'student code' patch torch.save and the probe, run the entry."""
    script = textwrap.dedent("""
        import builtins, json, os, sys, tempfile, torch
        from torch import nn
        from course_utils.grading import runtime
        key = os.urandom(32)
        runtime.arm(key, "_ck_test")
        # --- student code ---
        class Decoder(nn.Module):
            def __init__(self):
                super().__init__(); self.l = nn.ConvTranspose2d(24, 3, 16, 16)
            def forward(self, z): return torch.relu(self.l(z))
        real_save = torch.save
        torch.save = lambda obj, f, *a, **k: real_save({'params': [], 'outputs': [torch.full((2, 3, 64, 64), .5)]}, f)
        torch.allclose = lambda *a, **k: True
        import course_utils.probes.autoencoder_probing as p
        p.probe_decoder = lambda objects, inputs: {'outputs': []}
        sys.modules['course_utils.grading.runtime'] = None
        # --- the grader's call ---
        d = tempfile.mkdtemp()
        real_save({'seed': 0, 'z': [torch.rand(2, 24, 4, 4)]}, d + '/in.pt')
        builtins._ck_test('course_utils.probes.autoencoder_probing:probe_decoder', ['Decoder'], d + '/in.pt', d + '/out.pt', 'n')
        blob = open(d + '/out.pt', 'rb').read()
        payload = runtime.verify(blob, key, 'n', 'course_utils.probes.autoencoder_probing:probe_decoder')
        import io
        obs = torch.load(io.BytesIO(payload), weights_only=True)
        print(json.dumps({'restored': torch.save is real_save, 'integrity': obs['_integrity'],
                          'min': float(obs['outputs'][0].min()), 'n_params': len(obs['params'])}))
    """)
    # The script imports course_utils.grading.runtime before replacing it in sys.modules, as a notebook would.
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["restored"] and data["min"] == 0.0 and data["n_params"] == 2  # the honest ReLU output, real params
    assert {"torch.save", "torch.allclose", "course_utils.probes.autoencoder_probing.probe_decoder",
            "sys.modules['course_utils.grading.runtime']"} <= set(data["integrity"])


def test_feedback_escapes_and_hides_marked_regions():
    r = SubmissionResult("autoencoder_probing", "<b>x</b>", "nb.ipynb",
                         [UnitResult("test_decoder", "Decoder", 1.0, [])],
                         ["### BEGIN HIDDEN TESTS\nassert secret\n### END HIDDEN TESTS", "\x1b[31mred\x1b[0m"])
    page = render_feedback(r)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "secret" not in page and "[hidden]" in page and "\x1b" not in page
    assert clean("### BEGIN SOLUTION\nx = 1\n### END SOLUTION") == "[hidden]"


def _kill_spawned_kernels(monkeypatch, how_many: int) -> list:
    """The grader's zygote forks kernels as usual; the first ``how_many`` die at once (as one could on an
    overloaded machine, before it is ready)."""
    import os
    import signal

    from course_utils.grading import zygote as zygote_module

    real, killed = zygote_module._Zygote.spawn, []

    def spawn(self, *args, **kwargs):
        pid = real(self, *args, **kwargs)
        if len(killed) < how_many:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        return pid

    monkeypatch.setattr(zygote_module._Zygote, "spawn", spawn)
    return killed


def test_a_kernel_that_dies_while_starting_is_started_once_more(monkeypatch):
    from course_utils.grading.session import KernelSession, RunLimits

    killed = _kill_spawned_kernels(monkeypatch, 1)
    s = KernelSession(None, RunLimits(sandbox=False, memory_mb=2048), zygote=True)
    try:
        s.start()
        assert len(killed) == 1 and s.alive and s.pid != killed[0]
        res = s.run("print(6 * 7)", 60)
        assert res["status"] == "ok" and "42" in "".join(o.get("text", "") for o in res["outputs"]), res
    finally:
        s.stop()


def test_a_kernel_that_dies_twice_is_the_graders_failure_with_both_causes(monkeypatch):
    from course_utils.grading.session import KernelSession, RunLimits

    killed = _kill_spawned_kernels(monkeypatch, 2)
    s = KernelSession(None, RunLimits(sandbox=False, memory_mb=2048), zygote=True)
    try:
        with pytest.raises(RuntimeError, match="did not start, twice: it exited before it was ready.*; then: it "
                                               "exited before it was ready"):
            s.start()
        assert len(killed) == 2 and not s.alive
    finally:
        s.stop()
