"""Graceful drain (server/drain.py, docs/replicas.md): SIGTERM during a national solve hands the auction
back with its best incumbent, and the server that claims it next starts from that incumbent.

Time budget: about 25 s on two cores (shared case 09, 900 bids, which runs to its time limit).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_grpc import ROOT, Served, auction_of
from test_replicas import verified

from dkw.clearing.document import load_auction, parse_document
from dkw.clearing.engine import clear
from dkw.clearing.formulation import formulate
from dkw.clearing.handback import incumbent_of, start_from_incumbent
from dkw.clearing.index import build_index
from dkw.clearing.matrix import to_matrix
from dkw.clearing.rules import prepare_clearing
from dkw.server.convert import response_document
from dkw.server.sqlite import SqliteStorage
from dkw.server.storage import QUEUED
from dkw.solvers.api import START_TOLERANCE, SolveOptions
from dkw.solvers.highs import violation
from dkw.v1 import clearing_pb2 as pb

CASE = ROOT / "tests" / "cases" / "09-national-30min.json"


def wait_for_incumbent(server: Served, auction_id: str) -> pb.ClearingProgress:
    for event in server.stub.WatchClearing(pb.WatchRequest(auction_id=auction_id), timeout=120):
        if event.phase == pb.ClearingProgress.SOLVING and event.HasField("incumbent_yen"):
            return event
    raise AssertionError("the watch ended before an incumbent was found")


@pytest.mark.slow
def test_sigterm_hands_back_an_incumbent_that_the_next_server_starts_from(tmp_path):
    raw = CASE.read_bytes()
    data = tmp_path / "var"
    server = Served(data, extra=("--drain-seconds", "1"))
    try:
        submitted = server.stub.SubmitAuction(pb.SubmitAuctionRequest(
            auction_json=raw, options=pb.SolveOptions(time_limit_s=8)), timeout=30)
        wait_for_incumbent(server, submitted.auction_id)
        assert server.stop() == 0  # SIGTERM: 1 s of drain, then the solve is stopped and handed back
    finally:
        server.kill_all()
    log = (data / "serve.log").read_text()
    assert "1 unfinished clearing(s) stopped and handed back" in log
    with SqliteStorage(data) as storage:
        record = storage.get(submitted.auction_id)
        stored = json.loads(storage._all_rows("SELECT handed_back FROM auctions WHERE auction_id = %s",
                                              submitted.auction_id)[0][0])
    assert record.state == QUEUED and record.attempts == 0  # the attempt is not counted as a failure
    assert "handed back" in record.reason and stored["awards"]

    server = Served(data)
    try:
        events = list(server.stub.WatchClearing(pb.WatchRequest(auction_id=submitted.auction_id), timeout=120))
        assert events[-1].phase == pb.ClearingProgress.DONE
        response = server.stub.GetResult(pb.GetResultRequest(auction_id=submitted.auction_id), timeout=30)
        assert server.stop() == 0
    finally:
        server.kill_all()
    doc = response_document(response)
    assert response.state == pb.DONE and verified(raw, doc)
    assert doc["handed_back_start"] == {"objective_yen": stored["objective_yen"], "used": True}
    assert doc["objective_yen"] <= stored["objective_yen"] + 1e-6
    assert "starting from the incumbent handed back" in (data / "serve.log").read_text()


def test_a_handed_back_incumbent_is_a_feasible_point_of_a_fresh_formulation():
    """The stored awards, flows and shortfalls (ids only) rebuild the stopped run's point exactly enough
    for the solver to take it as a start, at its cost."""
    auction = load_auction(parse_document(CASE.read_bytes()))
    first = clear(auction, SolveOptions(time_limit_s=2), explain_options=False).to_document()
    incumbent = incumbent_of(first)
    assert incumbent is not None
    prepared, left_out, _ = prepare_clearing(auction, None, None, ())
    form = formulate(build_index(prepared, left_out, set()))
    x = start_from_incumbent(form, incumbent)
    mm = to_matrix(form)
    assert violation(mm, x) <= START_TOLERANCE
    procurement = float(np.dot(mm.col_cost[:form.columns.num_bids], x[:form.columns.num_bids]))
    assert procurement > 0


def test_without_an_incumbent_nothing_is_handed_back():
    assert incumbent_of({"status": "TIME_LIMIT_NO_SOLUTION", "objective_yen": None}) is None
    assert auction_of(CASE.read_bytes()).auction_id


@pytest.mark.slow
def test_on_postgresql_the_other_replica_takes_the_handed_back_auction_over(tmp_path):
    """Two replicas on one database: the one solving is stopped (SIGTERM, 2 s of drain), the other one
    claims the auction at once and starts from the incumbent the first one stored."""
    from conftest import pg_schema
    from test_replicas import solving_server

    from dkw.server.postgres import PostgresStorage

    raw = CASE.read_bytes()
    with pg_schema() as url:
        # 2 s of drain after the first incumbent: the fast path's components then all have a solution
        servers = [Served(tmp_path / name, extra=("--database", url, "--drain-seconds", "2")) for name in "ab"]
        try:
            submitted = servers[0].stub.SubmitAuction(pb.SubmitAuctionRequest(
                auction_json=raw, options=pb.SolveOptions(time_limit_s=8)), timeout=30)
            solving = solving_server(servers, submitted.auction_id, url)
            other = next(s for s in servers if s is not solving)
            wait_for_incumbent(solving, submitted.auction_id)
            assert solving.stop() == 0
            events = list(other.stub.WatchClearing(pb.WatchRequest(auction_id=submitted.auction_id), timeout=120))
            assert events[-1].phase == pb.ClearingProgress.DONE
            response = other.stub.GetResult(pb.GetResultRequest(auction_id=submitted.auction_id), timeout=30)
            assert other.stop() == 0
        finally:
            for server in servers:
                server.kill_all()
        with PostgresStorage(url, pool_size=1) as storage:
            record = storage.get(submitted.auction_id)
    doc = response_document(response)
    assert record.attempts == 1 and verified(raw, doc)
    assert doc["handed_back_start"]["used"] is True
    assert "starting from the incumbent handed back" in (other.data / "serve.log").read_text()
