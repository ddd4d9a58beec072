"""The components' processes: the big ones in a spawned pool (safe under a threaded caller such as the gRPC
server), the rest inline in this process, smallest first; a cancel reaches both."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from dkw.solvers.api import SolveCancelled, SolveOptions
from dkw.solvers.arrays import ArrayProblem
from dkw.solvers.highs import ComponentSolution, MipEvents

#: in a pool process: the parent's cancel, as a multiprocessing event (set by `_init_worker`)
_worker_cancel: Any = None


def _init_worker(cancel_event: Any) -> None:
    global _worker_cancel
    _worker_cancel = cancel_event


def _solve_in_worker(sub: ArrayProblem, options: SolveOptions, deadline: float | None) -> ComponentSolution:
    from dkw.solvers.fastpath.component import solve_component

    # HiGHS stops at its next callback when the parent cancels, and the component keeps its incumbent
    events = None if _worker_cancel is None else MipEvents(None, _worker_cancel, time.perf_counter())
    return solve_component(sub, options, deadline=deadline, on_event=events)


def worker_count(workers: int | None) -> int:
    """Processes to use: two at most (the machines measured), one in a daemonic process (the server's solver
    workers may not start processes: no pool, no search beside branch-and-bound there)."""
    if multiprocessing.current_process().daemon:
        return 1
    return workers if workers is not None else min(2, os.cpu_count() or 1)


class ComponentPool:
    """The big components (at least `parallel_min_cols` columns) in processes when there are two or more
    of them and `workers` allows; `inline` says which the caller solves itself."""

    def __init__(self, subs: list[ArrayProblem], options: SolveOptions, deadline: float | None, workers: int):
        big = [pos for pos, s in enumerate(subs) if len(s.cols) >= options.tuning.parallel_min_cols]
        self.futures: dict[Future, int] = {}
        self.executor = None
        self.grace_s = options.tuning.cancel_grace_s
        if len(big) >= 2 and workers >= 2:
            ctx = multiprocessing.get_context("spawn")
            self.worker_cancel = ctx.Event()
            self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                                initargs=(self.worker_cancel,))
            for pos in big:
                self.futures[self.executor.submit(_solve_in_worker, subs[pos], options, deadline)] = pos
        self.pooled = set(self.futures.values())

    def collect(self, record: Callable[[int, ComponentSolution], None], cancel: threading.Event | None) -> None:
        """Wait for the pooled components, `record`ing each; on a cancel the processes stop their solves and
        answer with their incumbents, within the grace time, else they are terminated."""
        pending = set(self.futures)
        cancel_seen = None
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in finished:
                record(self.futures[fut], fut.result())
            if cancel is not None and cancel.is_set():
                if cancel_seen is None:
                    self.worker_cancel.set()
                    cancel_seen = time.monotonic()
                elif time.monotonic() - cancel_seen > self.grace_s:
                    for proc in list(getattr(self.executor, "_processes", {}).values()):
                        proc.terminate()
                    raise SolveCancelled("cancelled while solving")

    def close(self, cancel: threading.Event | None) -> None:
        if self.executor is None:
            return
        if cancel is not None and cancel.is_set():
            self.worker_cancel.set()  # also when the cancel came while this process solved the small components
        self.executor.shutdown(wait=True, cancel_futures=True)
