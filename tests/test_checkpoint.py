"""Checkpoint every epoch and resume: a killed run ends exactly like an uninterrupted one."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.checkpoint import Checkpointer, CheckpointError, capture_rng_state, restore_rng_state
from course_utils.training import fit

NUM_EPOCHS = 5


def make_run(seed: int = 0):
    """A tiny training run whose every epoch draws randomness: a shuffling loader, dropout, and a
    NumPy/Python draw in the step (so all RNG states matter for an exact resume)."""
    torch.manual_seed(seed)
    data = torch.utils.data.TensorDataset(torch.linspace(-1, 1, 48 * 6).reshape(48, 6), torch.arange(48) % 3)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

    def step(batch):
        x, y = batch
        x = x + 0.01 * float(np.random.rand()) + 0.01 * random.random()
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return model, optimizer, scheduler, loader, step


def train(directory, seed=0, crash_after=None, pause=0.0, name="run"):
    """Train NUM_EPOCHS epochs with a checkpoint per epoch; raise after ``crash_after`` epochs."""
    random.seed(seed)
    np.random.seed(seed)
    model, optimizer, scheduler, loader, step = make_run(seed)
    ckpt = Checkpointer(directory, name, model=model, optimizer=optimizer, scheduler=scheduler)

    def on_epoch_end(epoch, history):
        scheduler.step()
        history.log("lr", optimizer.param_groups[0]["lr"])
        if crash_after is not None and epoch + 1 == crash_after:
            raise ConnectionError("runtime disconnected")
        time.sleep(pause)

    history = fit(step, loader, NUM_EPOCHS, on_epoch_end=on_epoch_end, checkpoint=ckpt)
    return model, history


def uninterrupted(seed=0):
    random.seed(seed)
    np.random.seed(seed)
    model, optimizer, scheduler, loader, step = make_run(seed)

    def on_epoch_end(epoch, history):
        scheduler.step()
        history.log("lr", optimizer.param_groups[0]["lr"])

    return model, fit(step, loader, NUM_EPOCHS, on_epoch_end=on_epoch_end)


def assert_same_run(model_a, history_a, model_b, history_b):
    assert len(history_a) == len(history_b) == NUM_EPOCHS
    assert history_a.state_dict() == history_b.state_dict()
    for (name, a), (_, b) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        assert torch.equal(a, b), f"parameter {name} differs after the resume"


def test_resume_after_a_disconnect_matches_an_uninterrupted_run(tmp_path):
    reference_model, reference_history = uninterrupted()
    with pytest.raises(ConnectionError):
        train(tmp_path, crash_after=3)  # epoch 3's checkpoint is never written
    assert [p.name for p in Checkpointer(tmp_path, "run").checkpoints()] == ["run-epoch0001.pt", "run-epoch0002.pt"]
    torch.manual_seed(123)  # the new session's RNGs differ; the checkpoint restores them
    model, history = train(tmp_path, seed=99)  # a different initialisation, overwritten by the checkpoint
    assert_same_run(model, history, reference_model, reference_history)
    assert [p.name for p in Checkpointer(tmp_path, "run").checkpoints()] == ["run-epoch0004.pt", "run-epoch0005.pt"]


def test_resume_after_sigkill_in_another_process(tmp_path):
    script = Path(__file__).resolve()
    env = {**os.environ, "TQDM_DISABLE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    target = tmp_path / "run-epoch0002.pt"
    deadline = time.monotonic() + 60
    while not target.exists():  # the file appears atomically, complete
        assert proc.poll() is None, f"the training script stopped early: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the training script saved no checkpoint in 60 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    done = [p.name for p in Checkpointer(tmp_path, "run").checkpoints()]
    assert "run-epoch0002.pt" in done and "run-epoch0005.pt" not in done
    model, history = train(tmp_path, seed=7)
    reference_model, reference_history = uninterrupted()
    assert_same_run(model, history, reference_model, reference_history)


def test_finished_run_returns_its_history_without_training(tmp_path):
    _, history = train(tmp_path)
    model, again = train(tmp_path, seed=5)
    assert again.state_dict() == history.state_dict()


def test_unreadable_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    train(tmp_path)
    newest = Checkpointer(tmp_path, "run").checkpoints()[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # cut short (e.g. a partial copy)
    with pytest.warns(UserWarning, match="cannot be read"):
        state = Checkpointer(tmp_path, "run").load_latest()
    assert state["epochs_done"] == NUM_EPOCHS - 1 and len(state["history"]["epoch_loss"]) == NUM_EPOCHS - 1


def test_interrupted_save_keeps_the_last_good_checkpoint(tmp_path):
    class Exploding:
        def state_dict(self):
            return {"ok": torch.ones(3), "bad": lambda: None}  # torch.save fails part-way

        def load_state_dict(self, state):
            pass

    model = nn.Linear(2, 2)
    good = Checkpointer(tmp_path, "run", model=model).save(1)
    with pytest.raises(Exception):
        Checkpointer(tmp_path, "run", model=model, extra=Exploding()).save(2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.name]  # no partial file, no leftover
    state = Checkpointer(tmp_path, "run", model=nn.Linear(2, 2)).load_latest()
    assert state["epochs_done"] == 1 and torch.equal(state["objects"]["model"]["weight"], model.weight)


def test_mismatched_model_or_objects_give_clear_errors(tmp_path):
    Checkpointer(tmp_path, "ae", model=nn.Linear(4, 2)).save(1)
    with pytest.raises(CheckpointError, match="does not fit `model`.*clear()"):
        Checkpointer(tmp_path, "ae", model=nn.Linear(5, 2)).resume()
    with pytest.raises(CheckpointError, match=r"not \['optimizer'\]"):
        model = nn.Linear(4, 2)
        Checkpointer(tmp_path, "ae", model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1)).resume()
    with pytest.raises(TypeError, match="cannot checkpoint a list"):
        Checkpointer(tmp_path, "ae", model=[1, 2])
    with pytest.raises(TypeError, match="checkpoint= takes a Checkpointer"):
        fit(lambda b: 0.0, [1], 1, checkpoint="ae.pt")


def test_keep_clear_and_tuple_form(tmp_path):
    model = nn.Linear(2, 1)
    ckpt = Checkpointer(tmp_path, "probe", keep=1)
    history = fit(lambda batch: model(batch).pow(2).mean(), [torch.ones(1, 2)] * 2, 3,
                  checkpoint=(ckpt, {"model": model}))
    assert len(history) == 3 and [p.name for p in ckpt.checkpoints()] == ["probe-epoch0003.pt"]
    ckpt.clear()
    assert ckpt.checkpoints() == [] and ckpt.load_latest() is None and ckpt.resume() == 0


def test_rng_state_round_trip():
    state = capture_rng_state()
    first = (random.random(), float(np.random.rand()), torch.rand(1).item())
    restore_rng_state(state)
    assert (random.random(), float(np.random.rand()), torch.rand(1).item()) == first


def test_default_directory_is_under_the_data_dir():
    assert Checkpointer(None, "x").directory == Path(os.environ["COURSE_DATA_DIR"]) / "checkpoints"


if __name__ == "__main__":  # the process that test_resume_after_sigkill_in_another_process kills
    train(sys.argv[1], pause=0.5)


def test_resumable_block_checkpoints_a_training_function_it_does_not_own(tmp_path, monkeypatch):
    """A student's train function calls fit() without a checkpoint; the cell's `resumable` block adds it."""
    import torch

    from course_utils.checkpoint import resumable
    from course_utils.training import fit

    def train(model, loader, epochs, crash_after=None):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)

        def step(batch):
            loss = ((model(batch[0]) - batch[1]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        def on_epoch_end(epoch, history):
            if crash_after is not None and epoch + 1 == crash_after:
                raise KeyboardInterrupt("disconnected")

        return fit(step, loader, epochs, on_epoch_end=on_epoch_end).epoch_loss

    torch.manual_seed(0)
    loader = [(torch.randn(8, 3), torch.randn(8, 1)) for _ in range(2)]
    model = torch.nn.Linear(3, 1)
    with pytest.raises(KeyboardInterrupt):
        with resumable("demo", directory=tmp_path, model=model):
            train(model, loader, 5, crash_after=3)
    model2 = torch.nn.Linear(3, 1)  # a fresh runtime: new objects, same cell run again
    with resumable("demo", directory=tmp_path, model=model2):
        history = train(model2, loader, 5)
    assert len(history) == 5  # the whole run, the first 3 epochs from the checkpoint
    with resumable("demo", directory=tmp_path, restart=True, model=torch.nn.Linear(3, 1)) as ckpt:
        assert ckpt.checkpoints() == []
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with resumable("demo", directory=tmp_path, model=model) as ckpt:
        assert ckpt is None  # nothing is saved while grading


# ---- a saved run is reused only by the same code; frozen weights are not saved ----------------------

_NOTEBOOK = '''
import torch
from torch import nn
from course_utils.checkpoint import resumable
from course_utils.training import fit

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.frozen = nn.Linear(64, 64).requires_grad_(False)  # a frozen "pretrained" part

    def forward(self, x):
        return self.lin(x)

def train(model, epochs):
    optimizer = torch.optim.SGD(model.lin.parameters(), lr=LR)
    def step(batch):
        loss = model(batch).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    return fit(step, [torch.ones(4, 2)], epochs)
'''


def _notebook_run(folder, epochs, lr="0.1", capsys=None):
    """The cells of a notebook run in a fresh namespace named __main__ (as a kernel runs them): the same text gives
    new code objects, as after a disconnect."""
    namespace = {"__name__": "__main__"}
    exec(_NOTEBOOK.replace("LR", lr), namespace)
    torch.manual_seed(0)
    model = namespace["Net"]()
    with namespace["resumable"]("toy", directory=folder, model=model):
        history = namespace["train"](model, epochs)
    return model, history


def test_a_saved_run_is_reused_only_by_the_same_code(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("COURSE_NO_CHECKPOINTS", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("COURSE_RESTART_TRAINING", raising=False)
    _notebook_run(tmp_path, 3)
    capsys.readouterr()
    _, history = _notebook_run(tmp_path, 5)  # the same code in a "new kernel": resumes after epoch 3
    out = capsys.readouterr().out
    assert "3/5 epochs done by the same code" in out and len(history.epoch_loss) == 5
    _, history = _notebook_run(tmp_path, 5, lr="0.2")  # the student changed train: no resume
    out = capsys.readouterr().out
    assert "trained by other code than yours now, so training starts afresh" in out and "Resuming" not in out
    assert len(history.epoch_loss) == 5
    monkeypatch.setenv("COURSE_RESTART_TRAINING", "1")
    _notebook_run(tmp_path, 6, lr="0.2")
    assert "Resuming" not in capsys.readouterr().out


def test_frozen_weights_are_not_saved_and_come_back_from_the_code(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_NO_CHECKPOINTS", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    model, _ = _notebook_run(tmp_path, 2)
    saved = sorted(tmp_path.glob("toy-*-epoch*.pt"))
    state = torch.load(saved[-1], weights_only=True)
    assert set(state["objects"]["model"]) == {"lin.weight", "lin.bias"}
    resumed, history = _notebook_run(tmp_path, 2)  # nothing left to train: restored, frozen part rebuilt by the code
    assert len(history.epoch_loss) == 2
    assert torch.equal(resumed.lin.weight, model.lin.weight) and torch.equal(resumed.frozen.weight, model.frozen.weight)
