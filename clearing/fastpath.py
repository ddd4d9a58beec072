"""The fast back-end's preparation of the arrays: exact reductions and MIP starts from the auction index.

What it knows of the market (which bids every optimum accepts in full, a merit-order greedy start, which
columns tie blocks together) it adds here, to the arrays of the one formulation; `solvers.fast` then cuts
them into independent components and solves them.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from clearing.formulation import Formulation
from clearing.matrix import MatrixModel, to_matrix
from clearing.reduce import always_full_bids
from clearing.warmstart import greedy_start
from solvers.api import START_TOLERANCE, ProgressCallback, Solution, SolveOptions

if TYPE_CHECKING:
    from solvers.lns import ColumnTags



def solve_fast(form: Formulation, options: SolveOptions, progress: ProgressCallback | None = None,
               cancel: threading.Event | None = None, started: float | None = None,
               start_hint: np.ndarray | None = None) -> Solution:
    """`start_hint`: a point of the model (an earlier solve's incumbent, `clearing.engine.carried_start`),
    the MIP start where it is feasible and cheaper than the merit-order greedy's."""
    from solvers.fast import solve_arrays
    from solvers.highs import violation

    setup_started = time.perf_counter()
    mm = to_matrix(form)
    fix_always_full(mm)
    start = block_tying = tags = None
    if options.warm_start:
        start = greedy_start(mm)
        if violation(mm, start) > START_TOLERANCE:  # feasible by construction; the guard keeps a bug from HiGHS
            start = None
        if start_hint is not None and violation(mm, start_hint) <= START_TOLERANCE and (
                start is None or mm.col_cost @ start_hint < mm.col_cost @ start):
            start = start_hint
        block_tying = block_tying_columns(mm)
        tags = column_tags(mm)
    setup_seconds = time.perf_counter() - setup_started
    solution = solve_arrays(mm, options.less_time(setup_seconds), progress, cancel, started, start=start, block_tying=block_tying,
                            tags=tags)
    solution.setup_seconds = setup_seconds
    solution.start_hint_used = start is not None and start is start_hint
    return solution


def block_tying_columns(mm: MatrixModel) -> np.ndarray:
    """Columns that tie blocks together: bids covering more than one block (quantity and acceptance) and
    the start-up binaries of their resources. With them fixed, a national auction falls apart per block."""
    ix, c = mm.ix, mm.columns
    block_tying = np.zeros(mm.num_cols, dtype=bool)
    for i, bid in enumerate(ix.bids):
        if len(bid.blocks) > 1:
            block_tying[i] = True
            if i in c.u_col:
                block_tying[c.u_col[i]] = True
            if bid.resource in c.v_col:
                block_tying[c.v_col[bid.resource]] = True
    return block_tying


def column_tags(mm: MatrixModel) -> ColumnTags:
    """Where each integer column sits (area, products, blocks) for the neighbourhood search
    (`solvers/lns.py`): an acceptance binary is its bid's, a start-up binary spans its resource's bids."""
    from solvers.lns import ColumnTags

    ix, c = mm.ix, mm.columns
    areas = sorted({b.area for b in ix.bids} | {a for line in ix.auction.lines for a in (line.from_area, line.to_area)})
    area_pos = {a: k for k, a in enumerate(areas)}
    products = sorted({p for b in ix.bids for p in b.products})
    product_bit = {p: 1 << k for k, p in enumerate(products)}
    n = mm.num_cols
    area = np.full(n, -1, dtype=np.int32)
    mask = np.zeros(n, dtype=np.int64)
    first = np.zeros(n, dtype=np.int32)
    last = np.zeros(n, dtype=np.int32)

    def tag(col: int, i: int) -> None:
        bid = ix.bids[i]
        bits = sum(product_bit[p] for p in bid.products)
        if area[col] < 0:
            area[col], mask[col], first[col], last[col] = area_pos[bid.area], bits, min(bid.blocks), max(bid.blocks)
        else:
            mask[col] |= bits
            first[col], last[col] = min(first[col], min(bid.blocks)), max(last[col], max(bid.blocks))

    for i, col in c.u_col.items():
        tag(col, i)
    for r, col in c.v_col.items():
        for i in ix.resource_bids[r]:
            tag(col, i)
    neighbours: list[set[int]] = [set() for _ in areas]
    for line in ix.auction.lines:
        a, b = area_pos[line.from_area], area_pos[line.to_area]
        neighbours[a].add(b)
        neighbours[b].add(a)
    return ColumnTags(area, mask, first, last, ix.auction.blocks, len(products), [sorted(s) for s in neighbours])


def fix_always_full(mm: MatrixModel) -> int:
    """Raise the lower bounds of the bids every optimum accepts in full (clearing/reduce.py) to kw, with
    their acceptance and start-up binaries at 1. Returns how many bids were fixed."""
    ix, c = mm.ix, mm.columns
    full = always_full_bids(ix)
    for i in full:
        mm.col_lower[i] = mm.col_upper[i]
        if i in c.u_col:
            mm.col_lower[c.u_col[i]] = 1.0
        resource = ix.bids[i].resource
        if resource in c.v_col:
            mm.col_lower[c.v_col[resource]] = 1.0
    return len(full)
