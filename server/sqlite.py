"""The embedded default store: one SQLite file under `dkw serve --data` (WAL mode), for one server.

The SQL is `dkw.server.storage.SqlStorage`'s, shared with PostgreSQL; what is SQLite's own is here: the file, its
lock, `BEGIN IMMEDIATE` transactions, and the one-line errors for a file the server cannot use.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dkw.server.resilience import Retrier, RetryPolicy, StorageUnavailable, sqlite_cause
from dkw.server.storage import SqlStorage


class DatabaseFileError(ValueError):
    """A SQLite file the server cannot use at start (locked by another process, read-only): one line that
    names the file and the fix (`dkw serve` prints it and exits 2)."""



class SqliteStorage(SqlStorage):
    """Storage in one SQLite file (WAL mode), one connection guarded by a lock: the service's writes are
    few and small next to a solve, so this never becomes the bottleneck. One server per file.

    Another process holding the file's write lock makes a write wait `busy_timeout_s`, then retry within
    the retry policy, then fail with StorageUnavailable naming the cause (reads go on beside it: WAL).
    A file that cannot be opened or written at start raises DatabaseFileError naming the file and the fix."""

    FILENAME = "dkw.sqlite3"
    backend = "sqlite"
    exclusive = True
    NOW = "((julianday('now') - 2440587.5) * 86400.0)"
    #: Seconds a statement waits for another process's write lock before SQLite says "database is locked".
    BUSY_TIMEOUT_S = 2.0

    def __init__(self, data_dir: str | Path, *, retry: RetryPolicy | None = None,
                 busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(data_dir) / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retrier = Retrier(retry)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=busy_timeout_s)
        except sqlite3.Error as exc:
            raise DatabaseFileError(file_problem(self.path, exc)) from None
        try:
            self.retrier.quiet = True
            self.retrier.run(lambda _: self._open(), what="open")
            self._migrate()
            self.retrier.run(lambda _: self._check_writable(), what="open")
        except (StorageUnavailable, sqlite3.Error) as exc:
            self._db.close()
            raise DatabaseFileError(file_problem(self.path, exc)) from None
        finally:
            self.retrier.quiet = False

    def _open(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")

    def _check_writable(self) -> None:
        """A read-only file opens, and reads, without complaint: a write that changes nothing finds out now."""
        with self._tx() as cur:
            cur.execute("DELETE FROM auctions WHERE 1 = 0")

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?")

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Cursor]:
        """BEGIN IMMEDIATE takes the write lock first (a locked file fails here, before anything is done);
        a failed COMMIT is rolled back, so its outcome is always known (SQLite is local)."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    cur.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()


def file_problem(path: Path, exc: BaseException) -> str:
    """`dkw serve`'s one line for a SQLite file it cannot use: the file, the cause, the fix."""
    cause = exc.cause if isinstance(exc, StorageUnavailable) else sqlite_cause(exc)
    if cause and "locked" in cause:
        return (f"{path}: {cause} (another dkw serve on the same --data, or a tool holding a write transaction); "
                "stop it, or give this server another --data")
    if cause and "read-only" in cause:
        return (f"{path}: {cause}; make the file and its directory writable by the user running dkw serve, "
                "or give another --data")
    return f"{path}: {cause or exc}; check the file and its directory, or give another --data"
