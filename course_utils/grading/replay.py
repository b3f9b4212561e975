"""One loop that replays a notebook's code cells in a kernel session, used by the grader and the self-check.

A notebook is replayed the way the grader does it: every cell runs with the cell time limit inside one
time budget for the whole notebook; a cell that kills the kernel (``os._exit``, a crash, the memory
limit, a loop that ignores interrupts) is remembered as *fatal*, the kernel starts afresh, and every
other cell runs again without it, at most ``max_restarts`` times. The loop words nothing: it records
what happened (:class:`Replay`), and the grader and the self-check each say it in their own words.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Tuple


@dataclass
class Replay:
    """What happened while replaying a notebook (cell indices are the notebook's own)."""

    results: dict = field(default_factory=dict)  # index -> the result of the cell's last run (session.run's dict)
    fatal: dict = field(default_factory=dict)  # index -> the result of the run in which the cell killed the kernel
    not_run: list = field(default_factory=list)  # indices left out of the last replay by the time budget
    restarts: int = 0  # kernels started after the first
    gave_up: bool = False  # the kernel died more often than allowed: the last replay did not finish

    @property
    def finished(self) -> bool:
        return not self.gave_up


def replay(session, cells: Iterable[Tuple[int, str]], cell_timeout: float, total_timeout: float,
           max_restarts: int, state: Optional[Replay] = None,
           after_start: Optional[Callable[[object], None]] = None) -> Replay:
    """Run ``cells`` (``(index, source)`` pairs) in a fresh kernel of ``session``, skipping the cells that
    killed an earlier kernel. ``state`` carries what earlier replays learned (a later replay, after something
    else killed the kernel, skips the same cells and counts the same restarts). ``after_start(session)`` runs
    after every kernel start, before any cell; an exception from it or from the start propagates: that is a
    failure of the machinery, not of the notebook."""
    cells = list(cells)
    state = state if state is not None else Replay()
    while True:
        session.stop()
        session.start()
        if after_start is not None:
            after_start(session)
        deadline = time.monotonic() + total_timeout
        state.not_run = []
        died = None
        for position, (index, source) in enumerate(cells):
            if index in state.fatal:
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 1:
                state.not_run = [i for i, _ in cells[position:] if i not in state.fatal]
                break
            result = session.run(source, min(cell_timeout, remaining))
            state.results[index] = result
            if result["status"] in ("dead", "memory") or not session.alive:
                died = index
                break
        if died is None:
            return state
        state.fatal[died] = state.results.pop(died)
        if state.restarts >= max_restarts:
            state.gave_up = True
            return state
        state.restarts += 1


def restart_allowed(state: Replay, max_restarts: int) -> bool:
    """Whether one more kernel may be started (counting it) after something other than a cell killed it."""
    if state.restarts >= max_restarts:
        state.gave_up = True
        return False
    state.restarts += 1
    return True
