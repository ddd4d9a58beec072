"""How each run ended, written to the store even when the database is away at that moment.

A solve may take minutes; the database may be away for the few seconds when it ends. Losing the result
then would waste the solve, and writing it twice would clear the auction twice. So the outcome is written
with `storage.finish` at once, and if that meets StorageUnavailable it stays in memory and is written
again in the background, oldest first, until the database answers. `finish` only writes while this
server still holds the auction's lease: if the lease expired meanwhile and another server took the
auction over (re-queued it, or failed a Clear call's), `finish` answers False and the outcome is dropped,
exactly as when a slow server loses its lease. Until then the server's own reaper leaves the auction
alone (its run stays in the service's `_runs` until `then` is called), so only another replica can take it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dkw.server.resilience import StorageUnavailable

log = logging.getLogger("dkw.server")

#: Seconds between attempts to write the outcomes kept while the database is away.
RETRY_EVERY_S = 0.5


@dataclass
class PendingOutcome:
    """One run's end as this server saw it; `held` is known once the store answered (`done` set)."""

    auction_id: str
    state: str
    reason: str
    result: dict[str, Any] | None
    then: Callable[[bool], None]  # called once with `held`, from whichever thread wrote it
    done: threading.Event = field(default_factory=threading.Event)
    held: bool | None = None


class OutcomeWriter:
    """Writes outcomes with `storage.finish(auction_id, owner, …)`, keeping and re-trying those the
    database could not take; `wait` lets a Clear call wait for its own."""

    def __init__(self, storage: Any, owner: str):
        self.storage = storage
        self.owner = owner
        self._lock = threading.Condition()
        self._kept: list[PendingOutcome] = []  # not written yet, oldest first
        self._by_id: dict[str, PendingOutcome] = {}  # for Clear calls: taken by `wait`
        self._thread: threading.Thread | None = None
        self._closed = False

    def write(self, auction_id: str, state: str, reason: str, result: dict[str, Any] | None,
              then: Callable[[bool], None], *, for_caller: bool = False) -> PendingOutcome:
        """Write now, or keep and retry in the background; `then(held)` runs once it is written."""
        pending = PendingOutcome(auction_id, state, reason, result, then)
        if for_caller:
            with self._lock:
                self._by_id[auction_id] = pending
        try:
            self._finish(pending)
        except StorageUnavailable:
            log.warning("auction %s: %s cannot be stored now (storage unavailable): kept in memory and retried",
                        auction_id, state, extra={"auction_id": auction_id})
            with self._lock:
                self._kept.append(pending)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._retry_loop, name="dkw-outcome-writer", daemon=True)
                    self._thread.start()
                self._lock.notify_all()
        return pending

    def _finish(self, pending: PendingOutcome) -> None:
        """Store it; once the store has answered it is no longer kept (`pending()` stops naming it before
        `then` runs, so whoever `then` tells sees a consistent writer), then `then`, then `done`."""
        held = self.storage.finish(pending.auction_id, self.owner, pending.state, pending.reason, pending.result)
        pending.held = held
        self._forget(pending)
        try:
            pending.then(held)
        finally:
            pending.done.set()  # `wait` watches the event; the condition's waiters heard `_forget`

    def _forget(self, pending: PendingOutcome) -> None:
        with self._lock:
            self._kept = [kept for kept in self._kept if kept is not pending]
            self._lock.notify_all()

    def _retry_loop(self) -> None:
        while True:
            with self._lock:
                while not self._kept and not self._closed:
                    self._lock.wait()
                if not self._kept:
                    return
                pending = self._kept[0]
            try:
                self._finish(pending)
                log.info("auction %s: %s written after the database came back (%s)", pending.auction_id,
                         pending.state, "stored" if pending.held else "dropped: the lease was lost meanwhile",
                         extra={"auction_id": pending.auction_id})
            except StorageUnavailable:
                time.sleep(RETRY_EVERY_S)
                continue
            except Exception:  # not a storage fault: a bug; logged, and the outcome is not retried forever
                log.exception("auction %s: storing the outcome failed", pending.auction_id)
                self._forget(pending)
                pending.done.set()

    def pending(self) -> set[str]:
        """Auctions whose outcome waits for the database."""
        with self._lock:
            return {p.auction_id for p in self._kept}

    def wait(self, auction_id: str, until: float | None, active: Callable[[], bool]) -> PendingOutcome | None:
        """The Clear call's outcome once written (None: not written by `until`, a time.monotonic(), or the
        call went away); forgotten afterwards either way."""
        with self._lock:
            pending = self._by_id.get(auction_id)
        try:
            while pending is not None and not pending.done.wait(0.25):
                if (until is not None and time.monotonic() >= until) or not active():
                    return None
            return pending
        finally:
            with self._lock:
                self._by_id.pop(auction_id, None)

    def close(self, timeout: float) -> None:
        """Give the kept outcomes `timeout` s to be written; the rest are logged as not stored (their leases
        expire and another server resumes the auctions)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._kept and time.monotonic() < deadline:
                self._lock.wait(timeout=0.1)
            for pending in self._kept:
                log.error("auction %s: %s NOT stored: the database is still away at shutdown; another server "
                          "resumes it when its lease expires", pending.auction_id, pending.state,
                          extra={"auction_id": pending.auction_id})
            self._kept.clear()
            self._closed = True
            self._lock.notify_all()
