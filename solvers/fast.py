"""The fast back-end: the MILP's arrays cut into independent components, each solved by highspy directly.

Why it is exact: a component is a connected component of the bipartite graph of columns and rows of the
constraint matrix (a union-find over every coupling the model has: bids spanning blocks and products,
groups, resources, parent links, lines, interfaces, import caps, balance rows). No row touches two
components and the objective is a sum over columns, so the optimum of the whole is the sum of the
components' optima, and proving each component within relative gap g proves the whole within g
(all objective terms are non-negative). The solutions are stitched back by column index.

Marginal prices: per component, the LP with every integer column fixed at its MIP value (SPEC §1),
exactly as the straight back-end does for the whole model (`solvers.highs.price_point`);
the row duals of the balance rows are the prices.

Components big enough to matter are solved in parallel processes (spawned, so a threaded caller such as
the gRPC server is safe); small ones inline, smallest first. MIP starts: the caller's (a merit-order
greedy, `clearing/warmstart.py`) and, here, LP roundings polished block by block; on big components
then Gomory cuts from the root tableau (`solvers/cuts.py`) and a large-neighbourhood search
(`solvers/lns.py`): in a process of its own beside branch-and-bound when a core is spare (the one big
component of a national auction, solved in the main process), else before it (issue 13; figures in
docs/performance.md). Daemonic processes (the server's solver workers) start no processes: no pool and
no search beside branch-and-bound there.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any

import highspy
import numpy as np

from solvers.api import Progress, ProgressCallback, Solution, SolveCancelled, SolveOptions, SolveOutcome, relative_gap
from solvers.cuts import gomory_rounds
from solvers.highs import (
    ArrayProblem,
    LpBasis,
    MipEvents,
    ProblemSolution,
    load_problem,
    new_highs,
    price_solution,
    release_freed_memory,
    run_problem,
    set_options,
    violation,
    with_integers_fixed,
)
from solvers.lns import ColumnTags, ConcurrentSearch, NeighbourhoodSearch

log = logging.getLogger("dkw.solvers.fast")

#: The start's polishing (`polish_by_splitting`) may take this share of the time left, at most HEURISTIC_MAX_S,
#: and solves its pieces to this gap (it only looks for a good incumbent; the proof is the full model's).
HEURISTIC_SHARE = 0.5
HEURISTIC_MAX_S = 30.0
HEURISTIC_GAP = 1e-4
#: HiGHS's sub-MIP heuristics, off in the polishing's pieces: half its time at 50,000 bids for the same start
#: (47.6 → 23.9 s; docs/performance.md, sixth round)
POLISH_OFF = ("mip_heuristic_run_rins", "mip_heuristic_run_rens")
#: Components with fewer columns than this are solved inline (a process costs more than the solve).
PARALLEL_MIN_COLS = 3000
#: HiGHS options the start heuristics take over from the caller's (not the gap: theirs is HEURISTIC_GAP)
HEURISTIC_OPTIONS = ("output_flag", "random_seed", "threads")
#: The neighbourhood search (solvers/lns.py) runs on components with at least this many integer columns
#: (national auctions from about 3,000 bids; below, branch-and-bound alone proves mid-size auctions sooner
#: than it could help), for LNS_SHARE of the time left after the start (at most LNS_MAX_S; it stops sooner
#: when it stalls).
LNS_MIN_INTEGERS = 2500
#: ... and at most this many: beyond, the search's own copy of the component costs more memory than its
#: improvements are worth (200,000 bids, 158,936 binaries: 1.3-1.5 GB for the search process, 2 of 17
#: sub-MILPs improving in 105 s; docs/performance.md); nor with less than LNS_MIN_LEFT_S left.
LNS_MAX_INTEGERS = 100_000
LNS_MIN_LEFT_S = 10.0
LNS_SHARE = 0.4
LNS_MAX_S = 120.0
#: Rounds of Gomory mixed-integer cuts (solvers/cuts.py) handed to HiGHS with the MIP, on components with at
#: least CUT_MIN_INTEGERS integer columns, within CUT_SHARE of the time left (at most CUT_MAX_S); 0: none.
#: A third of the time: at 5,000 bids branch-and-bound does not get past its root node in 60 s, so the time
#: is worth more to the rounds (up to 6 rounds instead of 1-2 on a slow machine: the bound 1.0M yen higher
#: on average; docs/performance.md, seventh round). The neighbourhood search runs beside them either way. Components
#: above CUT_BIG_INTEGERS keep the earlier 12% (CUT_SHARE_BIG): there a round re-solves an LP of seconds
#: to a minute, and the larger share was not measured (50,000 bids: no round fits at 60 s either way).
CUT_ROUNDS = 6
CUT_MIN_INTEGERS = 2500
CUT_MAX_PER_ROUND = 400
CUT_SHARE = 0.35
CUT_BIG_INTEGERS = 25_000
CUT_SHARE_BIG = 0.12
CUT_MAX_S = 40.0
#: The LP relaxation behind the starts and the bound leaves out cost coefficients below this (yen per unit):
#: the tie-break and flow-preference perturbations (clearing/index.py). With them the dual simplex needs
#: 16-21% more iterations (5,000 to 200,000 bids) for a bound higher by a few hundred yen in billions.
LP_COST_FLOOR_YEN = 1e-3


def solve_arrays(model, options: SolveOptions, progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None, started: float | None = None,
                 start: np.ndarray | None = None, block_tying: np.ndarray | None = None,
                 tags: ColumnTags | None = None) -> Solution:
    """Solve the MILP `model` (anything with the arrays of an `ArrayProblem`: col_cost … a_value) by its
    components. `start`: a feasible point of the whole model (used where given); `block_tying`: the columns
    that tie blocks together (a boolean per column), for the start polishing; `tags`: where each column sits
    in the market, for the neighbourhood search."""
    subs = subproblems(model.col_cost, model.col_lower, model.col_upper, model.integrality, model.row_lower,
                       model.row_upper, model.a_start, model.a_index, model.a_value)
    for sub in subs:
        if start is not None:
            sub.start = start[sub.cols]
        if block_tying is not None:
            sub.block_tying = block_tying[sub.cols]
        if tags is not None:
            sub.tags = tags.take(sub.cols)
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
                with_rows_only: bool = False) -> list[ArrayProblem]:
    """The model cut into its components, largest first; columns and rows keep their relative order.
    `with_rows_only`: leave out the components without a row (the start polishing's fixed columns: 60,904 of
    60,952 components at 50,000 bids, 1.2 s to build)."""
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
        if with_rows_only and row_bounds[c + 1] == row_bounds[c]:
            continue
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
                    deadline: float | None = None,
                    on_incumbent: Callable[[float | None, float | None], None] | None = None,
                    spare_core: bool = False) -> ProblemSolution:
    """Solve one component to the requested gap from the best start found, then (if `price`) the LP with
    its integers fixed. Big components (CUT_MIN_INTEGERS, LNS_MIN_INTEGERS) first get Gomory cut rounds
    for the bound (`solvers/cuts.py`, handed to HiGHS with the MIP) and a neighbourhood search for better
    incumbents (`solvers/lns.py`): with a `spare_core`, in a process of its own beside branch-and-bound
    for the whole time (every improvement handed to HiGHS as it comes), else before it, for a share of the
    time. `on_incumbent(objective, bound)` hears of every start, improvement and bound found."""
    settings = options.highs_settings()
    if deadline is None and "time_limit" in settings:
        deadline = time.time() + settings["time_limit"]
    cuts = None
    search = None
    lp_bound = None
    summaries: list[str] = []
    big = len(sub.cols) >= PARALLEL_MIN_COLS
    phase = time.time()

    def phase_done(what: str) -> None:
        """One line per step on big components (logger dkw.solvers.fast): where a clearing's time goes."""
        nonlocal phase
        if big:
            log.info("component of %d columns, %d integers: %s in %.1f s", len(sub.cols), sub.num_int, what,
                     time.time() - phase)
        phase = time.time()

    if options.warm_start and sub.num_int:
        if deadline is not None:
            settings["time_limit"] = max(0.01, deadline - time.time())
        spare = 2 if spare_core and options.threads != 1 else 1  # threads for the roundings and the polishing
        # two copies of the biggest components' LP at once would raise the peak that no memory ceiling watches
        candidates = lp_rounding_starts(sub, settings, workers=spare if sub.num_int <= LNS_MAX_INTEGERS else 1)
        if big:
            release_freed_memory()
        lp_seconds = time.time() - phase
        phase_done("LP relaxation and roundings")
        lp = candidates.pop() if candidates else None  # the LP relaxation: values, objective, basis
        lp_x, lp_bound, lp_basis = (lp if lp is not None else (None, None, None))
        if lp_bound is not None and on_incumbent is not None:  # the bound now, not after the polishing
            on_incumbent(None if sub.start is None else float(sub.col_cost @ sub.start), lp_bound)
        if sub.block_tying is not None and sub.block_tying.any():
            budget = HEURISTIC_SHARE * (deadline - time.time()) if deadline is not None else HEURISTIC_MAX_S
            polish_until = time.time() + min(HEURISTIC_MAX_S, max(budget, 0.0))
            # only the candidate with the block-tying columns rounded up (the last): the full rounding polishes
            # worse in about as long (50,000 bids: 2,859.7 against 2,847.5 million yen, 19.8 s and 21.8 s)
            polished = polish_by_splitting(sub, candidates[-1], sub.block_tying, settings, polish_until,
                                           workers=spare) \
                if len(candidates) > 1 else None
            candidates = [c for c in candidates[:1] + [polished] if c is not None]
            if big:
                release_freed_memory()
            phase_done("start polished block by block")
        for candidate in candidates:
            if sub.start is None or sub.col_cost @ candidate < sub.col_cost @ sub.start:
                sub.start = candidate
        if sub.start is not None and on_incumbent is not None:
            on_incumbent(float(sub.col_cost @ sub.start), lp_bound)
        run_search = sub.start is not None and LNS_MIN_INTEGERS <= sub.num_int <= LNS_MAX_INTEGERS \
            and (deadline is None or deadline - time.time() >= LNS_MIN_LEFT_S)
        improved = None if on_incumbent is None else lambda obj: on_incumbent(obj, lp_bound)
        if run_search and spare_core and options.threads != 1:
            # from now until the end, beside the cuts and the branch-and-bound of this process
            search = ConcurrentSearch(sub, sub.start, lp_x, sub.tags, settings,
                                      deadline if deadline is not None else math.inf, improved)
        try:
            share = CUT_SHARE if sub.num_int <= CUT_BIG_INTEGERS else CUT_SHARE_BIG
            budget = share * (deadline - time.time()) if deadline is not None else CUT_MAX_S
            # a round re-solves an LP bigger than the relaxation (a slack column per row): when the
            # relaxation and its two roundings alone took longer than the budget, no round would finish
            if CUT_ROUNDS and sub.num_int >= CUT_MIN_INTEGERS and lp_seconds < min(CUT_MAX_S, budget):
                cuts = gomory_rounds(sub, CUT_ROUNDS, CUT_MAX_PER_ROUND,
                                     time.time() + min(CUT_MAX_S, max(budget, 0.0)), threads=options.threads,
                                     basis=lp_basis)
                if cuts.bounds:
                    lp_bound = max(cuts.bounds + ([lp_bound] if lp_bound is not None else []))
                summaries.append(f"{len(cuts)} Gomory cuts in {cuts.seconds:.0f} s, LP bound {cuts.bounds[0]:,.0f} "
                                 f"→ {lp_bound:,.0f}" if cuts.bounds else "Gomory cuts: the LP did not solve")
                if sub.start is not None and on_incumbent is not None:
                    on_incumbent(float(sub.col_cost @ sub.start), lp_bound)
                phase_done(summaries[-1])
        except BaseException:
            if search is not None:
                search.finish()
            raise
        if run_search and search is None:
            budget = LNS_SHARE * (deadline - time.time()) if deadline is not None else LNS_MAX_S
            sequential = NeighbourhoodSearch(sub, sub.start, lp_x, sub.tags, settings)
            cancel = on_event.cancel if on_event is not None else None
            sub.start = sequential.run(time.time() + min(LNS_MAX_S, max(budget, 0.0)), improved,
                                       stop=None if cancel is None else cancel.is_set)
            summaries.append(sequential.stats.summary())
            phase_done(summaries[-1])
    if search is None:
        solved = run_problem(sub, options, deadline=deadline, on_event=on_event, price=price, cuts=cuts)
    else:
        solved, whose = _branch_and_bound_beside(search, sub, options, deadline, on_event, price, cuts)
        # a search process that had not reported when branch-and-bound ended (a loaded machine: it gets
        # half a second) still ran: the message says so rather than leaving it out
        ran = search.stats.summary() if search.stats is not None else "neighbourhood search (no report in time)"
        summaries.append(ran + " beside branch-and-bound" + whose)
    phase_done(f"branch-and-bound ({solved.nodes} nodes, {solved.status}) and pricing "
               f"({solved.pricing_seconds:.1f} s)")
    # lp_bound (the LP relaxation's, raised by the cut rounds) is proven too; branch-and-bound stopped by the
    # limit may not have got back up to it (or, on the largest auctions, not even through its root)
    if lp_bound is not None and solved.status != "OPTIMAL":
        solved.bound = lp_bound if solved.bound is None else max(solved.bound, lp_bound)
    if summaries:
        solved.message = "; ".join([solved.message] + summaries)
    return solved


def _branch_and_bound_beside(search: ConcurrentSearch, sub: ArrayProblem, options: SolveOptions,
                             deadline: float | None, on_event: MipEvents | None, price: bool,
                             cuts: Any) -> tuple[ProblemSolution, str]:
    """HiGHS's branch-and-bound on `sub` while `search` runs in its own process: its improvements are
    handed to HiGHS as user solutions (it asks before each dive); at the end the better of the two points
    is the component's (priced here, since it may not be the one HiGHS holds). Also returns each side's
    best objective as text for the solver message, so a reader sees which found the point (HiGHS's
    heuristics start from the search's points: at 5,000 bids they often found the final incumbent;
    docs/performance.md, seventh round)."""
    try:
        solved = run_problem(sub, options, deadline=deadline, on_event=on_event, price=False, cuts=cuts,
                             user_solution=search.offer)
    finally:
        x, objective, _stats = search.finish()
    if solved.objective is None:
        whose = f" (its best {objective:,.0f}; branch-and-bound none)"
    else:
        whose = f" (its best {objective:,.0f}; branch-and-bound's {solved.objective:,.0f})"
    if solved.x is None or objective < solved.objective:
        solved.x, solved.objective = x, objective
    if price and solved.x is not None:
        price_solution(sub, solved)
    return solved, whose


def lp_rounding_starts(sub: ArrayProblem, opts: dict[str, Any], workers: int = 1) -> list[np.ndarray]:
    """MIP start candidates from the LP relaxation, each a point whose `block_tying` columns are integral,
    followed by the LP relaxation itself as (values, objective, basis) (for RINS, the bound, and the cut
    rounds' first LP); [] if the LP did not solve:

    1. every binary above one half to 1, the rest 0, the LP over the continuous columns (a full start);
    2. with `sub.block_tying` (the columns tying blocks together): those binaries rounded up (what the LP uses
       at all is taken), the other binaries left relaxed, the LP again (to be polished block by block).

    Rounding keeps the coupling rows (Σu ≤ 1 in a group, u[child] ≤ u[parent], u ≤ v[resource])
    satisfied in the usual cases; a rounding HiGHS finds infeasible gives no candidate.

    The relaxation leaves out the costs below LP_COST_FLOOR_YEN; each rounding is a fresh LP with its
    integers fixed, presolved, rather than a warm start of the relaxation (docs/performance.md, fourth
    round: 200,000 bids, 127 s → 76-84 s for the relaxation, 22-40 s → 4-12 s per rounding). With `workers` > 1
    the two roundings are solved at once, in threads."""
    deadline = time.time() + opts["time_limit"] if "time_limit" in opts else math.inf
    highs = new_highs()
    set_options(highs, opts, HEURISTIC_OPTIONS + ("time_limit",))
    # non-negative perturbations dropped: the relaxation's optimum is still a lower bound of the MILP's
    tiny = (sub.col_cost > 0) & (sub.col_cost < LP_COST_FLOOR_YEN)
    relaxed = dataclasses.replace(sub, col_cost=np.where(tiny, 0.0, sub.col_cost),
                                  integrality=np.zeros_like(sub.integrality), start=None)
    load_problem(highs, relaxed)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return []
    x = np.array(highs.getSolution().col_value)
    # the basis spares the cut rounds their first LP (50,000 bids: 15 s → 2 s; docs/performance.md, eighth round)
    lp = (x, float(highs.getInfo().objective_function_value), LpBasis.of(highs))
    del highs
    is_int = sub.integrality == 1
    roundings = [(is_int, x > 0.5)]
    if sub.block_tying is not None and sub.block_tying.any():
        roundings.append((is_int & sub.block_tying, x > 1e-6))

    def rounded(mask: np.ndarray, up: np.ndarray) -> np.ndarray | None:
        remaining = deadline - time.time()
        if remaining <= 0:
            return None
        ints = np.flatnonzero(mask)
        fixed = np.clip(up[ints].astype(float), sub.col_lower[ints], sub.col_upper[ints])
        highs = new_highs()
        set_options(highs, opts, HEURISTIC_OPTIONS)
        if workers > 1:
            highs.setOptionValue("threads", 1)
        if math.isfinite(remaining):
            highs.setOptionValue("time_limit", remaining)
        load_problem(highs, with_integers_fixed(sub, ints, fixed))
        highs.run()
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        start = np.array(highs.getSolution().col_value)
        start[ints] = fixed
        return start

    out = in_threads(lambda rounding: rounded(*rounding), roundings, workers)
    return [start for start in out if start is not None] + [lp]


def in_threads(fn: Callable[[Any], Any], items: list[Any], workers: int) -> list[Any]:
    """[fn(item) for item in items], `workers` at a time in threads when more than one (highspy lets go of
    the GIL while HiGHS solves: two small solves take the two cores)."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="dkw-start") as pool:
        return list(pool.map(fn, items))


def polish_by_splitting(sub: ArrayProblem, start: np.ndarray, block_tying: np.ndarray, opts: dict[str, Any],
                        deadline: float, workers: int = 1) -> np.ndarray | None:
    """A start from a point whose `block_tying` columns are integral and consistent (the rest may be fractional):
    fix the block-tying columns there (moving their terms into the row bounds), split what is left into its
    components (per block, typically) and solve each piece as a small MIP, `workers` at a time (threads:
    HiGHS lets go of the GIL while it solves). Every piece has a feasible point (nothing accepted, the rest
    short); each gets an equal share of the time left, and a piece with no feasible point found in its share
    gives None. A heuristic for the incumbent only: the proof of optimality is still the full model's."""
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
                         start_ptr, sub.a_index[keep], sub.a_value[keep], with_rows_only=True)
    # a column in no row takes its cheaper bound (the fixed ones: their value), the pieces' columns their solution
    x = np.where(sub.col_cost >= 0, lower, upper)
    to_solve = [piece for piece in pieces if (~block_tying[piece.cols]).any()]
    # the biggest first, so that the workers end together; each piece's answer does not depend on the order
    to_solve.sort(key=lambda piece: -len(piece.cols))
    workers = max(1, min(workers, len(to_solve)))
    lock = threading.Lock()
    begun = 0

    def solve(piece: ArrayProblem) -> np.ndarray | None:
        nonlocal begun
        with lock:
            rounds_left = math.ceil((len(to_solve) - begun) / workers)
            begun += 1
        remaining = deadline - time.time()
        if remaining <= 0:
            return None
        highs = new_highs()
        set_options(highs, opts, HEURISTIC_OPTIONS)
        if workers > 1:
            highs.setOptionValue("threads", 1)
        # a fair share of what is left, so that one hard piece cannot leave the rest without time: a piece
        # stopped at its share keeps its incumbent (HiGHS's heuristics find one at once on these pieces)
        highs.setOptionValue("time_limit", remaining / rounds_left)
        highs.setOptionValue("mip_rel_gap", HEURISTIC_GAP)
        for name in POLISH_OFF:
            highs.setOptionValue(name, False)
        load_problem(highs, piece)
        highs.run()
        if highs.getInfo().primal_solution_status != 2:
            return None
        return np.array(highs.getSolution().col_value)

    for piece, v in zip(to_solve, in_threads(solve, to_solve, workers), strict=True):
        if v is None:
            return None
        x[piece.cols] = v
    if violation(sub, x) > 1e-6:
        return None
    return x


#: in a pool process: the parent's cancel, as a multiprocessing event (set by `_init_worker`)
_worker_cancel: Any = None
#: after a cancel, how long the components in other processes get to stop and hand back their incumbents
CANCEL_GRACE_S = 10.0  # below the server's 15 s before it terminates a worker that does not answer


def _init_worker(cancel_event: Any) -> None:
    global _worker_cancel
    _worker_cancel = cancel_event


def _solve_in_worker(sub: ArrayProblem, options: SolveOptions, deadline: float | None) -> ProblemSolution:
    # HiGHS stops at its next callback when the parent cancels, and the component keeps its incumbent
    events = None if _worker_cancel is None else MipEvents(None, _worker_cancel, time.perf_counter())
    return solve_component(sub, options, deadline=deadline, on_event=events)


def solve_components(subs: list[ArrayProblem], num_cols: int, num_rows: int, options: SolveOptions,
                     progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
                     started: float | None = None, workers: int | None = None) -> Solution:
    """Solve every component (big ones in parallel processes), stitch columns, duals and figures."""
    started = time.perf_counter() if started is None else started
    deadline = time.time() + options.time_limit_s if options.time_limit_s is not None else None
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if multiprocessing.current_process().daemon:
        # a daemonic process (the server's solver workers) may not start processes: no pool, no search beside
        workers = 1
    big = [s for s in subs if len(s.cols) >= PARALLEL_MIN_COLS]
    results: dict[int, ProblemSolution] = {}
    done = 0
    total = len(subs)
    # the whole auction's incumbent and bound: per component the best known (its start, else unknown) and
    # its best bound (0 until known: every objective term is non-negative)
    incumbents = [float(s.col_cost @ s.start) if s.start is not None else None for s in subs]
    bounds = [0.0] * total

    def components_done() -> str:
        return f"components {done}/{total}"

    def report() -> None:
        if progress is None:
            return
        incumbent = None if any(v is None for v in incumbents) else float(sum(incumbents))
        bound = float(sum(bounds))
        if incumbent is not None:
            bound = min(bound, incumbent)
        progress(Progress("solving", time.perf_counter() - started, incumbent, bound, relative_gap(incumbent, bound),
                          components_done()))

    def component_progress(pos: int) -> ProgressCallback:
        """One component's MIP progress folded into the whole auction's."""
        def update(p: Progress) -> None:
            if p.incumbent is not None:
                incumbents[pos] = p.incumbent if incumbents[pos] is None else min(incumbents[pos], p.incumbent)
            if p.bound is not None:
                bounds[pos] = max(bounds[pos], p.bound)
            report()
        return update

    def component_incumbent(pos: int) -> Callable[[float | None, float | None], None]:
        def update(objective: float | None, bound: float | None) -> None:
            component_progress(pos)(Progress("solving", incumbent=objective, bound=bound))
        return update

    def record(pos: int, res: ProblemSolution) -> None:
        nonlocal done
        results[pos] = res
        if res.objective is not None:
            incumbents[pos] = res.objective
        if res.bound is not None:
            bounds[pos] = max(bounds[pos], res.bound)
        done += 1
        report()

    pool = None
    futures = {}
    if len(big) >= 2 and workers >= 2:
        # the largest components go to processes; the main process takes the rest (and reports progress)
        ctx = multiprocessing.get_context("spawn")
        worker_cancel = ctx.Event()
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(worker_cancel,))
        for pos, sub in enumerate(subs):
            if len(sub.cols) >= PARALLEL_MIN_COLS:
                futures[pool.submit(_solve_in_worker, sub, options, deadline)] = pos
    try:
        # smallest first: the many small components are done in moments, so the counter and the whole
        # auction's figures move from the start, and the big one's progress is reported on top of them
        for pos in reversed(range(total)):
            if pos in futures.values():
                continue
            if cancel is not None and cancel.is_set():
                raise SolveCancelled("cancelled while solving")
            events = MipEvents(component_progress(pos) if progress is not None else None, cancel, started,
                               components_done)
            record(pos, solve_component(subs[pos], options, on_event=events, deadline=deadline,
                                        on_incumbent=component_incumbent(pos) if progress is not None else None,
                                        spare_core=pool is None and workers >= 2))
        pending = set(futures)
        cancel_seen = None
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in finished:
                record(futures[fut], fut.result())
            if cancel is not None and cancel.is_set():
                if cancel_seen is None:  # the other processes stop their solves and answer with their incumbents
                    worker_cancel.set()
                    cancel_seen = time.monotonic()
                elif time.monotonic() - cancel_seen > CANCEL_GRACE_S:
                    for proc in list(getattr(pool, "_processes", {}).values()):
                        proc.terminate()
                    raise SolveCancelled("cancelled while solving")
    finally:
        if pool is not None:
            if cancel is not None and cancel.is_set():
                worker_cancel.set()  # also when the cancel came while this process solved the small components
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
    searches = [r.message.split("; ", 1)[1] for r in results.values() if "; " in r.message]  # what cuts and search did
    if searches:
        message += "; " + "; ".join(searches)
    stopped_by = [r.stopped_by for r in results.values() if r.stopped_by]
    if stopped_by:  # why a component stopped before its time limit (the first such)
        message += f" ({stopped_by[0]})"
    outcome = SolveOutcome(name, objective, bound, gap, seconds, nodes, has_solution, message)
    return Solution(outcome, x if has_solution else None, row_dual if (has_solution and priced) else None,
                    pricing_seconds=pricing_seconds)
