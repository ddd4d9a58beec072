"""The server interceptor in front of every call: bad bytes, authentication, authorization, audit.

- Every method (health and reflection too): a request that does not parse is answered INVALID_ARGUMENT
  with one log line, instead of gRPC's INTERNAL and a traceback.
- dkw.v1.Clearing methods: the caller is authenticated (`dkw.server.auth.Authenticator`: UNAUTHENTICATED),
  its role checked against `dkw.server.auth.METHOD_ROLES` (PERMISSION_DENIED), made known to the servicer
  (`caller_of`, for ownership and per-client limits), and the call — refused or not — appended to the
  audit trail with the status code it ended with. Health and reflection stay open and are not audited.
- Storage faults: a call that meets `StorageUnavailable` anywhere (authentication, the servicer, a stream
  half sent) answers UNAVAILABLE "storage unavailable, retry", which clients retry; never UNKNOWN with
  the driver's text. While the audit trail's backlog is full, mutating calls are refused the same way
  before they do anything (reads go on, their records logged).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from dkw.server.audit import AuditTrail, new_record
from dkw.server.auth import ANONYMOUS, OPEN_CALLER, Authenticator, AuthError, Caller, allowed
from dkw.server.logs import REFUSAL_LOGGED
from dkw.server.resilience import StorageUnavailable

log = logging.getLogger("dkw.server")

#: Calls that change stored state: refused while their audit record could not be kept.
MUTATING = frozenset({"Clear", "SubmitAuction", "CancelClearing"})

_callers: weakref.WeakKeyDictionary[Any, Caller] = weakref.WeakKeyDictionary()
_callers_lock = threading.Lock()


def caller_of(context: grpc.ServicerContext) -> Caller:
    """The authenticated caller of the call behind `context` (the open caller when there is no clients file)."""
    with _callers_lock:
        return _callers.get(context, OPEN_CALLER)


class BadBytes:
    """What a request that failed to parse deserializes to, so the call can refuse it cleanly."""

    def __init__(self, error: Exception):
        self.error = f"{type(error).__name__}: {error}"[:200]


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # protobuf's DecodeError and friends: the caller's bytes, not our bug
            return BadBytes(exc)

    return parse


def _refuse_bad_bytes(request: BadBytes, context: grpc.ServicerContext, method: str) -> None:
    log.warning("refused %s from %s: the request does not parse (%s)", method, context.peer(), request.error)
    REFUSAL_LOGGED.set(True)  # the call's one line (dkw.server.observability logs the other refusals)
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {method} message: {request.error}")


class SecurityInterceptor(grpc.ServerInterceptor):
    def __init__(self, service_name: str, authenticator: Authenticator, audit: AuditTrail | None):
        self.prefix = f"/{service_name}/"
        self.authenticator = authenticator
        self.audit = audit

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        full = handler_call_details.method
        method = full.rsplit("/", 1)[-1]
        guarded = full.startswith(self.prefix)
        deserializer = _tolerant(handler.request_deserializer)
        serializer = handler.response_serializer
        if handler.unary_unary:
            behavior = self._unary(handler.unary_unary, method) if guarded else _parsed_unary(handler.unary_unary, method)
            return grpc.unary_unary_rpc_method_handler(behavior, deserializer, serializer)
        if handler.unary_stream:
            behavior = self._stream(handler.unary_stream, method) if guarded else _parsed_stream(handler.unary_stream,
                                                                                                 method)
            return grpc.unary_stream_rpc_method_handler(behavior, deserializer, serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_parsed_requests(handler.stream_unary, method), deserializer,
                                                        serializer)
        return grpc.stream_stream_rpc_method_handler(_parsed_requests(handler.stream_stream, method), deserializer,
                                                     serializer)

    # ---- dkw.v1.Clearing ----------------------------------------------------------------------------

    def _admit(self, request: Any, context: grpc.ServicerContext, method: str, who: list[str]) -> None:
        """Authenticate and authorize, or abort; `who[0]` is set to the client id as soon as it is known."""
        if isinstance(request, BadBytes):
            _refuse_bad_bytes(request, context, method)
        try:
            caller = self.authenticator.authenticate(context.invocation_metadata(), context.auth_context())
        except AuthError as exc:
            log.warning("refused %s from %s: %s", method, context.peer(), exc)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        who[0] = caller.id
        if not allowed(caller, method):
            log.warning("refused %s to client %s (role %s) from %s", method, caller.id, caller.role, context.peer())
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"client {caller.id!r} has role {caller.role!r}, which may not call {method}")
        if method in MUTATING and self.audit is not None and self.audit.full():
            log.warning("refused %s from %s: the audit trail's backlog is full", method, context.peer())
            raise StorageUnavailable("the audit trail cannot be written")
        with _callers_lock:
            _callers[context] = caller

    def _record(self, context: grpc.ServicerContext, method: str, client_id: str, auction_id: str,
                failed: bool, cancelled: bool = False) -> None:
        if self.audit is None:
            return
        code = context.code()
        if code is None or code == grpc.StatusCode.OK:
            code = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
        if cancelled or (code == grpc.StatusCode.OK and not context.is_active()):
            code = grpc.StatusCode.CANCELLED
        details = context.details() or b""
        detail = details.decode(errors="replace") if isinstance(details, bytes) else str(details)
        try:
            self.audit.append(new_record(client_id, context.peer() or "", method, auction_id, code,
                                         "" if code == grpc.StatusCode.OK else detail))
        except Exception as exc:  # the call's answer stands; the failure to record it is logged loudly
            log.error("audit trail: cannot record %s by %s: %s", method, client_id, exc)

    def _unary(self, behavior, method: str):
        def call(request, context):
            who, auction_id, failed = [ANONYMOUS], "", True
            try:
                if not isinstance(request, BadBytes):
                    auction_id = getattr(request, "auction_id", "") or ""
                try:
                    self._admit(request, context, method, who)
                    response = behavior(request, context)
                except StorageUnavailable as exc:
                    context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
                auction_id = auction_id or getattr(response, "auction_id", "") or ""
                failed = False
                return response
            finally:
                self._record(context, method, who[0], auction_id, failed)

        return call

    def _stream(self, behavior, method: str):
        def call(request, context):
            who, auction_id, failed, cancelled = [ANONYMOUS], "", True, False
            try:
                if not isinstance(request, BadBytes):
                    auction_id = getattr(request, "auction_id", "") or ""
                try:
                    self._admit(request, context, method, who)
                    yield from behavior(request, context)
                except StorageUnavailable as exc:
                    context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
                failed = False
            except GeneratorExit:
                cancelled = True
                raise
            finally:
                self._record(context, method, who[0], auction_id, failed, cancelled)

        return call


# ---- methods outside dkw.v1.Clearing: only the bad-bytes check -------------------------------------


def _parsed_unary(behavior, method: str):
    def call(request, context):
        if isinstance(request, BadBytes):
            _refuse_bad_bytes(request, context, method)
        return behavior(request, context)

    return call


def _parsed_stream(behavior, method: str):
    def call(request, context):
        if isinstance(request, BadBytes):
            _refuse_bad_bytes(request, context, method)
        yield from behavior(request, context)

    return call


def _parsed_requests(behavior, method: str):
    def call(request_iterator, context):
        def requests() -> Iterator[Any]:
            for request in request_iterator:
                if isinstance(request, BadBytes):
                    _refuse_bad_bytes(request, context, method)
                yield request

        return behavior(requests(), context)

    return call
