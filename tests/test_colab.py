"""The setup cell: config loading, Colab/local detection, Drive, device advice, generated source."""
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from course_utils import colab
from course_utils.colab import (
    ConfigError, colab_badge_markdown, load_config, open_in_colab_url, parse_toml, setup, setup_cell_source,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
GOOD_CONFIG = """
[course]
name = "Representation Learning"  # shown in the banner
repository = "https://github.com/acme/replearn.git"
branch = "spring-2026"

[install]
package = "https://github.com/acme/replearn/releases/download/v0.1.0/course_utils-0.1.0-py3-none-any.whl"
version = "0.1.0"

[colab]
mount_drive = false
drive_folder = "replearn"
"""


def write(tmp_path, text, name="course_config.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- configuration ---------------------------------------------------------------------------
def test_repository_config_loads_and_lists_its_placeholders():
    config = load_config(REPO_ROOT / "course_config.toml")
    assert config.branch == "main" and config.version and config.install_package
    assert config.placeholders() == ["[course] repository", "[install] package"]
    with pytest.raises(ConfigError, match="replace the placeholders"):
        config.check_ready()


def test_config_values_and_normalisation(tmp_path):
    config = load_config(write(tmp_path, GOOD_CONFIG))
    assert config.repository == "https://github.com/acme/replearn"  # .git dropped
    assert (config.branch, config.mount_drive, config.drive_folder) == ("spring-2026", False, "replearn")
    assert config.check_ready() is config
    assert config.colab_url("assignments/ps1/a.ipynb") == (
        "https://colab.research.google.com/github/acme/replearn/blob/spring-2026/assignments/ps1/a.ipynb")


def test_builtin_parser_agrees_with_tomllib():
    text = (REPO_ROOT / "course_config.toml").read_text() + '\n[extra]\nlist = [\n  "a", # c\n  \'b\',\n]\nn = 3\nx = 1.5\n'
    assert colab._parse_toml_subset(text) == parse_toml(text)
    assert colab._parse_toml_subset(GOOD_CONFIG) == parse_toml(GOOD_CONFIG)


@pytest.mark.parametrize("text, message", [
    ('[course]\nname = "x"\nrepository = https://github.com/a/b\n', "line 3"),  # unquoted string
    ('[install]\npackage = "x"\nversion = "1"\n', r"\[course\] section is missing"),
    ('[course]\nname = "x"\nrepository = "https://github.com/a/b"\n[install]\nversion = "1"\n',
     r"\[install\] has no `package`"),
    ('[course]\nname = "x"\nrepository = "https://gitlab.com/a/b"\n[install]\npackage = "p"\nversion = "1"\n',
     "must look like https://github.com"),
    ('[course]\nname = ""\nrepository = "https://github.com/a/b"\n[install]\npackage = "p"\nversion = "1"\n',
     "name must be a non-empty string"),
    ('[course]\nname = "x"\nrepository = "https://github.com/a/b"\n[install]\npackage = "p"\nversion = "1"\n'
     '[colab]\nmount_drive = "yes"\n', "mount_drive must be true or false"),
])
def test_config_errors_say_what_to_fix(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_builtin_parser_errors_name_the_line():
    with pytest.raises(ConfigError, match="line 2: .*strings need quotes"):
        colab._parse_toml_subset('[course]\nrepository = https://github.com/a/b\n')
    with pytest.raises(ConfigError, match="line 1: .*closing quote"):
        colab._parse_toml_subset('name = "open\n')


def test_missing_config_file_is_explained(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setenv("COURSE_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match="COURSE_CONFIG=.*does not name an existing file"):
        load_config()


# --- links -------------------------------------------------------------------------------------
def test_open_in_colab_url_and_badge():
    url = open_in_colab_url("https://github.com/acme/replearn/", "main", "assignments/ps 1/nb.ipynb")
    assert url == "https://colab.research.google.com/github/acme/replearn/blob/main/assignments/ps%201/nb.ipynb"
    assert open_in_colab_url("acme/replearn", "main", "./a.ipynb").endswith("/acme/replearn/blob/main/a.ipynb")
    badge = colab_badge_markdown("acme/replearn", "main", "a.ipynb")
    assert badge == ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                     "(https://colab.research.google.com/github/acme/replearn/blob/main/a.ipynb)")


@pytest.mark.parametrize("repo, path, message", [
    ("https://github.com/<org>/<repo>", "a.ipynb", "placeholder"),
    ("https://gitlab.com/a/b", "a.ipynb", "expected a GitHub repository"),
    ("acme/replearn", "notes.md", "does not end in .ipynb"),
])
def test_open_in_colab_url_rejects_bad_input(repo, path, message):
    with pytest.raises(ValueError, match=message):
        open_in_colab_url(repo, "main", path)


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
    assert "No GPU is available" in out and "quick" in out and "Run mode: quick" in out
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


# --- the generated first cell -------------------------------------------------------------------
def test_setup_cell_source_embeds_the_target_and_runs_in_a_fresh_process(tmp_path):
    config = load_config(write(tmp_path, GOOD_CONFIG))
    source = setup_cell_source(config)
    compile(source, "setup_cell", "exec")
    assert repr(config.install_package) in source and "import course_utils.colab" in source
    assert source.index("def ensure_course_utils") < source.index("import course_utils.colab")
    script = tmp_path / "cell.py"
    script.write_text(source)
    env = {**os.environ, "COURSE_SKIP_INSTALL": "1", "COURSE_DATA_DIR": str(tmp_path / "data")}
    env.pop("COURSE_MODE", None)
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert "torch" in run.stdout and "course_utils" in run.stdout and "Run mode:" in run.stdout
    assert "No GPU is available" in run.stdout


def test_setup_cell_source_accepts_a_dict_and_a_path(tmp_path):
    path = write(tmp_path, GOOD_CONFIG)
    assert setup_cell_source(path) == setup_cell_source(parse_toml(GOOD_CONFIG))


# --- the real install path (pip, offline, into a throw-away virtual environment) ---------------
@pytest.mark.slow
def test_install_puts_the_kit_and_its_missing_deps_in_and_keeps_torch(tmp_path):
    """ensure_course_utils as the setup cell runs it: a newer course_utils wheel and a dependency
    that is missing get installed; torch, already there, is not touched."""
    import shutil

    import torch

    from autograder.bundle import build_wheel

    def build(src, dist):
        code = "import sys, setuptools.build_meta as b; b.build_wheel(sys.argv[1])"
        subprocess.run([sys.executable, "-c", code, str(dist)], cwd=src, check=True, capture_output=True)

    dep = tmp_path / "dep"  # a dependency the environment lacks, served from a local folder (no network)
    (dep / "kit_probe_dep").mkdir(parents=True)
    (dep / "kit_probe_dep" / "__init__.py").write_text("VALUE = 7\n")
    (dep / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=61"]\n'
                                        'build-backend = "setuptools.build_meta"\n'
                                        '[project]\nname = "kit-probe-dep"\nversion = "1.0"\n')
    build(dep, tmp_path / "links")
    repo = tmp_path / "repo"  # the kit at a newer version, depending on it
    shutil.copytree(REPO_ROOT / "course_utils", repo / "course_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    init = repo / "course_utils" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.1"'))
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    (repo / "pyproject.toml").write_text(pyproject.replace('"pillow",', '"pillow",\n    "kit-probe-dep",', 1))
    wheel = build_wheel(repo, tmp_path / "wheels")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path / "links")}
    env.pop("COURSE_SKIP_INSTALL", None)
    install = ("import course_utils.colab as c, sys\n"
               "print(c.ensure_course_utils(sys.argv[1], '0.1.1', quiet=True))\n")
    run = subprocess.run([python, "-c", install, str(wheel)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "restart the runtime" in run.stdout  # 0.1.0 was already imported in that process
    check = ("import course_utils, kit_probe_dep, torch\n"
             "print(course_utils.__version__, kit_probe_dep.VALUE, torch.__version__)\n")
    run = subprocess.run([python, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0.1.1", "7", torch.__version__]
    site = next(venv.glob("lib/python*/site-packages"))
    assert (site / "course_utils").is_dir() and not (site / "torch").exists()
