"""`course-kit` works on the course repository of the current folder (or one above it), or ``--repo DIR``, says
which, and never on the folder the kit happens to be installed from (two course copies, one bundled by mistake)."""
import csv

import pytest

from autograder import problem_sets, release
from autograder.cli import main as cli_main


def _course(path):
    """The least find_repo recognises as a course repository."""
    (path / "source").mkdir(parents=True)
    (path / "nbgrader_config.py").write_text("")
    return path.resolve()


@pytest.fixture
def two_courses(tmp_path, monkeypatch):
    monkeypatch.delenv(problem_sets.ENV_REPO, raising=False)
    first, second = _course(tmp_path / "fall"), _course(tmp_path / "spring")
    seen = []
    monkeypatch.setattr(release, "check_drift", lambda root=None, psets=None: seen.append(problem_sets.repo_root(root))
                        or [])
    return first, second, seen


def test_the_current_folders_repository_or_one_above_it_and_said(two_courses, monkeypatch, capsys):
    first, second, seen = two_courses
    (first / "source" / "deep").mkdir()
    monkeypatch.chdir(first / "source" / "deep")
    before = problem_sets.REPO_ROOT
    assert cli_main(["check-release"]) == 0
    assert seen == [first]
    assert f"course-kit: course repository {first}" in capsys.readouterr().err
    assert problem_sets.REPO_ROOT == before  # an in-process caller keeps its own


def test_repo_wins_over_the_current_folder(two_courses, monkeypatch, capsys):
    first, second, seen = two_courses
    monkeypatch.chdir(first)
    assert cli_main(["check-release", "--repo", str(second)]) == 0
    assert seen == [second] and f"course repository {second}" in capsys.readouterr().err


def test_no_repository_is_said_with_what_to_do(two_courses, monkeypatch, capsys, tmp_path):
    _first, _second, seen = two_courses
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli_main(["check-release"]) == 2
    err = capsys.readouterr().err
    assert "no course repository in" in err and "--repo DIR" in err and seen == []
    assert cli_main(["check-release", "--repo", str(elsewhere)]) == 2
    assert "is not a course repository (it needs nbgrader_config.py and source/)" in capsys.readouterr().err
    assert cli_main(["check-release", "--repo"]) == 2 and "--repo needs a folder" in capsys.readouterr().err


def test_grade_uses_a_repository_when_there_is_one_and_works_without(two_courses, monkeypatch, capsys, tmp_path):
    """Grading needs only the installed kit (a grading server, Gradescope); in a course folder it says which
    course (--gradebook reads nbgrader's course id and the source notebook from it)."""
    first, _second, _seen = two_courses
    lms = tmp_path / "lms"
    lms.mkdir()
    (lms / "dave_autoencoder_probing.pdf").write_text("%PDF")  # nothing to run: no kernel needed
    for cwd, said in ((lms, False), (first, True)):
        monkeypatch.chdir(cwd)
        out = tmp_path / f"out_{cwd.name}"
        assert cli_main(["grade", "autoencoder_probing", str(lms), "--out", str(out), "--workers", "1",
                         "--no-progress"]) == 0
        assert (f"course repository {first}" in capsys.readouterr().err) is said
        assert [r["student"] for r in csv.DictReader((out / "grades.csv").open())] == ["dave"]
    assert cli_main(["grade", "autoencoder_probing", str(lms), "--repo", str(lms)]) == 2  # a wrong --repo is said
    assert "is not a course repository" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "release", "check-release", "configure", "student-bundle",
                                     "gradescope-bundle", "grade"])
def test_every_repository_command_lists_repo_in_its_help(command, capsys):
    with pytest.raises(SystemExit):
        cli_main([command, "--help"])
    assert "--repo DIR" in capsys.readouterr().out


def test_library_defaults_read_the_repository_when_called(monkeypatch, tmp_path):
    """A default bound when the module was imported would keep the folder the kit was installed from."""
    course = _course(tmp_path / "course")
    monkeypatch.setattr(problem_sets, "REPO_ROOT", course)
    assert release.available_psets() == []  # this course has no source notebooks yet
    assert problem_sets.repo_root() == course and problem_sets.repo_root(tmp_path) == tmp_path
