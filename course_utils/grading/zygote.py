"""The kernels' fork server (the *zygote*), the memory watchdog and the process helpers of
:mod:`course_utils.grading.session`.

Starting a kernel costs a few seconds, most of it importing torch. A zygote does that once per
process: a helper process that has imported the heavy libraries forks a fresh kernel per session
(``python -m course_utils.grading.kernel --zygote``). The watchdog kills a kernel, with its
children, when their resident memory passes the limit.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from pathlib import Path

from .sandbox import host_pid


def sandbox_env(scratch: str) -> dict:
    """Where a sandboxed process keeps its home, temp and caches: inside its scratch folder."""
    return {"COURSE_KIT_SANDBOX": "1", "COURSE_KIT_SCRATCH": scratch, "HOME": os.path.join(scratch, "home"), "TMPDIR": "/tmp", "MPLCONFIGDIR": os.path.join(scratch, "home", ".mpl"),
            "XDG_CACHE_HOME": os.path.join(scratch, "home", ".cache"),
            "JUPYTER_RUNTIME_DIR": os.path.join(scratch, "home", ".jupyter")}


def sandbox_command(scratch: str, env: dict, chdir: str | None = None) -> list:
    from .sandbox import bwrap_command

    os.makedirs(os.path.join(scratch, "home"), exist_ok=True)
    return bwrap_command(scratch, readonly=[env.get("COURSE_DATA_DIR", "")], chdir=chdir)


# ---- process helpers ------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _descendants(pid: int) -> list:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _name(pid: int) -> str:
    import psutil

    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return ""


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = proc.children(recursive=True) + [proc]
    except psutil.Error:
        procs = []
    try:
        os.killpg(pid, signal.SIGKILL)  # the kernel leads its own session / process group
    except OSError:
        pass
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


class _Zygote:
    """A preloaded helper process that forks fresh kernels (one per grader process and environment)."""

    _instances: dict = {}
    _lock = threading.Lock()

    def __init__(self, env: dict, sandbox: bool = False):
        self.home = tempfile.mkdtemp(prefix="ck_zygote_")  # the grader's side: the log
        self.sandbox = sandbox
        # The kernels' side: in the sandbox, the only folder they can write (their working folders live here).
        self.scratch = tempfile.mkdtemp(prefix="ck_scratch_") if sandbox else self.home
        cmd = [sys.executable, "-m", "course_utils.grading.kernel", "--zygote"]
        if sandbox:
            # A shell stays behind the zygote, so that a kernel that kills its zygote does not end the sandbox
            # (and itself with it) a moment later, in the middle of another cell.
            cmd = sandbox_command(self.scratch, env) + ["/bin/sh", "-c", '"$@"; exec sleep 2147483647 <&- >&-', "sh", *cmd]
            env = dict(env, **sandbox_env(self.scratch))
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(self.home, "zygote.log"), "ab"),
            env=env, cwd=self.scratch, start_new_session=True, text=True, bufsize=1)
        line = self.proc.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"the kernel zygote did not start: {self.log()[-1500:]}")
        self.pid = self.proc.pid
        self.zygote_pid = self.pid  # the zygote's own pid as the grader sees it (bwrap runs it in the sandbox)
        self.keep = {self.pid}  # pids that are the sandbox's own machinery (bwrap, the shell behind the zygote)
        if sandbox:
            self.zygote_pid = host_pid(self.pid, int(json.loads(line)["ready"])) or -1
            import psutil

            try:
                self.keep |= {p.pid for p in psutil.Process(self.zygote_pid).parents()}
            except psutil.Error:
                pass
        self.request_lock = threading.Lock()
        self.preloaded: set = set()

    def log(self) -> str:
        try:
            return Path(self.home, "zygote.log").read_text(errors="replace")
        except OSError:
            return ""

    @classmethod
    def get(cls, env: dict, sandbox: bool = False, preload=()) -> "_Zygote":
        """The zygote of this environment with exactly ``preload`` imported (a problem set's heavy libraries; the
        zygote of another problem set is closed, so that its libraries neither take memory nor hide an import)."""
        preload = tuple(sorted(set(preload or ())))
        key = json.dumps([sandbox, sorted(env.items()), preload])
        with cls._lock:
            z = cls._instances.get(key)
            if z is None or z.proc.poll() is not None or not _alive(z.zygote_pid):
                for other in list(cls._instances.values()):  # one preloaded process at a time (memory)
                    other.close()
                cls._instances.clear()
                z = cls._instances[key] = cls(env, sandbox)
        try:
            z.preload(preload)
        except Exception:
            z.close()
            raise
        return z

    def _request(self, request: dict, timeout: float = 60.0) -> dict:
        import select
        import signal

        with self.request_lock:
            try:  # a kernel can stop the zygote (SIGSTOP): it is woken first, and never waited on forever
                os.kill(self.zygote_pid, signal.SIGCONT)
            except (OSError, TypeError):
                pass
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            if not ready:
                raise RuntimeError(f"the kernel zygote did not answer within {timeout:g} s")
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the kernel zygote stopped")
        return json.loads(line)

    def preload(self, modules) -> None:
        missing = [m for m in modules if m not in self.preloaded]
        if not missing:
            return
        self._request({"preload": missing}, timeout=600)
        self.preloaded.update(missing)

    def spawn(self, conn: str, cwd: str, env: dict, log: str) -> int:
        """Fork a kernel; its pid as the grader sees it."""
        pid = int(self._request({"conn": conn, "cwd": cwd, "env": env, "log": log})["pid"])
        if not self.sandbox:
            return pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the pid inside the sandbox's namespace -> the host's
            found = host_pid(self.pid, pid)
            if found:
                return found
            time.sleep(0.01)
        raise RuntimeError("the sandboxed kernel could not be found")

    def reset(self) -> None:
        """After a submission: end every process it left in the sandbox and empty the shared temp folders."""
        if self.sandbox and self.proc.poll() is None:
            try:
                if not _alive(self.zygote_pid):
                    raise RuntimeError("the zygote is gone")
                self._request({"reset": True})
            except Exception:
                self.close()  # a zygote that cannot reset is not reused
                with self._lock:
                    for k, z in list(self._instances.items()):
                        if z is self:
                            del self._instances[k]

    def sandbox_pids(self) -> list:
        """Host pids of the processes in the sandbox, but the zygote and bwrap's own."""
        import psutil

        try:
            procs = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []
        out = []
        for p in procs:
            try:
                if p.pid != self.zygote_pid and p.pid not in self.keep:
                    out.append(p.pid)
            except psutil.Error:
                continue
        return out

    def close(self) -> None:
        try:
            if not _alive(self.zygote_pid):
                raise RuntimeError("the zygote is gone")
            self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(5)
        except Exception:
            pass
        if self.proc.poll() is None:
            _kill_tree(self.proc.pid)
            self.proc.kill()
        if self.sandbox:
            import shutil

            shutil.rmtree(self.scratch, ignore_errors=True)

    @classmethod
    def close_all(cls) -> None:
        for z in list(cls._instances.values()):
            z.close()
        cls._instances.clear()


atexit.register(_Zygote.close_all)


class _Watchdog(threading.Thread):
    """Kills the kernel (and its children) when their resident memory passes the limit."""

    def __init__(self, pid: int, limit_mb: int, extra=None):
        super().__init__(daemon=True)
        self.pid, self.limit = pid, limit_mb * 2**20
        self.extra = extra  # callable: more pids to count (what the kernel left in its sandbox)
        self.tripped = False
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop_event.wait(0.05):
            try:
                procs = [proc] + proc.children(recursive=True)
                if self.extra is not None:
                    seen = {p.pid for p in procs}
                    for pid in self.extra():
                        if pid not in seen:
                            try:
                                procs.append(psutil.Process(pid))
                            except psutil.Error:
                                pass
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            if rss > self.limit:
                self.tripped = True
                for p in procs[1:]:
                    _kill_tree(p.pid)
                _kill_tree(self.pid)
                return

    def stop(self) -> None:
        self._stop_event.set()
