"""The audit trail: one record per call to dkw.v1.Clearing, refused calls included, kept in the same
database as the auctions and only ever appended to (no API changes or deletes a record).

The SQL here is plain enough to run unchanged on SQLite and PostgreSQL: TEXT columns only, a text
primary key the service makes itself (nanoseconds since the epoch, zero-padded, plus a random suffix, so
it sorts by time and needs no AUTOINCREMENT/SERIAL), parameters passed as a sequence. Only the
placeholder differs between the drivers (`?` for sqlite3, `%s` for psycopg): `AuditTrail` takes the
paramstyle.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

INSERT = ("INSERT INTO audit_records (record_id, at, client_id, peer, method, auction_id, status_code, detail, server)"
          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
SELECT = "SELECT record_id, at, client_id, peer, method, auction_id, status_code, detail, server FROM audit_records"
#: A database not migrated to version 5 yet (`dkw audit --data` before the upgraded server started) has no server.
SELECT_V4 = "SELECT record_id, at, client_id, peer, method, auction_id, status_code, detail FROM audit_records"
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
    """Appends and pages audit records over a DB-API connection in autocommit mode (sqlite3 with
    isolation_level=None, or psycopg with autocommit=True); one lock serialises its use."""

    def __init__(self, connection: Any, paramstyle: str = "qmark"):
        self._db = connection
        self._mark = "?" if paramstyle == "qmark" else "%s"
        self._lock = threading.Lock()  # the table itself comes with the store's schema (server/migrations.py)
        self.server = ""  # set by `dkw serve`: the replica's name, written into every record it appends

    @classmethod
    def sqlite(cls, path: str | Path) -> AuditTrail:
        """The trail in the server's SQLite file (its own connection; WAL lets it write beside the store's)."""
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return cls(db)

    def _sql(self, text: str) -> str:
        return text.replace("?", self._mark)

    def append(self, record: AuditRecord) -> None:
        with self._lock:
            self._db.execute(self._sql(INSERT), (record.record_id, record.at, record.client_id, record.peer,
                                                 record.method, record.auction_id, record.status_code, record.detail,
                                                 record.server or self.server))

    def page(self, *, limit: int, before: str | None = None, client_id: str | None = None) -> list[AuditRecord]:
        """Newest first; `before` (a record_id) continues a previous page."""
        where, params = [], []
        if before is not None:
            where.append("record_id < ?")
            params.append(before)
        if client_id is not None:
            where.append("client_id = ?")
            params.append(client_id)
        tail = (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY record_id DESC LIMIT ?"
        with self._lock:
            try:
                rows = self._db.execute(self._sql(SELECT + tail), (*params, limit)).fetchall()
            except Exception:  # schema version 4: no server column yet
                rows = self._db.execute(self._sql(SELECT_V4 + tail), (*params, limit)).fetchall()
        return [AuditRecord(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
