"""A proven bound in seconds where a component's LP relaxation may not end in time, and a MIP start from it.

The fast path's bound comes from each component's LP relaxation and, later, branch-and-bound. At 200,000
bids that relaxation alone takes 80-130 s on 2 cores (docs/performance.md, "The largest auctions"), so a
clearing given 30 or 60 s used to end with a verified clearing but no bound at all. The floor is a
relaxation of it that HiGHS solves in seconds: every area's balance rows (需給バランス, SPEC §3) and the
interconnectors' rows (line, interface and import limits) as they are, but each bid's quantity replaced by
one copy per balance row it is in, each copy carrying its share of the bid's cost; of the other rows only
the exclusive groups (Σ q/kw ≤ 1) and the resource capacities, over those copies; no integrality, no
start-up costs, no links. Any clearing maps onto it (every copy equal to its bid's quantity) at the same
cost or less, so its optimum is a valid lower bound on the clearing's objective (the same objective,
perturbations included: the bound is in the solver's terms, like the components' own;
`clearing.exact.real_objective_bound` restates it). Pooling the areas instead, a smaller LP still, lost half
the bound (docs/performance.md, "A floor under the bound at any limit").

It decomposes along the model's components (each of its rows lies in one), so the one LP's optimum,
restricted to a component's columns, is that component's floor (`component_floors`). Rounded, and completed
by the LP with the binaries fixed, it is also a feasible MIP start with flows in it (`floor_start`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from dkw.clearing.matrix import MatrixModel
from dkw.solvers.arrays import ArrayProblem
from dkw.solvers.fastpath.split import gather_ranges

log = logging.getLogger("dkw.solvers.fastpath")

#: The relaxation's time limit; and at least FLOOR_MIN_S even when the clearing's deadline is closer (it
#: is how a clearing stopped early gets any bound at all; 5,000 bids: 1.1 s, 50,000: 5.1 s on a busy machine)
FLOOR_TIME_LIMIT_S = 30.0
FLOOR_MIN_S = 1.0


def _balance_copies(mm: MatrixModel) -> tuple[np.ndarray, np.ndarray]:
    """Per copy of a bid's quantity (the relaxation's first columns, in order): the bid, and the block of the
    balance row it is the copy for."""
    balance = next(rows for rows in mm.formulation.families if rows.name == "balance")
    cols = np.asarray(balance.cols, dtype=np.int64)
    is_bid = cols < mm.columns.num_bids
    term_block = np.repeat(np.array([key[2] for key in balance.keys], dtype=np.int64),
                           np.asarray(balance.lengths, dtype=np.int64))
    return cols[is_bid], term_block[is_bid]


def split_relaxation(mm: MatrixModel) -> tuple[ArrayProblem, np.ndarray]:
    """The relaxation (module docstring) and, per column of it, the model's column it copies."""
    form = mm.formulation
    firsts = form.first_rows()
    families = {rows.name: rows for rows in form.families}
    balance = families["balance"]
    num_bids = mm.columns.num_bids
    cols = np.asarray(balance.cols, dtype=np.int64)
    is_bid = cols < num_bids
    copy_bid, copy_block = _balance_copies(mm)
    # one copy of a bid's quantity per balance row it is in, each with its share of the bid's cost
    copies_of = np.bincount(copy_bid, minlength=num_bids)
    kept = np.unique(cols[~is_bid])  # flows and shortfalls, as they are
    flow_rows = [name for name in ("line_limit", "interface_limit", "import_cap") if len(families[name].keys)]
    for name in flow_rows:
        kept = np.union1d(kept, np.asarray(families[name].cols, dtype=np.int64))
    n_copies = len(copy_bid)
    original = np.concatenate([copy_bid, kept])
    position = np.full(mm.num_cols, -1, dtype=np.int64)
    position[kept] = n_copies + np.arange(len(kept))
    new_cols = np.empty(len(cols), dtype=np.int64)
    new_cols[is_bid] = np.arange(n_copies)
    new_cols[~is_bid] = position[cols[~is_bid]]
    cost = mm.col_cost[original].copy()
    cost[:n_copies] /= copies_of[copy_bid]
    # the rows: the balance rows over the copies, then the interconnectors' rows as the arrays hold them
    starts = [np.asarray(balance.lengths, dtype=np.int64)]
    index, value = [new_cols], [np.asarray(balance.vals, dtype=float)]
    lower, upper = [mm.row_lower[firsts["balance"] + np.arange(len(balance.keys))]], \
        [mm.row_upper[firsts["balance"] + np.arange(len(balance.keys))]]
    for name in flow_rows:
        rows = firsts[name] + np.arange(len(families[name].keys))
        lengths = mm.a_start[rows + 1] - mm.a_start[rows]
        nz = gather_ranges(mm.a_start[rows], lengths)
        starts.append(lengths.astype(np.int64))
        index.append(position[mm.a_index[nz]])
        value.append(mm.a_value[nz])
        lower.append(mm.row_lower[rows])
        upper.append(mm.row_upper[rows])
    _local_rows(mm, copy_bid, copy_block, starts, index, value, lower, upper)
    lengths = np.concatenate(starts)
    a_start = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=a_start[1:])
    relaxed = ArrayProblem(cols=np.arange(len(original)), rows=np.arange(len(lengths)), col_cost=cost,
                           col_lower=mm.col_lower[original], col_upper=mm.col_upper[original],
                           integrality=np.zeros(len(original), dtype=mm.integrality.dtype),
                           row_lower=np.concatenate(lower), row_upper=np.concatenate(upper),
                           a_start=a_start.astype(np.int32), a_index=np.concatenate(index).astype(np.int32),
                           a_value=np.concatenate(value))
    return relaxed, original


def _local_rows(mm: MatrixModel, copy_bid: np.ndarray, copy_block: np.ndarray, starts: list, index: list,
                value: list, lower: list, upper: list) -> None:
    """Append the exclusive groups (Σ q/kw ≤ 1 over the members: u ≥ q/kw and Σ u ≤ 1) and the resource
    capacities (Σ q ≤ capacity per block; with a start-up binary, v ≤ 1) over the copies: each bid's copy in
    the block (in the first block it covers, for the groups) stands for its quantity, which every copy equals
    in a clearing, so the rows stay valid."""
    ix = mm.ix
    copy_of: dict[tuple[int, int], int] = {}
    for j, (b, t) in enumerate(zip(copy_bid.tolist(), copy_block.tolist(), strict=True)):
        copy_of.setdefault((b, t), j)

    def add(terms: list[tuple[int, float]], bound: float) -> None:
        starts.append(np.array([len(terms)], dtype=np.int64))
        index.append(np.array([j for j, _ in terms], dtype=np.int64))
        value.append(np.array([v for _, v in terms], dtype=float))
        lower.append(np.array([-np.inf]))
        upper.append(np.array([bound]))

    for members in ix.group_bids.values():
        terms = [(copy_of[(i, min(ix.bids[i].blocks))], 1.0 / ix.bids[i].kw) for i in members
                 if (i, min(ix.bids[i].blocks)) in copy_of and ix.bids[i].kw > 0]
        if len(terms) > 1:
            add(terms, 1.0)
    for (r, t), members in ix.resource_block_bids.items():
        terms = [(copy_of[(i, t)], 1.0) for i in members if (i, t) in copy_of]
        cap = ix.resources[r].capacity_kw_by_block[t]
        if terms and sum(ix.bids[i].kw for i in members) > cap:
            add(terms, cap)


@dataclass
class Floor:
    """The relaxation's optimum: `costs` per model column (what it puts on the column's copies and on the
    column itself; summed over a component, its floor) and `point` on the model's columns (a bid's quantity
    the largest of its copies', flows and shortfalls as they are, every other column at its lower bound)."""

    costs: np.ndarray
    point: np.ndarray


def solve_floor(mm: MatrixModel, settings: dict[str, Any], deadline: float | None = None) -> Floor | None:
    """The relaxation solved; None if HiGHS did not prove its optimum (within FLOOR_TIME_LIMIT_S, or by
    `deadline`, a time.time())."""
    return FloorRelaxation(mm, settings).solve(deadline)


class FloorRelaxation:
    """The relaxation on one HiGHS instance: solved (`solve`), then, where the clearing will end with it as
    its bound, tightened with the start-up costs and solved again from where it stopped (`with_start_ups`).

    Why the start-ups: the relaxation has none, and they are what it misses most. Each resource with a
    start-up cost (起動費) gets one column per block its bids' copies are in, each charged an equal share of
    the cost, with the copies of the block within capacity × that column and each copy within its bid's kW ×
    that column. A clearing maps onto it with every column of the resource at its start-up binary's value,
    at the same cost, so the optimum stays a lower bound, and it still decomposes by block. 200,000 bids:
    5,073.8M → 5,321.3M yen in a warm re-solve of 7.6 s after the first of 3.6 s (cold, 14.9 s); tying each
    bid's copies back together as well would take it to 5,385.5M, but in 117 s, no faster than the LP
    relaxation itself (docs/performance.md, sixteenth round)."""

    def __init__(self, mm: MatrixModel, settings: dict[str, Any]):
        self.mm = mm
        self.settings = settings
        self.relaxed, self.original = split_relaxation(mm)
        self.highs: Any = None
        #: how long the first solve took (s): what decides whether a tightening can fit
        self.seconds = 0.0

    def solve(self, deadline: float | None = None) -> Floor | None:
        """The relaxation's optimum; None if HiGHS did not prove it (within FLOOR_TIME_LIMIT_S, or by `deadline`,
        a time.time())."""
        from dkw.solvers.highs import highs_for, solved_optimally

        mm, relaxed = self.mm, self.relaxed
        started = time.perf_counter()
        if relaxed.num_cols == 0:  # nothing to cover: the floor is 0
            return Floor(np.zeros(mm.num_cols), mm.col_lower.copy())
        limit = FLOOR_TIME_LIMIT_S if deadline is None else \
            max(FLOOR_MIN_S, min(FLOOR_TIME_LIMIT_S, deadline - time.time()))
        highs = highs_for(relaxed, self.settings, ("threads", "random_seed"), solver="simplex", time_limit=limit,
                          output_flag=False)
        highs.run()
        if not solved_optimally(highs):
            log.warning("the floor's relaxation was not solved (%s): no floor under the bound",
                        highs.modelStatusToString(highs.getModelStatus()))
            return None
        self.highs = highs
        floor = self._floor(relaxed.col_cost, self.original)
        self.seconds = time.perf_counter() - started
        log.info("floor: %d rows, %d columns, %.0f in %.2f s", relaxed.num_rows, relaxed.num_cols,
                 float(floor.costs.sum()), self.seconds)
        return floor

    def with_start_ups(self, until: float) -> Floor | None:
        """The floor tightened with the start-up costs (class docstring), re-solved from the last basis; None if
        there is nothing to add, or it was not solved by `until` (a time.time())."""
        from dkw.solvers.highs import limit_next_lp, solved_optimally

        if self.highs is None or until - time.time() <= 0:
            return None
        started = time.perf_counter()
        columns = _start_up_columns(self.mm, self.relaxed.num_cols)
        if columns is None:
            return None
        cost, lower, upper, original, (row_start, row_index, row_value) = columns
        highs = self.highs
        empty = np.zeros(0, dtype=np.int32)
        highs.addCols(len(cost), cost, lower, upper, 0, empty, empty, np.zeros(0))
        n_rows = len(row_start)
        highs.addRows(n_rows, np.full(n_rows, -np.inf), np.zeros(n_rows), len(row_index), row_start, row_index,
                      row_value)
        limit_next_lp(highs, until - time.time())
        highs.run()
        if not solved_optimally(highs):
            log.info("floor with start-ups not solved in time (%s)", highs.modelStatusToString(highs.getModelStatus()))
            return None
        floor = self._floor(np.concatenate([self.relaxed.col_cost, cost]), np.concatenate([self.original, original]))
        log.info("floor with start-ups: %d columns and %d rows more, %.0f in %.2f s", len(cost), n_rows,
                 float(floor.costs.sum()), time.perf_counter() - started)
        return floor

    def release(self) -> None:
        """Let go of the HiGHS instance (its memory) once the floor is final."""
        self.highs = None

    def _floor(self, cost: np.ndarray, original: np.ndarray) -> Floor:
        x = np.asarray(self.highs.getSolution().col_value)
        mm = self.mm
        costs = np.bincount(original, weights=cost * x, minlength=mm.num_cols)
        point = mm.col_lower.copy()
        np.maximum.at(point, original, x)
        return Floor(costs, np.minimum(point, mm.col_upper))


def _start_up_columns(mm: MatrixModel, first: int) -> tuple | None:
    """The start-up columns of `FloorRelaxation.with_start_ups`, numbered from `first`: their costs, bounds and
    model columns (the resource's start-up binary), and their rows (each ≤ 0) as (starts, index, value); None if
    no resource has a start-up cost."""
    ix, c = mm.ix, mm.columns
    copy_bid, copy_block = _balance_copies(mm)
    copies_at: dict[tuple[int, int], list[int]] = {}
    for j, key in enumerate(zip(copy_bid.tolist(), copy_block.tolist(), strict=True)):
        copies_at.setdefault(key, []).append(j)
    cost, lower, upper, original = [], [], [], []
    row_start: list[int] = []
    row_index: list[int] = []
    row_value: list[float] = []

    def row(terms: list[int], values: list[float]) -> None:
        row_start.append(len(row_index))
        row_index.extend(terms)
        row_value.extend(values)

    for r in ix.startup_resources:
        col = c.v_col.get(r)
        if col is None:
            continue
        bids = ix.resource_bids[r]
        blocks = sorted({t for i in bids for t in ix.bids[i].blocks if (i, t) in copies_at})
        for t in blocks:
            v = first + len(cost)
            cost.append(mm.col_cost[col] / len(blocks))
            lower.append(mm.col_lower[col])
            upper.append(mm.col_upper[col])
            original.append(col)
            members = [copies_at[(i, t)][0] for i in ix.resource_block_bids.get((r, t), []) if (i, t) in copies_at]
            if members:  # one copy per bid stands for its quantity, as in the capacity rows (`_local_rows`)
                row(members + [v], [1.0] * len(members) + [-ix.resources[r].capacity_kw_by_block[t]])
            for i in bids:
                for j in copies_at.get((i, t), []):
                    row([j, v], [1.0, -float(ix.bids[i].kw)])
    if not cost:
        return None
    rows = (np.array(row_start, dtype=np.int32), np.array(row_index, dtype=np.int32), np.array(row_value))
    return (np.array(cost), np.array(lower, dtype=float), np.array(upper, dtype=float), np.array(original, dtype=np.int64),
            rows)


def rounded_binaries(mm: MatrixModel, point: np.ndarray) -> np.ndarray:
    """`point` with the binaries the clearing's rules allow: a bid's acceptance 1 where the floor takes more
    than half its kW (at most one per exclusive group, the one it takes most of; none whose parent is out),
    a resource's start-up 1 where any of its bids is in; the fixings (`col_lower` 1) kept."""
    ix, c = mm.ix, mm.columns
    x = point.copy()
    share = {i: point[i] / ix.bids[i].kw if ix.bids[i].kw > 0 else 0.0 for i in c.u_col}
    chosen = {i for i, f in share.items() if f > 0.5 or mm.col_lower[c.u_col[i]] >= 1.0}
    for members in ix.group_bids.values():
        inside = [i for i in members if i in chosen]
        if len(inside) > 1:
            keep = max(inside, key=lambda i: (mm.col_lower[c.u_col[i]], share[i], -i))
            chosen -= set(inside) - {keep}
    changed = True
    while changed:  # a child without its parent is out, down every chain
        changed = False
        for child, parent in ix.parent_of.items():
            if child in chosen and parent not in chosen:
                chosen.discard(child)
                changed = True
    for i, col in c.u_col.items():
        x[col] = 1.0 if i in chosen else 0.0
    for r, col in c.v_col.items():
        on = any(i in chosen or (i not in c.u_col and point[i] > 0.5 * ix.bids[i].kw) for i in ix.resource_bids[r])
        x[col] = 1.0 if on or mm.col_lower[col] >= 1.0 else 0.0
    return x


#: the floor's start is not tried with less time than this left before the clearing's deadline
FLOOR_START_MIN_S = 1.0


def floor_start(mm: MatrixModel, floor: Floor, deadline: float | None = None) -> np.ndarray | None:
    """A feasible point of the model from the floor: its binaries rounded (`rounded_binaries`), the rest the
    LP with them fixed (flows included, which the greedy start has none of); None if that LP failed or would
    end after `deadline` (a time.time(): the clearing's limit covers this too)."""
    from dkw.solvers.highs import fixed_integer_values

    left = None if deadline is None else deadline - time.time()
    if left is not None and left < FLOOR_START_MIN_S:
        return None
    started = time.perf_counter()
    values = fixed_integer_values(ArrayProblem.whole(mm), rounded_binaries(mm, floor.point), time_limit=left)
    if values is not None:
        log.info("floor's rounding: %.0f in %.2f s", float(mm.col_cost @ values), time.perf_counter() - started)
    return values


def component_floors(subs: list[ArrayProblem], costs: np.ndarray | None) -> list[float]:
    """Each component's floor: the relaxation decomposes along the components (each of its rows lies in one),
    so the cost its optimum puts on a component's columns is the optimum of that component's part; 0.0 for
    all without one (every objective term is non-negative)."""
    if costs is None:
        return [0.0] * len(subs)
    return [max(0.0, float(costs[sub.cols].sum())) for sub in subs]
