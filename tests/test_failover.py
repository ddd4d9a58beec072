"""Failover between replicas (dkw.client): first what gRPC does with two in-process servers of which one
refuses, is not serving, or goes away mid-stream; then a whole day through the CLI alone against two TLS
replicas on PostgreSQL, one of them killed half-way: submit, watch, list, result with the signature
checked, cancel, audit, every command given both replicas (`--server A,B`). The day is skipped without
DKW_TEST_DATABASE_URL.

Time budget: the in-process part a few seconds; the day under 60 s on two cores: two server starts,
about fifteen commands of about two seconds each (a fresh interpreter each, as an operator runs them),
and a generated 300-bid auction with a 5 s limit whose solve is still running when A is killed
(test_replicas's slow auction).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import psutil
import pytest
from conftest import CASES_DIR
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from test_security import Pki, Server

from dkw.cli import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_PERMISSION_DENIED
from dkw.client import Client, Unreachable
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
SMALL = str(CASES_DIR / "01-merit-order.json")


# ---- what gRPC does for the client: two in-process replicas ------------------------------------------


class Replica(pb_grpc.ClearingServicer):
    """GetResult answers with the replica's name, or refuses with `refuse`; a watch sends SOLVING and then
    waits, except when it is not the first watch of `watches` (the first replica went away): then DONE."""

    def __init__(self, name: str, watches: list[str], refuse: grpc.StatusCode | None = None, serving: bool = True):
        self.name, self.watches, self.refuse, self.calls = name, watches, refuse, 0
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        pb_grpc.add_ClearingServicer_to_server(self, self.server)
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        checks = health.HealthServicer()
        checks.set("dkw.v1.Clearing", status)
        health_pb2_grpc.add_HealthServicer_to_server(checks, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def GetResult(self, request, context):
        self.calls += 1
        if self.refuse is not None:
            context.abort(self.refuse, f"replica {self.name} refuses for now")
        return pb.ClearResponse(auction_id=self.name, state=pb.RUNNING)

    def WatchClearing(self, request, context):
        self.watches.append(self.name)
        yield pb.ClearingProgress(auction_id=request.auction_id, phase=pb.ClearingProgress.SOLVING, state=pb.RUNNING,
                                  incumbent_yen=100.0)
        if len(self.watches) > 1:
            yield pb.ClearingProgress(auction_id=request.auction_id, phase=pb.ClearingProgress.DONE, state=pb.DONE)
            return
        threading.Event().wait(30)  # until the test stops this replica


@pytest.fixture
def replicas():
    made: list[Replica] = []

    def make(*specs: dict) -> tuple[list[Replica], str]:
        watches: list[str] = []
        made.extend(Replica(name, watches, **spec) for name, spec in zip("AB", specs, strict=True))
        return made, ",".join(f"127.0.0.1:{r.port}" for r in made)

    yield make
    for replica in made:
        replica.server.stop(0)


@pytest.mark.slow
def test_a_call_refused_with_unavailable_is_retried_on_the_other_replica(replicas):
    """round_robin sends the retry to the next replica; pick_first would retry on the one that refused."""
    (a, b), target = replicas({"refuse": grpc.StatusCode.UNAVAILABLE}, {})
    with Client(target) as client:
        assert [client.status("x").auction_id for _ in range(4)] == ["B"] * 4
    # every call ended on B (a retry that stayed on A would have failed); A saw about one attempt per call
    # (one more when B's connection was not yet ready for the first call)
    assert b.calls == 4 and 1 <= a.calls <= 8
    a.calls = 0
    with Client(target, balancing="pick_first", timeout=2) as client:
        try:
            client.status("x")
        except Unreachable:  # pick_first kept every attempt on A, the first address, which refused them all
            assert a.calls > 1 and b.calls == 4
        else:  # on a loaded machine pick_first may have connected to B first: nothing to compare then
            assert b.calls == 5


def test_a_replica_that_is_not_serving_gets_no_calls(replicas):
    """Client-side health checking: a replica whose health says NOT_SERVING (stopping, say) is left out."""
    (a, b), target = replicas({"serving": False}, {})
    with Client(target) as client:
        assert {client.status("x").auction_id for _ in range(4)} == {"B"}
    assert a.calls == 0


def test_a_watch_cut_by_its_replica_going_away_follows_on_the_other(replicas):
    (a, b), target = replicas({}, {})
    resumed = []
    with Client(target) as client:
        events = client.watch("auc_x", on_resume=resumed.append)
        first = next(events)
        assert first.phase == "SOLVING" and first.incumbent_yen == 100.0
        gone = a if a.watches == ["A"] else b
        gone.server.stop(0)
        rest = list(events)
    assert [e.phase for e in rest] == ["SOLVING", "DONE"] and len(resumed) == 1
    assert resumed[0].code == grpc.StatusCode.UNAVAILABLE and a.watches[1] != gone.name


# ---- a day through the CLI: two TLS replicas on PostgreSQL -------------------------------------------


def dkw(*args: str, token: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dkw", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {}), "DKW_TOKEN": token})


def kill(server: Server) -> None:
    """SIGKILL, as a machine that goes away: no goodbye to its clients, its lease simply expires."""
    children = psutil.Process(server.process.pid).children(recursive=True)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    for child in children:
        if child.is_running():
            child.kill()
    server.process.stdout.close()
    server.log.close()


@pytest.fixture(scope="module")
def day(tmp_path_factory, pg_url_module):
    """Two replicas on one database with one client registry, TLS, a signing key; tokens for a submitter
    and an admin."""
    url = pg_url_module
    where = tmp_path_factory.mktemp("failover")
    pki = Pki(where)
    private, public = str(where / "signing.pem"), str(where / "signing.pub.pem")
    subprocess.run([sys.executable, "-m", "dkw", "keys", "new", private, public], cwd=ROOT, check=True, capture_output=True)
    tokens = {}
    for client, role in (("tso-a", "submitter"), ("ops", "admin")):
        added = subprocess.run([sys.executable, "-m", "dkw", "clients", "add", "--database", url, client, "--role", role],
                               cwd=ROOT, capture_output=True, text=True)
        assert added.returncode == 0, added.stderr
        tokens[client] = added.stdout.strip()
    flags = ("--database", url, "--authenticate", "--tls-cert", pki.server_cert, "--tls-key", pki.server_key,
             "--signing-key", private, "--lease-seconds", "2")
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(Server(where / name, *flags))
        yield url, pki, public, tokens, servers
    finally:
        for server in servers:
            if server.process.poll() is None:
                kill(server)


@pytest.fixture(scope="module")
def pg_url_module():
    from conftest import pg_schema

    with pg_schema() as url:
        yield url


@pytest.mark.slow
def test_a_day_through_the_cli_with_one_replica_killed_half_way(day, tmp_path):
    url, pki, public, tokens, (a, b) = day
    both = ("--server", f"{a.target},{b.target}", "--tls-ca", pki.ca)
    tso, ops = tokens["tso-a"], tokens["ops"]

    # morning: a small auction, start to signed result, with both replicas up
    submitted = dkw("submit", SMALL, "--key", "day-1", *both, token=tso)
    assert submitted.returncode == EXIT_OK, submitted.stderr
    first = submitted.stdout.strip()
    watched = dkw("watch", first, *both, token=tso)
    assert watched.returncode == EXIT_OK and f"{first}: DONE" in watched.stdout, watched.stderr
    result = dkw("result", first, "--public-key", public, "-o", str(tmp_path / "first.json"), *both, token=tso)
    assert result.returncode == EXIT_OK and "signature valid" in result.stderr, result.stderr

    # a national-sized solve, watched while A is killed: the watch finishes either way (on A, its stream is
    # cut and followed again on B; test_a_watch_cut_by_its_replica_going_away_follows_on_the_other pins that)
    slow = tmp_path / "slow.json"
    slow.write_bytes(subprocess.run([sys.executable, "bench/casegen.py", "--seed", "1", "--bids", "300"], cwd=ROOT,
                                    check=True, capture_output=True).stdout)
    second = dkw("submit", str(slow), "--time-limit", "5", *both, token=tso).stdout.strip()
    assert second.startswith("auc_")
    watch = subprocess.Popen([sys.executable, "-m", "dkw", "watch", second, *both], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "DKW_TOKEN": tso})
    try:
        seen = []
        for line in watch.stderr:  # one progress line per event (stderr is not a terminal)
            seen.append(line)
            if line.startswith("["):  # the first progress line: the watch's stream is open
                break
        assert watch.poll() is None, seen
        kill(a)
        out, err = watch.communicate(timeout=90)
    finally:
        if watch.poll() is None:
            watch.kill()
    err = "".join(seen) + err
    assert ("the stream was cut" in err) == ("following the auction again" in err), err
    assert f"{second}: DONE" in out, (out, err)
    status = json.loads(dkw("status", second, "--json", *both, token=tso).stdout)
    # what is tested is the failover; on a loaded machine 5 s may end before the first incumbent
    assert watch.returncode == (EXIT_OK if status["status"] in ("OPTIMAL", "TIME_LIMIT_FEASIBLE") else EXIT_FAILED)
    assert status["state"] == "DONE"

    # afternoon, A still down: every command goes to B. B's one worker takes the third auction, so the
    # fourth waits in the queue until it is cancelled (a queued auction ends at once)
    third, fourth = (dkw("submit", str(slow), "--time-limit", "60", *both, token=tso).stdout.strip() for _ in "34")
    assert third.startswith("auc_") and fourth.startswith("auc_")
    cancelled = dkw("cancel", fourth, "--reason", "ops: wrong day", *both, token=tso)
    assert cancelled.returncode == EXIT_OK and "CANCELLED (ops: wrong day)" in cancelled.stdout, cancelled.stderr
    ended = dkw("watch", fourth, *both, token=tso)
    assert ended.returncode == EXIT_FAILED and f"{fourth}: CANCELLED (ops: wrong day)" in ended.stdout, ended.stderr
    none = dkw("result", fourth, *both, token=tso)
    assert none.returncode == EXIT_FAILED and "is CANCELLED (ops: wrong day): no result" in none.stderr, none.stderr
    listed = dkw("list", "--json", *both, token=tso)
    states = {a["auction_id"]: a["state"] for a in map(json.loads, listed.stdout.splitlines())}
    assert listed.returncode == EXIT_OK and states == {first: "DONE", second: "DONE", third: "RUNNING",
                                                       fourth: "CANCELLED"}, states
    checked = dkw("result", second, "--public-key", public, "-o", str(tmp_path / "second.json"), *both, token=tso)
    assert checked.returncode == EXIT_OK and "signature valid" in checked.stderr, checked.stderr
    assert dkw("status", "auc_00000000000000000000", *both, token=tso).returncode == EXIT_NOT_FOUND

    # evening: the audit trail, from the service (admin only) and straight from the database
    assert dkw("audit", *both, token=tso).returncode == EXIT_PERMISSION_DENIED
    served = dkw("audit", "--client", "tso-a", "--json", *both, token=ops)
    assert served.returncode == EXIT_OK, served.stderr
    records = [json.loads(line) for line in served.stdout.splitlines()]
    calls = {(r["method"], r["auction_id"]) for r in records if r["status_code"] == "OK"}
    assert {("SubmitAuction", first), ("SubmitAuction", fourth), ("CancelClearing", fourth), ("GetResult", second),
            ("WatchClearing", second)} <= calls, calls
    offline = dkw("audit", "--database", url, "--client", "tso-a", "--json", token="")
    assert offline.returncode == EXIT_OK, offline.stderr
    assert [json.loads(line) for line in offline.stdout.splitlines()] == records
    assert b.process.poll() is None and a.process.poll() is not None
