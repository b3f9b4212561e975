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


def progress(iterable=None, **kwargs):
    """tqdm that works in notebooks and terminals, and stays quiet while grading."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", is_grading() or None)
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
        state = checkpointer.load_latest()
        if state is not None:
            start_epoch = checkpointer.restore(state, history)
            if not is_grading():
                print(f"Resuming {checkpointer.name} from {state['path']}: {start_epoch}/{num_epochs} epochs done.")
    epochs = progress(range(start_epoch, num_epochs), desc=desc, unit="epoch", initial=start_epoch, total=num_epochs)
    for epoch in epochs:
        total, count = 0.0, 0
        for batch in progress(loader, desc=f"epoch {epoch + 1}/{num_epochs}", leave=False, unit="batch"):
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
        history.epoch_loss.append(total / max(count, 1))
        epochs.set_postfix(loss=f"{history.epoch_loss[-1]:.4f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
        if checkpointer is not None:
            checkpointer.save(epoch + 1, history)
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
