"""The storage interface, one suite for both backends: SQLite always, PostgreSQL when DKW_TEST_DATABASE_URL
is set (each test in a schema of its own). "Two servers" are two storage objects on one database."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from dkw.server.migrations import LATEST, SchemaTooNew
from dkw.server.sqlite import SqliteStorage
from dkw.server.storage import CANCELLED, CLEAR, DONE, FAILED, QUEUED, RUNNING, SUBMIT, QueueFull

COMMON = dict(input_sha256="0" * 64, document_auction_id="a", trading_date="2026-10-01", options={"threads": 1})
RESULT = {"status": "OPTIMAL", "objective_yen": 12.5, "solver": {"name": "HiGHS", "version": "1.0", "mip_gap": 0.0,
                                                                  "total_seconds": 0.25}}


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request, tmp_path):
    """open() → a new storage on this test's database (call it twice for two servers)."""
    opened = []
    if request.param == "sqlite":
        def open_one():
            opened.append(SqliteStorage(tmp_path))
            return opened[-1]
    else:
        url = request.getfixturevalue("pg_url")
        from dkw.server.postgres import PostgresStorage

        def open_one():
            opened.append(PostgresStorage(url))
            return opened[-1]
    yield open_one
    for s in opened:
        s.close()


def submit(storage, **kw):
    return storage.create(kind=SUBMIT, document=b'{"x": 1}', state=QUEUED, **COMMON, **kw)[0]


def test_create_get_list_and_count(opener):
    storage = opener()
    first = submit(storage)
    second, created = storage.create(kind=CLEAR, document=b"\x00{}", state=RUNNING, owner="s1", lease_s=30, **COMMON)
    assert created and first.auction_id != second.auction_id and first.seq < second.seq
    got = storage.get(first.auction_id)
    assert (got.state, got.attempts, got.options, got.kind) == (QUEUED, 0, {"threads": 1}, SUBMIT)
    assert got.received_at.tzinfo is not None
    assert (second.state, second.attempts, second.lease_owner) == (RUNNING, 1, "s1")
    assert storage.document(second.auction_id) == b"\x00{}"
    assert storage.get("auc_nope") is None and storage.result(first.auction_id) is None
    with pytest.raises(KeyError):
        storage.document("auc_nope")
    assert [a.auction_id for a in storage.list()] == [second.auction_id, first.auction_id]
    assert [a.auction_id for a in storage.list(before_seq=second.seq)] == [first.auction_id]
    assert [a.auction_id for a in storage.list(state=QUEUED)] == [first.auction_id]
    assert storage.count(QUEUED) == 1
    assert storage.counts() == {QUEUED: 1, RUNNING: 1, DONE: 0, FAILED: 0, CANCELLED: 0}


def test_idempotency_key_names_one_auction_across_servers(opener):
    a, b = opener(), opener()
    first, created = a.create(kind=SUBMIT, document=b"{}", state=QUEUED, idempotency_key="k1", **COMMON)
    again, created_again = b.create(kind=SUBMIT, document=b"{}", state=QUEUED, idempotency_key="k1", **COMMON)
    assert created and not created_again and again.auction_id == first.auction_id
    results = []
    threads = [threading.Thread(target=lambda s=s: results.append(
        s.create(kind=SUBMIT, document=b"{}", state=QUEUED, idempotency_key="k2", **COMMON))) for s in (a, b) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created for _, created in results) == 1
    assert len({r.auction_id for r, _ in results}) == 1


def test_each_queued_auction_is_claimed_once_by_concurrent_servers(opener):
    a, b = opener(), opener()
    ids = {submit(a).auction_id for _ in range(20)}
    claimed: list[tuple[str, str]] = []

    def work(storage, owner):
        while (record := storage.claim_next(owner, 30)) is not None:
            claimed.append((owner, record.auction_id))
            assert record.state == RUNNING and record.attempts == 1 and record.lease_owner == owner

    threads = [threading.Thread(target=work, args=(s, f"{name}{i}")) for i in range(3) for name, s in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for _, i in claimed) == sorted(ids)  # every one, none twice
    assert a.claim_next("a", 30) is None


def test_an_expired_lease_is_taken_over_and_the_old_owner_can_no_longer_write(opener):
    a, b = opener(), opener()
    queued = submit(a)
    assert a.claim_next("server-a", 0.2).auction_id == queued.auction_id
    assert a.renew(queued.auction_id, "server-a", 0.2) == (True, None)
    assert b.reap_expired(max_attempts=3) == []  # not expired yet
    time.sleep(0.4)
    reaped = b.reap_expired(max_attempts=3)
    assert [(r.auction.auction_id, r.auction.lease_owner, r.state) for r in reaped] == \
        [(queued.auction_id, "server-a", QUEUED)]
    assert "server-a stopped during attempt 1" in reaped[0].reason
    assert a.reap_expired(max_attempts=3) == []  # reaped once
    taken = b.claim_next("server-b", 30)
    assert (taken.auction_id, taken.attempts, taken.lease_owner) == (queued.auction_id, 2, "server-b")
    assert not a.renew(queued.auction_id, "server-a", 30).held
    assert not a.finish(queued.auction_id, "server-a", DONE, "", RESULT)  # nothing cleared twice
    assert b.finish(queued.auction_id, "server-b", DONE, "", RESULT)
    done = a.get(queued.auction_id)
    assert (done.state, done.status, done.objective_yen, done.solver, done.mip_gap, done.solve_seconds) == \
        (DONE, "OPTIMAL", 12.5, "HiGHS 1.0", 0.0, 0.25)
    assert a.result(queued.auction_id) == RESULT and done.lease_owner is None


def test_reaping_fails_clear_calls_and_auctions_out_of_attempts(opener):
    storage = opener()
    tired = submit(storage)
    for attempt in range(3):
        storage.claim_next("s", 30)
        if attempt < 2:
            assert storage.reap_expired(max_attempts=3, everything=True)[-1].state == QUEUED
    cleared, _ = storage.create(kind=CLEAR, document=b"{}", state=RUNNING, owner="s", lease_s=30, **COMMON)
    reaped = {r.auction.auction_id: r for r in storage.reap_expired(max_attempts=3, everything=True)}
    assert reaped[cleared.auction_id].state == FAILED and "Clear call" in reaped[cleared.auction_id].reason
    assert reaped[tired.auction_id].state == FAILED and "3 attempts" in reaped[tired.auction_id].reason
    assert storage.get(tired.auction_id).state == FAILED and storage.get(tired.auction_id).attempts == 3


def test_cancel_queued_running_and_finished(opener):
    a, b = opener(), opener()
    queued, running = submit(a), submit(a)
    assert a.claim_next("s", 30).auction_id == queued.auction_id
    queued, running = running, queued  # the first one is now running
    assert b.request_cancel(queued.auction_id, "asked by ops").state == CANCELLED
    flagged = b.request_cancel(running.auction_id, "asked by ops")
    assert flagged.state == RUNNING and flagged.cancel_requested == "asked by ops"
    assert b.request_cancel(running.auction_id, "again").cancel_requested == "asked by ops"  # idempotent
    assert a.renew(running.auction_id, "s", 30) == (True, "asked by ops")
    partial = {**RESULT, "status": "CANCELLED"}
    assert a.finish(running.auction_id, "s", CANCELLED, "asked by ops", partial)
    assert b.request_cancel(running.auction_id, "late").state == CANCELLED
    assert b.result(running.auction_id) == partial and b.get(running.auction_id).reason == "asked by ops"
    assert b.request_cancel("auc_nope", "x") is None


def test_progress_is_stored_for_watchers_elsewhere(opener):
    a, b = opener(), opener()
    queued = submit(a)
    record = a.claim_next("s", 30)
    before = b.progress(queued.auction_id)[0]
    a.store_progress(queued.auction_id, "s", {"phase": "solving", "gap": 0.5})
    a.store_progress(queued.auction_id, "other", {"phase": "stale"})  # not the lease holder: ignored
    seq, snapshot = b.progress(queued.auction_id)
    assert seq == before + 1 == record.progress_seq + 1 and snapshot == {"phase": "solving", "gap": 0.5}


def test_schema_is_migrated_once_and_a_newer_schema_is_refused(opener, tmp_path):
    storage = opener()
    again = opener()  # a second server starting on a migrated database applies nothing
    rows = again._all_rows("SELECT version FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, LATEST + 1))
    storage._all_rows("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, 'future', 'x')",
                      LATEST + 1)
    with pytest.raises(SchemaTooNew, match=f"version {LATEST + 1}"):
        opener()


@pytest.mark.parametrize("with_clients", [False, True])
def test_a_database_from_before_migrations_is_upgraded_in_place(tmp_path, with_clients):
    """SQLite files written before the schema was versioned keep their auctions; those written by the
    security release (with `submitted_by` already) too."""
    old = sqlite3.connect(tmp_path / SqliteStorage.FILENAME)
    old.executescript("""
        CREATE TABLE auctions (seq INTEGER PRIMARY KEY AUTOINCREMENT, auction_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL, idempotency_key TEXT UNIQUE, document_auction_id TEXT NOT NULL,
            trading_date TEXT NOT NULL, input_sha256 TEXT NOT NULL, received_at TEXT NOT NULL, state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, options TEXT NOT NULL,
            document BLOB NOT NULL, result TEXT, status TEXT, objective_yen REAL, mip_gap REAL, solve_seconds REAL,
            solver TEXT, finished_at TEXT);
        INSERT INTO auctions (auction_id, kind, document_auction_id, trading_date, input_sha256, received_at, state,
            options, document) VALUES ('auc_old', 'submit', 'a', '2026-10-01', 'x', '2026-10-01T00:00:00+00:00',
            'QUEUED', '{}', X'7B7D');
    """)
    if with_clients:
        old.execute("ALTER TABLE auctions ADD COLUMN submitted_by TEXT")
        old.execute("UPDATE auctions SET submitted_by = 'tso-tokyo'")
    old.commit()
    old.close()
    with SqliteStorage(tmp_path) as storage:
        assert storage.get("auc_old").state == QUEUED and storage.document("auc_old") == b"{}"
        assert storage.get("auc_old").submitted_by == ("tso-tokyo" if with_clients else None)
        assert storage.count_active("tso-tokyo") == (1 if with_clients else 0)
        assert storage.claim_next("s", 30).auction_id == "auc_old"


def test_the_queue_length_holds_under_concurrent_submits_from_two_servers(opener):
    a, b = opener(), opener()
    outcomes, stored = [], []

    def one(storage, i):
        try:
            outcomes.append(storage.create(kind=SUBMIT, document=b"{}", state=QUEUED, idempotency_key=f"k{i}",
                                           max_queued=5, **COMMON)[1])
            stored.append(f"k{i}")
        except QueueFull as full:
            outcomes.append(full)

    threads = [threading.Thread(target=one, args=(s, i)) for i, s in enumerate((a, b) * 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(True) == 5 and a.count(QUEUED) == 5
    assert all(isinstance(o, QueueFull) and o.queued == 5 for o in outcomes if o is not True)
    again, created = b.create(kind=SUBMIT, document=b"{}", state=QUEUED, idempotency_key=stored[0], max_queued=5,
                              **COMMON)
    assert not created  # a key already stored is answered even when the queue is full
