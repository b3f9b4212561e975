"""The course configuration (autograder/course_config.py): reading course_config.toml, the "Open in Colab"
links, and the setup cell it writes into every notebook (a short bootstrap; course_utils.colab does the rest)."""
import importlib.metadata as md
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.course_config import (
    ConfigError, colab_badge_markdown, load_config, open_in_colab_url, parse_toml, requirement_with_extras,
    setup_cell_source,
)
from autograder.problem_sets import PROBLEM_SETS, get_problem_set, wheel_extras

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
WHEEL_URL = "https://github.com/acme/replearn/releases/download/v0.1.0/course_utils-0.1.0-py3-none-any.whl"


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


def test_toml_is_read_by_the_standard_parser():
    text = (REPO_ROOT / "course_config.toml").read_text() + '\n[extra]\nlist = [\n  "a", # c\n  \'b\',\n]\nn = 3\nx = 1.5\n'
    data = parse_toml(text)
    assert data["extra"] == {"list": ["a", "b"], "n": 3, "x": 1.5} and data["install"]["version"]
    import autograder.course_config as course_config

    assert not any(name.startswith("_parse") for name in dir(course_config))  # no hand-written parser left


@pytest.mark.parametrize("text, message", [
    ('[course]\nname = "x"\nrepository = https://github.com/a/b\n', "line 3.*strings need quotes"),  # unquoted
    ('name = "open\n', "line 1"),
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


# --- the generated first cell -------------------------------------------------------------------
@pytest.mark.parametrize("package, extras, expected", [
    (WHEEL_URL, ["clip"], f"course-utils[clip] @ {WHEEL_URL}"),
    (WHEEL_URL, [], WHEEL_URL),
    ("git+https://github.com/a/b@v0.1.0#subdirectory=pkg", ["clip"],
     "course-utils[clip] @ git+https://github.com/a/b@v0.1.0#subdirectory=pkg"),
    ("wheels/course_utils-0.1.0-py3-none-any.whl", ["clip"], "wheels/course_utils-0.1.0-py3-none-any.whl[clip]"),
    ("course-utils==0.1.0", ["clip", "clip"], "course-utils[clip]==0.1.0"),
    (f"course-utils @ {WHEEL_URL}", ["clip"], f"course-utils[clip] @ {WHEEL_URL}"),
    ("course-utils[clip]==0.1.0", ["clip"], "course-utils[clip]==0.1.0"),
])
def test_requirement_with_extras(package, extras, expected):
    assert requirement_with_extras(package, extras) == expected


def test_setup_cell_is_a_short_bootstrap(tmp_path):
    config = load_config(write(tmp_path, GOOD_CONFIG))
    source = setup_cell_source(config, extras=["clip"])
    compile(source, "setup_cell", "exec")
    lines = source.rstrip("\n").splitlines()
    assert len(lines) <= 23, source
    assert "def " not in source  # the logic lives in course_utils.colab, not in the notebook
    assert f"COURSE_PACKAGE = 'course-utils[clip] @ {WHEEL_URL}'" in source
    assert "COURSE_VERSION = '0.1.0'" in source and "extras=['clip']" in source
    assert "from course_utils.colab import setup" in source and "drive_folder='replearn'" in source
    assert '"-c", _pins.name' in source  # the installed torch is pinned by a constraints file


def test_setup_cell_source_accepts_a_dict_and_a_path(tmp_path):
    path = write(tmp_path, GOOD_CONFIG)
    assert setup_cell_source(path) == setup_cell_source(parse_toml(GOOD_CONFIG))


def test_setup_cell_runs_offline_in_a_fresh_process(tmp_path):
    """With COURSE_SKIP_INSTALL=1 the cell installs nothing and course_utils.colab.setup prints one install line,
    the versions and the CPU advice; the run mode is left to the notebook's next cell (printed once)."""
    source = setup_cell_source(load_config(write(tmp_path, GOOD_CONFIG)), extras=["clip"])
    script = tmp_path / "cell.py"
    script.write_text(source)
    env = {**os.environ, "COURSE_SKIP_INSTALL": "1", "COURSE_DATA_DIR": str(tmp_path / "data")}
    env.pop("COURSE_MODE", None)
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert "torch" in run.stdout and "course_utils" in run.stdout and "No GPU is available" in run.stdout
    assert run.stdout.count("Install:") == 1 and "install skipped (COURSE_SKIP_INSTALL is set)" in run.stdout
    assert "Run mode:" not in run.stdout


class FakePip:
    """Stands in for `subprocess.run([python, -m, pip, install, ...])` in the setup cell: records the command
    and the constraints file, and "installs" by calling ``then``."""

    def __init__(self, then=None, returncode=0):
        self.calls, self.constraints, self.then, self.returncode = [], [], then, returncode

    def __call__(self, command, **kwargs):
        assert command[1:4] == ["-m", "pip", "install"], command
        self.calls.append(command)
        self.constraints.append(Path(command[command.index("-c") + 1]).read_text())
        if self.then:
            self.then()
        return subprocess.CompletedProcess(command, self.returncode, stdout="ERROR: no such wheel\n", stderr="")


def run_cell(source, monkeypatch, fake):
    monkeypatch.delenv("COURSE_SKIP_INSTALL", raising=False)
    monkeypatch.delenv("COURSE_MODE", raising=False)
    monkeypatch.setattr(subprocess, "run", fake)
    namespace = {}
    exec(compile(source, "setup_cell", "exec"), namespace)
    return namespace


def test_setup_cell_installs_when_course_utils_is_missing_and_says_so_once(tmp_path, monkeypatch, capsys):
    """First run on a fresh runtime: one pip call (the wheel with its extras, torch pinned), then one accurate
    install line (no "already installed")."""
    import course_utils

    source = setup_cell_source(load_config(write(tmp_path, GOOD_CONFIG)), extras=["clip"])
    for name in [m for m in sys.modules if m == "course_utils" or m.startswith("course_utils.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "course_utils", None)  # not importable
    fake = FakePip(then=lambda: sys.modules.__setitem__("course_utils", course_utils))
    namespace = run_cell(source, monkeypatch, fake)
    out = capsys.readouterr().out
    assert len(fake.calls) == 1 and fake.calls[0][-1] == f"course-utils[clip] @ {WHEEL_URL}"
    assert f"torch=={md.version('torch')}\n" in fake.constraints[0]
    assert f"torchvision=={md.version('torchvision')}\n" in fake.constraints[0]
    assert out.count("Install:") == 1 and "already installed" not in out and "Installing" not in out
    assert f"installed from course-utils[clip] @ {WHEEL_URL} (kept torch==" in out
    assert namespace["course_setup"].install_note.startswith("course_utils 0.1.0 installed from")


def test_setup_cell_with_an_older_course_utils_asks_for_a_restart(tmp_path, monkeypatch):
    source = setup_cell_source(load_config(write(tmp_path, GOOD_CONFIG.replace('"0.1.0"', '"9.9.9"'))))
    fake = FakePip()
    with pytest.raises(RuntimeError, match=r"course_utils 9\.9\.9 installed: restart the runtime"):
        run_cell(source, monkeypatch, fake)
    assert fake.calls[0][-1] == WHEEL_URL and "--upgrade" in fake.calls[0]


def test_setup_cell_shows_pip_s_error(tmp_path, monkeypatch):
    source = setup_cell_source(load_config(write(tmp_path, GOOD_CONFIG.replace('"0.1.0"', '"9.9.9"'))))
    with pytest.raises(RuntimeError, match="pip could not install the course library:\nERROR: no such wheel"):
        run_cell(source, monkeypatch, FakePip(returncode=1))


def test_setup_cell_installs_nothing_when_the_right_version_is_there(tmp_path, monkeypatch, capsys):
    source = setup_cell_source(load_config(write(tmp_path, GOOD_CONFIG)))
    fake = FakePip()
    run_cell(source, monkeypatch, fake)
    assert fake.calls == [] and "Install: course_utils 0.1.0 already installed" in capsys.readouterr().out


# --- the committed notebooks ----------------------------------------------------------------------
@pytest.mark.parametrize("pset", PROBLEM_SETS)
def test_each_notebook_installs_its_extras_and_prints_the_run_mode_once(pset):
    for folder in ("source", "assignments"):
        nb = nbformat.read(str(REPO_ROOT / folder / pset / get_problem_set(pset).notebook), 4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        setup = code[0].source
        assert len(setup.splitlines()) <= 23 and "from course_utils.colab import setup" in setup
        extras = list(wheel_extras(pset))
        assert f"extras={extras!r}" in setup
        assert ("course-utils[clip] @ " in setup) == ("clip" in extras)
        assert sum("describe_mode(" in c.source for c in code) == 1  # setup() does not print the run mode
