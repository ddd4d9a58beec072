"""The `dkw` command. Each subcommand lives beside the code it drives and registers itself here.

Exit codes: 0 a result was produced (shortfall included), 1 the solve produced no result (or a
verification failed), 2 bad input (the document or the arguments), never a Python traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

#: Modules with `register(subparsers)`; each adds one or more subcommands.
COMMAND_MODULES = (
    "dkw.commands",  # clear, validate, verify, model
    "server.command",  # serve
    "server.security_command",  # clients, keys, audit
    "clearing.replay.command",  # replay
    "bench.command",  # bench
)


def print_problems(subject: str, problems: Sequence[object], nothing_was: str = "cleared") -> None:
    """Every problem of a refused input, one line each, on stderr (exit code 2 follows)."""
    print(f"{subject}: {len(problems)} problem(s), nothing was {nothing_was}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dkw", description="Clearing service for Japan's balancing market "
                                     "(需給調整市場): clear ΔkW auctions as a MILP with HiGHS.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # that part of the product is not installed in this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
