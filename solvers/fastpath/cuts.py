"""Gomory mixed-integer (GMI) cuts from the root LP's tableau, read through highspy, as rows over the
problem's own columns.

Why: issue 13 measured CBC's root bound after Gomory and MIR rounds above HiGHS's bound after minutes of
search on a national auction; this module measures what GMI rounds from HiGHS's own tableau give
(docs/performance.md has the figures; the fast path does not use them unless they pay).

How: every row `lo ≤ a·x ≤ hi` becomes `a·x − s = 0` with a column `s ∈ [lo, hi]`, so the LP has only
structural columns and every HiGHS logical is fixed at 0 (its tableau entries never matter). For each
basic binary at a fractional value, the tableau row `x_j + Σ ā_k x_k = β` (`getReducedRow`) gives the GMI
cut over the nonbasic columns measured from their bounds; the slacks in it are replaced by their rows, so
the cut is a row over x alone. A cut joins the LP as `c·x − t = 0, t ≥ rhs`, so the next round's tableau
stays in the same form. Cuts with a wide coefficient range (> MAX_DYNAMISM) are left out: they cost more
in numerical trouble than they give.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from dkw.solvers.arrays import ArrayProblem
from dkw.solvers.highs import LpBasis, claim_thread_scheduler, limit_next_lp, new_highs, solved_optimally

MAX_DYNAMISM = 1e6
MIN_FRACTION = 0.005
EPS = 1e-9


@dataclass
class Cuts:
    """Cuts `c·x ≥ rhs` over the problem's columns (CSR), and the LP bound before and after each round."""

    start: list[int] = field(default_factory=lambda: [0])
    index: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    rhs: list[float] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)
    #: the simplex iterations of each round's LP (the first: the relaxation again, unless warm-started)
    iterations: list[int] = field(default_factory=list)
    seconds: float = 0.0
    #: the last round's LP optimum over the problem's columns (None: no round solved)
    lp_x: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rhs)

    def add(self, cols: np.ndarray, vals: np.ndarray, rhs: float) -> None:
        self.index.extend(int(c) for c in cols)
        self.value.extend(float(v) for v in vals)
        self.start.append(len(self.index))
        self.rhs.append(float(rhs))

    def keep_only(self, keep: np.ndarray) -> None:
        """Keep the cuts where `keep` is true (the bounds of the rounds stay as they were)."""
        start, index, value, rhs = [0], [], [], []
        for c in np.flatnonzero(keep):
            index.extend(self.index[self.start[c]:self.start[c + 1]])
            value.extend(self.value[self.start[c]:self.start[c + 1]])
            start.append(len(index))
            rhs.append(self.rhs[c])
        self.start, self.index, self.value, self.rhs = start, index, value, rhs

    def add_to(self, highs: highspy.Highs) -> None:
        """Hand the cuts to `highs` as rows (its model's columns must be the problem's)."""
        if not len(self):
            return
        highs.addRows(len(self), np.array(self.rhs), np.full(len(self), highspy.kHighsInf),
                      len(self.index), np.array(self.start[:-1], dtype=np.int32),
                      np.array(self.index, dtype=np.int32), np.array(self.value))


def gomory_rounds(problem: ArrayProblem, rounds: int = 5, max_cuts: int = 500, deadline: float | None = None,
                  threads: int | None = None, basis: LpBasis | None = None, active_only: bool = True) -> Cuts:
    """Up to `rounds` rounds of GMI cuts (at most `max_cuts` a round) on `problem`'s LP relaxation.
    `threads` None: HiGHS's default (an explicit count different from this thread's earlier solves would
    be refused by HiGHS's scheduler, so it is reset first, as `solve_mip` does). `basis`: an optimal (or
    nearly optimal) basis of the relaxation, to start the first LP from instead of solving it again from
    scratch (the slack column of a row takes the status of the row's logical). `active_only`: hand HiGHS
    only the cuts that are tight at the last round's LP optimum (docs/performance.md, sixth round)."""
    started = time.perf_counter()
    lp = _SlackLp(problem, threads, basis)
    cuts = Cuts()
    last_x: np.ndarray | None = None  # the last optimal LP point, with the cuts found before it
    cuts_in_last_x = 0
    for _round in range(rounds + 1):
        if deadline is not None:  # the LP itself may take longer than the budget on the largest auctions
            limit_next_lp(lp.highs, deadline - time.time())
        lp.highs.run()
        cuts.iterations.append(int(lp.highs.getInfo().simplex_iteration_count))
        if not solved_optimally(lp.highs):
            break
        last_x, cuts_in_last_x = np.array(lp.highs.getSolution().col_value), len(cuts)
        cuts.bounds.append(float(lp.highs.getInfo().objective_function_value))
        if _round == rounds or (deadline is not None and time.time() > deadline):
            break
        new_rows = lp.violated_cuts(last_x, max_cuts)
        if not new_rows:
            break
        lp.add(new_rows)
        for nz, vals, rhs in new_rows:
            cuts.add(nz, vals, rhs)
    if active_only and last_x is not None and cuts_in_last_x:
        # the cuts with slack at the last LP optimum do not hold its bound up: without them the root LP
        # HiGHS starts from has the same optimum and fewer rows (the cuts of a round whose LP did not solve
        # in time were all violated by the point before it: they stay)
        n, m = lp.n, lp.m
        cut_value = last_x[n + m:n + m + cuts_in_last_x]
        rhs = np.array(cuts.rhs[:cuts_in_last_x])
        tight = cut_value <= rhs + 1e-7 * np.maximum(1.0, np.abs(rhs))
        cuts.keep_only(np.concatenate([tight, np.ones(len(cuts) - cuts_in_last_x, dtype=bool)]))
    if last_x is not None:
        cuts.lp_x = last_x[:lp.n].copy()
    cuts.seconds = time.perf_counter() - started
    return cuts


#: a cut as a row over x: (columns, coefficients, right-hand side) of `coef·x ≥ rhs`
CutRow = tuple[np.ndarray, np.ndarray, float]


class _SlackLp:
    """The LP relaxation in the form the rounds work on: every row `lo ≤ a·x ≤ hi` as `a·x − s = 0` with a
    column `s ∈ [lo, hi]`, and each cut added as `c·x − t = 0, t ≥ rhs`; with the definitions of the slack
    and cut columns over x, to write a cut over x alone."""

    def __init__(self, problem: ArrayProblem, threads: int | None, basis: LpBasis | None):
        n, m = self.n, self.m = len(problem.cols), len(problem.rows)
        # definitions of the slack columns: s_i = (row i)·x, and later t_c = (cut c)·x
        self.defs_start = list(problem.a_start)
        self.defs_index = list(problem.a_index)
        self.defs_value = list(problem.a_value)
        self.highs = highs = new_highs()
        highs.setOptionValue("output_flag", False)
        if threads is not None:
            highs.setOptionValue("threads", threads)
        claim_thread_scheduler(threads)
        lp = highspy.HighsLp()
        lp.num_col_ = n + m
        lp.num_row_ = m
        lp.col_cost_ = np.concatenate([problem.col_cost, np.zeros(m)])
        lp.col_lower_ = np.concatenate([problem.col_lower, problem.row_lower])
        lp.col_upper_ = np.concatenate([problem.col_upper, problem.row_upper])
        lp.row_lower_ = np.zeros(m)
        lp.row_upper_ = np.zeros(m)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = _with_slacks(problem)
        lp.a_matrix_.num_col_ = n + m
        lp.a_matrix_.num_row_ = m
        highs.passModel(lp)
        if basis is not None:
            start = highspy.HighsBasis()
            start.col_status = [highspy.HighsBasisStatus(int(v)) for v in np.concatenate([basis.col_status,
                                                                                          basis.row_status])]
            start.row_status = [highspy.HighsBasisStatus.kLower] * m  # the rows a·x − s = 0: nonbasic
            start.valid = True
            highs.setBasis(start)
        self.is_int = np.zeros(n + m, dtype=bool)
        self.is_int[:n] = problem.integrality == 1
        self.lower = np.array(lp.col_lower_)
        self.upper = np.array(lp.col_upper_)

    def violated_cuts(self, x: np.ndarray, max_cuts: int) -> list[CutRow]:
        """GMI cuts from the tableau rows of the fractional basic integers at the LP optimum `x`, most
        fractional first (at most `max_cuts`), over x alone, scaled, and violated at `x`."""
        highs = self.highs
        status = np.array([int(s) for s in highs.getBasis().col_status])
        _, basic = highs.getBasicVariables()
        candidates = [(r, int(j)) for r, j in enumerate(basic) if j >= 0 and self.is_int[j]
                      and MIN_FRACTION < x[j] - math.floor(x[j]) < 1 - MIN_FRACTION]
        # most fractional first
        candidates.sort(key=lambda rj: abs(x[rj[1]] - math.floor(x[rj[1]]) - 0.5))
        new_rows = []
        defs = (np.asarray(self.defs_start, dtype=np.int64), np.asarray(self.defs_index, dtype=np.int64),
                np.asarray(self.defs_value, dtype=float))
        for r, j in candidates[:max_cuts]:
            cut = _gmi_cut(highs, r, x[j], status, self.lower, self.upper, self.is_int, len(self.lower))
            if cut is None:
                continue
            row = self._over_x(*cut, defs)
            if row is not None and float(row[1] @ x[row[0]]) < row[2] - 1e-6 * max(1.0, abs(row[2])):
                new_rows.append(row)  # (else not violated at this vertex: numerics)
        return new_rows

    def _over_x(self, coef: np.ndarray, rhs: float, defs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> CutRow | None:
        """The cut with its slack and earlier-cut columns replaced by their definitions over x (`defs`: start,
        index, value, as arrays), scaled to a largest coefficient of 1; None if empty or with too wide a
        coefficient range."""
        n = self.n
        d_start, d_index, d_value = defs
        dense = coef[:n].copy()
        ks = np.flatnonzero(coef[n:])
        if len(ks):
            lengths = d_start[ks + 1] - d_start[ks]
            offsets = np.repeat(d_start[ks] - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
            nzs = offsets + np.arange(int(lengths.sum()))
            dense += np.bincount(d_index[nzs], weights=np.repeat(coef[n + ks], lengths) * d_value[nzs], minlength=n)
        nz = np.flatnonzero(np.abs(dense) > EPS)
        if not len(nz):
            return None
        mags = np.abs(dense[nz])
        if mags.max() / mags.min() > MAX_DYNAMISM:
            return None
        scale = 1.0 / mags.max()
        return nz, dense[nz] * scale, rhs * scale

    def add(self, new_rows: list[CutRow]) -> None:
        """The round's cuts in one call each (a column per cut, then its row `c·x − t = 0`): HiGHS keeps the
        basis (the new columns and rows basic) and updates its matrix once, not once per cut."""
        first_t = len(self.lower)
        rhs_new = np.array([rhs for _, _, rhs in new_rows])
        self.highs.addCols(len(new_rows), np.zeros(len(new_rows)), rhs_new, np.full(len(new_rows), highspy.kHighsInf),
                           0, np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
        row_index = [np.append(nz, first_t + k) for k, (nz, _, _) in enumerate(new_rows)]
        row_value = [np.append(vals, -1.0) for _, vals, _ in new_rows]
        row_start = np.concatenate(([0], np.cumsum([len(ix) for ix in row_index])[:-1])).astype(np.int32)
        self.highs.addRows(len(new_rows), np.zeros(len(new_rows)), np.zeros(len(new_rows)),
                           int(sum(map(len, row_index))), row_start, np.concatenate(row_index).astype(np.int32),
                           np.concatenate(row_value))
        self.lower = np.concatenate([self.lower, rhs_new])
        self.upper = np.concatenate([self.upper, np.full(len(new_rows), np.inf)])
        self.is_int = np.concatenate([self.is_int, np.zeros(len(new_rows), dtype=bool)])
        for nz, vals, _rhs in new_rows:
            self.defs_index.extend(int(c) for c in nz)
            self.defs_value.extend(float(v) for v in vals)
            # the slack-definition list is indexed from n: slacks 0..m-1, then the cuts' columns
            self.defs_start.append(len(self.defs_index))


def _with_slacks(problem: ArrayProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR rows `a·x − s_i = 0`: each row of `problem` with its slack column (n + i) at the end."""
    n, m = len(problem.cols), len(problem.rows)
    row_len = np.diff(problem.a_start)
    starts = np.zeros(m + 1, dtype=np.int32)
    np.cumsum(row_len + 1, out=starts[1:])
    index = np.empty(int(starts[-1]), dtype=np.int32)
    value = np.empty(int(starts[-1]))
    row_of = problem.row_of_nonzeros()
    pos = starts[:-1][row_of] + (np.arange(len(problem.a_index)) - problem.a_start[:-1][row_of])
    index[pos] = problem.a_index
    value[pos] = problem.a_value
    index[starts[1:] - 1] = n + np.arange(m)
    value[starts[1:] - 1] = -1.0
    return starts, index, value


def _gmi_cut(highs: highspy.Highs, r: int, beta: float, status: np.ndarray, lower: np.ndarray, upper: np.ndarray,
             is_int: np.ndarray, num_cols: int) -> tuple[np.ndarray, float] | None:
    """The GMI cut of tableau row `r` (basic value `beta`) as (coefficients over all columns, rhs) for
    `coef·x ≥ rhs`; None where a nonbasic column is free."""
    _, row = highs.getReducedRow(r)
    row = np.asarray(row)[:num_cols]
    f0 = beta - math.floor(beta)
    at_lower = status == int(highspy.HighsBasisStatus.kLower)
    at_upper = status == int(highspy.HighsBasisStatus.kUpper)
    free = status == int(highspy.HighsBasisStatus.kZero)
    nonbasic = (at_lower | at_upper | free) & (np.abs(row) > EPS) & (upper - lower > EPS)
    if (nonbasic & free).any():
        return None
    # a' over y (distance from the bound the column sits at): y = x − l at lower, u − x at upper
    a = np.where(at_upper, -row, row)
    g = np.zeros(num_cols)
    ints = nonbasic & is_int
    f = a - np.floor(a)
    g[ints] = np.where(f[ints] <= f0, f[ints] / f0, (1 - f[ints]) / (1 - f0))
    conts = nonbasic & ~is_int
    g[conts] = np.where(a[conts] > 0, a[conts] / f0, -a[conts] / (1 - f0))
    # Σ g y ≥ 1 in x: lower: g (x − l); upper: g (u − x)
    coef = np.where(at_upper, -g, g)
    low = nonbasic & at_lower
    up = nonbasic & at_upper
    rhs = 1.0 + float(g[low] @ lower[low]) - float(g[up] @ upper[up])
    if not math.isfinite(rhs):
        return None
    return coef, rhs
