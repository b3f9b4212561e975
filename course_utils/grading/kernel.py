"""The IPython kernel that runs a submission while it is graded.

It is an ordinary IPython kernel, prepared before any student code runs:

* the instructor's ``autograder`` package is removed from the import machinery, so a notebook
  cannot import the reference solutions or the judges (the verdicts never depend on this: judges
  run in the grader's own process; see docs/ARCHITECTURE.md);
* resource limits: ``RLIMIT_DATA`` (so that a huge allocation fails at once with an error instead
  of swapping the machine; the grader's watchdog handles the rest), no core files;
* the process dies with its parent (``PR_SET_PDEATHSIG``), so no kernel outlives its grader;
* torch uses the number of threads the grader chose;
* the probe entry point is armed (:func:`course_utils.grading.runtime.arm`) with a key that only
  the grader knows, read from a file that is deleted at once.

Two ways to start it:

``python -m course_utils.grading.kernel -f <connection file>``
    a cold start (imports everything, then serves one kernel).
``python -m course_utils.grading.kernel --zygote``
    a *zygote*: imports the heavy libraries once (torch, matplotlib, IPython, course_utils), then
    reads JSON requests on stdin and forks one fresh kernel per request. Each kernel is a new
    process: nothing one submission does can be seen by the next. The zygote itself never runs
    student code.
"""
from __future__ import annotations

import importlib.abc
import json
import os
import signal
import sys

HIDDEN_PACKAGES = ("autograder",)
ENV_KEY_FILE = "COURSE_KIT_PROBE_KEY_FILE"
ENV_DATA_LIMIT = "COURSE_KIT_DATA_LIMIT_MB"
ENV_THREADS = "COURSE_KIT_THREADS"
ENV_GRADER_PID = "COURSE_KIT_GRADER_PID"
# Heavy libraries a problem-set notebook imports; the zygote imports them once for all kernels.
PRELOAD = ("numpy", "torch", "torch.nn", "torch.nn.functional", "torch.optim", "matplotlib", "matplotlib.pyplot",
           "ipykernel.kernelapp", "ipykernel.ipkernel", "IPython", "course_utils", "course_utils.data",
           "course_utils.training", "course_utils.plots", "course_utils.checks", "course_utils.configs", "course_utils.grading.runtime",
           "tqdm", "tqdm.auto", "PIL.Image")
ENV_PRELOAD = "COURSE_KIT_PRELOAD"  # more modules for the zygote to import, comma-separated (e.g. transformers)
ENV_STARTED_WITH = "COURSE_KIT_STARTED_WITH"  # the top-level modules a kernel had loaded before any cell ran
KERNEL_ARGS = ("--HistoryManager.enabled=False", "--InteractiveShell.xmode=Plain", "--IPKernelApp.capture_fd_output=False", "--Application.log_level=40")


class _Blocked(importlib.abc.MetaPathFinder):
    """Refuses to import the instructor's packages."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in HIDDEN_PACKAGES:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not available while grading)", name=fullname)
        return None


def hide_instructor_packages() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in HIDDEN_PACKAGES:
            del sys.modules[name]
        mapping = getattr(sys.modules.get(name), "MAPPING", None) if name.startswith("__editable__") else None
        if isinstance(mapping, dict):  # setuptools' editable-install finder
            for pkg in HIDDEN_PACKAGES:
                mapping.pop(pkg, None)
    # Remove path entries that are a course repository (a source checkout on sys.path). An installation's
    # site-packages, which also holds torch and everything else, stays: the finder below refuses the
    # instructor's packages there, and the sandbox (course_utils.grading.sandbox) covers their folders.
    from course_utils.grading.sandbox import _is_source_checkout

    sys.path[:] = [p for p in sys.path if not _is_source_checkout(p or os.getcwd())]
    if not any(isinstance(f, _Blocked) for f in sys.meta_path):
        sys.meta_path.insert(0, _Blocked())


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the grader still kills kernels it started
        pass


def _set_limits() -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    mb = os.environ.get(ENV_DATA_LIMIT, "")
    if mb.isdigit() and int(mb) > 0:
        limit = int(mb) * 2**20
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        try:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard if hard != resource.RLIM_INFINITY else limit))
        except (ValueError, OSError):
            pass


def _arm_probes() -> None:
    key_file = os.environ.pop(ENV_KEY_FILE, "")
    if not key_file:
        return
    try:
        with open(key_file) as fh:
            key = json.load(fh)
    finally:
        try:
            os.unlink(key_file)
        except OSError:
            pass
    from course_utils.grading import runtime

    runtime.arm(bytes.fromhex(key["key"]), key["entry"])


def _lifeline(grader_pid: int) -> None:
    """End this kernel when the grader that started it is gone (a kernel forked by the zygote is not
    tied to the zygote, so a notebook that kills its parent does not take itself down by the same
    stroke in the middle of the next cell)."""
    import threading
    import time

    def watch():
        while True:
            time.sleep(1.0)
            try:
                os.kill(grader_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except OSError:
                pass

    threading.Thread(target=watch, name="grader-lifeline", daemon=True).start()


def prepare_kernel_process(forked: bool = False) -> None:
    """Everything that must happen in a kernel's process before the first student cell."""
    grader = os.environ.pop(ENV_GRADER_PID, "")
    if forked and grader.isdigit():
        _lifeline(int(grader))
    elif not (forked and os.environ.get("COURSE_KIT_SANDBOX") == "1"):  # in the sandbox, bwrap ends it with the grader
        _die_with_parent()
    _set_limits()
    hide_instructor_packages()
    # What the kernel starts with (a zygote's kernel: the zygote's preloads), so that the grader can tell what the
    # notebook imported itself (autograder.grader._imported_heavy_modules; informational only).
    os.environ[ENV_STARTED_WITH] = ",".join(sorted({name.partition(".")[0] for name in sys.modules}))
    threads = os.environ.get(ENV_THREADS, "")
    if threads.isdigit() and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))
    _arm_probes()


def _launch(connection_file: str) -> None:
    from ipykernel import kernelapp

    sys.argv = [sys.argv[0] or "course_utils.grading.kernel", "-f", connection_file, *KERNEL_ARGS]
    kernelapp.launch_new_instance()


def main() -> None:
    hide_instructor_packages()
    args = sys.argv[1:]
    if args[:1] == ["--zygote"]:
        zygote()
        return
    conn = args[args.index("-f") + 1] if "-f" in args else None
    if conn is None:
        raise SystemExit("usage: python -m course_utils.grading.kernel -f CONNECTION_FILE | --zygote")
    if os.environ.get(ENV_KEY_FILE):
        import torch  # noqa: F401  (the probes need it; arming snapshots it)
    prepare_kernel_process()
    _launch(conn)


# ---- zygote ---------------------------------------------------------------------------------

def _preload() -> None:
    import importlib

    extra = [m.strip() for m in os.environ.get(ENV_PRELOAD, "").split(",") if m.strip()]
    for name in (*PRELOAD, *extra):
        try:
            importlib.import_module(name)
        except Exception:  # an optional library missing only costs time later
            pass


def _warm_up() -> None:
    """Do once, in the zygote, the slow first-time work every kernel would repeat: matplotlib's font
    loading and first layout, torch's lazily imported optimiser / autograd machinery. No threads
    are started (torch runs on one thread here; each kernel sets its own number)."""
    try:
        import torch

        torch.set_num_threads(1)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 4, 2, 1), torch.nn.ReLU(), torch.nn.ConvTranspose2d(4, 3, 4, 2, 1),
                                  torch.nn.Sigmoid())
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = torch.rand(2, 3, 8, 8)
        loss = torch.nn.functional.mse_loss(net(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        torch.nn.functional.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]))
    except Exception:
        pass
    try:
        import io

        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(4, 2))
        axes[0].plot([0, 1], [1, 0], label="loss")
        axes[0].set_title("warm-up")
        axes[0].set_xlabel("epoch")
        axes[0].legend()
        axes[1].imshow([[0.0, 1.0], [1.0, 0.0]])
        axes[1].bar(["a", "b"], [1, 2])
        fig.suptitle("warm-up")
        fig.tight_layout()
        fig.savefig(io.BytesIO(), format="png", dpi=50)
        plt.close("all")
    except Exception:
        pass


def _child(request: dict) -> None:
    """In the forked child: become a fresh kernel process."""
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        fd_in = os.open(os.devnull, os.O_RDONLY)
        fd_log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd_in, 0)
        os.dup2(fd_log, 1)
        os.dup2(fd_log, 2)
        os.close(fd_in)
        os.close(fd_log)
        _close_inherited_channels()
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(4, 1)  # PR_SET_DUMPABLE 1: only the zygote is shielded
        except Exception:
            pass
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        prepare_kernel_process(forked=True)
        _launch(request["conn"])
    except BaseException:  # noqa: BLE001 - a child must never return into the zygote's loop
        import traceback

        traceback.print_exc()
    finally:
        os._exit(0)


def _close_inherited_channels() -> None:
    """A kernel keeps no pipe or socket of the zygote's (it could talk to the grader through them)."""
    import stat

    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        fd = int(name)
        if fd < 3:
            continue
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            try:
                os.close(fd)
            except OSError:
                pass


def _reset_sandbox() -> None:
    """In the sandbox, after a submission: end every process but bwrap's and this zygote, and empty the
    temp folders the sandbox shares between its kernels, so nothing of one submission meets the next."""
    from course_utils.grading.sandbox import empty_temp_folders, kill_all

    me = os.getpid()
    keep = os.path.realpath(os.environ.get("COURSE_KIT_SCRATCH", os.getcwd()))  # the grader's folder, bound in
    # This zygote and the processes above it (bwrap's pid 1, the shell that keeps the sandbox open): killing
    # the shell would end the sandbox, and with it this zygote, which the next submission then had to rebuild.
    spared, pid = {1, me}, me
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        spared.add(pid)
    kill_all(lambda: [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) not in spared])
    empty_temp_folders(keep=keep)
    # The scratch folder too (the only other writable one): nothing a kernel wrote there (a module, a .pth,
    # a startup file) may meet the next submission's kernel or this zygote's next import.
    import shutil

    for entry in os.listdir(keep) if os.path.isdir(keep) else []:
        path = os.path.join(keep, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass
    os.makedirs(os.path.join(keep, "home"), exist_ok=True)


def zygote() -> None:
    """Preload, then fork one kernel per JSON request read on stdin; reply with its pid on stdout."""
    _die_with_parent()
    # Imports never come from the current folder (the sandbox's scratch folder, which kernels can write).
    here = os.path.realpath(os.getcwd())
    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != here]
    sandboxed = os.environ.get("COURSE_KIT_SANDBOX") == "1"
    try:  # kernels cannot trace this process or read its memory (/proc/<pid>/mem)
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0)  # PR_SET_DUMPABLE 0
    except Exception:
        pass
    _preload()
    _warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped automatically
    out = sys.stdout
    import threading

    out.write(json.dumps({"ready": os.getpid(), "threads": threading.active_count()}) + "\n")
    out.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError:
            continue
        if request.get("quit"):
            break
        if request.get("reset"):
            if sandboxed:
                _reset_sandbox()
            out.write(json.dumps({"reset": sandboxed}) + "\n")
            out.flush()
            continue
        if "preload" in request:  # import more libraries here, once, for every later kernel
            import importlib

            for name in request["preload"]:
                try:
                    importlib.import_module(str(name))
                except Exception:
                    pass
            out.write(json.dumps({"preloaded": list(request["preload"])}) + "\n")
            out.flush()
            continue
        pid = os.fork()
        if pid == 0:
            _child(request)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
