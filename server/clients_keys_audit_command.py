"""`dkw clients`, `dkw keys` and `dkw audit`: managing who may call the server, the result-signing key,
and reading the audit trail offline."""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

from dkw.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from dkw.server.auth import ROLES, ClientsFileError, read_clients
from dkw.server.registry import DatabaseRegistry, FileRegistry, issue_token

CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")



def open_database(url: str, command: str) -> Any | None:
    """The store at `--database URL` for a maintenance command, or None after one line on stderr saying
    why not (psycopg's OperationalError, SchemaTooNew, a malformed URL ...)."""
    from dkw.server.command import open_storage

    try:
        return open_storage(url, ".")
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"dkw {command}: --database: {first_line}", file=sys.stderr)
        return None

def _registry(args: argparse.Namespace, action: str, with_id: bool = True) -> tuple[Any, str | None] | int:
    """(the clients file's or the database's registry, the client id), from `FILE ID` or `--database URL ID`;
    an exit code after saying what is wrong."""
    given = [a for a in (args.first, getattr(args, "second", None)) if a is not None]
    wanted = (1 if args.database else 2) if with_id else (0 if args.database else 1)
    if len(given) != wanted:
        form = "(FILE | --database URL)" + (" ID" if with_id else "")
        print(f"dkw clients {action}: give {form}, the clients file or the database and not both", file=sys.stderr)
        return EXIT_BAD_INPUT
    client_id = given[-1] if with_id else None
    if not args.database:
        return FileRegistry(given[0]), client_id
    storage = open_database(args.database, f"clients {action}")
    if storage is None:
        return EXIT_BAD_INPUT
    return DatabaseRegistry(storage), client_id


def _close(registry: Any) -> None:
    if isinstance(registry, DatabaseRegistry):
        registry.storage.close()


def cmd_clients_add(args: argparse.Namespace) -> int:
    if args.max_active is not None and args.max_active < 1:
        print(f"dkw clients add: --max-active {args.max_active} must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    found = _registry(args, "add")
    if isinstance(found, int):
        return found
    registry, client_id = found
    try:
        if not CLIENT_ID.fullmatch(client_id):
            print(f"dkw clients add: client id {client_id!r} must be 1-64 letters, digits, '.', '_' or '-' (it is "
                  "matched against client certificates' CN and shown in the audit trail)", file=sys.stderr)
            return EXIT_BAD_INPUT
        try:
            token, existed = issue_token(registry, client_id, args.role, args.max_active)
        except (ClientsFileError, OSError) as exc:
            print(f"dkw clients add: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    finally:
        _close(registry)
    print(token)  # alone on stdout, for scripts; shown once, never stored
    print(f"{'rotated' if existed else 'added'} client {client_id!r} (role {args.role}) in {registry.where}; the "
          "token above is shown only this once", file=sys.stderr)
    return EXIT_OK


def cmd_clients_remove(args: argparse.Namespace) -> int:
    found = _registry(args, "remove")
    if isinstance(found, int):
        return found
    registry, client_id = found
    try:
        clients = registry.load()
        if client_id not in clients:
            print(f"dkw clients remove: {registry.where}: no client {client_id!r} (clients: "
                  f"{', '.join(sorted(clients)) or 'none'})", file=sys.stderr)
            return EXIT_BAD_INPUT
        registry.remove(client_id)
    except ClientsFileError as exc:
        print(f"dkw clients remove: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        _close(registry)
    print(f"removed client {client_id!r} from {registry.where}; its token no longer works", file=sys.stderr)
    return EXIT_OK


def cmd_clients_list(args: argparse.Namespace) -> int:
    found = _registry(args, "list", with_id=False)
    if isinstance(found, int):
        return found
    registry, _ = found
    try:
        clients = registry.load()
    except ClientsFileError as exc:
        print(f"dkw clients list: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        _close(registry)
    for c in sorted(clients.values(), key=lambda c: c.id):
        limit = f"  max_active {c.max_active}" if c.max_active else ""
        print(f"{c.id}  {c.role}  created {c.created_at or '?'}  rotated {c.rotated_at or 'never'}{limit}")
    return EXIT_OK


def cmd_clients_import(args: argparse.Namespace) -> int:
    """A clients file's entries (their token hashes as they are: the tokens keep working) into the database."""
    try:
        clients = read_clients(args.file)
    except ClientsFileError as exc:
        print(f"dkw clients import: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    args.first = None
    found = _registry(args, "import", with_id=False)
    if isinstance(found, int):
        return found
    registry, _ = found
    try:
        before = registry.load()
        for client in clients.values():
            registry.put(client)
    finally:
        _close(registry)
    replaced = sorted(set(before) & set(clients))
    print(f"imported {len(clients)} client(s) from {args.file} into the database"
          + (f" (replaced: {', '.join(replaced)})" if replaced else "") + "; start the servers with --database URL "
          "--authenticate", file=sys.stderr)
    return EXIT_OK


def cmd_keys_new(args: argparse.Namespace) -> int:
    from dkw.clearing.signing import new_key_pair

    try:
        kid = new_key_pair(args.private, args.public)
    except FileExistsError:
        print(f"dkw keys new: {args.private} exists; not overwriting a key that may be in use", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"dkw keys new: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"key {kid}: private {args.private} (keep it on the server), public {args.public} (give it to "
          "whoever verifies results)")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    """The audit trail, oldest first: from a running server (`--server`, ListAuditRecords, admin role), or
    straight from its database (`--database URL`, or the SQLite file of `--data DIR`; running or not)."""
    if args.limit < 1:
        print(f"dkw audit: --limit {args.limit} must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.server and args.database:
        print("dkw audit: give --server or --database, not both", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.server:
        from dkw.remote_commands import audit_remote

        return audit_remote(args, lambda records: _show_audit(records, args.json))
    if args.database:
        return _audit_from_database(args)
    from dkw.server.audit import AuditTrail
    from dkw.server.sqlite import SqliteStorage

    path = Path(args.data) / SqliteStorage.FILENAME
    if not path.exists():
        print(f"dkw audit: {path}: no such database (is --data the server's data directory?)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        trail = AuditTrail.sqlite(path)
        records = trail.page(limit=args.limit, client_id=args.client)
        trail.close()
    except sqlite3.Error as exc:
        print(f"dkw audit: {path}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _show_audit([r.to_json() for r in reversed(records)], args.json)
    return EXIT_OK


def _audit_from_database(args: argparse.Namespace) -> int:
    """`--database URL`: the replicas' shared trail, read with the server's own storage code."""
    from dkw.server.command import open_audit

    storage = open_database(args.database, "audit")
    if storage is None:
        return EXIT_BAD_INPUT
    try:
        trail = open_audit(storage)
        try:
            records = trail.page(limit=args.limit, client_id=args.client)
        finally:
            trail.close()
    finally:
        storage.close()
    _show_audit([r.to_json() for r in reversed(records)], args.json)
    return EXIT_OK


def _show_audit(records: list[dict[str, Any]], as_json: bool) -> None:
    """Oldest first, like a log: one line each, or one JSON object each (every field there is)."""
    for r in records:
        if as_json:
            print(json.dumps(r, ensure_ascii=False))
            continue
        detail = r.get("detail") or ""
        print(f"{r['at']}  {r['client_id']:<16} {r['status_code']:<18} {r['method']:<16} {r['auction_id'] or '-':<24} "
              f"{r['peer']}{'  ' + detail if detail else ''}")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("clients", help="manage the clients of `dkw serve` (ids, roles, tokens): a clients "
                              "file (--clients FILE) or the database's registry (--database URL --authenticate)")
    sub = p.add_subparsers(dest="clients_command", metavar="ACTION", required=True)
    database = {"metavar": "URL", "help": "the database's client registry (shared by every replica) instead of a file"}
    a = sub.add_parser("add", help="create a client or rotate its token; prints the new token once, alone on stdout",
                       usage="dkw clients add (FILE | --database URL) ID --role ROLE [--max-active N]")
    a.add_argument("first", metavar="FILE")
    a.add_argument("second", metavar="ID", nargs="?")
    a.add_argument("--database", **database)
    a.add_argument("--role", choices=ROLES, required=True)
    a.add_argument("--max-active", type=int, default=None, metavar="N",
                   help="this client's cap on auctions queued or running (default: the server's)")
    a.set_defaults(handler=cmd_clients_add)
    r = sub.add_parser("remove", help="remove a client: its token stops working",
                       usage="dkw clients remove (FILE | --database URL) ID")
    r.add_argument("first", metavar="FILE")
    r.add_argument("second", metavar="ID", nargs="?")
    r.add_argument("--database", **database)
    r.set_defaults(handler=cmd_clients_remove)
    ls = sub.add_parser("list", help="list the clients (never their tokens)", usage="dkw clients list (FILE | --database URL)")
    ls.add_argument("first", metavar="FILE", nargs="?")
    ls.add_argument("--database", **database)
    ls.set_defaults(handler=cmd_clients_list)
    im = sub.add_parser("import", help="copy a clients file into the database's registry once (tokens keep working)")
    im.add_argument("file", metavar="FILE")
    im.add_argument("--database", metavar="URL", required=True)
    im.set_defaults(handler=cmd_clients_import)

    p = subparsers.add_parser("keys", help="result-signing keys")
    sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    k = sub.add_parser("new", help="make an Ed25519 key pair for `dkw serve --signing-key` and `dkw verify --public-key`")
    k.add_argument("private", metavar="PRIVATE_FILE")
    k.add_argument("public", metavar="PUBLIC_FILE")
    k.set_defaults(handler=cmd_keys_new)

    p = subparsers.add_parser("audit", help="print the audit trail (oldest first): from a running server (--server, "
                              "admin role), its database (--database URL) or its data directory (--data DIR)")
    p.add_argument("--data", default="./var", metavar="DIR", help="the server's --data directory (default ./var)")
    p.add_argument("--database", metavar="URL", help="the PostgreSQL database of the replicas (dkw serve --database)")
    p.add_argument("--limit", type=int, default=1000, metavar="N", help="the newest N records (default 1000)")
    p.add_argument("--client", metavar="ID", help="only this client's calls")
    from dkw.remote_commands import add_remote_arguments

    add_remote_arguments(p, required=False, json_flag=False)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_audit)
