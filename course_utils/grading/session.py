"""Run a notebook's cells in a fresh, limited IPython kernel: the code path shared by the grader
and the students' self-check.

:class:`KernelSession` starts a kernel (``course_utils.grading.kernel``: an IPython kernel with the
instructor's package out of reach) in ``grading`` mode in a working directory of its own, runs code
with a time limit per call, and kills the kernel (with its children) when its resident memory passes
a limit. Each call returns a status (``ok``, ``error``, ``timeout``, ``dead``, ``memory``) instead of
raising, so that a caller can go on after anything a notebook does.

Starting a kernel costs a few seconds, most of it importing torch. By default a *zygote* does that
once per process: a helper process that has imported the heavy libraries forks a fresh kernel per
session (see :mod:`course_utils.grading.zygote`). Every session still gets a new process of its own.
Set ``COURSE_KIT_ZYGOTE=0`` (or ``KernelSession(..., zygote=False)``) for a cold start.

A cell that does not stop when interrupted (it catches ``KeyboardInterrupt``) is stopped by killing
the kernel; the call reports ``timeout`` and :attr:`KernelSession.alive` is False.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty


KERNEL_NAME = "course-kit-grading"
MAX_OUTPUT_CHARS = 200_000  # text kept from one call's outputs (a cell printing in a loop cannot fill memory)
MAX_ERROR_CHARS = 4_000  # of an error's message (a notebook can raise an exception with a 280 MB message)


def _clipped_error(out: dict) -> dict:
    """An error output past the output cap, kept small: its message and the last lines of its traceback."""
    out = dict(out)
    out["evalue"] = str(out.get("evalue", ""))[:MAX_ERROR_CHARS]
    out["traceback"] = [str(line)[:MAX_ERROR_CHARS] for line in list(out.get("traceback") or [])[-20:]]
    return out
INTERRUPT_GRACE = 3.0  # seconds a timed-out cell gets to stop after an interrupt before the kernel is killed


@dataclass
class RunLimits:
    """Limits for running a notebook."""

    cell_timeout: float = 120.0  # seconds one cell may run
    total_timeout: float = 600.0  # seconds all of the notebook's cells may run together
    memory_mb: int = 4096  # resident memory of the kernel (with its children) before it is killed
    threads: int = 1  # torch threads in the kernel (1 when several kernels run side by side)
    sandbox: bool = False  # run the kernel in the bubblewrap sandbox (course_utils.grading.sandbox)


def kernel_env(options, data_dir: str | None = None) -> dict:
    threads = int(getattr(options, "threads", 1) or 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_", "COURSE_KIT_"))}
    env.pop("PYTHONPATH", None)
    env.update({
        "NBGRADER_EXECUTION": "autograde", "COURSE_MODE": "grading", "COURSE_SKIP_INSTALL": "1",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg",
        "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "COURSE_KIT_THREADS": str(threads),
        "JUPYTER_PLATFORM_DIRS": "1",
    })
    memory_mb = int(getattr(options, "memory_mb", 0) or 0)
    if memory_mb:
        # Address space for data well above the resident limit: torch reserves more than it touches. A single
        # allocation beyond it fails at once with an error; the watchdog stops slower growth.
        env["COURSE_KIT_DATA_LIMIT_MB"] = str(max(2 * memory_mb, memory_mb + 2048))
    if data_dir:
        env["COURSE_DATA_DIR"] = str(data_dir)
    return env


def _zygote_wanted(flag) -> bool:
    if flag is not None:
        return bool(flag)
    return os.environ.get("COURSE_KIT_ZYGOTE", "1").strip().lower() not in ("0", "false", "no")


def output_from_msg(msg: dict) -> dict:
    """A notebook output (nbformat v4 layout) from an IOPub message (nbformat is slow to import)."""
    mtype, content = msg["msg_type"], msg["content"]
    if mtype == "stream":
        return {"output_type": "stream", "name": content.get("name", "stdout"), "text": content.get("text", "")}
    if mtype == "error":
        return {"output_type": "error", "ename": content.get("ename", ""), "evalue": content.get("evalue", ""),
                "traceback": list(content.get("traceback", []))}
    out = {"output_type": mtype, "data": content.get("data", {}), "metadata": content.get("metadata", {})}
    if mtype == "execute_result":
        out["execution_count"] = content.get("execution_count")
    return out


from .zygote import (_Watchdog, _Zygote, _alive, _descendants, _kill_tree, _name,  # noqa: E402,F401
                     sandbox_command, sandbox_env)


class KernelNotReady(RuntimeError):
    """The kernel exited, or did not answer, before it was ready."""


class KernelSession:
    """A kernel that runs the student's cells and can be restarted without the cell that killed it."""

    def __init__(self, workdir: Path | None, options, data_dir: str | None = None, zygote: bool | None = None,
                 preload=()):
        """``workdir``: the kernel's working folder; in the sandbox (``options.sandbox``) the session makes a
        fresh one inside the sandbox's scratch folder at every start (read :attr:`workdir` after start)."""
        self.options = options
        self.sandbox = bool(getattr(options, "sandbox", False))
        # In the sandbox the session makes the working folder at each start; otherwise one is made here.
        self.workdir = (Path(workdir) if workdir is not None else
                        Path("/nonexistent") if self.sandbox else Path(tempfile.mkdtemp(prefix="ck_work_")))
        self.env = kernel_env(options, data_dir)
        self.preload = tuple(sorted(set(preload or ())))  # heavy modules the notebook imports: the zygote
        # imports them once, for all later kernels
        self.zygote = _zygote_wanted(zygote)
        self.wall = None  # "bwrap" or "user" (course_utils.grading.sandbox.sandbox_mode) when sandboxed
        if self.sandbox:
            from .sandbox import sandbox_mode

            self.wall = sandbox_mode() or "bwrap"  # none: bwrap fails to start, with its own message
            if self.wall == "user":
                self.zygote = False  # each kernel is started afresh as the kernel's user
        self.client = None
        self.pid = None
        self.watchdog = None
        self.restarts = 0
        self.peak_rss = 0
        self.alive = False
        self.probe_key = None  # (key bytes, entry name) of the current kernel's signed probe entry point
        self._count = 0

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start a kernel; one that exits or does not answer before it is ready is tried once more, from a new
        zygote (a transient failure is not a grader error); twice is the grader's failure, with both causes."""
        try:
            self._start()
        except KernelNotReady as first:
            zygote = getattr(self, "_zygote_obj", None)
            self.stop()
            if zygote is not None:
                zygote.close()  # the next start forks from a new one
            try:
                self._start()
            except KernelNotReady as second:
                raise RuntimeError(f"the grading kernel did not start, twice: {first}; then: {second}") from None

    def _start(self) -> None:
        from jupyter_client import BlockingKernelClient

        self._count += 1
        zygote = None
        if self.zygote:
            for attempt in (1, 2):  # a zygote that was ending (its last kernel killed it) is replaced once
                try:
                    zygote = _Zygote.get(self.env, self.sandbox, self.preload)
                    break
                except Exception:
                    if zygote is not None:
                        zygote.close()
                    zygote = None
                    if attempt == 2:
                        if self.sandbox:
                            raise
                        self.zygote = False
        extra = None
        for attempt in (1, 2):
            conn, env, log = self._prepare(zygote)
            self._zygote_obj = zygote
            if zygote is None:
                break
            try:
                self.pid = zygote.spawn(conn, str(self.workdir), env, log)
            except Exception:
                if not self.sandbox:
                    self.zygote, self._zygote_obj = False, None
                    break
                if attempt == 2:
                    raise
                # The zygote was ending (a notebook killed it): once more with a new one, and new folders, since
                # the old zygote's scratch folder (where this kernel's files were) goes with it.
                self._discard_private()
                zygote.close()
                zygote = _Zygote.get(self.env, self.sandbox, self.preload)
            else:
                extra = zygote.sandbox_pids if self.sandbox else None
                break
        if self._zygote_obj is None:
            cmd = [sys.executable, "-m", "course_utils.grading.kernel", "-f", conn]
            kwargs = {}
            if self.wall == "bwrap":
                cmd = sandbox_command(str(self._private), env, chdir=str(self.workdir)) + cmd
            elif self.wall == "user":
                from .sandbox import user_kwargs

                kwargs = user_kwargs()
            logf = open(log, "ab")
            proc = subprocess.Popen(cmd, env=env, cwd=str(self.workdir), stdin=subprocess.DEVNULL, stdout=logf,
                                    stderr=logf, start_new_session=True, **kwargs)
            logf.close()
            self._proc = proc
            self.pid = proc.pid
            if self.wall == "bwrap":  # watch and kill the whole sandbox (bwrap and all it runs)
                root = proc.pid
                extra = lambda: _descendants(root)  # noqa: E731
            elif self.wall == "user":  # every process of the kernel's user is this kernel's
                from .sandbox import user_pids

                extra = user_pids
        self.watchdog = _Watchdog(self.pid, int(self.options.memory_mb), extra)
        self.watchdog.start()
        kc = BlockingKernelClient(connection_file=conn)
        kc.load_connection_file()
        kc.start_channels()
        self.client = kc
        deadline = time.monotonic() + 180
        while True:
            try:
                kc.wait_for_ready(timeout=2)
                break
            except RuntimeError:
                if not _alive(self.pid) or time.monotonic() > deadline:
                    self.alive = False
                    why = "it exited before it was ready" if not _alive(self.pid) else "it did not answer in 180 s"
                    if self.watchdog is not None and self.watchdog.tripped:
                        why = f"it went over the memory limit of {int(self.options.memory_mb)} MB before it was ready"
                    log = self.kernel_log()[-2000:].strip()
                    raise KernelNotReady(f"{why}; its log: {log}" if log else f"{why} (its log is empty)") from None
        self.alive = True

    def _prepare(self, zygote):
        """The kernel's private folder, connection file (with a key) and probe key file; (conn, env, log)."""
        from jupyter_client.connect import write_connection_file

        if self.sandbox:  # everything the kernel may touch lives in the sandbox's scratch folder
            base = zygote.scratch if zygote is not None else tempfile.mkdtemp(prefix="ck_scratch_")
            private = Path(tempfile.mkdtemp(prefix="k_", dir=base))
            self.workdir = private / "work"
            self._scratch = None if zygote is not None else base
        else:
            private = Path(tempfile.mkdtemp(prefix="ck_kernel_"))  # outside the student's working directory
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._private = private
        conn = str(private / "connection.json")
        # A key on the connection: nothing else on the machine can drive this kernel.
        write_connection_file(conn, transport="ipc", ip=str(private / "k"), key=os.urandom(32).hex().encode())
        key, entry = os.urandom(32), "_ck_" + os.urandom(8).hex()
        key_file = private / f"key_{os.urandom(6).hex()}.json"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"key": key.hex(), "entry": entry}, fh)
        self.probe_key = (key, entry)
        env = dict(self.env, COURSE_KIT_PROBE_KEY_FILE=str(key_file), IPYTHONDIR=str(private / "ipython"))
        if self.sandbox:
            env.update(sandbox_env(str(private)))
        if self.wall != "bwrap":  # the kernel watches the grader and ends with it (bwrap does that otherwise)
            env["COURSE_KIT_GRADER_PID"] = str(os.getpid())
        if self.wall == "user":
            from .sandbox import give_to_user, user_library

            env.pop("COURSE_KIT_SANDBOX", None)  # no namespace of its own: the forked-kernel rules do not apply
            if user_library():
                env["PYTHONPATH"] = user_library()
            give_to_user(self._scratch or str(private))
        return conn, env, str(private / "kernel.log")

    def _discard_private(self) -> None:
        import shutil

        for attr in ("_private", "_scratch"):
            folder = getattr(self, attr, None)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
                setattr(self, attr, None)

    def kernel_log(self) -> str:
        try:
            return (self._private / "kernel.log").read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def stop(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
            self.peak_rss = max(self.peak_rss, self.watchdog.peak)
            self.watchdog = None
        if self.client is not None:
            try:
                self.client.stop_channels()
            except Exception:
                pass
            self.client = None
        if self.pid is not None:
            _kill_tree(self.pid)
            if self.wall == "user":
                from .sandbox import clean_user

                clean_user()
            zygote = getattr(self, "_zygote_obj", None)
            if zygote is not None:
                zygote.reset()
            proc = getattr(self, "_proc", None)
            if proc is not None:
                try:
                    proc.wait(5)
                except Exception:
                    pass
                self._proc = None
            self.pid = None
        private = getattr(self, "_private", None)
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
            self._private = None
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
            self._scratch = None
        self.alive = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- running code -----------------------------------------------------------------------------
    def _dead_status(self) -> str:
        return "memory" if self.watchdog and self.watchdog.tripped else "dead"

    def interrupt(self) -> None:
        pid = self.pid
        if pid is not None and self.sandbox and getattr(self, "_proc", None) is not None:
            pid = next(iter(p for p in _descendants(pid) if _name(p) != "bwrap"), None)  # the kernel, not bwrap
        if pid is not None:
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass

    def run(self, source: str, timeout: float) -> dict:
        """Execute code; returns {'status': ok|error|timeout|dead|memory, 'error': str, 'outputs': [...]}."""
        kc = self.client
        if kc is None or not self.alive:
            return {"status": "dead", "error": "the kernel is not running", "outputs": []}
        while True:  # drop replies of earlier calls
            try:
                kc.get_shell_msg(timeout=0)
            except Empty:
                break
        msg_id = kc.execute(source, store_history=False, allow_stdin=False, stop_on_error=False)
        deadline = time.monotonic() + max(1.0, float(timeout))
        outputs, chars, error, timed_out = [], 0, None, False
        while True:
            now = time.monotonic()
            if now >= deadline:
                if timed_out:  # the interrupt did not stop it: kill the kernel
                    self._kill()
                    return {"status": "timeout", "error": "the cell did not stop when interrupted; the kernel was stopped",
                            "outputs": outputs}
                timed_out = True
                self.interrupt()
                deadline = now + INTERRUPT_GRACE
                continue
            try:
                msg = kc.get_iopub_msg(timeout=min(0.5, deadline - now))
            except Empty:
                if not _alive(self.pid):
                    self._kill()
                    return {"status": self._dead_status(), "error": "", "outputs": outputs}
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            mtype, content = msg["msg_type"], msg["content"]
            if mtype == "status":
                if content.get("execution_state") == "idle":
                    break
                continue
            if mtype in ("stream", "display_data", "execute_result", "error"):
                if mtype == "error":
                    error = content
                if chars < MAX_OUTPUT_CHARS:
                    try:
                        out = output_from_msg(msg)
                    except Exception:
                        continue
                    if mtype == "error":
                        out = _clipped_error(out)
                    size = len(json.dumps(out.get("text", "") if mtype == "stream" else out.get("data", {}) or {}))
                    chars += size
                    if chars >= MAX_OUTPUT_CHARS:
                        out = {"output_type": "stream", "name": "stderr",
                               "text": "[output truncated by the grader: too much output]\n"}
                    outputs.append(out)
                elif mtype == "error":
                    outputs.append(_clipped_error(output_from_msg(msg)))
        if self.watchdog and self.watchdog.tripped:
            self._kill()
            return {"status": "memory", "error": "", "outputs": outputs}
        if timed_out:
            return {"status": "timeout", "error": "TimeoutError: cell timed out", "outputs": outputs}
        if error is not None:
            ename, evalue = str(error.get("ename", "Error"))[:200], str(error.get("evalue", ""))[:MAX_ERROR_CHARS]
            if ename == "KeyboardInterrupt" and timed_out:
                return {"status": "timeout", "error": "TimeoutError: cell timed out", "outputs": outputs}
            return {"status": "error", "error": f"{ename}: {evalue}".strip(), "outputs": outputs}
        return {"status": "ok", "error": "", "outputs": outputs}

    def _kill(self) -> None:
        if self.pid is not None:
            _kill_tree(self.pid)
        self.alive = False
