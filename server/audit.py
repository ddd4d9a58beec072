"""The audit trail: one record per call to dkw.v1.Clearing, refused calls included, kept in the same
database as the auctions and only ever appended to (no API changes or deletes a record).

The SQL here is plain enough to run unchanged on SQLite and PostgreSQL: TEXT columns only, a text
primary key the service makes itself (nanoseconds since the epoch, zero-padded, plus a random suffix, so
it sorts by time and needs no AUTOINCREMENT/SERIAL), parameters passed as a sequence. Only the
placeholder differs between the drivers (`?` for sqlite3, `%s` for psycopg): `AuditTrail` takes the
paramstyle.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from dkw.server.resilience import StorageUnavailable

# ON CONFLICT: a retry after a COMMIT whose outcome was unknown writes the record once
INSERT = ("INSERT INTO audit_records (record_id, at, client_id, peer, method, auction_id, status_code, detail, server)"
          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (record_id) DO NOTHING")
SELECT = "SELECT record_id, at, client_id, peer, method, auction_id, status_code, detail, server FROM audit_records"
#: A database not migrated to version 5 yet (`dkw audit --data` before the upgraded server started) has no server.
SELECT_V4 = "SELECT record_id, at, client_id, peer, method, auction_id, status_code, detail FROM audit_records"
#: Records kept in memory while the database is away; at this many, mutating calls are refused.
DEFAULT_BACKLOG = 10_000
#: Seconds one write of a record is retried before it goes to (or stays in) the backlog.
APPEND_BUDGET_S = 1.0
#: Seconds between attempts to write the backlog while the database stays away.
FLUSH_RETRY_S = 1.0
log = logging.getLogger("dkw.server")
#: Longest `detail` kept (the refusal's message): a record is a line, not a copy of the request.
MAX_DETAIL = 500


@dataclass(frozen=True, slots=True)
class AuditRecord:
    record_id: str  # sorts by time; also the page token
    at: str  # ISO 8601 UTC
    client_id: str  # or "anonymous"
    peer: str  # e.g. "ipv4:10.1.2.3:51234"
    method: str  # e.g. "SubmitAuction"
    auction_id: str  # the stored auction the call named or created; "" if none
    status_code: str  # grpc status code name, e.g. "OK", "PERMISSION_DENIED"
    detail: str  # why it was refused; "" when OK
    server: str = ""  # the replica that handled the call (its lease owner name: host:pid:tag)

    def to_json(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "at": self.at, "client_id": self.client_id, "peer": self.peer,
                "method": self.method, "auction_id": self.auction_id, "status_code": self.status_code,
                "detail": self.detail, "server": self.server}


def new_record(client_id: str, peer: str, method: str, auction_id: str, code: grpc.StatusCode,
               detail: str = "") -> AuditRecord:
    now = time.time_ns()
    at = dt.datetime.fromtimestamp(now / 1e9, dt.UTC).isoformat(timespec="microseconds")
    return AuditRecord(f"{now:020d}-{secrets.token_hex(4)}", at, client_id, peer, method, auction_id, code.name,
                       detail[:MAX_DETAIL])


class AuditTrail:
    """Appends and pages audit records: over a DB-API connection in autocommit mode (sqlite3 with
    isolation_level=None, or psycopg with autocommit=True; `dkw audit` reads a file this way), or through
    the server's store (`on_storage`: its retries, and PostgreSQL's pool rather than a connection of its
    own that dies with the first restart).

    A record that cannot be written (the database is away) is kept in an in-memory backlog, in order, and
    written by a background thread as soon as the database answers; `full()` says when the backlog holds
    `backlog_limit` records, and the guard then refuses mutating calls rather than serve them unaudited.
    A record that finds the backlog full (a read's) is logged whole, never dropped silently."""

    def __init__(self, connection: Any = None, paramstyle: str = "qmark", *, storage: Any = None,
                 backlog_limit: int = DEFAULT_BACKLOG):
        self._db = connection
        self._storage = storage
        self._mark = "%s" if storage is not None or paramstyle != "qmark" else "?"
        self._lock = threading.Lock()  # the table itself comes with the store's schema (server/migrations.py)
        self.backlog_limit = backlog_limit
        self._backlog: collections.deque[AuditRecord] = collections.deque()
        self._pending = threading.Condition()
        self._closed = False
        self._flusher: threading.Thread | None = None
        self.server = ""  # set by `dkw serve`: the replica's name, written into every record it appends

    @classmethod
    def sqlite(cls, path: str | Path) -> AuditTrail:
        """The trail in a SQLite file over a connection of its own (`dkw audit`, while a server may run)."""
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return cls(db)

    @classmethod
    def on_storage(cls, storage: Any, backlog_limit: int = DEFAULT_BACKLOG) -> AuditTrail:
        """The trail in the server's own store (`dkw.server.storage.SqlStorage`), sharing its connections."""
        return cls(storage=storage, backlog_limit=backlog_limit)

    def _sql(self, text: str) -> str:
        return text.replace("?", self._mark)

    def _execute(self, sql: str, params: tuple, *, budget_s: float | None = None) -> list[tuple]:
        if self._storage is None:
            with self._lock:
                cur = self._db.execute(self._sql(sql), params)
                return cur.fetchall() if cur.description else []
        storage = self._storage
        write = not sql.startswith("SELECT")  # SQLite: a read goes on beside another process's write lock
        return storage.retrier.run(lambda _: storage._all_rows(self._sql(sql), *params, write=write),
                                   what="audit trail", budget_s=budget_s)

    def _write(self, record: AuditRecord, budget_s: float | None = None) -> None:
        self._execute(INSERT, (record.record_id, record.at, record.client_id, record.peer, record.method,
                               record.auction_id, record.status_code, record.detail, record.server),
                      budget_s=budget_s)

    # ---- the backlog ---------------------------------------------------------------------------------

    def append(self, record: AuditRecord) -> None:
        """Write the record now, or keep it for the background writer (never raises for a storage fault)."""
        if self.server and not record.server:  # stamped now, so a record kept in the backlog names it too
            record = dataclasses.replace(record, server=self.server)
        with self._pending:
            queued = bool(self._backlog)
        away = self._storage is not None and self._storage.retrier.down  # no second wait in the same call
        if not queued and not away:
            try:
                self._write(record, budget_s=APPEND_BUDGET_S)
                return
            except StorageUnavailable as exc:
                log.warning("audit trail: cannot record %s by %s now (%s): kept in memory", record.method,
                            record.client_id, exc)
        self._keep(record)

    def _keep(self, record: AuditRecord) -> None:
        with self._pending:
            if len(self._backlog) >= self.backlog_limit:
                log.error("audit trail: backlog full (%d records): record NOT kept: %s", len(self._backlog),
                          json.dumps(record.to_json(), ensure_ascii=False))
                return
            self._backlog.append(record)
            n = len(self._backlog)
            if n == 1 or n % max(1, self.backlog_limit // 10) == 0:
                log.warning("audit trail: %d record(s) waiting for the database (limit %d; at the limit, "
                            "Clear, SubmitAuction and CancelClearing are refused)", n, self.backlog_limit)
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, name="dkw-audit-flusher", daemon=True)
                self._flusher.start()
            self._pending.notify_all()

    def backlog(self) -> int:
        """Records kept in memory, not yet written."""
        with self._pending:
            return len(self._backlog)

    def full(self) -> bool:
        with self._pending:
            return len(self._backlog) >= self.backlog_limit

    def _flush_loop(self) -> None:
        """Write the backlog oldest first whenever the database answers; look again every second."""
        while True:
            with self._pending:
                while not self._backlog and not self._closed:
                    self._pending.wait()
                if not self._backlog:
                    return
                record = self._backlog[0]
            try:
                self._write(record, budget_s=APPEND_BUDGET_S)
            except StorageUnavailable:  # still away: the retrier logged why
                if self._closed:
                    return
                time.sleep(FLUSH_RETRY_S)
                continue
            except Exception:  # not a storage fault: retrying would not help; the record goes to the log whole
                log.exception("audit trail: record NOT written: %s", json.dumps(record.to_json(), ensure_ascii=False))
            with self._pending:
                self._backlog.popleft()
                if not self._backlog:
                    log.info("audit trail: the records kept while the database was away are written; backlog empty")
                self._pending.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the backlog to drain; True when it did."""
        deadline = time.monotonic() + timeout
        with self._pending:
            while self._backlog and time.monotonic() < deadline:
                self._pending.wait(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            return not self._backlog

    # ---- reading -------------------------------------------------------------------------------------

    def page(self, *, limit: int, before: str | None = None, client_id: str | None = None) -> list[AuditRecord]:
        """Newest first; `before` (a record_id) continues a previous page. Records still in the backlog are
        included, so a page never misses a call that was made."""
        where, params = [], []
        if before is not None:
            where.append("record_id < ?")
            params.append(before)
        if client_id is not None:
            where.append("client_id = ?")
            params.append(client_id)
        tail = (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY record_id DESC LIMIT ?"
        with self._pending:
            kept = [r for r in self._backlog if (before is None or r.record_id < before)
                    and (client_id is None or r.client_id == client_id)]
        try:
            found = self._execute(SELECT + tail, (*params, limit))
        except StorageUnavailable:
            raise
        except Exception:  # schema version 4 (read by `dkw audit --data` before a server migrated it): no server
            found = self._execute(SELECT_V4 + tail, (*params, limit))
        rows = {row[0]: AuditRecord(*row) for row in found}
        rows.update((r.record_id, r) for r in kept)
        return sorted(rows.values(), key=lambda r: r.record_id, reverse=True)[:limit]

    def close(self, flush_s: float = 5.0) -> None:
        """Write what the backlog holds (within `flush_s`); what cannot be written is logged, record by record."""
        if self._backlog and not self.flush(flush_s):
            with self._pending:
                for record in self._backlog:
                    log.error("audit trail: the database is away at shutdown: record NOT written: %s",
                              json.dumps(record.to_json(), ensure_ascii=False))
                self._backlog.clear()
        with self._pending:
            self._closed = True
            self._pending.notify_all()
        if self._db is not None:
            with self._lock:
                self._db.close()
