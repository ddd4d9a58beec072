"""The one array type of the model: a MILP in CSR arrays, whole or as a component of a bigger one.

`dkw.clearing.matrix.MatrixModel` is this type with the formulation it was stacked from; the fast path's
components, the straight path's compiled model and the search's sub-MILPs are plain `ArrayProblem`s.
Numpy only: importing it loads no solver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ArrayProblem:
    """A MILP `min c·x  s.t.  row_lower ≤ A x ≤ row_upper,  col_lower ≤ x ≤ col_upper`, A in CSR, as a piece
    of a bigger model (`cols`, `rows`: its global indices; the whole model: 0..n-1). Picklable: plain numpy
    arrays."""

    cols: np.ndarray
    rows: np.ndarray
    col_cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray  # 1 for binaries, 0 continuous (HiGHS's kInteger / kContinuous)
    row_lower: np.ndarray
    row_upper: np.ndarray
    a_start: np.ndarray  # CSR: row i holds a_index/a_value[a_start[i]:a_start[i+1]]
    a_index: np.ndarray  # local column indices
    a_value: np.ndarray
    start: np.ndarray | None = None  # a feasible MIP start (local columns), if known
    #: columns whose fixing falls the problem apart (e.g. bids spanning blocks): the fast path polishes its
    #: start by fixing them and solving the pieces apart (`dkw.solvers.fastpath.polish`); None: no polishing
    block_tying: np.ndarray | None = None
    #: where each column sits in the market (`dkw.solvers.fastpath.search.ColumnTags`), for the neighbourhood search
    tags: Any = None

    @property
    def num_int(self) -> int:
        return int(self.integrality.sum())

    @property
    def num_cols(self) -> int:
        return len(self.col_cost)

    @property
    def num_rows(self) -> int:
        return len(self.row_lower)

    def row_of_nonzeros(self) -> np.ndarray:
        """The row of each nonzero of A (aligned with `a_index` and `a_value`)."""
        return np.repeat(np.arange(len(self.row_lower)), np.diff(self.a_start))

    @classmethod
    def whole(cls, model: ArrayProblem) -> ArrayProblem:
        """The arrays of `model` (e.g. a `dkw.clearing.matrix.MatrixModel`) as a plain problem of their own."""
        return cls(np.arange(model.num_cols), np.arange(model.num_rows), model.col_cost, model.col_lower,
                   model.col_upper, model.integrality, model.row_lower, model.row_upper, model.a_start,
                   model.a_index, model.a_value)


def violation(problem: ArrayProblem, x: np.ndarray) -> float:
    """Largest bound, row or integrality violation of `x` in `problem`; 0.0 for a feasible point."""
    num_rows = len(problem.row_lower)
    row_of_nz = problem.row_of_nonzeros()
    activity = np.bincount(row_of_nz, weights=problem.a_value * x[problem.a_index], minlength=num_rows)
    ints = problem.integrality == 1
    return float(max(np.max(problem.col_lower - x, initial=0.0), np.max(x - problem.col_upper, initial=0.0),
                     np.max(problem.row_lower - activity, initial=0.0), np.max(activity - problem.row_upper, initial=0.0),
                     np.max(np.abs(x[ints] - np.round(x[ints])), initial=0.0)))


def switch_off_idle(problem: ArrayProblem, x: np.ndarray) -> tuple[np.ndarray, int]:
    """`x` with every costly binary at 1 that no row needs set to 0, and how many were: a 1-opt move that
    keeps a feasible point feasible (no row's violation grows) and lowers its cost. Points found with some
    binaries fixed (the search's sub-MILPs, the starts) and now and then HiGHS's own incumbents keep start-up
    binaries (起動費) at 1 for resources none of whose bids is accepted (a 5,000-bid clearing at 20 s: four,
    0.31M yen), which the result never charges but the solver's cutoff and the search's comparisons do.
    The costliest go first; each flip updates the activities the next one is checked against."""
    candidates = np.flatnonzero((problem.integrality == 1) & (problem.col_cost > 0) & (x > 0.5)
                                & (problem.col_lower < 0.5))
    if not len(candidates):
        return x, 0
    row_of_nz = problem.row_of_nonzeros()
    activity = np.bincount(row_of_nz, weights=problem.a_value * x[problem.a_index], minlength=problem.num_rows)
    # the candidates' nonzeros, grouped by column (a CSC slice of A for them only)
    in_candidate = np.zeros(problem.num_cols, dtype=bool)
    in_candidate[candidates] = True
    nz = np.flatnonzero(in_candidate[problem.a_index])
    nz = nz[np.argsort(problem.a_index[nz], kind="stable")]
    col_start = np.searchsorted(problem.a_index[nz], candidates)
    col_end = np.searchsorted(problem.a_index[nz], candidates, side="right")
    out = x.copy()
    switched = 0
    for k in np.argsort(-problem.col_cost[candidates], kind="stable"):
        col, these = candidates[k], nz[col_start[k]:col_end[k]]
        rows = row_of_nz[these]
        after = activity[rows] - problem.a_value[these] * out[col]
        before = activity[rows]
        lower, upper = problem.row_lower[rows], problem.row_upper[rows]
        worse_after = np.maximum(np.maximum(lower - after, after - upper), 0.0)
        worse_before = np.maximum(np.maximum(lower - before, before - upper), 0.0)
        if np.all(worse_after <= np.maximum(worse_before, 1e-9)):
            activity[rows] = after
            out[col] = 0.0
            switched += 1
    return out, switched
