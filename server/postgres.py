"""PostgreSQL storage (psycopg 3): the same SQL as SQLite's, for any number of replicas on one database.

`dkw serve --database postgresql://USER@HOST/DB`. Claims use `SELECT … FOR UPDATE SKIP LOCKED`, so two
replicas never take the same auction and never wait for each other; leases are timed by the database's
clock, so replicas on hosts with different clocks agree on when one expired. The schema is migrated at
start under an advisory lock (replicas starting together migrate once). A `search_path` in the URL
(`?options=-csearch_path%3Dmyschema`) puts the tables in another schema, as the tests do.

Connections come from a psycopg_pool.ConnectionPool that checks each one as it is handed out and replaces
it when the database dropped it (a restart, `pg_terminate_backend`); connecting is bounded in time, and
every operation is retried on a fresh connection (dkw.server.resilience) before StorageUnavailable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from dkw.server.resilience import CommitUnknown, Retrier, RetryPolicy, scrub
from dkw.server.storage import SqlStorage

#: Connections one server keeps open at most: gRPC threads, the dispatcher, lease renewals, watchers and
#: the audit trail share them.
POOL_SIZE = 8
#: Seconds to connect (per attempt) and to wait for a free connection of the pool, before a retry.
CONNECT_TIMEOUT_S = 3
CHECKOUT_TIMEOUT_S = 1.0  # short: the retrier tries again, and the pool keeps reconnecting meanwhile
#: Keys of the advisory locks held while migrating, and while checking the queue length before a submit.
MIGRATION_LOCK = 0x646B77  # "dkw" in ASCII
QUEUE_LOCK = 0x646B7771  # "dkwq"



class _Scrubbed(logging.Filter):
    """The pool's own log lines (why a reconnection failed: the real cause) without any URL's password,
    and each distinct line at most once every REPEAT_S seconds (the pool retries several times a second)."""

    REPEAT_S = 30.0
    passwords: set[str] = set()
    last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for password in self.passwords:
            text = scrub(text, password)
        record.msg, record.args = scrub(text, None), None
        now = time.monotonic()
        if now - self.last.get(record.msg, -self.REPEAT_S) < self.REPEAT_S:
            return False
        self.last[record.msg] = now
        return True


_SCRUBBED = _Scrubbed()
logging.getLogger("psycopg.pool").addFilter(_SCRUBBED)


class PostgresStorage(SqlStorage):
    backend = "postgres"
    exclusive = False
    NOW = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, pool_size: int = POOL_SIZE, *, retry: RetryPolicy | None = None):
        self.url = url
        try:
            password = conninfo_to_dict(url).get("password")
        except psycopg.ProgrammingError:
            password = None
        self.retrier = Retrier(retry, password=str(password) if password else None)
        if password:
            _SCRUBBED.passwords.add(str(password))
        self._pool = ConnectionPool(
            url, min_size=1, max_size=max(1, pool_size), open=False, check=ConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S}, timeout=CHECKOUT_TIMEOUT_S,
            reconnect_timeout=10.0, name="dkw")
        # fails at start, with the driver's message, if the database is unreachable: `dkw serve` reports it
        psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S).close()
        self._pool.open()
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def _lock_queue(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (QUEUE_LOCK,))

    def _before_migrate(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A checked connection of the pool, in autocommit mode (the audit trail uses it too)."""
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[Any]:
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute("BEGIN" if write else "BEGIN READ ONLY")
            try:
                yield cur
            except BaseException:
                if not conn.closed and not conn.broken:
                    try:
                        conn.execute("ROLLBACK")
                    except psycopg.Error:
                        pass  # the connection died with the transaction: the server rolled it back
                raise
            try:
                cur.execute("COMMIT")
            except psycopg.OperationalError as exc:
                raise CommitUnknown("the connection was lost during COMMIT") from exc

    def close(self) -> None:
        self._pool.close()
