"""`dkw serve`: the gRPC server (dkw.v1.Clearing + grpc.health.v1 + server reflection). `dkw cancel` and the other
remote commands are in dkw/remote_commands.py."""

from __future__ import annotations

import argparse
import errno
import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from dkw.clearing.rules import PolicyError
from dkw.cli import EXIT_BAD_INPUT, EXIT_OK
from dkw.server import limits as bounds
from dkw.server import probes, security, settings
from dkw.server.audit import DEFAULT_BACKLOG, AuditTrail
from dkw.server.auth import Authenticator, ClientsFileError
from dkw.server.config import ServeParser
from dkw.server.drain import DEFAULT_DRAIN_S, drain
from dkw.server.guard import SecurityInterceptor
from dkw.server.health import StorageHealth
from dkw.server.logs import configure_logging, say
from dkw.server.migrations import SchemaTooNew
from dkw.server.observability import Metrics, RpcObserver
from dkw.server.preflight import check_database_url
from dkw.server.registry import DatabaseRegistry
from dkw.server.service import DEFAULT_LEASE_S, DEFAULT_MAX_QUEUED, ClearingService
from dkw.server.sqlite import SqliteStorage
from dkw.server.storage import RetryPolicy, SqlStorage, StorageUnavailable
from dkw.server.tls import TlsFileError, server_credentials
from dkw.solvers.api import MEMORY_GUARD_SHARE
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc

#: A 200k-bid auction is about 8 MB as a message and more as JSON; gRPC's default limit is 4 MB.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MESSAGE_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),  # one server per port: a second one must fail to bind, not share the port
]
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Clearing"].full_name
#: Seconds in-flight calls get to finish after SIGTERM before they are cancelled.
SHUTDOWN_GRACE_S = 5.0
#: Concurrent calls (streams included) the server accepts; more get RESOURCE_EXHAUSTED, never a hang.
MAX_CONCURRENT_RPCS = 64


@dataclass
class RunningServer:
    server: grpc.Server
    service: ClearingService
    health: health.HealthServicer
    storage: SqlStorage
    port: int
    metrics_port: int | None = None
    audit: AuditTrail | None = None
    storage_health: StorageHealth | None = None

    def drain(self, seconds: float = DEFAULT_DRAIN_S) -> int:
        """SIGTERM's first step (dkw.server.drain): not ready, claim nothing more, give running solves up to
        `seconds`, then hand the unfinished submitted auctions back with their incumbents."""
        self.health.enter_graceful_shutdown()
        return drain(self.service, seconds)

    def stop(self, grace: float = SHUTDOWN_GRACE_S) -> dict[str, float]:
        """Stop taking calls, let in-flight ones finish within `grace`, then stop the workers and the store.
        Returns the seconds each step took, for the shutdown's log line: a slow shutdown names its step."""
        took: dict[str, float] = {}
        step = time.monotonic()

        def done(name: str) -> None:
            nonlocal step
            now = time.monotonic()
            took[name] = now - step
            step = now

        self.health.enter_graceful_shutdown()
        if self.storage_health is not None:
            self.storage_health.stop()
        self.service._stopping = True
        self.server.stop(grace).wait()
        done("calls")
        self.service.stop()
        self.service.metrics.close()
        done("workers")
        if self.audit is not None:
            self.audit.close()  # writes its backlog first, while the store is open
        done("audit")
        self.storage.close()
        done("store")
        return took


def open_storage(database: str | None, data_dir: str, retry: RetryPolicy | None = None) -> SqlStorage:
    """`--database URL` (PostgreSQL, for replicas) or, by default, SQLite under `--data`."""
    if database:
        check_database_url(database)  # mysql://, sqlite://: one line, before psycopg's own words
        from dkw.server.postgres import PostgresStorage  # psycopg is loaded only when asked for

        return PostgresStorage(database, retry=retry)
    return SqliteStorage(data_dir, retry=retry)


def open_audit(storage: SqlStorage, backlog_limit: int = DEFAULT_BACKLOG) -> AuditTrail:
    """The audit trail in the same database as the auctions (its table comes with the schema's migrations),
    through the store's own connections and retries, with a backlog for when the database is away."""
    return AuditTrail.on_storage(storage, backlog_limit)


def start_server(host: str = "127.0.0.1", port: int = 50051, data: str = "./var", workers: int = 2,
                 max_queued: int = DEFAULT_MAX_QUEUED, threads: int | None = None, policy: str | None = None,
                 secure: security.ServeSecurity | None = None, *, database: str | None = None,
                 lease_s: float = DEFAULT_LEASE_S, metrics_port: int | None = None,
                 memory_limit_mb: float | None = None, limits: bounds.Limits | None = None,
                 storage_retry_s: float | None = None, audit_backlog: int = DEFAULT_BACKLOG) -> RunningServer:
    """Build and start the server; `port` 0 picks a free port (see `RunningServer.port`). Raises OSError
    when the port is taken, ValueError (ClientsFileError, TlsFileError, KeyFileError) on bad security files,
    SchemaTooNew or a psycopg error for a database it cannot use, settings.SettingsMismatch (a ValueError)
    when its security settings differ from the ones recorded in the store. `storage_retry_s`: how long a
    storage operation retries transient faults before StorageUnavailable (default: RetryPolicy's)."""
    secure = secure or security.ServeSecurity()
    limits = limits or bounds.Limits()
    limits.check_threads(threads)
    if secure.storage_refusal(database):
        raise ValueError(secure.storage_refusal(database))
    check_port_free(host, port)
    credentials = server_credentials(secure.tls_cert, secure.tls_key, secure.tls_client_ca)
    authenticator = Authenticator(secure.clients)  # a clients file is checked before the store opens
    signer = security.Signer.from_file(secure.signing_key) if secure.signing_key else None
    storage = open_storage(database, data, None if storage_retry_s is None else RetryPolicy(budget_s=storage_retry_s))
    audit = None
    try:
        adopted = settings.check_at_start(storage, secure, signer, policy)  # one configuration per store
        if secure.authenticate:  # replicas share the database's client registry
            authenticator = Authenticator(None, registry=DatabaseRegistry(storage))
        audit = open_audit(storage, audit_backlog)
        settings.record_adoption(audit, adopted)
        storage_health: list[StorageHealth] = []  # the metrics' counts skip the database while it is away
        metrics = Metrics(lambda: storage_health[0].counts() if storage_health else storage.counts())
        service = ClearingService(storage, workers, max_queued=max_queued, default_threads=threads,
                                  policy_path=policy, lease_s=lease_s, metrics=metrics,
                                  memory_limit_mb=memory_limit_mb)
        probes.install(metrics.routes, service)
        bound_metrics = metrics.serve(metrics_port, host) if metrics_port is not None else None
    except BaseException:
        storage.close()
        if audit is not None:
            audit.close()
        raise
    service.signer, service.audit = signer, audit
    audit.server = service.owner  # every audit record names the replica that handled the call
    service.max_active_per_client, service.limits = secure.max_active_per_client, limits
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_CONCURRENT_RPCS, thread_name_prefix="dkw-rpc"),
                         options=MESSAGE_OPTIONS, maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
                         # metrics outermost: refusals by the security interceptor are counted too
                         interceptors=[RpcObserver(metrics), SecurityInterceptor(SERVICE_NAME, authenticator, audit)])
    pb_grpc.add_ClearingServicer_to_server(service, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    storage_health.append(StorageHealth(storage, health_servicer, ("", SERVICE_NAME), metrics.registry,
                                        backlog=audit.backlog))
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = (server.add_secure_port(address, credentials) if credentials is not None
                 else server.add_insecure_port(address))
    except RuntimeError:  # grpcio raises where older versions returned 0
        bound = 0
    if bound == 0:
        metrics.close()
        storage.close()
        audit.close()
        raise OSError(f"cannot listen on {address}: the port is in use (another dkw serve?) or the address "
                      "is not this machine's")
    service.start()
    server.start()
    storage_health[0].start()  # SERVING, and NOT_SERVING whenever the database cannot be reached
    service.storage_health = storage_health[0]  # the readiness probe reads it too (dkw.server.probes)
    return RunningServer(server, service, health_servicer, storage, bound, bound_metrics, audit, storage_health[0])


def check_port_free(host: str, port: int) -> None:
    """Raise OSError with one clear sentence when `host:port` cannot be bound (taken, or not an address of
    this machine), before gRPC tries and logs its own multi-line error."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(f"port {port} on {host} is already in use (another dkw serve?); "
                                  "choose another --port") from None
                raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    if args.check_config:
        return check_config(args)
    configure_logging(args.log_format)
    if args.workers < 1:
        say(f"--workers {args.workers} must be at least 1", logging.ERROR)
        return EXIT_BAD_INPUT
    if args.lease_seconds <= 0:
        say(f"--lease-seconds {args.lease_seconds} must be above 0", logging.ERROR)
        return EXIT_BAD_INPUT
    secure = security.ServeSecurity.from_args(args)
    if secure.refusal(args.host):
        say(secure.refusal(args.host), logging.ERROR)
        return EXIT_BAD_INPUT
    if secure.warning(args.host):
        say(secure.warning(args.host), logging.WARNING)
    try:
        running = start_server(args.host, args.port, args.data, args.workers, args.max_queued, args.threads,
                               args.policy, secure, database=args.database, lease_s=args.lease_seconds,
                               metrics_port=args.metrics_port, memory_limit_mb=args.memory_limit,
                               limits=bounds.from_args(args), storage_retry_s=args.storage_retry_seconds,
                               audit_backlog=args.audit_backlog)
    except StorageUnavailable:
        say("--database: the database stopped answering while the server started; retry", logging.ERROR)
        return EXIT_BAD_INPUT
    except (OSError, ClientsFileError, TlsFileError, ValueError, SchemaTooNew) as exc:
        say(str(exc), logging.ERROR)
        return EXIT_BAD_INPUT
    except PolicyError as exc:
        say(f"{args.policy}: {len(exc.problems)} problem(s) in the policy:", logging.ERROR, prefix="")
        for problem in exc.problems:
            say(f"  {problem}", logging.ERROR, prefix="")
        return EXIT_BAD_INPUT
    except Exception as exc:  # the database refused the connection, the URL is malformed, ...
        if type(exc).__module__.split(".")[0] != "psycopg":
            raise
        say(f"--database: {' '.join(str(exc).split())}", logging.ERROR)
        return EXIT_BAD_INPUT
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # `kill -USR2 PID`: every thread's stack on stderr, for a server that does not stop or answer
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    store = f"database {redacted(args.database)}" if args.database else f"data {os.path.abspath(args.data)}"
    metrics = f", metrics on {args.host}:{running.metrics_port}" if running.metrics_port is not None else ""
    say(f"listening on {args.host}:{running.port} ({store}, {args.workers} worker(s), server {running.service.owner}, "
        f"pid {os.getpid()}{metrics}, {security.describe(secure)})", stream=sys.stdout)
    stop.wait()
    say(f"shutting down: draining for up to {args.drain_seconds:g} s")
    began = time.monotonic()
    handed = running.drain(args.drain_seconds)
    if handed:
        say(f"{handed} unfinished clearing(s) stopped and handed back")
    took = {"drain": time.monotonic() - began, **running.stop()}
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in took.items())
    say(f"stopped in {time.monotonic() - began:.1f} s ({steps})")
    return EXIT_OK


def check_config(args: argparse.Namespace) -> int:
    """`dkw serve --check-config`: one line per problem (exit 2), or one OK line (exit 0)."""
    from dkw.server.checkconfig import problems

    found = problems(args, check_port_free, redacted)
    for problem in found:
        print(f"dkw serve --check-config: {problem}", file=sys.stderr)
    if found:
        return EXIT_BAD_INPUT
    print(f"configuration OK{f' ({args.config})' if args.config else ''}: {args.host}:{args.port}, "
          f"{'database ' + redacted(args.database) if args.database else 'data ' + os.path.abspath(args.data)}")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    parser_class, subparsers._parser_class = subparsers._parser_class, ServeParser  # --config (dkw.server.config)
    try:
        p = subparsers.add_parser("serve", help="run the gRPC clearing service (dkw.v1.Clearing)")
    finally:
        subparsers._parser_class = parser_class
    p.add_argument("--config", metavar="FILE", help="read the options from this TOML file (examples/dkw.toml); "
                   "flags given on the command line override it")
    p.add_argument("--check-config", action="store_true", help="check the configuration (files, keys, clients, "
                   "database, ports, policy, limits) without serving: one line per problem, exit 0 or 2")
    p.add_argument("--drain-seconds", type=float, default=DEFAULT_DRAIN_S, metavar="S",
                   help="on SIGTERM, how long running solves may go on before they are stopped and handed back "
                   f"with their best incumbent (default {DEFAULT_DRAIN_S:g})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=50051, help="port 1-65535 (default 50051; 0 picks a free one)")
    p.add_argument("--data", default="./var", metavar="DIR", help="where auctions and results are stored "
                   "(SQLite file DIR/dkw.sqlite3; default ./var)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="solver processes, i.e. auctions cleared at once (default 2)")
    p.add_argument("--database", metavar="URL", help="store in PostgreSQL instead of SQLite, e.g. "
                   "postgresql://dkw@db.example/dkw; any number of servers may share one database (replicas)")
    p.add_argument("--max-queued", type=int, default=DEFAULT_MAX_QUEUED, metavar="N",
                   help=f"submitted auctions that may wait for a worker, all replicas together; past that "
                   f"SubmitAuction answers RESOURCE_EXHAUSTED (default {DEFAULT_MAX_QUEUED})")
    p.add_argument("--lease-seconds", type=float, default=DEFAULT_LEASE_S, metavar="S",
                   help=f"how long a claimed auction stays this server's without renewal: a dead replica's "
                   f"auctions resume elsewhere after about this long (default {DEFAULT_LEASE_S:g})")
    p.add_argument("--storage-retry-seconds", type=float, default=None, metavar="S",
                   help="how long a storage operation retries a lost or refused database connection before the "
                   "call answers UNAVAILABLE (default 5)")
    p.add_argument("--audit-backlog", type=int, default=DEFAULT_BACKLOG, metavar="N",
                   help="audit records kept in memory while the database is away; when full, Clear, SubmitAuction "
                   f"and CancelClearing answer UNAVAILABLE (default {DEFAULT_BACKLOG})")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics (0 picks a free port)")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="log lines as text (default) or JSON objects with auction_id and request_id")
    p.add_argument("--threads", type=int, default=None, help="HiGHS threads per solve (default: HiGHS's choice)")
    p.add_argument("--memory-limit", type=float, default=None, metavar="MB",
                   help="memory ceiling of each clearing (resident MB of its worker process): branch-and-bound "
                   f"stops with its best incumbent and bound at {MEMORY_GUARD_SHARE * 100:.0f}%% of it (default: none)")
    p.add_argument("--policy", metavar="FILE", help="market policy merged over the shipped one, for every "
                   "auction this server clears or validates (README: Market rules)")
    security.add_serve_arguments(p)
    bounds.add_arguments(p)
    p.set_defaults(handler=cmd_serve)


def redacted(url: str) -> str:
    """A database URL without its password, for logs."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception:
        return "(unparsable URL)"
    return f"{params.get('user', '')}@{params.get('host', '')}/{params.get('dbname', '')}"


def port_number(text: str) -> int:
    """A TCP port, refused (exit 2) outside 0-65535 instead of listening somewhere else."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside 1-65535 (0 picks a free port)")
    return port
