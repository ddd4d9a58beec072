"""The fast path: the MILP as arrays, cut into independent components, each solved by highspy directly.

Why it is exact: a component is a connected component of the bipartite graph of columns and rows of the
constraint matrix (a union-find over every coupling the model has: bids spanning blocks and products,
groups, resources, parent links, lines, interfaces, import caps, balance rows). No row touches two
components and the objective is a sum over columns, so the optimum of the whole is the sum of the
components' optima, and proving each component within relative gap g proves the whole within g
(all objective terms are non-negative). The solutions are stitched back by column index.

Marginal prices: per component, the LP with every integer column fixed at its MIP value (SPEC §1),
exactly as the straight path does for the whole model; the row duals of the balance rows are the prices.

Components big enough to matter are solved in parallel processes (spawned, so a threaded caller such as
the gRPC server is safe); small ones inline.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np

from solvers.highs import Progress, ProgressCallback, SolveCancelled, SolveOptions, SolveOutcome, relative_gap

#: The start's polishing (`polish_by_splitting`) may take this share of the time left, at most HEURISTIC_MAX_S,
#: and solves its pieces to this gap (it only looks for a good incumbent; the proof is the full model's).
HEURISTIC_SHARE = 0.25
HEURISTIC_MAX_S = 30.0
HEURISTIC_GAP = 1e-4
#: Components with fewer columns than this are solved inline (a process costs more than the solve).
PARALLEL_MIN_COLS = 3000


@dataclass
class SubProblem:
    """One component as a self-contained MILP (picklable: plain numpy arrays)."""

    cols: np.ndarray  # global column indices
    rows: np.ndarray  # global row indices
    col_cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    a_start: np.ndarray
    a_index: np.ndarray  # local column indices
    a_value: np.ndarray
    start: np.ndarray | None = None  # a feasible MIP start (local columns), if known
    #: columns whose fixing falls the component apart (e.g. bids spanning blocks): the start is polished by
    #: fixing them and solving the pieces apart (`polish_by_splitting`); None: no polishing
    cross: np.ndarray | None = None

    @property
    def num_int(self) -> int:
        return int(self.integrality.sum())


@dataclass
class SubSolution:
    status: str
    x: np.ndarray | None
    row_dual: np.ndarray | None
    objective: float | None
    bound: float | None
    seconds: float
    nodes: int
    message: str = ""
    pricing_seconds: float = 0.0


@dataclass
class FastOutcome:
    """What the fast path hands back to the engine: the stitched solution and how it was found."""

    outcome: SolveOutcome
    x: np.ndarray | None
    row_dual: np.ndarray | None
    components: list[dict[str, Any]] = field(default_factory=list)
    pricing_seconds: float = 0.0


def split_components(num_cols: int, a_start: np.ndarray, a_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Label every column and every row with its connected component (a row joins all its columns).

    A union-find in numpy over the bipartite graph columns–rows: hook each edge's larger root onto the
    smaller, then jump pointers until every node points at its root; repeat until no edge joins two roots.
    Labels are numbered 0..count-1 in order of each component's smallest column (rows with no column get
    their own). Returns (column labels, row labels, count)."""
    num_rows = len(a_start) - 1
    n = num_cols + num_rows
    cols = a_index.astype(np.int64)
    rows = num_cols + np.repeat(np.arange(num_rows, dtype=np.int64), np.diff(a_start))
    parent = np.arange(n, dtype=np.int64)
    while True:
        pc, pr = parent[cols], parent[rows]
        differ = pc != pr
        if not differ.any():
            break
        np.minimum.at(parent, np.maximum(pc[differ], pr[differ]), np.minimum(pc[differ], pr[differ]))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    roots, labels = np.unique(parent, return_inverse=True)
    return labels[:num_cols], labels[num_cols:], len(roots)


def subproblems(col_cost, col_lower, col_upper, integrality, row_lower, row_upper, a_start, a_index, a_value,
                ) -> list[SubProblem]:
    """The model cut into its components, largest first; columns and rows keep their relative order."""
    num_cols = len(col_cost)
    col_label, row_label, count = split_components(num_cols, a_start, a_index)
    col_order = np.argsort(col_label, kind="stable")
    row_order = np.argsort(row_label, kind="stable")
    col_bounds = np.searchsorted(col_label[col_order], np.arange(count + 1))
    row_bounds = np.searchsorted(row_label[row_order], np.arange(count + 1))
    local = np.empty(num_cols, dtype=np.int32)
    lengths = np.diff(a_start)
    out: list[SubProblem] = []
    for c in range(count):
        cols = col_order[col_bounds[c]:col_bounds[c + 1]]
        rows = row_order[row_bounds[c]:row_bounds[c + 1]]
        local[cols] = np.arange(len(cols), dtype=np.int32)
        row_len = lengths[rows]
        start = np.zeros(len(rows) + 1, dtype=np.int32)
        np.cumsum(row_len, out=start[1:])
        if len(rows):
            nz = np.concatenate([np.arange(a_start[r], a_start[r + 1]) for r in rows]) if len(rows) < 64 else \
                _gather_ranges(a_start[rows], row_len)
        else:
            nz = np.zeros(0, dtype=np.int64)
        out.append(SubProblem(
            cols=cols, rows=rows, col_cost=col_cost[cols], col_lower=col_lower[cols], col_upper=col_upper[cols],
            integrality=integrality[cols], row_lower=row_lower[rows], row_upper=row_upper[rows],
            a_start=start, a_index=local[a_index[nz]], a_value=a_value[nz]))
    out.sort(key=lambda s: (-len(s.cols), int(s.cols[0]) if len(s.cols) else 0))
    return out


def _gather_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ranges [starts[i], starts[i] + lengths[i]) without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts.astype(np.int64) - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return offsets + np.arange(total, dtype=np.int64)


def solver_options(options: SolveOptions) -> dict[str, Any]:
    opts: dict[str, Any] = {"output_flag": False, "random_seed": 0, "mip_rel_gap": options.mip_rel_gap}
    if options.time_limit_s is not None:
        opts["time_limit"] = float(options.time_limit_s)
    if options.threads is not None:
        opts["threads"] = int(options.threads)
    opts.update(options.highs_options)
    return opts


_banner_lock = threading.Lock()
_banner_shown = False


def new_highs() -> highspy.Highs:
    """A Highs instance. HiGHS prints its banner on stdout when the process makes its first one; that would
    corrupt a result written to stdout, so the first one is made with stdout pointed at /dev/null."""
    global _banner_shown
    with _banner_lock:
        if _banner_shown:
            return highspy.Highs()
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            highs = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _banner_shown = True
        return highs


def _pass(highs: highspy.Highs, sub: SubProblem) -> None:
    lp = highspy.HighsLp()
    lp.num_col_ = len(sub.cols)
    lp.num_row_ = len(sub.rows)
    lp.col_cost_ = sub.col_cost
    lp.col_lower_ = sub.col_lower
    lp.col_upper_ = sub.col_upper
    lp.row_lower_ = sub.row_lower
    lp.row_upper_ = sub.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = sub.a_start
    lp.a_matrix_.index_ = sub.a_index
    lp.a_matrix_.value_ = sub.a_value
    lp.a_matrix_.num_col_ = len(sub.cols)
    lp.a_matrix_.num_row_ = len(sub.rows)
    if sub.num_int:
        lp.integrality_ = [highspy.HighsVarType.kInteger if v else highspy.HighsVarType.kContinuous
                           for v in sub.integrality]
    highs.passModel(lp)


def solve_subproblem(sub: SubProblem, options: SolveOptions, price: bool = True,
                     on_event: Callable[[Any], None] | None = None,
                     deadline: float | None = None) -> SubSolution:
    """Solve one component to the requested gap, then (if `price`) the LP with its integers fixed."""
    highs = new_highs()
    opts = solver_options(options)
    if deadline is None and "time_limit" in opts:
        deadline = time.time() + opts["time_limit"]
    if deadline is not None:
        opts["time_limit"] = max(0.01, deadline - time.time())
    for name, value in opts.items():
        highs.setOptionValue(name, value)
    _pass(highs, sub)
    if options.warm_start and sub.num_int:
        candidates = lp_rounding_starts(sub, opts)
        if sub.cross is not None and sub.cross.any():
            budget = HEURISTIC_SHARE * (deadline - time.time()) if deadline is not None else HEURISTIC_MAX_S
            polish_until = time.time() + min(HEURISTIC_MAX_S, max(budget, 0.0))
            # the cross-rounded candidate first: it is the one that polishes well on national auctions
            polished = [polish_by_splitting(sub, c, sub.cross, opts, polish_until) for c in reversed(candidates)]
            candidates = [c for c in candidates[:1] + polished if c is not None]
        for candidate in candidates:
            if sub.start is None or sub.col_cost @ candidate < sub.col_cost @ sub.start:
                sub.start = candidate
        if deadline is not None:  # the start's LPs count against the caller's time limit
            highs.setOptionValue("time_limit", max(0.01, deadline - time.time()))
    if sub.start is not None and sub.num_int:
        sol = highspy.HighsSolution()
        sol.col_value = list(sub.start)
        sol.value_valid = True
        highs.setSolution(sol)
    if on_event is not None:
        highs.cbMipInterrupt.subscribe(on_event)
    if options.threads is not None:
        # HiGHS keeps one scheduler per thread with the thread count of the first solve; a different
        # explicit count is refused ("scheduler already initialized") unless this thread's is reset
        highspy.Highs.resetThreadScheduler(True)
    started = time.perf_counter()
    highs.run()
    seconds = time.perf_counter() - started
    info = highs.getInfo()
    status = highs.getModelStatus()
    has_solution = info.primal_solution_status == 2
    objective = info.objective_function_value if has_solution else None
    if sub.num_int:
        bound = info.mip_dual_bound if math.isfinite(info.mip_dual_bound) else None
    else:
        bound = objective if status == highspy.HighsModelStatus.kOptimal else None
    if status == highspy.HighsModelStatus.kOptimal:
        name = "OPTIMAL"
    elif status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt):
        name = "TIME_LIMIT_FEASIBLE" if has_solution else "TIME_LIMIT_NO_SOLUTION"
    else:
        name = "ERROR"
    nodes = max(int(info.mip_node_count), 0) if sub.num_int else 0
    message = highs.modelStatusToString(status)
    if not has_solution:
        return SubSolution(name, None, None, None, bound, seconds, nodes, message)
    x = np.array(highs.getSolution().col_value)
    row_dual = None
    pricing_seconds = 0.0
    if price:
        pricing_started = time.perf_counter()
        priced = _price_with_integers_fixed(highs, sub, x)
        if priced is not None:
            row_dual, x = priced  # the LP's values: exact in the integers (no tolerance crumbs)
        pricing_seconds = time.perf_counter() - pricing_started
    return SubSolution(name, x, row_dual, objective, bound, seconds, nodes, message, pricing_seconds)


def lp_rounding_starts(sub: SubProblem, opts: dict[str, Any]) -> list[np.ndarray]:
    """MIP start candidates from the LP relaxation, each a point whose `cross` columns are integral:

    1. every binary above one half to 1, the rest 0, the LP over the continuous columns (a full start);
    2. with `sub.cross` (the columns tying blocks together): those binaries rounded up (what the LP uses
       at all is taken), the other binaries left relaxed, the LP again (to be polished block by block).

    Rounding keeps the coupling rows (Σu ≤ 1 in a group, u[child] ≤ u[parent], u ≤ v[resource])
    satisfied in the usual cases; a rounding HiGHS finds infeasible gives no candidate."""
    highs = new_highs()
    for name in ("output_flag", "random_seed", "threads", "time_limit"):
        if name in opts:
            highs.setOptionValue(name, opts[name])
    relaxed = SubProblem(sub.cols, sub.rows, sub.col_cost, sub.col_lower, sub.col_upper,
                         np.zeros_like(sub.integrality), sub.row_lower, sub.row_upper, sub.a_start, sub.a_index,
                         sub.a_value)
    _pass(highs, relaxed)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return []
    x = np.array(highs.getSolution().col_value)
    is_int = sub.integrality == 1
    roundings = [(is_int, x > 0.5)]
    if sub.cross is not None and sub.cross.any():
        roundings.append((is_int & sub.cross, x > 1e-6))
    out = []
    for mask, up in roundings:
        ints = np.flatnonzero(mask).astype(np.int32)
        fixed = np.clip(up[ints].astype(float), sub.col_lower[ints], sub.col_upper[ints])
        highs.changeColsBounds(len(ints), ints, fixed, fixed)
        highs.run()
        if highs.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            start = np.array(highs.getSolution().col_value)
            start[ints] = fixed
            out.append(start)
        all_ints = np.flatnonzero(is_int).astype(np.int32)
        highs.changeColsBounds(len(all_ints), all_ints, sub.col_lower[all_ints], sub.col_upper[all_ints])
    return out


def _price_with_integers_fixed(highs: highspy.Highs, sub: SubProblem,
                               x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Row duals and column values of the LP with every integer column fixed at its (rounded) MIP value.

    The values replace the MIP's: branch-and-bound accepts u = 5e-7 as 0 yet leaves q = 0.0005 kW beside
    it, which breaks the minimum-quantity rule; in the LP the fixed u is exactly 0. None if the LP failed."""
    if sub.num_int:
        ints = np.flatnonzero(sub.integrality).astype(np.int32)
        fixed = np.round(x[ints])
        highs.changeColsIntegrality(len(ints), ints, np.zeros(len(ints), dtype=np.uint8))
        highs.changeColsBounds(len(ints), ints, fixed, fixed)
        highs.setOptionValue("time_limit", highspy.kHighsInf)
        highs.run()
    sol = highs.getSolution()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal or not sol.dual_valid:
        return None
    return np.array(sol.row_dual), np.array(sol.col_value)


def polish_by_splitting(sub: SubProblem, start: np.ndarray, cross: np.ndarray, opts: dict[str, Any],
                        deadline: float) -> np.ndarray | None:
    """A start from a point whose `cross` columns are integral and consistent (the rest may be fractional):
    fix the cross columns there (moving their terms into the row bounds), split what is left into its
    components (per block, typically) and solve each piece as a small MIP. Every piece has a feasible
    point (nothing accepted, the rest short), so all solve unless time runs out (then None). A heuristic
    for the incumbent only: the proof of optimality is still the full model's."""
    fixed_value = np.where(cross, start, 0.0)
    row_len = np.diff(sub.a_start)
    row_of_nz = np.repeat(np.arange(len(sub.rows)), row_len)
    in_fixed = cross[sub.a_index]
    moved = np.bincount(row_of_nz, weights=np.where(in_fixed, sub.a_value * fixed_value[sub.a_index], 0.0),
                        minlength=len(sub.rows))
    keep = ~in_fixed
    start_ptr = np.zeros(len(sub.rows) + 1, dtype=np.int32)
    np.cumsum(np.bincount(row_of_nz[keep], minlength=len(sub.rows)), out=start_ptr[1:])
    lower = np.where(cross, start, sub.col_lower)
    upper = np.where(cross, start, sub.col_upper)
    pieces = subproblems(sub.col_cost, lower, upper, sub.integrality, sub.row_lower - moved, sub.row_upper - moved,
                         start_ptr, sub.a_index[keep], sub.a_value[keep])
    x = start.copy()
    for piece in pieces:
        if len(piece.rows) == 0:  # a column in no row: its cheaper bound
            x[piece.cols] = np.where(piece.col_cost >= 0, piece.col_lower, piece.col_upper)
            continue
        if not (~cross[piece.cols]).any():
            continue
        remaining = deadline - time.time()
        if remaining <= 0:
            return None
        highs = new_highs()
        for name in ("output_flag", "random_seed", "threads"):
            if name in opts:
                highs.setOptionValue(name, opts[name])
        highs.setOptionValue("time_limit", remaining)
        highs.setOptionValue("mip_rel_gap", HEURISTIC_GAP)
        _pass(highs, piece)
        highs.run()
        if highs.getInfo().primal_solution_status != 2:
            return None
        x[piece.cols] = np.array(highs.getSolution().col_value)
    if piece_violation(sub, x) > 1e-6:
        return None
    return x


def piece_violation(sub: SubProblem, x: np.ndarray) -> float:
    """Largest bound, row or integrality violation of `x` in `sub`."""
    row_of_nz = np.repeat(np.arange(len(sub.rows)), np.diff(sub.a_start))
    activity = np.bincount(row_of_nz, weights=sub.a_value * x[sub.a_index], minlength=len(sub.rows))
    ints = sub.integrality == 1
    return float(max(np.max(sub.col_lower - x, initial=0.0), np.max(x - sub.col_upper, initial=0.0),
                     np.max(sub.row_lower - activity, initial=0.0), np.max(activity - sub.row_upper, initial=0.0),
                     np.max(np.abs(x[ints] - np.round(x[ints])), initial=0.0)))


def _solve_in_worker(sub: SubProblem, options: SolveOptions, deadline: float | None) -> SubSolution:
    return solve_subproblem(sub, options, deadline=deadline)


def solve_components(subs: list[SubProblem], num_cols: int, num_rows: int, options: SolveOptions,
                     progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
                     started: float | None = None, workers: int | None = None) -> FastOutcome:
    """Solve every component (big ones in parallel processes), stitch columns, duals and figures."""
    started = time.perf_counter() if started is None else started
    deadline = time.time() + options.time_limit_s if options.time_limit_s is not None else None
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    big = [s for s in subs if len(s.cols) >= PARALLEL_MIN_COLS]
    results: dict[int, SubSolution] = {}
    done = 0
    total = len(subs)
    state = {"last": 0.0}

    def report(message: str, incumbent=None, bound=None) -> None:
        if progress is not None:
            progress(Progress("solving", time.perf_counter() - started, incumbent, bound,
                              relative_gap(incumbent, bound), message))

    def inline_event(event) -> None:
        if cancel is not None and cancel.is_set():
            event.interrupt()
        if progress is None:
            return
        now = time.perf_counter()
        if now - state["last"] < 0.2:
            return
        state["last"] = now
        out = event.data_out
        incumbent = out.mip_primal_bound if math.isfinite(out.mip_primal_bound) else None
        bound = out.mip_dual_bound if math.isfinite(out.mip_dual_bound) else None
        report(f"components {done}/{total}", incumbent, bound)

    pool = None
    futures = {}
    if len(big) >= 2 and workers >= 2:
        # the largest components go to processes; the main process takes the rest (and reports progress)
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        for pos, sub in enumerate(subs):
            if len(sub.cols) >= PARALLEL_MIN_COLS:
                futures[pool.submit(_solve_in_worker, sub, options, deadline)] = pos
    try:
        for pos, sub in enumerate(subs):
            if pos in futures.values():
                continue
            if cancel is not None and cancel.is_set():
                raise SolveCancelled("cancelled while solving")
            results[pos] = solve_subproblem(sub, options, on_event=inline_event, deadline=deadline)
            done += 1
            report(f"components {done}/{total}")
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in finished:
                results[futures[fut]] = fut.result()
                done += 1
                report(f"components {done}/{total}")
            if cancel is not None and cancel.is_set():
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
                raise SolveCancelled("cancelled while solving")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    return _stitch(subs, results, num_cols, num_rows, cancel)


def _stitch(subs: list[SubProblem], results: dict[int, SubSolution], num_cols: int, num_rows: int,
            cancel: threading.Event | None) -> FastOutcome:
    x = np.zeros(num_cols)
    row_dual = np.zeros(num_rows)
    objective = bound = 0.0
    seconds = 0.0
    nodes = 0
    statuses = []
    priced = True
    components = []
    pricing_seconds = 0.0
    for pos, sub in enumerate(subs):
        res = results[pos]
        statuses.append(res.status)
        seconds = max(seconds, res.seconds)
        nodes += res.nodes
        pricing_seconds += res.pricing_seconds
        components.append({"columns": int(len(sub.cols)), "rows": int(len(sub.rows)), "integers": sub.num_int,
                           "status": res.status, "seconds": round(res.seconds, 3), "nodes": res.nodes})
        if res.x is None:
            objective = None if objective is None else None
            continue
        x[sub.cols] = res.x
        if objective is not None:
            objective += res.objective
        if res.row_dual is not None:
            row_dual[sub.rows] = res.row_dual
        else:
            priced = False
        if bound is not None:
            bound = None if res.bound is None else bound + res.bound
    has_solution = all(r.x is not None for r in results.values())
    if not has_solution:
        objective = None
    if all(s == "OPTIMAL" for s in statuses):
        name = "OPTIMAL"
    elif cancel is not None and cancel.is_set():
        name = "CANCELLED"
    elif any(s == "ERROR" for s in statuses):
        name = "ERROR"
    else:
        name = "TIME_LIMIT_FEASIBLE" if has_solution else "TIME_LIMIT_NO_SOLUTION"
    if bound is not None and objective is not None:
        bound = min(bound, objective)
    gap = relative_gap(objective, bound)
    message = f"{len(subs)} component(s): " + ", ".join(sorted(set(statuses)))
    outcome = SolveOutcome(name, objective, bound, gap, seconds, nodes, has_solution, message)
    return FastOutcome(outcome, x if has_solution else None, row_dual if (has_solution and priced) else None,
                       components, pricing_seconds)
