"""The database going away, measured: a real `dkw serve` on a PostgreSQL database this file creates (and
drops), with submissions and a solve in flight, while the database terminates the service's sessions,
refuses connections for a few seconds, and applies a tiny statement timeout. Plus the retry rules one by
one, and SQLite's locked and read-only files (always run).

What must hold (issue 23, docs/replicas.md "When the database goes away"): callers see only OK or
UNAVAILABLE "storage unavailable, retry" (never UNKNOWN/INTERNAL, never a host, port or database name);
the retrying client's calls succeed; health goes NOT_SERVING and back to SERVING; every auction ends
DONE once with a result that verifies; the audit trail holds a record of every call once its backlog is
written. Time budget: about 60 s (short leases, 2 s retry budget, small cases).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter

import grpc
import psycopg
import pytest
from conftest import TEST_DATABASE_URL, own_database
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg.conninfo import conninfo_to_dict
from test_grpc import ROOT, Served, case_message, wait_for
from test_replicas import metrics_of, verified

from dkw.server.convert import result_document
from dkw.server.resilience import (
    UNAVAILABLE_MESSAGE,
    CommitUnknown,
    Retrier,
    RetryPolicy,
    StorageUnavailable,
    is_transient,
    scrub,
)
from dkw.server.sqlite import DatabaseFileError, SqliteStorage
from dkw.server.storage import QUEUED, RUNNING, SUBMIT
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc

CASES = ("01-merit-order", "02-indivisible", "03-list-pattern", "04-startup-linked", "05-cross-area")
SERVE = ("--lease-seconds", "3", "--storage-retry-seconds", "2", "--metrics-port", "0", "--drain-seconds", "5")
COMMON = dict(input_sha256="0" * 64, document_auction_id="a", trading_date="2026-10-01", options={})


# ---- PostgreSQL: a database of this file's own ----------------------------------------------------------

def admin(sql: str, *params) -> list[tuple]:
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def terminate(dbname: str) -> int:
    """pg_terminate_backend of every session on our database (the service's; ours are on another one)."""
    return len(admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                     " AND pid <> pg_backend_pid()", dbname))


@pytest.fixture(scope="module")
def fault_db():
    with own_database() as database:
        yield database


@pytest.fixture(scope="module")
def server(fault_db, tmp_path_factory):
    _, url = fault_db
    served = Served(tmp_path_factory.mktemp("faults"), workers=2, extra=("--database", url, *SERVE))
    served.raw = pb_grpc.ClearingStub(grpc.insecure_channel(served.target))  # no retries: the codes as sent
    try:
        yield served
    finally:
        if served.process.poll() is None:
            served.stop()
        served.kill_all()


class Codes:
    """Every answer the test got, by code; UNAVAILABLE details kept to check what they name."""

    def __init__(self, fault_db):
        self.seen: Counter[str] = Counter()
        self.details: list[str] = []
        self.lock = threading.Lock()
        self.secrets = {fault_db[0], "127.0.0.1", "5432", conninfo_to_dict(TEST_DATABASE_URL).get("user", "postgres")}

    def call(self, method, request, timeout: float = 60):
        try:
            response = method(request, timeout=timeout)
            code = "OK"
            return response
        except grpc.RpcError as exc:
            code = exc.code().name
            with self.lock:
                self.details.append(exc.details() or "")
            return None
        finally:
            with self.lock:
                self.seen[code] += 1

    def check(self) -> None:
        assert set(self.seen) <= {"OK", "UNAVAILABLE"}, self.seen
        for detail in self.details:
            assert detail.startswith(UNAVAILABLE_MESSAGE), detail
            assert not any(secret in detail for secret in self.secrets), detail


class HealthWatch(threading.Thread):
    """The health of dkw.v1.Clearing every 0.1 s, as a list of transitions."""

    def __init__(self, target: str):
        super().__init__(daemon=True)
        self.stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(target))
        self.states: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                status = self.stub.Check(health_pb2.HealthCheckRequest(service="dkw.v1.Clearing"), timeout=2).status
                name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            except grpc.RpcError as exc:
                name = exc.code().name
            if not self.states or self.states[-1] != name:
                self.states.append(name)
            time.sleep(0.1)

    def stop(self) -> list[str]:
        self.done.set()
        self.join(timeout=5)
        return self.states


def submit_all(server, codes: Codes, tag: str) -> dict[str, str]:
    """The five small cases through the retrying client, idempotency-keyed: {auction_id: case}."""
    ids = {}
    for name in CASES:
        response = codes.call(server.stub.SubmitAuction, pb.SubmitAuctionRequest(
            auction_json=(ROOT / "tests/cases" / f"{name}.json").read_bytes(), idempotency_key=f"{tag}-{name}"))
        assert response is not None, f"the retrying client's SubmitAuction of {name} failed: {codes.seen}"
        ids[response.auction_id] = name
    return ids


def assert_done_once_and_verified(server, url: str, ids: dict[str, str]) -> None:
    """Each auction DONE with a result that verifies; one stored auction per idempotency key."""
    for auction_id, name in ids.items():
        response = wait_for(lambda a=auction_id: (lambda r: r if r.state == pb.DONE else None)(
            server.stub.GetResult(pb.GetResultRequest(auction_id=a), timeout=30)), timeout=45,
            what=f"{name} to end DONE")
        raw = (ROOT / "tests/cases" / f"{name}.json").read_bytes()
        assert verified(raw, result_document(response.result)), name
    with psycopg.connect(url) as conn:
        keys = conn.execute("SELECT idempotency_key, COUNT(*) FROM auctions WHERE idempotency_key IS NOT NULL"
                            " GROUP BY idempotency_key HAVING COUNT(*) > 1").fetchall()
        stuck = conn.execute("SELECT auction_id, state FROM auctions WHERE state IN (%s, %s)", (QUEUED, RUNNING)).fetchall()
    assert keys == [] and stuck == []


def assert_audit_complete(server, url: str) -> None:
    """Once the backlog is written, the trail holds a record per dkw.v1.Clearing call the server counted."""
    wait_for(lambda: metrics_of(server).get("dkw_audit_backlog") == 0, timeout=30, what="the audit backlog to drain")
    counted = Counter()
    for key, value in metrics_of(server).items():
        match = re.match(r'dkw_rpcs_total\{code="\w+",method="dkw\.v1\.Clearing/(\w+)"\}', key)
        if match:
            counted[match.group(1)] += int(value)
    with psycopg.connect(url) as conn:
        recorded = Counter(dict(conn.execute("SELECT method, COUNT(*) FROM audit_records GROUP BY method").fetchall()))
    assert recorded == counted


@pytest.mark.slow
def test_terminated_sessions_are_replaced_without_a_caller_noticing(server, fault_db):
    name, url = fault_db
    codes = Codes(fault_db)
    ids = submit_all(server, codes, "terminate-1")
    assert terminate(name) >= 1
    ids |= submit_all(server, codes, "terminate-2")  # the pool replaces the dead sessions
    for _ in range(3):
        terminate(name)
        codes.call(server.raw.ListAuctions, pb.ListAuctionsRequest())
        codes.call(server.raw.GetResult, pb.GetResultRequest(auction_id=next(iter(ids))))
    codes.check()
    assert codes.seen["OK"] >= 10
    assert_done_once_and_verified(server, url, ids)
    assert_audit_complete(server, url)


@pytest.mark.slow
def test_a_database_refusing_connections_turns_health_and_calls_unavailable_then_recovers(server, fault_db,
                                                                                         slow_auction):
    name, url = fault_db
    codes, health = Codes(fault_db), HealthWatch(server.target)
    health.start()
    ids = submit_all(server, codes, "refuse-1")
    assert_done_once_and_verified(server, url, ids)  # both workers free again
    # two solves that end while the database is away: a submitted one, and a Clear call waiting for its result
    limit = pb.SolveOptions(time_limit_s=3)
    solving = server.stub.SubmitAuction(pb.SubmitAuctionRequest(auction_json=slow_auction, idempotency_key="refuse-slow",
                                                                options=limit), timeout=30)
    clear = server.stub.Clear.future(pb.ClearRequest(auction_json=slow_auction, options=limit), timeout=90)
    wait_for(lambda: len(server.stub.ListAuctions(pb.ListAuctionsRequest(state=pb.RUNNING)).auctions) == 2,
             what="both slow auctions to run")
    watched = []  # a watcher across the outage ends DONE or UNAVAILABLE, never UNKNOWN

    def watch() -> None:
        try:
            watched.extend(e.phase for e in server.raw.WatchClearing(pb.WatchRequest(auction_id=solving.auction_id),
                                                                     timeout=90))
            watched.append("OK")
        except grpc.RpcError as exc:
            watched.append(exc.code().name)

    watcher = threading.Thread(target=watch)
    watcher.start()
    admin(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
    try:
        terminate(name)
        wait_for(lambda: "NOT_SERVING" in health.states, timeout=20, what="health to say NOT_SERVING")
        for _ in range(2):  # answered UNAVAILABLE, not UNKNOWN, and without the driver's text
            codes.call(server.raw.SubmitAuction, pb.SubmitAuctionRequest(auction=case_message("01-merit-order")))
            codes.call(server.raw.ListAuctions, pb.ListAuctionsRequest())
        assert codes.seen["UNAVAILABLE"] >= 2
        late = threading.Thread(target=lambda: ids.update(submit_all(server, codes, "refuse-2")))
        late.start()  # the retrying client, started while the database refuses: succeeds once it is back
        log = server.data / "serve.log"
        wait_for(lambda: log.read_text().count("cannot be stored now") >= 2, timeout=20,
                 what="both slow solves to end while the database is away")
    finally:
        admin(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
    late.join(timeout=60)
    wait_for(lambda: health.states[-1] == "SERVING", timeout=30, what="health to say SERVING again")
    states = health.stop()
    assert states[0] == "SERVING" and "NOT_SERVING" in states and states[-1] == "SERVING", states
    watcher.join(timeout=60)
    assert watched[-1] in ("OK", "UNAVAILABLE") and (watched[-1] != "OK" or watched[-2] == pb.ClearingProgress.DONE)
    cleared = clear.result()  # its result, kept in memory, was stored once the database was back
    assert cleared.state == pb.DONE and verified(slow_auction, result_document(cleared.result))
    done = wait_for(lambda: (lambda r: r if r.state == pb.DONE else None)(
        server.stub.GetResult(pb.GetResultRequest(auction_id=solving.auction_id), timeout=30)), what="the submitted one")
    assert verified(slow_auction, result_document(done.result))
    assert log.read_text().count("written after the database came back (stored)") >= 2
    with psycopg.connect(url) as conn:  # each solved once: one attempt, no takeover
        attempts = conn.execute("SELECT attempts FROM auctions WHERE auction_id IN (%s, %s)",
                                (solving.auction_id, cleared.auction_id)).fetchall()
    assert attempts == [(1,), (1,)]
    codes.check()
    assert len(ids) == 10
    assert_done_once_and_verified(server, url, ids)
    assert metrics_of(server)["dkw_storage_up"] == 1
    assert_audit_complete(server, url)


@pytest.mark.slow
def test_a_statement_timeout_answers_unavailable_and_heals(server, fault_db):
    """A tiny statement_timeout on the database while another session holds the auctions table: every
    statement of the service that touches it is cancelled (QueryCanceled), retried, then UNAVAILABLE."""
    name, url = fault_db
    codes = Codes(fault_db)
    admin(f"ALTER DATABASE {name} SET statement_timeout = '100ms'")
    try:
        terminate(name)  # new sessions take the setting
        with psycopg.connect(url) as holder:
            holder.execute("SET statement_timeout = 0")
            holder.execute("LOCK TABLE auctions IN ACCESS EXCLUSIVE MODE")
            for case in CASES[:2]:
                codes.call(server.raw.SubmitAuction, pb.SubmitAuctionRequest(
                    auction_json=(ROOT / "tests/cases" / f"{case}.json").read_bytes(), idempotency_key=f"timeout-{case}"))
                codes.call(server.raw.ListAuctions, pb.ListAuctionsRequest(page_size=1000))
            holder.rollback()
    finally:
        admin(f"ALTER DATABASE {name} RESET statement_timeout")
        terminate(name)
    codes.check()
    assert codes.seen["UNAVAILABLE"] == 4, codes.seen
    ids = submit_all(server, codes, "timeout")  # the same keys: stored once whatever happened before
    codes.check()
    assert_done_once_and_verified(server, url, ids)
    assert_audit_complete(server, url)
    assert "QueryCanceled" in (server.data / "serve.log").read_text()  # the real cause, in the server's log


@pytest.fixture(scope="module")
def slow_auction() -> bytes:
    """A generated 300-bid auction: with a time limit of a few seconds it is still solving when the
    database goes away."""
    return subprocess.run([sys.executable, "bench/casegen.py", "--seed", "1", "--bids", "300"], cwd=ROOT,
                          check=True, capture_output=True).stdout


# ---- the retry rules, one by one ----------------------------------------------------------------------

def test_transient_errors_are_told_apart_from_bugs():
    from psycopg import errors

    for exc in (psycopg.OperationalError("server closed the connection unexpectedly"), errors.AdminShutdown(),
                errors.SerializationFailure(), errors.DeadlockDetected(), errors.QueryCanceled(),
                errors.CannotConnectNow(), sqlite3.OperationalError("database is locked")):
        assert is_transient(exc), exc
    for exc in (errors.UniqueViolation(), errors.SyntaxError(), ValueError("x"), KeyError("auc_x"),
                sqlite3.OperationalError("attempt to write a readonly database")):
        assert not is_transient(exc), exc
    assert scrub('connection to "postgresql://dkw:s3cret@db/dkw" failed; password=s3cret', "s3cret").count("s3cret") == 0
    from dkw.server.client import SERVICE_CONFIG  # what the service answers is what the clients retry

    assert "UNAVAILABLE" in SERVICE_CONFIG["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"]


def test_retries_are_bounded_and_the_message_names_nothing():
    retrier, tries = Retrier(RetryPolicy(budget_s=0.3, first_delay_s=0.01)), []
    told = []
    retrier.listen(told.append)

    def flaky(maybe_committed):
        tries.append(maybe_committed)
        if len(tries) < 3:
            raise psycopg.OperationalError('connection to server at "10.1.2.3", port 5432 failed: FATAL: db "x"')
        return "ok"

    assert retrier.run(flaky, what="read") == "ok" and tries == [False] * 3 and told == [True]
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as error:
        retrier.run(lambda _: (_ for _ in ()).throw(psycopg.OperationalError("10.1.2.3:5432 gone")), what="read")
    assert str(error.value) == UNAVAILABLE_MESSAGE and time.monotonic() - started < 1.0 and told[-1] is False
    with pytest.raises(ValueError):  # not a storage fault: not retried, not hidden
        retrier.run(lambda _: int("x"), what="read")


def test_a_write_after_an_unknown_commit_is_not_run_twice(tmp_path):
    """The COMMIT happened but its answer was lost: create finds its own auction, finish sees its own
    write, and claim_next gives up rather than claim a second auction."""

    class LossyCommits(SqliteStorage):
        lose = 0

        def _tx(self, write=True):
            inner = super()._tx(write)

            class Tx:
                def __enter__(tx):
                    return inner.__enter__()

                def __exit__(tx, *exc):
                    inner.__exit__(*exc)  # commits
                    if exc[0] is None and write and self.lose:
                        self.lose -= 1
                        raise CommitUnknown("lost") from psycopg.OperationalError("server closed the connection")

            return Tx()

    storage = LossyCommits(tmp_path, retry=RetryPolicy(budget_s=1, first_delay_s=0.01))
    storage.lose = 1
    stored, created = storage.create(kind=SUBMIT, document=b"{}", state=QUEUED, **COMMON)
    assert created and [a.auction_id for a in storage.list()] == [stored.auction_id]
    storage.lose = 1
    with pytest.raises(StorageUnavailable):
        storage.claim_next("me", 30)
    assert storage.get(stored.auction_id).state == RUNNING  # claimed once, left for the reaper
    storage.lose = 1
    assert storage.finish(stored.auction_id, "me", "DONE", "", {"status": "OPTIMAL", "objective_yen": 1.0})
    assert storage.get(stored.auction_id).state == "DONE"
    storage.close()


def test_health_follows_the_database_but_not_back_to_serving_after_shutdown_began():
    from grpc_health.v1 import health

    from dkw.server.health import StorageHealth

    class Store:
        retrier, fail = Retrier(RetryPolicy(budget_s=0.1)), False

        def ping(self):
            if self.fail:
                raise StorageUnavailable()

    servicer, store = health.HealthServicer(), Store()
    monitor = StorageHealth(store, servicer, ("", "dkw.v1.Clearing"), every_s=0.05)
    monitor.start()

    def status() -> str:
        request = health_pb2.HealthCheckRequest(service="dkw.v1.Clearing")
        return health_pb2.HealthCheckResponse.ServingStatus.Name(servicer.Check(request, None).status)

    try:
        assert status() == "SERVING"
        store.retrier._tell(False)  # an operation gave up: NOT_SERVING at once, not at the next ping
        assert status() == "NOT_SERVING"
        wait_for(lambda: status() == "SERVING", timeout=5, what="the ping to turn it back")
        store.fail = True
        wait_for(lambda: status() == "NOT_SERVING", timeout=5, what="a failed ping")
        servicer.enter_graceful_shutdown()
        store.fail = False
        time.sleep(1.5)
        assert status() == "NOT_SERVING"
    finally:
        monitor.stop()


def test_an_outcome_is_kept_until_the_database_takes_it_and_a_waiting_caller_gives_up_at_its_deadline():
    from dkw.server.outcomes import OutcomeWriter

    class Store:
        away, finished = True, []

        def finish(self, auction_id, owner, state, reason, result=None):
            if self.away:
                raise StorageUnavailable()
            self.finished.append((auction_id, owner, state))
            return True

    store, told = Store(), []
    writer = OutcomeWriter(store, "me")
    writer.write("auc_1", "DONE", "", {"status": "OPTIMAL"}, told.append, for_caller=True)
    assert writer.pending() == {"auc_1"} and told == []
    started = time.monotonic()
    assert writer.wait("auc_1", time.monotonic() + 0.3, lambda: True) is None  # the caller's deadline first
    assert 0.25 < time.monotonic() - started < 2
    store.away = False
    wait_for(lambda: told == [True], timeout=5, what="the kept outcome to be written")
    assert store.finished == [("auc_1", "me", "DONE")] and writer.pending() == set()
    writer.close(timeout=1)


# ---- SQLite: a locked file, a read-only file ------------------------------------------------------------

def lock_file(path) -> sqlite3.Connection:
    """Another process's write transaction on the file (a connection of our own holds it)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


@pytest.mark.slow
def test_a_locked_sqlite_file_gives_a_clear_error_at_start_and_unavailable_at_rpc_time(tmp_path):
    SqliteStorage(tmp_path).close()
    holder = lock_file(tmp_path / SqliteStorage.FILENAME)
    with pytest.raises(DatabaseFileError, match=r"dkw\.sqlite3: the database file is locked by another process.*--data"):
        SqliteStorage(tmp_path, retry=RetryPolicy(budget_s=0.2), busy_timeout_s=0.1)
    started = subprocess.run([sys.executable, "-m", "dkw", "serve", "--port", "0", "--data", str(tmp_path),
                              "--storage-retry-seconds", "0.2"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert started.returncode == 2 and "Traceback" not in started.stderr
    assert "is locked by another process" in started.stderr and str(tmp_path) in started.stderr
    holder.execute("ROLLBACK")

    server = Served(tmp_path / "rpc", extra=("--storage-retry-seconds", "0.3", "--audit-backlog", "2",
                                             "--metrics-port", "0"))
    try:
        raw = pb_grpc.ClearingStub(grpc.insecure_channel(server.target))
        holder = lock_file(tmp_path / "rpc" / SqliteStorage.FILENAME)
        with pytest.raises(grpc.RpcError) as error:
            raw.SubmitAuction(pb.SubmitAuctionRequest(auction=case_message("01-merit-order")), timeout=30)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error.value.details() == f"{UNAVAILABLE_MESSAGE}: the database file is locked by another process"
        listed = raw.ListAuctions(pb.ListAuctionsRequest(), timeout=30)  # reads go on beside the lock (WAL)
        assert listed.auctions == []
        assert metrics_of(server)["dkw_audit_backlog"] == 2  # both calls' records wait in memory, in order
        with pytest.raises(grpc.RpcError) as error:  # the backlog is full: refused before it does anything
            raw.SubmitAuction(pb.SubmitAuctionRequest(auction=case_message("01-merit-order")), timeout=30)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE and "audit trail" in error.value.details()
        holder.execute("ROLLBACK")
        wait_for(lambda: metrics_of(server)["dkw_audit_backlog"] == 0, what="the backlog to be written")
        records = raw.ListAuditRecords(pb.ListAuditRecordsRequest(), timeout=30).records
        assert [(r.method, r.status_code) for r in reversed(records)][:2] == [("SubmitAuction", "UNAVAILABLE"),
                                                                               ("ListAuctions", "OK")]
        assert raw.ListAuctions(pb.ListAuctionsRequest(), timeout=30).auctions == []  # nothing was stored
        log = (server.data / "serve.log").read_text()
        assert "Traceback" not in log and "waiting for the database" in log and "record NOT kept" in log  # the third
    finally:
        server.stop()
        server.kill_all()


def test_a_read_only_sqlite_file_gives_one_line_at_start(tmp_path):
    SqliteStorage(tmp_path).close()
    path = tmp_path / SqliteStorage.FILENAME
    if os.geteuid() == 0:  # root writes through file modes: make the file immutable instead
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if made.returncode != 0:
            pytest.skip(f"running as root and chattr +i is refused here ({made.stderr.strip()!r}): cannot make a "
                        "read-only file")
    else:
        path.chmod(0o444)
    try:
        started = subprocess.run([sys.executable, "-m", "dkw", "serve", "--port", "0", "--data", str(tmp_path),
                                  "--storage-retry-seconds", "0.2"], cwd=ROOT, capture_output=True, text=True,
                                 timeout=60)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)
    assert started.returncode == 2 and "Traceback" not in started.stderr, started.stderr
    lines = started.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "read-only" in lines[0], started.stderr
