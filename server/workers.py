"""Solves run in a bounded pool of worker processes, never in the gRPC threads.

Each slot owns one long-lived worker process (spawned once, so Pyomo and HiGHS are imported once) and a
pipe. A job sends the stored document; the worker validates it, clears it with the same `clear` as the
CLI, and streams `Progress` snapshots back before the result document. A job is stopped in one of two
ways: `stop` (CancelClearing) signals the worker (SIGUSR1), which interrupts HiGHS and returns the best
result found so far, with status CANCELLED; `cancel` (the caller went away, shutdown, a lost lease)
terminates the process, which stops HiGHS at once whatever it is doing, and the slot spawns a fresh
process for its next job. A reader thread per running job turns the pipe's messages into callbacks.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from dkw.server.logs import configure_logging, log_format
from dkw.solvers.api import Progress

log = logging.getLogger("dkw.server")

#: With a call deadline, the MIP gets this share of the time left when the worker starts; the rest is for
#: validating, building the model, pricing and sending the answer back.
SOLVE_SHARE_OF_DEADLINE = 0.5
#: Never ask HiGHS for less than this (a tiny limit would end before the first incumbent).
MIN_TIME_LIMIT_S = 0.2
#: After `stop`, the seconds a worker gets to hand back its best result before it is terminated.
STOP_GRACE_S = 15.0
#: Set in a worker by SIGUSR1: the running clearing stops at HiGHS's next callback, keeping its incumbent.
_stop_requested = threading.Event()


@dataclass(frozen=True, slots=True)
class Job:
    """What a worker needs: the stored document and how to solve it."""

    document: bytes
    input_sha256: str
    options: dict[str, Any]  # SolveOptions fields: time_limit_s, mip_rel_gap, threads
    deadline: float | None = None  # time.time() by which the caller wants the answer
    policy_path: str | None = None  # market policy merged over the shipped one (`dkw serve --policy`)
    start: dict[str, Any] | None = None  # an incumbent a draining replica handed back (dkw.server.drain)


@dataclass(slots=True)
class Outcome:
    """How a job ended: `result` (a result document), `invalid` (problems), `error`, `cancelled`, `crashed`."""

    kind: str
    result: dict[str, Any] | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)
    message: str = ""


def options_for_deadline(options: dict[str, Any], deadline: float | None, now: float):
    """The SolveOptions of a job: the caller's time limit, shortened so the answer comes before its deadline."""
    from dkw.solvers.api import SolveOptions

    limit = options.get("time_limit_s")
    if deadline is not None:
        budget = max(MIN_TIME_LIMIT_S, (deadline - now) * SOLVE_SHARE_OF_DEADLINE)
        limit = budget if limit is None else min(limit, budget)
    kwargs = {k: v for k, v in options.items() if v is not None and k != "time_limit_s"}
    return SolveOptions(time_limit_s=limit, **kwargs)


def run_job(job: Job, progress: Callable[[Progress], None], stop: threading.Event | None = None) -> Outcome:
    """Validate and clear one job in this process: the path `dkw clear` takes, with the stored bytes.
    `stop` set while it runs ends the solve early with the best result so far (status CANCELLED)."""
    from dkw.clearing.document import InvalidAuction, load_auction, parse_document
    from dkw.clearing.engine import clear
    from dkw.solvers.api import SolveCancelled

    started = time.perf_counter()
    progress(Progress("validating", 0.0))
    try:
        auction = load_auction(parse_document(job.document), input_sha256=job.input_sha256)
    except InvalidAuction as exc:
        return Outcome("invalid", problems=[(p.path, p.message) for p in exc.problems])
    options = options_for_deadline(job.options, job.deadline, time.time())
    policy = _policy(job.policy_path)

    def relay(p: Progress) -> None:  # elapsed counts from the start of the job, validation included
        progress(Progress(p.phase, time.perf_counter() - started, p.incumbent, p.bound, p.gap, p.message))

    try:
        result = clear(auction, options, progress=relay, cancel=stop, policy=policy, start=job.start)
    except SolveCancelled as exc:  # stopped before any solution existed
        return Outcome("cancelled", message=str(exc))
    return Outcome("result", result=result.to_document())


@functools.lru_cache(maxsize=4)
def _policy(path: str | None):
    """The market policy, read once per worker (the server checked it at start)."""
    from dkw.clearing.rules import load_policy

    return load_policy(path)


def _watch_parent(parent_pid: int) -> None:
    """Exit when the server is gone (killed with SIGKILL), instead of finishing an orphaned solve."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def worker_main(conn: Connection, parent_pid: int, logs: str = "text") -> None:
    """Entry point of a worker process: serve jobs from the pipe until it closes. It logs in the server's
    format (`--log-format json`: JSON lines, tracebacks included) and exits quietly once the server is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server decides
    signal.signal(signal.SIGUSR1, lambda *_: _stop_requested.set())
    configure_logging(logs, logging.WARNING)  # as before: the solvers' per-component lines stay out
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    # Pyomo makes a multiprocessing lock when imported. Under this spawned process's default (spawn) it is
    # a named semaphore the resource tracker follows, and a worker that is terminated (a cancel, a
    # shutdown) leaves it behind: "resource_tracker: There appear to be 1 leaked semaphore objects" on the
    # server's stderr at exit. Made under fork it has no name, so nothing can leak. The solvers' own
    # process pools name their context (spawn), and a daemonic worker starts none.
    multiprocessing.set_start_method("fork", force=True)
    # warm: the first job should not pay for the imports (both back-ends: HiGHS, and Pyomo for `straight`)
    import dkw.clearing.engine  # noqa: F401
    import dkw.solvers.fastpath.auction  # noqa: F401
    import dkw.solvers.straight  # noqa: F401

    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return

        def send_progress(p: Progress) -> None:
            try:
                conn.send(("progress", p.phase, p.elapsed_s, p.incumbent, p.bound, p.gap, p.message))
            except OSError:  # the pipe broke: the server is gone (SIGKILL); nothing to report to
                os._exit(0)

        _stop_requested.clear()
        try:
            outcome = run_job(job, send_progress, _stop_requested)
        except Exception as exc:  # a bug or a solver failure: report it, keep the worker
            log.exception("clearing failed")
            outcome = Outcome("error", message=f"{type(exc).__name__}: {exc}")
        try:
            conn.send(("outcome", outcome))
        except (BrokenPipeError, OSError):
            return


class JobHandle:
    """A running job: wait for it, or cancel it (its worker process is terminated)."""

    def __init__(self, slot: _Slot):
        self._slot = slot
        self.done = threading.Event()
        self.outcome: Outcome | None = None
        self.cancel_reason: str | None = None
        self.hand_back = False  # stopped by a drain: a submitted auction goes back to the queue (dkw.server.drain)

    def cancel(self, reason: str) -> None:
        """Terminate the worker now: no result."""
        if self.done.is_set() or self.cancel_reason is not None:
            return
        self.cancel_reason = reason
        self._slot.terminate()

    def stop(self, reason: str, grace: float = STOP_GRACE_S) -> None:
        """Interrupt the solve, keeping the best result found so far; terminate if it takes over `grace` s."""
        if self.done.is_set() or self.cancel_reason is not None:
            return
        self.cancel_reason = reason
        self._slot.signal(signal.SIGUSR1)
        timer = threading.Timer(grace, self._slot.terminate_job, args=(self,))
        timer.daemon = True
        timer.start()

    def wait(self, timeout: float | None = None) -> Outcome | None:
        self.done.wait(timeout)
        return self.outcome


class _Slot:
    """One place in the pool: a worker process, spawned when first needed and after it was terminated."""

    def __init__(self, pool: WorkerPool, index: int):
        self.pool = pool
        self.index = index
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.busy = False
        self.handle: JobHandle | None = None
        self._lock = threading.Lock()

    def ensure_process(self) -> None:
        with self._lock:
            if self.process is not None and self.process.is_alive():
                return
            self._close()
            parent, child = self.pool.context.Pipe()
            process = self.pool.context.Process(target=worker_main, args=(child, os.getpid(), log_format()),
                                                name=f"dkw-worker-{self.index}", daemon=True)
            process.start()
            child.close()
            self.process, self.conn = process, parent

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.process is not None:
            self.process.join(timeout=5)
        self.process = self.conn = None

    def terminate(self) -> None:
        with self._lock:
            if self.process is not None and self.process.is_alive():
                self.process.terminate()

    def signal(self, signum: int) -> None:
        with self._lock:
            if self.process is not None and self.process.is_alive():
                os.kill(self.process.pid, signum)

    def terminate_job(self, handle: JobHandle) -> None:
        """Terminate the worker if it is still running `handle` (not a later job)."""
        if self.handle is handle and not handle.done.is_set():
            self.terminate()

    def start(self, job: Job, on_progress: Callable[[Progress], None],
              on_done: Callable[[JobHandle], None]) -> JobHandle:
        """Run `job` on this (reserved) slot; `on_done` is called once, from the reader thread."""
        handle = self.handle = JobHandle(self)
        try:
            self.ensure_process()
            self.conn.send(job)
        except Exception as exc:
            handle.outcome = Outcome("crashed", message=f"could not start a worker: {exc}")
            self._complete(handle, on_done)
            return handle
        threading.Thread(target=self._read, args=(handle, on_progress, on_done), daemon=True,
                         name=f"dkw-job-reader-{self.index}").start()
        return handle

    def _read(self, handle: JobHandle, on_progress: Callable[[Progress], None],
              on_done: Callable[[JobHandle], None]) -> None:
        conn, process = self.conn, self.process
        outcome: Outcome | None = None
        while outcome is None:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                process.join(timeout=5)
                if handle.cancel_reason is not None:
                    outcome = Outcome("cancelled", message=handle.cancel_reason)
                else:
                    outcome = Outcome("crashed", message=f"the worker process died (exit code {process.exitcode})")
                with self._lock:
                    self._close()
                break
            if message[0] == "progress":
                try:
                    on_progress(Progress(*message[1:]))
                except Exception:
                    log.exception("progress listener failed")
            else:
                outcome = message[1]
        handle.outcome = outcome
        self._complete(handle, on_done)

    def release(self) -> None:
        self.pool._release(self)

    def _complete(self, handle: JobHandle, on_done: Callable[[JobHandle], None]) -> None:
        try:
            on_done(handle)
        except Exception:
            log.exception("job completion failed")
        finally:
            handle.done.set()
            self.handle = None
            self.release()


class WorkerPool:
    """A fixed number of worker processes. `reserve` never blocks: None when every slot is busy, so the
    caller can answer RESOURCE_EXHAUSTED instead of queueing behind a long solve."""

    def __init__(self, size: int, on_release: Callable[[], None] | None = None):
        if size < 1:
            raise ValueError(f"the worker pool needs at least one process, got {size}")
        self.context = multiprocessing.get_context("spawn")  # no fork of a threaded gRPC process
        self.slots = [_Slot(self, i) for i in range(size)]
        self.on_release = on_release
        self._lock = threading.Lock()
        self._closed = False

    @property
    def size(self) -> int:
        return len(self.slots)

    def start(self) -> None:
        """Spawn every worker now, so the first calls do not wait for imports."""
        for slot in self.slots:
            slot.ensure_process()

    def reserve(self) -> _Slot | None:
        with self._lock:
            if self._closed:
                return None
            for slot in self.slots:
                if not slot.busy:
                    slot.busy = True
                    return slot
        return None

    def _release(self, slot: _Slot) -> None:
        with self._lock:
            slot.busy = False
        if self.on_release is not None:
            self.on_release()

    def shutdown(self) -> None:
        """Terminate every worker (running jobs end as cancelled) and wait for them."""
        with self._lock:
            self._closed = True
        for slot in self.slots:
            handle = slot.handle
            if handle is not None:
                handle.cancel("the server shut down")
            slot.terminate()
        for slot in self.slots:
            with slot._lock:
                if slot.process is not None:
                    slot.process.join(timeout=5)

