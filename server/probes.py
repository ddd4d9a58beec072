"""`/healthz` and `/readyz` on the metrics port (`dkw serve --metrics-port`), the conventions of
Kubernetes probes and load balancers (docs/deploy.md: Probes):

- `/healthz`: 200 while the process answers HTTP at all (liveness: restart it when this fails);
- `/readyz`: 200 when this replica can do work now: the database answers, every worker process is alive,
  and it is not draining; otherwise 503 with a one-line reason (readiness: send it no new work). A replica
  that is not ready keeps serving reads.

Whether the database answers is the verdict of the replica's storage health monitor (dkw.server.health),
the same one behind the gRPC health service and `dkw_storage_up`: a probe costs the database nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def readiness(service: Any) -> str | None:
    """None when the replica is ready for work, else the reason."""
    if service._stopping or service.draining:
        return "draining: this replica is shutting down"
    # a slot whose job was cancelled has no process until its next job (dkw.server.workers): not a fault
    dead = [slot.index for slot in service.pool.slots if slot.process is not None and not slot.process.is_alive()]
    if dead:
        return f"worker process(es) {', '.join(map(str, dead))} died"
    monitor = service.storage_health  # set by `dkw serve` once the monitor runs, just after the port opens
    if monitor is None:
        return "starting: the database is not checked yet"
    return None if monitor.up else "the database does not answer (storage unavailable; see the server log)"


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
