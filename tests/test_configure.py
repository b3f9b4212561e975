"""course_config.toml reaches the notebooks (setup cell, Open-in-Colab badge) and the README."""
import shutil

import nbformat

from autograder.configure import README_END, README_START, configure
from autograder.course_config import load_config
from autograder.problem_sets import REPO_ROOT

CONFIG = """
[course]
name = "CV 442"
repository = "https://github.com/uni-cv/replearn-student"
branch = "fall26"
notebooks_dir = "assignments"
[install]
package = "https://github.com/uni-cv/replearn-student/releases/download/v0.1.0/course_utils-0.1.0-py3-none-any.whl"
version = "0.1.0"
[colab]
mount_drive = true
drive_folder = "cv442"
"""


def test_committed_notebooks_and_readme_follow_the_configuration():
    assert configure(REPO_ROOT, write=False) == []


def test_configure_writes_setup_cell_badge_and_readme_links(tmp_path):
    shutil.copytree(REPO_ROOT / "source", tmp_path / "source")
    (tmp_path / "README.md").write_text(f"# Kit\n\n{README_START}\nold\n{README_END}\n\nrest\n")
    (tmp_path / "course_config.toml").write_text(CONFIG)
    config = load_config(tmp_path / "course_config.toml")
    changed = configure(tmp_path, config)
    assert "README.md" in changed and any(c.endswith("autoencoder_probing.ipynb") for c in changed)
    nb = nbformat.read(str(tmp_path / "source/autoencoder_probing/autoencoder_probing.ipynb"), 4)
    url = ("https://colab.research.google.com/github/uni-cv/replearn-student/blob/fall26/"
           "assignments/autoencoder_probing/autoencoder_probing.ipynb")
    assert nb.cells[0].source.startswith("[![Open In Colab]") and url in nb.cells[0].source
    setup = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "setup")
    assert "releases/download/v0.1.0/course_utils-0.1.0-py3-none-any.whl" in setup.source
    assert "cv442" in setup.source and "[clip]" not in setup.source and "extras=[]" in setup.source
    compile(setup.source, "setup", "exec")
    clip = nbformat.read(str(tmp_path / "source/simple_clip/simple_clip.ipynb"), 4)
    clip_setup = next(c for c in clip.cells if c.metadata["nbgrader"]["grade_id"] == "setup")
    assert "'course-utils[clip] @ https://github.com/uni-cv/replearn-student/releases/download/" in clip_setup.source
    assert "extras=['clip']" in clip_setup.source
    readme = (tmp_path / "README.md").read_text()
    assert url in readme and "old" not in readme and readme.endswith("rest\n")
    assert configure(tmp_path, config) == []  # idempotent

