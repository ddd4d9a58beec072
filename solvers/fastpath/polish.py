"""Polishing a start block by block: fix the columns that tie blocks together, solve the pieces apart."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np

from dkw.solvers.arrays import ArrayProblem, violation
from dkw.solvers.fastpath.split import subproblems
from dkw.solvers.fastpath.starts import HEURISTIC_OPTIONS, in_threads
from dkw.solvers.highs import has_point, highs_for
from dkw.solvers.tuning import FastPathTuning


def polish_by_splitting(sub: ArrayProblem, start: np.ndarray, block_tying: np.ndarray, opts: dict[str, Any],
                        deadline: float, tuning: FastPathTuning, workers: int = 1) -> np.ndarray | None:
    """A start from a point whose `block_tying` columns are integral and consistent (the rest may be fractional):
    fix the block-tying columns there (moving their terms into the row bounds), split what is left into its
    components (per block, typically) and solve each piece as a small MIP, `workers` at a time (threads:
    HiGHS lets go of the GIL while it solves). Every piece has a feasible point (nothing accepted, the rest
    short); each gets an equal share of the time left. Where `start` is feasible, each piece keeps the
    cheaper of its own solution and the start's values (the pieces share no row once the block-tying columns
    are fixed), so a polish stopped by the deadline still gives the pieces it got through; otherwise a piece
    with no feasible point found in its share gives None. A `deadline` already past gives None. A heuristic
    for the incumbent only: the proof of optimality is still the full model's."""
    if deadline <= time.time():  # splitting alone takes seconds on the biggest components
        return None
    fallback = start if violation(sub, start) <= 1e-6 else None
    fixed_value = np.where(block_tying, start, 0.0)
    row_of_nz = sub.row_of_nonzeros()
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
    solve = _piece_solver(to_solve, opts, deadline, tuning, max(1, min(workers, len(to_solve))))
    for piece, v in zip(to_solve, in_threads(solve, to_solve, max(1, min(workers, len(to_solve)))), strict=True):
        if fallback is not None:
            kept = fallback[piece.cols]
            if v is None or sub.col_cost[piece.cols] @ v > sub.col_cost[piece.cols] @ kept:
                v = kept
        if v is None:
            return None
        x[piece.cols] = v
    if violation(sub, x) > 1e-6:
        return None
    return x


def _piece_solver(to_solve: list[ArrayProblem], opts: dict[str, Any], deadline: float, tuning: FastPathTuning,
                  workers: int):
    """The function that solves one piece within its fair share of the time left."""
    lock = threading.Lock()
    begun = 0
    off = {name: False for name in tuning.polish_off}

    def solve(piece: ArrayProblem) -> np.ndarray | None:
        nonlocal begun
        with lock:
            rounds_left = math.ceil((len(to_solve) - begun) / workers)
            begun += 1
        remaining = deadline - time.time()
        if remaining <= 0:
            return None
        # a fair share of what is left, so that one hard piece cannot leave the rest without time: a piece
        # stopped at its share keeps its incumbent (HiGHS's heuristics find one at once on these pieces)
        highs = highs_for(piece, opts, HEURISTIC_OPTIONS, threads=1 if workers > 1 else None,
                          time_limit=remaining / rounds_left, mip_rel_gap=tuning.polish_gap, **off)
        highs.run()
        if not has_point(highs):
            return None
        return np.array(highs.getSolution().col_value)

    return solve
