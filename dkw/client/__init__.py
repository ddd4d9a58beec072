"""`dkw.client`: the Python API of a running `dkw serve` (docs/api.md, "The Python client").

    from dkw.client import Client

    with Client("dkw-a.tso.example:7443,dkw-b.tso.example:7443", tls_ca="ca.pem", token=token) as dkw:
        submitted = dkw.submit(Path("auction.json"), key="2026-10-01-primary")
        for progress in dkw.watch(submitted.auction_id):
            print(progress.phase, progress.incumbent_yen, progress.gap)
        result = dkw.result(submitted.auction_id, public_key="result-signing.pub.pem")

Why it is built the way it is:
- TLS by default: plaintext only to a loopback address or with `insecure=True`; without `tls_ca` the
  server's certificate must come from a CA gRPC trusts by default.
- Deadlines by default: `timeout` for each call, `solve_timeout` for `clear` and `watch`.
- Failover is gRPC's own: several replicas (`a:7443,b:7443`, or one DNS name with several addresses) make
  one channel with `round_robin` over the replicas whose health service says SERVING (client-side health
  checking), and the retry policy of dkw.server.client.SERVICE_CONFIG, so a call refused with UNAVAILABLE, or
  cut by a replica going away, is retried on another replica. (`pick_first` would retry on the replica
  that refused as long as its connection stands.) A `watch` stream cut by a replica that went away is
  resumed (gRPC never retries a stream once it has delivered a message).
- `submit` always sends an idempotency key (a fresh one unless given), so a retry on another replica
  returns the auction the first attempt stored instead of storing it twice.
- Errors are `ClientError` subclasses carrying the gRPC code, the `dkw` exit code and the BadRequest field
  violations.

Only grpc, protobuf and the generated messages are loaded: no solver.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from dkw.client.answers import CLEARED, FINISHED, AuctionInfo, Progress, Result, Submitted, Validation
from dkw.client.errors import (
    Busy,
    ClientError,
    ConfigError,
    Denied,
    Failed,
    InvalidRequest,
    NotFound,
    Unreachable,
    error_of,
)
from dkw.client.targets import Target, parse_target
from dkw.server.client import SERVICE_CONFIG
from dkw.server.connection import Endpoint, wait_until_ready
from dkw.server.connection import Unreachable as _NotConnected
from dkw.server.tls import TlsFileError, open_channel
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc

__all__ = ["CLEARED", "FINISHED", "AuctionInfo", "Busy", "Client", "ClientError", "ConfigError", "Denied", "Failed",
           "InvalidRequest", "NotFound", "Progress", "Result", "Submitted", "Target", "Unreachable", "Validation",
           "parse_target"]

#: Deadline of one call (submit, status, result, list's pages, cancel, audit's pages, validate).
DEFAULT_TIMEOUT_S = 30.0
#: Deadline of `clear` and `watch`: longer than any clearing a server allows (its --max-time-limit,
#: 3600 s by default) plus time in the queue. A `Clear` deadline also bounds its solve on the server.
DEFAULT_SOLVE_TIMEOUT_S = 7200.0
#: How often `watch` reopens a stream cut by a replica going away.
WATCH_RESUMES = 5
#: Load-balancing policies the client accepts (gRPC's names); the first is the default.
BALANCING = ("round_robin", "pick_first")


def service_config(balancing: str = BALANCING[0]) -> dict[str, Any]:
    """The retry policy (dkw.server.client.SERVICE_CONFIG), the load-balancing policy, and client-side health
    checking: a replica whose `grpc.health.v1` status for dkw.v1.Clearing is not SERVING gets no calls."""
    return {**SERVICE_CONFIG, "loadBalancingConfig": [{balancing: {}}],
            "healthCheckConfig": {"serviceName": "dkw.v1.Clearing"}}


def _optional(message: Any, name: str) -> float | None:
    return getattr(message, name) if message.HasField(name) else None


def _auction_bytes(auction: bytes | dict | str | os.PathLike) -> bytes:
    """The document's bytes: as given (bytes), a dict as JSON, or a file's (a path)."""
    if isinstance(auction, bytes):
        return auction
    if isinstance(auction, dict):
        return json.dumps(auction, ensure_ascii=False).encode()
    try:
        return Path(auction).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{auction}: cannot read: {exc.strerror or exc}") from None


def _options(time_limit: float | None, gap: float | None, threads: int | None, method: str | None) -> pb.SolveOptions:
    """Only what is given: the server's defaults for the rest (its --default-time-limit)."""
    options = pb.SolveOptions()
    for name, value in (("time_limit_s", time_limit), ("mip_rel_gap", gap), ("threads", threads), ("method", method)):
        if value is not None:
            setattr(options, name, value)
    return options



class Client:
    """One channel to the service (one replica, or several with failover); use as a context manager or
    `close()` it. Every method raises a `ClientError` subclass when it gets no answer."""

    def __init__(self, target: str, *, tls_ca: str | None = None, cert: str | None = None, key: str | None = None,
                 token: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 solve_timeout: float = DEFAULT_SOLVE_TIMEOUT_S, insecure: bool = False,
                 server_name: str | None = None, balancing: str = BALANCING[0]):
        if balancing not in BALANCING:
            raise ConfigError(f"balancing {balancing!r} is not one of {', '.join(BALANCING)}")
        self.target = parse_target(target)
        self.timeout, self.solve_timeout = timeout, solve_timeout
        plaintext = tls_ca is None and (insecure or self.target.loopback)
        if plaintext and (cert or key):
            raise ConfigError("--tls-cert/--tls-key need TLS: give --tls-ca too")
        config = json.dumps(service_config(balancing))
        try:
            self._channel = open_channel(self.target.grpc_target, ca=tls_ca, cert=cert, key=key, token=token,
                                         server_name=server_name, system_roots=not plaintext,
                                         authority=self.target.authority, service_config=config)
        except TlsFileError as exc:
            raise ConfigError(str(exc)) from None
        self._endpoint = Endpoint(self.target.text, tls_ca, cert, key, server_name,
                                  system_roots=not plaintext and tls_ca is None)
        self._stub = pb_grpc.ClearingStub(self._channel)
        self._ready = False

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def connect(self) -> None:
        """Wait until a replica answers; raise Unreachable with the cause (each replica's) when none does.
        Every call does this first; call it to find out early."""
        if self._ready:
            return
        try:
            wait_until_ready(self._channel, self._endpoint)
        except _NotConnected as exc:
            raise Unreachable(str(exc)) from None
        self._ready = True

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        self.connect()
        try:
            return getattr(self._stub, method)(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise error_of(self.target.text, exc) from None

    def clear(self, auction: bytes | dict | str | os.PathLike, *, time_limit: float | None = None,
              gap: float | None = None, threads: int | None = None, method: str | None = None) -> Result:
        """Clear and wait for the result (Clear); an absent option takes the server's default."""
        request = pb.ClearRequest(auction_json=_auction_bytes(auction), options=_options(time_limit, gap, threads, method))
        return Result.of(self._call("Clear", request, self.solve_timeout))

    def submit(self, auction: bytes | dict | str | os.PathLike, *, key: str | None = None,
               time_limit: float | None = None, gap: float | None = None, threads: int | None = None,
               method: str | None = None) -> Submitted:
        """Store the auction to be cleared in the background (SubmitAuction). Without `key`, a fresh one, so
        that gRPC's retry on another replica finds the auction its first attempt stored."""
        key = key or f"dkw-client-{uuid.uuid4().hex}"
        request = pb.SubmitAuctionRequest(auction_json=_auction_bytes(auction), idempotency_key=key,
                                          options=_options(time_limit, gap, threads, method))
        r = self._call("SubmitAuction", request)
        return Submitted(r.auction_id, r.input_sha256, pb.AuctionState.Name(r.state), r.created, key)

    def status(self, auction_id: str) -> Result:
        """The auction's state and reason, and its result when it has one (GetResult)."""
        return Result.of(self._call("GetResult", pb.GetResultRequest(auction_id=auction_id)))

    def result(self, auction_id: str, *, public_key: Any = None) -> Result:
        """The result (Failed when the auction has none yet, or none at all); with `public_key` (a PEM path
        or a key) its signature is checked over the signed bytes first (Failed when it does not hold)."""
        found = self.status(auction_id)
        if found.document is None:
            why = f" ({found.reason})" if found.reason else ""
            raise Failed(f"auction {auction_id} is {found.state}{why}: no result"
                         + ("; wait with `dkw watch`" if found.state not in FINISHED else ""), None)
        if public_key is not None:
            try:
                problem = found.signature_problem(public_key)
            except ValueError as exc:  # dkw.clearing.signing.KeyFileError: the key file itself
                raise ConfigError(str(exc)) from None
            if problem is not None:
                raise Failed(f"auction {auction_id}: signature check failed: {problem}")
        return found

    def watch(self, auction_id: str, *, on_resume: Callable[[ClientError], None] | None = None) -> Iterator[Progress]:
        """The auction's progress until it ends (WatchClearing); the last event says how, with the result.
        A stream cut because its replica went away (UNAVAILABLE) is reopened, on another replica if need be
        (`on_resume` hears of each)."""
        self.connect()
        resumes = 0
        while True:
            try:
                for event in self._stub.WatchClearing(pb.WatchRequest(auction_id=auction_id), timeout=self.solve_timeout):
                    progress = _progress(event)
                    yield progress
                    if progress.finished:
                        return
                return
            except grpc.RpcError as exc:
                error = error_of(self.target.text, exc)
                if exc.code() != grpc.StatusCode.UNAVAILABLE or resumes >= WATCH_RESUMES:
                    raise error from None
                resumes += 1
                if on_resume is not None:
                    on_resume(error)

    def list(self, *, state: str | None = None, since: datetime | None = None,
             page_size: int = 100) -> Iterator[AuctionInfo]:
        """Stored auctions, newest first, every page (ListAuctions); `since`: received at or after it."""
        if state is not None and state not in FINISHED + ("QUEUED", "RUNNING"):
            raise ConfigError(f"state {state!r} is not one of QUEUED, RUNNING, {', '.join(FINISHED)}")
        request = pb.ListAuctionsRequest(page_size=page_size, state=pb.AuctionState.Value(state) if state else 0)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # a date without a zone is UTC, as the server stores it
        while True:
            page = self._call("ListAuctions", request)
            for info in page.auctions:
                received = info.received_at.ToDatetime(tzinfo=UTC)
                if since is not None and received < since:
                    return
                yield _auction_info(info, received)
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def cancel(self, auction_id: str, reason: str = "") -> Result:
        """Cancel from any replica (CancelClearing, idempotent); the state it ended in."""
        return Result.of(self._call("CancelClearing", pb.CancelRequest(auction_id=auction_id, reason=reason),
                                    max(self.timeout, 60.0)))

    def audit(self, *, client_id: str | None = None, page_size: int = 100) -> Iterator[dict[str, str]]:
        """The audit trail, newest first, every page (ListAuditRecords, admin role): one dict per record,
        every field the server sends."""
        request = pb.ListAuditRecordsRequest(page_size=page_size, client_id=client_id or "")
        while True:
            page = self._call("ListAuditRecords", request)
            for record in page.records:
                yield json_format.MessageToDict(record, preserving_proto_field_name=True,
                                                always_print_fields_with_no_presence=True)
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def validate(self, auction: bytes | dict | str | os.PathLike) -> Validation:
        """Check the auction and judge its bids under the server's market policy (Validate); stores nothing."""
        r = self._call("Validate", pb.ValidateRequest(auction_json=_auction_bytes(auction)))
        verdicts = [json_format.MessageToDict(v, preserving_proto_field_name=True) for v in r.verdicts]
        return Validation(r.valid, [(p.path, p.message) for p in r.problems], r.input_sha256, r.bids, r.requirements,
                          verdicts, json_format.MessageToDict(r.market_rules))


def _progress(event: pb.ClearingProgress) -> Progress:
    result = Result.of(event) if event.HasField("result") else None
    return Progress(event.auction_id, pb.ClearingProgress.Phase.Name(event.phase), pb.AuctionState.Name(event.state),
                    event.elapsed_s, _optional(event, "incumbent_yen"), _optional(event, "bound_yen"),
                    _optional(event, "gap"), event.message, result)


def _auction_info(info: pb.AuctionInfo, received: datetime) -> AuctionInfo:
    status = pb.ClearingResult.Status.Name(info.status) if info.status else ""
    return AuctionInfo(info.auction_id, info.document_auction_id, info.trading_date, info.input_sha256, received,
                       pb.AuctionState.Name(info.state), info.reason, info.idempotency_key, info.attempts, status,
                       _optional(info, "objective_yen"), _optional(info, "mip_gap"), info.solve_seconds, info.solver)
