"""The fast back-end's preparation of the arrays: exact reductions and MIP starts from the auction index.

What it knows of the market (which bids every optimum accepts in full, a merit-order greedy start, which
columns tie blocks together) it adds here, to the arrays of the one formulation; `solvers.fast` then cuts
them into independent components and solves them.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from clearing.formulation import Formulation
from clearing.matrix import MatrixModel, to_matrix
from clearing.reduce import always_full_bids
from clearing.warmstart import greedy_start
from solvers.api import ProgressCallback, Solution, SolveOptions

#: A start violating a row or bound by more than this is not handed to HiGHS.
START_TOLERANCE = 1e-6


def solve_fast(form: Formulation, options: SolveOptions, progress: ProgressCallback | None = None,
               cancel: threading.Event | None = None, started: float | None = None) -> Solution:
    from solvers.fast import solve_arrays
    from solvers.highs import violation

    setup_started = time.perf_counter()
    mm = to_matrix(form)
    fix_always_full(mm)
    start = block_tying = None
    if options.warm_start:
        start = greedy_start(mm)
        if violation(mm, start) > START_TOLERANCE:  # feasible by construction; the guard keeps a bug from HiGHS
            start = None
        block_tying = block_tying_columns(mm)
    setup_seconds = time.perf_counter() - setup_started
    solution = solve_arrays(mm, options, progress, cancel, started, start=start, block_tying=block_tying)
    solution.setup_seconds = setup_seconds
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
