"""`dkw serve --check-config`: everything about a configuration that can be checked before serving, one
line per problem (exit 2), or one line saying it is fine (exit 0). Nothing is written: the database is
neither migrated nor recorded into, no port is kept.

Checked: the limits and numbers (`--workers`, `--lease-seconds`, `--drain-seconds`, `--memory-limit`,
the time limits and threads), security combinations (a public host without TLS or authentication, a
clients file with --database), every file named is readable, the TLS key is the certificate's, the
signing key is an Ed25519 private key, the market policy loads, the clients registry is valid (the file,
or the database's table, with at least one client), the database answers and its schema is not newer
than this dkw, and the gRPC and metrics ports are free.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from dkw.server import limits as bounds
from dkw.server import security
from dkw.server.migrations import LATEST

#: Seconds the check waits for the database to answer.
CONNECT_TIMEOUT_S = 5
FILE_FLAGS = (("tls_cert", "--tls-cert"), ("tls_key", "--tls-key"), ("tls_client_ca", "--tls-client-ca"),
              ("clients", "--clients"), ("signing_key", "--signing-key"), ("policy", "--policy"))


def problems(args: argparse.Namespace, port_free: Callable[[str, int], None],
             redact: Callable[[str], str]) -> list[str]:
    """Every problem found, one sentence each (empty: the configuration can serve). `port_free` and
    `redact` are dkw.server.command's `check_port_free` and `redacted` (passed in: no import cycle)."""
    found: list[str] = []
    args = argparse.Namespace(**vars(args), port_free=port_free, redact=redact)
    for check in (_numbers, _security, _files, _database, _ports):
        try:
            check(args, found.append)
        except Exception as exc:  # a check that cannot run says why, the others still run
            found.append(f"{check.__name__.strip('_')}: cannot check: {type(exc).__name__}: {exc}")
    return found


def _numbers(args: argparse.Namespace, problem: Callable[[str], None]) -> None:
    from dkw.solvers.api import SolveOptions

    if args.workers < 1:
        problem(f"--workers {args.workers} must be at least 1")
    if args.lease_seconds <= 0:
        problem(f"--lease-seconds {args.lease_seconds:g} must be above 0")
    if args.drain_seconds < 0:
        problem(f"--drain-seconds {args.drain_seconds:g} must be 0 or more")
    if args.max_queued < 1:
        problem(f"--max-queued {args.max_queued} must be at least 1")
    try:
        limits = bounds.from_args(args)
        limits.check_threads(args.threads)
    except ValueError as exc:
        problem(str(exc))
    try:
        SolveOptions(memory_limit_mb=args.memory_limit)
    except ValueError as exc:
        problem(f"--memory-limit: {exc}")


def _security(args: argparse.Namespace, problem: Callable[[str], None]) -> None:
    secure = security.ServeSecurity.from_args(args)
    for refusal in (secure.refusal(args.host), secure.storage_refusal(args.database)):
        if refusal:
            problem(refusal)
    if (args.tls_cert is None) != (args.tls_key is None):
        problem("--tls-cert and --tls-key go together: give both or neither")
    if args.tls_client_ca and not args.tls_cert:
        problem("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")


def _files(args: argparse.Namespace, problem: Callable[[str], None]) -> None:
    from dkw.clearing.rules import PolicyError, load_policy
    from dkw.server.auth import read_clients
    from dkw.server.tls import check_key_pair

    unreadable = set()
    for dest, flag in FILE_FLAGS:
        path = getattr(args, dest)
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            unreadable.add(dest)
            problem(f"{flag} {path}: cannot read it ({exc.strerror or exc})")
    if args.tls_cert and args.tls_key and not {"tls_cert", "tls_key"} & unreadable:
        try:
            check_key_pair(args.tls_cert, args.tls_key)
        except ValueError as exc:
            problem(str(exc))
    if args.signing_key and "signing_key" not in unreadable:
        try:
            security.Signer.from_file(args.signing_key)
        except Exception as exc:
            problem(f"--signing-key {args.signing_key}: not a usable Ed25519 private key ({exc})")
    if args.clients and "clients" not in unreadable:
        try:
            if not read_clients(args.clients):
                problem(f"--clients {args.clients}: no clients in it: nobody could call (`dkw clients add`)")
        except ValueError as exc:
            problem(str(exc))
    if args.policy and "policy" not in unreadable:
        try:
            load_policy(args.policy)
        except PolicyError as exc:
            problem(f"--policy {args.policy}: {len(exc.problems)} problem(s), first: {exc.problems[0]}")
    elif args.policy is None:
        load_policy(None)  # the shipped policy: a broken install shows here


def _database(args: argparse.Namespace, problem: Callable[[str], None]) -> None:
    if args.database:
        _postgres(args, problem)
        return
    data = Path(args.data)
    existing = next((p for p in (data, *data.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        problem(f"--data {args.data}: cannot create or write the directory ({existing} is not a writable directory)")
        return
    path = data / "dkw.sqlite3"
    if path.exists():
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=CONNECT_TIMEOUT_S)
            try:
                _schema(db.execute, f"--data {args.data}", problem)
            finally:
                db.close()
        except sqlite3.Error as exc:
            problem(f"--data {args.data}: {path} is not a readable dkw database ({exc})")


def _postgres(args: argparse.Namespace, problem: Callable[[str], None]) -> None:
    from dkw.server.preflight import check_database_url

    try:
        check_database_url(args.database)
    except ValueError as exc:
        problem(str(exc))
        return
    import psycopg

    where = f"--database {args.redact(args.database)}"
    try:
        conn = psycopg.connect(args.database, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        problem(f"{where}: the database does not answer: {' '.join(str(exc).split())}")
        return
    with conn:
        _schema(conn.execute, where, problem)
        if args.authenticate:
            try:
                if conn.execute("SELECT COUNT(*) FROM clients").fetchone()[0] == 0:
                    problem(f"{where}: the client registry is empty: nobody could call "
                            "(`dkw clients add --database URL ID --role ROLE`)")
            except psycopg.Error:
                problem(f"{where}: no client registry yet (start once, then `dkw clients add --database URL ...`)")


def _schema(execute: Callable, where: str, problem: Callable[[str], None]) -> None:
    """The recorded schema version: newer than this dkw is a problem; older is migrated at start."""
    try:
        version = execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    except Exception:  # no table yet: an empty database, migrated at the first start
        return
    if version > LATEST:
        problem(f"{where}: the database's schema is at version {version}, newer than this dkw knows ({LATEST}): "
                "upgrade dkw before serving from it")


def _ports(args: argparse.Namespace, problem: Callable[[str], None]) -> None:
    for port, flag in ((args.port, "--port"), (args.metrics_port, "--metrics-port")):
        if port is None or port == 0:
            continue
        try:
            args.port_free(args.host, port)
        except OSError as exc:
            problem(f"{flag}: {exc}")
    if args.metrics_port is not None and args.metrics_port != 0 and args.metrics_port == args.port:
        problem(f"--metrics-port {args.metrics_port} is also --port: give them different ports")
