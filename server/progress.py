"""What WatchClearing callers follow of a run: a run on this server's events as they happen (ProgressFeed),
a run on another replica as the snapshots it stores (`follow`), and the outcome as the last event."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc

from dkw.server import storage as st
from dkw.server.convert import put_result
from dkw.server.storage import StoredAuction
from dkw.v1 import clearing_pb2 as pb

#: Seconds between looks at the shared store for a run on another replica.
POLL_S = 0.25
PHASES = {name.lower(): value for name, value in pb.ClearingProgress.Phase.items()}
TERMINAL_PHASE = {st.DONE: pb.ClearingProgress.DONE, st.FAILED: pb.ClearingProgress.FAILED,
                  st.CANCELLED: pb.ClearingProgress.CANCELLED}


class ProgressFeed:
    """Progress of one auction being cleared on this server, for WatchClearing: its events (from the start
    of the run, throttled by the solver to a few a second) and who waits for them."""

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


def follow(service: Any, record: StoredAuction, context: grpc.ServicerContext) -> Iterator[pb.ClearingProgress]:
    """Events of a run on this server come as they happen (from the start of the run); of a run on
    another replica, as the snapshots it stores (polled every POLL_S); the last one is the outcome."""
    auction_id = record.auction_id
    if record.state in st.FINISHED:
        yield final_event(service.storage, record)
        return
    run, last = service._local_run(auction_id), 0
    if run is None:
        yield stored_event(record)
    seen = record.progress_seq
    while context.is_active():
        local = service._local_run(auction_id)
        if local is not run:  # a run started here (or ended): follow it from its start
            run, last = local, 0
        new, finished = [], False
        if run is not None:
            with run.cond:
                if run.seq == last and not run.finished:
                    run.cond.wait(timeout=POLL_S)
                new = [e for seq, e in run.events if seq > last]
                last, finished = run.seq, run.finished
            yield from new
            if finished:
                return
        else:
            time.sleep(POLL_S)
        if new:
            continue
        seq, snapshot = service.storage.progress(auction_id)
        if seq == seen:
            continue
        seen = seq
        record = service.storage.get(auction_id)
        if record.state in st.FINISHED:  # finished here before we subscribed, or on another replica
            yield final_event(service.storage, record)
            return
        if service._local_run(auction_id) is None:
            yield stored_event(record, snapshot)


def stored_event(record: StoredAuction, snapshot: dict[str, Any] | None = None) -> pb.ClearingProgress:
    """An event from the store: QUEUED, or the latest snapshot another replica stored while solving."""
    if record.state == st.QUEUED or snapshot is None:
        return pb.ClearingProgress(auction_id=record.auction_id, state=pb.AuctionState.Value(record.state),
                                   phase=pb.ClearingProgress.QUEUED if record.state == st.QUEUED
                                   else pb.ClearingProgress.PHASE_UNSPECIFIED, message=record.reason)
    return pb.ClearingProgress(
        auction_id=record.auction_id, phase=PHASES.get(snapshot["phase"], pb.ClearingProgress.PHASE_UNSPECIFIED),
        state=pb.RUNNING, elapsed_s=snapshot["elapsed_s"], incumbent_yen=snapshot["incumbent_yen"],
        bound_yen=snapshot["bound_yen"], gap=snapshot["gap"], message=snapshot["message"] or "")


def final_event(storage: Any, record: StoredAuction) -> pb.ClearingProgress:
    event = pb.ClearingProgress(auction_id=record.auction_id, phase=TERMINAL_PHASE[record.state],
                                state=pb.AuctionState.Value(record.state), message=record.reason,
                                elapsed_s=record.solve_seconds or 0.0)
    if record.state in (st.DONE, st.CANCELLED):
        result = storage.result(record.auction_id)
        if result is not None:
            put_result(event, result)
            final_figures(event, result)
    return event


def final_figures(event: pb.ClearingProgress, result: dict[str, Any]) -> None:
    """The DONE event's incumbent, bound and gap: those of the result."""
    solver = result.get("solver") or {}
    event.incumbent_yen = result["objective_yen"]
    if solver.get("objective_bound") is not None:
        event.bound_yen = solver["objective_bound"]
    if solver.get("mip_gap") is not None:
        event.gap = solver["mip_gap"]
