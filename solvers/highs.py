"""One MILP in arrays, solved by highspy: options, MIP start, progress and cancel, status, pricing.

Both back-ends end here: the fast path once per independent component (`solvers/fast.py`), the straight
path once for the whole model compiled from Pyomo (`solvers/straight.py`). So the status mapping, the
MIP progress callback and the pricing LP exist once.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

from solvers.api import MEMORY_GUARD_SHARE, START_TOLERANCE, Progress, ProgressCallback, SolveOptions, relative_gap

#: Progress from HiGHS's MIP callback at most this often (seconds).
PROGRESS_INTERVAL_S = 0.2


@dataclass(frozen=True)
class LpBasis:
    """A simplex basis of a problem's LP: HiGHS's basis status (`HighsBasisStatus` as int) per column and
    per row, to start another LP over the same columns and rows from (solvers/cuts.py)."""

    col_status: np.ndarray
    row_status: np.ndarray

    @classmethod
    def of(cls, highs: highspy.Highs) -> LpBasis | None:
        """The basis `highs` ended with, None if it has none."""
        basis = highs.getBasis()
        if not basis.valid:
            return None
        return cls(np.asarray(basis.col_status, dtype=np.int8), np.asarray(basis.row_status, dtype=np.int8))


@dataclass
class ArrayProblem:
    """A MILP `min c·x  s.t.  row_lower ≤ A x ≤ row_upper,  col_lower ≤ x ≤ col_upper`, A in CSR, as a piece
    of a bigger model (`cols`, `rows`: its global indices). Picklable: plain numpy arrays."""

    cols: np.ndarray
    rows: np.ndarray
    col_cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    a_start: np.ndarray
    a_index: np.ndarray  # local column indices
    a_value: np.ndarray
    start: np.ndarray | None = None  # a feasible MIP start (local columns), if known
    #: columns whose fixing falls the problem apart (e.g. bids spanning blocks): the fast path polishes its
    #: start by fixing them and solving the pieces apart (`solvers.fast.polish_by_splitting`); None: no polishing
    block_tying: np.ndarray | None = None
    #: where each column sits in the market (`solvers.lns.ColumnTags`), for the neighbourhood search
    tags: Any = None

    @property
    def num_int(self) -> int:
        return int(self.integrality.sum())

    @classmethod
    def whole(cls, model: Any) -> ArrayProblem:
        """All of `model` (anything with the arrays col_cost … a_value, e.g. a `clearing.matrix.MatrixModel`)
        as one problem: its own column and row numbers."""
        return cls(np.arange(len(model.col_cost)), np.arange(len(model.row_lower)), model.col_cost, model.col_lower,
                   model.col_upper, model.integrality, model.row_lower, model.row_upper, model.a_start,
                   model.a_index, model.a_value)


@dataclass
class ProblemSolution:
    """How one `ArrayProblem` solved: values and duals over its local columns and rows."""

    status: str
    x: np.ndarray | None
    row_dual: np.ndarray | None
    objective: float | None
    bound: float | None
    seconds: float
    nodes: int
    message: str = ""
    pricing_seconds: float = 0.0
    #: why the solve stopped before its time limit, when something other than HiGHS stopped it (the memory
    #: ceiling: `MemoryGuard.reason`); "" otherwise. The clearing's termination quotes it.
    stopped_by: str = ""


def highs_version() -> str:
    return f"{highspy.HIGHS_VERSION_MAJOR}.{highspy.HIGHS_VERSION_MINOR}.{highspy.HIGHS_VERSION_PATCH}"


_banner_lock = threading.Lock()
_banner_shown = False


def new_highs() -> highspy.Highs:
    """A Highs instance. HiGHS prints its banner on stdout when the process makes its first one; that would
    corrupt a result written to stdout, so the first one is made with stdout pointed at /dev/null."""
    global _banner_shown
    with _banner_lock:
        if _banner_shown:
            return highspy.Highs()
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            highs = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _banner_shown = True
        return highs


#: glibc's malloc_trim, looked up on first use (False where there is none)
_malloc_trim: Any = None


def release_freed_memory() -> None:
    """Hand the C heap's freed memory back to the operating system (glibc's `malloc_trim`; elsewhere nothing).
    glibc keeps what a finished HiGHS instance freed in the process (200,000 bids: 282 MB after the LP
    relaxation, docs/performance.md); called between a big component's phases, it keeps that memory out
    of the peak."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


def load_problem(highs: highspy.Highs, problem: ArrayProblem) -> None:
    """Pass `problem` to `highs` as its model (row-wise matrix)."""
    lp = highspy.HighsLp()
    lp.num_col_ = len(problem.cols)
    lp.num_row_ = len(problem.rows)
    lp.col_cost_ = problem.col_cost
    lp.col_lower_ = problem.col_lower
    lp.col_upper_ = problem.col_upper
    lp.row_lower_ = problem.row_lower
    lp.row_upper_ = problem.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = problem.a_start
    lp.a_matrix_.index_ = problem.a_index
    lp.a_matrix_.value_ = problem.a_value
    lp.a_matrix_.num_col_ = len(problem.cols)
    lp.a_matrix_.num_row_ = len(problem.rows)
    if problem.num_int:
        lp.integrality_ = [highspy.HighsVarType.kInteger if v else highspy.HighsVarType.kContinuous
                           for v in problem.integrality]
    highs.passModel(lp)


def set_options(highs: highspy.Highs, settings: dict[str, Any], names: tuple[str, ...] | None = None) -> None:
    """Set HiGHS options from `settings` (only `names`, if given)."""
    for name, value in settings.items():
        if names is None or name in names:
            highs.setOptionValue(name, value)


class MipEvents:
    """HiGHS's MIP interrupt callback: stops the solve when `cancel` is set, and reports the incumbent and
    bound to `progress` at most every PROGRESS_INTERVAL_S (with `message()` as the message)."""

    def __init__(self, progress: ProgressCallback | None, cancel: threading.Event | None, started: float,
                 message: Callable[[], str] = str):
        self.progress = progress
        self.cancel = cancel
        self.started = started
        self.message = message
        self.last = 0.0

    def __call__(self, event) -> None:
        if self.cancel is not None and self.cancel.is_set():
            event.interrupt()
        if self.progress is None:
            return
        now = time.perf_counter()
        if now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        out = event.data_out
        incumbent = out.mip_primal_bound if math.isfinite(out.mip_primal_bound) else None
        bound = out.mip_dual_bound if math.isfinite(out.mip_dual_bound) else None
        self.progress(Progress("solving", now - self.started, incumbent, bound, relative_gap(incumbent, bound),
                               self.message()))


#: how a result's termination says that the guard stopped a solve
MEMORY_NOTE = "stopped at the memory limit"
#: ... and reads the RSS at most this often (seconds): a read of the process tree costs about 0.1 ms.
MEMORY_CHECK_INTERVAL_S = 0.5


def tree_rss_mb(process=None) -> float:
    """Resident memory of `process` (a psutil.Process; default this one) and its children (the search process
    beside branch-and-bound, a clearing's pool workers), MB. Raises psutil.Error if `process` itself is gone."""
    import psutil

    me = process or psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:  # ended meanwhile
            pass
    return total / 2**20


class MemoryGuard:
    """HiGHS's MIP interrupt callback for `SolveOptions.memory_limit_mb`: interrupts branch-and-bound once the
    process tree's RSS passes MEMORY_GUARD_SHARE of the limit (the solve then ends as at a time limit,
    with its best incumbent and bound). It sees only what HiGHS's MIP loop reports between its steps; the
    LP phases before it are not watched."""

    def __init__(self, limit_mb: float):
        self.limit_mb = limit_mb
        self.stopped_at_mb: float | None = None
        self.last = -math.inf

    def __call__(self, event) -> None:
        now = time.perf_counter()
        if self.stopped_at_mb is not None or now - self.last < MEMORY_CHECK_INTERVAL_S:
            return
        self.last = now
        rss = tree_rss_mb()
        if rss > MEMORY_GUARD_SHARE * self.limit_mb:
            self.stopped_at_mb = rss
            event.interrupt()

    def reason(self) -> str:
        """Why the guard stopped the solve ("" when it did not)."""
        if self.stopped_at_mb is None:
            return ""
        return (f"{MEMORY_NOTE}: {self.stopped_at_mb:,.0f} MB resident, past "
                f"{MEMORY_GUARD_SHARE:.0%} of {self.limit_mb:,.0f} MB")

    def note(self) -> str:
        """What the solver message adds when the guard stopped the solve ("" when it did not)."""
        return f" ({self.reason()})" if self.stopped_at_mb is not None else ""


def status_name(model_status, has_solution: bool, cancelled: bool) -> str:
    """HiGHS's model status in the result document's terms."""
    if model_status == highspy.HighsModelStatus.kOptimal:
        return "OPTIMAL"
    if cancelled:
        return "CANCELLED"
    if model_status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt):
        return "TIME_LIMIT_FEASIBLE" if has_solution else "TIME_LIMIT_NO_SOLUTION"
    return "ERROR"


def run_problem(problem: ArrayProblem, options: SolveOptions, *, deadline: float | None = None,
                on_event: MipEvents | None = None, cancel: threading.Event | None = None,
                price: bool = True, on_pricing: Callable[[], None] | None = None,
                cuts: Any = None, user_solution: Callable[[], np.ndarray | None] | None = None) -> ProblemSolution:
    """Solve `problem` to the requested gap from its MIP start (if any), then, if `price`, the LP with
    its integers fixed (`on_pricing` called before it). `deadline` (time.time()) overrides the options'
    time limit. `cuts` (`solvers.cuts.Cuts`): rows valid for every integer point, added for the MIP and
    not to the pricing LP (prices are the duals of the market's rows alone). `user_solution()`: asked
    by HiGHS before each dive for a better feasible point found elsewhere (None: none new)."""
    highs = new_highs()
    settings = options.highs_settings()
    if deadline is None and "time_limit" in settings:
        deadline = time.time() + settings["time_limit"]
    if deadline is not None:
        settings["time_limit"] = max(0.01, deadline - time.time())
    set_options(highs, settings)
    load_problem(highs, problem)
    if cuts is not None:
        cuts.add_to(highs)
    if problem.start is not None and problem.num_int:
        sol = highspy.HighsSolution()
        sol.col_value = list(problem.start)
        sol.value_valid = True
        highs.setSolution(sol)
    if on_event is not None:
        highs.cbMipInterrupt.subscribe(on_event)
    guard = MemoryGuard(options.memory_limit_mb) if options.memory_limit_mb is not None and problem.num_int else None
    if guard is not None:
        highs.cbMipInterrupt.subscribe(guard)
    if user_solution is not None:
        def offer(event) -> None:
            x = user_solution()
            if x is not None:
                event.data_in.setSolution(x)
        highs.cbMipUserSolution.subscribe(offer)
    if options.threads is not None:
        # HiGHS keeps one scheduler per thread with the thread count of the first solve; a different
        # explicit count is refused ("scheduler already initialized") unless this thread's is reset
        highspy.Highs.resetThreadScheduler(True)
    started = time.perf_counter()
    highs.run()
    seconds = time.perf_counter() - started
    info = highs.getInfo()
    status = highs.getModelStatus()
    has_solution = info.primal_solution_status == 2
    objective = info.objective_function_value if has_solution else None
    if problem.num_int:
        bound = info.mip_dual_bound if math.isfinite(info.mip_dual_bound) else None
    else:
        bound = objective if status == highspy.HighsModelStatus.kOptimal else None
    nodes = max(int(info.mip_node_count), 0) if problem.num_int else 0
    message = highs.modelStatusToString(status) + (guard.note() if guard is not None else "")
    if has_solution:
        x = np.array(highs.getSolution().col_value)
        cost = float(problem.col_cost @ x)
        if problem.start is not None and problem.num_int and \
                abs(cost - objective) > 1e-9 * max(1.0, abs(objective)) + 1e-6:
            # HiGHS 1.16, given a MIP start, can report an objective that is not its point's cost: "optimal"
            # with objective and bound 0 for a point that costs more (found by the property test on a
            # two-bid auction), or, stopped by the limit in its presolve, the start itself with a lower
            # objective (a 2,594-column component of a 200,000-bid clearing with 0.01 s left). No proof:
            if status == highspy.HighsModelStatus.kOptimal:  # solve again without the start
                return run_problem(dataclasses.replace(problem, start=None), options, deadline=deadline,
                                   on_event=on_event, cancel=cancel, price=price, on_pricing=on_pricing, cuts=cuts,
                                   user_solution=user_solution)
            if violation(problem, x) > START_TOLERANCE:
                has_solution = False
            else:  # the point stands at its own cost; HiGHS's bound is not trusted
                objective, bound = cost, None
                message += " (HiGHS's objective was not its point's cost: the cost is reported, its bound dropped)"
    if not has_solution and status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt) \
            and problem.start is not None and problem.num_int and violation(problem, problem.start) <= START_TOLERANCE:
        # stopped before HiGHS took the start in: the start is still the best point known, and a result
        # carries the best incumbent at the limit
        x = np.array(problem.start, dtype=float)
        has_solution, objective = True, float(problem.col_cost @ x)
        message += " (the MIP start: stopped before it was taken in)"
    name = status_name(status, has_solution, cancel is not None and cancel.is_set())
    stopped_by = guard.reason() if guard is not None else ""
    if not has_solution:
        return ProblemSolution(name, None, None, None, bound, seconds, nodes, message, stopped_by=stopped_by)
    solved = ProblemSolution(name, x, None, objective, bound, seconds, nodes, message, stopped_by=stopped_by)
    if price:
        if on_pricing is not None:
            on_pricing()
        del highs  # the MIP's memory (and its cut rows) gone before the pricing LP's instance
        price_solution(problem, solved)
    return solved


def with_integers_fixed(problem: ArrayProblem, cols: np.ndarray, values: np.ndarray) -> ArrayProblem:
    """`problem` as an LP: columns `cols` fixed at `values`, every integrality dropped (a fresh HiGHS
    instance presolves the fixed columns away: the start roundings' LPs and the pricing LP)."""
    lower, upper = problem.col_lower.copy(), problem.col_upper.copy()
    lower[cols] = upper[cols] = values
    return dataclasses.replace(problem, col_lower=lower, col_upper=upper, integrality=np.zeros_like(problem.integrality),
                               start=None)


def price_point(problem: ArrayProblem, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Row duals and column values of the LP with every integer column fixed at its (rounded) value in `x`,
    in a fresh HiGHS instance: without a basis HiGHS presolves it, which the fixed integers shrink to a
    fraction (200,000 bids: 4 s against 12-24 s re-solved in the MIP's instance). The duals are the
    marginal prices (SPEC §1).

    The values replace the MIP's: branch-and-bound accepts u = 5e-7 as 0 yet leaves q = 0.0005 kW beside
    it, which breaks the minimum-quantity rule; in the LP the fixed u is exactly 0. None if the LP failed."""
    ints = np.flatnonzero(problem.integrality)
    highs = new_highs()
    highs.setOptionValue("output_flag", False)  # and no time limit: a clearing with a solution gets its prices
    load_problem(highs, with_integers_fixed(problem, ints, np.round(x[ints])))
    highs.run()
    sol = highs.getSolution()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal or not sol.dual_valid:
        return None
    return np.array(sol.row_dual), np.array(sol.col_value)


def price_solution(problem: ArrayProblem, solved: ProblemSolution) -> None:
    """Price `solved`'s point (`price_point`) in place: the row duals, and the LP's values, exact in the
    integers (no tolerance crumbs) and with the continuous columns at their best for these integers (a
    start stopped at the limit may have them worse), so the objective is the lower of the two costs."""
    started = time.perf_counter()
    priced = price_point(problem, solved.x)
    if priced is not None:
        solved.row_dual, solved.x = priced
        solved.objective = min(solved.objective, float(problem.col_cost @ solved.x))
    solved.pricing_seconds = time.perf_counter() - started


def violation(problem, x: np.ndarray) -> float:
    """Largest bound, row or integrality violation of `x` in `problem` (an `ArrayProblem` or anything with
    its arrays, such as `clearing.matrix.MatrixModel`); 0.0 for a feasible point."""
    num_rows = len(problem.row_lower)
    row_of_nz = np.repeat(np.arange(num_rows), np.diff(problem.a_start))
    activity = np.bincount(row_of_nz, weights=problem.a_value * x[problem.a_index], minlength=num_rows)
    ints = problem.integrality == 1
    return float(max(np.max(problem.col_lower - x, initial=0.0), np.max(x - problem.col_upper, initial=0.0),
                     np.max(problem.row_lower - activity, initial=0.0), np.max(activity - problem.row_upper, initial=0.0),
                     np.max(np.abs(x[ints] - np.round(x[ints])), initial=0.0)))
