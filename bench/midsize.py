"""`dkw bench --mid-size`: mid-size auctions, fast path against one straight HiGHS solve, over HiGHS seeds.

Issue 13 asks that mid-size auctions (1-3k bids, 12-24 blocks) are never slower on the fast path than one
straight HiGHS solve with its own threads. One run per path decides nothing there: on the same document and
machine, HiGHS's `random_seed` alone moves a straight solve between 18.9 and 37.7 s (3,777 to 16,122
nodes; docs/performance.md, fifth round), because the search tree of a MILP this size is chaotic in every
choice. So each document is cleared by both paths once per seed (each run its own process, one at a time),
and the comparison is of the distributions: median, mean and worst end-to-end time, node counts, and on how
many seeds the fast path was not slower. Node counts are deterministic (the same on every machine for the
same seed), times are this machine's.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dkw.bench.run_one import measure

#: `casegen.gen(seed, bids, blocks=blocks)` documents, as SEED:BIDS:BLOCKS[:VARIANT]
DEFAULT_DOCUMENTS = "1:1200:12,2:1200:12,3:1200:12"
#: what a document holds besides divisible and indivisible bids: casegen's mix ("full": block bids with
#: start-up costs, links, exclusive groups), or that mix without some of it (casegen.gen's fractions)
VARIANTS: dict[str, dict[str, float]] = {
    "full": {},
    "nolinks": {"frac_linked": 0.0},
    "plain": {"frac_multiblock": 0.0, "frac_linked": 0.0},  # no block bids, hence no start-up costs; no links
}
DEFAULT_SEEDS = 4
METHODS = ("straight", "fast")


def parse_documents(text: str) -> list[tuple[int, int, int, str]]:
    """'1:1200:12,2:1800:24:plain' → [(1, 1200, 12, 'full'), (2, 1800, 24, 'plain')]; ValueError naming the
    bad item."""
    out = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        parts = item.split(":")
        variant = parts.pop() if len(parts) == 4 else "full"
        try:
            seed, bids, blocks = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"--mid-documents item {item!r} is not SEED:BIDS:BLOCKS[:VARIANT]") from None
        if bids <= 0 or not 1 <= blocks <= 48:
            raise ValueError(f"--mid-documents item {item!r}: bids must be positive and blocks 1..48")
        if variant not in VARIANTS:
            raise ValueError(f"--mid-documents item {item!r}: the variant must be one of {', '.join(VARIANTS)}")
        out.append((seed, bids, blocks, variant))
    if not out:
        raise ValueError("--mid-documents names no document")
    return out


def run_once(path: Path, method: str, limit: float, highs_seed: int) -> dict[str, Any]:
    """One clearing in a child process (`dkw.bench.run_one.measure`), HiGHS seeded with `highs_seed`."""
    row = measure(path, method, limit, False, ["--random-seed", str(highs_seed)])
    row.pop("trace", None)
    row["highs_seed"] = highs_seed
    return row


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per path: median, mean and worst end-to-end seconds and node counts (over the runs that proved
    optimality; a run that did not counts as its time, which is a lower bound on what it needed), and
    how many seeds saw the fast path no slower than the straight solve."""
    out: dict[str, Any] = {}
    for method, rows in runs.items():
        times = [r["end_to_end_s"] for r in rows if r.get("end_to_end_s") is not None]
        nodes = [r["nodes"] for r in rows if r.get("nodes") is not None]
        out[method] = {
            "runs": len(rows), "optimal": sum(r.get("status") == "OPTIMAL" for r in rows),
            "median_s": statistics.median(times) if times else None,
            "mean_s": statistics.fmean(times) if times else None,
            "worst_s": max(times) if times else None,
            "median_nodes": statistics.median(nodes) if nodes else None,
        }
    by_seed = {r["highs_seed"]: r.get("end_to_end_s") for r in runs.get("straight", [])}
    pairs = [(r.get("end_to_end_s"), by_seed.get(r["highs_seed"])) for r in runs.get("fast", [])]
    pairs = [(f, s) for f, s in pairs if f is not None and s is not None]
    out["seeds_fast_not_slower"] = sum(f <= s for f, s in pairs)
    medians = out.get("fast", {}).get("median_s"), out.get("straight", {}).get("median_s")
    out["fast_over_straight"] = medians[0] / medians[1] if None not in medians and medians[1] > 0 else None
    # where the fast path's time goes besides branch-and-bound: parse, build, starts' set-up, prices,
    # explanations, verification, the result document (median over its runs)
    outside = [r["end_to_end_s"] - r["solve_s"] for r in runs.get("fast", []) if r.get("solve_s") is not None]
    out["fast_outside_solve_s"] = statistics.median(outside) if outside else None
    out["seeds_compared"] = len(pairs)
    objectives = [r["objective_yen"] for rows in runs.values() for r in rows if r.get("status") == "OPTIMAL"]
    if objectives:  # every proven optimum of the document must agree (to the proof's gap, 1e-6)
        out["objective_spread_rel"] = (max(objectives) - min(objectives)) / max(abs(min(objectives)), 1.0)
    return out


def _count(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else (f"**{value:.2f}**" if value > 1.0 else f"{value:.2f}")


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [f"Machine: {m['cores']} cores, Python {m['python']}, HiGHS {m['highs']}; load average at start "
             f"{m['load_average_at_start']}. HiGHS seeds 0..{doc['settings']['highs_seeds'] - 1} per path and "
             f"document, one run at a time, limit {doc['settings']['limit_s']:.0f} s. End to end: document in, "
             "result document out.", "",
             "| document (seed, bids, blocks, variant) | straight median / mean / worst | fast median / mean / worst | "
             "median nodes straight / fast | fast ÷ straight (medians) | fast outside the solve | seeds fast not slower | "
             "optima agree |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def cell(s: dict[str, Any]) -> str:
        if s.get("median_s") is None:
            return "–"
        text = f"{s['median_s']:.1f} / {s['mean_s']:.1f} / {s['worst_s']:.1f} s"
        return text if s["optimal"] == s["runs"] else text + f" ({s['runs'] - s['optimal']} hit the limit)"

    for row in doc["results"]:
        summary = row["summary"]
        straight, fast = summary.get("straight", {}), summary.get("fast", {})
        spread = summary.get("objective_spread_rel")
        agree = "–" if spread is None else ("yes" if spread <= 1e-6 else f"**NO** ({spread:.1e})")
        lines.append(f"| {row['seed']}, {row['bids']:,}, {row['blocks']}, {row.get('variant', 'full')} | "
                     f"{cell(straight)} | {cell(fast)} | "
                     f"{_count(straight.get('median_nodes'))} / {_count(fast.get('median_nodes'))} | "
                     f"{_ratio(summary.get('fast_over_straight'))} | {_seconds(summary.get('fast_outside_solve_s'))} | "
                     f"{summary['seeds_fast_not_slower']} of {summary['seeds_compared']} | {agree} |")
    return "\n".join(lines) + "\n"


def run(documents: str, seeds: int, limit: float, out: str) -> int:
    try:
        docs = parse_documents(documents)
        if seeds < 1:
            raise ValueError(f"--highs-seeds must be at least 1, got {seeds}")
    except ValueError as exc:
        print(f"dkw bench: {exc}", file=sys.stderr)
        return 2
    from dkw.bench.casegen import gen
    from dkw.solvers.highs import highs_version

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
               "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "highs": highs_version()}
    doc: dict[str, Any] = {"machine": machine, "settings": {"highs_seeds": seeds, "limit_s": limit}, "results": []}
    with tempfile.TemporaryDirectory(prefix="dkw-bench-mid-") as tmp:
        for seed, bids, blocks, variant in docs:
            path = Path(tmp) / f"mid-{seed}-{bids}-{blocks}-{variant}.json"
            path.write_text(json.dumps(gen(seed, bids, blocks=blocks, **VARIANTS[variant])))
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
            for highs_seed in range(seeds):
                for method in METHODS:
                    started = time.perf_counter()
                    row = run_once(path, method, limit, highs_seed)
                    runs[method].append(row)
                    print(f"seed {seed}, {bids} bids, {blocks} blocks, {variant}, HiGHS seed {highs_seed}, {method:>8}: "
                          f"{row.get('status')} in {time.perf_counter() - started:.1f} s, {row.get('nodes')} nodes",
                          file=sys.stderr)
            doc["results"].append({"seed": seed, "bids": bids, "blocks": blocks, "variant": variant, "runs": runs,
                                   "summary": summarise(runs)})
            (out_dir / "results.json").write_text(json.dumps(doc, indent=1) + "\n")  # after every document
            (out_dir / "results.md").write_text(markdown(doc))
    bad = [r for r in doc["results"] if (r["summary"].get("objective_spread_rel") or 0.0) > 1e-6]
    if bad:
        print("dkw bench: the paths' proven optima differ on " +
              ", ".join(f"seed {r['seed']} ({r['bids']} bids)" for r in bad), file=sys.stderr)
        return 1
    return 0
