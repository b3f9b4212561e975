"""The setup cell's work in the student's runtime: Colab or local, install, Google Drive, device, versions.

Every released notebook starts with one short code cell (written by the instructor's
``autograder.course_config.setup_cell_source`` from ``course_config.toml``). It is safe to run again. It

1. pip-installs the course wheel, with the extras its problem set needs (``course-utils[clip] @ <url>``), only
   when ``course_utils`` is not importable at the expected version (and ``COURSE_SKIP_INSTALL=1`` is not set),
   **without replacing the runtime's torch**;
2. calls :func:`setup`, which installs what the notebook's extras need when an already installed
   ``course_utils`` lacks it, mounts Google Drive when asked (so datasets and checkpoints survive a
   disconnect), picks the GPU and prints the versions that matter.

How torch is protected. Colab ships a CUDA build of torch that matches its GPU driver; letting pip
replace it (because some requirement wants another version) would download gigabytes and can leave
a broken runtime. So every install here runs under a pip constraints file that pins the torch,
torchvision and torchaudio versions already installed (:func:`torch_pins`): pip adds what is missing,
and if a dependency ever truly needed another torch, pip stops with a clear conflict instead of
silently replacing it.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

SKIP_ENV = "COURSE_SKIP_INSTALL"
MOUNT_ENV = "COURSE_MOUNT_DRIVE"
DRIVE_MOUNT_POINT = "/content/drive"
TORCH_PACKAGES = ("torch", "torchvision", "torchaudio")  # never replaced by an install
# Said (by the setup cell or ensure_course_utils) when a freshly updated course_utils needs a runtime restart.
RESTART_PHRASE = "restart the runtime"
RESTART_ADVICE = f"{RESTART_PHRASE} (Runtime -> Restart session)"


# --------------------------------------------------------------------------------------------
# Installing (under constraints that keep the installed torch)
# --------------------------------------------------------------------------------------------
def _truthy(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def install_skipped() -> bool:
    """``COURSE_SKIP_INSTALL`` is set to something other than empty / 0 / false / no."""
    return (os.environ.get(SKIP_ENV) or "").strip().lower() not in ("", "0", "false", "no")


def torch_pins() -> list:
    """``name==version`` of the installed torch, torchvision and torchaudio: the constraints every install keeps."""
    import importlib.metadata as md

    pins = []
    for name in TORCH_PACKAGES:
        try:
            pins.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:
            pass
    return pins


def pip_install(requirements: Iterable[str], upgrade: bool = False) -> None:
    """``pip install -q`` the requirements under constraints pinning :func:`torch_pins`; a RuntimeError
    with pip's output (and what to do) when pip fails."""
    requirements = list(requirements)
    with tempfile.TemporaryDirectory() as tmp:
        constraints = os.path.join(tmp, "constraints.txt")
        with open(constraints, "w") as fh:
            fh.write("".join(f"{pin}\n" for pin in torch_pins()))
        command = [sys.executable, "-m", "pip", "install", "-q", *(["--upgrade"] if upgrade else []),
                   "-c", constraints, *requirements]
        run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    importlib.invalidate_caches()
    if run.returncode != 0:
        raise RuntimeError(f"`pip install {' '.join(requirements)}` failed:\n{run.stdout[-3000:]}\n"
                           "Check the install target in the first cell and your internet connection, "
                           "then run the cell again.")


def _requirement(text: str):
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - pip vendors packaging
        from pip._vendor.packaging.requirements import Requirement
    return Requirement(text)


def missing_requirements(extras: Iterable[str] = ()) -> list:
    """Requirements of the installed course_utils distribution (its own and those of ``extras``, e.g.
    ``["clip"]``) that are not installed, or not at a version they accept; torch is never listed."""
    import importlib.metadata as md

    extras = list(extras)
    dists = md.packages_distributions().get("course_utils", []) if hasattr(md, "packages_distributions") else []
    missing = []
    for dist in dict.fromkeys(dists or ["course-utils"]):
        try:
            requires = md.requires(dist) or []
        except md.PackageNotFoundError:
            continue
        for text in requires:
            req = _requirement(text)
            if req.name.lower() in TORCH_PACKAGES:
                continue
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras or [""]):
                continue
            try:
                have = md.version(req.name)
            except md.PackageNotFoundError:
                have = None
            if have is None or (req.specifier and not req.specifier.contains(have, prereleases=True)):
                spec = f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}{req.specifier}"
                if spec not in missing:
                    missing.append(spec)
    return missing


def ensure_course_utils(target: Optional[str] = None, version: Optional[str] = None,
                        extras: Iterable[str] = ()) -> str:
    """Make this runtime hold course_utils ``version`` and everything its ``extras`` need; return a short
    note saying what happened (one line, for the setup summary).

    The setup cell installs the wheel itself when course_utils is missing or outdated; this covers the
    rest: an importable course_utils of another version (installed from ``target``, after which the
    runtime must restart) and a right one lacking the packages of an extra (e.g. the kit installed
    without ``[clip]``, then simple_clip opened). ``COURSE_SKIP_INSTALL=1`` skips everything.
    """
    import course_utils

    if install_skipped():
        return f"install skipped ({SKIP_ENV} is set)"
    have = getattr(course_utils, "__version__", "?")
    if version and have != version:
        if not target:
            return f"course_utils {have} installed (no install target given to get {version})"
        pip_install([target], upgrade=True)
        return f"course_utils updated from {have} to {version}: {RESTART_ADVICE}, then run this cell again"
    missing = missing_requirements(extras)
    if missing:
        pip_install(missing)
        return f"course_utils {have} already installed; added {', '.join(missing)}"
    return f"course_utils {have} already installed"


# --------------------------------------------------------------------------------------------
# Colab, Drive, device, versions
# --------------------------------------------------------------------------------------------
def in_colab() -> bool:
    """True inside Google Colab (its ``google.colab`` module is loaded or importable)."""
    if "google.colab" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        return False


@dataclass
class SetupInfo:
    """What :func:`setup` found and did."""

    in_colab: bool  # running inside Google Colab
    device: str  # "cuda" or "cpu": where the notebook's tensors go
    gpu_name: Optional[str]  # the GPU's name, None without one
    mode: str  # run mode: full | quick | grading
    data_dir: str  # where datasets, caches and checkpoints are kept (COURSE_DATA_DIR)
    drive_mounted: bool  # data_dir is on Google Drive (survives a disconnect)
    install_note: str  # what happened to the course_utils install
    restart_needed: bool  # the runtime must be restarted to load a freshly updated course_utils
    versions: dict = field(default_factory=dict)  # package -> version string
    messages: list = field(default_factory=list)  # advice printed for the student

    def summary(self) -> str:
        width = max(len(k) for k in self.versions) if self.versions else 0
        lines = [f"  {k:<{width}}  {v}" for k, v in self.versions.items()]
        where = "Google Colab" if self.in_colab else f"local ({platform.node() or 'this machine'})"
        head = [f"Environment: {where}", f"Device: {self.device}" + (f" ({self.gpu_name})" if self.gpu_name else ""),
                f"Data directory: {self.data_dir}" + (" (Google Drive)" if self.drive_mounted else ""),
                f"Install: {self.install_note}", "Versions:"]
        return "\n".join(head + lines + self.messages)


def collect_versions() -> dict:
    """Versions that matter when something goes wrong: python, torch, torchvision, CUDA, GPU,
    course_utils and transformers (when installed; not imported, to stay fast)."""
    import importlib.metadata as md

    import course_utils

    versions = {"python": platform.python_version()}
    try:
        import torch

        versions["torch"] = torch.__version__
        try:  # read from the package metadata: importing torchvision costs seconds
            versions["torchvision"] = md.version("torchvision")
        except md.PackageNotFoundError:  # pragma: no cover
            versions["torchvision"] = "not installed"
        cuda_build = torch.version.cuda
        if torch.cuda.is_available():
            versions["CUDA"] = f"{cuda_build} (available)"
            versions["GPU"] = torch.cuda.get_device_name(0)
        else:
            versions["CUDA"] = f"{cuda_build} build, no GPU visible" if cuda_build else "none (CPU-only torch)"
            versions["GPU"] = "none"
    except ImportError:  # pragma: no cover
        versions["torch"] = "NOT INSTALLED"
    versions["course_utils"] = getattr(course_utils, "__version__", "?")
    try:
        versions["transformers"] = md.version("transformers")
    except md.PackageNotFoundError:
        pass
    return versions


def _mount_drive(folder: str, messages: list) -> Optional[Path]:
    """Mount Google Drive (once) and return the course folder in it, or None with advice."""
    my_drive = Path(DRIVE_MOUNT_POINT) / "MyDrive"
    if not my_drive.is_dir():
        try:
            from google.colab import drive  # type: ignore

            drive.mount(DRIVE_MOUNT_POINT)
        except Exception as err:  # declined authorisation, timeout, ...
            messages.append(
                f"Google Drive was not mounted ({type(err).__name__}: {err}). Datasets and checkpoints are kept on "
                "the Colab machine and are lost when it disconnects; run this cell again to retry."
            )
            return None
    target = my_drive / folder
    target.mkdir(parents=True, exist_ok=True)
    return target


def setup(install_target: Optional[str] = None, mount_drive: Optional[bool] = None,
          skip_install: Optional[bool] = None, quiet: bool = False, *, version: Optional[str] = None,
          drive_folder: str = "course_kit", extras: Iterable[str] = (), installed: bool = False) -> SetupInfo:
    """Prepare this runtime for the course (safe to re-run) and print what it found.

    - ``install_target``: pip requirement of the course library (the setup cell passes the one from
      ``course_config.toml``, with the notebook's ``extras`` in it); ``installed=True`` says the setup cell
      has just installed it. Otherwise :func:`ensure_course_utils` installs it when ``version`` differs
      from the importable course_utils, and adds what ``extras`` (e.g. ``["clip"]``) need when it is
      missing. ``skip_install=True`` or ``COURSE_SKIP_INSTALL=1`` skips installing.
    - ``mount_drive``: mount Google Drive (Colab only) and keep data in ``My Drive/<drive_folder>``
      so datasets and checkpoints survive a disconnect. ``None`` reads ``COURSE_MOUNT_DRIVE``.
    - Picks the GPU when there is one; otherwise says how to get one and that ``quick`` mode runs on
      the CPU. Prints python / torch / torchvision / CUDA / GPU / course_utils / transformers versions.
      The run mode is in the result (``.mode``), not printed: the notebook's next cell prints it once,
      where it sets ``MODE``.
    """
    import course_utils
    from course_utils import paths
    from course_utils.modes import get_device, get_mode

    colab = in_colab()
    messages: list = []

    if skip_install:
        install_note = f"install skipped (skip_install=True); course_utils {course_utils.__version__} in use"
    elif installed:  # by the setup cell, a moment ago
        kept = ", ".join(torch_pins()) or "no torch was installed"
        install_note = f"course_utils {course_utils.__version__} installed from {install_target} (kept {kept})"
    else:  # a no-op when the right version (and its extras) is there; honours COURSE_SKIP_INSTALL
        install_note = ensure_course_utils(install_target, version, extras)
    restart_needed = RESTART_PHRASE in install_note

    if mount_drive is None:
        mount_drive = _truthy(os.environ.get(MOUNT_ENV))
    drive_mounted = False
    if mount_drive and colab:
        folder = _mount_drive(drive_folder, messages)
        if folder is not None:
            os.environ[paths.ENV_VAR] = str(folder)
            drive_mounted = True
    elif mount_drive:
        messages.append("Google Drive is mounted only in Colab; here data stays in the local data directory "
                        f"(set {paths.ENV_VAR} to move it).")
    elif colab:
        messages.append("Google Drive is not mounted: downloaded data and checkpoints are lost when Colab "
                        "disconnects. Pass mount_drive=True to keep them in your Drive.")
    data_dir = str(paths.data_dir())

    versions = collect_versions()
    gpu = versions.get("GPU")
    gpu_name = gpu if gpu and gpu != "none" else None
    device = get_device().type
    if device == "cpu":
        advice = "No GPU is available: everything runs on the CPU."
        if colab:
            advice += (" To get a GPU in Colab: Runtime -> Change runtime type -> Hardware accelerator: GPU "
                       "(e.g. T4) -> Save, then run this cell again.")
        advice += (" The `quick` run mode (built-in shapes data, few epochs) works on the CPU: "
                   "os.environ['COURSE_MODE'] = 'quick'.")
        messages.append(advice)
    mode = get_mode()
    if restart_needed:
        messages.append(install_note)

    info = SetupInfo(in_colab=colab, device=device, gpu_name=gpu_name, mode=mode, data_dir=data_dir,
                     drive_mounted=drive_mounted, install_note=install_note, restart_needed=restart_needed,
                     versions=versions, messages=messages)
    if not quiet:
        print(info.summary())
    return info


__all__ = [
    "SetupInfo", "ensure_course_utils", "missing_requirements", "pip_install", "torch_pins", "in_colab", "setup",
    "collect_versions",
]
