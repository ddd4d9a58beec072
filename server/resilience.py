"""Storage faults: which database errors heal by themselves, the bounded retries around every storage
operation, and the one error callers of the service ever see for them (`StorageUnavailable`).

A database that goes away for a few seconds (a restart, a failover, `pg_terminate_backend`, a lock held by
another process) must not turn into UNKNOWN answers carrying the driver's message, nor into a lost write.
Every storage operation runs through `Retrier.run`: a transient failure is retried on a fresh connection
with exponential backoff until the policy's budget is spent, then `StorageUnavailable` is raised (its
message names no host, port, database or user; the real cause is logged server-side, the URL's password
scrubbed).

Whether a write may be run again depends on where it failed:
- before COMMIT, the transaction rolled back (the server discards an open transaction of a lost
  connection): running it again is safe;
- at COMMIT, a lost connection leaves the outcome unknown (`CommitUnknown`). The attempt function is told
  (`maybe_committed=True`) so it can look for its own write before writing again; an operation that
  cannot (`rerun_after_commit=False`) gives up with StorageUnavailable instead of running twice.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("dkw.server")
T = TypeVar("T")

#: What a caller of the service is told; never the driver's text (it names the host, port and database).
UNAVAILABLE_MESSAGE = "storage unavailable, retry"


class StorageUnavailable(Exception):
    """The database could not be reached (or written) within the storage's bounded retries. `cause` is a
    short text safe to show a client (SQLite's locked / read-only file), or "" (PostgreSQL: nothing)."""

    def __init__(self, cause: str = ""):
        super().__init__(f"{UNAVAILABLE_MESSAGE}: {cause}" if cause else UNAVAILABLE_MESSAGE)
        self.cause = cause


class CommitUnknown(Exception):
    """The connection was lost while the transaction committed: it may or may not have been written.
    Raised by a storage's `_tx`, with the driver's error as `__cause__`."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: attempts go on until `budget_s` has passed since the first one."""

    budget_s: float = 5.0
    first_delay_s: float = 0.05
    max_delay_s: float = 1.0
    factor: float = 2.0


# ---- which errors heal -------------------------------------------------------------------------------

#: SQLite result codes (Python's `sqlite_errorname`) of a file another process holds locked.
SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_BUSY_TIMEOUT")


def sqlite_cause(exc: BaseException) -> str | None:
    """A client-safe cause for a SQLite error that is the file's fault (locked, read-only, disk full,
    unreadable), or None for anything else (a bug: not hidden behind UNAVAILABLE)."""
    if not isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        return None
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    if name in SQLITE_BUSY or "database is locked" in text or "is busy" in text:
        return "the database file is locked by another process"
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return "the database file is read-only"
    if name == "SQLITE_FULL" or "disk is full" in text:
        return "the disk holding the database file is full"
    if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")) or "disk i/o error" in text or "unable to open" in text:
        return "the database file cannot be read or written"
    return None


def is_transient(exc: BaseException) -> bool:
    """True for failures that a fresh connection and a moment's wait may heal:
    - psycopg: OperationalError and its subclasses, i.e. a lost or refused connection, the server
      shutting the session down (AdminShutdown, CannotConnectNow), a statement timeout (QueryCanceled),
      SerializationFailure and DeadlockDetected (whose transaction the server rolled back), and the pool
      finding no working connection in time (PoolTimeout);
    - SQLite: the file is locked by another process beyond the busy timeout.
    A read-only SQLite file is a storage fault too, but not transient (`sqlite_cause`)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        psycopg = None
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        return True
    return sqlite_cause(exc) == "the database file is locked by another process"


def rolled_back(exc: BaseException) -> bool:
    """A failure at COMMIT that the server answered with a rollback (serialization failure, deadlock:
    SQLSTATE class 40): the outcome is known, nothing was written."""
    return (getattr(exc, "sqlstate", None) or "").startswith("40")


def scrub(text: str, password: str | None) -> str:
    """An error text for the server's own log: the URL's password replaced, wherever it appears."""
    text = re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return text.replace(password, "***") if password else text


# ---- the retry loop ----------------------------------------------------------------------------------


class Retrier:
    """Runs storage operations with bounded retries; tells `listeners` (the health monitor) whenever one
    gives up, and each later success, so health follows every storage failure at once."""

    def __init__(self, policy: RetryPolicy | None = None, password: str | None = None):
        self.policy = policy or RetryPolicy()
        self.password = password
        self.quiet = False  # True while a store opens: its caller reports the failure in one line of its own
        self.down = False  # the last operation gave up and none succeeded since
        self._listeners: list[Callable[[bool], None]] = []
        self._lock = threading.Lock()

    def listen(self, listener: Callable[[bool], None]) -> None:
        """`listener(False)` after an operation gave up, `listener(True)` after one succeeded."""
        with self._lock:
            self._listeners.append(listener)

    def _tell(self, up: bool) -> None:
        self.down = not up
        for listener in list(self._listeners):
            try:
                listener(up)
            except Exception:  # a listener's bug must not turn a storage answer into an error
                log.exception("storage listener failed")

    def run(self, attempt: Callable[[bool], T], *, what: str, rerun_after_commit: bool = True,
            budget_s: float | None = None, quiet: bool = False) -> T:
        """`attempt(maybe_committed)` until it returns; transient failures retried within the budget.
        `quiet`: giving up is logged at DEBUG only (health pings, best-effort writes: they say it otherwise)."""
        policy = self.policy
        budget = policy.budget_s if budget_s is None else budget_s
        started = time.monotonic()
        delay, tries, maybe_committed = policy.first_delay_s, 0, False
        while True:
            tries += 1
            try:
                value = attempt(maybe_committed)
            except CommitUnknown as unknown:
                cause = unknown.__cause__ or unknown
                if not rolled_back(cause):
                    if not rerun_after_commit:
                        raise self._give_up(what, cause, tries, started, "its commit's outcome is unknown",
                                            quiet=quiet) from None
                    maybe_committed = True
                error: BaseException = cause
            except Exception as exc:
                unavailable = sqlite_cause(exc)
                if not is_transient(exc):
                    if unavailable is None:
                        raise
                    raise self._give_up(what, exc, tries, started, "not transient", unavailable, quiet) from None
                error = exc
            else:
                if tries > 1:
                    log.info("storage: %s succeeded after %d attempts", what, tries)
                self._tell(True)
                return value
            if time.monotonic() - started + delay > budget:
                raise self._give_up(what, error, tries, started, "retries spent", sqlite_cause(error) or "",
                                    quiet) from None
            time.sleep(delay)
            delay = min(delay * policy.factor, policy.max_delay_s)

    def _give_up(self, what: str, exc: BaseException, tries: int, started: float, why: str,
                 cause: str = "", quiet: bool = False) -> StorageUnavailable:
        log.log(logging.DEBUG if self.quiet or quiet else logging.WARNING,
                "storage unavailable: %s failed after %d attempt(s) in %.1f s (%s): %s: %s", what, tries,
                time.monotonic() - started, why, type(exc).__name__, scrub(str(exc).strip(), self.password))
        self._tell(False)
        return StorageUnavailable(cause)


#: Seconds a best-effort write (a progress snapshot) and a health ping are retried.
SHORT_BUDGET_S = 1.0


def retried(kind: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a storage method: `kind` "read" or "idempotent" runs it again after any transient failure
    (also one at COMMIT); "once" only when its transaction surely rolled back; "best effort" for a short
    while, then returns None (what it writes is replaced by the next call anyway)."""

    def wrap(method: Callable[..., T]) -> Callable[..., T]:
        def run(self: Any, *args: Any, **kwargs: Any) -> T:
            if kind == "best effort":
                if self.retrier.down:  # skipped at once: the caller (a solve's progress reader) must not wait
                    return None  # type: ignore[return-value]
                try:
                    return self.retrier.run(lambda _: method(self, *args, **kwargs), what=method.__name__,
                                            budget_s=min(SHORT_BUDGET_S, self.retrier.policy.budget_s), quiet=True)
                except StorageUnavailable:
                    return None  # type: ignore[return-value]
            return self.retrier.run(lambda _maybe_committed: method(self, *args, **kwargs), what=method.__name__,
                                    rerun_after_commit=kind != "once")

        run.__name__, run.__doc__, run.__wrapped__ = method.__name__, method.__doc__, method  # type: ignore[attr-defined]
        return run

    return wrap
