"""Finding the submissions of a class, and which notebook of each is graded.

Submissions come in any of these layouts (a folder, or a ``.zip`` of one):

* nbgrader's ``submitted/<student>/<pset>/<notebook>.ipynb`` (the course root, its ``submitted/``
  folder, or a zip of either; the course repository itself stands for its ``course/submitted/``, as
  ``nbgrader_config.py`` sets it);
* one folder per student, ``<student>/...ipynb`` (any depth; a zip inside, as made by
  ``course_utils.submit``, is opened too);
* a flat LMS download, one file per student. **Naming rule**: the student is taken from the file
  name, in this order:

  1. ``--name-regex`` when given: a Python regex with a ``(?P<student>...)`` group, matched against the
     file name (as nbgrader's ``ZipCollectApp`` ``FileNameCollectorPlugin.named_regexp``);
  2. Canvas-style ``<login>_[late_]<id>_<id>_<original name>`` -> ``<login>``. Canvas's ``late_`` marker
     is kept as information (the student's notes say that Canvas marked the submission late; no points are
     taken), and the ``-1``, ``-2``... that Canvas appends to a re-submitted file's name
     (``autoencoder_probing-1.ipynb``) is Canvas's, not the student's: it is removed from the original name;
  3. ``<student>_<pset>...ipynb`` (or ``-<pset>``), e.g. ``jdoe_autoencoder_probing.ipynb`` -> ``jdoe``; or
     ``<pset>_<student>.zip``, the package made by ``course_utils.submit`` (``autoencoder_probing_jdoe.zip``
     -> ``jdoe``);
  4. otherwise the part before the first ``_`` (``jdoe_Untitled.ipynb`` -> ``jdoe``), or the whole
     name without extension (``jdoe.ipynb`` -> ``jdoe``).

  A file named after the assignment with no student in front (``autoencoder_probing.ipynb``,
  ``Copy of autoencoder_probing (1).ipynb``) names no student: grading stops with a message naming the file
  and this rule (rename it ``<student>_autoencoder_probing.ipynb``, put it in a ``<student>/`` folder, or pass
  ``--name-regex``), instead of inventing a student "autoencoder".

  Moodle-style folders (``Jane Doe_123_assignsubmission_file_``) are named by the part before ``_<digits>_``.

Which notebook is graded, per student (decided here, then written in the student's notes):

* one notebook, whatever its name (``Untitled.ipynb``, ``autoencoder_probing (1).ipynb``): it is
  graded, with a note about the name;
* several notebooks: the one with the assignment's exact name if there is exactly one; otherwise each
  is graded (up to 4) and the best score counts;
* no ``.ipynb`` file: a file that nevertheless holds a notebook (``.ipynb.txt``, ``.json``) is graded
  with a note; otherwise the student gets 0 with a note naming what was found.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_CANDIDATES = 4  # notebooks graded for one student when it is unclear which one counts
MAX_SNIFF_BYTES = 50 * 2**20
MAX_UNZIP_BYTES = 4 * 2**30
MAX_UNZIP_FILES = 20_000
IGNORED_PARTS = (".ipynb_checkpoints", "__MACOSX", "__pycache__")


# ---- discovering submissions ------------------------------------------------------------------

@dataclass
class Submission:
    """One student's submission: the notebook(s) to grade and what was noticed on the way."""

    student: str
    files: list = field(default_factory=list)  # candidate notebooks (Path); the best score counts
    names: list = field(default_factory=list)  # the names the student gave them (for notes)
    notes: list = field(default_factory=list)
    problem: str = ""  # when nothing can be graded: the reason (the student gets 0)
    fingerprint: str = ""

    @property
    def key(self) -> str:
        return safe_name(self.student)


def safe_name(student: str) -> str:
    """A file-system-safe version of a student id (results/<name>.json, feedback/<name>.html)."""
    name = re.sub(r"[^\w.@+-]+", "_", student.strip()).strip("._") or "unnamed"
    return name[:120]


def _ignored(path: Path) -> bool:
    return any(part in IGNORED_PARTS or part.startswith("._") for part in path.parts) or path.name.startswith(".")


def safe_extract(zip_path: Path, dest: Path) -> Path:
    """Extract a zip without letting its member names escape ``dest`` (zip-slip) or fill the disk."""
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        if len(members) > MAX_UNZIP_FILES:
            raise ValueError(f"{zip_path.name} holds too many files ({len(members)})")
        for info in members:
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if not parts or ".." in parts or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
                continue
            total += info.file_size
            if total > MAX_UNZIP_BYTES:
                raise ValueError(f"{zip_path.name} is too large once extracted")
            target = dest.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    return dest


def _open_nested_zips(folder: Path) -> None:
    """Extract zips found inside a student's folder (e.g. the package made by ``submit()``)."""
    for z in sorted(folder.rglob("*.zip")):
        if _ignored(z.relative_to(folder)):
            continue
        try:
            safe_extract(z, z.with_name(z.stem + "_unzipped"))
        except (zipfile.BadZipFile, ValueError, OSError):
            pass


def _notebooks_in(folder: Path) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".ipynb"
                  and not _ignored(p.relative_to(folder)))


def _looks_like_notebook(path: Path) -> bool:
    try:
        if path.stat().st_size > MAX_SNIFF_BYTES:
            return False
        data = json.loads(path.read_bytes().decode("utf-8", errors="strict"))
    except Exception:
        return False
    return isinstance(data, dict) and isinstance(data.get("cells"), list)


_CANVAS = re.compile(r"^(?P<student>[^_]+)_(?P<late>late_)?\d+_\d+_(?P<rest>.+)$", re.IGNORECASE)
_CANVAS_RESUBMISSION = re.compile(r"-(?P<n>\d{1,3})(?P<ext>(?:\.[A-Za-z0-9]+)*)$")  # Canvas: name-1.ipynb, name-2.ipynb
_MOODLE_DIR = re.compile(r"^(?P<student>.+?)_\d+_assign\w*")


class SubmissionNameError(ValueError):
    """A file in a flat LMS download whose name names no student (see the naming rule in the module docstring)."""


class LmsName(tuple):
    """``(student, original name)`` read from an LMS file name, plus what the LMS said on the way.

    Compares and unpacks as the 2-tuple; ``late`` is True when Canvas marked the submission late
    (``<login>_late_<id>_<id>_...``), ``resubmission`` is Canvas's re-submission number (the ``-1`` it
    appends to the file's name, removed from ``original``), 0 when none.
    """

    late: bool
    resubmission: int

    def __new__(cls, student: str, original: str, late: bool = False, resubmission: int = 0):
        self = super().__new__(cls, (student, original))
        self.late, self.resubmission = late, resubmission
        return self

    @property
    def student(self) -> str:
        return self[0]

    @property
    def original(self) -> str:
        return self[1]


def _naming_rule(pset_id: str) -> str:
    return (f"Name each file <student>_{pset_id}.ipynb (e.g. jdoe_{pset_id}.ipynb), put it in a folder named after "
            f"the student (<student>/{pset_id}.ipynb), keep the LMS download's names (Canvas: "
            f"<login>_<id>_<id>_{pset_id}.ipynb), or pass --name-regex with a (?P<student>...) group")


def student_from_filename(name: str, pset_id: str, name_regex: str | None = None) -> LmsName:
    """(student, the file's original name) from an LMS download's file name (see the module docstring).

    The result is an :class:`LmsName` (a 2-tuple with ``.late`` and ``.resubmission``). Raises
    :class:`SubmissionNameError`, naming the file and the rule, for a file that names no student (a bare
    ``<pset>.ipynb``).
    """
    if name_regex:
        m = re.search(name_regex, name)
        if m and m.groupdict().get("student"):
            rest = m.groupdict().get("file") or name[m.end("student"):].lstrip("_-") or name
            return LmsName(m.group("student"), rest)
    m = _CANVAS.match(name)
    if m:
        rest, resubmission = m.group("rest"), 0
        r = _CANVAS_RESUBMISSION.search(rest)
        if r and r.start() > 0:
            rest, resubmission = rest[:r.start()] + r.group("ext"), int(r.group("n"))
        return LmsName(m.group("student"), rest, late=bool(m.group("late")), resubmission=resubmission)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    low = stem.lower()
    at = low.find(pset_id.lower())
    if at >= 0 and not re.sub(r"(?i)^\s*(copy of)?", "", stem[:at]).strip(" _-.()"):
        after = re.match(r"[_-](?P<student>[^\s()]+)$", stem[at + len(pset_id):])
        if after and not after.group("student").isdigit() and after.group("student").lower() != "submission":
            # course_utils.submit's package, <pset>_<student>.zip
            return LmsName(after.group("student"), stem[:at + len(pset_id)] + name[len(stem):])
        raise SubmissionNameError(f"'{name}' does not say whose submission it is: its name is the assignment's, "
                                  f"with no student in front. {_naming_rule(pset_id)}.")
    for sep in ("_", "-"):
        i = low.find(sep + pset_id.lower())
        if i > 0:
            return LmsName(stem[:i], name[i + 1:])
    if "_" in stem:
        student, rest = name.split("_", 1)
        return LmsName(student, rest)
    return LmsName(stem, name)


def _note_lms(sub: Submission, parsed: LmsName, file_name: str) -> None:
    """Keep what the LMS said in the file's name (Canvas's late marker) in the student's notes."""
    note = f"Canvas marked this submission late ('{file_name}'); no points were taken for it here."
    if getattr(parsed, "late", False) and note not in sub.notes:
        sub.notes.append(note)


def _fingerprint(files: list) -> str:
    h = hashlib.sha256()
    for f in files:
        try:
            h.update(Path(f).name.encode() + b"\0" + Path(f).read_bytes() + b"\0")
        except OSError:
            pass
    return h.hexdigest()


def _choose(sub: Submission, expected: str) -> None:
    """Decide which of a student's notebooks are graded; note the decision."""
    files, names = sub.files, sub.names
    if len(files) == 1:
        if names[0] != expected:
            sub.notes.append(f"Your notebook was named '{names[0]}' instead of '{expected}'. It was your only "
                             f"notebook, so it was graded; please keep the name next time.")
        return
    exact = [i for i, n in enumerate(names) if n == expected]
    if len(exact) == 1:
        others = [n for i, n in enumerate(names) if i != exact[0]]
        sub.notes.append(f"You submitted {len(files)} notebooks; '{expected}' was graded and the other(s) "
                         f"({', '.join(others)}) were not.")
        sub.files, sub.names = [files[exact[0]]], [names[exact[0]]]
        return
    order = sorted(range(len(files)), key=lambda i: (pset_similarity(names[i], expected), -i), reverse=True)
    keep = order[:MAX_CANDIDATES]
    dropped = [names[i] for i in order[MAX_CANDIDATES:]]
    sub.files, sub.names = [files[i] for i in keep], [names[i] for i in keep]
    sub.notes.append(f"You submitted {len(files)} notebooks ({', '.join(names)}) and none is clearly '{expected}'; "
                     f"each was graded and the best score counts."
                     + (f" Not graded (too many): {', '.join(dropped)}." if dropped else ""))


def pset_similarity(name: str, expected: str) -> int:
    a, b = re.sub(r"[^a-z0-9]", "", name.lower().rsplit(".", 1)[0]), re.sub(r"[^a-z0-9]", "", expected.lower().rsplit(".", 1)[0])
    return 2 if a == b else 1 if b in a else 0


def _finish(sub: Submission, folder_files: list, expected: str) -> Submission:
    """Fill ``sub`` from the files of one student (notebooks already in sub.files, or none)."""
    if not sub.files:
        sniffed = [f for f in folder_files if _looks_like_notebook(f)]
        if sniffed:
            sub.files = sniffed
            sub.names = [f.name for f in sniffed]
            sub.notes.append(f"No .ipynb file was found; '{sniffed[0].name}' holds a notebook and was graded. "
                             f"Submit the .ipynb file itself next time.")
        else:
            found = ", ".join(sorted({f.name for f in folder_files})[:6]) or "nothing"
            sub.problem = (f"No notebook was found in your submission (found: {found}). Submit the .ipynb file "
                           f"(Colab: File > Download > Download .ipynb).")
    if sub.files:
        _choose(sub, expected)
    sub.fingerprint = _fingerprint(sub.files) if sub.files else _fingerprint(folder_files)
    return sub


def discover(pset_id: str, source, work_dir=None, name_regex: str | None = None) -> list:
    """The submissions found in ``source`` (a folder or a zip; layouts in the module docstring)."""
    from .problem_sets import get_problem_set

    expected = get_problem_set(pset_id).notebook
    source = Path(source)
    if source.is_file() and zipfile.is_zipfile(source):
        work_dir = Path(work_dir or source.parent / f".{source.stem}_extracted")
        shutil.rmtree(work_dir, ignore_errors=True)
        root = safe_extract(source, work_dir)
        entries = [p for p in root.iterdir() if not _ignored(p.relative_to(root))]
        if len(entries) == 1 and entries[0].is_dir() and not (entries[0] / pset_id).is_dir():
            root = entries[0]  # a zip of one top folder
    elif source.is_dir():
        root = source
    else:
        raise FileNotFoundError(f"{source} is neither a folder nor a zip file of submissions")
    if (root / "nbgrader_config.py").is_file() and not (root / "submitted").is_dir():
        # the course repository itself: nbgrader's submissions live in course/submitted (nbgrader_config.py)
        if not (root / "course" / "submitted").is_dir():
            raise FileNotFoundError(f"{root} is the course repository and holds no submissions yet: nbgrader's "
                                    f"go in {root / 'course' / 'submitted'} (`nbgrader collect` or "
                                    f"`nbgrader zip_collect` put them there); or give the folder or zip of "
                                    f"submissions itself")
        root = root / "course"
    if (root / "submitted").is_dir():
        root = root / "submitted"

    subs: dict = {}
    entries = sorted(p for p in root.iterdir() if not _ignored(p.relative_to(root)))
    student_dirs = [p for p in entries if p.is_dir()]
    nbgrader = any((d / pset_id).is_dir() for d in student_dirs)
    for d in student_dirs:
        student = d.name
        m = _MOODLE_DIR.match(student)
        if m and not nbgrader:
            student = m.group("student")
        _open_nested_zips(d)
        folder = d / pset_id if nbgrader and (d / pset_id).is_dir() else d
        sub = subs.setdefault(student, Submission(student))
        if nbgrader and folder is d:
            sub.notes.append(f"Your files were not in a '{pset_id}' folder; the notebooks found were used.")
        nbs = _notebooks_in(folder)
        sub.files += nbs
        sub.names += [p.name for p in nbs]
        sub._all = getattr(sub, "_all", []) + [p for p in folder.rglob("*") if p.is_file()]
    for f in (p for p in entries if p.is_file()):
        if f.suffix.lower() == ".zip":
            parsed = student_from_filename(f.name, pset_id, name_regex)
            student = parsed.student
            _note_lms(subs.setdefault(student, Submission(student)), parsed, f.name)
            target = f.with_name(f.stem + "_unzipped")
            try:
                safe_extract(f, target)
            except (zipfile.BadZipFile, ValueError, OSError):
                sub = subs.setdefault(student, Submission(student))
                sub._all = getattr(sub, "_all", []) + [f]
                continue
            _open_nested_zips(target)
            sub = subs.setdefault(student, Submission(student))
            nbs = _notebooks_in(target)
            sub.files += nbs
            sub.names += [p.name for p in nbs]
            sub._all = getattr(sub, "_all", []) + [p for p in target.rglob("*") if p.is_file()]
            continue
        parsed = student_from_filename(f.name, pset_id, name_regex)
        student, original = parsed
        sub = subs.setdefault(student, Submission(student))
        _note_lms(sub, parsed, f.name)
        if f.suffix.lower() == ".ipynb":
            sub.files.append(f)
            sub.names.append(original)
        sub._all = getattr(sub, "_all", []) + [f]
    out = []
    for student in sorted(subs):
        sub = subs[student]
        out.append(_finish(sub, getattr(sub, "_all", []), expected))
    return out


def submission_in(folder: Path, expected: str, student: str = "submission") -> Submission:
    """The submission held by one folder (Gradescope's ``/autograder/submission``): zips inside are opened,
    its notebooks found and the one(s) to grade chosen, as for a student's folder in :func:`discover`."""
    folder = Path(folder)
    _open_nested_zips(folder)
    sub = Submission(student)
    sub.files = _notebooks_in(folder)
    sub.names = [p.name for p in sub.files]
    return _finish(sub, [p for p in folder.rglob("*") if p.is_file()], expected)
