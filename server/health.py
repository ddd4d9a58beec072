"""Health that follows the database: `grpc.health.v1.Health` says NOT_SERVING for "" and dkw.v1.Clearing
while the store cannot be reached, and SERVING again when it can; `dkw_storage_up` (1/0) says the same.

A monitor thread pings the store every `every_s` seconds (every second while it is down), and the store's
retrier tells it of every operation that gave up (StorageUnavailable) and of every success, so the status
turns with the first failure rather than at the next ping. A load balancer that routes by health then
sends callers to a replica whose database answers. Graceful shutdown wins: once the health servicer is
shutting down, `set` is ignored, so nothing here turns the server back to SERVING.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from grpc_health.v1 import health_pb2
from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger("dkw.server")

#: Seconds between pings while the store answers, and while it does not.
PING_EVERY_S = 3.0
PING_WHILE_DOWN_S = 1.0


class StorageHealth:
    def __init__(self, storage: Any, servicer: Any, services: Iterable[str], registry: CollectorRegistry | None = None,
                 *, every_s: float = PING_EVERY_S, backlog: Callable[[], int] | None = None):
        self.storage = storage
        self.servicer = servicer
        self.services = tuple(services)
        self.every_s = every_s
        self.up = True
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dkw-storage-health", daemon=True)
        self.gauge = Gauge("dkw_storage_up", "1 while the database answers, 0 while it does not",
                           registry=registry) if registry is not None else None
        if self.gauge is not None:
            self.gauge.set(1)
        if backlog is not None and registry is not None:
            Gauge("dkw_audit_backlog", "Audit records kept in memory until the database answers",
                  registry=registry).set_function(backlog)
        storage.retrier.listen(self.report)

    def start(self) -> None:
        self._set(self.up)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def report(self, up: bool) -> None:
        """From the store's retrier: an operation gave up (False) or succeeded (True)."""
        if up != self.up:
            self._set(up)
            self._wake.set()

    def counts(self) -> dict[str, int]:
        """`storage.counts()` for the metrics, at once while the store is down (a scrape must not wait)."""
        if not self.up:
            from dkw.server.storage import StorageUnavailable

            raise StorageUnavailable()
        return self.storage.counts()

    def _set(self, up: bool) -> None:
        with self._lock:
            changed, self.up = up != self.up, up
            status = health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in self.services:
                self.servicer.set(name, status)
            if self.gauge is not None:
                self.gauge.set(1 if up else 0)
        if changed:
            if up:
                log.info("storage: the database answers again: SERVING")
            else:
                log.warning("storage: the database cannot be reached: NOT_SERVING until it answers")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self.every_s if self.up else PING_WHILE_DOWN_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.storage.ping()
            except Exception as exc:
                if self.up:
                    log.warning("storage: ping failed: %s", type(exc).__name__)
                self._set(False)
            else:
                self._set(True)
