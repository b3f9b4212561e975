"""Run a notebook's cells in a fresh, limited IPython kernel: the code path shared by the grader
and the students' self-check.

:class:`KernelSession` starts a kernel (``course_utils.probes.kernel``: an IPython kernel with the
instructor's package out of reach) in ``grading`` mode in a working directory of its own, runs code
with a time limit per call, and kills the kernel (with its children) when its resident memory passes
a limit. Each call returns a status (``ok``, ``error``, ``timeout``, ``dead``, ``memory``) instead of
raising, so that a caller can go on after anything a notebook does.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

KERNEL_NAME = "course-kit-grading"


@dataclass
class RunLimits:
    """Limits for running a notebook."""

    cell_timeout: float = 120.0  # seconds one cell may run
    total_timeout: float = 600.0  # seconds all of the notebook's cells may run together
    memory_mb: int = 4096  # resident memory of the kernel (with its children) before it is killed
    threads: int = 1  # torch threads in the kernel (1 when several kernels run side by side)


def _kernel_spec_dir(root: Path) -> Path:
    spec = root / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "course_utils.probes.kernel", "-f", "{connection_file}"],
        "display_name": "Course kit (grading)", "language": "python"}))
    return root / "kernels"


def kernel_env(options, data_dir: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.pop("PYTHONPATH", None)
    env.update({
        "NBGRADER_EXECUTION": "autograde", "COURSE_MODE": "grading", "COURSE_SKIP_INSTALL": "1",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg",
        "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "OMP_NUM_THREADS": str(options.threads), "MKL_NUM_THREADS": str(options.threads),
    })
    if data_dir:
        env["COURSE_DATA_DIR"] = data_dir
    return env


class _Watchdog(threading.Thread):
    """Kills the kernel (and its children) when their resident memory passes the limit."""

    def __init__(self, pid: int, limit_mb: int):
        super().__init__(daemon=True)
        self.pid, self.limit = pid, limit_mb * 2**20
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
                rss = sum(p.memory_info().rss for p in procs if p.is_running())
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            if rss > self.limit:
                self.tripped = True
                for p in procs:
                    try:
                        p.kill()
                    except psutil.Error:
                        pass
                return

    def stop(self) -> None:
        self._stop_event.set()


class KernelSession:
    """A kernel that runs the student's cells and can be restarted without the cell that killed it."""

    def __init__(self, workdir: Path, options, data_dir: str | None = None):
        from jupyter_client.kernelspec import KernelSpecManager

        self.workdir, self.options = workdir, options
        self.ksm = KernelSpecManager(kernel_dirs=[str(_kernel_spec_dir(workdir / ".kernelspec"))])
        self.env = kernel_env(options, data_dir)
        self.client = None
        self.watchdog = None
        self.restarts = 0
        self.peak_rss = 0

    def start(self) -> None:
        import nbformat
        from jupyter_client.manager import AsyncKernelManager
        from nbclient import NotebookClient

        km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=self.ksm, transport="ipc",
                                ip=str(self.workdir / "kernel"))
        self.nb = nbformat.v4.new_notebook()
        self.client = NotebookClient(
            self.nb, km=km, timeout=int(self.options.cell_timeout), allow_errors=True, interrupt_on_timeout=True,
            error_on_timeout={"ename": "TimeoutError", "evalue": "cell timed out", "traceback": []},
            kernel_name=KERNEL_NAME, startup_timeout=120, shutdown_kernel="immediate",
            resources={"metadata": {"path": str(self.workdir)}},
        )
        self.client.start_new_kernel(env=self.env, cwd=str(self.workdir))
        self.client.start_new_kernel_client()
        pid = self.client.km.provisioner.process.pid
        self.watchdog = _Watchdog(pid, self.options.memory_mb)
        self.watchdog.start()

    def stop(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
            self.peak_rss = max(self.peak_rss, self.watchdog.peak)
        if self.client is not None:
            from nbclient.util import run_sync

            try:
                if self.client.kc is not None:
                    self.client.kc.stop_channels()
                run_sync(self.client.km.shutdown_kernel)(now=True)
            except Exception:
                pass
            try:
                run_sync(self.client.km.cleanup_resources)()
            except Exception:
                pass
        self.client = None

    def run(self, source: str, timeout: float) -> dict:
        """Execute code; returns {'status': ok|error|timeout|dead|memory, 'error': str, 'outputs': [...]}."""
        import nbformat
        from nbclient.exceptions import DeadKernelError

        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["execution"] = {}
        self.nb.cells = [cell]
        self.client.timeout = max(1, int(timeout))
        try:
            self.client.execute_cell(cell, 0)
        except DeadKernelError:
            status = "memory" if self.watchdog and self.watchdog.tripped else "dead"
            return {"status": status, "error": "", "outputs": cell.get("outputs", [])}
        except Exception as exc:  # nbclient gave up on the kernel in another way
            if self.watchdog and self.watchdog.tripped:
                return {"status": "memory", "error": "", "outputs": []}
            return {"status": "dead", "error": f"{type(exc).__name__}: {exc}", "outputs": cell.get("outputs", [])}
        if self.watchdog and self.watchdog.tripped:
            return {"status": "memory", "error": "", "outputs": cell.get("outputs", [])}
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if errors:
            ename = errors[-1].get("ename", "Error")
            status = "timeout" if ename == "TimeoutError" and errors[-1].get("evalue") == "cell timed out" else "error"
            return {"status": status, "error": f"{ename}: {errors[-1].get('evalue', '')}".strip(), "outputs": cell.outputs}
        return {"status": "ok", "error": "", "outputs": cell.outputs}
