"""`dkw bench` / `python -m dkw.bench`: national day-ahead auctions of growing size, straight vs fast.

For each size, one seeded document from `bench/casegen.py` (10 areas × 48 half-hours × 5 products) is
cleared both ways, each run in its own process (so peak RSS is per run, measured by polling the process
tree with psutil and by the child's own getrusage). Reported: build, solve, end to end (document bytes in
→ result document out), peak RSS, status, gap, and whether both reach the same objective (rel 1e-6).
A straight run that hits its time limit is reported as such, with its gap. Writes results.json and
results.md (by default bench/results.*, the current national results the README's performance table
quotes). Not a unit test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from dkw.bench.gaps import CHECKPOINTS_S, GAP_TARGETS, document_key, load_references, plot, split, summarise
from dkw.bench.midsize import DEFAULT_DOCUMENTS as DEFAULT_MID_DOCUMENTS
from dkw.bench.midsize import DEFAULT_SEEDS as DEFAULT_MID_SEEDS
from dkw.bench.peers import INSTALL_HINT, PEERS, cbc_binary, cbc_version, run_peers, scip_available, scip_version
from dkw.bench.peers import markdown as peers_markdown
from dkw.bench.run_one import measure, median_over_seeds

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SIZES = "5000,20000,50000,200000"
#: The targets of issue 5 (2 cores): end-to-end seconds and peak MB per size, and fast ≤ 0.5 × straight.
TARGETS = {50_000: (10.0, 1024.0), 200_000: (60.0, 2048.0)}
SAME_OBJECTIVE_REL = 1e-6


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmark the straight model against the fast path",
                              description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.set_defaults(handler=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default=DEFAULT_SIZES, help=f"bid counts, comma-separated (default {DEFAULT_SIZES})")
    p.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    p.add_argument("--methods", default="fast,straight", help="which paths to run (default fast,straight)")
    p.add_argument("--straight-limit", type=float, default=600.0, metavar="S",
                   help="time limit of a straight solve (default 600 s)")
    p.add_argument("--fast-limit", type=float, default=600.0, metavar="S",
                   help="time limit of a fast solve (default 600 s)")
    p.add_argument("--straight-max-size", type=int, default=None, metavar="N",
                   help="skip straight runs above N bids (they only hit the limit)")
    p.add_argument("--documents", default="", metavar="A.json,B.json",
                   help="also (or, with --sizes ''), bench these auction documents, e.g. the shared cases")
    p.add_argument("--repeat", type=int, default=1, help="runs per size and method; the table shows the fastest")
    p.add_argument("--out", default=None,
                   help="directory for results.json and results.md (default bench/, with --mid-size bench/midsize/)")
    p.add_argument("--carry-over", action="store_true",
                   help="for a method not run now, keep its figures from the results.json already in --out "
                   "(same document and seed), marked as carried over")
    p.add_argument("--note", default="", help="a line for results.md (e.g. how busy the machine was)")
    p.add_argument("--memory-limit", type=float, default=None, metavar="MB",
                   help="each clearing's memory ceiling (SolveOptions.memory_limit_mb; default none)")
    p.add_argument("--mid-size", action="store_true",
                   help="instead: mid-size auctions, both paths once per HiGHS seed (bench/midsize.py); "
                   "--straight-limit is both paths' limit")
    p.add_argument("--mid-documents", default=DEFAULT_MID_DOCUMENTS, metavar="SEED:BIDS:BLOCKS[:VARIANT],...",
                   help="with --mid-size: the generated documents; VARIANT full (default), nolinks or plain (no block "
                   f"bids, start-ups or links) (default {DEFAULT_MID_DOCUMENTS})")
    p.add_argument("--highs-seeds", type=int, default=None, metavar="N",
                   help="HiGHS random seeds 0..N-1: with --mid-size, per path and document (default "
                   f"{DEFAULT_MID_SEEDS}); on national sizes, per run of dkw and of HiGHS straight (--peers highs), "
                   "each row then the median run by gap, every seed's figures beside it (default 1: seed 0)")
    p.add_argument("--peers", default="", metavar="scip,highs,cbc",
                   help="also solve each document's straight model with these solvers at --fast-limit, side by side "
                   "with dkw (bench/peers.py): scip (SCIP through pyscipopt, 1 thread; pip install -e \".[bench]\"), "
                   "highs (dkw's straight method on HiGHS; this run's straight row when its limit is the same), "
                   "cbc (CBC, the binary pulp ships, 1 thread; the same extra)")
    p.add_argument("--render", action="store_true",
                   help="clear nothing: rewrite results.md (and the plot) from the results.json in --out "
                   "(default bench/, with --mid-size bench/midsize/)")


def generate(size: int, seed: int, directory: Path) -> Path:
    from dkw.bench.casegen import gen

    path = directory / f"national-{seed}-{size}.json"
    if not path.exists():
        path.write_text(json.dumps(gen(seed, size)))
    return path


def structure(path: Path) -> dict[str, Any]:
    """What the decomposition and the reductions make of the document (measured, not assumed)."""
    from dkw.clearing.document import load_auction_file
    from dkw.clearing.index import build_index
    from dkw.clearing.matrix import build_matrix
    from dkw.solvers.fastpath.prepare import fix_always_full
    from dkw.solvers.fastpath.split import split_components

    ix = build_index(load_auction_file(path))
    mm = build_matrix(ix)
    fixed = fix_always_full(mm)
    labels, _rows, count = split_components(mm.num_cols, mm.a_start, mm.a_index)
    import numpy as np

    bid_labels = labels[:mm.num_bids]
    sizes = np.bincount(bid_labels) if len(bid_labels) else np.zeros(0, dtype=int)
    largest = int(sizes.max()) if len(sizes) else 0
    return {"bids_cleared": mm.num_bids, "columns": mm.num_cols, "rows": mm.num_rows,
            "integers": int(mm.integrality.sum()), "components": int(count),
            "components_with_bids": int((sizes > 0).sum()), "largest_component_bids": largest,
            "largest_component_share": round(largest / max(mm.num_bids, 1), 4), "fixed_full_bids": fixed}


def compare(fast: dict[str, Any] | None, straight: dict[str, Any] | None) -> dict[str, Any]:
    if not fast or not straight or fast.get("objective_yen") is None or straight.get("objective_yen") is None:
        return {"same_objective": None}
    a, b = fast["objective_yen"], straight["objective_yen"]
    rel = abs(a - b) / max(abs(b), 1.0)
    both_optimal = fast["status"] == straight["status"] == "OPTIMAL"
    out: dict[str, Any] = {"objective_rel_diff": rel, "both_optimal": both_optimal}
    out["same_objective"] = rel <= SAME_OBJECTIVE_REL if both_optimal else None
    if not both_optimal:
        out["fast_not_worse"] = a <= b * (1 + SAME_OBJECTIVE_REL)
    if straight["status"] == "OPTIMAL":
        out["speedup"] = round(straight["end_to_end_s"] / max(fast["end_to_end_s"], 1e-9), 2)
    return out


def render(out_dir: Path, mid_size: bool) -> int:
    """Rewrite results.md (and gap-vs-time.png) from results.json, so the tables always match the figures
    they render, also after the renderer changes."""
    source = out_dir / "results.json"
    if not source.is_file():
        print(f"dkw bench: no {source} to render", file=sys.stderr)
        return 2
    doc = json.loads(source.read_text())
    if mid_size:
        from dkw.bench import midsize

        (out_dir / "results.md").write_text(midsize.markdown(doc))
    else:
        (out_dir / "results.md").write_text(tables(doc))
        plot(doc["results"], out_dir / "gap-vs-time.png")
    return 0


def tables(doc: dict[str, Any]) -> str:
    """results.md: the paths' table, the fast path over time, and the peers' table where peers ran."""
    return markdown(doc) + "\n" + gap_markdown(doc) + "\n" + (peers_markdown(doc) + "\n" if peers_markdown(doc) else "")


def run(args: argparse.Namespace) -> int:
    if args.render:
        return render(Path(args.out or (BENCH_DIR / "midsize" if args.mid_size else BENCH_DIR)), args.mid_size)
    if args.mid_size:
        from dkw.bench import midsize

        return midsize.run(args.mid_documents, args.highs_seeds or DEFAULT_MID_SEEDS, args.straight_limit,
                           args.out or str(BENCH_DIR / "midsize"))
    args.out = args.out or str(BENCH_DIR)
    try:
        sizes: list[int | str] = [int(s) for s in args.sizes.split(",") if s.strip()]
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        documents = [d.strip() for d in args.documents.split(",") if d.strip()]
        missing = [d for d in documents if not Path(d).is_file()]
        if missing:
            print(f"dkw bench: no such document: {', '.join(missing)}", file=sys.stderr)
            return 2
        peers = [p.strip() for p in args.peers.split(",") if p.strip()]
        if not sizes and not documents or any(s <= 0 for s in sizes) or not set(methods) <= {"fast", "straight"} \
                or not set(peers) <= set(PEERS):
            raise ValueError
    except ValueError:
        print(f"dkw bench: --sizes must be positive integers, --methods fast/straight and --peers "
              f"{'/'.join(PEERS)}, got {args.sizes!r}, {args.methods!r} and {args.peers!r}", file=sys.stderr)
        return 2
    seeds = 1 if args.highs_seeds is None else args.highs_seeds
    if seeds < 1 or seeds > 1 and args.repeat > 1:
        print(f"dkw bench: --highs-seeds must be at least 1, and with more than one seed --repeat must be 1 (each seed is "
              f"one run), got --highs-seeds {args.highs_seeds} and --repeat {args.repeat}", file=sys.stderr)
        return 2
    args.highs_seeds = seeds  # as results.json records it
    if "scip" in peers and not scip_available():
        print(f'dkw bench: --peers scip needs pyscipopt (an optional extra): {INSTALL_HINT}', file=sys.stderr)
        return 2
    if "cbc" in peers and cbc_binary() is None:
        print(f'dkw bench: --peers cbc needs the CBC binary that pulp ships (an optional extra): {INSTALL_HINT}',
              file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    show_progress = sys.stderr.isatty()
    machine = {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
               "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    from dkw.solvers.highs import highs_version

    machine["highs"] = highs_version()
    if "scip" in peers:
        machine["scip"] = scip_version()
    if "cbc" in peers:
        machine["cbc"] = cbc_version()
    previous: dict[tuple, dict[str, Any]] = {}
    if args.carry_over and (out_dir / "results.json").exists():
        for row in json.loads((out_dir / "results.json").read_text()).get("results", []):
            previous[(row["bids"], row.get("document", "generated"), row.get("seed"))] = row
    rows = []
    options = ["--memory-limit", str(args.memory_limit)] if args.memory_limit is not None else []
    references = load_references()
    with tempfile.TemporaryDirectory(prefix="dkw-bench-") as tmp:
        for size in documents + sizes:
            path = generate(size, args.seed, Path(tmp)) if isinstance(size, int) else Path(size)
            entry: dict[str, Any] = {"bids": size if isinstance(size, int) else len(json.loads(path.read_text())["bids"]),
                                     "document": "generated" if isinstance(size, int) else path.name,
                                     "seed": args.seed, "document_mb": round(path.stat().st_size / 2**20, 1)}
            size = entry["bids"]
            entry["structure"] = structure(path)
            print(f"{size:>7} bids: {entry['structure']['components']} components, largest "
                  f"{entry['structure']['largest_component_share']:.0%} of the bids, "
                  f"{entry['structure']['fixed_full_bids']} bids fixed in full", file=sys.stderr)
            before = previous.get((entry["bids"], entry["document"], entry["seed"]), {})
            for method in ("fast", "straight"):
                if method not in methods and before.get(method):
                    entry[method] = {**before[method], "carried_over": True}
            for method in methods:
                if method == "straight" and args.straight_max_size is not None and size > args.straight_max_size:
                    entry[method] = {"method": method, "status": "SKIPPED"}
                    continue
                limit = args.straight_limit if method == "straight" else args.fast_limit
                if seeds > 1:
                    best = median_over_seeds(path, method, limit, show_progress, options, seeds)
                else:
                    runs = [measure(path, method, limit, show_progress, options) for _ in range(max(1, args.repeat))]
                    best = min(runs, key=lambda r: r.get("end_to_end_s", float("inf")))
                    best["runs_end_to_end_s"] = [r.get("end_to_end_s") for r in runs]
                entry[method] = best
                print(f"{size:>7} bids {method:>8}: {best.get('status')} end to end {best.get('end_to_end_s')} s, "
                      f"gap {best.get('gap')}, peak {best.get('peak_rss_mb')} MB", file=sys.stderr)
            if peers:
                entry["peers"] = run_peers(path, peers, args.fast_limit, show_progress, entry, options, seeds)
            entry["comparison"] = compare(entry.get("fast"), entry.get("straight"))
            reference = references.get(document_key(entry["bids"], args.seed, entry["document"]))
            if reference:
                entry["reference"] = reference
            for method in ("fast", "straight"):
                run_row = entry.get(method) or {}
                if run_row.get("trace") is not None and not run_row.get("carried_over"):
                    # the result itself is the run's figure at its limit (the pricing and the document come
                    # after the limit, and the solver's last improvements may not have been reported yet)
                    trace = list(run_row["trace"])
                    if run_row.get("objective_yen") is not None:
                        end = min(run_row.get("end_to_end_s") or 0.0, run_row.get("time_limit_s") or float("inf"))
                        trace = [p for p in trace if p[0] < end] + [[end, run_row["objective_yen"], run_row.get("bound")]]
                    run_row["over_time"] = summarise(trace, reference)
                    run_row.update(split(run_row.get("objective_yen"), run_row.get("bound"), reference))
            rows.append(entry)
            write(out_dir, machine, rows, args)  # after every size: a long run keeps what it measured
    mismatched = [r["bids"] for r in rows if r["comparison"].get("same_objective") is False]
    if mismatched:
        print(f"dkw bench: objectives differ at {mismatched}", file=sys.stderr)
        return 1
    return 0


def write(out_dir: Path, machine: dict[str, Any], rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    doc = {"machine": machine, "settings": {"seed": args.seed, "straight_limit_s": args.straight_limit,
                                            "fast_limit_s": args.fast_limit, "repeat": args.repeat,
                                            "highs_seeds": args.highs_seeds,
                                            "memory_limit_mb": args.memory_limit,
                                            "peers": [p.strip() for p in args.peers.split(",") if p.strip()],
                                            "note": args.note},
           "targets": {str(k): {"end_to_end_s": v[0], "peak_rss_mb": v[1]} for k, v in TARGETS.items()},
           "results": rows}
    (out_dir / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / "results.md").write_text(tables(doc))
    plot(rows, out_dir / "gap-vs-time.png")


def _cell(run: dict[str, Any] | None) -> str:
    if not run:
        return "–"
    status = run.get("status")
    if status == "SKIPPED":
        return "not run"
    if status == "CRASHED":
        return "crashed"
    e2e = run.get("end_to_end_s")
    gap = run.get("gap")
    gap_text = f"gap {gap:.1e}" if gap is not None else "no gap"
    mark = " †" if run.get("carried_over") else ""
    if status == "OPTIMAL":
        return f"{e2e:.1f} s ({gap_text}){mark}"
    return f"**limit {run.get('time_limit_s'):.0f} s hit**, {gap_text}{mark}"


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        f"Machine: {m['cores']} cores, Python {m['python']}, HiGHS {m['highs']}; load average at start "
        f"{m['load_average_at_start']}. Seed {doc['settings']['seed']}; straight limit "
        f"{doc['settings']['straight_limit_s']:.0f} s, fast limit {doc['settings']['fast_limit_s']:.0f} s; "
        f"best of {doc['settings']['repeat']} run(s)"
        + (f"; memory ceiling {doc['settings']['memory_limit_mb']:,.0f} MB" if doc['settings'].get('memory_limit_mb') else "")
        + f". {doc['settings']['note']}".rstrip(),
        "",
        "| bids | components (largest share) | fixed in full | straight end to end | fast end to end | "
        "fast build / solve / pricing | fast peak RSS | straight peak RSS | same objective | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in doc["results"]:
        s = r["structure"]
        fast, straight, cmp_ = r.get("fast") or {}, r.get("straight") or {}, r["comparison"]
        same = {True: "yes", False: "**NO**", None: "n/a"}[cmp_.get("same_objective")]
        if cmp_.get("same_objective") is None and cmp_.get("fast_not_worse") is not None:
            same = "fast ≤ straight incumbent" if cmp_["fast_not_worse"] else "**fast worse**"
        parts = "–"
        if fast.get("build_s") is not None:
            parts = f"{fast['build_s']:.1f} / {fast['solve_s']:.1f} / {fast['pricing_s']:.1f} s"
        target = TARGETS.get(r["bids"])
        if target and fast.get("end_to_end_s") is not None:
            ok = fast["status"] == "OPTIMAL" and fast["end_to_end_s"] <= target[0] and fast["peak_rss_mb"] <= target[1]
            target_text = f"≤ {target[0]:.0f} s, ≤ {target[1]:.0f} MB: {'met' if ok else '**missed**'}"
        elif straight.get("status") == "OPTIMAL" and fast.get("end_to_end_s") is not None:
            ok = fast["end_to_end_s"] <= 0.5 * straight["end_to_end_s"]
            target_text = f"≤ 0.5 × straight: {'met' if ok else '**missed**'}"
        else:
            target_text = "–"
        lines.append(
            f"| {r['bids']:,}{'' if r.get('document', 'generated') == 'generated' else ' (' + r['document'] + ')'}"
            f" | {s['components']} ({s['largest_component_share']:.0%}) | {s['fixed_full_bids']} | "
            f"{_cell(straight)} | {_cell(fast)} | {parts} | {fast.get('peak_rss_mb', '–')} MB | "
            f"{straight.get('peak_rss_mb', '–')} MB | {same} | {target_text} |")
    if any((r.get(m) or {}).get("carried_over") for r in doc["results"] for m in ("fast", "straight")):
        lines += ["", "† carried over from the previous run in this directory (`--carry-over`): same document "
                  "and seed, that path's code unchanged since."]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.3f}%"


def gap_markdown(doc: dict[str, Any]) -> str:
    """The fast path's proven gap at 10, 60 and 300 s, and its split against the reference (bench/reference.json):
    incumbent above the best known incumbent, bound below the best known bound."""
    lines = ["", "Fast path over time (the whole auction's incumbent and bound as the progress reports them; "
             "split against `bench/reference.json`: incumbent above the reference's best incumbent / bound "
             "below its best bound):", "",
             "| bids | at 10 s: gap (inc. above / bound below) | at 60 s | at 300 s | to gap 1e-4 | to gap 1e-6 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in doc["results"]:
        over = (r.get("fast") or {}).get("over_time")
        if not over:
            continue
        cells = []
        for seconds in CHECKPOINTS_S:
            point = over["checkpoints"].get(f"{seconds:g}")
            # a run stopped by a limit below this checkpoint says nothing about it; one whose limit is the
            # checkpoint (the limit covers the clearing, so it ends a little before) reports its result there
            limit = r["fast"].get("time_limit_s")
            stopped_before = r["fast"].get("status") != "OPTIMAL" and (r["fast"].get("wall_s") or 0) < seconds \
                and (limit is None or limit < seconds)
            if point is None or stopped_before:
                cells.append("–")
                continue
            text = _pct(point["gap"])
            if "incumbent_above_reference" in point or "bound_below_reference" in point:
                text += f" ({_pct(point.get('incumbent_above_reference'))} / {_pct(point.get('bound_below_reference'))})"
            cells.append(text)
        reached = [f"{over[f'time_to_gap_{t:g}']:.0f} s" if over.get(f"time_to_gap_{t:g}") is not None else "not reached"
                   for t in GAP_TARGETS]
        lines.append(f"| {r['bids']:,} | " + " | ".join(cells + reached) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dkw.bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
