"""A merit-order greedy clearing: a feasible MIP start for the fast path (never the answer itself).

HiGHS alone may search a national auction for a minute without a single feasible point, although one
always exists (accept nothing, report everything short). A start gives it an incumbent from the first
node, so a time limit always ends with a result, and the search prunes from the start.

The greedy: bids in order of cost per kW per balance row they serve (cheapest first, document order on
ties), each local to its area (no flows), accepted when the shortfall it removes is worth more than its
cost (start-up included), at the most that is still useful, but at least its minimum; groups, parents
and resource capacities respected. Shortfall covers the rest. Every rule of SPEC §3 holds by construction.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from clearing.matrix import MatrixModel


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
