"""`dkw serve`: the gRPC server (dkw.v1.Clearing + grpc.health.v1 + server reflection)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import sys
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from clearing.rules import PolicyError
from dkw.cli import EXIT_BAD_INPUT, EXIT_OK
from dkw.v1 import clearing_pb2 as pb
from dkw.v1 import clearing_pb2_grpc as pb_grpc
from server import security
from server.audit import AuditTrail
from server.auth import Authenticator, ClientsFileError
from server.guard import SecurityInterceptor
from server.service import ClearingService
from server.storage import SqliteStorage
from server.tls import TlsFileError, server_credentials

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
    storage: SqliteStorage
    port: int
    audit: AuditTrail | None = None

    def stop(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """Stop taking calls, let in-flight ones finish within `grace`, then stop the workers and the store."""
        self.health.enter_graceful_shutdown()
        self.service._stopping = True
        self.server.stop(grace).wait()
        self.service.stop()
        self.storage.close()
        if self.audit is not None:
            self.audit.close()


def start_server(host: str = "127.0.0.1", port: int = 50051, data: str = "./var", workers: int = 2,
                 max_queued: int = 100, threads: int | None = None, policy: str | None = None,
                 secure: security.ServeSecurity | None = None) -> RunningServer:
    """Build and start the server; `port` 0 picks a free port (see `RunningServer.port`). Raises OSError
    when the port is taken, ValueError (ClientsFileError, TlsFileError, KeyFileError) on bad security files."""
    secure = secure or security.ServeSecurity()
    check_port_free(host, port)
    credentials = server_credentials(secure.tls_cert, secure.tls_key, secure.tls_client_ca)
    authenticator = Authenticator(secure.clients)
    signer = security.Signer.from_file(secure.signing_key) if secure.signing_key else None
    storage = SqliteStorage(data)
    audit = None
    try:
        audit = AuditTrail.sqlite(storage.path)
        service = ClearingService(storage, workers, max_queued=max_queued, default_threads=threads,
                                  policy_path=policy)
    except BaseException:
        storage.close()
        if audit is not None:
            audit.close()
        raise
    service.signer, service.audit = signer, audit
    service.max_active_per_client = secure.max_active_per_client
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_CONCURRENT_RPCS, thread_name_prefix="dkw-rpc"),
                         options=MESSAGE_OPTIONS, maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
                         interceptors=[SecurityInterceptor(SERVICE_NAME, authenticator, audit)])
    pb_grpc.add_ClearingServicer_to_server(service, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = (server.add_secure_port(address, credentials) if credentials is not None
                 else server.add_insecure_port(address))
    except RuntimeError:  # grpcio raises where older versions returned 0
        bound = 0
    if bound == 0:
        storage.close()
        audit.close()
        raise OSError(f"cannot listen on {address}: the port is in use (another dkw serve?) or the address "
                      "is not this machine's")
    service.start()
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, service, health_servicer, storage, bound)


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.workers < 1:
        print(f"dkw serve: --workers {args.workers} must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    secure = security.ServeSecurity(args.tls_cert, args.tls_key, args.tls_client_ca, args.clients, args.signing_key,
                                    args.insecure, args.max_active_per_client)
    if secure.refusal(args.host):
        print(f"dkw serve: {secure.refusal(args.host)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if secure.warning(args.host):
        print(f"dkw serve: {secure.warning(args.host)}", file=sys.stderr, flush=True)
    try:
        running = start_server(args.host, args.port, args.data, args.workers, args.max_queued, args.threads,
                               args.policy, secure)
    except (OSError, ClientsFileError, TlsFileError, ValueError) as exc:
        print(f"dkw serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PolicyError as exc:
        print(f"{args.policy}: {len(exc.problems)} problem(s) in the policy:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"dkw serve: listening on {args.host}:{running.port} (data {os.path.abspath(args.data)}, "
          f"{args.workers} worker(s), pid {os.getpid()}, {security.describe(secure)})", flush=True)
    stop.wait()
    print("dkw serve: shutting down", file=sys.stderr, flush=True)
    running.stop()
    print("dkw serve: stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the gRPC clearing service (dkw.v1.Clearing)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=50051, help="port 1-65535 (default 50051; 0 picks a free one)")
    p.add_argument("--data", default="./var", metavar="DIR", help="where auctions and results are stored "
                   "(SQLite file DIR/dkw.sqlite3; default ./var)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="solver processes, i.e. auctions cleared at once (default 2)")
    p.add_argument("--max-queued", type=int, default=100, metavar="N",
                   help="submitted auctions that may wait for a worker (default 100)")
    p.add_argument("--threads", type=int, default=None, help="HiGHS threads per solve (default: HiGHS's choice)")
    p.add_argument("--policy", metavar="FILE", help="market policy merged over the shipped one, for every "
                   "auction this server clears or validates (README: Market rules)")
    security.add_serve_arguments(p)
    p.set_defaults(handler=cmd_serve)


def port_number(text: str) -> int:
    """A TCP port, refused (exit 2) outside 0-65535 instead of listening somewhere else."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside 1-65535 (0 picks a free port)")
    return port
