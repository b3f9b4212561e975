"""Grade a whole class: ``course-kit grade <pset> <submissions> [--out DIR] [--workers N] ...``.

Submissions come in any of these layouts (a folder, or a ``.zip`` of one):

* nbgrader's ``submitted/<student>/<pset>/<notebook>.ipynb`` (the course root, its ``submitted/``
  folder, or a zip of either);
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

Each submission is graded in a worker process (``--workers``, default the number of CPU cores) with
its own fresh kernel (one torch thread), bounded by ``--timeout`` per cell, ``--probe-timeout`` per
unit, ``--total-timeout`` for all cells, and ``--memory-mb``. A result is written to
``<out>/results/<student>.json`` the moment it is known, so an interrupted run loses nothing: running
the command again grades only what is missing or changed (``--regrade`` grades everything again).
Then ``<out>/grades.csv`` (one row per student: per-unit points, manual points when known, total, max) and
``<out>/feedback/<student>.html`` are written and a table is printed, followed by a class summary
(``<out>/summary.csv``: each check's pass rate; ``<out>/scores.png``: histogram of the totals; see
:mod:`autograder.summary`). With ``--gradebook course/gradebook.db`` the automatic points also go into
nbgrader's gradebook and the manual points graded there come back into ``grades.csv``
(:mod:`autograder.gradebook`), so that ``nbgrader export`` gives one final grade.

A worker process that dies while grading (a notebook can signal its grader: see the trust model in
:mod:`autograder.grader`) does not stop the batch: the submissions it was grading are graded again,
one at a time; one that kills its worker again gets 0 with a note.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import sys
import time
import zipfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

EARLY_STOP = 3  # a batch whose first submissions all fail in the grader the same way stops there
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


# ---- grading in worker processes ----------------------------------------------------------------

class StopBatch(Exception):
    """Raised by a batch's bookkeeping to stop grading (the grader fails on every submission)."""


GRADER_ERROR = "grader error"  # = autograder.grader.GRADER_ERROR (kept importable without torch)

def _load_callable(spec: str):
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _worker_init(warm: dict | None = None) -> None:
    """Set up a worker; start its kernel zygote at once, so that it preloads while the worker imports."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business; results are already saved
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if warm and warm.get("zygote"):
        def start_zygote():
            try:
                from course_utils.grading.session import _Zygote, kernel_env

                env = kernel_env(argparse.Namespace(**warm["options"]), warm.get("data_dir"))
                sandbox = bool(warm["options"].get("sandbox"))
                if sandbox:
                    from course_utils.grading.sandbox import sandbox_mode

                    if sandbox_mode() != "bwrap":  # the user wall starts each kernel afresh: no zygote
                        return
                _Zygote.get(env, sandbox).preload(warm.get("preload") or ())
            except Exception:
                pass

        threading.Thread(target=start_zygote, daemon=True).start()
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:
        pass


def grade_job(job: dict) -> dict:
    """Grade one student's submission in a worker; write its result file; return a summary."""
    from .grader import GradeOptions, _zero_result, grade_candidates
    from .problem_sets import get_problem_set

    out_dir = Path(job["out"])
    marker = out_dir / ".running" / job["key"]
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    try:
        pset = get_problem_set(job["pset"])
        if job["problem"]:
            result = _zero_result(pset, job["student"], "", job["problem"])
        else:
            grade = _load_callable(job.get("grade_fn") or "autograder.grader:grade_submission")
            result = grade_candidates(job["pset"], zip(job["files"], job["names"]), job["student"],
                                      GradeOptions(**job["options"]), job.get("data_dir"), grade)
        if job["notes"]:
            result.notes = list(job["notes"]) + list(result.notes)
        result.fingerprint = job["fingerprint"]
        result.save(out_dir / "results" / f"{job['key']}.json")
        return {"key": job["key"], "student": result.student, "score": result.score, "max": result.max_score,
                "status": result.status, "seconds": result.seconds,
                "cause": next((f[len("grader error: "):] for f in result.flags if f.startswith("grader error: ")), "")}
    finally:
        marker.unlink(missing_ok=True)


def _grader_failed(job: dict, out_dir: Path, cause: str) -> dict:
    """Write a submission the grader failed on (a worker that died or passed its deadline): no grade, the
    cause for the instructor; the next run of the batch grades it again. Returns the job's summary."""
    from .grader import grader_error_result
    from .problem_sets import get_problem_set

    result = grader_error_result(get_problem_set(job["pset"]), job["student"], (job["names"] or [""])[0], cause)
    result.notes = list(job["notes"]) + list(result.notes)
    result.fingerprint = job["fingerprint"]
    result.save(out_dir / "results" / f"{job['key']}.json")
    return {"key": job["key"], "student": job["student"], "status": result.status, "cause": cause}


def job_deadline(job: dict) -> float:
    """Seconds a worker may spend on one job before it is stopped: every cell, probe and restart the
    limits allow, for each candidate notebook, with room for starting kernels."""
    o = job["options"]
    if o.get("job_timeout"):
        return float(o["job_timeout"])
    per_file = (o["total_timeout"] + 8 * o["probe_timeout"] + 120) * (int(o.get("max_restarts", 3)) + 1)
    return per_file * max(1, len(job["files"])) + 60


def _stop_overdue(running_dir: Path, jobs: dict) -> set:
    """Kill the worker of every job past its deadline; return those jobs' keys."""
    import psutil

    overdue = set()
    for marker in list(running_dir.glob("*")) if running_dir.is_dir() else []:
        job = jobs.get(marker.name)
        try:
            started, pid = marker.stat().st_mtime, int(marker.read_text().strip() or 0)
        except (OSError, ValueError):
            continue
        if job is None or not pid or time.time() - started <= job_deadline(job):
            continue
        overdue.add(marker.name)
        try:
            proc = psutil.Process(pid)
            for p in proc.children(recursive=True) + [proc]:
                p.kill()
        except psutil.Error:
            pass
    return overdue


def _run_pool(jobs: list, workers: int, out_dir: Path, on_done, warm: dict | None = None) -> list:
    """Run jobs in a pool; return the jobs that were running when a worker died (the suspects)."""
    import multiprocessing

    if not jobs:
        return []
    running_dir = out_dir / ".running"
    shutil.rmtree(running_dir, ignore_errors=True)
    ctx = multiprocessing.get_context("spawn")
    remaining = list(jobs)
    suspects = []
    while remaining:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(remaining)), mp_context=ctx, initializer=_worker_init,
                                   initargs=(warm,))
        futures = {pool.submit(grade_job, job): job for job in remaining}
        by_key = {job["key"]: job for job in remaining}
        broken = False
        overdue: set = set()
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
                overdue |= _stop_overdue(running_dir, by_key)
                for fut in done:
                    job = futures[fut]
                    try:
                        on_done(job, fut.result())
                    except StopBatch:
                        raise
                    except BrokenProcessPool:
                        broken = True
                    except Exception as exc:  # a bug in the grader for this one submission
                        on_done(job, {"key": job["key"], "student": job["student"], "error": f"{type(exc).__name__}: {exc}"})
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)
        if not broken:
            break
        running = {p.name for p in running_dir.glob("*")} if running_dir.is_dir() else set()
        shutil.rmtree(running_dir, ignore_errors=True)
        for key in sorted(overdue):  # a job past its deadline is not tried again: a grader error, no grade
            job = by_key[key]
            on_done(job, _grader_failed(job, out_dir, f"grading this submission took longer than its deadline of "
                                                      f"{job_deadline(job):g} s; the worker was stopped"))
        running -= overdue
        unfinished = [j for j in remaining if j["key"] not in overdue and
                      (not (out_dir / "results" / f"{j['key']}.json").exists() or j["key"] in running)]
        newly = [j for j in unfinished if j["key"] in running]
        if not newly and unfinished:  # no submission was being graded: the workers themselves fail
            raise RuntimeError("the grading worker processes died before grading anything (can they start? "
                               "a script that calls grade_class needs an `if __name__ == '__main__':` guard)")
        suspects += newly
        remaining = [j for j in unfinished if j not in newly]
    return suspects


# ---- exports ------------------------------------------------------------------------------------

def load_results(out_dir) -> dict:
    from .grader import SubmissionResult

    results = {}
    for path in sorted((Path(out_dir) / "results").glob("*.json")):
        try:
            results[path.stem] = SubmissionResult.from_dict(json.loads(path.read_text()))
        except Exception:
            continue
    return results


def export_csv(pset_id: str, results: dict, path, manual: dict | None = None) -> Path:
    """grades.csv: one row per student, the points of every unit, total and max.

    ``manual``: {student id (the key of ``results``): {grade_id: points}} of the manually graded cells, as
    read from nbgrader's gradebook (:func:`autograder.gradebook.read_manual_scores`); a manual cell not
    graded yet stays empty. ``total`` is the automatic points plus the manual points known so far, out of
    ``max``, the problem set's total (automatic + manual, e.g. 4 + 1 = 5).
    """
    from .problem_sets import get_problem_set

    pset = get_problem_set(pset_id)
    auto = [u.grade_id for u in pset.units]
    manual_ids = [m.grade_id for m in pset.manual]
    manual = manual or {}
    header = ["student", *auto, *[f"{m} (manual)" for m in manual_ids], "total", "max", "status", "notebook",
              "flags", "notes"]
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for key in sorted(results, key=lambda k: results[k].student.lower()):
            r = results[key]
            points = {u.grade_id: u.points for u in r.units if not u.manual}
            given = manual.get(key, {})
            hand = [given.get(m) for m in manual_ids]
            total = r.score + sum(x for x in hand if x is not None)
            if r.grader_error:  # not graded: no points at all, so that nobody mistakes it for a 0
                w.writerow([r.student, *["" for _ in auto], *["" for _ in hand], "", _num(pset.total_points), r.status,
                            r.notebook, " | ".join(r.flags), " | ".join(r.notes)])
                continue
            w.writerow([r.student, *[_num(points.get(g, 0.0)) for g in auto], *["" if x is None else _num(x) for x in hand],
                        _num(total), _num(pset.total_points), r.status, r.notebook, " | ".join(r.flags),
                        " | ".join(r.notes)])
    os.replace(tmp, path)
    return path


def _num(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x else "0"


def print_table(results: dict, file=None) -> None:
    file = file or sys.stdout
    rows = sorted(results.values(), key=lambda r: r.student.lower())
    width = min(40, max([7] + [len(r.student) for r in rows]))
    print(f"{'student':<{width}}  {'score':>11}  {'status':<7}  {'time':>6}  notes", file=file)
    for r in rows:
        extra = ("flagged; " if r.flags else "") + (r.notes[0][:70] if r.notes else "")
        print(f"{r.student:<{width}}  {_num(r.score):>5} / {_num(r.max_score):<3}  {r.status:<7}  {r.seconds:5.1f}s  {extra}",
              file=file)


# ---- the command --------------------------------------------------------------------------------

@dataclass
class BatchReport:
    graded: list = field(default_factory=list)  # keys graded in this run
    skipped: list = field(default_factory=list)  # keys already graded (unchanged)
    errors: dict = field(default_factory=dict)  # key -> grader bug message
    killed: list = field(default_factory=list)  # keys whose notebook killed its worker twice
    stopped: str = ""  # why the batch stopped early (the grader failed on its first submissions), or ""
    seconds: float = 0.0
    results: dict = field(default_factory=dict)


def grade_class(pset_id: str, source, out_dir, workers: int | None = None, options=None, regrade: bool = False,
                data_dir: str | None = None, name_regex: str | None = None, progress: bool = True,
                grade_fn: str | None = None) -> BatchReport:
    """Grade every submission in ``source`` into ``out_dir`` (resumable); export CSV + feedback."""
    from .feedback import write_feedback
    from .grader import GradeOptions, SubmissionResult

    start = time.monotonic()
    options = options or GradeOptions()
    if options.sandbox:  # before anything: a class graded without the wall is graded only when asked for
        from course_utils.grading.sandbox import sandbox_problem

        from .grader import GraderError, sandbox_advice

        problem = sandbox_problem()
        if problem:
            raise GraderError(sandbox_advice(problem))
        from course_utils.grading.sandbox import protect, sandbox_mode

        if sandbox_mode() == "user":  # the kernels' user: not the submissions, not the results
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            protect([str(source), str(out_dir)])
    out_dir = Path(out_dir)
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    subs = discover(pset_id, source, out_dir / "_extracted" if Path(source).is_file() else None, name_regex)
    report = BatchReport()
    jobs = []
    opts = {k: v for k, v in asdict(options).items() if k != "keep_executed"}
    for sub in subs:
        result_path = out_dir / "results" / f"{sub.key}.json"
        if result_path.exists() and not regrade:
            try:
                old = SubmissionResult.from_dict(json.loads(result_path.read_text()))
                if old.fingerprint == sub.fingerprint and old.status not in ("crashed", GRADER_ERROR):
                    report.skipped.append(sub.key)
                    continue
            except Exception:
                pass
        jobs.append({"pset": pset_id, "student": sub.student, "key": sub.key, "files": [str(f) for f in sub.files],
                     "names": list(sub.names), "notes": list(sub.notes), "problem": sub.problem,
                     "fingerprint": sub.fingerprint, "options": opts, "data_dir": data_dir, "out": str(out_dir),
                     "grade_fn": grade_fn})
    workers = max(1, int(workers or os.cpu_count() or 1))
    workers = _fit_workers(workers, options.memory_mb)
    bar = _progress(len(jobs), progress)
    finished: list = []  # per finished job: the grader failure's cause, or None

    def on_done(job, summary):
        if "error" in summary or summary.get("status") == GRADER_ERROR:
            cause = summary.get("error") or summary.get("cause") or "unknown"
            report.errors[job["key"]] = cause
            finished.append(cause)
            if len(finished) == min(EARLY_STOP, len(jobs)) and len(set(finished)) == 1 and len(jobs) > len(finished):
                raise StopBatch(f"the first {len(finished)} submissions all failed in the grader the same way: {cause}")
        else:
            finished.append(None)
            report.graded.append(job["key"])
        if bar is not None:
            bar.set_postfix_str(f"{job['student'][:20]}: {summary.get('score', '?')}/{summary.get('max', '?')}")
            bar.update(1)

    try:
        warm = None
        if grade_fn is None and jobs and any(not j["problem"] for j in jobs):
            from course_utils.grading.session import _zygote_wanted

            from .grader import _LEARNED_PRELOAD

            warm = {"zygote": _zygote_wanted(None), "options": opts, "data_dir": data_dir,
                    "preload": list(_LEARNED_PRELOAD.get(pset_id, ()))}
        try:
            suspects = _run_pool(jobs, workers, out_dir, on_done, warm)
        except StopBatch as exc:
            report.stopped, suspects = str(exc), []
        for job in suspects:  # alone, so that the culprit is known
            again = _run_pool([job], 1, out_dir, on_done, warm)
            if again:
                report.killed.append(job["key"])
                on_done(job, _grader_failed(job, out_dir, "the grader's worker process died while grading this "
                                                          "submission, twice (alone the second time)"))
    finally:
        if bar is not None:
            bar.close()
    results = load_results(out_dir)
    keys = {s.key for s in subs}
    results = {k: r for k, r in results.items() if k in keys}
    for key, r in results.items():
        write_feedback(r, out_dir / "feedback" / f"{key}.html")
    export_csv(pset_id, results, out_dir / "grades.csv")
    report.results = results
    report.seconds = time.monotonic() - start
    return report


def _fit_workers(workers: int, memory_mb: int) -> int:
    try:
        import psutil

        available = psutil.virtual_memory().available / 2**20
    except Exception:
        return workers
    fit = max(1, int(available // (memory_mb + 1024)))
    if fit < workers:
        print(f"course-kit grade: {workers} workers with {memory_mb} MB each do not fit in "
              f"{available:,.0f} MB of free memory; using {fit}.", file=sys.stderr)
        return fit
    return workers


def _progress(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="grading", unit="submission", dynamic_ncols=True, file=sys.stderr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .grader import GradeOptions

    d = GradeOptions()
    parser.add_argument("pset", help="problem set id, e.g. autoencoder_probing")
    parser.add_argument("submissions", help="nbgrader course root / submitted/ folder, a folder of notebooks, or a zip")
    parser.add_argument("--out", default=None, help="output folder (default: ./graded_<pset>)")
    parser.add_argument("--workers", type=int, default=None, help="parallel graders (default: CPU cores)")
    parser.add_argument("--timeout", type=float, default=d.cell_timeout, help="seconds per notebook cell (default %(default)s)")
    parser.add_argument("--probe-timeout", type=float, default=d.probe_timeout,
                        help="seconds per hidden test of a unit (default %(default)s)")
    parser.add_argument("--total-timeout", type=float, default=d.total_timeout,
                        help="seconds for all of a notebook's cells (default %(default)s)")
    parser.add_argument("--memory-mb", type=int, default=d.memory_mb, help="memory limit per kernel (default %(default)s)")
    parser.add_argument("--job-timeout", type=float, default=None,
                        help="seconds one submission may take in all before its worker is stopped and the submission "
                             "reported as a grader error (default: what the other limits allow)")
    parser.add_argument("--regrade", action="store_true", help="grade again what is already graded")
    parser.add_argument("--data-dir", default=None, help="COURSE_DATA_DIR for the kernels")
    parser.add_argument("--name-regex", default=None,
                        help="regex with a (?P<student>...) group to read student ids from file names")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="grade without the bubblewrap sandbox where it cannot start (the notebooks then run with "
                             "your user's rights; every result says so)")
    parser.add_argument("--gradebook", default=None, metavar="PATH",
                        help="nbgrader gradebook (e.g. course/gradebook.db, or a database URL) to write the automatic "
                             "points into, and to read the manual points back from, for one final grade")


def run(args) -> int:
    from .grader import GradeOptions, GraderError
    from .problem_sets import get_problem_set

    try:
        get_problem_set(args.pset)
    except KeyError as exc:
        print(f"course-kit grade: {exc.args[0]}", file=sys.stderr)
        return 2
    if getattr(args, "gradebook", None):  # a wrong path is said now, not after grading the class
        from .gradebook import GradebookError, db_url

        try:
            db_url(args.gradebook)
        except GradebookError as exc:
            print(f"course-kit grade: --gradebook: {exc}", file=sys.stderr)
            return 2
    out = Path(args.out or f"graded_{args.pset}")
    options = GradeOptions(cell_timeout=args.timeout, total_timeout=args.total_timeout,
                           probe_timeout=args.probe_timeout, memory_mb=args.memory_mb, sandbox=not args.no_sandbox,
                           job_timeout=args.job_timeout)
    if args.no_sandbox:
        print("course-kit grade: --no-sandbox: the notebooks run with your user's rights (they can read and change "
              "your files); each result says so.", file=sys.stderr)
    try:
        report = grade_class(args.pset, args.submissions, out, args.workers, options, args.regrade, args.data_dir,
                             args.name_regex, progress=not args.no_progress)
    except (FileNotFoundError, SubmissionNameError) as exc:
        print(f"course-kit grade: {exc}", file=sys.stderr)
        return 2
    except GraderError as exc:
        print(f"course-kit grade: nothing was graded: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncourse-kit grade: interrupted; results so far are saved. Run the same command again to resume.",
              file=sys.stderr)
        return 130
    manual = None
    graded = {k: r for k, r in report.results.items() if not r.grader_error}  # grader errors have no grade
    if getattr(args, "gradebook", None):
        from .gradebook import GradebookError, sync_gradebook

        try:
            manual = sync_gradebook(args.pset, graded, args.gradebook, None)
            export_csv(args.pset, report.results, out / "grades.csv", manual=manual)
        except GradebookError as exc:
            print(f"course-kit grade: gradebook {args.gradebook}: {exc}", file=sys.stderr)
            return 1
    print_table(report.results)
    from .summary import summary_text, write_summary

    print("\n" + summary_text(write_summary(args.pset, graded, out, manual)))
    if manual is not None:
        print(f"Gradebook {args.gradebook}: automatic points written for {len(report.results)} students; "
              f"manual points read back for {len(manual)}. `nbgrader export` gives the final grades.")
    print(f"\n{len(report.graded)} graded, {len(report.skipped)} already graded (skipped), "
          f"{len(report.errors)} grader errors, {len(report.killed)} killed their grader; "
          f"{report.seconds:.1f} s. Results: {out / 'results'}; grades: {out / 'grades.csv'}; "
          f"feedback: {out / 'feedback'}")
    if report.errors:
        causes = sorted(set(report.errors.values()))
        print(f"\ncourse-kit grade: {len(report.errors)} submission(s) were NOT graded because the grader failed "
              f"(not the students): they have no grade in grades.csv (status '{GRADER_ERROR}'). Cause"
              f"{'s' if len(causes) > 1 else ''}:", file=sys.stderr)
        for cause in causes[:5]:
            print(f"  - {cause[:600]}", file=sys.stderr)
        if report.stopped:
            print(f"The batch stopped early: {report.stopped[:300]}.", file=sys.stderr)
        print("Fix the cause, then run the same command again: only the submissions without a grade are graded.",
              file=sys.stderr)
    return 1 if report.errors else 0
