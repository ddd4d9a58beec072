"""What an operations team watches: Prometheus metrics (`dkw serve --metrics-port`) and JSON-lines logs
(`--log-format json`), each line carrying the auction id and the request id where there is one.

Metrics (names as exported):
- `dkw_rpcs_total{method, code}`: calls by full method name and gRPC status code;
- `dkw_auctions{state}` and `dkw_queue_depth`: read from the shared store at each scrape, so every replica
  reports the same cluster-wide figures;
- `dkw_running_solves`: solves running on this replica;
- `dkw_solve_seconds` and `dkw_final_gap`: histograms of the results this replica stored;
- `dkw_lease_takeovers_total`: auctions this replica found with an expired lease (their server died) and
  re-queued or failed;
- `dkw_storage_up` (1/0) and `dkw_audit_backlog`: whether the database answers, and the audit records kept
  in memory until it does (registered by `server.health`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

#: Set for the duration of an RPC (from the caller's `x-request-id` metadata, or a fresh one).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("dkw_request_id", default=None)
#: Set once an RPC knows which stored auction it is about.
AUCTION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("dkw_auction_id", default=None)

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
        self.final_gap = Histogram("dkw_final_gap", "Relative MIP gap of stored results", buckets=GAP_BUCKETS,
                                   registry=self.registry)
        self.takeovers = Counter("dkw_lease_takeovers", "Auctions found with an expired lease and taken over",
                                 registry=self.registry)
        self.registry.register(_StoreCollector(counts))
        self._http = None

    def observe_result(self, result: dict[str, Any]) -> None:
        solver = result.get("solver") or {}
        if solver.get("total_seconds") is not None:
            self.solve_seconds.observe(solver["total_seconds"])
        if solver.get("mip_gap") is not None:
            self.final_gap.observe(solver["mip_gap"])

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Expose /metrics over HTTP; returns the port (0 picks a free one)."""
        self._http, _ = start_http_server(port, addr=host, registry=self.registry)
        return self._http.server_port

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()


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
                    count(method, code_of(context, failed)).inc()

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
                count(method, code_of(context, failed)).inc()

        return grpc.unary_stream_rpc_method_handler(stream, handler.request_deserializer, handler.response_serializer)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, and auction_id / request_id when known."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        auction_id = getattr(record, "auction_id", None) or AUCTION_ID.get()
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if auction_id:
            line["auction_id"] = auction_id
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(log_format: str) -> None:
    """`text` (the default: time, level, message) or `json` (one object per line) on stderr."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
