"""What an operations team watches: Prometheus metrics (`dkw serve --metrics-port`) and JSON-lines logs
(`--log-format json`, server/logs.py), each line carrying the auction id and the request id where there is one.

The metrics port answers `GET /metrics` and 404 for any other path (`Metrics.routes`: a path → WSGI app
table, room for health endpoints on the same port).

Metrics (names as exported):
- `dkw_rpcs_total{method, code}`: calls by full method name and gRPC status code;
- `dkw_auctions{state}` and `dkw_queue_depth`: read from the shared store at each scrape, so every replica
  reports the same cluster-wide figures;
- `dkw_running_solves`: solves running on this replica;
- `dkw_solve_seconds` and `dkw_final_gap_ratio`: histograms of the results this replica stored;
- `dkw_lease_takeovers_total`: auctions this replica found with an expired lease (their server died) and
  re-queued or failed;
- `dkw_build_info{version, highs_version}`: 1, labelled with what runs;
- `process_*`: prometheus_client's process collector (CPU seconds, resident memory, open files, start time).
- `dkw_storage_up` (1/0) and `dkw_audit_backlog`: whether the database answers, and the audit records kept
  in memory until it does (registered by `dkw.server.health`).
"""

from __future__ import annotations

import errno
import logging
import socket
import socketserver
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily

from dkw.server.logs import AUCTION_ID, REFUSAL_LOGGED, REQUEST_ID, JsonFormatter, configure_logging  # noqa: F401 (their old home)

SOLVE_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
GAP_BUCKETS = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.5, 1.0)


class Metrics:
    """This server's metrics, in a registry of its own (several servers can live in one test process)."""

    def __init__(self, counts: Callable[[], dict[str, int]]):
        self.registry = CollectorRegistry()
        self.rpcs = Counter("dkw_rpcs", "gRPC calls by method and status code", ["method", "code"],
                            registry=self.registry)
        self.running = Gauge("dkw_running_solves", "Solves running on this server", registry=self.registry)
        self.solve_seconds = Histogram("dkw_solve_seconds", "Total clearing time of stored results (s)",
                                       buckets=SOLVE_SECONDS_BUCKETS, registry=self.registry)
        self.final_gap = Histogram("dkw_final_gap_ratio", "Relative MIP gap of stored results (a ratio)",
                                   buckets=GAP_BUCKETS, registry=self.registry)
        self.takeovers = Counter("dkw_lease_takeovers", "Auctions found with an expired lease and taken over",
                                 registry=self.registry)
        Gauge("dkw_build_info", "What this server runs (always 1)", ["version", "highs_version"],
              registry=self.registry).labels(*build_versions()).set(1)
        ProcessCollector(registry=self.registry)
        self.registry.register(_StoreCollector(counts))
        #: What the metrics port answers, by path; anything else is 404.
        self.routes: dict[str, Callable] = {"/metrics": make_wsgi_app(self.registry)}
        self._http: WSGIServer | None = None

    def observe_result(self, result: dict[str, Any]) -> None:
        solver = result.get("solver") or {}
        if solver.get("total_seconds") is not None:
            self.solve_seconds.observe(solver["total_seconds"])
        if solver.get("mip_gap") is not None:
            self.final_gap.observe(solver["mip_gap"])

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Answer `self.routes` over HTTP on `host:port`; returns the port (0 picks a free one). Raises
        OSError naming the port and the flag when it cannot listen there."""
        try:
            family = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0][0]
            server_class = type("MetricsServer", (_ThreadingWSGIServer,), {"address_family": family})
            self._http = make_server(host.strip("[]"), port, self._dispatch, server_class=server_class,
                                     handler_class=_QuietHandler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(f"--metrics-port {port}: port {port} on {host} is already in use; choose another "
                              "--metrics-port (0 picks a free one)") from None
            raise OSError(f"--metrics-port {port}: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        threading.Thread(target=self._http.serve_forever, name="dkw-metrics-http", daemon=True).start()
        return self._http.server_port

    def _dispatch(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        app = self.routes.get(environ.get("PATH_INFO") or "/")
        if app is None:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"not found; this port serves {', '.join(sorted(self.routes))}\n".encode()]
        return app(environ, start_response)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # socketserver would print a traceback
        logging.getLogger("dkw.server").warning("metrics: a request from %s failed", client_address[0], exc_info=True)


class _QuietHandler(WSGIRequestHandler):
    """No access line per scrape on stderr (it would not be JSON, and says nothing worth a line)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def build_versions() -> tuple[str, str]:
    """(dkw's version, HiGHS's) from the installed packages: the server process never imports the solver."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("dkw", "highspy"):
        try:
            found.append(version(package))
        except PackageNotFoundError:
            found.append("unknown")
    return found[0], found[1]


class _StoreCollector:
    """Auctions by state and the queue depth, as the store has them at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]]):
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self.counts()
        except Exception as exc:  # the store is unreachable: say nothing rather than fail the whole scrape
            logging.getLogger("dkw.server").warning("metrics: cannot count auctions: %s", exc,
                                                    exc_info=type(exc).__name__ != "StorageUnavailable")
            return
        by_state = GaugeMetricFamily("dkw_auctions", "Stored auctions by state", labels=["state"])
        for state, n in sorted(counts.items()):
            by_state.add_metric([state], n)
        yield by_state
        yield GaugeMetricFamily("dkw_queue_depth", "Auctions waiting for a worker (QUEUED)", value=counts.get("QUEUED", 0))


def log_invalid(method: str, context: grpc.ServicerContext) -> None:
    """The one log line of a call refused as invalid (docs/security.md): method, peer and the first words of
    the refusal, whichever part of the service refused it."""
    details = context.details() or b""
    text = details.decode(errors="replace") if isinstance(details, bytes) else str(details)
    logging.getLogger("dkw.server").warning("refused %s from %s: INVALID_ARGUMENT: %s", method, context.peer(),
                                            " ".join(text.split())[:300])


class RpcObserver(grpc.ServerInterceptor):
    """Counts every call by method and status code, and gives it a request id for the logs."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        method = handler_call_details.method.lstrip("/")
        given = dict(handler_call_details.invocation_metadata or ()).get("x-request-id")
        count = self.metrics.rpcs.labels

        def start() -> None:
            REQUEST_ID.set(given or uuid.uuid4().hex[:16])
            AUCTION_ID.set(None)
            REFUSAL_LOGGED.set(False)

        def finish(context: grpc.ServicerContext, failed: bool) -> None:
            code = code_of(context, failed)
            count(method, code).inc()
            if code == "INVALID_ARGUMENT" and not REFUSAL_LOGGED.get():
                log_invalid(method, context)

        def code_of(context: grpc.ServicerContext, failed: bool) -> str:
            code = context.code()
            if code is None and failed and not context.is_active():
                return "CANCELLED"  # the caller went away (a watcher closing its stream, a passed deadline)
            if code is None:
                return "UNKNOWN" if failed else "OK"
            return code.name if isinstance(code, grpc.StatusCode) else str(code)

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            def unary(request, context):
                start()
                failed = True
                try:
                    response = inner(request, context)
                    failed = False
                    return response
                finally:
                    finish(context, failed)

            return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer,
                                                       handler.response_serializer)
        inner_stream = handler.unary_stream

        def stream(request, context):
            start()
            failed = True
            try:
                yield from inner_stream(request, context)
                failed = False
            finally:
                finish(context, failed)

        return grpc.unary_stream_rpc_method_handler(stream, handler.request_deserializer, handler.response_serializer)
