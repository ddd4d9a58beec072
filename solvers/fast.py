"""The fast back-end: the MILP's arrays cut into independent components, each solved by highspy directly.

Why it is exact: a component is a connected component of the bipartite graph of columns and rows of the
constraint matrix (a union-find over every coupling the model has: bids spanning blocks and products,
groups, resources, parent links, lines, interfaces, import caps, balance rows). No row touches two
components and the objective is a sum over columns, so the optimum of the whole is the sum of the
components' optima, and proving each component within relative gap g proves the whole within g
(all objective terms are non-negative). The solutions are stitched back by column index.

Marginal prices: per component, the LP with every integer column fixed at its MIP value (SPEC §1),
exactly as the straight back-end does for the whole model (`solvers.highs.price_with_integers_fixed`);
the row duals of the balance rows are the prices.

Components big enough to matter are solved in parallel processes (spawned, so a threaded caller such as
the gRPC server is safe); small ones inline. MIP starts: the caller's (a merit-order greedy,
`clearing/warmstart.py`) and, here, LP roundings polished block by block.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

import highspy
import numpy as np

from solvers.api import Progress, ProgressCallback, Solution, SolveCancelled, SolveOptions, SolveOutcome, relative_gap
from solvers.highs import (
    ArrayProblem,
    MipEvents,
    ProblemSolution,
    load_problem,
    new_highs,
    run_problem,
    set_options,
    violation,
)

#: The start's polishing (`polish_by_splitting`) may take this share of the time left, at most HEURISTIC_MAX_S,
#: and solves its pieces to this gap (it only looks for a good incumbent; the proof is the full model's).
HEURISTIC_SHARE = 0.25
HEURISTIC_MAX_S = 30.0
HEURISTIC_GAP = 1e-4
#: Components with fewer columns than this are solved inline (a process costs more than the solve).
PARALLEL_MIN_COLS = 3000
#: HiGHS options the start heuristics take over from the caller's (not the gap: theirs is HEURISTIC_GAP)
HEURISTIC_OPTIONS = ("output_flag", "random_seed", "threads")


def solve_arrays(model, options: SolveOptions, progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None, started: float | None = None,
                 start: np.ndarray | None = None, block_tying: np.ndarray | None = None) -> Solution:
    """Solve the MILP `model` (anything with the arrays of an `ArrayProblem`: col_cost … a_value) by its
    components. `start`: a feasible point of the whole model (used where given); `block_tying`: the columns
    that tie blocks together (a boolean per column), for the start polishing."""
    subs = subproblems(model.col_cost, model.col_lower, model.col_upper, model.integrality, model.row_lower,
                       model.row_upper, model.a_start, model.a_index, model.a_value)
    for sub in subs:
        if start is not None:
            sub.start = start[sub.cols]
        if block_tying is not None:
            sub.block_tying = block_tying[sub.cols]
    if progress:
        progress(Progress("solving", time.perf_counter() - (started or time.perf_counter()),
                          message=f"{len(subs)} component(s)"))
    return solve_components(subs, len(model.col_cost), len(model.row_lower), options, progress, cancel, started)


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
                ) -> list[ArrayProblem]:
    """The model cut into its components, largest first; columns and rows keep their relative order."""
    num_cols = len(col_cost)
    col_label, row_label, count = split_components(num_cols, a_start, a_index)
    col_order = np.argsort(col_label, kind="stable")
    row_order = np.argsort(row_label, kind="stable")
    col_bounds = np.searchsorted(col_label[col_order], np.arange(count + 1))
    row_bounds = np.searchsorted(row_label[row_order], np.arange(count + 1))
    local = np.empty(num_cols, dtype=np.int32)
    lengths = np.diff(a_start)
    out: list[ArrayProblem] = []
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
        out.append(ArrayProblem(
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


def solve_component(sub: ArrayProblem, options: SolveOptions, price: bool = True, on_event: MipEvents | None = None,
                    deadline: float | None = None) -> ProblemSolution:
    """Solve one component to the requested gap from the best start found, then (if `price`) the LP with
    its integers fixed."""
    settings = options.highs_settings()
    if deadline is None and "time_limit" in settings:
        deadline = time.time() + settings["time_limit"]
    if options.warm_start and sub.num_int:
        if deadline is not None:
            settings["time_limit"] = max(0.01, deadline - time.time())
        candidates = lp_rounding_starts(sub, settings)
        if sub.block_tying is not None and sub.block_tying.any():
            budget = HEURISTIC_SHARE * (deadline - time.time()) if deadline is not None else HEURISTIC_MAX_S
            polish_until = time.time() + min(HEURISTIC_MAX_S, max(budget, 0.0))
            # the candidate with the block-tying columns rounded up first: it is the one that polishes well on national auctions
            polished = [polish_by_splitting(sub, c, sub.block_tying, settings, polish_until) for c in reversed(candidates)]
            candidates = [c for c in candidates[:1] + polished if c is not None]
        for candidate in candidates:
            if sub.start is None or sub.col_cost @ candidate < sub.col_cost @ sub.start:
                sub.start = candidate
    return run_problem(sub, options, deadline=deadline, on_event=on_event, price=price)


def lp_rounding_starts(sub: ArrayProblem, opts: dict[str, Any]) -> list[np.ndarray]:
    """MIP start candidates from the LP relaxation, each a point whose `block_tying` columns are integral:

    1. every binary above one half to 1, the rest 0, the LP over the continuous columns (a full start);
    2. with `sub.block_tying` (the columns tying blocks together): those binaries rounded up (what the LP uses
       at all is taken), the other binaries left relaxed, the LP again (to be polished block by block).

    Rounding keeps the coupling rows (Σu ≤ 1 in a group, u[child] ≤ u[parent], u ≤ v[resource])
    satisfied in the usual cases; a rounding HiGHS finds infeasible gives no candidate."""
    highs = new_highs()
    set_options(highs, opts, HEURISTIC_OPTIONS + ("time_limit",))
    relaxed = ArrayProblem(sub.cols, sub.rows, sub.col_cost, sub.col_lower, sub.col_upper,
                         np.zeros_like(sub.integrality), sub.row_lower, sub.row_upper, sub.a_start, sub.a_index,
                         sub.a_value)
    load_problem(highs, relaxed)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return []
    x = np.array(highs.getSolution().col_value)
    is_int = sub.integrality == 1
    roundings = [(is_int, x > 0.5)]
    if sub.block_tying is not None and sub.block_tying.any():
        roundings.append((is_int & sub.block_tying, x > 1e-6))
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


def polish_by_splitting(sub: ArrayProblem, start: np.ndarray, block_tying: np.ndarray, opts: dict[str, Any],
                        deadline: float) -> np.ndarray | None:
    """A start from a point whose `block_tying` columns are integral and consistent (the rest may be fractional):
    fix the block-tying columns there (moving their terms into the row bounds), split what is left into its
    components (per block, typically) and solve each piece as a small MIP. Every piece has a feasible
    point (nothing accepted, the rest short), so all solve unless time runs out (then None). A heuristic
    for the incumbent only: the proof of optimality is still the full model's."""
    fixed_value = np.where(block_tying, start, 0.0)
    row_len = np.diff(sub.a_start)
    row_of_nz = np.repeat(np.arange(len(sub.rows)), row_len)
    in_fixed = block_tying[sub.a_index]
    moved = np.bincount(row_of_nz, weights=np.where(in_fixed, sub.a_value * fixed_value[sub.a_index], 0.0),
                        minlength=len(sub.rows))
    keep = ~in_fixed
    start_ptr = np.zeros(len(sub.rows) + 1, dtype=np.int32)
    np.cumsum(np.bincount(row_of_nz[keep], minlength=len(sub.rows)), out=start_ptr[1:])
    lower = np.where(block_tying, start, sub.col_lower)
    upper = np.where(block_tying, start, sub.col_upper)
    pieces = subproblems(sub.col_cost, lower, upper, sub.integrality, sub.row_lower - moved, sub.row_upper - moved,
                         start_ptr, sub.a_index[keep], sub.a_value[keep])
    x = start.copy()
    for piece in pieces:
        if len(piece.rows) == 0:  # a column in no row: its cheaper bound
            x[piece.cols] = np.where(piece.col_cost >= 0, piece.col_lower, piece.col_upper)
            continue
        if not (~block_tying[piece.cols]).any():
            continue
        remaining = deadline - time.time()
        if remaining <= 0:
            return None
        highs = new_highs()
        set_options(highs, opts, HEURISTIC_OPTIONS)
        highs.setOptionValue("time_limit", remaining)
        highs.setOptionValue("mip_rel_gap", HEURISTIC_GAP)
        load_problem(highs, piece)
        highs.run()
        if highs.getInfo().primal_solution_status != 2:
            return None
        x[piece.cols] = np.array(highs.getSolution().col_value)
    if violation(sub, x) > 1e-6:
        return None
    return x


def _solve_in_worker(sub: ArrayProblem, options: SolveOptions, deadline: float | None) -> ProblemSolution:
    return solve_component(sub, options, deadline=deadline)


def solve_components(subs: list[ArrayProblem], num_cols: int, num_rows: int, options: SolveOptions,
                     progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
                     started: float | None = None, workers: int | None = None) -> Solution:
    """Solve every component (big ones in parallel processes), stitch columns, duals and figures."""
    started = time.perf_counter() if started is None else started
    deadline = time.time() + options.time_limit_s if options.time_limit_s is not None else None
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    big = [s for s in subs if len(s.cols) >= PARALLEL_MIN_COLS]
    results: dict[int, ProblemSolution] = {}
    done = 0
    total = len(subs)

    def components_done() -> str:
        return f"components {done}/{total}"

    def report() -> None:
        if progress is not None:
            progress(Progress("solving", time.perf_counter() - started, message=components_done()))

    inline_events = MipEvents(progress, cancel, started, components_done)
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
            results[pos] = solve_component(sub, options, on_event=inline_events, deadline=deadline)
            done += 1
            report()
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in finished:
                results[futures[fut]] = fut.result()
                done += 1
                report()
            if cancel is not None and cancel.is_set():
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
                raise SolveCancelled("cancelled while solving")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    return _stitch(subs, results, num_cols, num_rows, cancel)


def _stitch(subs: list[ArrayProblem], results: dict[int, ProblemSolution], num_cols: int, num_rows: int,
            cancel: threading.Event | None) -> Solution:
    """The components' solutions as one: values and duals by global index, the objectives and bounds
    summed, the status the worst of theirs."""
    x = np.zeros(num_cols)
    row_dual = np.zeros(num_rows)
    objective = bound = 0.0
    seconds = 0.0
    nodes = 0
    statuses = []
    priced = True
    pricing_seconds = 0.0
    for pos, sub in enumerate(subs):
        res = results[pos]
        statuses.append(res.status)
        seconds = max(seconds, res.seconds)
        nodes += res.nodes
        pricing_seconds += res.pricing_seconds
        if res.x is None:
            continue
        x[sub.cols] = res.x
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
    return Solution(outcome, x if has_solution else None, row_dual if (has_solution and priced) else None,
                    pricing_seconds=pricing_seconds)
