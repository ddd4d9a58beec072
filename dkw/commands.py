"""`dkw clear`, `dkw validate` and `dkw verify`: the in-process clearing commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clearing.document import InvalidAuction, load_auction_file, parse_document
from clearing.model import Auction
from dkw.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from solvers.highs import DEFAULT_MIP_REL_GAP, SolveOptions


def print_problems(path: str, exc: InvalidAuction) -> None:
    print(f"{path}: {len(exc.problems)} problem(s), nothing was cleared:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def read_auction(path: str) -> Auction | None:
    """The validated auction, or None after printing every problem (and the file error) to stderr."""
    try:
        return load_auction_file(path)
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
    except InvalidAuction as exc:
        print_problems(path, exc)
    return None


def solve_options(args: argparse.Namespace) -> SolveOptions | None:
    try:
        return SolveOptions(time_limit_s=args.time_limit, mip_rel_gap=args.gap, threads=args.threads)
    except ValueError as exc:
        print(f"dkw: {exc}", file=sys.stderr)
        return None


def write_json(doc: dict, output: str | None) -> None:
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    if output is None or output == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(output).write_text(text + "\n", encoding="utf-8")


def cmd_clear(args: argparse.Namespace) -> int:
    options = solve_options(args)
    if options is None:
        return EXIT_BAD_INPUT
    if getattr(args, "server", None):
        from server.client import clear_remote  # the gRPC path, when the server package provides it

        return clear_remote(args, options)
    auction = read_auction(args.auction)
    if auction is None:
        return EXIT_BAD_INPUT
    from clearing.engine import clear
    from clearing.verify import verify_result

    progress = None
    if sys.stderr.isatty() and not args.quiet:
        from dkw.progress import TerminalProgress

        progress = TerminalProgress()
    result = clear(auction, options, progress=progress)
    if progress is not None:
        progress.close()
    doc = result.to_document()
    problems = verify_result(auction, doc, excluded={r.bid for r in result.rejected_bids})
    write_json(doc, args.output)
    if not args.quiet:
        print(result.summary_text(), file=sys.stderr if args.output in (None, "-") else sys.stdout)
    if problems:
        print(f"verification failed ({len(problems)} problems):", file=sys.stderr)
        for p in problems[:20]:
            print(f"  {p}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if result.status in ("OPTIMAL", "TIME_LIMIT_FEASIBLE") else EXIT_FAILED


def cmd_verify(args: argparse.Namespace) -> int:
    auction = read_auction(args.auction)
    if auction is None:
        return EXIT_BAD_INPUT
    try:
        result = parse_document(Path(args.result).read_bytes())
    except OSError as exc:
        print(f"{args.result}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InvalidAuction as exc:
        print_problems(args.result, exc)
        return EXIT_BAD_INPUT
    if not isinstance(result, dict):
        print(f"{args.result}: the result must be a JSON object", file=sys.stderr)
        return EXIT_BAD_INPUT
    from clearing.verify import verify_result

    excluded = {r["bid"] for r in result.get("rejected_bids", []) if isinstance(r, dict) and "bid" in r}
    problems = verify_result(auction, result, excluded=excluded)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} violation(s)", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.result}: feasible under SPEC §3, costs consistent (objective {result.get('objective_yen')})")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    auction = read_auction(args.auction)
    if auction is None:
        return EXIT_BAD_INPUT
    print(f"{args.auction}: valid auction {auction.auction_id} ({len(auction.bids)} bids, "
          f"{len(auction.requirements)} requirements)")
    return EXIT_OK


def add_solve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="solver time limit in seconds")
    p.add_argument("--gap", type=float, default=DEFAULT_MIP_REL_GAP, metavar="G",
                   help=f"relative MIP gap to prove (default {DEFAULT_MIP_REL_GAP:g})")
    p.add_argument("--threads", type=int, default=None, help="HiGHS threads (default: HiGHS's choice)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("clear", help="clear an auction document and write the result document")
    p.add_argument("auction", metavar="AUCTION.json")
    p.add_argument("--output", "-o", metavar="RESULT.json", help="write the result here (default: stdout)")
    add_solve_arguments(p)
    p.add_argument("--server", metavar="HOST:PORT", help="clear through a running `dkw serve` instead")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary, no progress")
    p.set_defaults(handler=cmd_clear)

    p = subparsers.add_parser("validate", help="check an auction document without clearing it")
    p.add_argument("auction", metavar="AUCTION.json")
    p.set_defaults(handler=cmd_validate)

    p = subparsers.add_parser("verify", help="check a result document against its auction, independently")
    p.add_argument("auction", metavar="AUCTION.json")
    p.add_argument("result", metavar="RESULT.json")
    p.set_defaults(handler=cmd_verify)
