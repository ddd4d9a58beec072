"""`dkw clear`, `dkw validate`, `dkw verify` and `dkw model`: the clearing commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import TYPE_CHECKING

from dkw.clearing.document import InvalidAuction, Problem, load_auction, parse_document
from dkw.clearing.model import Auction
from dkw.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, print_problems
from dkw.files import STDIN, output_path_problem, read_bytes, write_json  # noqa: F401  (re-exported)
from dkw.solvers.api import DEFAULT_MIP_REL_GAP, DEFAULT_TIME_LIMIT_S, MEMORY_GUARD_SHARE, SolveOptions, time_limit

if TYPE_CHECKING:
    from dkw.clearing.rules import Policy


def load_auction_path(path: str) -> Auction:
    """Read and validate an auction document (`-`: standard input); `input_sha256` is of its canonical JSON."""
    return load_auction(parse_document(read_bytes(path)))


def auction_problems(path: str) -> tuple[Auction | None, list[Problem]]:
    """The validated auction, or None and every problem (a file error is one problem without a path)."""
    try:
        return load_auction_path(path), []
    except OSError as exc:
        return None, [Problem("", f"cannot read {path}: {exc.strerror or exc}")]
    except InvalidAuction as exc:
        return None, exc.problems


def read_auction(path: str) -> Auction | None:
    """The validated auction, or None after printing every problem (and the file error) to stderr."""
    try:
        return load_auction_path(path)
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
    except InvalidAuction as exc:
        print_problems(path, exc.problems)
    return None


def options_from_args(args: argparse.Namespace) -> SolveOptions | None:
    try:
        extra = {"method": args.method} if getattr(args, "method", None) else {}
        return SolveOptions(time_limit_s=args.time_limit, mip_rel_gap=args.gap, threads=args.threads,
                            memory_limit_mb=getattr(args, "memory_limit", None), **extra)
    except ValueError as exc:
        print(f"dkw: {exc}", file=sys.stderr)
        return None


def write_result(doc: dict, output: str | None) -> bool:
    """Write the result; if the file cannot be written after all (the disk filled, the directory went
    away), keep the result in a temporary file and say where, so a long solve is never lost."""
    try:
        write_json(doc, output)
        return True
    except OSError as exc:
        fd, kept = tempfile.mkstemp(prefix="dkw-result-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"dkw clear: cannot write {output}: {exc.strerror or exc}; the result is kept in {kept}",
              file=sys.stderr)
        return False


def cmd_clear(args: argparse.Namespace) -> int:
    """Clear here or on `--server`; either way the result is verified here, independently of whoever
    cleared it, before it is written and the exit code chosen."""
    options = options_from_args(args)
    if options is None:
        return EXIT_BAD_INPUT
    problem = output_path_problem(args.output)
    if problem is not None:
        print(f"dkw clear: --output: {problem}; nothing was cleared", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.server and options.memory_limit_mb is not None:  # the API carries no memory ceiling
        print("dkw clear: --memory-limit applies to a clearing here; a server's memory is its own "
              "(dkw serve --memory-limit); nothing was cleared", file=sys.stderr)
        return EXIT_BAD_INPUT
    cleared = clear_on_server(args, options) if args.server else clear_here(args, options)
    if isinstance(cleared, int):
        return cleared
    auction, result, doc, note = cleared
    from dkw.clearing.verify import verify_result

    # rechecks every figure and price; in process also re-judges the rules' verdicts under the policy (a
    # server clears under its own, which `dkw verify --policy` can check against)
    left_out = {r.bid for r in result.left_out} if args.server else None
    problems = verify_result(auction, doc, left_out=left_out, policy_file=args.policy)
    written = write_result(doc, args.output)
    if not args.quiet:
        out = sys.stderr if args.output in (None, "-") else sys.stdout
        print(result.summary_text(), file=out)
        if note:
            print(note, file=out)
    if problems:
        print(f"verification failed ({len(problems)} problems):", file=sys.stderr)
        for p in problems[:20]:
            print(f"  {p}", file=sys.stderr)
        return EXIT_FAILED
    if not written:
        return EXIT_FAILED
    return EXIT_OK if result.status in ("OPTIMAL", "TIME_LIMIT_FEASIBLE") else EXIT_FAILED


def clear_here(args: argparse.Namespace, options: SolveOptions):
    """(auction, result, result document, note) cleared in this process, or an exit code."""
    inputs = read_auction_and_policy(args)
    if inputs is None:
        return EXIT_BAD_INPUT
    auction, policy = inputs
    from dkw.clearing.engine import clear

    progress = None
    if sys.stderr.isatty() and not args.quiet:
        from dkw.progress import TerminalProgress

        progress = TerminalProgress()
    result = clear(auction, options, progress=progress, policy=policy)
    if progress is not None:
        progress.close()
    return auction, result, result.to_document(), ""


def clear_on_server(args: argparse.Namespace, options: SolveOptions):
    """(auction, result, result document, note) cleared by the `dkw serve` at `args.server` (one replica or
    several, dkw.client), or an exit code."""
    if args.policy:
        print("dkw clear: --policy applies to in-process clearing; a server clears under its own policy",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    from dkw.clearing.result import ClearingResult
    from dkw.remote_commands import read_input, run  # the gRPC path, where installed

    path = args.auction
    data = read_input(path)
    if data is None:
        return EXIT_BAD_INPUT
    cleared: list = []

    def body(client) -> int:
        # no --time-limit: the server's default, not this command's (the server bounds its clearings)
        given = getattr(args, "time_limit_given", True)
        time_limit = (options.time_limit_s if options.time_limit_s is not None else float("inf")) if given else None
        cleared.append(client.clear(data, time_limit=time_limit, gap=options.mip_rel_gap, threads=options.threads,
                                    method=options.method))
        return EXIT_OK

    code = run(args, body, subject=path, nothing_was="cleared", suffix="; nothing was cleared")
    if not cleared:
        return code
    result = cleared[0]
    try:  # the server accepted these bytes, so this does not fail
        auction = load_auction(parse_document(data))
    except InvalidAuction as exc:
        print_problems(path, exc.problems)
        return EXIT_BAD_INPUT
    return (auction, ClearingResult.from_document(result.document), result.document,
            f"  cleared by {args.server}, stored as {result.auction_id}")


def read_result(path: str) -> dict | None:
    """A result document as a JSON object (`-`: standard input), or None after saying what is wrong."""
    try:
        result = parse_document(read_bytes(path))
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return None
    except InvalidAuction as exc:
        print_problems(path, exc.problems, "checked")
        return None
    if not isinstance(result, dict):
        print(f"{path}: the result must be a JSON object", file=sys.stderr)
        return None
    return result


def cmd_verify(args: argparse.Namespace) -> int:
    inputs = read_auction_and_policy(args)
    if inputs is None:
        return EXIT_BAD_INPUT
    auction, _ = inputs
    obj = read_result(args.result)
    if obj is None:
        return EXIT_BAD_INPUT
    from dkw.result_input import UnreadableResult, claimed_key, read_result_input, signature_problem, with_legacy_input_hash

    try:  # a result document, or a Clear/GetResult response as grpcurl prints it
        given = read_result_input(obj)
    except UnreadableResult as exc:
        print(f"{args.result}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = given.document
    if args.public_key:
        from dkw.clearing.signing import KeyFileError, load_public_key

        try:
            why, kid = signature_problem(given, load_public_key(args.public_key))
        except KeyFileError as exc:
            print(f"dkw verify: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if why is not None:
            print(f"{args.result}: signature check failed: {why}", file=sys.stderr)
            return EXIT_FAILED
        print(f"{args.result}: signature valid (key {kid})")
    elif claimed_key(given) is not None:
        print(f"{args.result}: signed by key {claimed_key(given)!r}; not checked (give --public-key)", file=sys.stderr)
    auction, note = with_legacy_input_hash(auction, result, None if args.auction == STDIN else read_bytes(args.auction))
    from dkw.clearing.verify import verify_result

    notes: list[str] = [note] if note else []
    problems = verify_result(auction, result, policy_file=args.policy, notes=notes)
    for p in problems:
        print(p)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} violation(s)", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.result}: feasible; objective, costs, payments and their total, area summary and prices "
          f"recomputed and equal; rejected bids as the policy judges them (objective {result.get('objective_yen')})")
    return EXIT_OK


def read_auction_and_policy(args: argparse.Namespace) -> tuple[Auction, Policy] | None:
    """`args.auction` validated and `args.policy` loaded, or None after printing what is wrong."""
    auction = read_auction(args.auction)
    if auction is None:
        return None
    policy = read_policy(args.policy)
    return None if policy is None else (auction, policy)


def read_policy(path: str | None):
    """The market policy (the shipped one, or FILE merged over it), or None after printing its problems."""
    from dkw.clearing.rules import PolicyError, load_policy

    try:
        return load_policy(path)
    except PolicyError as exc:
        print(f"{path}: {len(exc.problems)} problem(s) in the policy:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    """Structural check (exit 2 on any problem), then the market rules per bid (SPEC §5): verdicts and
    monitoring flags are findings about bids, not errors of the document, so they exit 0. With --json,
    a document with problems gives `{"valid": false, "problems": [{path, message}]}` on stdout, exit 2.
    With --server, the service judges it (the Validate RPC, under the server's policy)."""
    if getattr(args, "server", None):
        if args.policy:
            print("dkw validate: --policy applies here; a server judges under its own policy", file=sys.stderr)
            return EXIT_BAD_INPUT
        from dkw.remote_commands import validate_remote

        return validate_remote(args)
    if args.json:
        auction, problems = auction_problems(args.auction)
        if auction is None:
            write_json({"auction": args.auction, "valid": False,
                        "problems": [{"path": p.path, "message": p.message} for p in problems]}, None)
            return EXIT_BAD_INPUT
        policy = read_policy(args.policy)
        if policy is None:
            write_json({"auction": args.auction, "valid": False,
                        "problems": [{"path": "--policy", "message": f"{args.policy}: see the problems on stderr"}]},
                       None)
            return EXIT_BAD_INPUT
    else:
        inputs = read_auction_and_policy(args)
        if inputs is None:
            return EXIT_BAD_INPUT
        auction, policy = inputs
    from dkw.clearing.rules import validate_auction

    validation = validate_auction(auction, policy)
    doc = validation.to_document()
    if args.json:
        write_json({"auction": args.auction, "valid": True, "problems": [], **doc}, None)
        return EXIT_OK
    summary = doc["summary"]
    caps = doc["price_caps"]
    cap_text = ", ".join(f"{c['product']} {c['yen_per_kw_h']:g}" for c in caps["caps"]) or "none"
    print(f"{args.auction}: valid auction {auction.auction_id}, trading date {auction.trading_date} "
          f"({len(auction.bids)} bids, {len(auction.requirements)} requirements)")
    print(f"policy {policy.version} ({policy.source}); price caps yen/kW·h from the "
          f"{caps['source']}{' (' + caps['schedule_entry'] + ')' if caps.get('schedule_entry') else ''}, "
          f"{caps['mode']}: {cap_text}")
    rows = [b for b in doc["bids"] if not args.problems or b["verdict"] != "ELIGIBLE" or b["flags"]
            or b["clearing"] == "LEFT_OUT"]
    if rows:
        width = max(len("bid"), *(len(b["bid"]) for b in rows))
        print(f"{'bid':<{width}}  {'verdict':<21}  {'clearing':<8}  reasons / flags")
        for b in rows:
            notes = list(b["reasons"])
            if "left_out_because" in b:
                notes.append(f"{b['left_out_because']['verdict']}: {b['left_out_because']['reason']}")
            if b["verdict"] == "NOT_YET_PERMITTED" and b["opening"]:
                notes.append(f"opens {b['opening']}")
            notes += [f"FLAG {f['flag']}: price {f['price_yen_per_kw_h']:g} > limit {f['limit_yen_per_kw_h']:.6g} "
                      f"({f['rule']}, {f['term_ja']})" for f in b["flags"]]
            print(f"{b['bid']:<{width}}  {b['verdict']:<21}  {b['clearing']:<8}  {' | '.join(notes)}")
    by_verdict = ", ".join(f"{v} {n}" for v, n in summary["by_verdict"].items())
    print(f"{summary['bids']} bids: {by_verdict}; {summary['left_out']} left out of the clearing; "
          f"{summary['flagged_bids']} bids flagged ({summary['flags']} flags)")
    return EXIT_OK


def cmd_model(args: argparse.Namespace) -> int:
    """The MILP that `dkw clear` would solve, as its families and sizes, and with --lp as an LP file."""
    inputs = read_auction_and_policy(args)
    if inputs is None:
        return EXIT_BAD_INPUT
    auction, policy = inputs
    from dkw.clearing.formulation import formulate
    from dkw.clearing.index import build_index
    from dkw.clearing.rules import prepare_clearing

    auction, left_out, _ = prepare_clearing(auction, policy)
    form = formulate(build_index(auction, left_out))
    c = form.columns
    print(f"{auction.auction_id}: {c.num_cols} columns ({int(c.integrality.sum())} binary), "
          f"{sum(len(rows.keys) for rows in form.families)} rows; {len(left_out)} bids left out")
    for group in c.groups:
        print(f"  column {group.name}[{', '.join(group.key_names)}]: {len(group.keys)}")
    for rows in form.families:
        print(f"  rows {rows.name}[{', '.join(rows.key_names)}]: {len(rows.keys)}")
    if args.lp:
        from dkw.solvers.pyomo_model import build_pyomo_model, write_lp

        model, _, _ = build_pyomo_model(form)
        write_lp(model, args.lp)
        print(f"LP file written to {args.lp}")
    return EXIT_OK


class _Given(argparse.Action):
    """Store the value and note that it was given (`ARG_given`): `dkw clear --server` sends a time limit
    only when one was asked for, leaving the default to the server."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def add_solve_arguments(p: argparse.ArgumentParser) -> None:
    p.set_defaults(time_limit_given=False)
    p.add_argument("--time-limit", type=time_limit, default=DEFAULT_TIME_LIMIT_S, metavar="S", action=_Given,
                   help=f"solver time limit in seconds (default {DEFAULT_TIME_LIMIT_S:g}, with --server the server's; "
                   "'none': no limit); at the limit the result carries the best incumbent and the best proven bound")
    p.add_argument("--gap", type=float, default=DEFAULT_MIP_REL_GAP, metavar="G",
                   help=f"relative MIP gap to prove (default {DEFAULT_MIP_REL_GAP:g})")
    p.add_argument("--threads", type=int, default=None, help="HiGHS threads (default: HiGHS's choice)")
    p.add_argument("--memory-limit", type=float, default=None, metavar="MB",
                   help="memory ceiling of the clearing (resident MB): branch-and-bound stops with its best "
                   f"incumbent and bound at {MEMORY_GUARD_SHARE * 100:.0f}%% of it (default: none)")
    p.add_argument("--method", choices=("fast", "straight"), default=None,
                   help="fast: arrays + independent components; straight: one Pyomo model (default: "
                   f"{SolveOptions().method})")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("clear", help="clear an auction document and write the result document")
    p.add_argument("auction", metavar="AUCTION.json", help="the auction document (- for standard input)")
    p.add_argument("--output", "-o", metavar="RESULT.json", help="write the result here (default: stdout)")
    add_solve_arguments(p)
    p.add_argument("--server", metavar="HOST:PORT", help="clear through a running `dkw serve` instead")
    add_connection_arguments(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no summary, no progress")
    p.add_argument("--policy", metavar="FILE", help="market policy merged over the shipped one (README: Market rules)")
    p.set_defaults(handler=cmd_clear)

    p = subparsers.add_parser("validate", help="check an auction document and judge its bids under the market rules")
    p.add_argument("auction", metavar="AUCTION.json", help="the auction document (- for standard input)")
    p.add_argument("--json", action="store_true", help="the verdicts as a JSON document on stdout")
    p.add_argument("--policy", metavar="FILE", help="market policy merged over the shipped one (README: Market rules)")
    p.add_argument("--problems", action="store_true", help="list only bids that are ineligible, left out or flagged")
    p.add_argument("--server", metavar="HOST:PORT[,HOST:PORT]", help="validate through a running `dkw serve` "
                   "instead (the Validate RPC, under the server's policy)")
    add_connection_arguments(p)
    p.set_defaults(handler=cmd_validate)

    p = subparsers.add_parser("model", help="show the MILP an auction clears as (its constraint families), or "
                              "write it as an LP file")
    p.add_argument("auction", metavar="AUCTION.json")
    p.add_argument("--lp", metavar="FILE", help="write the Pyomo model as an LP file a person can read")
    p.add_argument("--policy", metavar="FILE", help="market policy merged over the shipped one (README: Market rules)")
    p.set_defaults(handler=cmd_model)

    p = subparsers.add_parser("verify", help="check a result document against its auction, independently")
    p.add_argument("auction", metavar="AUCTION.json")
    p.add_argument("result", metavar="RESULT.json", help="the result document, or a Clear/GetResult response as grpcurl "
                   "prints it (its resultJson is what the signature covers)")
    p.add_argument("--policy", metavar="FILE", help="the policy the result was cleared under (its verdicts and price "
                   "caps); a result naming another policy than the one checked against is refused")
    p.add_argument("--public-key", metavar="FILE", help="also check the result's signature against this Ed25519 "
                   "public key (`dkw keys new`, `dkw serve --signing-key`)")
    p.set_defaults(handler=cmd_verify)


def add_connection_arguments(p: argparse.ArgumentParser) -> None:
    """--tls-ca/--tls-cert/--tls-key/--token, when the server package provides them."""
    try:
        from dkw.server.tls import add_client_arguments
    except ModuleNotFoundError:
        return
    add_client_arguments(p)
