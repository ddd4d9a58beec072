"""Other solvers beside dkw in `dkw bench --peers` (issue 25, item 2): the same document, the same limit.

    python -m dkw.bench.peers scip AUCTION.json TIME_LIMIT_S [--cpu-clock] [--solution OUT.npy]
                                                              [--start IN.npy[.gz]] [--feastol TOL]
    python -m dkw.bench.peers cbc AUCTION.json TIME_LIMIT_S

(`--cpu-clock`: the limit counts SCIP's CPU seconds, for long reference runs in the background at nice 19,
bench/reference.json; `--solution`: keep the verified point, numpy's format, one value per column;
`--start`: such a point (an earlier run's) given to SCIP as its first solution, so that a reference run's
time goes into the bound; `--feastol`: SCIP's feasibility tolerance, integrality included (default 1e-6:
a binary at 5e-7 lets a bid through at 0.5 kW, below its 1 kW minimum, which the verifier refuses).)

Each peer solves the document's *straight* model: the whole clearing MILP as `dkw clear` formulates it
(market rules applied, before the fast path's reductions), the model `dkw.bench.experiments.cbc_crosscheck mps`
writes. `highs` is dkw's own `straight` method (bench/run_one.py): that model on HiGHS. `scip` is this
module in a child process (`dkw bench` polls its process tree for the peak RSS, as for dkw's runs): the
model written as MPS by HiGHS's writer, read and solved by SCIP through pyscipopt with the time limit on
SCIP's own solve (so the peer's limit is, if anything, more generous than dkw's, whose limit covers the
whole clearing), 1 thread, dkw's default relative gap (1e-6). Its best point goes back into the model and
through the independent verifier exactly as a CBC solution does (`cbc_crosscheck.verified_clearing`).
`cbc` is the same model given to CBC, the binary PuLP ships, in a process of its own: 1 thread, the limit
on its solve's wall clock (`-sec LIMIT -timeMode elapsed`), dkw's gap; its log's objective and lower bound,
its solution file's point through the same verifier.

All figures are in the result's terms: the clearing's `objective_yen` is the point's real cost, and the
bound is the peer's dual bound on the MPS objective (which carries the tie-break and flow-preference terms)
restated as `solver.objective_bound` is (`dkw.clearing.exact.real_objective_bound`). pyscipopt and pulp are
an optional extra (`pip install -e ".[bench]"`), never runtime dependencies of dkw.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PEERS = ("scip", "highs", "cbc")
INSTALL_HINT = 'pip install -e ".[bench]"'
PEER_GAP = 1e-6  # dkw's default mip_rel_gap (dkw.solvers.api.SolveOptions)


def scip_available() -> bool:
    return importlib.util.find_spec("pyscipopt") is not None


def scip_version() -> str:
    import pyscipopt

    return f"SCIP {pyscipopt.Model().version()} (pyscipopt {pyscipopt.__version__})"


def solve_scip(path: Path, limit: float, *, cpu_clock: bool = False, solution: Path | None = None,
               start: Path | None = None, feastol: float | None = None) -> dict[str, Any]:
    """The document's straight model solved by SCIP (1 thread, `limit` seconds of SCIP's solve, wall-clock
    unless `cpu_clock`; from the point in `start` if given), its best point verified (and saved to
    `solution`); the row `dkw bench` records."""
    t0 = time.perf_counter()
    import numpy as np
    import pyscipopt

    from dkw.bench.experiments.cbc_crosscheck import clearing_model, write_model

    prepared, form, mm = clearing_model(path)
    built = time.perf_counter()
    model = pyscipopt.Model()
    model.hideOutput()
    with tempfile.TemporaryDirectory(prefix="dkw-peer-") as tmp:
        mps = Path(tmp) / "model.mps"
        write_model(mm, mps)
        model.readProblem(str(mps))
    model.setParam("limits/time", float(limit))
    model.setParam("limits/gap", PEER_GAP)
    model.setParam("lp/threads", 1)
    model.setParam("parallel/maxnthreads", 1)
    if cpu_clock:
        model.setParam("timing/clocktype", 1)
    if feastol is not None:
        model.setParam("numerics/feastol", feastol)
    start_accepted = None
    if start is not None:
        opener = gzip.open if start.suffix == ".gz" else open
        with opener(start, "rb") as f:
            x0 = np.load(f)
        first = model.createSol()
        for var in model.getVars():
            model.setSolVal(first, var, float(x0[int(var.name[1:])]))  # HiGHS's names: c<column>
        start_accepted = bool(model.addSol(first))
    read = time.perf_counter()
    model.optimize()
    solved = time.perf_counter()
    scip_status = model.getStatus()
    row: dict[str, Any] = {"method": "scip", "solver": scip_version(), "threads": 1, "scip_status": scip_status,
                           "build_s": round(built - t0, 3), "write_read_s": round(read - built, 3),
                           "solve_s": round(model.getSolvingTime(), 3),
                           "solve_wall_s": round(solved - read, 3), "nodes": int(model.getNNodes())}
    if start is not None:
        row["start"] = {"file": start.name, "accepted": start_accepted}
    if feastol is not None:
        row["feastol"] = feastol
    x = None
    if model.getNSols() > 0:
        sol = model.getBestSol()
        x = np.zeros(mm.num_cols)
        for var in model.getVars():
            x[int(var.name[1:])] = model.getSolVal(sol, var)  # HiGHS's names: c<column>
        if solution is not None:
            np.save(solution, x)
        row["solved_objective"] = model.getObjVal()
    return finished_row(row, prepared, form, mm, x, model.getDualbound(), t0,
                        optimal=scip_status in ("optimal", "gaplimit"), infeasible=scip_status == "infeasible")


def finished_row(row: dict[str, Any], prepared: Any, form: Any, mm: Any, x: Any, solved_bound: float | None,
                 t0: float, *, optimal: bool, infeasible: bool, failed: bool = False) -> dict[str, Any]:
    """A peer's row completed from its best point `x` (None: none found) and its dual bound as it saw it:
    the point through dkw's verifier (findings: never a figure to compare with), both in the result's terms.
    `failed`: the peer ended without an answer (PEER_FAILED, its own words in the row)."""
    import numpy as np

    from dkw.bench.experiments.cbc_crosscheck import verified_clearing
    from dkw.clearing.exact import perturbation_ceiling_yen, real_objective_bound
    from dkw.solvers.api import relative_gap

    objective = None
    if x is not None:
        doc, findings, worst = verified_clearing(prepared, form, mm, x, row["method"].upper())
        objective = doc["objective_yen"]
        row.update(violation=worst, findings=[str(f) for f in findings[:20]], awards=len(doc["awards"]))
    if optimal:
        status = "OPTIMAL"
    elif objective is not None:
        status = "TIME_LIMIT_FEASIBLE"
    elif infeasible:
        status = "INFEASIBLE"
    elif failed:
        status = "PEER_FAILED"
    else:
        status = "TIME_LIMIT_NO_SOLUTION"
    if row.get("findings"):
        status = "VERIFIER_FINDINGS"  # never a figure to compare with
    bound = None
    if solved_bound is not None and np.isfinite(solved_bound):
        bound = (real_objective_bound(form.ix, solved_bound, objective) if objective is not None
                 else round(solved_bound - perturbation_ceiling_yen(form.ix), 6))
    done = time.perf_counter()
    row.update(status=status, objective_yen=objective, bound=bound, solved_bound=solved_bound,
               gap=relative_gap(objective, bound), clear_s=round(done - t0, 3), end_to_end_s=round(done - t0, 3),
               peak_rss_mb=own_peak_rss_mb())
    return row


def cbc_binary() -> str | None:
    """The CBC binary that PuLP ships (pulp is in the `bench` extra), or None where there is none."""
    if importlib.util.find_spec("pulp") is None:
        return None
    from pulp.apis.coin_api import pulp_cbc_path  # the path its (deprecated) PULP_CBC_CMD runs

    path = Path(pulp_cbc_path).resolve()
    if path.is_file() and not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | 0o111)  # as pulp does: its wheel may not keep the executable bit
        except OSError:
            return None
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def cbc_version() -> str:
    import pulp

    shown = subprocess.run([cbc_binary() or "cbc", "-quit"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"Version: (\S+)", shown)
    return f"CBC {found.group(1) if found else '?'} (pulp {pulp.__version__})"


def solve_cbc(path: Path, limit: float) -> dict[str, Any]:
    """The document's straight model solved by CBC (its binary from PuLP, 1 thread, `limit` seconds of wall
    clock on its own solve, dkw's gap), its point verified; the row `dkw bench` records."""
    t0 = time.perf_counter()
    from dkw.bench.experiments.cbc_crosscheck import clearing_model, read_cbc_solution, write_model

    prepared, form, mm = clearing_model(path)
    built = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dkw-peer-") as tmp:
        mps, sol = Path(tmp) / "model.mps", Path(tmp) / "model.sol"
        write_model(mm, mps)
        read = time.perf_counter()
        ran = subprocess.run([cbc_binary() or "cbc", str(mps), "-sec", f"{limit:g}", "-timeMode", "elapsed",
                              "-threads", "1", "-ratioGap", f"{PEER_GAP:g}", "-solve", "-solu", str(sol)],
                             capture_output=True, text=True)
        log = ran.stdout
        solved = time.perf_counter()
        figure = {name: re.search(rf"^{name}:\s+(\S+)", log, re.M)
                  for name in ("Objective value", "Lower bound", "Enumerated nodes")}
        result = re.search(r"^Result - (.+)$", log, re.M)
        gave_up = re.search(r"^Pre-processing says .+$", log, re.M)  # 50,000 bids: "infeasible or unbounded"
        outcome = result.group(1).strip() if result else gave_up.group(0).strip() if gave_up else "no result line"
        found = figure["Objective value"] is not None and sol.exists() and "no solution" not in outcome.lower()
        x = read_cbc_solution(sol, mm.num_cols) if found else None
    optimal = outcome.startswith("Optimal solution found")
    solved_bound = float(figure["Lower bound"].group(1)) if figure["Lower bound"] else (
        float(figure["Objective value"].group(1)) if optimal else None)
    row: dict[str, Any] = {"method": "cbc", "solver": cbc_version(), "threads": 1, "cbc_result": outcome,
                           "build_s": round(built - t0, 3), "write_s": round(read - built, 3),
                           "solve_wall_s": round(solved - read, 3),
                           "nodes": int(figure["Enumerated nodes"].group(1)) if figure["Enumerated nodes"] else None}
    if x is not None:
        row["solved_objective"] = float(figure["Objective value"].group(1))
    if ran.returncode != 0 or result is None:  # what CBC said last, for whoever reads the row
        row.update(cbc_exit=ran.returncode, log_tail=(log + ran.stderr)[-600:])
    # a model dkw clears is feasible: CBC saying otherwise is CBC failing (its pre-processing's cut generators)
    return finished_row(row, prepared, form, mm, x, solved_bound, t0, optimal=optimal, infeasible=False,
                        failed=result is None)


def own_peak_rss_mb() -> float:
    """This process's peak RSS since its exec: Linux's VmHWM. (getrusage's ru_maxrss starts from the RSS of
    the process that forked it, here `dkw bench`, which holds the document's structure: on a small document
    that, not the peer, would be the figure.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_peers(path: Path, peers: list[str], limit: float, show_progress: bool, entry: dict[str, Any],
              options: list[str], seeds: int = 1) -> dict[str, dict[str, Any]]:
    """Each of `peers` on the document at `path` with time limit `limit`, in its own child process. The
    `highs` peer reuses this run's `straight` row when it ran at the same limit; with `seeds` above 1 it is
    the median of that many HiGHS seeds (`median_over_seeds`), as dkw's row is. SCIP and CBC run once: one
    thread, their own default seeds."""
    from dkw.bench.run_one import measure, measure_command, median_over_seeds

    out: dict[str, dict[str, Any]] = {}
    for peer in peers:
        if peer == "highs":
            straight = entry.get("straight") or {}
            if straight.get("time_limit_s") == limit and not straight.get("carried_over"):
                out[peer] = {**straight, "same_run_as": "straight"}
            else:
                out[peer] = median_over_seeds(path, "straight", limit, show_progress, options, seeds) if seeds > 1 \
                    else measure(path, "straight", limit, show_progress, options)
        else:
            cmd = [sys.executable, "-m", "dkw.bench.peers", peer, str(path), str(limit)]
            out[peer] = measure_command(cmd, peer, limit, False)
        row = out[peer]
        print(f"{entry['bids']:>7} bids {peer:>8}: {row.get('status')} objective {row.get('objective_yen')}, "
              f"bound {row.get('bound')}, peak {row.get('peak_rss_mb')} MB", file=sys.stderr)
    return out


def gap_of(row: dict[str, Any] | None) -> float | None:
    """The proven gap in the result's terms, the same for every solver: (clearing − bound) / clearing."""
    from dkw.solvers.api import relative_gap

    if not row or row.get("status") in ("CRASHED", "VERIFIER_FINDINGS", "SKIPPED"):
        return None
    return relative_gap(row.get("objective_yen"), row.get("bound"))


def _yen(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _seed_gaps(row: dict[str, Any]) -> str:
    """Where the row is the median over HiGHS seeds: every seed's gap, in seed order."""
    runs = row.get("seed_runs")
    if not runs:
        return ""
    gaps = [gap_of(r) for r in runs]
    return " (seeds " + " / ".join("–" if g is None else f"{100 * g:.3f}" for g in gaps) + ")"


def markdown(doc: dict[str, Any]) -> str:
    """The peers' table: per document dkw (the fast path), then each peer, on the same limit."""
    rows = [r for r in doc["results"] if r.get("peers")]
    if not rows:
        return ""
    m = doc["machine"]
    seeds = doc["settings"].get("highs_seeds", 1)
    lines = ["", f"Peers side by side ({m['cores']} cores; each on the same document at the same limit; dkw: the "
             f"fast path; HiGHS {m.get('highs', '')}: dkw's `straight` method, the whole model on HiGHS's own "
             f"threads; {m.get('scip', 'SCIP')}, {m.get('cbc', 'CBC')}: the same model as MPS, 1 thread, the limit "
             "on their own solve)"
             + (f"; dkw and HiGHS: the median of HiGHS seeds 0–{seeds - 1}, each seed's gap in brackets"
                if seeds > 1 else "") + ". "
             "Figures in the result's terms (the bound less the tie-break terms, as `solver.objective_bound`); "
             "gap = (clearing − bound) / clearing; end to end from the document to the verified clearing:", "",
             "| bids | limit | solver | status | best clearing (yen) | proven bound (yen) | gap | end to end | "
             "peak RSS | gap ÷ best peer's |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    names = {"fast": "dkw", "highs": "HiGHS straight", "scip": "SCIP", "cbc": "CBC"}
    for r in rows:
        limit = doc["settings"]["fast_limit_s"]
        peer_gaps = [g for g in (gap_of(p) for p in r["peers"].values()) if g is not None]
        for key, row in [("fast", r.get("fast"))] + list(r["peers"].items()):
            if not row:
                continue
            gap = gap_of(row)
            ratio = "–"
            if key == "fast" and gap is not None and peer_gaps:
                best = min(peer_gaps)
                ratio = f"{gap / best:.2f}" if best > 0 else ("1.00" if gap == 0 else "∞")
            e2e = row.get("end_to_end_s")
            lines.append(f"| {r['bids']:,} | {limit:.0f} s | {names.get(key, key)} | {row.get('status')} | "
                         f"{_yen(row.get('objective_yen'))} | {_yen(row.get('bound'))} | "
                         f"{'–' if gap is None else f'{100 * gap:.3f}%'}{_seed_gaps(row)} | "
                         f"{'–' if e2e is None else f'{e2e:.1f} s'} | "
                         f"{row.get('peak_rss_mb', '–')} MB | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dkw.bench.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("peer", choices=("scip", "cbc"))
    parser.add_argument("auction", type=Path)
    parser.add_argument("time_limit_s", type=float)
    parser.add_argument("--cpu-clock", action="store_true", help="scip: the limit counts CPU seconds")
    parser.add_argument("--solution", type=Path, help="scip: keep the verified point here (numpy)")
    parser.add_argument("--start", type=Path, help="scip: such a point as its first solution")
    parser.add_argument("--feastol", type=float, help="scip: its feasibility tolerance")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (argparse printed it): exit 2, as `dkw` commands do
        return int(exc.code or 0)
    if args.peer == "cbc":
        if cbc_binary() is None:
            print(f"dkw.bench.peers: CBC comes with pulp: {INSTALL_HINT}", file=sys.stderr)
            return 2
        print(json.dumps(solve_cbc(args.auction, args.time_limit_s)))
        return 0
    if not scip_available():
        print(f"dkw.bench.peers: SCIP needs pyscipopt: {INSTALL_HINT}", file=sys.stderr)
        return 2
    print(json.dumps(solve_scip(args.auction, args.time_limit_s, cpu_clock=args.cpu_clock, solution=args.solution,
                                start=args.start, feastol=args.feastol)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
