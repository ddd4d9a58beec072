"""`dkw replay DIR --out OUTDIR [--scenario NAME ...]`: rerun past auctions under what-if scenarios."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dkw.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, print_problems
from dkw.solvers.api import DEFAULT_TIME_LIMIT_S, MEMORY_GUARD_SHARE, SolveOptions, time_limit

SCENARIO_HELP = ("what-if scenario, repeatable; parts joined with '+' apply left to right: baseline, "
                 "no-cross-area (interconnectors at zero), reduction:F (requirements × F), cap:X (price cap "
                 "X 円/ΔkW·30分 on primary, secondary1 and composite), without:CATEGORY[,CATEGORY] (e.g. "
                 "device-point, low-voltage), price-rule (re-priced to the monitoring limit). The baseline is "
                 "always replayed too.")


def cmd_replay(args: argparse.Namespace) -> int:
    from dkw.clearing.replay.runner import ReplayConfig, ReplayInputError, replay

    if args.workers is not None and args.workers < 1:
        print(f"dkw replay: --workers {args.workers} must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.time_limit is not None and not args.time_limit > 0:
        print(f"dkw replay: --time-limit {args.time_limit} must be a positive number of seconds", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not 0 <= args.gap < 1:
        print(f"dkw replay: --gap {args.gap} must be in [0, 1)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:  # the same rule as dkw clear's
        SolveOptions(memory_limit_mb=args.memory_limit)
    except ValueError as exc:
        print(f"dkw replay: --memory-limit: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    config = ReplayConfig(
        input_dir=Path(args.dir), out_dir=Path(args.out), scenarios=list(args.scenario or []),
        workers=args.workers, force=args.force, dask_address=args.dask,
        eprx_files=[Path(p) for p in args.eprx or []], time_limit_s=args.time_limit, mip_rel_gap=args.gap,
        threads=args.threads, policy_file=Path(args.policy) if args.policy else None,
        memory_limit_mb=args.memory_limit,
        progress=sys.stderr.isatty() and not args.quiet,
    )
    try:
        outcome = replay(config, log=(lambda m: None) if args.quiet else None)
    except ReplayInputError as exc:
        print_problems("dkw replay", exc.problems, "replayed")
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"dkw replay: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    if not args.quiet:
        print(f"{len(outcome.days)} days × {len(outcome.scenarios)} scenarios: {len(outcome.cleared)} cleared, "
              f"{len(outcome.skipped)} skipped (done before), {len(outcome.failed)} failed")
        print(f"wrote {outcome.summary_path}" + (f" and {outcome.report_path}" if outcome.report_path else ""))
    if outcome.failed:
        print(f"dkw replay: {len(outcome.failed)} day × scenario run(s) failed:", file=sys.stderr)
        for _date, _scenario, message in outcome.failed:
            print(f"  {message}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay", help="replay past auctions (one document per trading day) under what-if scenarios",
        description="Clear every auction document in DIR under every scenario, verify each result "
                    "independently, and write OUTDIR/summary.csv, OUTDIR/days/<date>/<scenario>.result.json and "
                    "OUTDIR/report.md with plots. A historical result NAME.result.json beside NAME.json is laid "
                    "beside the replay. Finished day × scenario runs are skipped unless --force.")
    p.add_argument("dir", metavar="DIR", help="directory of auction documents, one per trading day")
    p.add_argument("--out", "-o", required=True, metavar="OUTDIR", help="where the replay is written")
    p.add_argument("--scenario", "-s", action="append", metavar="NAME", help=SCENARIO_HELP)
    p.add_argument("--workers", "-j", type=int, default=None, metavar="N",
                   help="worker processes (default: one per core; 1 clears in this process)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster (tcp://host:8786) instead of a local "
                   "pool; needs pip install 'dkw[dask]'")
    p.add_argument("--eprx", action="append", metavar="FILE.csv",
                   help="EPRX public result CSV (CP932) to lay beside the baseline replay, repeatable")
    p.add_argument("--force", action="store_true", help="clear again what an earlier run already finished")
    p.add_argument("--time-limit", type=time_limit, default=DEFAULT_TIME_LIMIT_S, metavar="S",
                   help=f"solver time limit per day × scenario (default {DEFAULT_TIME_LIMIT_S:g}; 'none': no limit)")
    p.add_argument("--gap", type=float, default=1e-6, metavar="G", help="relative MIP gap to prove (default 1e-06)")
    p.add_argument("--threads", type=int, default=1,
                   help="HiGHS threads per solve (default 1: the parallelism is over days)")
    p.add_argument("--memory-limit", type=float, default=None, metavar="MB",
                   help="memory ceiling of each clearing, so of each worker (resident MB): branch-and-bound stops "
                   f"with its best incumbent and bound at {MEMORY_GUARD_SHARE * 100:.0f}%% of it (default: none)")
    p.add_argument("--policy", metavar="FILE", help="market policy merged over the shipped one (README: Market rules)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary lines")
    p.set_defaults(handler=cmd_replay)
