"""`dkw submit`, `status`, `list`, `watch`, `result` and `cancel`: one command per RPC of a running
`dkw serve`, built on dkw.client, with one set of connection flags (`add_remote_arguments`) and `--json`.
`dkw clear --server`, `dkw validate --server` and `dkw audit --server` go through the same client.

Exit codes are dkw/cli.py's, the same for every command: a refusal exits with the code of its gRPC status
(dkw.server.client.exit_code_for), a connection that cannot be made with 3, bad arguments with 2. Every
module import that needs grpc happens inside a handler, so the command table builds without it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dkw.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, print_problems

if TYPE_CHECKING:
    from dkw.client import Client, Progress, Result

STATES = ("QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED")


def add_remote_arguments(p: argparse.ArgumentParser, *, required: bool = True, json_flag: bool = True) -> None:
    """`--server` and the connection flags every remote command shares, and `--json`."""
    p.add_argument("--server", required=required, metavar="HOST:PORT[,HOST:PORT]",
                   help="the service: one replica, several separated by commas (failover: the first that "
                   "answers), or a DNS name with several addresses (docs/api.md: Failover)")
    from dkw.server.tls import add_client_arguments

    add_client_arguments(p)
    if json_flag:
        p.add_argument("--json", action="store_true", help="JSON on stdout for scripts (docs/api.md: Commands)")


def client_from_args(args: argparse.Namespace) -> Client:
    """The Client of a command's connection flags (the token from --token or DKW_TOKEN)."""
    from dkw.client import Client

    return Client(args.server, tls_ca=getattr(args, "tls_ca", None), cert=getattr(args, "tls_cert", None),
                  key=getattr(args, "tls_key", None), token=getattr(args, "token", None) or os.environ.get("DKW_TOKEN"),
                  insecure=getattr(args, "insecure", False), server_name=getattr(args, "tls_server_name", None))


def run(args: argparse.Namespace, body: Callable[[Client], int], *, subject: str = "",
        nothing_was: str = "stored", suffix: str = "") -> int:
    """Call `body` with a connected client; a ClientError becomes its one line on stderr and its exit code
    (an invalid auction: every problem, one line each)."""
    from dkw.client import ClientError, InvalidRequest

    try:
        with client_from_args(args) as client:
            return body(client)
    except InvalidRequest as exc:
        if subject and exc.violations:
            print_problems(subject, exc.problems, nothing_was)
        else:
            print(f"dkw {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except ClientError as exc:
        print(f"dkw {args.command}: {exc}{suffix}", file=sys.stderr)
        return exc.exit_code


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False))


def read_input(path: str) -> bytes | None:
    """The bytes of AUCTION.json (`-`: standard input), or None after saying why not."""
    from dkw.files import read_bytes

    try:
        return read_bytes(path)
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return None


# ---- submit, status, list -----------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace) -> int:
    data = read_input(args.auction)
    if data is None:
        return EXIT_BAD_INPUT

    def body(client: Client) -> int:
        s = client.submit(data, key=args.key, time_limit=args.time_limit)
        if args.json:
            _print_json(s.__dict__)
        else:
            print(s.auction_id)  # alone on stdout, for scripts: ID=$(dkw submit ...)
            note = "stored" if s.created else "already stored under this key; nothing new was stored"
            print(f"{s.auction_id}: {s.state}, {note} (key {s.idempotency_key})", file=sys.stderr)
        return EXIT_OK

    return run(args, body, subject=args.auction)


def _result_figures(result: Result) -> dict[str, Any]:
    doc = result.document or {}
    solver = doc.get("solver") or {}
    return {"status": doc.get("status", ""), "objective_yen": doc.get("objective_yen"), "mip_gap": solver.get("mip_gap")}


def _state_line(result: Result) -> str:
    line = f"{result.auction_id}: {result.state}"
    if result.reason:
        line += f" ({result.reason})"
    if result.document is not None:
        f = _result_figures(result)
        gap = f", gap {f['mip_gap']:.2e}" if f["mip_gap"] is not None else ""
        line += f"; result {f['status']}, objective {f['objective_yen']:,.0f} yen{gap}"
    return line


def cmd_status(args: argparse.Namespace) -> int:
    def body(client: Client) -> int:
        r = client.status(args.auction_id)
        if args.json:
            _print_json({"auction_id": r.auction_id, "state": r.state, "reason": r.reason, **_result_figures(r)})
        else:
            print(_state_line(r))
        return EXIT_OK

    return run(args, body)


def since_date(text: str) -> datetime:
    """`--since`: an ISO date or date-time; without a zone, UTC."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+09:00])") from None


def cmd_list(args: argparse.Namespace) -> int:
    def body(client: Client) -> int:
        count = 0
        for info in client.list(state=args.state, since=args.since):
            count += 1
            if args.json:
                _print_json(info.to_json())
                continue
            objective = f"{info.objective_yen:,.0f}" if info.objective_yen is not None else "-"
            print(f"{info.received_at:%Y-%m-%dT%H:%M:%SZ}  {info.auction_id:<26} {info.state:<9} "
                  f"{info.status or '-':<22} {info.trading_date:<10}  {info.document_auction_id:<24} {objective}")
        if not args.json:
            print(f"{count} auction(s)", file=sys.stderr)
        return EXIT_OK

    return run(args, body)


# ---- watch, result, cancel ----------------------------------------------------------------------------


def progress_line(p: Progress) -> str:
    """Phase, elapsed, incumbent, bound, gap and the fast path's components (as `dkw clear` on a terminal)."""
    from dkw.progress import COMPONENTS, bar

    parts = [f"[{p.elapsed_s:7.1f} s] {p.phase}"]
    if p.message and not p.finished:
        match = COMPONENTS.search(p.message)
        if match:
            parts.append(bar(int(match.group(1)), int(match.group(2))))
        parts.append(p.message)
    if p.incumbent_yen is not None:
        parts.append(f"incumbent {p.incumbent_yen:,.0f}")
    if p.bound_yen is not None:
        parts.append(f"bound {p.bound_yen:,.0f}")
    if p.gap is not None:
        parts.append(f"gap {p.gap:.2e}")
    return "  ".join(parts)


def watch_exit_code(last: Progress | None) -> int:
    """0: DONE with a result that clears (OPTIMAL, TIME_LIMIT_FEASIBLE); 1: anything else."""
    from dkw.client import CLEARED

    if last is None or last.phase != "DONE" or last.result is None or last.result.document is None:
        return EXIT_FAILED
    return EXIT_OK if last.result.document.get("status") in CLEARED else EXIT_FAILED


def cmd_watch(args: argparse.Namespace) -> int:
    def body(client: Client) -> int:
        last, width, tty = None, 0, sys.stderr.isatty() and not args.json
        def resumed(error: Exception) -> None:
            print(f"{chr(10) if tty else ''}dkw watch: the stream was cut ({error}); following the auction again, on "
                  "another replica if need be", file=sys.stderr)

        for p in client.watch(args.auction_id, on_resume=resumed):
            last = p
            if args.json:
                figures = _result_figures(p.result) if p.result is not None else {}
                _print_json({k: v for k, v in p.__dict__.items() if k != "result"} | figures)
            elif tty:
                text = progress_line(p)
                sys.stderr.write("\r" + text.ljust(width))
                sys.stderr.flush()
                width = len(text)
            else:
                print(progress_line(p), file=sys.stderr)
        if tty and width:
            sys.stderr.write("\n")
        if not args.json and last is not None:
            print(_summary(last))
        return watch_exit_code(last)

    return run(args, body)


def _summary(last: Progress) -> str:
    """How the auction ended: the result's summary (as `dkw clear` prints it), or the state and reason."""
    if last.result is not None and last.result.document is not None:
        from dkw.clearing.result import ClearingResult

        try:
            summary = ClearingResult.from_document(last.result.document).summary_text()
        except (KeyError, TypeError, ValueError):  # a document this version cannot read: the figures only
            summary = _state_line(last.result)
        return f"{last.auction_id}: {last.phase}\n{summary}"
    return f"{last.auction_id}: {last.phase}" + (f" ({last.message})" if last.message else "")


def cmd_result(args: argparse.Namespace) -> int:
    from dkw.files import output_path_problem, write_json

    problem = output_path_problem(args.output)
    if problem is not None:
        print(f"dkw result: --output: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT

    def body(client: Client) -> int:
        r = client.result(args.auction_id, public_key=args.public_key)
        write_json(r.document, args.output)
        if args.public_key:
            from dkw.clearing.signing import jws_key_id

            print(f"{args.auction_id}: signature valid (key {jws_key_id(r.result_signature)})", file=sys.stderr)
        return EXIT_OK

    return run(args, body)


def cmd_cancel(args: argparse.Namespace) -> int:
    """Exit 0 when the auction ended (CANCELLED, or finished before: cancelling is idempotent)."""
    from dkw.client import FINISHED

    def body(client: Client) -> int:
        r = client.cancel(args.auction_id, args.reason)
        if args.json:
            _print_json({"auction_id": r.auction_id, "state": r.state, "reason": r.reason, **_result_figures(r)})
        else:
            kept = ""
            if r.document is not None:
                kept = f"; the best result found before the cancel is kept ({r.document['objective_yen']:,.0f} yen)"
            print(f"{args.auction_id}: {r.state}" + (f" ({r.reason})" if r.reason else "") + kept)
        return EXIT_OK if r.state in FINISHED else EXIT_FAILED

    return run(args, body)


# ---- validate --server, audit --server (their commands live with the local ones) -----------------------


def validate_remote(args: argparse.Namespace) -> int:
    """`dkw validate AUCTION.json --server ...`: the Validate RPC, under the server's market policy."""
    data = read_input(args.auction)
    if data is None:
        return EXIT_BAD_INPUT

    def body(client: Client) -> int:
        v = client.validate(data)
        problems = [{"path": path, "message": message} for path, message in v.problems]
        if args.json:
            _print_json({"auction": args.auction, "valid": v.valid, "problems": problems, "input_sha256": v.input_sha256,
                         "bids": v.bids, "requirements": v.requirements, "verdicts": v.verdicts,
                         "market_rules": v.market_rules})
        elif not v.valid:
            print_problems(args.auction, [f"{p['path']}: {p['message']}" if p["path"] else p["message"]
                                          for p in problems], "checked")
        else:
            summary = v.market_rules.get("summary", {})
            print(f"{args.auction}: valid ({v.bids} bids, {v.requirements} requirements; sha256 {v.input_sha256}) "
                  f"under the policy of {args.server}")
            for b in v.verdicts:
                why = b.get("reason") or b.get("left_out_because", "")
                flags = "".join(f" | FLAG {f.get('flag')}" for f in b.get("flags", []))
                print(f"{b.get('bid')}  {b.get('verdict')}  {b.get('clearing')}  {why}{flags}")
            if summary:
                count = {k: int(summary.get(k) or 0) for k in ("bids", "left_out", "flagged_bids")}  # Struct: doubles
                print(f"{count['bids']} bids; {count['left_out']} left out of the clearing; {count['flagged_bids']} "
                      "bids flagged")
        return EXIT_OK if v.valid else EXIT_BAD_INPUT

    return run(args, body, subject=args.auction, nothing_was="checked")


def audit_remote(args: argparse.Namespace, show: Callable[[list[dict[str, Any]]], None]) -> int:
    """`dkw audit --server ...`: ListAuditRecords (admin role), the newest `--limit` records, shown oldest first."""

    def body(client: Client) -> int:
        records = []
        for record in client.audit(client_id=args.client, page_size=min(args.limit, 1000)):
            records.append(record)
            if len(records) >= args.limit:
                break
        show(records[::-1])
        return EXIT_OK

    return run(args, body)


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0 (leave it out for the "
                                         "server's default)")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    try:
        import dkw.server.tls  # noqa: F401  (the gRPC client is part of the server package)
    except ModuleNotFoundError:
        return
    p = subparsers.add_parser("submit", help="store an auction on the service, cleared in the background; prints its id")
    p.add_argument("auction", metavar="AUCTION.json", help="the auction document (- for standard input)")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY", help="submitting again with the same key returns the same "
                   "auction (default: a fresh key, so retries on another replica never store it twice)")
    p.add_argument("--time-limit", type=positive_seconds, metavar="S", help="solver time limit (default: the server's)")
    add_remote_arguments(p)
    p.set_defaults(handler=cmd_submit)

    p = subparsers.add_parser("status", help="an auction's state, and its result's status and objective once done")
    p.add_argument("auction_id", metavar="ID", help="the server-assigned auction id (auc_...)")
    add_remote_arguments(p)
    p.set_defaults(handler=cmd_status)

    p = subparsers.add_parser("list", help="the stored auctions, newest first (every page)")
    p.add_argument("--state", choices=STATES, help="only auctions in this state")
    p.add_argument("--since", type=since_date, metavar="DATE", help="only auctions received since (UTC without a zone)")
    add_remote_arguments(p)
    p.set_defaults(handler=cmd_list)

    p = subparsers.add_parser("watch", help="an auction's progress (incumbent, bound, gap, components) until it ends, "
                              "then the summary; exit 0 DONE, 1 FAILED or CANCELLED")
    p.add_argument("auction_id", metavar="ID")
    add_remote_arguments(p)
    p.set_defaults(handler=cmd_watch)

    p = subparsers.add_parser("result", help="an auction's result document, its signature checked with --public-key")
    p.add_argument("auction_id", metavar="ID")
    p.add_argument("--output", "-o", metavar="FILE", help="write the result here (default: stdout)")
    p.add_argument("--public-key", metavar="PUB", help="check the server's signature over the signed bytes first "
                   "(exit 1 when it does not hold)")
    add_remote_arguments(p, json_flag=False)
    p.set_defaults(handler=cmd_result)

    p = subparsers.add_parser("cancel", help="cancel a stored auction (any replica); prints the state it ended in")
    p.add_argument("auction_id", metavar="ID", help="the server-assigned auction id (auc_...)")
    p.add_argument("--reason", default="", help="stored as the auction's reason")
    add_remote_arguments(p)
    p.set_defaults(handler=cmd_cancel)
