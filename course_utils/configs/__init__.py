"""Run configurations: every number a run mode changes, one module per problem set.

``course_utils/configs/<problem set>.py`` holds a dict ``MODES`` with one entry per run mode (``full``,
``quick``, ``grading``): data sizes, epochs, backbones, learning rates. The notebook reads it once::

    from course_utils.configs import run_config
    RUN = run_config("autoencoder_probing", MODE)
    AE_EPOCHS, PROBE_EPOCHS = RUN.ae_epochs, RUN.probe_epochs

and the library's data loaders take their per-mode defaults from the same modules, so a size is written
in one place. To change a run size, change it here (and re-measure what the notebook states).
"""
from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import Optional

from ..modes import MODES, get_mode


class RunConfig:
    """The settings of one problem set in one run mode, read as attributes (``RUN.ae_epochs``)."""

    def __init__(self, pset_id: str, mode: str, values: dict):
        object.__setattr__(self, "pset_id", pset_id)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "values", MappingProxyType(dict(values)))

    def __getattr__(self, name):
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(f"the run configuration of {self.pset_id} has no setting {name!r}; it has: "
                                 f"{', '.join(self.values)} (course_utils/configs/{self.pset_id}.py)") from None

    def __setattr__(self, name, value):
        raise AttributeError(f"run configurations are read-only: change course_utils/configs/{self.pset_id}.py")

    def __repr__(self) -> str:
        return f"{self.pset_id} in {self.mode} mode: " + ", ".join(f"{k}={v!r}" for k, v in self.values.items())


def mode_table(pset_id: str) -> dict:
    """``{mode: {setting: value}}`` of a problem set (its module's ``MODES``)."""
    try:
        module = importlib.import_module(f"{__name__}.{pset_id}")
    except ModuleNotFoundError:
        raise KeyError(f"no run configuration for {pset_id!r} (course_utils/configs/{pset_id}.py)") from None
    table = module.MODES
    if set(table) != set(MODES):
        raise ValueError(f"course_utils/configs/{pset_id}.py must give every run mode ({', '.join(MODES)})")
    return table


def run_config(pset_id: str, mode: Optional[str] = None) -> RunConfig:
    """The settings of problem set ``pset_id`` in run mode ``mode`` (default: the current one)."""
    mode = mode or get_mode()
    table = mode_table(pset_id)
    if mode not in table:
        raise ValueError(f"unknown run mode {mode!r}; use one of {', '.join(MODES)}")
    return RunConfig(pset_id, mode, table[mode])


__all__ = ["RunConfig", "run_config", "mode_table"]
