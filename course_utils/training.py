"""A generic training harness that knows nothing of the model it trains.

``fit`` runs ``step_fn(batch) -> loss`` over a loader for a number of epochs with a tqdm
progress bar, keeps a loss history, and can checkpoint every epoch and resume after a
disconnect (see :mod:`course_utils.checkpoint`). Students write ``train_ae`` and
``train_classifier`` themselves; the notebook cells around them use this harness.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import torch

from .modes import is_grading


class _DisplayLine:
    """A file-like target for tqdm inside a notebook: the bar is one text output updated in place (a display
    handle), not a widget. A saved notebook then holds the bar's last state as plain text, readable on GitHub or
    offline (a widget's saved fallback reads "0%"); a bar that goes away (``leave=False``) leaves an empty line."""

    def __init__(self):
        self.handle = None

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip("\n")
        if not line or (not line.strip() and self.handle is None):  # a bare newline; nothing shown yet
            return len(text)
        from IPython.display import display

        if self.handle is None:
            self.handle = display({"text/plain": line}, raw=True, display_id=True)
        else:
            self.handle.update({"text/plain": line}, raw=True)
        return len(text)

    def flush(self) -> None:
        pass


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress(iterable=None, **kwargs):
    """A progress bar that works in notebooks and terminals, and stays quiet while grading.

    In a notebook the bar is one line of text updated in place (see :class:`_DisplayLine`), in a terminal a
    plain tqdm bar."""
    from tqdm.std import tqdm

    if _in_notebook():
        kwargs.setdefault("disable", is_grading())
        kwargs.setdefault("file", _DisplayLine())
        kwargs.setdefault("ncols", 100)
        kwargs.setdefault("mininterval", 0.5)
    else:
        kwargs.setdefault("disable", is_grading() or None)  # None: no bar when the output is not a terminal
        kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


@dataclass
class History:
    """Loss history: one mean per epoch, plus every step's loss."""

    epoch_loss: list = field(default_factory=list)  # mean training loss of each epoch
    step_loss: list = field(default_factory=list)  # loss of every optimisation step
    metrics: dict = field(default_factory=dict)  # name -> list, one value per epoch

    def log(self, name: str, value: float) -> None:
        self.metrics.setdefault(name, []).append(float(value))

    def state_dict(self) -> dict:
        return {"epoch_loss": list(self.epoch_loss), "step_loss": list(self.step_loss),
                "metrics": {k: list(v) for k, v in self.metrics.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.epoch_loss = list(state.get("epoch_loss", []))
        self.step_loss = list(state.get("step_loss", []))
        self.metrics = {k: list(v) for k, v in state.get("metrics", {}).items()}

    def __len__(self) -> int:
        return len(self.epoch_loss)


def fit(
    step_fn: Callable[[object], torch.Tensor | float],
    loader: Iterable,
    num_epochs: int,
    desc: str = "train",
    history: Optional[History] = None,
    on_epoch_end: Optional[Callable[[int, History], None]] = None,
    start_epoch: int = 0,
    checkpoint=None,
) -> History:
    """Run ``step_fn`` on every batch of ``loader`` for ``num_epochs`` epochs.

    ``step_fn`` does one optimisation step and returns the batch loss. ``on_epoch_end(epoch,
    history)`` runs after every epoch (checkpointing, evaluation). ``start_epoch`` lets a resumed
    run continue its history without repeating finished epochs.

    ``checkpoint``: a :class:`course_utils.checkpoint.Checkpointer` holding the objects to save
    (``Checkpointer(None, "autoencoder", model=model, optimizer=optimizer)``), or
    ``(checkpointer, {"model": model, ...})``. The run is saved after every epoch (after
    ``on_epoch_end``); when a checkpoint exists, training resumes after its last finished epoch and
    the returned History holds the whole run, earlier epochs included.
    """
    history = history if history is not None else History()
    if num_epochs < 0:
        raise ValueError(f"num_epochs must be >= 0, got {num_epochs}")
    checkpointer = None
    if checkpoint is None:
        from .checkpoint import active_checkpointer

        checkpoint = active_checkpointer()  # inside `with resumable(...)`
    if checkpoint is not None:
        from .checkpoint import as_checkpointer

        checkpointer = as_checkpointer(checkpoint)
        if getattr(checkpointer, "from_notebook", False):
            import inspect

            from .checkpoint import code_fingerprint

            frames = [info.frame for info in inspect.stack(0)[1:]]
            checkpointer.code = code_fingerprint(checkpointer.objects.values(), frames)
            del frames
        state = checkpointer.load_latest()
        if state is not None and checkpointer.code and state.get("code") != checkpointer.code:
            print(f"{checkpointer.name}: the saved run ({state['epochs_done']} epochs) was trained by other code than "
                  f"yours now, so training starts afresh.")
            checkpointer.clear()
            state = None
        if state is not None:
            start_epoch = checkpointer.restore(state, history)
            if not is_grading():
                print(f"Resuming {checkpointer.name} from {state['path']}: {start_epoch}/{num_epochs} epochs done by "
                      f"the same code (set COURSE_RESTART_TRAINING=1, or restart=True, to train from scratch).")
    try:
        per_epoch = len(loader)
    except TypeError:
        per_epoch = None
    # One bar for the whole run (not one per epoch): its last state, with the final loss, is what a saved
    # notebook shows.
    bar = progress(total=per_epoch * num_epochs if per_epoch is not None else None, desc=desc, unit="batch",
                   initial=per_epoch * start_epoch if per_epoch is not None else 0)
    for epoch in range(start_epoch, num_epochs):
        total, count = 0.0, 0
        bar.set_postfix_str(f"epoch {epoch + 1}/{num_epochs}" + (f", loss {history.epoch_loss[-1]:.4f}"
                                                                 if history.epoch_loss else ""), refresh=False)
        for batch in loader:
            loss = step_fn(batch)
            if loss is None:
                raise TypeError("step(batch) returned None: it must return the loss of the batch (end it with "
                                "`return loss`), so that fit can record the losses")
            try:
                value = float(loss.detach() if torch.is_tensor(loss) else loss)
            except (TypeError, ValueError, RuntimeError):
                raise TypeError(f"step(batch) must return the loss as one number (a 0-d tensor or a float), "
                                f"not {type(loss).__name__}"
                                + (f" of shape {tuple(loss.shape)}" if torch.is_tensor(loss) else "")) from None
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"the loss became {value} at epoch {epoch + 1}; lower the learning rate or check the loss function"
                )
            history.step_loss.append(value)
            total, count = total + value, count + 1
            bar.update(1)
        history.epoch_loss.append(total / max(count, 1))
        bar.set_postfix_str(f"epoch {epoch + 1}/{num_epochs}, loss {history.epoch_loss[-1]:.4f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
        if checkpointer is not None:
            checkpointer.save(epoch + 1, history)
    bar.close()
    return history


@torch.no_grad()
def evaluate_accuracy(model: Callable, loader: Iterable, device=None, desc: str = "evaluate") -> float:
    """Top-1 accuracy (in percent) of ``model`` (images -> logits) over ``(images, labels)`` batches."""
    correct = total = 0
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    for images, labels in progress(loader, desc=desc, leave=False, unit="batch"):
        if device is not None:
            images, labels = images.to(device), labels.to(device)
        logits = model(images)
        if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
            raise ValueError(f"expected logits of shape (B, num_classes) with B={labels.shape[0]}, obtained {tuple(logits.shape)}")
        correct += (logits.argmax(1) == labels).sum().item()
        total += labels.numel()
    if was_training and hasattr(model, "train"):
        model.train()
    if total == 0:
        raise ValueError("the loader yielded no examples; check the dataset split")
    return 100.0 * correct / total
