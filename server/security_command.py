"""`dkw clients`, `dkw keys` and `dkw audit`: managing who may call the server, the result-signing key,
and reading the audit trail offline."""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from pathlib import Path

from dkw.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from server.auth import ROLES, ClientsFileError, add_client, read_clients, write_clients

CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def cmd_clients_add(args: argparse.Namespace) -> int:
    if args.max_active is not None and args.max_active < 1:
        print(f"dkw clients add: --max-active {args.max_active} must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not CLIENT_ID.fullmatch(args.id):
        print(f"dkw clients add: client id {args.id!r} must be 1-64 letters, digits, '.', '_' or '-' (it is matched "
              "against client certificates' CN and shown in the audit trail)", file=sys.stderr)
        return EXIT_BAD_INPUT
    path = Path(args.file)
    try:
        existed = path.exists() and args.id in read_clients(path)
        token = add_client(path, args.id, args.role, args.max_active)
    except (ClientsFileError, OSError) as exc:
        print(f"dkw clients add: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(token)  # alone on stdout, for scripts; shown once, never stored
    print(f"{'rotated' if existed else 'added'} client {args.id!r} (role {args.role}) in {path}; the token above "
          "is shown only this once", file=sys.stderr)
    return EXIT_OK


def cmd_clients_remove(args: argparse.Namespace) -> int:
    try:
        clients = read_clients(args.file)
    except ClientsFileError as exc:
        print(f"dkw clients remove: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.id not in clients:
        print(f"dkw clients remove: {args.file}: no client {args.id!r} (clients: {', '.join(sorted(clients)) or 'none'})",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    del clients[args.id]
    write_clients(args.file, clients)
    print(f"removed client {args.id!r} from {args.file}; its token no longer works", file=sys.stderr)
    return EXIT_OK


def cmd_clients_list(args: argparse.Namespace) -> int:
    try:
        clients = read_clients(args.file)
    except ClientsFileError as exc:
        print(f"dkw clients list: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for c in sorted(clients.values(), key=lambda c: c.id):
        limit = f"  max_active {c.max_active}" if c.max_active else ""
        print(f"{c.id}  {c.role}  created {c.created_at or '?'}{limit}")
    return EXIT_OK


def cmd_keys_new(args: argparse.Namespace) -> int:
    from clearing.signing import new_key_pair

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
    """The audit trail read straight from the server's database (the server may be running or not)."""
    from server.audit import AuditTrail
    from server.storage import SqliteStorage

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
    records.reverse()  # oldest first, like a log
    if args.json:
        for r in records:
            print(json.dumps(r.to_json(), ensure_ascii=False))
        return EXIT_OK
    for r in records:
        print(f"{r.at}  {r.client_id:<16} {r.status_code:<18} {r.method:<16} {r.auction_id or '-':<24} {r.peer}"
              f"{'  ' + r.detail if r.detail else ''}")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("clients", help="manage the clients file of `dkw serve --clients` (ids, roles, tokens)")
    sub = p.add_subparsers(dest="clients_command", metavar="ACTION", required=True)
    a = sub.add_parser("add", help="create a client or rotate its token; prints the new token once, alone on stdout")
    a.add_argument("file", metavar="FILE")
    a.add_argument("id", metavar="ID")
    a.add_argument("--role", choices=ROLES, required=True)
    a.add_argument("--max-active", type=int, default=None, metavar="N",
                   help="this client's cap on auctions queued or running (default: the server's)")
    a.set_defaults(handler=cmd_clients_add)
    r = sub.add_parser("remove", help="remove a client: its token stops working")
    r.add_argument("file", metavar="FILE")
    r.add_argument("id", metavar="ID")
    r.set_defaults(handler=cmd_clients_remove)
    ls = sub.add_parser("list", help="list the clients (never their tokens)")
    ls.add_argument("file", metavar="FILE")
    ls.set_defaults(handler=cmd_clients_list)

    p = subparsers.add_parser("keys", help="result-signing keys")
    sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    k = sub.add_parser("new", help="make an Ed25519 key pair for `dkw serve --signing-key` and `dkw verify --public-key`")
    k.add_argument("private", metavar="PRIVATE_FILE")
    k.add_argument("public", metavar="PUBLIC_FILE")
    k.set_defaults(handler=cmd_keys_new)

    p = subparsers.add_parser("audit", help="print the server's audit trail (oldest first) from its data directory")
    p.add_argument("--data", default="./var", metavar="DIR", help="the server's --data directory (default ./var)")
    p.add_argument("--limit", type=int, default=1000, metavar="N", help="the newest N records (default 1000)")
    p.add_argument("--client", metavar="ID", help="only this client's calls")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_audit)
