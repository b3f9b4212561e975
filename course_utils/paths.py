"""Where the kit keeps data, caches and checkpoints.

Everything lives under one data directory: ``$COURSE_DATA_DIR`` when set (the setup cell points
it at Google Drive in Colab so datasets survive a disconnect), else ``~/.cache/course_kit``.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "COURSE_DATA_DIR"


def data_dir() -> Path:
    """The root data directory (created if missing)."""
    root = Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "course_kit").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    """A sub-directory of the data directory for generated caches (created if missing)."""
    path = data_dir().joinpath("cache", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_dir(*parts: str) -> Path:
    """A sub-directory of the data directory for training checkpoints (created if missing)."""
    path = data_dir().joinpath("checkpoints", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
