"""Release-time commands refuse placeholders in course_config.toml (issue 13): `course-kit release`,
`course-kit student-bundle` and `course-kit configure --check` fail listing what to set, unless
--allow-placeholders / COURSE_KIT_ALLOW_PLACEHOLDERS=1 is given."""
from pathlib import Path

import pytest

from autograder import bundle, release
from autograder.cli import main as cli_main
from autograder.configure import ALLOW_PLACEHOLDERS_ENV
from autograder.problem_sets import REPO_ROOT

COMMITTED = (REPO_ROOT / "course_config.toml").read_text()
READY = (COMMITTED.replace("https://github.com/<org>/<repo>", "https://github.com/uni/replearn"))


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A course repository as find_repo sees one, with the committed (placeholder) configuration."""
    root = tmp_path / "course"
    (root / "source").mkdir(parents=True)
    (root / "nbgrader_config.py").write_text("")
    (root / "course_config.toml").write_text(COMMITTED)
    monkeypatch.delenv(ALLOW_PLACEHOLDERS_ENV, raising=False)
    monkeypatch.delenv("COURSE_KIT_REPO", raising=False)
    built = []
    monkeypatch.setattr(release, "build_release", lambda *a, **k: built.append("release") or {})

    def fake_bundle(repo_root, out_dir, problem_sets=None):
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "course_utils-0.1.0-py3-none-any.whl").write_bytes(b"")
        built.append("bundle")
        return out_dir / "student_bundle-0.1.0.zip"

    monkeypatch.setattr(bundle, "build_student_bundle", fake_bundle)
    return root, built


COMMANDS = [["release", "--no-gradebook"], ["student-bundle"], ["configure", "--check"]]


@pytest.mark.parametrize("command", COMMANDS)
def test_placeholders_are_refused_with_what_to_set(course, command, capsys):
    root, built = course
    assert cli_main(command + ["--repo", str(root)]) == 1
    err = capsys.readouterr().err
    assert "[course] repository = 'https://github.com/<org>/<repo>'" in err
    assert "[install] package = 'https://github.com/<org>/<repo>/releases/" in err
    assert "PUBLIC GitHub repository" in err and "course_utils wheel" in err
    assert "--allow-placeholders" in err and ALLOW_PLACEHOLDERS_ENV in err
    assert "[course] name" not in err and "[install] version" not in err  # only what is a placeholder
    assert built == []


def test_any_placeholder_is_refused(course, capsys):
    root, _ = course
    (root / "course_config.toml").write_text(READY.replace('drive_folder = "course_kit"', 'drive_folder = "TODO"'))
    assert cli_main(["release", "--repo", str(root)]) == 1
    err = capsys.readouterr().err
    assert "[colab] drive_folder = 'TODO'" in err and "<org>" not in err


@pytest.mark.parametrize("command, product", [(["release", "--no-gradebook"], "release"),
                                              (["student-bundle"], "bundle")])
def test_the_explicit_way_through(course, command, product, monkeypatch, capsys, tmp_path):
    root, built = course
    extra = ["--out", str(tmp_path / "dist")] if product == "bundle" else []
    assert cli_main(command + extra + ["--repo", str(root), "--allow-placeholders"]) == 0
    assert "going ahead" in capsys.readouterr().err
    monkeypatch.setenv(ALLOW_PLACEHOLDERS_ENV, "1")
    assert cli_main(command + extra + ["--repo", str(root)]) == 0
    assert built == [product, product]


def test_a_ready_configuration_goes_ahead_silently(course, capsys, tmp_path):
    root, built = course
    (root / "course_config.toml").write_text(READY)
    assert cli_main(["release", "--no-gradebook", "--repo", str(root)]) == 0
    assert cli_main(["student-bundle", "--out", str(tmp_path / "dist"), "--repo", str(root)]) == 0
    assert built == ["release", "bundle"] and "placeholder" not in capsys.readouterr().err


def test_configure_check_on_this_repository(capsys):
    """The README's command on the committed configuration: refused, then fine with the flag."""
    assert cli_main(["configure", "--check", "--repo", str(REPO_ROOT)]) == 1
    assert "<org>" in capsys.readouterr().err
    assert cli_main(["configure", "--check", "--repo", str(REPO_ROOT), "--allow-placeholders"]) == 0
