"""The `dkw` command. Each subcommand lives beside the code it drives and registers itself here.

Exit codes, the same for every command (an operator's script tells what happened from the code alone;
the one line on stderr says why and what to do):

- 0 `EXIT_OK`: done (a result was produced, shortfall included);
- 1 `EXIT_FAILED`: the solve produced no result, a verification failed, an auction was not cancelled;
- 2 `EXIT_BAD_INPUT`: bad input: the document, the arguments, a configuration (files, URLs, ports),
  a request the server refused as invalid (INVALID_ARGUMENT);
- 3 `EXIT_UNREACHABLE`: the service cannot be reached: nothing listens, TLS does not agree (plaintext
  against TLS, an untrusted certificate, a missing client certificate), UNAVAILABLE after the retries,
  a deadline passed;
- 4 `EXIT_UNAUTHENTICATED`: the server does not know the caller (UNAUTHENTICATED: no, a wrong or a revoked
  token, a certificate naming no client);
- 5 `EXIT_PERMISSION_DENIED`: the caller's role may not do that (PERMISSION_DENIED);
- 6 `EXIT_NOT_FOUND`: no such auction (NOT_FOUND);
- 7 `EXIT_BUSY`: the server stayed busy through the retries (RESOURCE_EXHAUSTED);
- 130: interrupted (Ctrl-C).

Never a Python traceback. The gRPC codes map to these in one place, `dkw.server.client.exit_code_for`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_UNAUTHENTICATED = 4
EXIT_PERMISSION_DENIED = 5
EXIT_NOT_FOUND = 6
EXIT_BUSY = 7
EXIT_INTERRUPTED = 130

#: gRPC's C core logs TLS handshake failures and the like itself, as raw lines on stderr (and outside
#: `--log-format json`); every such failure is reported by dkw in one line of its own, so the core is
#: silenced before any command imports grpc. `GRPC_VERBOSITY=debug dkw ...` brings its lines back.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

#: Modules with `register(subparsers)`; each adds one or more subcommands.
COMMAND_MODULES = (
    "dkw.commands",  # clear, validate, verify, model
    "dkw.explain_command",  # explain
    "dkw.schema_command",  # schema
    "dkw.server.command",  # serve
    "dkw.server.clients_keys_audit_command",  # clients, keys, audit (the security commands)
    "dkw.remote_commands",  # submit, status, list, watch, result, cancel
    "dkw.clearing.replay.command",  # replay
    "dkw.bench.command",  # bench
)


def version_text() -> str:
    """`dkw --version`: the package, the solver and the formats it reads and writes."""
    from importlib.metadata import PackageNotFoundError, version

    import highspy

    from dkw.clearing.model import AUCTION_FORMAT, RESULT_FORMAT

    try:
        ours = version("dkw")
    except PackageNotFoundError:  # run from a source tree that was never installed
        ours = "unknown"
    highs = f"{highspy.HIGHS_VERSION_MAJOR}.{highspy.HIGHS_VERSION_MINOR}.{highspy.HIGHS_VERSION_PATCH}"
    return f"dkw {ours} (HiGHS {highs}; Python {sys.version.split()[0]}; formats {AUCTION_FORMAT}, {RESULT_FORMAT})"


class _VersionAction(argparse.Action):
    """Like argparse's `version`, but the text (which imports highspy) is built only when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


#: What the console fallback writes for characters a legacy console (cp932, cp1252...) cannot show.
CONSOLE_FALLBACK = {"·": "・", "Δ": "d", "−": "-", "→": "->", "≥": ">=", "≤": "<=", "×": "x", "…": "...",
                    "①": "(1)", "②": "(2)", "③": "(3)", "○": "o", "△": "^"}


def _console_fallback(exc: UnicodeError):
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    text = "".join(CONSOLE_FALLBACK.get(ch, "?") for ch in exc.object[exc.start:exc.end])
    try:
        text.encode(exc.encoding)
    except UnicodeEncodeError:
        text = text.encode("ascii", "replace").decode("ascii")
    return text, exc.end


def use_console_fallback() -> None:
    """Never crash on a console whose encoding lacks a character we print (a cp932 console has no `·`):
    substitute a near equivalent (or `?`). JSON on stdout stays lossless (escaped, see write_json)."""
    import codecs

    codecs.register_error("dkw-console", _console_fallback)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and getattr(stream, "errors", "strict") == "strict":
            stream.reconfigure(errors="dkw-console")


def print_problems(subject: str, problems: Sequence[object], nothing_was: str = "cleared") -> None:
    """Every problem of a refused input, one line each, on stderr (exit code 2 follows)."""
    print(f"{subject}: {len(problems)} problem(s), nothing was {nothing_was}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dkw", description="Clearing service for Japan's balancing market "
                                     "(需給調整市場): clear ΔkW auctions as a MILP with HiGHS.")
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
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
    use_console_fallback()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
