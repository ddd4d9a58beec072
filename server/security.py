"""What the servicer asks of security, in one place: who the caller is and what it may see, the
per-client limit, signing results, and the admins' view of the audit trail.

The servicer (`dkw.server.service`) calls these few functions; the checks that apply to every call alike
(authentication, roles, the audit record) happen before it, in `dkw.server.guard`.
"""

from __future__ import annotations

import collections
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from dkw.server.audit import AuditTrail
from dkw.server.auth import Caller
from dkw.server.guard import caller_of
from dkw.v1 import clearing_pb2 as pb

__all__ = ["AuditTrail", "Signer", "caller_of", "may_see", "within_limit", "scoped_key", "list_audit_records",
           "DEFAULT_MAX_ACTIVE_PER_CLIENT", "RETRY_AFTER_S"]

#: Auctions one client may have queued or running at once, unless its clients-file entry says otherwise.
DEFAULT_MAX_ACTIVE_PER_CLIENT = 10
#: The retry delay a client over its limit is told to wait (google.rpc.RetryInfo).
RETRY_AFTER_S = 30
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000


@dataclass(frozen=True)
class Signer:
    """Signs each result document before it is stored (`dkw serve --signing-key`)."""

    private_key: Any  # Ed25519PrivateKey

    @classmethod
    def from_file(cls, path: str) -> Signer:
        from dkw.clearing.signing import load_private_key

        return cls(load_private_key(path))

    @property
    def key_id(self) -> str:
        from dkw.clearing.signing import key_id

        return key_id(self.private_key.public_key())

    def sign(self, document: dict[str, Any]) -> dict[str, Any]:
        from dkw.clearing.signing import sign_document

        return sign_document(document, self.private_key)


def may_see(caller: Caller, record: Any) -> bool:
    """A submitter sees only its own auctions (another's reads as NOT_FOUND, so existence does not leak)."""
    return not caller.owns_only() or record.submitted_by == caller.id


def scoped_key(caller: Caller, key: str) -> str:
    """Idempotency keys are per client: two clients choosing the same key get two auctions."""
    return f"{caller.id}/{key}" if key and caller.restricted else key


class _Admissions:
    """Auctions admitted under a client's cap but not stored yet, so that calls arriving together cannot
    all pass the same count: each holds a place from the check until `stored` (or the call's end)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: collections.Counter[str] = collections.Counter()
        self.held: weakref.WeakKeyDictionary[Any, Callable[[], None]] = weakref.WeakKeyDictionary()


_admissions = _Admissions()


def within_limit(service: Any, context: grpc.ServicerContext) -> Caller:
    """The caller, or RESOURCE_EXHAUSTED with a RetryInfo when it already has its cap of auctions queued or
    running, so one client cannot fill the queue and the workers for everybody else. The place it takes is
    given back by `stored(context)` once the auction is stored, or when the call ends."""
    caller = caller_of(context)
    if not caller.restricted:
        return caller
    limit = caller.max_active or service.max_active_per_client
    with _admissions.lock:
        active = service.storage.count_active(caller.id) + _admissions.pending[caller.id]
        if active < limit:
            _admissions.pending[caller.id] += 1
            release = _releaser(caller.id)
            _admissions.held[context] = release
    if active < limit:
        context.add_callback(release)
        return caller
    retry = any_pb2.Any()
    retry.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_S)))
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, details=[retry], message=(
        f"client {caller.id!r} already has {active} auction(s) queued or running, its limit is {limit}; "
        f"retry in {RETRY_AFTER_S} s or when one finishes"))
    context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returned")  # it raises; this line is never reached


def _releaser(client_id: str) -> Callable[[], None]:
    """Gives the place back once, whichever comes first: the auction stored, or the call ending."""
    released = threading.Event()

    def release() -> None:
        with _admissions.lock:
            if not released.is_set():
                released.set()
                _admissions.pending[client_id] -= 1

    return release


def stored(context: grpc.ServicerContext) -> None:
    """The auction admitted by `within_limit` is stored (and counted by the store from now on)."""
    with _admissions.lock:
        release = _admissions.held.pop(context, None)
    if release is not None:
        release()


def list_audit_records(audit: AuditTrail | None, request: pb.ListAuditRecordsRequest,
                       context: grpc.ServicerContext) -> pb.ListAuditRecordsResponse:
    if audit is None:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this server keeps no audit trail")
    size = request.page_size or DEFAULT_PAGE_SIZE
    if not 0 < size <= MAX_PAGE_SIZE:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_size {size} must be in 1..{MAX_PAGE_SIZE}")
    records = audit.page(limit=size + 1, before=request.page_token or None, client_id=request.client_id or None)
    response = pb.ListAuditRecordsResponse()
    for r in records[:size]:
        response.records.add(record_id=r.record_id, at=r.at, client_id=r.client_id, peer=r.peer, method=r.method,
                             auction_id=r.auction_id, status_code=r.status_code, detail=r.detail, server=r.server)
    if len(records) > size:
        response.next_page_token = records[size - 1].record_id
    return response


# ---- `dkw serve`'s security settings ----------------------------------------------------------------


@dataclass(frozen=True)
class ServeSecurity:
    """The security flags of `dkw serve`; the default is today's behaviour (plaintext, loopback, open)."""

    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    clients: str | None = None
    signing_key: str | None = None
    insecure: bool = False
    max_active_per_client: int = DEFAULT_MAX_ACTIVE_PER_CLIENT
    #: `--authenticate`: callers authenticate against the database's client registry (with --database)
    authenticate: bool = False
    #: `--adopt-settings`: this server's settings replace the ones recorded in its database (dkw.server.settings)
    adopt_settings: bool = False

    @classmethod
    def from_args(cls, args: Any) -> ServeSecurity:
        """The security flags of a parsed `dkw serve` command line (or its --config file)."""
        return cls(args.tls_cert, args.tls_key, args.tls_client_ca, args.clients, args.signing_key, args.insecure,
                   args.max_active_per_client, authenticate=args.authenticate, adopt_settings=args.adopt_settings)

    @property
    def authenticated(self) -> bool:
        """Whether callers must authenticate (a clients file, or the database's registry)."""
        return self.clients is not None or self.authenticate

    def storage_refusal(self, database: str | None) -> str | None:
        """Why the clients' source does not fit the store: replicas on one database share its registry."""
        if database and self.clients is not None:
            return (f"--clients {self.clients}: with --database the clients live in the database, shared by "
                    f"every replica: import the file once with `dkw clients import {self.clients} --database URL` "
                    "(or add them with `dkw clients add --database URL ID --role ROLE`) and start with "
                    "--authenticate instead")
        if self.authenticate and not database:
            return ("--authenticate reads the clients from the database's registry (with --database URL); "
                    "on SQLite give --clients FILE")
        return None

    def refusal(self, host: str) -> str | None:
        """Why this combination must not start (None: it may), e.g. a public port with no TLS."""
        from dkw.server.tls import is_loopback

        if is_loopback(host) or self.insecure:
            return None
        missing = []
        if self.tls_cert is None:
            missing.append("without TLS (--tls-cert/--tls-key) tokens, auctions and results cross the network "
                           "in the clear")
        if not self.authenticated:
            missing.append("without --clients (or --authenticate with --database) anyone who reaches the port "
                           "may submit and read every auction")
        if not missing:
            return None
        return f"refusing to listen on {host}: {'; '.join(missing)}. Give --insecure to do it anyway"

    def warning(self, host: str) -> str | None:
        from dkw.server.tls import is_loopback

        if self.insecure and not is_loopback(host) and (self.tls_cert is None or not self.authenticated):
            return (f"WARNING: --insecure: listening on {host} "
                    f"{'without TLS' if self.tls_cert is None else ''}"
                    f"{' and ' if self.tls_cert is None and not self.authenticated else ''}"
                    f"{'without client authentication' if not self.authenticated else ''}")
        return None


def describe(secure: ServeSecurity) -> str:
    """How the server is secured, for its start-up line."""
    transport = ("mutual TLS" if secure.tls_client_ca else "TLS") if secure.tls_cert else "plaintext"
    clients = (f"clients from {secure.clients}" if secure.clients else
               "clients from the database's registry" if secure.authenticate else "no client authentication")
    signing = ", results signed" if secure.signing_key else ""
    return f"{transport}, {clients}{signing}"


def add_serve_arguments(p: Any) -> None:
    p.add_argument("--tls-cert", metavar="FILE", help="serve TLS with this certificate (PEM; chain included)")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument("--tls-client-ca", metavar="FILE", help="mutual TLS: require client certificates signed by this CA")
    p.add_argument("--clients", metavar="FILE", help="authenticate callers against this clients file "
                   "(`dkw clients add`); re-read when it changes. SQLite only: with --database use --authenticate")
    p.add_argument("--signing-key", metavar="FILE", help="sign every result with this Ed25519 private key "
                   "(`dkw keys new`)")
    p.add_argument("--max-active-per-client", type=int, default=DEFAULT_MAX_ACTIVE_PER_CLIENT, metavar="N",
                   help="auctions one client may have queued or running at once (default "
                   f"{DEFAULT_MAX_ACTIVE_PER_CLIENT}; a client's max_active in the clients file overrides it)")
    p.add_argument("--authenticate", action="store_true", help="with --database: authenticate callers against the "
                   "database's client registry (`dkw clients add --database URL`), shared by every replica")
    p.add_argument("--adopt-settings", action="store_true", help="make this server's security settings (TLS, "
                   "authentication, signing key, policy) the ones recorded in its database, replacing the "
                   "recorded ones (docs/security.md: One security configuration per database)")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without TLS or without "
                   "--clients (prints a warning)")
