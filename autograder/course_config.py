"""The course configuration (``course_config.toml``) and what it writes into the notebooks.

The instructor edits ``course_config.toml`` once; :func:`load_config` reads it (with the standard library's
``tomllib``, or ``tomli`` before Python 3.11) into a :class:`CourseConfig`. A student who opens a notebook
in Colab has the notebook only, so ``course-kit configure`` writes the configuration *into* it:

- :func:`setup_cell_source`: the first code cell, a short bootstrap that pip-installs the course wheel
  (with the extras its problem set needs) only when ``course_utils`` is missing or outdated, pinning the
  runtime's torch, then hands over to ``course_utils.colab.setup`` (the student's side);
- :func:`colab_badge_markdown` / :func:`open_in_colab_url`: the "Open in Colab" links.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Union
from urllib.parse import quote

try:
    import tomllib  # Python 3.11+
except ImportError:  # pragma: no cover - Python 3.9 / 3.10: the instructor extra installs tomli
    import tomli as tomllib  # type: ignore[no-redef]

CONFIG_ENV = "COURSE_CONFIG"
CONFIG_NAME = "course_config.toml"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
WHEEL_DIST = "course-utils"  # distribution name of the student wheel (autograder/bundle.py builds it)


class ConfigError(ValueError):
    """``course_config.toml`` is missing, unreadable or incomplete."""


@dataclass
class CourseConfig:
    """The course settings an instructor writes once in ``course_config.toml``."""

    name: str  # course name, shown in the setup banner
    repository: str  # public GitHub repository the notebooks are opened from
    branch: str  # branch or tag of the "Open in Colab" links
    install_package: str  # what the setup cell gives to `pip install`
    version: str  # course_utils version the notebooks expect
    notebooks_dir: str = "assignments"  # folder of released notebooks inside the repository
    mount_drive: bool = True  # mount Google Drive in Colab for data + checkpoints
    drive_folder: str = "course_kit"  # folder in "My Drive" that becomes COURSE_DATA_DIR
    path: Optional[Path] = None  # the file it was read from
    raw: dict = field(default_factory=dict, repr=False)  # everything the file holds

    def placeholders(self) -> list:
        """Settings that still hold a ``<org>``/``<repo>``-style placeholder."""
        fields = {"[course] repository": self.repository, "[install] package": self.install_package}
        return [key for key, value in fields.items() if re.search(r"<[^<>]+>", value)]

    def check_ready(self) -> "CourseConfig":
        """Raise :class:`ConfigError` when a placeholder is left (call before releasing)."""
        left = self.placeholders()
        if left:
            raise ConfigError(
                f"{self.path or CONFIG_NAME}: replace the placeholders in {', '.join(left)} "
                "with your course's real GitHub organisation / repository before releasing."
            )
        return self

    def colab_url(self, notebook_path: str) -> str:
        """The "Open in Colab" URL of a notebook path relative to the repository root."""
        return open_in_colab_url(self.repository, self.branch, notebook_path)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def parse_toml(text: str) -> dict:
    """Parse TOML text; :class:`ConfigError` (with tomllib's line and column) when it is not valid."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML ({err}); check the quotes and brackets on that line "
                          "(strings need quotes, e.g. key = \"text\").") from None


def find_config(start: Union[str, Path, None] = None) -> Path:
    """Locate ``course_config.toml``: ``$COURSE_CONFIG``, then ``start`` and its parents, then the
    course repository this package sits in (a development checkout)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}={env} does not name an existing file; fix the variable or unset it.")
        return path
    here = Path(start or Path.cwd()).resolve()
    candidates = [d / CONFIG_NAME for d in (here, *here.parents)]
    candidates.append(Path(__file__).resolve().parent.parent / CONFIG_NAME)
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(
        f"no {CONFIG_NAME} found (looked in {here} and its parents, and in the course repository). "
        f"Run from the course repository, pass the path explicitly, or set {CONFIG_ENV}=/path/to/{CONFIG_NAME}."
    )


def load_config(path: Union[str, Path, None] = None) -> CourseConfig:
    """Read and check ``course_config.toml`` (see :func:`find_config` for where it is looked for).

    Raises :class:`ConfigError` naming the file, the line or the missing key, and what to write.
    """
    path = Path(path) if path is not None else find_config()
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; create it from the {CONFIG_NAME} of the course repository.")
    try:
        data = parse_toml(path.read_text(encoding="utf-8"))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    return config_from_dict(data, path)


def config_from_dict(data: dict, path: Optional[Path] = None) -> CourseConfig:
    """Build a :class:`CourseConfig` from parsed TOML, checking every required setting."""
    where = str(path or CONFIG_NAME)

    def get(section: str, key: str, kind: type = str, default=None):
        table = data.get(section)
        if table is None:
            if default is not None:
                return default
            raise ConfigError(f"{where}: the [{section}] section is missing; add it with `{key} = ...`.")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: `{section}` must be a [{section}] table.")
        if key not in table:
            if default is not None:
                return default
            raise ConfigError(f"{where}: [{section}] has no `{key}`; add `{key} = ...` under [{section}].")
        value = table[key]
        if not isinstance(value, kind) or (kind is str and not value.strip()):
            expected = {str: "a non-empty string in quotes", bool: "true or false"}[kind]
            raise ConfigError(f"{where}: [{section}] {key} must be {expected}, found {value!r}.")
        return value.strip() if kind is str else value

    repository = get("course", "repository").rstrip("/")
    if repository.endswith(".git"):
        repository = repository[: -len(".git")]
    if not re.match(r"^https://github\.com/[^/\s]+/[^/\s]+$", repository):
        raise ConfigError(
            f"{where}: [course] repository must look like https://github.com/<org>/<repo>, found {repository!r}."
        )
    return CourseConfig(
        name=get("course", "name"),
        repository=repository,
        branch=get("course", "branch", default="main"),
        notebooks_dir=get("course", "notebooks_dir", default="assignments").strip("/"),
        install_package=get("install", "package"),
        version=get("install", "version"),
        mount_drive=get("colab", "mount_drive", bool, default=True),
        drive_folder=get("colab", "drive_folder", default="course_kit").strip("/"),
        path=path,
        raw=data,
    )


def _as_config(config: Union[CourseConfig, dict, str, Path, None]) -> CourseConfig:
    if config is None or isinstance(config, (str, Path)):
        return load_config(config)
    if isinstance(config, dict):
        return config_from_dict(config)
    return config


# --------------------------------------------------------------------------------------------
# The setup cell
# --------------------------------------------------------------------------------------------
def requirement_with_extras(package: str, extras: Iterable[str] = ()) -> str:
    """The pip requirement of ``[install] package`` with the wheel's ``extras``: a URL becomes
    ``course-utils[clip] @ URL``, a local path ``path[clip]``, a name ``name[clip]<version spec>``."""
    extras = sorted(set(extras))
    package = package.strip()
    if not extras or re.search(r"\[[^\]]*\]", package.split("@")[0]):
        return package
    tag = f"[{','.join(extras)}]"
    if "@" in package.split("://")[0]:  # already `name @ url`
        name, _, url = package.partition("@")
        return f"{name.strip()}{tag} @ {url.strip()}"
    if "://" in package:
        return f"{WHEEL_DIST}{tag} @ {package}"
    if package.endswith((".whl", ".tar.gz", ".zip")) or "/" in package or "\\" in package:
        return f"{package}{tag}"
    match = re.match(r"^([A-Za-z0-9._-]+)(.*)$", package)
    return f"{match.group(1)}{tag}{match.group(2)}" if match else package


# The bootstrap: everything else is course_utils.colab.setup's job (the student's library).
_SETUP_CELL = """\
# Setup for {name}: run this cell first (it is safe to run again). It pip-installs the course library
# only when needed, never replacing this runtime's torch; course_utils.colab.setup does the rest.
COURSE_PACKAGE = {package!r}
COURSE_VERSION = {version!r}
import importlib.metadata as md, os, subprocess, sys, tempfile
try:
    from course_utils import __version__ as _have
except ImportError:
    _have = None
_install = _have != COURSE_VERSION and os.environ.get("COURSE_SKIP_INSTALL", "").lower() in ("", "0", "false", "no")
if _install:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as _pins:  # constraints: the installed torch
        _pins.writelines(f"{{d.metadata['Name']}}=={{d.version}}\\n" for d in md.distributions()
                         if d.metadata["Name"] in ("torch", "torchvision", "torchaudio"))
    _pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--upgrade", "-c", _pins.name, COURSE_PACKAGE],
                          capture_output=True, text=True)
    if _pip.returncode:
        raise RuntimeError(f"pip could not install the course library:\\n{{_pip.stdout[-3000:]}}{{_pip.stderr[-3000:]}}")
    if _have:  # the older course_utils stays loaded until the runtime restarts
        raise RuntimeError(f"course_utils {{COURSE_VERSION}} installed: {restart}, run this cell again")
from course_utils.colab import setup
course_setup = setup(COURSE_PACKAGE, version=COURSE_VERSION, extras={extras!r}, installed=_install,
                     mount_drive={mount_drive!r}, drive_folder={drive_folder!r})
"""
RESTART_ADVICE = "restart the runtime (Runtime -> Restart session)"  # same words as course_utils.colab


def setup_cell_source(config: Union[CourseConfig, dict, str, Path, None] = None, extras: Iterable[str] = ()) -> str:
    """Python source of the first code cell of a released notebook.

    It runs before course_utils is installed, so it holds the install target as a literal (a student in
    Colab has the notebook, not the repository) and does only the bootstrap: when ``course_utils`` is not
    importable at the configured version (and ``COURSE_SKIP_INSTALL`` is not set), ``pip install`` the
    course wheel with ``extras`` (the problem set's, e.g. ``["clip"]``) under a constraints file pinning the
    installed torch / torchvision / torchaudio; then ``course_utils.colab.setup`` does the rest. ``config``
    is a :class:`CourseConfig`, a parsed dict, a path, or None for :func:`load_config`.
    """
    config = _as_config(config)
    extras = sorted(set(extras))
    return _SETUP_CELL.format(name=config.name, package=requirement_with_extras(config.install_package, extras),
                              version=config.version, extras=extras, restart=RESTART_ADVICE,
                              mount_drive=config.mount_drive, drive_folder=config.drive_folder)


# --------------------------------------------------------------------------------------------
# "Open in Colab" links
# --------------------------------------------------------------------------------------------
def _github_slug(repository: str) -> str:
    repo = repository.strip().rstrip("/")
    if repo.endswith(".git"):
        repo = repo[:-4]
    repo = re.sub(r"^(https?://)?(www\.)?github\.com/", "", repo)
    if re.search(r"<[^<>]+>", repo):
        raise ValueError(f"the repository {repository!r} still holds a placeholder; "
                         f"set [course] repository in {CONFIG_NAME} to your real GitHub repository.")
    if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", repo):
        raise ValueError(f"expected a GitHub repository like https://github.com/<org>/<repo> or <org>/<repo>, "
                         f"found {repository!r}.")
    return repo


def open_in_colab_url(repository: str, branch: str, notebook_path: str) -> str:
    """``https://colab.research.google.com/github/<org>/<repo>/blob/<branch>/<path>``."""
    path = str(notebook_path).replace("\\", "/").lstrip("/")
    if path.startswith("./"):
        path = path[2:]
    if not path.endswith(".ipynb"):
        raise ValueError(f"Colab opens notebooks: {notebook_path!r} does not end in .ipynb.")
    if not branch or not branch.strip():
        raise ValueError("branch must be a non-empty branch or tag name, e.g. 'main'.")
    slug = _github_slug(repository)
    return f"https://colab.research.google.com/github/{slug}/blob/{quote(branch.strip())}/{quote(path)}"


def colab_badge_markdown(repository: str, branch: str, notebook_path: str) -> str:
    """Markdown of the standard "Open in Colab" badge linking to the notebook."""
    url = open_in_colab_url(repository, branch, notebook_path)
    return f"[![Open In Colab]({COLAB_BADGE})]({url})"


__all__ = [
    "ConfigError", "CourseConfig", "parse_toml", "find_config", "load_config", "config_from_dict",
    "requirement_with_extras", "setup_cell_source", "open_in_colab_url", "colab_badge_markdown",
]
