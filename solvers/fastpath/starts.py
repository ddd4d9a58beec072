"""Every MIP start of the fast path, in one place: the whole model's (a merit-order greedy, or the point
carried from an earlier solve: `whole_model_start`) and, per component, the LP roundings
(`lp_rounding_starts`; the polished one is `solvers/fastpath/polish.py`). A point handed back by the search
or branch-and-bound is the component's incumbent, kept in `ArrayProblem.start`.

HiGHS alone may search a national auction for a minute without a single feasible point, although one
always exists (accept nothing, report everything short). A start gives it an incumbent from the first
node, so a time limit always ends with a result, and the search prunes from the start.

The greedy: bids in order of cost per kW per balance row they serve (cheapest first, document order on
ties), each local to its area (no flows), accepted when the shortfall it removes is worth more than its
cost (start-up included), at the most that is still useful, but at least its minimum; groups, parents
and resource capacities respected. Shortfall covers the rest. Every rule of SPEC §3 holds by construction.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from dkw.clearing.figures import ZERO_KW
from dkw.clearing.formulation import Formulation
from dkw.clearing.matrix import MatrixModel
from dkw.solvers.api import START_TOLERANCE
from dkw.solvers.arrays import ArrayProblem, violation
from dkw.solvers.highs import LpBasis, highs_for, limit_next_lp, solved_optimally, with_integers_fixed
from dkw.solvers.tuning import FastPathTuning

#: HiGHS options the start heuristics take over from the caller's (not the gap: the polishing has its own)
HEURISTIC_OPTIONS = ("output_flag", "random_seed", "threads")


def whole_model_start(mm: MatrixModel, hint: np.ndarray | None) -> np.ndarray | None:
    """The MIP start of the whole model: the merit-order greedy's point, or `hint` (a point carried from an
    earlier solve, `carried_start`) where it is feasible and cheaper."""
    start = greedy_start(mm)
    if violation(mm, start) > START_TOLERANCE:  # feasible by construction; the guard keeps a bug from HiGHS
        start = None
    return start if hint is None else cheaper_feasible(mm, start, hint)


def cheaper_feasible(problem: ArrayProblem, current: np.ndarray | None, candidate: np.ndarray) -> np.ndarray | None:
    """`candidate` (the object itself) where it is feasible in `problem` (a MatrixModel or ArrayProblem) and
    cheaper than `current`, or `current` is None; else `current`."""
    if violation(problem, candidate) > START_TOLERANCE:
        return current
    if current is None or float(problem.col_cost @ candidate) < float(problem.col_cost @ current):
        return candidate
    return current


def carried_start(old: Formulation, x: np.ndarray, new: Formulation) -> np.ndarray:
    """The point `x` of `old` in `new`'s columns, for a re-solve in which some bids got an acceptance
    binary: columns are matched by their keys; a new binary is 1 where its bid is accepted, and a bid
    accepted below 1 kW is raised to 1 kW (the point may then break a resource's capacity:
    `whole_model_start` checks it before using it)."""
    where = {(g.name, key): g.first + j for g in old.columns.groups for j, key in enumerate(g.keys)}
    carried = np.zeros(new.columns.num_cols)
    for g in new.columns.groups:
        for j, key in enumerate(g.keys):
            col = where.get((g.name, key))
            if col is not None:
                carried[g.first + j] = x[col]
    q = carried[:new.columns.num_bids]
    for i, u in new.columns.u_col.items():
        if i not in old.columns.u_col and q[i] > ZERO_KW:  # the same bids, in the same order
            carried[u] = 1.0
            q[i] = max(q[i], 1.0)
    return carried


#: the LP relaxation of a component: values, objective, basis (for RINS, the bound, the cut rounds' first LP)
LpRelaxation = tuple[np.ndarray, float, LpBasis | None]


def lp_rounding_starts(sub: ArrayProblem, opts: dict[str, Any], tuning: FastPathTuning,
                       workers: int = 1) -> tuple[list[np.ndarray], LpRelaxation | None]:
    """MIP start candidates from the LP relaxation, each a point whose `block_tying` columns are integral,
    and the LP relaxation itself; ([], None) if the LP did not solve:

    1. every binary above one half to 1, the rest 0, the LP over the continuous columns (a full start);
    2. with `sub.block_tying` (the columns tying blocks together): those binaries rounded up (what the LP uses
       at all is taken), the other binaries left relaxed, the LP again (to be polished block by block).

    Rounding keeps the coupling rows (Σu ≤ 1 in a group, u[child] ≤ u[parent], u ≤ v[resource])
    satisfied in the usual cases; a rounding HiGHS finds infeasible gives no candidate.

    The relaxation leaves out the costs below `tuning.lp_cost_floor_yen`; each rounding is a fresh LP with
    its integers fixed, presolved, rather than a warm start of the relaxation (docs/performance.md, fourth
    round: 200,000 bids, 127 s → 76-84 s for the relaxation, 22-40 s → 4-12 s per rounding). With `workers`
    > 1 the two roundings are solved at once, in threads."""
    deadline = time.time() + opts["time_limit"] if "time_limit" in opts else math.inf
    # non-negative perturbations dropped: the relaxation's optimum is still a lower bound of the MILP's
    tiny = (sub.col_cost > 0) & (sub.col_cost < tuning.lp_cost_floor_yen)
    relaxed = dataclasses.replace(sub, col_cost=np.where(tiny, 0.0, sub.col_cost),
                                  integrality=np.zeros_like(sub.integrality), start=None)
    highs = highs_for(relaxed, opts, HEURISTIC_OPTIONS + ("time_limit",))
    highs.run()
    if not solved_optimally(highs):
        return [], None
    x = np.array(highs.getSolution().col_value)
    # the basis spares the cut rounds their first LP (50,000 bids: 15 s → 2 s; docs/performance.md, eighth round)
    lp = (x, float(highs.getInfo().objective_function_value), LpBasis.of(highs))
    is_int = sub.integrality == 1
    roundings = [(is_int, x > 0.5)]
    if sub.block_tying is not None and sub.block_tying.any():
        rounded_up = x
        if tuning.start_up_rescaling_rounds and tuning.search_at_scale(sub.num_int) \
                and sub.num_int <= tuning.lns_max_integers:
            budget = tuning.start_up_rescaling_share * (deadline - time.time())
            rounded_up = rescaled_start_ups(highs, relaxed.col_cost, is_int & sub.block_tying, x,
                                            tuning.start_up_rescaling_rounds, time.time() + budget)
        roundings.append((is_int & sub.block_tying, rounded_up > 1e-6))
    del highs
    threads = 1 if workers > 1 else None
    out = in_threads(lambda rounding: rounded_start(sub, *rounding, opts, deadline, threads), roundings, workers)
    return [start for start in out if start is not None], lp


def rounded_start(sub: ArrayProblem, mask: np.ndarray, up: np.ndarray, opts: dict[str, Any], deadline: float,
                  threads: int | None = None) -> np.ndarray | None:
    """The columns in `mask` fixed at `up` (within their bounds), the LP over the rest: a point with those
    columns integral, or None if that LP is infeasible or does not solve by `deadline` (time.time())."""
    remaining = deadline - time.time()
    if remaining <= 0:
        return None
    ints = np.flatnonzero(mask)
    fixed = np.clip(up[ints].astype(float), sub.col_lower[ints], sub.col_upper[ints])
    highs = highs_for(with_integers_fixed(sub, ints, fixed), opts, HEURISTIC_OPTIONS, threads=threads,
                      time_limit=remaining if math.isfinite(remaining) else None)
    highs.run()
    if not solved_optimally(highs):
        return None
    start = np.array(highs.getSolution().col_value)
    start[ints] = fixed
    return start


#: `rescaled_start_ups`: a column's LP value counts as at least this when its cost is divided by it.
RESCALING_FLOOR = 1e-3


def rescaled_start_ups(highs: Any, cost: np.ndarray, block_tying: np.ndarray, x: np.ndarray, rounds: int,
                       deadline: float) -> np.ndarray:
    """The LP relaxation re-solved with each charged block-tying column's cost (a start-up, 起動費) divided
    by its last LP value, until the columns the LP uses stop changing, `rounds` times at most (slope scaling,
    the classic heuristic for fixed-charge problems). Why: the relaxation pays a start-up only in proportion
    to the share of the resource it uses, so it touches many resources a little, and rounding up what it
    uses starts them all (20,000 bids: 1,527 of 2,079 start-ups; the best known clearing starts far fewer).
    Charged by what it last used, the LP concentrates on fewer resources: the polished start is 3.5M yen
    cheaper at 20,000 bids, 5.2M at 5,000 and 1.8M at 50,000 (docs/performance.md, fifteenth round).
    `highs` holds the relaxation, solved (its costs are changed); returns the last values solved within
    `deadline` (`x` if none)."""
    charged = np.flatnonzero(block_tying & (cost > 0)).astype(np.int32)
    used = x[charged] > 1e-6
    for _ in range(rounds):
        remaining = deadline - time.time()
        if not len(charged) or remaining <= 0:
            break
        highs.changeColsCost(len(charged), charged, cost[charged] / np.maximum(x[charged], RESCALING_FLOOR))
        limit_next_lp(highs, remaining)
        highs.run()
        if not solved_optimally(highs):
            break
        x = np.array(highs.getSolution().col_value)
        now_used = x[charged] > 1e-6
        if np.array_equal(now_used, used):
            break
        used = now_used
    return x


def in_threads(fn: Callable[[Any], Any], items: list[Any], workers: int) -> list[Any]:
    """[fn(item) for item in items], `workers` at a time in threads when more than one (highspy lets go of
    the GIL while HiGHS solves: two small solves take the two cores)."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="dkw-start") as pool:
        return list(pool.map(fn, items))


def greedy_start(mm: MatrixModel) -> np.ndarray:
    """A feasible point of the model `mm` (all columns), by the merit-order greedy above."""
    ix = mm.ix
    bids = ix.bids
    resources = ix.resources
    per_row = ix.auction.shortfall_price_yen_per_kw_h * ix.hours  # yen saved per kW short removed per row
    remaining: dict[tuple[str, str, int], float] = dict(ix.requirement_kw)
    capacity_left: dict[tuple[str, int], float] = {}
    started: set[str] = set()
    used_groups: set[str] = set()
    x = np.zeros(mm.num_cols)
    # bids already fixed in full (clearing/reduce.py) go first, then merit order
    forced = mm.col_lower[:len(bids)] > 0

    def rows_of(i: int) -> list[tuple[str, str, int]]:
        b = bids[i]
        return [(b.area, p, t) for p in b.products for t in b.blocks]

    order = sorted(range(len(bids)), key=lambda i: (not forced[i], ix.cost_per_kw[i] / len(rows_of(i)), i))
    accepted = np.zeros(len(bids), dtype=bool)
    children_waiting: dict[int, list[int]] = defaultdict(list)
    for i in order:
        _try_accept(i, mm, x, remaining, capacity_left, started, used_groups, accepted, forced, per_row,
                    resources, rows_of, children_waiting)
    # shortfall: what is still uncovered (no flows in the start)
    for key, col in mm.columns.s_col.items():
        x[col] = max(0.0, remaining.get(key, 0.0))
    return x


def _try_accept(i, mm, x, remaining, capacity_left, started, used_groups, accepted, forced, per_row, resources,
                rows_of, children_waiting) -> None:
    ix = mm.ix
    b = ix.bids[i]
    if b.group is not None and b.group in used_groups:
        return
    parent = ix.parent_of.get(i)
    if parent is not None and not accepted[parent]:
        children_waiting[parent].append(i)  # may still come in once its parent is accepted
        return
    rows = rows_of(i)
    useful = max((remaining.get(r, 0.0) for r in rows), default=0.0)
    q = min(b.kw, useful)
    if forced[i]:
        q = b.kw
    floor = max(b.min_kw, 1.0) if i in ix.needs_binary else 0.0
    if q <= 0:
        return
    q = max(q, floor)
    resource = resources.get(b.resource) if b.resource is not None else None
    if resource is not None and resource.capacity_kw_by_block is not None:
        room = min(capacity_left.get((b.resource, t), resource.capacity_kw_by_block[t]) for t in b.blocks)
        q = min(q, room)
        if q < floor or q <= 0:
            return
    if i in ix.needs_binary and q < floor:
        return
    gain = sum(min(q, max(remaining.get(r, 0.0), 0.0)) for r in rows) * per_row
    cost = q * ix.cost_per_kw[i]
    if resource is not None and b.resource in mm.columns.v_col and b.resource not in started:
        cost += resource.startup_cost_yen
    if not forced[i] and gain <= cost:
        return
    # accept
    x[i] = q
    accepted[i] = True
    if i in mm.columns.u_col:
        x[mm.columns.u_col[i]] = 1.0
    if b.group is not None:
        used_groups.add(b.group)
    if resource is not None:
        if b.resource in mm.columns.v_col:
            x[mm.columns.v_col[b.resource]] = 1.0
            started.add(b.resource)
        if resource.capacity_kw_by_block is not None:
            for t in b.blocks:
                key = (b.resource, t)
                capacity_left[key] = capacity_left.get(key, resource.capacity_kw_by_block[t]) - q
    for r in rows:
        if r in remaining:
            remaining[r] -= q
    for child in children_waiting.pop(i, []):
        _try_accept(child, mm, x, remaining, capacity_left, started, used_groups, accepted, forced, per_row,
                    resources, rows_of, children_waiting)
