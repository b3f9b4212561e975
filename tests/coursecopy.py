"""Helpers for tests that run nbgrader itself: a copy of the course as a fresh clone has it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from autograder.problem_sets import REPO_ROOT


def copy_course(dest: Path, root: Path = REPO_ROOT) -> Path:
    """Copy the files git tracks (as they are in the working tree) into ``dest``: no ``course/``, nothing
    git ignores, as in a fresh clone."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    for name in filter(None, listed.decode().split("\0")):
        src = root / name
        if src.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    assert not (dest / "course").exists()
    return dest


def nbgrader(course: Path, *args, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` in ``course`` (its nbgrader_config.py applies), offline, on the CPU."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "NBGRADER_"))}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
                "MPLBACKEND": "Agg", "COURSE_SKIP_INSTALL": "1", "COURSE_MOUNT_DRIVE": "0"})
    exe = Path(sys.executable).with_name("nbgrader")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "nbgrader"]
    return subprocess.run(cmd + list(args), cwd=course, env=env, capture_output=True, text=True, timeout=timeout)
