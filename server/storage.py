"""Where the server keeps auctions and results: the `Storage` interface, written once in SQL for both backends.

SQLite is the embedded default (one file under `--data`, one server); PostgreSQL (`dkw.server.postgres`) lets
any number of replicas share the work. Stored per auction: the document as received and its sha256, the
received time, the state (QUEUED → RUNNING → DONE | FAILED | CANCELLED) with the reason, the result
document with solver name/version, options, gap and timings, and — for replicas — who is clearing it and
until when (a lease the solving server renews), a cancel request from any replica, and the latest
progress snapshot for watchers on other replicas.

The schema is versioned (`dkw.server.migrations`) and migrated forward when a storage opens.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from dkw.server.migrations import migrate
from dkw.server.resilience import SHORT_BUDGET_S, Retrier, RetryPolicy, StorageUnavailable, retried  # noqa: F401  (re-exported: the store's errors and policy)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED"
FINISHED = (DONE, FAILED, CANCELLED)
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)

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
    lease_owner: str | None = None  # the server clearing it (RUNNING)
    cancel_requested: str | None = None  # why a cancel was asked while it ran
    progress_seq: int = 0  # bumped by every stored progress snapshot
    submitted_by: str | None = None  # the client id that submitted it (dkw.server.auth); None before security


class Renewal(NamedTuple):
    """What the solving server learns when it renews its lease."""

    held: bool  # False: the lease expired and another server took the auction over (or it finished)
    cancel_reason: str | None  # a cancel was asked (from any replica)


@dataclass(frozen=True, slots=True)
class Reaped:
    """A RUNNING auction whose lease expired (its server died), and what became of it."""

    auction: StoredAuction  # as it was, with its old lease owner
    state: str  # QUEUED (resumes elsewhere), FAILED or CANCELLED
    reason: str


class QueueFull(Exception):
    """`create` with `max_queued`: that many auctions are already waiting."""

    def __init__(self, queued: int):
        super().__init__(f"{queued} auctions are waiting")
        self.queued = queued


class Storage(Protocol):
    """What the service needs from a store; every method is safe to call from any thread, and (PostgreSQL)
    from any number of servers at once."""

    #: True when one server owns the store (SQLite): everything RUNNING at its start was its own.
    exclusive: bool

    def create(self, *, kind: str, document: bytes, input_sha256: str, document_auction_id: str,
               trading_date: str, options: dict[str, Any], state: str, idempotency_key: str | None = None,
               owner: str | None = None, lease_s: float = 0.0, max_queued: int | None = None,
               submitted_by: str | None = None) -> tuple[StoredAuction, bool]:
        """Store a new auction (RUNNING: leased to `owner`), or return the one stored under `idempotency_key`
        (created=False), whichever server stored it. With `max_queued`, raise QueueFull instead of storing a
        new auction when that many are QUEUED (checked atomically with the insert, over all servers)."""

    def get(self, auction_id: str) -> StoredAuction | None: ...
    def get_by_key(self, idempotency_key: str) -> StoredAuction | None: ...
    def document(self, auction_id: str) -> bytes: ...
    def result(self, auction_id: str) -> dict[str, Any] | None: ...

    def progress(self, auction_id: str) -> tuple[int, dict[str, Any] | None]:
        """(progress_seq, the latest stored progress snapshot)."""

    def list(self, *, state: str | None = None, limit: int = 100,
             before_seq: int | None = None, submitted_by: str | None = None) -> list[StoredAuction]:
        """Newest first; `before_seq` continues a previous page; `submitted_by` keeps one client's."""

    def count(self, state: str) -> int: ...
    def count_active(self, submitted_by: str) -> int:
        """Auctions of one client that are QUEUED or RUNNING (the per-client limit)."""

    def counts(self) -> dict[str, int]:
        """Auctions per state (every state, zeros included)."""

    def claim_next(self, owner: str, lease_s: float) -> StoredAuction | None:
        """The oldest QUEUED auction, moved to RUNNING with one more attempt and leased to `owner`;
        never the same auction to two servers."""

    def renew(self, auction_id: str, owner: str, lease_s: float) -> Renewal: ...
    def store_progress(self, auction_id: str, owner: str, snapshot: dict[str, Any]) -> None:
        """Best effort: a snapshot the database cannot take now is skipped (the next one replaces it)."""

    def finish(self, auction_id: str, owner: str, state: str, reason: str,
               result: dict[str, Any] | None = None) -> bool:
        """End `owner`'s run: store the state, reason and result (if any) and drop the lease. False (and
        nothing written) when `owner` no longer holds the lease: another server took it over."""

    def request_cancel(self, auction_id: str, reason: str) -> StoredAuction | None:
        """A QUEUED auction ends CANCELLED now; a RUNNING one is flagged for its server (which sees it at its
        next renewal); a finished one is left as it is. Returns the auction after, None if unknown."""

    def reap_expired(self, max_attempts: int, *, everything: bool = False,
                     keep: Callable[[], Collection[str]] = tuple) -> list[Reaped]:
        """RUNNING auctions whose lease expired (all, with `everything`: a store one server owns, at its start)
        re-queued, or FAILED after `max_attempts` or for a Clear call; cancelled ones CANCELLED. Those in
        `keep()` (asked inside the transaction) are left alone: the calling server still writes them."""

    def ping(self) -> None:
        """One round trip to the database, no retries: raises when it cannot be reached (health checks)."""
    def close(self) -> None: ...


_COLUMNS = ("auction_id, seq, kind, idempotency_key, document_auction_id, trading_date, input_sha256, "
            "received_at, state, reason, attempts, options, status, objective_yen, mip_gap, solve_seconds, solver, "
            "lease_owner, cancel_requested, progress_seq, submitted_by")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _row(row: tuple) -> StoredAuction:
    (auction_id, seq, kind, key, doc_id, date, sha, received, state, reason, attempts, options, status,
     objective, gap, seconds, solver, owner, cancel, progress_seq, submitted_by) = row
    return StoredAuction(auction_id, seq, kind, key, doc_id, date, sha, dt.datetime.fromisoformat(received),
                         state, reason, attempts, json.loads(options), status, objective, gap, seconds, solver,
                         owner, cancel, progress_seq, submitted_by)


class SqlStorage:
    """The storage's SQL, once for both backends (written with %s placeholders). A subclass opens
    transactions (`_tx`), says how its database tells the time, and whether it can skip locked rows.

    Every public method runs through `retrier` (dkw.server.resilience): transient failures are retried on a
    fresh connection within a bounded time, then StorageUnavailable. Reads, and writes that change nothing
    when run twice (renew, request_cancel, store_progress, reap_expired), are simply run again. The two
    writes that would do harm twice look for their own effect first when a COMMIT's outcome is unknown:
    `create` picks its auction id once, before any attempt, and returns the stored auction if that id is
    there; `finish` compares the stored state, reason and result with its own. `claim_next` cannot tell
    its claim from another's and is never re-run after an unknown COMMIT: at worst it leaves one auction
    leased to this server, which nobody renews, so a reaper re-queues it when the lease expires."""

    backend = "sql"
    exclusive = False
    #: Set by the subclass's __init__ (a policy of its own: tests shorten the budget).
    retrier: Retrier
    #: The database's clock in seconds since the epoch: leases are compared on one clock, the database's.
    NOW = ""
    #: Appended to the SELECT that picks the next auction: replicas never wait for each other's claims.
    SKIP_LOCKED = ""

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[Any]:
        """A cursor inside one transaction: committed on success, rolled back on error; CommitUnknown when
        the connection was lost during the COMMIT. `write=False`: the transaction only reads."""
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql

    def _all(self, cur: Any, sql: str, *params: Any) -> list[tuple]:
        cur.execute(self._sql(sql), params)
        return cur.fetchall() if cur.description else []

    def _one(self, cur: Any, where: str, *params: Any) -> StoredAuction | None:
        rows = self._all(cur, f"SELECT {_COLUMNS} FROM auctions WHERE {where}", *params)
        return _row(rows[0]) if rows else None

    def _lock_queue(self, cur: Any) -> None:
        """Serialise the queue-length check with other servers' submits (SQLite: BEGIN IMMEDIATE does)."""

    def _before_migrate(self, cur: Any) -> None:
        """Whatever keeps two servers starting together from migrating at once (SQLite: BEGIN IMMEDIATE)."""

    def _all_rows(self, sql: str, *params: Any, write: bool = True) -> list[tuple]:
        """One statement in a transaction of its own (the audit trail, tests, maintenance)."""
        with self._tx(write) as cur:
            return self._all(cur, sql, *params)

    def ping(self) -> None:
        def once(_: bool) -> None:
            with self._tx(write=False) as cur:
                self._all(cur, "SELECT 1")

        self.retrier.run(once, what="ping", budget_s=min(SHORT_BUDGET_S, self.retrier.policy.budget_s), quiet=True)

    @retried("idempotent")  # migrations record their version in the same transaction: a re-run skips them
    def _migrate(self) -> None:
        with self._tx() as cur:
            self._before_migrate(cur)
            migrate(lambda sql, params: self._all(cur, sql, *params), self.backend, _now())

    # ---- writes ---------------------------------------------------------------------------------------

    def create(self, *, kind: str, document: bytes, input_sha256: str, document_auction_id: str,
               trading_date: str, options: dict[str, Any], state: str, idempotency_key: str | None = None,
               owner: str | None = None, lease_s: float = 0.0, max_queued: int | None = None,
               submitted_by: str | None = None) -> tuple[StoredAuction, bool]:
        running = state == RUNNING
        auction_id = "auc_" + uuid.uuid4().hex[:20]  # chosen once: a retry after an unknown COMMIT finds it

        def attempt(maybe_committed: bool) -> tuple[StoredAuction, bool]:
            return self._create(auction_id, maybe_committed, kind, document, input_sha256, document_auction_id,
                                trading_date, options, state, idempotency_key, owner if running else None,
                                lease_s if running else None, max_queued, submitted_by)

        return self.retrier.run(attempt, what="create")

    def _create(self, auction_id: str, maybe_committed: bool, kind: str, document: bytes, input_sha256: str,
                document_auction_id: str, trading_date: str, options: dict[str, Any], state: str,
                idempotency_key: str | None, owner: str | None, lease_s: float | None, max_queued: int | None,
                submitted_by: str | None) -> tuple[StoredAuction, bool]:
        with self._tx() as cur:
            if maybe_committed:
                mine = self._one(cur, "auction_id = %s", auction_id)
                if mine is not None:
                    return mine, True
            if idempotency_key:
                existing = self._one(cur, "idempotency_key = %s", idempotency_key)
                if existing is not None:
                    return existing, False
            if max_queued is not None:
                self._lock_queue(cur)
                queued = self._all(cur, "SELECT COUNT(*) FROM auctions WHERE state = %s", QUEUED)[0][0]
                if queued >= max_queued:
                    raise QueueFull(queued)
            rows = self._all(
                cur,
                "INSERT INTO auctions (auction_id, kind, idempotency_key, document_auction_id, trading_date,"
                " input_sha256, received_at, state, options, document, attempts, lease_owner, lease_expires_at,"
                f" submitted_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {self.NOW} + %s, %s)"
                f" ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_COLUMNS}",
                auction_id, kind, idempotency_key or None, document_auction_id, trading_date,
                input_sha256, _now(), state, json.dumps(options), document, 1 if owner else 0,
                owner, lease_s, submitted_by)
            if rows:
                return _row(rows[0]), True
            return self._one(cur, "idempotency_key = %s", idempotency_key), False

    @retried("once")
    def claim_next(self, owner: str, lease_s: float) -> StoredAuction | None:
        with self._tx() as cur:
            rows = self._all(
                cur,
                "UPDATE auctions SET state = %s, attempts = attempts + 1, lease_owner = %s,"
                f" lease_expires_at = {self.NOW} + %s, cancel_requested = NULL, progress = NULL,"
                " progress_seq = progress_seq + 1"
                " WHERE seq = (SELECT seq FROM auctions WHERE state = %s ORDER BY seq LIMIT 1"
                f"{self.SKIP_LOCKED}) RETURNING {_COLUMNS}",
                RUNNING, owner, lease_s, QUEUED)
        return _row(rows[0]) if rows else None

    @retried("idempotent")
    def renew(self, auction_id: str, owner: str, lease_s: float) -> Renewal:
        with self._tx() as cur:
            rows = self._all(
                cur,
                f"UPDATE auctions SET lease_expires_at = {self.NOW} + %s"
                " WHERE auction_id = %s AND state = %s AND lease_owner = %s RETURNING cancel_requested",
                lease_s, auction_id, RUNNING, owner)
        return Renewal(True, rows[0][0]) if rows else Renewal(False, None)

    @retried("best effort")  # skipped while the database is away; twice: one more progress_seq bump, harmless
    def store_progress(self, auction_id: str, owner: str, snapshot: dict[str, Any]) -> None:
        with self._tx() as cur:
            self._all(cur, "UPDATE auctions SET progress = %s, progress_seq = progress_seq + 1"
                      " WHERE auction_id = %s AND state = %s AND lease_owner = %s",
                      json.dumps(snapshot), auction_id, RUNNING, owner)

    def finish(self, auction_id: str, owner: str, state: str, reason: str,
               result: dict[str, Any] | None = None) -> bool:
        payload = json.dumps(result, ensure_ascii=False) if result is not None else None
        return self.retrier.run(lambda maybe_committed: self._finish(auction_id, owner, state, reason, result, payload,
                                                                     maybe_committed), what="finish")

    def _finish(self, auction_id: str, owner: str, state: str, reason: str, result: dict[str, Any] | None,
                payload: str | None, maybe_committed: bool) -> bool:
        solver = (result or {}).get("solver") or {}
        with self._tx() as cur:
            if maybe_committed:  # our own earlier attempt may have ended the run: is the row as it would leave it?
                rows = self._all(cur, "SELECT state, reason, lease_owner, result FROM auctions WHERE auction_id = %s",
                                 auction_id)
                if rows and tuple(rows[0][:3]) == (state, reason, None) and (payload is None or rows[0][3] == payload):
                    return True
            rows = self._all(
                cur,
                "UPDATE auctions SET state = %s, reason = %s, finished_at = %s, lease_owner = NULL,"
                " lease_expires_at = NULL, progress_seq = progress_seq + 1,"
                " result = COALESCE(%s, result), status = COALESCE(%s, status),"
                " objective_yen = COALESCE(%s, objective_yen), mip_gap = COALESCE(%s, mip_gap),"
                " solve_seconds = COALESCE(%s, solve_seconds), solver = COALESCE(%s, solver)"
                " WHERE auction_id = %s AND state = %s AND lease_owner = %s RETURNING seq",
                state, reason, _now() if state in FINISHED else None, payload,
                result.get("status") if result else None, result.get("objective_yen") if result else None,
                solver.get("mip_gap"), solver.get("total_seconds"),
                f"{solver.get('name', '')} {solver.get('version', '')}".strip() if result else None,
                auction_id, RUNNING, owner)
        return bool(rows)

    @retried("idempotent")  # the second run finds the auction already cancelled or flagged
    def request_cancel(self, auction_id: str, reason: str) -> StoredAuction | None:
        with self._tx() as cur:
            self._all(cur, "UPDATE auctions SET state = %s, reason = %s, finished_at = %s,"
                      " progress_seq = progress_seq + 1 WHERE auction_id = %s AND state = %s",
                      CANCELLED, reason, _now(), auction_id, QUEUED)
            self._all(cur, "UPDATE auctions SET cancel_requested = %s"
                      " WHERE auction_id = %s AND state = %s AND cancel_requested IS NULL",
                      reason, auction_id, RUNNING)
            return self._one(cur, "auction_id = %s", auction_id)

    @retried("idempotent")  # the second run finds nothing left to reap
    def reap_expired(self, max_attempts: int, *, everything: bool = False,
                     keep: Callable[[], Collection[str]] = tuple) -> list[Reaped]:
        expired = "" if everything else f" AND lease_expires_at < {self.NOW}"
        reaped = []
        with self._tx() as cur:
            rows = self._all(cur, f"SELECT {_COLUMNS} FROM auctions WHERE state = %s{expired} ORDER BY seq"
                             f"{self.SKIP_LOCKED}", RUNNING)
            mine = keep()
            for a in map(_row, rows):
                if a.auction_id in mine:
                    continue
                who = "the server" if everything else f"server {a.lease_owner}"
                if a.cancel_requested is not None:
                    state, reason = CANCELLED, a.cancel_requested
                elif a.kind == CLEAR:
                    state, reason = FAILED, (f"{who} stopped while clearing it for a Clear call, whose caller "
                                             "got no answer; call Clear again")
                elif a.attempts >= max_attempts:
                    state, reason = FAILED, f"{who} stopped during each of {a.attempts} attempts to clear it; not retried"
                else:
                    state, reason = QUEUED, f"resumed: {who} stopped during attempt {a.attempts}"
                self._all(cur, "UPDATE auctions SET state = %s, reason = %s, finished_at = %s, lease_owner = NULL,"
                          " lease_expires_at = NULL, progress_seq = progress_seq + 1 WHERE seq = %s",
                          state, reason, _now() if state in FINISHED else None, a.seq)
                reaped.append(Reaped(a, state, reason))
        return reaped

    # ---- reads ----------------------------------------------------------------------------------------

    @retried("read")
    def get(self, auction_id: str) -> StoredAuction | None:
        with self._tx(write=False) as cur:
            return self._one(cur, "auction_id = %s", auction_id)

    @retried("read")
    def get_by_key(self, idempotency_key: str) -> StoredAuction | None:
        with self._tx(write=False) as cur:
            return self._one(cur, "idempotency_key = %s", idempotency_key)

    @retried("read")
    def document(self, auction_id: str) -> bytes:
        with self._tx(write=False) as cur:
            rows = self._all(cur, "SELECT document FROM auctions WHERE auction_id = %s", auction_id)
        if not rows:
            raise KeyError(auction_id)
        return bytes(rows[0][0])

    @retried("read")
    def result(self, auction_id: str) -> dict[str, Any] | None:
        with self._tx(write=False) as cur:
            rows = self._all(cur, "SELECT result FROM auctions WHERE auction_id = %s", auction_id)
        return json.loads(rows[0][0]) if rows and rows[0][0] is not None else None

    @retried("read")
    def progress(self, auction_id: str) -> tuple[int, dict[str, Any] | None]:
        with self._tx(write=False) as cur:
            rows = self._all(cur, "SELECT progress_seq, progress FROM auctions WHERE auction_id = %s", auction_id)
        if not rows:
            return 0, None
        seq, snapshot = rows[0]
        return seq, json.loads(snapshot) if snapshot is not None else None

    @retried("read")
    def list(self, *, state: str | None = None, limit: int = 100,
             before_seq: int | None = None, submitted_by: str | None = None) -> list[StoredAuction]:
        where, params = ["1 = 1"], []
        if submitted_by is not None:
            where.append("submitted_by = %s")
            params.append(submitted_by)
        if state is not None:
            where.append("state = %s")
            params.append(state)
        if before_seq is not None:
            where.append("seq < %s")
            params.append(before_seq)
        with self._tx(write=False) as cur:
            rows = self._all(cur, f"SELECT {_COLUMNS} FROM auctions WHERE {' AND '.join(where)}"
                             " ORDER BY seq DESC LIMIT %s", *params, limit)
        return [_row(r) for r in rows]

    @retried("read")
    def count(self, state: str) -> int:
        with self._tx(write=False) as cur:
            return self._all(cur, "SELECT COUNT(*) FROM auctions WHERE state = %s", state)[0][0]

    @retried("read")
    def count_active(self, submitted_by: str) -> int:
        with self._tx(write=False) as cur:
            return self._all(cur, "SELECT COUNT(*) FROM auctions WHERE submitted_by = %s AND state IN (%s, %s)",
                             submitted_by, QUEUED, RUNNING)[0][0]

    @retried("read")
    def counts(self) -> dict[str, int]:
        with self._tx(write=False) as cur:
            rows = self._all(cur, "SELECT state, COUNT(*) FROM auctions GROUP BY state")
        return {s: 0 for s in STATES} | {state: n for state, n in rows}

    def __enter__(self) -> SqlStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError
