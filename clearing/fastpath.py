"""The fast clearing path (SolveOptions.method == "fast"): index → arrays → components → highspy.

Same index, same formulation, same objective perturbations and the same 1 kW minimum rule as the straight
Pyomo path in `clearing/engine.py`; only how the model is built and solved differs. The engine turns what
this returns into the result document with the same `assemble_result`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clearing.index import AuctionIndex, RejectedBid, below_one_kw, build_index
from clearing.matrix import MatrixModel, build_matrix
from clearing.model import Auction
from clearing.reduce import always_full_bids
from clearing.warmstart import greedy_start, violation
from solvers.fast import FastOutcome, solve_components, subproblems
from solvers.highs import Progress, ProgressCallback, SolveOptions, SolveOutcome


@dataclass
class FastClearing:
    ix: AuctionIndex
    outcome: SolveOutcome
    q: dict[int, float]
    f: dict[int, float]
    s: dict[tuple, float]
    duals: dict[tuple, float]
    build_seconds: float
    pricing_seconds: float
    solves: int
    components: list[dict[str, Any]] = field(default_factory=list)
    fixed_bids: int = 0  # accepted in full by every optimum (clearing/reduce.py), fixed before the solve


def solve_fast(auction: Auction, options: SolveOptions, progress: ProgressCallback | None,
               cancel: threading.Event | None, excluded: list[RejectedBid] | None,
               started: float) -> FastClearing:
    force_binary: set[str] = set()
    solves = 0
    build_seconds = 0.0
    while True:
        if progress:
            progress(Progress("building", time.perf_counter() - started))
        build_started = time.perf_counter()
        ix = build_index(auction, excluded, force_binary)
        mm = build_matrix(ix)
        fixed = fix_always_full(mm)
        subs = subproblems(mm.col_cost, mm.col_lower, mm.col_upper, mm.integrality, mm.row_lower, mm.row_upper,
                           mm.a_start, mm.a_index, mm.a_value)
        if options.warm_start:
            start = greedy_start(mm)
            if violation(mm, start) == 0:  # by construction; the guard keeps a bug from reaching HiGHS
                for sub in subs:
                    sub.start = start[sub.cols]
            cross = cross_block_columns(mm)
            for sub in subs:
                sub.cross = cross[sub.cols]
        build_seconds += time.perf_counter() - build_started
        if progress:
            progress(Progress("solving", time.perf_counter() - started, message=f"{len(subs)} component(s)"))
        fast = solve_components(subs, mm.num_cols, mm.num_rows, options, progress, cancel, started)
        solves += 1
        if fast.x is None:
            break
        # SPEC §3: an accepted bid delivers at least max(min_kw, 1) kW (see engine.clear)
        q = fast.x[:mm.num_bids]
        tiny = below_one_kw(ix, q)
        if not tiny:
            break
        force_binary |= tiny
    result = _values(ix, mm, fast, build_seconds, solves)
    result.fixed_bids = fixed
    return result


def cross_block_columns(mm: MatrixModel) -> np.ndarray:
    """Columns that tie blocks together: bids covering more than one block (quantity and acceptance) and
    the start-up binaries of their resources. With them fixed, a national auction falls apart per block."""
    ix = mm.ix
    cross = np.zeros(mm.num_cols, dtype=bool)
    for i, bid in enumerate(ix.bids):
        if len(bid.blocks) > 1:
            cross[i] = True
            if i in mm.u_col:
                cross[mm.u_col[i]] = True
            if bid.resource is not None and bid.resource in mm.v_col:
                cross[mm.v_col[bid.resource]] = True
    return cross


def fix_always_full(mm: MatrixModel) -> int:
    """Raise the lower bounds of the bids every optimum accepts in full (clearing/reduce.py) to kw, with
    their acceptance and start-up binaries at 1. Returns how many bids were fixed."""
    ix = mm.ix
    full = always_full_bids(ix)
    for i in full:
        mm.col_lower[i] = mm.col_upper[i]
        if i in mm.u_col:
            mm.col_lower[mm.u_col[i]] = 1.0
        resource = ix.bids[i].resource
        if resource is not None and resource in mm.v_col:
            mm.col_lower[mm.v_col[resource]] = 1.0
    return len(full)


def _values(ix: AuctionIndex, mm: MatrixModel, fast: FastOutcome, build_seconds: float,
            solves: int) -> FastClearing:
    if fast.x is None:
        return FastClearing(ix, fast.outcome, {}, {}, {}, {}, build_seconds, fast.pricing_seconds, solves,
                            fast.components)
    x = fast.x
    q = {i: float(x[i]) for i in range(mm.num_bids)}
    f = {k: float(x[mm.f_offset + k]) for k in range(len(ix.flow_keys))}
    s = {key: float(x[col]) for key, col in mm.s_col.items()}
    duals = {}
    if fast.row_dual is not None:
        duals = {key: float(fast.row_dual[row]) for key, row in mm.balance_row.items()}
    return FastClearing(ix, fast.outcome, q, f, s, duals, build_seconds, fast.pricing_seconds, solves,
                        fast.components)
