"""Where the server keeps auctions and results: a small `Storage` interface and its SQLite implementation.

SQLite is the embedded default (one file under `--data`); the interface is narrow on purpose, so a
PostgreSQL implementation can follow without touching the service. Stored per auction: the document as
received and its sha256, the received time, the state (QUEUED → RUNNING → DONE | FAILED | CANCELLED) with
the reason, and the result document with solver name/version, options, gap and timings.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED"
FINISHED = (DONE, FAILED, CANCELLED)

#: Kinds of stored auction: submitted for background clearing, or cleared for a waiting Clear call.
SUBMIT, CLEAR = "submit", "clear"


@dataclass(frozen=True, slots=True)
class StoredAuction:
    """One stored auction without its (possibly large) document and result."""

    auction_id: str
    seq: int  # insertion order, for paging
    kind: str  # SUBMIT | CLEAR
    idempotency_key: str | None
    document_auction_id: str
    trading_date: str
    input_sha256: str
    received_at: dt.datetime
    state: str
    reason: str
    attempts: int
    options: dict[str, Any]
    status: str | None  # of the stored result
    objective_yen: float | None
    mip_gap: float | None
    solve_seconds: float | None
    solver: str | None  # "HiGHS 1.16.0"
    submitted_by: str | None = None  # the client id that submitted it (server.auth); None before security


class Storage(Protocol):
    """What the service needs from a store; every method is safe to call from any thread."""

    def create(self, *, kind: str, document: bytes, input_sha256: str, document_auction_id: str,
               trading_date: str, options: dict[str, Any], state: str,
               idempotency_key: str | None = None, submitted_by: str | None = None) -> tuple[StoredAuction, bool]:
        """Store a new auction, or return the one stored under `idempotency_key` (created=False)."""

    def get(self, auction_id: str) -> StoredAuction | None: ...

    def get_by_key(self, idempotency_key: str) -> StoredAuction | None: ...

    def document(self, auction_id: str) -> bytes: ...

    def result(self, auction_id: str) -> dict[str, Any] | None: ...

    def list(self, *, state: str | None = None, limit: int = 100,
             before_seq: int | None = None, submitted_by: str | None = None) -> list[StoredAuction]:
        """Newest first; `before_seq` continues a previous page; `submitted_by` keeps one client's."""

    def count(self, state: str) -> int: ...

    def count_active(self, submitted_by: str) -> int:
        """Auctions of one client that are QUEUED or RUNNING (the per-client limit)."""

    def claim_next_queued(self) -> StoredAuction | None:
        """The oldest QUEUED auction, atomically moved to RUNNING with one more attempt."""

    def mark_running(self, auction_id: str) -> None: ...

    def store_result(self, auction_id: str, result: dict[str, Any]) -> None:
        """Keep the result document and move the auction to DONE."""

    def mark(self, auction_id: str, state: str, reason: str) -> None: ...

    def recover_interrupted(self, max_attempts: int) -> list[StoredAuction]:
        """After a restart: auctions left RUNNING are re-queued or FAILED with a reason. Returns them."""

    def close(self) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS auctions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    auction_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    document_auction_id TEXT NOT NULL,
    trading_date TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    received_at TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL,
    document BLOB NOT NULL,
    result TEXT,
    status TEXT,
    objective_yen REAL,
    mip_gap REAL,
    solve_seconds REAL,
    solver TEXT,
    finished_at TEXT,
    submitted_by TEXT
);
CREATE INDEX IF NOT EXISTS auctions_state ON auctions (state, seq);
"""

_COLUMNS = ("auction_id, seq, kind, idempotency_key, document_auction_id, trading_date, input_sha256, "
            "received_at, state, reason, attempts, options, status, objective_yen, mip_gap, solve_seconds, solver, "
            "submitted_by")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _row(row: tuple) -> StoredAuction:
    (auction_id, seq, kind, key, doc_id, date, sha, received, state, reason, attempts, options, status,
     objective, gap, seconds, solver, submitted_by) = row
    return StoredAuction(auction_id, seq, kind, key, doc_id, date, sha, dt.datetime.fromisoformat(received),
                         state, reason, attempts, json.loads(options), status, objective, gap, seconds, solver,
                         submitted_by)


class SqliteStorage:
    """Storage in one SQLite file (WAL mode), one connection guarded by a lock: the service's writes are
    few and small next to a solve, so this never becomes the bottleneck."""

    FILENAME = "dkw.sqlite3"

    def __init__(self, data_dir: str | Path):
        self.path = Path(data_dir) / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(auctions)")}
        if "submitted_by" not in columns:  # a store written before clients were known
            self._db.execute("ALTER TABLE auctions ADD COLUMN submitted_by TEXT")

    def _one(self, sql: str, *params: Any) -> StoredAuction | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM auctions WHERE {sql}", params).fetchone()
        return _row(row) if row else None

    def create(self, *, kind: str, document: bytes, input_sha256: str, document_auction_id: str,
               trading_date: str, options: dict[str, Any], state: str,
               idempotency_key: str | None = None, submitted_by: str | None = None) -> tuple[StoredAuction, bool]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if idempotency_key:
                    existing = self._one("idempotency_key = ?", idempotency_key)
                    if existing is not None:
                        self._db.execute("COMMIT")
                        return existing, False
                auction_id = "auc_" + uuid.uuid4().hex[:20]
                self._db.execute(
                    "INSERT INTO auctions (auction_id, kind, idempotency_key, document_auction_id, trading_date,"
                    " input_sha256, received_at, state, options, document, attempts, submitted_by)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (auction_id, kind, idempotency_key or None, document_auction_id, trading_date, input_sha256,
                     _now(), state, json.dumps(options), document, 1 if state == RUNNING else 0, submitted_by))
                created = self._one("auction_id = ?", auction_id)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return created, True

    def get(self, auction_id: str) -> StoredAuction | None:
        with self._lock:
            return self._one("auction_id = ?", auction_id)

    def get_by_key(self, idempotency_key: str) -> StoredAuction | None:
        with self._lock:
            return self._one("idempotency_key = ?", idempotency_key)

    def document(self, auction_id: str) -> bytes:
        with self._lock:
            row = self._db.execute("SELECT document FROM auctions WHERE auction_id = ?", (auction_id,)).fetchone()
        if row is None:
            raise KeyError(auction_id)
        return bytes(row[0])

    def result(self, auction_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT result FROM auctions WHERE auction_id = ?", (auction_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] is not None else None

    def list(self, *, state: str | None = None, limit: int = 100,
             before_seq: int | None = None, submitted_by: str | None = None) -> list[StoredAuction]:
        where, params = ["1 = 1"], []
        if submitted_by is not None:
            where.append("submitted_by = ?")
            params.append(submitted_by)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if before_seq is not None:
            where.append("seq < ?")
            params.append(before_seq)
        sql = f"SELECT {_COLUMNS} FROM auctions WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*params, limit)).fetchall()
        return [_row(r) for r in rows]

    def count(self, state: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM auctions WHERE state = ?", (state,)).fetchone()[0]

    def count_active(self, submitted_by: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM auctions WHERE submitted_by = ? AND state IN (?, ?)",
                                    (submitted_by, QUEUED, RUNNING)).fetchone()[0]

    def claim_next_queued(self) -> StoredAuction | None:
        with self._lock:
            row = self._one("state = ? ORDER BY seq LIMIT 1", QUEUED)
            if row is None:
                return None
            self._db.execute("UPDATE auctions SET state = ?, attempts = attempts + 1 WHERE auction_id = ?",
                             (RUNNING, row.auction_id))
            return self._one("auction_id = ?", row.auction_id)

    def mark_running(self, auction_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE auctions SET state = ?, attempts = attempts + 1 WHERE auction_id = ?",
                             (RUNNING, auction_id))

    def store_result(self, auction_id: str, result: dict[str, Any]) -> None:
        solver = result.get("solver") or {}
        with self._lock:
            self._db.execute(
                "UPDATE auctions SET state = ?, reason = '', result = ?, status = ?, objective_yen = ?, mip_gap = ?,"
                " solve_seconds = ?, solver = ?, finished_at = ? WHERE auction_id = ?",
                (DONE, json.dumps(result, ensure_ascii=False), result.get("status"), result.get("objective_yen"),
                 solver.get("mip_gap"), solver.get("total_seconds"),
                 f"{solver.get('name', '')} {solver.get('version', '')}".strip(), _now(), auction_id))

    def mark(self, auction_id: str, state: str, reason: str) -> None:
        finished = _now() if state in FINISHED else None
        with self._lock:
            self._db.execute("UPDATE auctions SET state = ?, reason = ?, finished_at = ? WHERE auction_id = ?",
                             (state, reason, finished, auction_id))

    def recover_interrupted(self, max_attempts: int) -> list[StoredAuction]:
        with self._lock:
            interrupted = [_row(r) for r in self._db.execute(
                f"SELECT {_COLUMNS} FROM auctions WHERE state = ? ORDER BY seq", (RUNNING,)).fetchall()]
        for a in interrupted:
            if a.kind == CLEAR:
                self.mark(a.auction_id, FAILED, "the server stopped while clearing it for a Clear call, whose "
                          "caller got no answer; call Clear again")
            elif a.attempts >= max_attempts:
                self.mark(a.auction_id, FAILED, f"the server stopped during each of {a.attempts} attempts to "
                          "clear it; not retried")
            else:
                self.mark(a.auction_id, QUEUED, f"resumed: the server stopped during attempt {a.attempts}")
        return interrupted

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
