"""Log lines of `dkw serve` and its worker processes: text (time, level, message) or, with `--log-format
json`, one JSON object per line carrying the auction id and the request id where there is one.

Under `json` every line the server writes to stderr is such an object: its own lines (`say`), Python
warnings, exceptions nobody caught (in any thread), and its workers' lines (they configure the same format,
`log_format()`). gRPC's C core is silenced by `dkw.cli` before grpc is imported.

Kept free of grpc and prometheus_client: the worker processes import it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time
from typing import Any

#: Set for the duration of an RPC (from the caller's `x-request-id` metadata, or a fresh one).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("dkw_request_id", default=None)
#: Set once an RPC knows which stored auction it is about.
AUCTION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("dkw_auction_id", default=None)
#: Set when the refusal of an RPC was logged already (dkw.server.guard: a request that does not parse), so the
#: call still gets one line, not two.
REFUSAL_LOGGED: contextvars.ContextVar[bool] = contextvars.ContextVar("dkw_refusal_logged", default=False)

LOG_FORMATS = ("text", "json")
_format = "text"


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


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """`text` (the default: time, level, message) or `json` (one object per line) on stderr, for this
    process; worker processes call it with `log_format()` of the server that started them."""
    global _format
    _format = log_format
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings.warn goes through the handler, not straight to stderr
    if log_format == "json":
        sys.excepthook = _log_uncaught
        threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback,
                                                           args.thread.name if args.thread else None)


def log_format() -> str:
    """The format this process logs in (`configure_logging`), for the worker processes it starts."""
    return _format


def _log_uncaught(kind, value, traceback, thread: str | None = None) -> None:
    if issubclass(kind, KeyboardInterrupt | SystemExit):
        return
    where = f" in thread {thread}" if thread else ""
    logging.getLogger("dkw.server").critical("uncaught %s%s: %s", kind.__name__, where, value,
                                             exc_info=(kind, value, traceback))


def say(text: str, level: int = logging.INFO, stream=None, prefix: str = "dkw serve: ") -> None:
    """A line of `dkw serve` itself (started, stopping, refused): `dkw serve: TEXT` as it always read, or
    under `json` a log object, on stderr (or `stream`: the banner goes to stdout, where scripts read it)."""
    stream = stream if stream is not None else sys.stderr
    if _format == "json":
        record = logging.LogRecord("dkw.serve", level, __file__, 0, text, None, None)
        print(JsonFormatter().format(record), file=stream, flush=True)
    else:
        print(f"{prefix}{text}", file=stream, flush=True)
