"""Checkpoint every epoch, resume after a disconnect.

Colab disconnects idle or long sessions and throws away the machine. A :class:`Checkpointer` saves
everything needed to continue a training run after each epoch, and the training harness picks up
where it stopped::

    from course_utils.checkpoint import Checkpointer
    from course_utils.training import fit

    ckpt = Checkpointer(None, "autoencoder", model=model, optimizer=optimizer)
    history = fit(step, loader, num_epochs=100, checkpoint=ckpt)  # run this cell again after a disconnect

``None`` as directory means ``<data directory>/checkpoints`` (on Google Drive when the setup cell
mounted it, so checkpoints outlive the Colab machine).

What one checkpoint holds: the ``state_dict()`` of every object you pass (models, optimizers,
schedulers, AMP scalers; ``torch.Generator`` states too), the number of finished epochs, the loss
:class:`~course_utils.training.History`, and the random number generator states of Python,
NumPy and torch (CPU and CUDA). With the RNG states restored, a resumed run draws the same shuffles
and dropout masks as an uninterrupted one, so it ends with the same weights.

Writes are atomic: a checkpoint is written to a temporary file and renamed over the final name, so
a kill in the middle of a save never damages the last good checkpoint. The newest ``keep`` files
are kept; if the newest cannot be read, :meth:`Checkpointer.load_latest` falls back to the one
before and says so.
"""
from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Optional, Union

import torch

from .modes import is_grading

FORMAT = "course_kit.checkpoint/1"
_FILE = re.compile(r"^(?P<name>.+)-epoch(?P<epoch>\d{4,})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used for this run (wrong model, missing object, unreadable file)."""


def capture_rng_state() -> dict:
    """The states of Python's, NumPy's and torch's random number generators, as plain data."""
    version, internal, gauss = random.getstate()
    state = {"python": [version, list(internal), gauss], "torch": torch.get_rng_state()}
    try:
        import numpy as np

        np_state = np.random.get_state(legacy=False)
        state["numpy"] = {"bit_generator": np_state["bit_generator"],
                          "key": torch.from_numpy(np_state["state"]["key"].astype("int64")),
                          "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                          "gauss": float(np_state["gauss"])}
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Put back RNG states captured by :func:`capture_rng_state`."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy" in state:
        import numpy as np

        s = state["numpy"]
        np.random.set_state({"bit_generator": s["bit_generator"], "has_gauss": s["has_gauss"], "gauss": s["gauss"],
                             "state": {"key": s["key"].numpy().astype("uint32"), "pos": s["pos"]}})
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _frozen_keys(module: torch.nn.Module) -> set:
    """State-dict keys of a module's frozen parameters (``requires_grad=False``): training never changes them
    and the code rebuilds them (a frozen pretrained text encoder), so a checkpoint need not hold them."""
    return {name for name, p in module.named_parameters() if not p.requires_grad}


def _state_of(obj):
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if isinstance(obj, torch.nn.Module):
        frozen = _frozen_keys(obj)
        return {k: v for k, v in obj.state_dict().items() if k not in frozen}
    if hasattr(obj, "state_dict"):
        return obj.state_dict()
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}: pass objects with state_dict() / "
                    "load_state_dict() (models, optimizers, schedulers) or torch.Generator objects.")


def _load_into(obj, state) -> None:
    if isinstance(obj, torch.Generator):
        obj.set_state(state)
    elif isinstance(obj, torch.nn.Module):
        missing, unexpected = obj.load_state_dict(state, strict=False)
        missing = sorted(set(missing) - _frozen_keys(obj))
        if missing or unexpected:
            raise RuntimeError(f"missing keys {missing[:5]}, unexpected keys {sorted(unexpected)[:5]}")
    else:
        obj.load_state_dict(state)


def _code_parts(code) -> tuple:
    """What a code object computes, without where it was defined (the cell's file name and line numbers change
    from one kernel to the next): its bytecode, constants (nested functions included), names."""
    consts = tuple(_code_parts(c) if hasattr(c, "co_code") else repr(c) for c in code.co_consts)
    return code.co_code, consts, code.co_names, code.co_varnames


def code_fingerprint(objects=(), frames=()) -> str:
    """A fingerprint of the notebook code a training run depends on: the classes of the tracked models defined in
    the notebook (``__main__``), and the notebook functions on the call stack (``train_ae`` calling ``fit``).
    Changing any of them changes the fingerprint; re-running the same code in a new kernel does not."""
    import hashlib

    parts = []
    for obj in objects:
        if isinstance(obj, torch.nn.Module):
            for cls in sorted({type(m) for m in obj.modules() if type(m).__module__ == "__main__"},
                              key=lambda c: c.__qualname__):
                parts.append((cls.__qualname__, tuple(_code_parts(f.__code__) for _, f in sorted(vars(cls).items())
                                                      if hasattr(f, "__code__"))))
    for frame in frames:
        if frame.f_globals.get("__name__") == "__main__" and frame.f_code.co_name != "<module>":
            parts.append((frame.f_code.co_name, _code_parts(frame.f_code)))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


class Checkpointer:
    """Saves a training run after every epoch and restores it after a disconnect.

    - ``directory``: where checkpoints go; ``None`` means ``<data directory>/checkpoints``.
    - ``name``: the run's name (file names are ``<name>-epoch0007.pt``: 7 epochs done). Use one name
      per thing you train, e.g. ``"autoencoder"`` and ``"classifier_supervised"``.
    - ``keep``: how many recent checkpoints to keep (older ones are deleted).
    - ``**objects``: what to save, by name, e.g. ``model=model, optimizer=optimizer,
      scheduler=scheduler``. More can be added with :meth:`track`.
    """

    def __init__(self, directory: Union[str, Path, None] = None, name: str = "run", *, keep: int = 2, **objects):
        if not re.match(r"^[A-Za-z0-9_.-]+$", name or ""):
            raise ValueError(f"checkpoint name {name!r} must use letters, digits, '_', '-' or '.' only")
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        if directory is None:
            from .paths import checkpoint_dir

            directory = checkpoint_dir()
        self.directory = Path(directory).expanduser()
        self.name = name
        self.keep = keep
        self.code: Optional[str] = None  # fingerprint of the code that trains (see code_fingerprint), when known
        self.objects: dict = {}
        self.track(**objects)

    def track(self, **objects) -> "Checkpointer":
        """Add objects to save (``name=object``); returns the checkpointer."""
        for key, obj in objects.items():
            if obj is None:
                continue
            if not (isinstance(obj, torch.Generator) or (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict"))):
                _state_of(obj)  # raises the explanatory TypeError
            self.objects[key] = obj
        return self

    def __repr__(self) -> str:
        return (f"Checkpointer({str(self.directory)!r}, {self.name!r}, keep={self.keep}, "
                f"objects={sorted(self.objects)})")

    # -- files --------------------------------------------------------------------------------
    def path_for(self, epochs_done: int) -> Path:
        return self.directory / f"{self.name}-epoch{epochs_done:04d}.pt"

    def checkpoints(self) -> list:
        """This run's checkpoint files, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _FILE.match(path.name)
            if match and match.group("name") == self.name:
                found.append((int(match.group("epoch")), path))
        return [path for _, path in sorted(found)]

    def clear(self) -> None:
        """Delete this run's checkpoints (and leftovers of interrupted saves) to start over."""
        for path in self.checkpoints():
            path.unlink()
        for path in self._temporaries():
            path.unlink(missing_ok=True)

    def _temporaries(self) -> list:
        if not self.directory.is_dir():
            return []
        prefix = f".{self.name}-epoch"
        return [p for p in self.directory.iterdir() if p.name.startswith(prefix) and ".tmp-" in p.name]

    # -- saving ---------------------------------------------------------------------------------
    def save(self, epochs_done: int, history=None) -> Path:
        """Save the tracked objects, ``history`` and RNG states as the state after ``epochs_done``
        epochs. Atomic: the previous checkpoint stays intact if this is interrupted."""
        state = {
            "format": FORMAT,
            "name": self.name,
            "epochs_done": int(epochs_done),
            "objects": {key: _state_of(obj) for key, obj in self.objects.items()},
            "history": history.state_dict() if history is not None else None,
            "rng": capture_rng_state(),
            "code": self.code,
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(epochs_done)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as fh:
                torch.save(state, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old or the new file
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        for old in self.checkpoints()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    # -- loading --------------------------------------------------------------------------------
    def load_latest(self, map_location="cpu") -> Optional[dict]:
        """The newest readable checkpoint as a dict (``epochs_done``, ``objects``, ``history``,
        ``rng``, ``path``), or ``None`` when there is none. An unreadable newest file (a damaged
        disk, a copy cut short) is skipped with a warning and the one before is used."""
        for path in reversed(self.checkpoints()):
            try:
                state = _read(path, map_location)
            except Exception as err:  # noqa: BLE001 - any unreadable file: fall back to the previous one
                warnings.warn(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); "
                              "trying the previous one.", stacklevel=2)
                continue
            state["path"] = path
            return state
        return None

    def restore(self, state: dict, history=None, restore_rng: bool = True) -> int:
        """Load a checkpoint (from :meth:`load_latest`) into the tracked objects, ``history`` and the
        RNGs; return the number of epochs it had finished (the next epoch to run)."""
        where = state.get("path", self.name)
        saved = state.get("objects", {})
        missing = sorted(set(self.objects) - set(saved))
        if missing:
            raise CheckpointError(
                f"checkpoint {where} holds {sorted(saved)} but not {missing}: it was saved with other objects. "
                f"Use the same names as when it was saved, or start over with Checkpointer(...).clear()."
            )
        for key, obj in self.objects.items():
            try:
                _load_into(obj, saved[key])
            except (RuntimeError, ValueError, KeyError, TypeError) as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise CheckpointError(
                    f"checkpoint {where} does not fit `{key}` ({first}). It was saved by a different model or "
                    f"settings: start over with Checkpointer(...).clear(), or use another checkpoint name."
                ) from err
        if history is not None and state.get("history") is not None:
            history.load_state_dict(state["history"])
        if restore_rng and state.get("rng"):
            restore_rng_state(state["rng"])
        return int(state["epochs_done"])

    def resume(self, history=None, map_location="cpu") -> int:
        """Restore the newest checkpoint if there is one; return the epochs already done (0 if none)."""
        state = self.load_latest(map_location)
        return 0 if state is None else self.restore(state, history)


def _read(path: Path, map_location) -> dict:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        # A scheduler's state may hold objects the safe loader refuses. This file was written by
        # a Checkpointer of this run (its own name, its own folder), so load it fully then.
        if "weights_only" not in str(err) and "Unsupported global" not in str(err):
            raise
        state = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a course-kit checkpoint")
    return state


def as_checkpointer(checkpoint) -> Checkpointer:
    """Accept a :class:`Checkpointer`, or ``(Checkpointer, {"model": model, ...})``."""
    if isinstance(checkpoint, Checkpointer):
        return checkpoint
    if isinstance(checkpoint, (tuple, list)) and len(checkpoint) == 2 and isinstance(checkpoint[0], Checkpointer):
        return checkpoint[0].track(**dict(checkpoint[1]))
    raise TypeError("checkpoint= takes a Checkpointer (e.g. Checkpointer(None, 'autoencoder', model=model, "
                    f"optimizer=optimizer)) or (checkpointer, {{'model': model, ...}}), not {type(checkpoint).__name__}")


__all__ = ["Checkpointer", "CheckpointError", "as_checkpointer", "capture_rng_state", "code_fingerprint",
           "restore_rng_state"]


# ---- resumable training cells -----------------------------------------------------------------

_ACTIVE: list = []  # the checkpointers of the enclosing `resumable` blocks, innermost last


class resumable:  # noqa: N801 - used like a function: `with resumable(...):`
    """Make every :func:`~course_utils.training.fit` inside the block checkpoint and resume.

    For training cells that call a function the student wrote (``train_ae``), whose optimiser is
    created inside it::

        with resumable("autoencoder", model=autoencoder):
            ae_history = train_ae(autoencoder, loaders["unlabeled"], epochs=AE_EPOCHS)

    After every epoch the model weights, the loss history and the random number generator states
    are saved (to Google Drive when the setup cell mounted it). Run the cell again after a
    disconnect and training continues after the last finished epoch, with the whole history for the
    plots. The optimiser's own state (Adam's moment estimates) starts afresh on a resume, which only
    matters for the first few steps. A saved run is used only by the same code: when the notebook's classes
    of the tracked models or the notebook functions that call ``fit`` (your ``train_ae``) changed since it was
    saved, training starts afresh and says so. ``restart=True`` (or ``COURSE_RESTART_TRAINING=1``) deletes the
    saved run and trains from scratch anyway. The run mode is part of the name, so ``quick`` and ``full`` runs
    never mix. Frozen weights (a pretrained text encoder) are not saved: the code rebuilds them. Nothing is
    saved while grading, or when ``COURSE_NO_CHECKPOINTS`` is set.
    """

    def __init__(self, name: str, directory=None, restart: bool = False, **objects):
        from .modes import get_mode

        self.checkpointer = None
        if is_grading() or os.environ.get("COURSE_NO_CHECKPOINTS"):
            return
        self.checkpointer = Checkpointer(directory, f"{name}-{get_mode()}", **objects)
        self.checkpointer.from_notebook = True  # fit fingerprints the notebook code that trains
        if restart or os.environ.get("COURSE_RESTART_TRAINING", "").strip().lower() in ("1", "true", "yes"):
            self.checkpointer.clear()

    def __enter__(self) -> Optional[Checkpointer]:
        if self.checkpointer is not None:
            _ACTIVE.append(self.checkpointer)
        return self.checkpointer

    def __exit__(self, *exc) -> bool:
        if self.checkpointer is not None and _ACTIVE and _ACTIVE[-1] is self.checkpointer:
            _ACTIVE.pop()
        return False


def active_checkpointer() -> Optional[Checkpointer]:
    """The checkpointer of the innermost :class:`resumable` block, if any (used by ``fit``)."""
    return _ACTIVE[-1] if _ACTIVE else None
