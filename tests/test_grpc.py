"""The gRPC service, end to end: a real `dkw serve` process on a free loopback port, a real channel.

Time budget (CI allows this file about 90 s on two cores): the small cases are cleared over gRPC and
compared field for field with an in-process clear; the national cases 08 and 10 (a few seconds each with
the fast method) are cleared over gRPC against the independently computed optimum. 09 is left out: it
takes 20-60 s to prove optimal, and the gRPC layer only moves documents, never looks inside them, so it
can get nothing wrong on 09 that 08 and 10 do not exercise (test_cases.py clears 09 through `dkw clear`).
The long-running behaviours (deadline, cancel, restart) use a generated auction with a time limit, so they
take seconds whatever the machine's load. The national cases and the long-running behaviours are marked
slow; the fast lane keeps the small cases' round trips and the quick calls.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
import pytest
from conftest import CASES_DIR, EXPECTED, clear_and_verify, grpcurl
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dkw.clearing.document import InvalidAuction, load_auction, load_auction_file
from dkw.clearing.verify import verify_result
from dkw.server.client import connect, field_violations
from dkw.server.convert import auction_document, result_document, result_message
from dkw.server.sqlite import SqliteStorage
from dkw.server.storage import QUEUED, RUNNING
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
SMALL_CASES = sorted(name for name in EXPECTED if name.split("-")[0] not in ("08", "09", "10"))
TIMING_FIELDS = ("seconds", "build_seconds", "pricing_seconds", "total_seconds")


class Served:
    """A `dkw serve` child process and a channel to it."""

    def __init__(self, data: Path, workers: int = 1, extra: tuple[str, ...] = ()):
        self.data = data
        data.mkdir(parents=True, exist_ok=True)
        self.log = open(data / "serve.log", "a")  # a file, not a pipe nobody drains
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dkw", "serve", "--port", "0", "--data", str(data), "--workers", str(workers),
             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        self.banner = line
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match is None:
            self.process.kill()
            raise RuntimeError(f"dkw serve did not start: {line!r} {(data / 'serve.log').read_text()}")
        self.workers = wait_for(lambda: worker_pids(self) if len(worker_pids(self)) == workers else None,
                                what="the workers to start")
        self.port = int(match.group(1))
        self.target = f"127.0.0.1:{self.port}"
        self.channel = connect(self.target)
        self.stub = pb_grpc.ClearingStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def serving(self) -> bool:
        response = self.health.Check(health_pb2.HealthCheckRequest(service="dkw.v1.Clearing"), timeout=5)
        return response.status == health_pb2.HealthCheckResponse.SERVING

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal the server and wait for it to exit; its workers must be gone within a few seconds too
        (after SIGKILL they notice that their parent died)."""
        self.channel.close()
        workers = worker_pids(self)
        self.process.send_signal(sig)
        try:
            try:
                code = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # where it hangs, for the failure's message: dkw serve dumps every thread's stack on SIGUSR2
                self.process.send_signal(signal.SIGUSR2)
                time.sleep(2)
                tail = (self.data / "serve.log").read_text()[-8000:]
                raise AssertionError(f"dkw serve did not exit within {timeout} s of {sig!r}; its log ends:\n{tail}") from None
            wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10, what="the workers to exit")
            return code
        finally:
            self.process.stdout.close()
            self.log.close()

    def kill_all(self) -> None:
        """Last resort for a failed test: no process of ours outlives it."""
        if self.process.poll() is None:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                child.kill()
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = Served(tmp_path_factory.mktemp("var"))
    yield server
    assert server.stop() == 0
    server.kill_all()


def case_message(name: str) -> pb.Auction:
    return json_format.Parse((CASES_DIR / f"{name}.json").read_text(), pb.Auction())


def without_timings(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    for key in TIMING_FIELDS:
        doc["solver"].pop(key)
    return doc


def auction_of(raw: bytes):
    """The auction as the server reads `auction_json`: hashed by its canonical JSON, like a file."""
    return load_auction(json.loads(raw))


def wait_for(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def worker_pids(server: Served) -> set[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    if server.process.poll() is not None:
        return set()
    pids = set()
    for child in psutil.Process(server.process.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def state_of(stub, auction_id: str) -> str:
    return pb.AuctionState.Name(stub.GetResult(pb.GetResultRequest(auction_id=auction_id)).state)


# ---- the generated code and the conversions ---------------------------------------------------------

def test_generated_code_matches_the_proto(tmp_path):
    """dkw/v1 is generated from proto/ by grpcio-tools; regenerating must give the committed bytes."""
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-Iproto", f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", "proto/dkw/v1/clearing.proto"],
                   cwd=ROOT, check=True)
    for name in ("clearing_pb2.py", "clearing_pb2.pyi", "clearing_pb2_grpc.py"):
        assert (tmp_path / "dkw/v1" / name).read_bytes() == (ROOT / "dkw/v1" / name).read_bytes(), \
            f"dkw/v1/{name} is stale: regenerate it (see README, gRPC API)"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_auction_document_reads_straight_into_the_message(name):
    auction = load_auction(auction_document(case_message(name)))
    assert auction == load_auction_file(CASES_DIR / f"{name}.json")


def test_optional_fields_keep_zero_apart_from_absent():
    doc = json.loads((CASES_DIR / "05-cross-area.json").read_text())
    doc["requirements"][0]["kw"] = 0
    doc["bids"][0]["price_yen_per_kw_h"] = 0
    del doc["requirements"][1]["max_import_kw"]
    back = auction_document(json_format.ParseDict(doc, pb.Auction()))
    assert back["requirements"][0]["kw"] == 0 and back["requirements"][0]["block"] == 0
    assert back["bids"][0]["price_yen_per_kw_h"] == 0
    assert "max_import_kw" not in back["requirements"][1]
    del doc["bids"][0]["price_yen_per_kw_h"]
    with pytest.raises(InvalidAuction, match="price_yen_per_kw_h: missing required field"):
        load_auction(auction_document(json_format.ParseDict(doc, pb.Auction())))


def test_result_message_prints_as_the_result_document():
    auction = load_auction_file(CASES_DIR / "11-cap-dc-interface.json")
    doc = clear_and_verify(auction).to_document()
    doc["monitoring_flags"] = [{"bid": "x", "flag": "ABOVE_MARGINAL_COST"}]  # a section the schema predates
    message = result_message(doc)
    assert result_document(message) == doc
    printed = json.loads(json_format.MessageToJson(message, preserving_proto_field_name=True,
                                                   always_print_fields_with_no_presence=True))
    assert printed["awards"] == doc["awards"] and printed["status"] == "OPTIMAL"


def test_sigusr2_writes_every_threads_stack_and_the_server_goes_on(served):
    """An operator's look into a server that does not stop or answer: `kill -USR2 PID`."""
    log = served.data / "serve.log"
    before = log.read_text().count("most recent call first")
    served.process.send_signal(signal.SIGUSR2)
    wait_for(lambda: log.read_text().count("most recent call first") > before, timeout=10, what="the stack dump")
    assert "server/command.py" in log.read_text()  # the main thread, waiting for its stop signal
    assert served.serving()


# ---- clearing over gRPC -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", [*SMALL_CASES, "08-national-3h", "10-national-dense"])
def test_case_clears_over_grpc_like_in_process(served, name):
    message = case_message(name)
    response = served.stub.Clear(pb.ClearRequest(auction=message), timeout=300)
    assert response.state == pb.DONE and response.auction_id.startswith("auc_")
    doc = json.loads(response.result_json)  # the exact document the server stored (and would sign)
    assert result_document(response.result) == doc and not response.result_signature
    auction = load_auction_file(CASES_DIR / f"{name}.json")  # the message hashes as the file does
    assert doc["input_sha256"] == auction.input_sha256 == load_auction(auction_document(message)).input_sha256
    assert verify_result(auction, doc, left_out={r["bid"] for r in doc["rejected_bids"]}) == []
    assert doc["status"] == "OPTIMAL"
    assert doc["objective_yen"] == pytest.approx(EXPECTED[name]["objective_yen"], rel=1e-6)
    if name in SMALL_CASES:  # cheap to clear again in-process: the whole document must agree
        in_process = clear_and_verify(load_auction_file(CASES_DIR / f"{name}.json")).to_document()
        # half the call's 300 s deadline (gRPC rounds it up a little)
        assert 0 < doc["solver"]["options"].pop("time_limit_s") <= 151
        in_process["solver"]["options"].pop("time_limit_s")
        assert without_timings(doc) == without_timings(in_process)


def test_list_auctions_pages_through_everything_stored(served):
    everything = served.stub.ListAuctions(pb.ListAuctionsRequest(page_size=1000), timeout=30).auctions
    assert len(everything) >= 3 and all(a.solver.startswith("HiGHS") for a in everything if a.state == pb.DONE)
    paged, token = [], ""
    while True:
        page = served.stub.ListAuctions(pb.ListAuctionsRequest(page_size=2, page_token=token), timeout=30)
        assert len(page.auctions) <= 2
        paged += page.auctions
        token = page.next_page_token
        if not token:
            break
    assert [a.auction_id for a in paged] == [a.auction_id for a in everything]  # newest first, each once
    done = served.stub.ListAuctions(pb.ListAuctionsRequest(state=pb.DONE), timeout=30).auctions
    assert done and all(a.state == pb.DONE for a in done)


def test_dkw_clear_server_writes_the_in_process_document(served, tmp_path, capsys):
    from dkw.cli import main

    case = str(CASES_DIR / "04-startup-linked.json")
    assert main(["clear", case, "--server", served.target, "-o", str(tmp_path / "remote.json")]) == 0
    assert "stored as auc_" in capsys.readouterr().out
    assert main(["clear", case, "-q", "-o", str(tmp_path / "local.json")]) == 0
    remote, local = (json.loads((tmp_path / f).read_text()) for f in ("remote.json", "local.json"))
    assert remote["input_sha256"] == local["input_sha256"]
    assert without_timings(remote) == without_timings(local)


def test_invalid_auction_is_invalid_argument_with_one_violation_per_problem(served, capsys):
    doc = json.loads((CASES_DIR / "04-startup-linked.json").read_text())
    doc["bids"][0]["min_kw"] = doc["bids"][0]["kw"] + 1  # above kw, within the plausibility limit
    doc["bids"][1]["area"] = "mars"
    del doc["requirements"][0]["kw"]
    with pytest.raises(InvalidAuction) as expected:
        load_auction(doc)
    wanted = [(p.path, p.message) for p in expected.value.problems]
    assert len(wanted) == 3
    for call, request in ((served.stub.Clear, pb.ClearRequest), (served.stub.SubmitAuction, pb.SubmitAuctionRequest)):
        with pytest.raises(grpc.RpcError) as error:
            call(request(auction=json_format.ParseDict(doc, pb.Auction())), timeout=30)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(error.value) == wanted
    with pytest.raises(grpc.RpcError) as error:
        served.stub.Clear(pb.ClearRequest(auction_json=b'{"format": '), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not valid JSON" in field_violations(error.value)[0][1]

    validated = served.stub.Validate(pb.ValidateRequest(auction_json=json.dumps(doc).encode()), timeout=30)
    assert not validated.valid and [(p.path, p.message) for p in validated.problems] == wanted
    good = served.stub.Validate(pb.ValidateRequest(auction=case_message("04-startup-linked")), timeout=30)
    assert good.valid and good.bids == 5 and good.requirements == 3 and not good.problems

    for call, request in ((served.stub.GetResult, pb.GetResultRequest(auction_id="auc_nope")),
                          (lambda r, timeout: list(served.stub.WatchClearing(r, timeout=timeout)),
                           pb.WatchRequest(auction_id="auc_nope"))):
        with pytest.raises(grpc.RpcError) as error:
            call(request, timeout=30)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.slow
def test_messages_above_grpc_default_4_mb_are_accepted(served):
    doc = json.loads((CASES_DIR / "01-merit-order.json").read_text())
    template = doc["bids"][0]
    doc["bids"] = [{**template, "id": f"copy-{i:06d}"} for i in range(40_000)]
    raw = json.dumps(doc).encode()
    assert len(raw) > 5 * 1024 * 1024
    response = served.stub.Validate(pb.ValidateRequest(auction_json=raw), timeout=120)
    assert response.valid and response.bids == 40_000


def test_validate_reports_the_market_rules_verdicts(served, slow_auction):
    from dkw.clearing.rules import validate_auction

    rules = validate_auction(auction_of(slow_auction)).to_document()
    response = served.stub.Validate(pb.ValidateRequest(auction_json=slow_auction), timeout=60)
    assert response.valid and not response.problems
    reported = {b["bid"]: b for b in rules["bids"]
                if b["verdict"] != "ELIGIBLE" or b["clearing"] == "LEFT_OUT" or b["flags"]}
    assert reported, "the generated auction has ineligible or flagged bids"
    assert [v.bid for v in response.verdicts] == list(reported)
    for v in response.verdicts:
        assert (v.verdict, v.clearing, len(v.flags)) == \
            (reported[v.bid]["verdict"], reported[v.bid]["clearing"], len(reported[v.bid]["flags"]))
    assert json_format.MessageToDict(response.market_rules)["summary"]["bids"] == len(rules["bids"])


def test_thousands_of_problems_fit_a_default_client(served):
    """Field violations travel in trailers, which default clients cap at 8 KiB: the server sends what fits
    and says how many more there are."""
    doc = json.loads((CASES_DIR / "01-merit-order.json").read_text())
    doc["bids"] = [{**doc["bids"][0], "id": f"b{i}", "area": "mars"} for i in range(2000)]
    with grpc.insecure_channel(served.target) as plain:  # no raised limits
        with pytest.raises(grpc.RpcError) as error:
            pb_grpc.ClearingStub(plain).Clear(pb.ClearRequest(auction=json_format.ParseDict(doc, pb.Auction())),
                                              timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error.value)
    assert violations[0] == ("bids[0].area", "unknown area 'mars'")
    assert 10 < len(violations) < 2000 and violations[-1][1].endswith("more problem(s); Validate lists them all")
    assert "2000 problem(s)" in error.value.details()


@pytest.mark.slow
def test_short_deadline_gives_the_incumbent_or_deadline_exceeded(served, slow_auction):
    started = time.monotonic()
    try:
        response = served.stub.Clear(pb.ClearRequest(auction_json=slow_auction), timeout=6)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    else:
        doc = result_document(response.result)
        assert doc["status"] == "TIME_LIMIT_FEASIBLE"
        assert doc["solver"]["mip_gap"] is not None and doc["solver"]["mip_gap"] > 0
        auction = auction_of(slow_auction)
        assert verify_result(auction, doc, left_out={r["bid"] for r in doc["rejected_bids"]}) == []
    assert time.monotonic() - started < 8
    assert served.serving()
    wait_for(lambda: served.stub.ListAuctions(pb.ListAuctionsRequest(state=pb.RUNNING)).auctions == [],
             what="the solve to stop")
    small = served.stub.Clear(pb.ClearRequest(auction=case_message("01-merit-order")), timeout=60)
    assert small.result.status == pb.ClearingResult.OPTIMAL


@pytest.mark.slow
def test_full_pool_is_resource_exhausted_and_a_cancelled_call_stops_its_solve(served, slow_auction):
    before = worker_pids(served)
    call = served.stub.Clear.future(pb.ClearRequest(auction_json=slow_auction))
    running = wait_for(lambda: served.stub.ListAuctions(pb.ListAuctionsRequest(state=pb.RUNNING)).auctions,
                       what="the slow auction to run")
    auction_id = running[0].auction_id
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as error, grpc.insecure_channel(served.target) as plain:
        # the only worker is busy: refused at once, no hang (to a client without `connect`'s retries)
        pb_grpc.ClearingStub(plain).Clear(pb.ClearRequest(auction=case_message("01-merit-order")), timeout=30)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert time.monotonic() - started < 5
    solving = [pid for pid in before if psutil.pid_exists(pid)]
    assert solving, "the worker process should be running the slow auction"

    call.cancel()
    wait_for(lambda: state_of(served.stub, auction_id) == "CANCELLED", what="the auction to be cancelled")
    wait_for(lambda: not any(alive(pid) for pid in solving), timeout=10, what="the solving worker to be stopped")
    assert served.stub.GetResult(pb.GetResultRequest(auction_id=auction_id)).reason
    small = served.stub.Clear(pb.ClearRequest(auction=case_message("01-merit-order")), timeout=60)
    assert small.result.status == pb.ClearingResult.OPTIMAL


# ---- submit, watch, persist, restart ----------------------------------------------------------------

@pytest.mark.slow
def test_submit_watch_restart_get_result(tmp_path, slow_auction):
    data = tmp_path / "var"
    server = Served(data)
    try:
        options = pb.SolveOptions(time_limit_s=2)
        submitted = server.stub.SubmitAuction(pb.SubmitAuctionRequest(
            auction_json=slow_auction, idempotency_key="tso-tokyo-2026-10-01", options=options), timeout=30)
        assert submitted.created
        again = server.stub.SubmitAuction(pb.SubmitAuctionRequest(
            auction_json=slow_auction, idempotency_key="tso-tokyo-2026-10-01", options=options), timeout=30)
        assert (again.auction_id, again.created) == (submitted.auction_id, False)
        with pytest.raises(grpc.RpcError) as error:  # the same key for another document is a client bug
            server.stub.SubmitAuction(pb.SubmitAuctionRequest(
                auction=case_message("01-merit-order"), idempotency_key="tso-tokyo-2026-10-01"), timeout=30)
        assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS

        events = list(server.stub.WatchClearing(pb.WatchRequest(auction_id=submitted.auction_id), timeout=120))
        phases = [pb.ClearingProgress.Phase.Name(e.phase) for e in events]
        for phase in ("QUEUED", "VALIDATING", "BUILDING", "SOLVING", "DONE"):  # PRICING: the straight method only
            assert phase in phases, phases
        assert phases.count("DONE") == 1 and phases[-1] == "DONE"
        assert phases.index("VALIDATING") < phases.index("BUILDING") < phases.index("SOLVING")
        snapshots = [e for e in events if e.phase == pb.ClearingProgress.SOLVING and e.HasField("bound_yen")]
        assert snapshots
        assert all(e.bound_yen <= e.incumbent_yen + 1e-6 for e in snapshots if e.HasField("incumbent_yen"))
        assert [e.elapsed_s for e in events[:-1]] == sorted(e.elapsed_s for e in events[:-1])
        watched = result_document(events[-1].result)
        assert watched["status"] in ("OPTIMAL", "TIME_LIMIT_FEASIBLE")
        auction = auction_of(slow_auction)
        assert verify_result(auction, watched, left_out={r["bid"] for r in watched["rejected_bids"]}) == []
        assert server.stop() == 0  # SIGTERM: a clean exit
    finally:
        server.kill_all()

    server = Served(data)
    try:
        stored = server.stub.GetResult(pb.GetResultRequest(auction_id=submitted.auction_id), timeout=30)
        assert stored.state == pb.DONE and result_document(stored.result) == watched
        listed = server.stub.ListAuctions(pb.ListAuctionsRequest(), timeout=30).auctions
        assert [(a.auction_id, a.idempotency_key, a.input_sha256) for a in listed] == \
            [(submitted.auction_id, "tso-tokyo-2026-10-01", submitted.input_sha256)]
        assert listed[0].objective_yen == pytest.approx(watched["objective_yen"])
        replayed = list(server.stub.WatchClearing(pb.WatchRequest(auction_id=submitted.auction_id), timeout=30))
        assert len(replayed) == 1 and replayed[0].phase == pb.ClearingProgress.DONE
        assert server.stop() == 0
    finally:
        server.kill_all()


def submit_and_wait_until_solving(server: Served, auction_json: bytes) -> pb.SubmitAuctionResponse:
    """Submit a slow auction and return once its clearing has reached the solver."""
    submitted = server.stub.SubmitAuction(pb.SubmitAuctionRequest(
        auction_json=auction_json, options=pb.SolveOptions(time_limit_s=2)), timeout=30)
    for event in server.stub.WatchClearing(pb.WatchRequest(auction_id=submitted.auction_id), timeout=60):
        if event.phase == pb.ClearingProgress.SOLVING:
            break
    return submitted


@pytest.mark.slow
def test_auction_cleared_during_shutdown_resumes_after_restart(tmp_path, slow_auction):
    data = tmp_path / "var"
    server = Served(data, extra=("--drain-seconds", "0"))  # no drain: the solve is stopped at once
    try:
        submitted = submit_and_wait_until_solving(server, slow_auction)
        assert server.stop() == 0  # SIGTERM while solving
    finally:
        server.kill_all()
    with SqliteStorage(data) as storage:
        interrupted = storage.get(submitted.auction_id)
    assert interrupted.state == QUEUED and "handed back" in interrupted.reason

    server = Served(data)
    try:
        events = list(server.stub.WatchClearing(pb.WatchRequest(auction_id=submitted.auction_id), timeout=120))
        assert events[-1].phase == pb.ClearingProgress.DONE
        listed = server.stub.ListAuctions(pb.ListAuctionsRequest(), timeout=30).auctions
        assert listed[0].attempts == 1 and listed[0].state == pb.DONE  # a hand-back gives its attempt back
        assert server.stop() == 0
    finally:
        server.kill_all()


@pytest.mark.slow
def test_auction_cleared_when_the_server_is_killed_resumes_after_restart(tmp_path, slow_auction):
    data = tmp_path / "var"
    server = Served(data)
    try:
        submitted = submit_and_wait_until_solving(server, slow_auction)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL  # a crash: nothing cleaned up
    finally:
        server.kill_all()
    with SqliteStorage(data) as storage:
        assert storage.get(submitted.auction_id).state == RUNNING

    server = Served(data)
    try:
        events = list(server.stub.WatchClearing(pb.WatchRequest(auction_id=submitted.auction_id), timeout=120))
        assert events[-1].phase == pb.ClearingProgress.DONE
        stored = server.stub.ListAuctions(pb.ListAuctionsRequest(), timeout=30).auctions[0]
        assert (stored.attempts, stored.state) == (2, pb.DONE)
        assert server.stop() == 0
    finally:
        server.kill_all()


# ---- grpcurl and the README example -----------------------------------------------------------------

def test_grpcurl_lists_services_and_the_readme_example_works(served, tmp_path):
    binary = grpcurl()
    listed = subprocess.run([binary, "-plaintext", served.target, "list"], check=True, capture_output=True,
                            text=True, timeout=60).stdout.split()
    assert {"dkw.v1.Clearing", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(listed)

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## gRPC API", 1)[1].split("\n## ", 1)[0]
    commands = [line for block in re.findall(r"```(?:sh|bash)?\n(.*?)```", section, re.S)
                for line in block.splitlines() if line.startswith(("grpcurl", "(echo"))]
    assert commands, "the README's gRPC API section shows grpcurl commands"
    env = {**os.environ, "PATH": f"{Path(binary).parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = [subprocess.run(command.replace("localhost:50051", served.target), shell=True, cwd=ROOT, env=env,
                              check=True, capture_output=True, text=True, timeout=120).stdout
               for command in commands]
    cleared = [json.loads(out) for out in outputs if '"result"' in out]
    assert cleared and cleared[0]["result"]["status"] == "OPTIMAL"
    expected = clear_and_verify(load_auction_file(ROOT / "examples/auction.json")).objective_yen
    assert cleared[0]["result"]["objective_yen"] == pytest.approx(expected, rel=1e-9)
