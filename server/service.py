"""The `dkw.v1.Clearing` servicer: requests → documents → the same validation and `clear` as the CLI.

No market logic lives here. A call's document is validated in the gRPC thread (so an invalid auction is
answered at once with INVALID_ARGUMENT and one field violation per problem), stored, and cleared by a
worker process (`dkw.server.workers`). Submitted auctions wait in the store as QUEUED and a dispatcher thread
claims them whenever a worker is free; a synchronous Clear takes a free worker or gets RESOURCE_EXHAUSTED.

Replicas (`docs/replicas.md`): any number of servers may share one store. A claimed auction is leased to
the server clearing it, which renews the lease every third of `lease_s` and, on renewal, learns of a
cancel asked on another replica. A server whose leases expire is taken to be dead: the next dispatcher to
look re-queues its auctions (attempts counted) and another server resumes them. Results are written only
by the lease holder, so nothing is cleared twice. Progress is kept in the store for watchers elsewhere.
The database going away stops no solve: the dispatcher backs off, a failed renewal is not a lost lease,
and an outcome is kept until it can be written (`dkw.server.outcomes`, docs/replicas.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc

from dkw.clearing.document import InvalidAuction, Problem, load_auction
from dkw.clearing.rules import load_policy
from dkw.server import security
from dkw.server import storage as st
from dkw.server.convert import auction_info, put_result, request_document, validation_response
from dkw.server.drain import handed_back, is_hand_back, record_hand_back
from dkw.server.limits import Limits, options_from_message
from dkw.server.observability import AUCTION_ID, Metrics
from dkw.server.outcomes import OutcomeWriter
from dkw.server.progress import PHASES, TERMINAL_PHASE, ProgressFeed, final_figures, follow
from dkw.server.refusals import bad_request
from dkw.server.storage import Storage, StorageUnavailable, StoredAuction
from dkw.server.workers import Job, JobHandle, Outcome, WorkerPool
from dkw.solvers.api import Progress, SolveOptions
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc

log = logging.getLogger("dkw.server")

#: Clearing runs a submitted auction may start before a restart gives up on it.
MAX_ATTEMPTS = 3
#: Submitted auctions that may wait in the store (all replicas together) before SubmitAuction refuses.
DEFAULT_MAX_QUEUED = 10_000
#: Seconds a lease lasts unless renewed: a dead server's auctions resume elsewhere within about this long.
DEFAULT_LEASE_S = 15.0
#: Seconds between looks at the shared store for work queued on another replica (watchers: dkw.server.progress).
POLL_S = 0.25
#: Seconds between looks for expired leases (a dead replica's auctions), on a shared store.
REAP_EVERY_S = 1.0
#: Progress snapshots stored for watchers on other replicas: at most one per this many seconds.
PROGRESS_STORE_S = 0.5
#: CancelClearing waits at most this long for the auction to end before answering its state.
CANCEL_WAIT_S = 30.0
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
#: gRPC reports "no deadline" as about 1.5e11 years left; anything beyond a year is no deadline.
NO_DEADLINE_S = 365 * 24 * 3600.0


class ClearingService(pb_grpc.ClearingServicer):
    #: Set by `dkw serve` (dkw.server.security): signs every stored result, and the audit trail admins read.
    signer: security.Signer | None = None
    audit: security.AuditTrail | None = None
    #: Auctions one client may have queued or running at once (a client's own `max_active` overrides it).
    max_active_per_client: int = security.DEFAULT_MAX_ACTIVE_PER_CLIENT
    #: The database's health monitor (dkw.server.health), set by `dkw serve`; the readiness probe reads it.
    storage_health: Any = None
    #: Bounds on a request's options (`dkw serve --max-time-limit` ...), set by `dkw serve`.
    limits: Limits = Limits()

    def __init__(self, storage: Storage, pool_size: int = 2, *, max_queued: int = DEFAULT_MAX_QUEUED,
                 default_threads: int | None = None, policy_path: str | None = None,
                 lease_s: float = DEFAULT_LEASE_S, metrics: Metrics | None = None,
                 memory_limit_mb: float | None = None):
        try:  # refused when the server starts, not at each request
            SolveOptions(memory_limit_mb=memory_limit_mb)
        except ValueError as exc:
            raise ValueError(f"--memory-limit: {exc}") from None
        self.storage = storage
        self.memory_limit_mb = memory_limit_mb
        self.policy_path = policy_path
        self.policy = load_policy(policy_path)  # raises PolicyError before the server starts
        self.max_queued = max_queued
        self.default_threads = default_threads
        if lease_s <= 0:
            raise ValueError(f"the lease must last some time, got {lease_s} s")
        self.lease_s = lease_s
        #: This server's name in leases and logs: host, pid and a random tag (pids repeat after restarts).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.metrics = metrics or Metrics(storage.counts)
        self._wake = threading.Condition()
        self.pool = WorkerPool(pool_size, on_release=self._notify_dispatcher)
        self._runs: dict[str, ProgressFeed] = {}
        self._runs_lock = threading.Lock()
        self._handles: dict[str, JobHandle] = {}
        self._handles_lock = threading.Lock()  # a job that ends at once must not be registered after its end
        self.outcomes = OutcomeWriter(storage, self.owner)
        self._stopping = False
        self.draining = False  # SIGTERM: claim nothing more (dkw.server.drain)
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="dkw-dispatcher", daemon=True)
        self._renewer = threading.Thread(target=self._renew_loop, name="dkw-lease-renewer", daemon=True)

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Recover what a dead server left running, warm the workers, start dispatching the queue. A store
        one server owns (SQLite) recovers everything left RUNNING; a shared one only expired leases."""
        self._reap(everything=self.storage.exclusive)
        self.pool.start()
        self._dispatcher.start()
        self._renewer.start()

    def _reap(self, everything: bool = False) -> None:
        for r in self.storage.reap_expired(MAX_ATTEMPTS, everything=everything, keep=self._runs.copy):  # still ours
            self.metrics.takeovers.inc()
            log.warning("auction %s: its lease (server %s, attempt %d) expired: now %s (%s)", r.auction.auction_id,
                        r.auction.lease_owner, r.auction.attempts, r.state, r.reason,
                        extra={"auction_id": r.auction.auction_id})

    def stop(self) -> None:
        """Stop clearing: running submitted auctions go back to QUEUED and resume at the next start."""
        self._stopping = True
        self._notify_dispatcher()
        running = list(self._handles.values())
        self.pool.shutdown()
        for handle in running:  # their outcomes are stored before the storage closes
            handle.wait(timeout=10)
        self.outcomes.close(timeout=5)
        self._dispatcher.join(timeout=5)
        self._renewer.join(timeout=5)

    def _notify_dispatcher(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _dispatch_loop(self) -> None:
        """Claim queued auctions while a worker is free; look again when woken (a local submit, a worker
        released) or every POLL_S (work submitted to another replica; leases that expired)."""
        last_reap, backoff = time.monotonic(), 0.0
        while not self._stopping:
            with self._wake:  # a store only this server writes to has nothing new unless it is woken
                self._wake.wait(timeout=backoff or (1.0 if self.storage.exclusive else POLL_S))
            try:
                if not self.storage.exclusive and time.monotonic() - last_reap >= REAP_EVERY_S:
                    last_reap = time.monotonic()
                    self._reap()
                self._claim_while_free()
                backoff = 0.0
            except StorageUnavailable:  # no claims until the database answers; look less often meanwhile
                backoff = min(max(2 * backoff, 0.5), 5.0)
            except Exception:
                log.exception("dispatcher: cannot read the queue")

    def _claim_while_free(self) -> None:
        while not self._stopping and not self.draining:
            slot = self.pool.reserve()
            if slot is None:
                return
            try:  # a claim left unstarted by a storage fault is re-queued by a reaper when its lease expires
                record = self.storage.claim_next(self.owner, self.lease_s)
                if record is not None and self._stopping:
                    self.storage.finish(record.auction_id, self.owner, st.QUEUED, "waiting for a server to start again")
                if record is None or self._stopping:
                    slot.release()
                    return
                start = handed_back(self.storage, record.auction_id)  # a draining replica's incumbent, if any
                job = Job(self.storage.document(record.auction_id), record.input_sha256, record.options,
                          policy_path=self.policy_path, start=start)
            except BaseException:
                slot.release()
                raise
            log.info("clearing submitted auction %s (attempt %d)", record.auction_id, record.attempts,
                     extra={"auction_id": record.auction_id})
            if start is not None:
                log.info("auction %s: starting from the incumbent handed back (%s yen)", record.auction_id,
                         f"{start['objective_yen']:,.0f}", extra={"auction_id": record.auction_id})
            self._start_job(slot, record, job)

    def _renew_loop(self) -> None:
        """Renew the lease of every auction solving here; stop those cancelled elsewhere, and those whose
        lease was lost (this server was too slow to renew and another one took the auction over)."""
        while not self._stopping:
            time.sleep(self.lease_s / 3)
            for auction_id, handle in list(self._handles.items()):
                try:
                    renewal = self.storage.renew(auction_id, self.owner, self.lease_s)
                except Exception as exc:  # not renewed is not lost: the solve goes on, its outcome kept if still ours
                    log.warning("auction %s: lease not renewed now (%s); the solve goes on", auction_id, exc,
                                exc_info=not isinstance(exc, StorageUnavailable), extra={"auction_id": auction_id})
                    continue
                if not renewal.held:
                    log.warning("auction %s: lease lost; another server took it over", auction_id,
                                extra={"auction_id": auction_id})
                    handle.cancel("this server lost its lease on the auction")
                elif renewal.cancel_reason is not None:
                    handle.stop(renewal.cancel_reason)

    # ---- running a job ------------------------------------------------------------------------------

    def _local_run(self, auction_id: str) -> ProgressFeed | None:
        with self._runs_lock:
            return self._runs.get(auction_id)

    def _start_job(self, slot, record: StoredAuction, job: Job) -> JobHandle:
        auction_id = record.auction_id
        with self._runs_lock:
            run = self._runs[auction_id] = ProgressFeed()
        started = time.perf_counter()
        last_stored = [0.0, ""]  # when and which phase was last stored for other replicas' watchers
        run.publish(pb.ClearingProgress(
            auction_id=auction_id, phase=pb.ClearingProgress.QUEUED, state=pb.QUEUED,
            message=f"claimed by server {self.owner}, attempt {record.attempts}"))

        def on_progress(p: Progress) -> None:
            if p.phase == "done":  # the terminal event, with the result, comes from _record_outcome
                return
            run.publish(pb.ClearingProgress(
                auction_id=auction_id, phase=PHASES.get(p.phase, pb.ClearingProgress.PHASE_UNSPECIFIED),
                state=pb.RUNNING, elapsed_s=p.elapsed_s, incumbent_yen=p.incumbent, bound_yen=p.bound,
                gap=p.gap, message=p.message))
            now = time.monotonic()
            if p.phase != last_stored[1] or now - last_stored[0] >= PROGRESS_STORE_S:
                last_stored[:] = now, p.phase
                try:
                    self.storage.store_progress(auction_id, self.owner, {
                        "phase": p.phase, "elapsed_s": p.elapsed_s, "incumbent_yen": p.incumbent,
                        "bound_yen": p.bound, "gap": p.gap, "message": p.message})
                except Exception:
                    log.exception("cannot store progress", extra={"auction_id": auction_id})

        ended = threading.Event()

        def on_done(handle: JobHandle) -> None:
            with self._handles_lock:
                ended.set()
                self._handles.pop(auction_id, None)
            self.metrics.running.dec()
            self._record_outcome(auction_id, record.kind, handle, time.perf_counter() - started)

        self.metrics.running.inc()
        handle = slot.start(job, on_progress, on_done)
        # a job can end before start() returns: registered after its on_done, it would stay "running" for
        # good (the renewer then says "lease lost" every few seconds and a drain waits its whole time)
        with self._handles_lock:
            if not ended.is_set() and not handle.done.is_set():
                self._handles[auction_id] = handle
        return handle

    def _record_outcome(self, auction_id: str, kind: str, handle: JobHandle, elapsed: float) -> None:
        """Store how a job ended and tell the watchers; the one place results are written, and only while
        this server holds the auction's lease."""
        outcome: Outcome = handle.outcome
        if is_hand_back(handle, kind):
            return record_hand_back(self, auction_id, outcome)
        result_doc = None
        if outcome.kind == "result":
            result_doc = self.signer.sign(outcome.result) if self.signer else outcome.result
            if result_doc.get("status") == "CANCELLED":  # stopped by CancelClearing: the best result so far
                state, reason = st.CANCELLED, handle.cancel_reason or "cancelled"
            else:
                state, reason = st.DONE, ""
        elif outcome.kind == "cancelled" and self._stopping and kind == st.SUBMIT:
            state, reason = st.QUEUED, "the server shut down while clearing it; resumes at the next start"
        elif outcome.kind == "cancelled":
            state, reason = st.CANCELLED, handle.cancel_reason or outcome.message
        elif outcome.kind == "invalid":
            problems = "; ".join(str(Problem(*p)) for p in outcome.problems[:20])
            state, reason = st.FAILED, f"invalid auction: {problems}"
        else:
            state, reason = st.FAILED, outcome.message
        self.outcomes.write(auction_id, state, reason, result_doc, for_caller=kind == st.CLEAR,
                            then=lambda held: self._stored(auction_id, state, reason, result_doc, elapsed, held))

    def _stored(self, auction_id: str, state: str, reason: str, result_doc: dict | None, elapsed: float, held: bool):
        """The outcome is stored (`held`), or dropped as the lease was lost: tell the watchers here."""
        with self._runs_lock:
            run = self._runs.pop(auction_id, None)
        if not held:
            log.warning("auction %s: %s not stored: this server no longer holds its lease", auction_id, state,
                        extra={"auction_id": auction_id})
            return  # the server that took it over writes the outcome; watchers here read it from the store
        if result_doc is not None:
            self.metrics.observe_result(result_doc)
        log.info("auction %s: %s %s", auction_id, state, reason, extra={"auction_id": auction_id})
        if run is None or state == st.QUEUED:  # not finished: a watcher keeps waiting across the restart
            return
        event = pb.ClearingProgress(auction_id=auction_id, phase=TERMINAL_PHASE[state],
                                    state=pb.AuctionState.Value(state), elapsed_s=elapsed, message=reason)
        if result_doc is not None:
            put_result(event, result_doc)
            final_figures(event, result_doc)
        run.publish(event, final=True)

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
        if record.state in (st.DONE, st.CANCELLED):  # a cancelled auction may have its best result so far
            result = self.storage.result(record.auction_id)
            if result is not None:
                put_result(response, result)
        return response

    # ---- RPCs ---------------------------------------------------------------------------------------

    def Clear(self, request: pb.ClearRequest, context: grpc.ServicerContext) -> pb.ClearResponse:
        _, raw, sha, auction = self._read_auction(request, context)
        options = options_from_message(request.options, context, self.default_threads, self.memory_limit_mb,
                                       self.limits)
        caller = security.within_limit(self, context)
        if self.draining:
            context.abort(grpc.StatusCode.UNAVAILABLE, "this replica is draining (shutting down); retry on another")
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
                                            owner=self.owner, lease_s=self.lease_s, submitted_by=caller.id)
            security.stored(context)
        except BaseException:
            slot.release()
            raise
        AUCTION_ID.set(record.auction_id)
        handle = self._start_job(slot, record, Job(raw, sha, options, deadline, self.policy_path))
        # the call ending first (cancelled, deadline passed, server stopping) stops the solve
        if not context.add_callback(lambda: handle.cancel(
                "the server shut down" if self._stopping else "the caller cancelled or its deadline passed")):
            handle.cancel("the caller cancelled or its deadline passed")
        handle.wait()
        written = self.outcomes.wait(record.auction_id, None if deadline is None else
                                     time.monotonic() + max(0.0, deadline - time.time() - 1.0), context.is_active)
        if written is None or not written.held:  # not stored by the deadline, or the lease lost while away
            raise StorageUnavailable()
        record = self.storage.get(record.auction_id)
        if record.state == st.CANCELLED:
            context.abort(grpc.StatusCode.CANCELLED, record.reason)
        if record.state == st.FAILED:
            context.abort(grpc.StatusCode.INTERNAL, f"clearing {record.auction_id} failed: {record.reason}")
        return self._response(record)

    def SubmitAuction(self, request: pb.SubmitAuctionRequest,
                      context: grpc.ServicerContext) -> pb.SubmitAuctionResponse:
        _, raw, sha, auction = self._read_auction(request, context)
        options = options_from_message(request.options, context, self.default_threads, self.memory_limit_mb,
                                       self.limits)
        caller = security.caller_of(context)
        key = security.scoped_key(caller, request.idempotency_key) or None  # one client's keys never meet another's
        existing = self.storage.get_by_key(key) if key else None
        if existing is None:
            security.within_limit(self, context)
        try:
            record, created = self.storage.create(
                kind=st.SUBMIT, document=raw, input_sha256=sha, document_auction_id=auction.auction_id,
                trading_date=auction.trading_date, options=options, state=st.QUEUED, idempotency_key=key,
                max_queued=self.max_queued, submitted_by=caller.id)
        except st.QueueFull as full:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"{full.queued} auctions are already waiting to be cleared (the queue length of "
                          "`dkw serve --max-queued`); retry later")
        security.stored(context)
        AUCTION_ID.set(record.auction_id)
        if not created and record.input_sha256 != sha:
            context.abort(grpc.StatusCode.ALREADY_EXISTS,
                          f"idempotency key {key!r} was used for auction {record.auction_id} with a different "
                          f"document (sha256 {record.input_sha256})")
        if created:
            log.info("stored submitted auction %s", record.auction_id)
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
        response = pb.ListAuctionsResponse(auctions=[auction_info(r) for r in records[:size]])
        if len(records) > size:
            response.next_page_token = str(records[size - 1].seq)
        return response

    def WatchClearing(self, request: pb.WatchRequest,
                      context: grpc.ServicerContext) -> Iterator[pb.ClearingProgress]:
        record = self._record(request.auction_id, context)
        AUCTION_ID.set(record.auction_id)
        yield from follow(self, record, context)

    def CancelClearing(self, request: pb.CancelRequest, context: grpc.ServicerContext) -> pb.ClearResponse:
        reason = request.reason or "cancelled by a CancelClearing call"
        self._record(request.auction_id, context)  # NOT_FOUND for an unknown id, or another client's auction
        record = self.storage.request_cancel(request.auction_id, reason)
        AUCTION_ID.set(record.auction_id)
        log.info("cancel asked for auction %s (%s)", record.auction_id, record.state)
        handle = self._handles.get(record.auction_id)
        if handle is not None:  # solving here: stop it now rather than at the next lease renewal
            handle.stop(record.cancel_requested or reason)
        remaining = context.time_remaining()
        deadline = time.monotonic() + min(CANCEL_WAIT_S, remaining if remaining is not None else CANCEL_WAIT_S)
        while record.state not in st.FINISHED and time.monotonic() < deadline and context.is_active():
            time.sleep(POLL_S)
            record = self.storage.get(record.auction_id)
        return self._response(record)

    def ListAuditRecords(self, request: pb.ListAuditRecordsRequest,
                         context: grpc.ServicerContext) -> pb.ListAuditRecordsResponse:
        return security.list_audit_records(self.audit, request, context)

    def Validate(self, request: pb.ValidateRequest, context: grpc.ServicerContext) -> pb.ValidateResponse:
        if request.WhichOneof("input") is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no auction: set `auction` or `auction_json`")
        return validation_response(request, self.policy)
