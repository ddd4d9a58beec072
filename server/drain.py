"""Graceful drain (docs/replicas.md): on SIGTERM a replica stops claiming, lets its running solves go on
for up to `--drain-seconds`, then hands each unfinished submitted auction back to the queue with its best
incumbent, which the replica that claims it next uses as a MIP start (dkw.clearing.handback).

A hand-back is not a failure: the attempt it used is given back (`attempts - 1`), so draining replicas
one after the other (a rolling upgrade) never exhausts an auction's MAX_ATTEMPTS. A synchronous Clear
call's auction cannot wait for another replica (its caller waits on this one): it is stopped with its
best result so far, as a CancelClearing would.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from dkw.clearing.handback import incumbent_of
from dkw.server import storage as st
from dkw.server.workers import STOP_GRACE_S, Outcome

log = logging.getLogger("dkw.server")

#: `dkw serve --drain-seconds`: how long running solves may go on after SIGTERM before they are handed back.
DEFAULT_DRAIN_S = 30.0


def hand_back(storage: Any, auction_id: str, owner: str, reason: str, incumbent: dict[str, Any] | None) -> bool:
    """Put `owner`'s RUNNING auction back in the queue, its attempt not counted, with `incumbent` stored
    (an earlier hand-back's kept when this run found none). False when `owner` no longer holds the lease.
    Retried like every storage write (dkw.server.resilience): run again after a COMMIT that went unanswered, it
    finds the lease already released and changes nothing (the attempt is not given back twice)."""

    def once(maybe_committed: bool) -> bool:
        with storage._tx() as cur:
            rows = storage._all(
                cur,
                "UPDATE auctions SET state = %s, reason = %s, attempts = CASE WHEN attempts > 0 THEN attempts - 1"
                " ELSE 0 END, lease_owner = NULL, lease_expires_at = NULL, progress_seq = progress_seq + 1,"
                " handed_back = COALESCE(%s, handed_back) WHERE auction_id = %s AND state = %s AND lease_owner = %s"
                " RETURNING seq",
                st.QUEUED, reason, json.dumps(incumbent) if incumbent is not None else None, auction_id, st.RUNNING,
                owner)
        return bool(rows) or maybe_committed

    return storage.retrier.run(once, what="hand back")


def handed_back(storage: Any, auction_id: str) -> dict[str, Any] | None:
    """The incumbent a draining replica stored for `auction_id`, if any."""

    def once(_maybe_committed: bool) -> list[tuple]:
        with storage._tx(False) as cur:
            return storage._all(cur, "SELECT handed_back FROM auctions WHERE auction_id = %s", auction_id)

    rows = storage.retrier.run(once, what="handed back")
    return json.loads(rows[0][0]) if rows and rows[0][0] is not None else None


def is_hand_back(handle: Any, kind: str) -> bool:
    """Whether a finished job's outcome goes back to the queue: a submitted auction stopped by the drain
    (not one that happened to finish on its own in the meantime)."""
    if not getattr(handle, "hand_back", False) or kind != st.SUBMIT:
        return False
    outcome: Outcome = handle.outcome
    return outcome.kind == "cancelled" or (outcome.kind == "result" and outcome.result.get("status") == "CANCELLED")


def record_hand_back(service: Any, auction_id: str, outcome: Outcome) -> None:
    """Store a drained run's incumbent and re-queue its auction (watchers keep waiting: it is not finished)."""
    incumbent = incumbent_of(outcome.result) if outcome.kind == "result" else None
    reason = (f"handed back by server {service.owner} (drained)"
              + (f" with an incumbent of {incumbent['objective_yen']:,.0f} yen" if incumbent else " before any incumbent"))
    with service._runs_lock:
        service._runs.pop(auction_id, None)
    if hand_back(service.storage, auction_id, service.owner, reason, incumbent):
        log.info("auction %s: %s", auction_id, reason, extra={"auction_id": auction_id})
    else:
        log.warning("auction %s: not handed back: this server no longer holds its lease", auction_id,
                    extra={"auction_id": auction_id})


def drain(service: Any, seconds: float) -> int:
    """Stop claiming, wait up to `seconds` for the running solves, then stop the rest (handing submitted
    ones back) and wait for their outcomes to be stored. Returns how many were stopped."""
    service.draining = True
    deadline = time.monotonic() + seconds
    while service._handles and time.monotonic() < deadline:
        time.sleep(0.1)
    left = list(service._handles.items())
    for auction_id, handle in left:
        handle.hand_back = True
        handle.stop(f"server {service.owner} drained before it finished")
        log.info("auction %s: drain: stopping its solve to hand it back", auction_id, extra={"auction_id": auction_id})
    for _, handle in left:
        handle.wait(timeout=STOP_GRACE_S + 5)
    return len(left)
