"""PostgreSQL storage (psycopg 3): the same SQL as SQLite's, for any number of replicas on one database.

`dkw serve --database postgresql://USER@HOST/DB`. Claims use `SELECT … FOR UPDATE SKIP LOCKED`, so two
replicas never take the same auction and never wait for each other; leases are timed by the database's
clock, so replicas on hosts with different clocks agree on when one expired. The schema is migrated at
start under an advisory lock (replicas starting together migrate once). A `search_path` in the URL
(`?options=-csearch_path%3Dmyschema`) puts the tables in another schema, as the tests do.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from server.storage import SqlStorage

#: Connections one server keeps open: gRPC threads, the dispatcher, lease renewals and watchers share them.
POOL_SIZE = 8
#: Keys of the advisory locks held while migrating, and while checking the queue length before a submit.
MIGRATION_LOCK = 0x646B77  # "dkw" in ASCII
QUEUE_LOCK = 0x646B7771  # "dkwq"


class PostgresStorage(SqlStorage):
    backend = "postgres"
    exclusive = False
    NOW = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, pool_size: int = POOL_SIZE):
        self.url = url
        self._free: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False
        self._migrate()  # fails at start, with the driver's message, if the database is unreachable

    def _lock_queue(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (QUEUE_LOCK,))

    def _before_migrate(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; a broken one (the database restarted) is dropped, not reused."""
        self._slots.acquire()
        conn = None
        try:
            try:
                conn = self._free.get_nowait()
            except queue.Empty:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            yield conn
        finally:
            if conn is not None:
                if conn.closed or conn.broken or self._closed:
                    conn.close()
                else:
                    self._free.put(conn)
            self._slots.release()

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._free.get_nowait().close()
            except queue.Empty:
                return
