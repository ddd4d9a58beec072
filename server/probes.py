"""`/healthz` and `/readyz` on the metrics port (`dkw serve --metrics-port`), the conventions of
Kubernetes probes and load balancers (docs/deploy.md: Probes):

- `/healthz`: 200 while the process answers HTTP at all (liveness: restart it when this fails);
- `/readyz`: 200 when this replica can do work now: the database answers a cheap query within
  READY_TIMEOUT_S, every worker process is alive, and it is not draining; otherwise 503 with a one-line
  reason (readiness: send it no new work). A replica that is not ready keeps serving reads.

The database check is the replica's storage health monitor (dkw.server.health, the same one that drives the
gRPC health service and `dkw_storage_up`) where the server has one; `database_answers`, a query of its
own, otherwise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

#: Seconds the readiness probe waits for the database.
READY_TIMEOUT_S = 2.0


def database_answers(storage: Any, timeout: float = READY_TIMEOUT_S) -> str | None:
    """None when the store answers `SELECT 1` within `timeout`, else why not (one line). A connection of its
    own, so a probe neither waits behind the store's busy connections nor disturbs them."""
    try:
        if hasattr(storage, "url"):  # PostgreSQL
            import psycopg

            with psycopg.connect(storage.url, autocommit=True, connect_timeout=max(1, round(timeout))) as conn:
                conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
                conn.execute("SELECT 1")
        else:
            db = sqlite3.connect(storage.path, timeout=timeout)
            try:
                db.execute("SELECT 1 FROM schema_migrations LIMIT 1")
            finally:
                db.close()
    except Exception as exc:
        return f"the database does not answer: {' '.join(str(exc).split())[:200]}"
    return None


def readiness(service: Any, database: Callable[[Any], str | None] = database_answers) -> str | None:
    """None when the replica is ready for work, else the reason."""
    if service._stopping or getattr(service, "draining", False):
        return "draining: this replica is shutting down"
    # a slot whose job was cancelled has no process until its next job (dkw.server.workers): not a fault
    dead = [slot.index for slot in service.pool.slots if slot.process is not None and not slot.process.is_alive()]
    if dead:
        return f"worker process(es) {', '.join(map(str, dead))} died"
    monitor = getattr(service, "storage_health", None)
    if monitor is not None:
        return None if monitor.up else "the database does not answer (storage unavailable; see the server log)"
    return database(service.storage)


def _plain(start_response: Callable, status: str, text: str) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")])
    return [(text + "\n").encode()]


def install(routes: dict[str, Callable], service: Any) -> None:
    """Add /healthz and /readyz to the metrics port's routes (dkw.server.observability.Metrics.routes)."""

    def healthz(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        return _plain(start_response, "200 OK", "ok")

    def readyz(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        reason = readiness(service)
        if reason is None:
            return _plain(start_response, "200 OK", "ready")
        return _plain(start_response, "503 Service Unavailable", f"not ready: {reason}")

    routes["/healthz"] = healthz
    routes["/readyz"] = readyz
