"""The `dkw.v1.Clearing` servicer: requests → documents → the same validation and `clear` as the CLI.

No market logic lives here. A call's document is validated in the gRPC thread (so an invalid auction is
answered at once with INVALID_ARGUMENT and one field violation per problem), stored, and cleared by a
worker process (`server.workers`). Submitted auctions wait in the store as QUEUED and a dispatcher thread
starts them whenever a worker is free; a synchronous Clear takes a free worker or gets RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from clearing.document import InvalidAuction, Problem, load_auction
from clearing.rules import load_policy, validate_auction
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc
from server import security
from server import storage as st
from server.convert import request_document, result_message
from server.storage import Storage, StoredAuction
from server.workers import Job, JobHandle, Outcome, WorkerPool
from solvers.api import Progress, SolveOptions

log = logging.getLogger("dkw.server")

#: Trailing metadata is limited (8 KiB by default in many clients): field violations beyond this many
#: bytes are summed up in one last violation; Validate returns every problem in its response body.
MAX_VIOLATION_BYTES = 6000
#: Clearing runs a submitted auction may start before a restart gives up on it.
MAX_ATTEMPTS = 3
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
#: gRPC reports "no deadline" as about 1.5e11 years left; anything beyond a year is no deadline.
NO_DEADLINE_S = 365 * 24 * 3600.0

PHASES = {name.lower(): value for name, value in pb.ClearingProgress.Phase.items()}
TERMINAL_PHASE = {st.DONE: pb.ClearingProgress.DONE, st.FAILED: pb.ClearingProgress.FAILED,
                  st.CANCELLED: pb.ClearingProgress.CANCELLED}


def bad_request(context: grpc.ServicerContext, problems: list[Problem], what: str) -> None:
    """Abort with INVALID_ARGUMENT and a google.rpc.BadRequest: one field violation per problem."""
    violations, size = [], 0
    for i, p in enumerate(problems):
        size += len(p.path) + len(p.message) + 8
        if size > MAX_VIOLATION_BYTES:
            violations.append(error_details_pb2.BadRequest.FieldViolation(
                field="", description=f"... and {len(problems) - i} more problem(s); Validate lists them all"))
            break
        violations.append(error_details_pb2.BadRequest.FieldViolation(field=p.path, description=p.message))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.BadRequest(field_violations=violations))
    first = str(problems[0]) if problems else ""
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, details=[detail],
                               message=f"{what}: {len(problems)} problem(s), nothing was cleared; first: {first}")
    context.abort_with_status(rpc_status.to_status(status))


def options_from_message(message: pb.SolveOptions, context: grpc.ServicerContext,
                  default_threads: int | None) -> dict[str, Any]:
    """The request's options as a dict for the worker, checked the way the CLI checks its flags."""
    options: dict[str, Any] = {
        "time_limit_s": message.time_limit_s if message.HasField("time_limit_s") else None,
        "threads": message.threads if message.HasField("threads") else default_threads,
    }
    if message.HasField("mip_rel_gap"):
        options["mip_rel_gap"] = message.mip_rel_gap
    if message.HasField("method"):
        options["method"] = message.method
    try:
        SolveOptions(**options)
    except (ValueError, TypeError) as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"options: {exc}")
    return options


class ProgressFeed:
    """Progress of one auction being cleared, for WatchClearing: the recent events and who waits for them."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: collections.deque[tuple[int, pb.ClearingProgress]] = collections.deque(maxlen=256)
        self.seq = 0
        self.finished = False

    def publish(self, event: pb.ClearingProgress, final: bool = False) -> None:
        with self.cond:
            self.seq += 1
            self.events.append((self.seq, event))
            self.finished = self.finished or final
            self.cond.notify_all()


class ClearingService(pb_grpc.ClearingServicer):
    #: Set by `dkw serve` (server.security): signs every stored result, and the audit trail admins read.
    signer: security.Signer | None = None
    audit: security.AuditTrail | None = None
    #: Auctions one client may have queued or running at once (a client's own `max_active` overrides it).
    max_active_per_client: int = security.DEFAULT_MAX_ACTIVE_PER_CLIENT

    def __init__(self, storage: Storage, pool_size: int = 2, *, max_queued: int = 100,
                 default_threads: int | None = None, policy_path: str | None = None):
        self.storage = storage
        self.policy_path = policy_path
        self.policy = load_policy(policy_path)  # raises PolicyError before the server starts
        self.max_queued = max_queued
        self.default_threads = default_threads
        self._wake = threading.Condition()
        self.pool = WorkerPool(pool_size, on_release=self._notify_dispatcher)
        self._runs: dict[str, ProgressFeed] = {}
        self._runs_lock = threading.Lock()
        self._handles: dict[str, JobHandle] = {}
        self._stopping = False
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="dkw-dispatcher", daemon=True)

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Recover what a previous server left running, warm the workers, start dispatching the queue."""
        for a in self.storage.recover_interrupted(MAX_ATTEMPTS):
            now = self.storage.get(a.auction_id)
            log.warning("auction %s was being cleared when the server stopped: now %s (%s)",
                        a.auction_id, now.state, now.reason)
        self.pool.start()
        self._dispatcher.start()

    def stop(self) -> None:
        """Stop clearing: running submitted auctions go back to QUEUED and resume at the next start."""
        self._stopping = True
        self._notify_dispatcher()
        running = list(self._handles.values())
        self.pool.shutdown()
        for handle in running:  # their outcomes are stored before the storage closes
            handle.wait(timeout=10)
        self._dispatcher.join(timeout=5)

    def _notify_dispatcher(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _dispatch_loop(self) -> None:
        while not self._stopping:
            with self._wake:
                self._wake.wait(timeout=1.0)
            while not self._stopping:
                slot = self.pool.reserve()
                if slot is None:
                    break
                record = self.storage.claim_next_queued()
                if record is None or self._stopping:
                    if record is not None:
                        self.storage.mark(record.auction_id, st.QUEUED, "waiting for the server to start again")
                    slot.release()
                    break
                log.info("clearing submitted auction %s (attempt %d)", record.auction_id, record.attempts)
                job = Job(self.storage.document(record.auction_id), record.input_sha256, record.options,
                          policy_path=self.policy_path)
                self._start_job(slot, record.auction_id, job)

    # ---- running a job ------------------------------------------------------------------------------

    def _run(self, auction_id: str) -> ProgressFeed:
        with self._runs_lock:
            run = self._runs.get(auction_id)
            if run is None:
                run = self._runs[auction_id] = ProgressFeed()
            return run

    def _start_job(self, slot, auction_id: str, job: Job) -> JobHandle:
        run = self._run(auction_id)
        started = time.perf_counter()

        def on_progress(p: Progress) -> None:
            if p.phase == "done":  # the terminal event, with the result, comes from _record_outcome
                return
            run.publish(pb.ClearingProgress(
                auction_id=auction_id, phase=PHASES.get(p.phase, pb.ClearingProgress.PHASE_UNSPECIFIED),
                state=pb.RUNNING, elapsed_s=p.elapsed_s, incumbent_yen=p.incumbent, bound_yen=p.bound,
                gap=p.gap, message=p.message))

        def on_done(handle: JobHandle) -> None:
            self._handles.pop(auction_id, None)
            self._record_outcome(auction_id, handle.outcome, time.perf_counter() - started)

        handle = slot.start(job, on_progress, on_done)
        if not handle.done.is_set():
            self._handles[auction_id] = handle
        return handle

    def _record_outcome(self, auction_id: str, outcome: Outcome, elapsed: float) -> None:
        """Store how a job ended and tell the watchers; the one place results are written."""
        result_doc = None
        if outcome.kind == "result":
            result_doc = self.signer.sign(outcome.result) if self.signer else outcome.result
            self.storage.store_result(auction_id, result_doc)
            state, reason = st.DONE, ""
        elif outcome.kind == "cancelled" and self._stopping and self.storage.get(auction_id).kind == st.SUBMIT:
            state, reason = st.QUEUED, "the server shut down while clearing it; resumes at the next start"
            self.storage.mark(auction_id, state, reason)
        elif outcome.kind == "cancelled":
            state, reason = st.CANCELLED, outcome.message
            self.storage.mark(auction_id, state, reason)
        elif outcome.kind == "invalid":
            problems = "; ".join(str(Problem(*p)) for p in outcome.problems[:20])
            state, reason = st.FAILED, f"invalid auction: {problems}"
            self.storage.mark(auction_id, state, reason)
        else:
            state, reason = st.FAILED, outcome.message
            self.storage.mark(auction_id, state, reason)
        log.info("auction %s: %s %s", auction_id, state, reason)
        run = self._run(auction_id)
        if state == st.QUEUED:  # not finished: a watcher keeps waiting across the restart
            return
        event = pb.ClearingProgress(auction_id=auction_id, phase=TERMINAL_PHASE[state],
                                    state=pb.AuctionState.Value(state), elapsed_s=elapsed, message=reason)
        if result_doc is not None:
            event.result.CopyFrom(result_message(result_doc))
            final_figures(event, result_doc)
        run.publish(event, final=True)
        with self._runs_lock:
            self._runs.pop(auction_id, None)

    # ---- reading requests ---------------------------------------------------------------------------

    def _read_auction(self, request, context: grpc.ServicerContext) -> tuple[dict, bytes, str, Any]:
        """(document, stored bytes, sha256, Auction), or abort with INVALID_ARGUMENT listing the problems."""
        if request.WhichOneof("input") is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no auction: set `auction` or `auction_json`")
        try:
            doc, raw, sha = request_document(request)
            auction = load_auction(doc, input_sha256=sha)
        except InvalidAuction as exc:
            bad_request(context, exc.problems, "invalid auction")
        return doc, raw, sha, auction

    def _record(self, auction_id: str, context: grpc.ServicerContext) -> StoredAuction:
        record = self.storage.get(auction_id) if auction_id else None
        if record is None or not security.may_see(security.caller_of(context), record):
            context.abort(grpc.StatusCode.NOT_FOUND, f"no auction {auction_id!r}")
        return record

    def _response(self, record: StoredAuction) -> pb.ClearResponse:
        response = pb.ClearResponse(auction_id=record.auction_id, state=pb.AuctionState.Value(record.state),
                                    reason=record.reason)
        if record.state == st.DONE:
            result = self.storage.result(record.auction_id)
            if result is not None:
                response.result.CopyFrom(result_message(result))
        return response

    # ---- RPCs ---------------------------------------------------------------------------------------

    def Clear(self, request: pb.ClearRequest, context: grpc.ServicerContext) -> pb.ClearResponse:
        _, raw, sha, auction = self._read_auction(request, context)
        options = options_from_message(request.options, context, self.default_threads)
        caller = security.within_limit(self, context)
        slot = self.pool.reserve()
        if slot is None:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"all {self.pool.size} workers are busy; retry later or use SubmitAuction")
        remaining = context.time_remaining()  # a huge number, not None, when the caller set no deadline
        deadline = time.time() + remaining if remaining is not None and remaining < NO_DEADLINE_S else None
        try:
            record, _ = self.storage.create(kind=st.CLEAR, document=raw, input_sha256=sha,
                                            document_auction_id=auction.auction_id,
                                            trading_date=auction.trading_date, options=options, state=st.RUNNING,
                                            submitted_by=caller.id)
            security.stored(context)
        except BaseException:
            slot.release()
            raise
        handle = self._start_job(slot, record.auction_id, Job(raw, sha, options, deadline, self.policy_path))
        # the call ending first (cancelled, deadline passed, server stopping) stops the solve
        if not context.add_callback(lambda: handle.cancel(
                "the server shut down" if self._stopping else "the caller cancelled or its deadline passed")):
            handle.cancel("the caller cancelled or its deadline passed")
        handle.wait()
        record = self.storage.get(record.auction_id)
        if record.state == st.CANCELLED:
            context.abort(grpc.StatusCode.CANCELLED, record.reason)
        if record.state == st.FAILED:
            context.abort(grpc.StatusCode.INTERNAL, f"clearing {record.auction_id} failed: {record.reason}")
        return self._response(record)

    def SubmitAuction(self, request: pb.SubmitAuctionRequest,
                      context: grpc.ServicerContext) -> pb.SubmitAuctionResponse:
        _, raw, sha, auction = self._read_auction(request, context)
        options = options_from_message(request.options, context, self.default_threads)
        caller = security.caller_of(context)
        key = security.scoped_key(caller, request.idempotency_key) or None  # one client's keys never meet another's
        existing = self.storage.get_by_key(key) if key else None
        if existing is None:
            security.within_limit(self, context)
        if existing is None and self.storage.count(st.QUEUED) >= self.max_queued:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"{self.max_queued} auctions are already waiting to be cleared; retry later")
        record, created = self.storage.create(
            kind=st.SUBMIT, document=raw, input_sha256=sha, document_auction_id=auction.auction_id,
            trading_date=auction.trading_date, options=options, state=st.QUEUED, idempotency_key=key,
            submitted_by=caller.id)
        security.stored(context)
        if not created and record.input_sha256 != sha:
            context.abort(grpc.StatusCode.ALREADY_EXISTS,
                          f"idempotency key {key!r} was used for auction {record.auction_id} with a different "
                          f"document (sha256 {record.input_sha256})")
        if created:
            self._run(record.auction_id).publish(pb.ClearingProgress(
                auction_id=record.auction_id, phase=pb.ClearingProgress.QUEUED, state=pb.QUEUED))
            self._notify_dispatcher()
        return pb.SubmitAuctionResponse(auction_id=record.auction_id, input_sha256=record.input_sha256,
                                        state=pb.AuctionState.Value(record.state), created=created)

    def GetResult(self, request: pb.GetResultRequest, context: grpc.ServicerContext) -> pb.ClearResponse:
        return self._response(self._record(request.auction_id, context))

    def ListAuctions(self, request: pb.ListAuctionsRequest,
                     context: grpc.ServicerContext) -> pb.ListAuctionsResponse:
        size = request.page_size or DEFAULT_PAGE_SIZE
        if not 0 < size <= MAX_PAGE_SIZE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_size {size} must be in 1..{MAX_PAGE_SIZE}")
        before = None
        if request.page_token:
            if not request.page_token.isdigit():
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad page_token {request.page_token!r}")
            before = int(request.page_token)
        if request.state not in pb.AuctionState.values():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"state {request.state} is not an AuctionState")
        state = None if request.state == pb.AUCTION_STATE_UNSPECIFIED else pb.AuctionState.Name(request.state)
        caller = security.caller_of(context)
        records = self.storage.list(state=state, limit=size + 1, before_seq=before,
                                    submitted_by=caller.id if caller.owns_only() else None)
        response = pb.ListAuctionsResponse()
        for r in records[:size]:
            info = response.auctions.add(
                auction_id=r.auction_id, document_auction_id=r.document_auction_id, trading_date=r.trading_date,
                input_sha256=r.input_sha256, state=pb.AuctionState.Value(r.state), reason=r.reason,
                idempotency_key=r.idempotency_key or "", attempts=r.attempts, objective_yen=r.objective_yen,
                mip_gap=r.mip_gap, solve_seconds=r.solve_seconds or 0.0, solver=r.solver or "")
            info.received_at.FromDatetime(r.received_at)
            if r.status in pb.ClearingResult.Status.keys():
                info.status = pb.ClearingResult.Status.Value(r.status)
        if len(records) > size:
            response.next_page_token = str(records[size - 1].seq)
        return response

    def WatchClearing(self, request: pb.WatchRequest,
                      context: grpc.ServicerContext) -> Iterator[pb.ClearingProgress]:
        record = self._record(request.auction_id, context)
        if record.state in st.FINISHED:
            yield self._final_event(record)
            return
        run = self._run(record.auction_id)
        with run.cond:  # a late watcher starts from the latest snapshot, not the whole history
            last = run.events[-1][0] - 1 if run.events else 0
        if not run.events:
            yield pb.ClearingProgress(auction_id=record.auction_id, state=pb.AuctionState.Value(record.state),
                                      phase=pb.ClearingProgress.QUEUED if record.state == st.QUEUED
                                      else pb.ClearingProgress.PHASE_UNSPECIFIED, message=record.reason)
        while context.is_active():
            with run.cond:
                if run.seq == last and not run.finished:
                    run.cond.wait(timeout=1.0)
                new = [e for seq, e in run.events if seq > last]
                last = run.seq
                finished = run.finished
            yield from new
            if finished:
                return
            if not new and self.storage.get(record.auction_id).state in st.FINISHED:
                yield self._final_event(self.storage.get(record.auction_id))  # finished before we subscribed
                return

    def _final_event(self, record: StoredAuction) -> pb.ClearingProgress:
        event = pb.ClearingProgress(auction_id=record.auction_id, phase=TERMINAL_PHASE[record.state],
                                    state=pb.AuctionState.Value(record.state), message=record.reason,
                                    elapsed_s=record.solve_seconds or 0.0)
        if record.state == st.DONE:
            result = self.storage.result(record.auction_id)
            if result is not None:
                event.result.CopyFrom(result_message(result))
                final_figures(event, result)
        return event

    def ListAuditRecords(self, request: pb.ListAuditRecordsRequest,
                         context: grpc.ServicerContext) -> pb.ListAuditRecordsResponse:
        return security.list_audit_records(self.audit, request, context)

    def Validate(self, request: pb.ValidateRequest, context: grpc.ServicerContext) -> pb.ValidateResponse:
        if request.WhichOneof("input") is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no auction: set `auction` or `auction_json`")
        response = pb.ValidateResponse()
        try:
            doc, _, sha = request_document(request)
            response.input_sha256 = sha
            auction = load_auction(doc, input_sha256=sha)
        except InvalidAuction as exc:
            response.valid = False
            response.problems.extend(pb.Problem(path=p.path, message=p.message) for p in exc.problems)
            return response
        response.valid = True
        response.bids = len(auction.bids)
        response.requirements = len(auction.requirements)
        rules = validate_auction(auction, self.policy).to_document()
        response.verdicts.extend(bid_verdicts(rules["bids"]))
        response.market_rules.update(json.loads(json.dumps({k: v for k, v in rules.items() if k != "bids"})))
        return response


def final_figures(event: pb.ClearingProgress, result: dict[str, Any]) -> None:
    """The DONE event's incumbent, bound and gap: those of the result."""
    solver = result.get("solver") or {}
    event.incumbent_yen = result["objective_yen"]
    if solver.get("objective_bound") is not None:
        event.bound_yen = solver["objective_bound"]
    if solver.get("mip_gap") is not None:
        event.gap = solver["mip_gap"]


def bid_verdicts(bids: list[dict[str, Any]]) -> list[pb.BidVerdict]:
    """The rules' per-bid report (`dkw validate --json` bids) for the bids worth reporting: not ELIGIBLE,
    left out of the clearing, or flagged."""
    out = []
    for b in bids:
        if b["verdict"] == "ELIGIBLE" and b["clearing"] != "LEFT_OUT" and not b["flags"]:
            continue
        gone = b.get("left_out_because")
        out.append(pb.BidVerdict(
            bid=b["bid"], verdict=b["verdict"], reason="; ".join(b["reasons"]), term_ja=b["term_ja"],
            clearing=b["clearing"], left_out_because=f"{gone['verdict']}: {gone['reason']}" if gone else "",
            opening=b.get("opening") or "", flags=[pb.MonitoringFlag(**f) for f in b["flags"]]))
    return out
