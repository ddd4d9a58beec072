"""One MILP in arrays, solved by highspy: options, MIP start, progress and cancel, status, the fixed LP.

Both back-ends end here: the fast path once per independent component (`solvers/fastpath/`), the straight
path once for the whole model compiled from Pyomo (`solvers/straight.py`). So the HiGHS set-up, the status
mapping, the MIP progress callback and the LP with the integers fixed exist once. The market's prices are
not these LPs' duals: they come from the fixed-integer LP of the real prices (clearing/fixed_lp.py).
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

from dkw.solvers.api import (
    MEMORY_GUARD_SHARE,
    START_TOLERANCE,
    ComponentReport,
    Progress,
    ProgressCallback,
    SolveOptions,
    SolveStatus,
    relative_gap,
)
from dkw.solvers.arrays import ArrayProblem, switch_off_idle, violation

#: Progress from HiGHS's MIP callback at most this often (seconds).
PROGRESS_INTERVAL_S = 0.2
#: HiGHS's `primal_solution_status` when it holds a feasible point (kSolutionStatusFeasible)
SOLUTION_FEASIBLE = 2
OPTIMAL = highspy.HighsModelStatus.kOptimal
#: HiGHS's model statuses of a solve stopped before its end (time limit, interrupt callback)
STOPPED = (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt)


@dataclass(frozen=True)
class LpBasis:
    """A simplex basis of a problem's LP: HiGHS's basis status (`HighsBasisStatus` as int) per column and
    per row, to start another LP over the same columns and rows from (solvers/fastpath/cuts.py)."""

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
class ComponentSolution:
    """How one `ArrayProblem` (a component, or the straight path's whole model) solved: its point over its
    local columns. `priced`: the LP with the point's integers fixed solved, and its values replaced the
    MIP's (`refine_point`)."""

    status: SolveStatus
    x: np.ndarray | None
    priced: bool
    objective: float | None
    bound: float | None
    seconds: float
    nodes: int
    message: str = ""
    pricing_seconds: float = 0.0
    #: why the solve stopped before its time limit, when something other than HiGHS stopped it (the memory
    #: ceiling: `MemoryGuard.reason`); "" otherwise. The clearing's termination quotes it.
    stopped_by: str = ""
    #: the fast path's account of the component (solvers/fastpath/component.py)
    report: ComponentReport | None = None


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


def highs_for(problem: ArrayProblem, settings: dict[str, Any], names: tuple[str, ...] | None = None,
              **overrides: Any) -> highspy.Highs:
    """A fresh HiGHS instance holding `problem`: the options of `settings` (only `names`, if given), then
    `overrides` (HiGHS option names; None values skipped, e.g. no time limit). The one place a solve is set up."""
    highs = new_highs()
    set_options(highs, settings, names)
    for name, value in overrides.items():
        if value is not None:
            highs.setOptionValue(name, value)
    load_problem(highs, problem)
    return highs


def claim_thread_scheduler(threads: int | None) -> None:
    """Before a solve with an explicit thread count: HiGHS keeps one scheduler per calling thread with the
    thread count of its first solve, and refuses a different explicit count ("scheduler already
    initialized") unless this thread's scheduler is reset. None (HiGHS's default count): nothing to do."""
    if threads is not None:
        highspy.Highs.resetThreadScheduler(True)


def limit_next_lp(highs: highspy.Highs, seconds: float) -> None:
    """Give the next LP solve of a reused instance `seconds`. HiGHS 1.16 holds an LP to its time limit
    against the instance's run time over all its runs (a MIP, against its own run's): an LP re-solved with
    `time_limit` set to the seconds left stops as soon as the earlier runs add up to them, not after them."""
    highs.setOptionValue("time_limit", highs.getRunTime() + max(0.01, seconds))


def has_point(highs: highspy.Highs) -> bool:
    """HiGHS holds a feasible point (optimal or not)."""
    return highs.getInfo().primal_solution_status == SOLUTION_FEASIBLE


def solved_optimally(highs: highspy.Highs) -> bool:
    return highs.getModelStatus() == OPTIMAL


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


def status_name(model_status, has_solution: bool, cancelled: bool) -> SolveStatus:
    """HiGHS's model status in the result document's terms."""
    if model_status == OPTIMAL:
        return SolveStatus.OPTIMAL
    if cancelled:
        return SolveStatus.CANCELLED
    if model_status in STOPPED:
        return SolveStatus.at_limit(has_solution)
    return SolveStatus.ERROR


def solve_mip(problem: ArrayProblem, options: SolveOptions, *, deadline: float | None = None,
              on_event: MipEvents | None = None, cancel: threading.Event | None = None,
              refine: bool = True, on_refine: Callable[[], None] | None = None,
              cuts: Any = None, user_solution: Callable[[], np.ndarray | None] | None = None,
              on_improving: Callable[[np.ndarray, float], None] | None = None,
              trim_incumbents: bool = False) -> ComponentSolution:
    """Solve `problem` to the requested gap from its MIP start (if any), then, if `refine`, the LP with
    its integers fixed (`refine_point`; `on_refine` called before it). `deadline` (time.time()) overrides
    the options' time limit. `cuts` (`dkw.solvers.fastpath.cuts.Cuts`): rows valid for every integer point,
    added for the MIP only. `user_solution()`: asked by HiGHS before each dive for a better feasible point
    found elsewhere (None: none new). `on_improving(x, objective)`: told of every incumbent HiGHS finds.
    `trim_incumbents`: each incumbent HiGHS finds goes back to it with its idle binaries switched off
    (`IncumbentTrim`). The final point is trimmed either way, so its objective is the one a result charges."""
    settings = options.highs_settings()
    if deadline is None and "time_limit" in settings:
        deadline = time.time() + settings["time_limit"]
    if deadline is not None:
        settings["time_limit"] = max(0.01, deadline - time.time())
    highs = highs_for(problem, settings)
    if cuts is not None:
        cuts.add_to(highs)
    if problem.start is not None and problem.num_int:
        sol = highspy.HighsSolution()
        sol.col_value = list(problem.start)
        sol.value_valid = True
        highs.setSolution(sol)
    trim = IncumbentTrim(problem) if trim_incumbents and problem.num_int else None
    guard = _subscribe(highs, problem, options, on_event, user_solution, on_improving, trim)
    claim_thread_scheduler(options.threads)
    started = time.perf_counter()
    highs.run()
    solved = _read_solution(highs, problem, time.perf_counter() - started, guard, cancel)
    if solved is None:  # HiGHS's objective was not its "optimal" point's cost: solve again without the start
        return solve_mip(dataclasses.replace(problem, start=None), options, deadline=deadline, on_event=on_event,
                         cancel=cancel, refine=refine, on_refine=on_refine, cuts=cuts, user_solution=user_solution,
                         on_improving=on_improving, trim_incumbents=trim_incumbents)
    _trim_final(problem, solved, trim)
    if refine and solved.x is not None:
        if on_refine is not None:
            on_refine()
        del highs  # the MIP's memory (and its cut rows) gone before the LP's instance
        refine_point(problem, solved)
    return solved


def start_kept(problem: ArrayProblem, why: str, *, refine: bool = True) -> ComponentSolution | None:
    """`problem`'s MIP start as its solution, without branch-and-bound (no bound): where the branch-and-bound
    could not get through its root's LP relaxation in the time left (`why`, in the message), it would only
    spend that time taking the model in (200,000 bids: 6.5 s for 0 nodes). Trimmed and refined as
    `solve_mip`'s point. None where the start is missing or infeasible."""
    if problem.start is None or not problem.num_int or violation(problem, problem.start) > START_TOLERANCE:
        return None
    x = np.array(problem.start, dtype=float)
    solved = ComponentSolution(SolveStatus.TIME_LIMIT_FEASIBLE, x, False, float(problem.col_cost @ x), None, 0.0, 0,
                               f"branch-and-bound not started: {why}; the MIP start kept")
    _trim_final(problem, solved, None)
    if refine:
        refine_point(problem, solved)
    return solved


class IncumbentTrim:
    """HiGHS's incumbents with their idle binaries switched off (`switch_off_idle`), handed back to it as user
    solutions: a cutoff lower by what the result would not charge anyway. Told from HiGHS's improving-solution
    callback; asked from its user-solution callback."""

    def __init__(self, problem: ArrayProblem):
        self.problem = problem
        self.switched = 0  # binaries switched off, over all incumbents
        self.trimmed = 0  # incumbents that had any
        self._pending: np.ndarray | None = None
        self._pending_objective = math.inf
        self._lock = threading.Lock()

    def improving(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """`x` (an incumbent of HiGHS's) trimmed, and its cost; kept for HiGHS if anything was switched off."""
        trimmed, switched = switch_off_idle(self.problem, x)
        cost = float(self.problem.col_cost @ trimmed)
        if switched:
            with self._lock:
                self.switched += switched
                self.trimmed += 1
                if cost < self._pending_objective:
                    self._pending, self._pending_objective = trimmed, cost
        return trimmed, cost

    def take(self) -> tuple[np.ndarray, float] | None:
        """The trimmed point not yet handed back, if any."""
        with self._lock:
            if self._pending is None:
                return None
            point, self._pending = (self._pending, self._pending_objective), None
            return point

    def note(self) -> str:
        if not self.switched:
            return ""
        return f" ({self.switched} idle binar{'y' if self.switched == 1 else 'ies'} switched off in " \
               f"{self.trimmed} incumbent{'' if self.trimmed == 1 else 's'})"


def _subscribe(highs: highspy.Highs, problem: ArrayProblem, options: SolveOptions, on_event: MipEvents | None,
               user_solution: Callable[[], np.ndarray | None] | None,
               on_improving: Callable[[np.ndarray, float], None] | None = None,
               trim: IncumbentTrim | None = None) -> MemoryGuard | None:
    """Hook the progress/cancel callback, the memory guard, the user solutions, the listener for improving
    solutions and the incumbents' trim into `highs`; the guard."""
    if on_event is not None:
        highs.cbMipInterrupt.subscribe(on_event)
    guard = MemoryGuard(options.memory_limit_mb) if options.memory_limit_mb is not None and problem.num_int else None
    if guard is not None:
        highs.cbMipInterrupt.subscribe(guard)
    if user_solution is not None or trim is not None:
        def offer(event) -> None:
            offers = [] if trim is None else [trim.take()]
            x = user_solution() if user_solution is not None else None
            if x is not None:
                offers.append((x, float(problem.col_cost @ x)))
            offers = [o for o in offers if o is not None]
            if offers:
                event.data_in.setSolution(min(offers, key=lambda o: o[1])[0])
        highs.cbMipUserSolution.subscribe(offer)
    if on_improving is not None or trim is not None:
        def improving(event) -> None:
            x = np.array(event.data_out.mip_solution, dtype=float)  # the original columns, copied
            if len(x) != problem.num_cols:
                return
            x, objective = trim.improving(x) if trim is not None else (x, float(problem.col_cost @ x))
            if on_improving is not None:
                on_improving(x, objective)
        highs.cbMipImprovingSolution.subscribe(improving)
    return guard


def _trim_final(problem: ArrayProblem, solved: ComponentSolution, trim: IncumbentTrim | None) -> None:
    """The final point with its idle binaries switched off, so its objective is what a result charges (and
    `mip_gap` the gap a user can check); the trim's count in the solver's message."""
    if solved.x is not None and problem.num_int:
        x, switched = switch_off_idle(problem, solved.x)
        if switched:
            solved.x = x
            solved.objective = min(solved.objective, float(problem.col_cost @ x))
    if trim is not None:
        solved.message += trim.note()


def _read_solution(highs: highspy.Highs, problem: ArrayProblem, seconds: float, guard: MemoryGuard | None,
                   cancel: threading.Event | None) -> ComponentSolution | None:
    """What the finished `highs` holds, checked against its own point; None: solve again without the start."""
    info = highs.getInfo()
    status = highs.getModelStatus()
    has_solution = has_point(highs)
    objective = info.objective_function_value if has_solution else None
    if problem.num_int:
        bound = info.mip_dual_bound if math.isfinite(info.mip_dual_bound) else None
    else:
        bound = objective if status == OPTIMAL else None
    nodes = max(int(info.mip_node_count), 0) if problem.num_int else 0
    message = highs.modelStatusToString(status) + (guard.note() if guard is not None else "")
    x = None
    if has_solution:
        x = np.array(highs.getSolution().col_value)
        cost = float(problem.col_cost @ x)
        if problem.start is not None and problem.num_int and \
                abs(cost - objective) > 1e-9 * max(1.0, abs(objective)) + 1e-6:
            # HiGHS 1.16, given a MIP start, can report an objective that is not its point's cost: "optimal"
            # with objective and bound 0 for a point that costs more (found by the property test on a
            # two-bid auction), or, stopped by the limit in its presolve, the start itself with a lower
            # objective (a 2,594-column component of a 200,000-bid clearing with 0.01 s left). No proof:
            if status == OPTIMAL:
                return None
            if violation(problem, x) > START_TOLERANCE:
                has_solution, x = False, None
            else:  # the point stands at its own cost; HiGHS's bound is not trusted
                objective, bound = cost, None
                message += " (HiGHS's objective was not its point's cost: the cost is reported, its bound dropped)"
    if not has_solution and status in STOPPED and problem.start is not None and problem.num_int \
            and violation(problem, problem.start) <= START_TOLERANCE:
        # stopped before HiGHS took the start in: the start is still the best point known, and a result
        # carries the best incumbent at the limit
        x = np.array(problem.start, dtype=float)
        has_solution, objective = True, float(problem.col_cost @ x)
        message += " (the MIP start: stopped before it was taken in)"
    name = status_name(status, has_solution, cancel is not None and cancel.is_set())
    stopped_by = guard.reason() if guard is not None else ""
    return ComponentSolution(name, x, False, objective if has_solution else None, bound, seconds, nodes, message,
                             stopped_by=stopped_by)


def with_integers_fixed(problem: ArrayProblem, cols: np.ndarray, values: np.ndarray) -> ArrayProblem:
    """`problem` as an LP: columns `cols` fixed at `values`, every integrality dropped (a fresh HiGHS
    instance presolves the fixed columns away: the start roundings' LPs and `refine_point`'s LP)."""
    lower, upper = problem.col_lower.copy(), problem.col_upper.copy()
    lower[cols] = upper[cols] = values
    return dataclasses.replace(problem, col_lower=lower, col_upper=upper, integrality=np.zeros_like(problem.integrality),
                               start=None)


def fixed_integer_values(problem: ArrayProblem, x: np.ndarray, time_limit: float | None = None) -> np.ndarray | None:
    """Column values of the LP with every integer column fixed at its (rounded) value in `x`, in a fresh
    HiGHS instance: without a basis HiGHS presolves it, which the fixed integers shrink to a fraction
    (200,000 bids: 4 s against 12-24 s re-solved in the MIP's instance). None if the LP failed (or did not
    end within `time_limit` seconds, when one is given: a start built before the solve, not a result).

    The values replace the MIP's: branch-and-bound accepts u = 5e-7 as 0 yet leaves q = 0.0005 kW beside
    it, which breaks the minimum-quantity rule; in the LP the fixed u is exactly 0. (Its duals are not the
    market's prices: those come from clearing/fixed_lp.py, without the tie-break perturbations.)"""
    ints = np.flatnonzero(problem.integrality)
    # no time limit unless asked (a start built before the solve): a clearing with a solution gets its exact point
    highs = highs_for(with_integers_fixed(problem, ints, np.round(x[ints])), {"output_flag": False},
                      time_limit=time_limit)
    highs.run()
    sol = highs.getSolution()
    if not solved_optimally(highs) or not sol.dual_valid:
        return None
    return np.array(sol.col_value)


def refine_point(problem: ArrayProblem, solved: ComponentSolution) -> None:
    """Replace `solved`'s point by `fixed_integer_values` in place: exact in the integers (no tolerance
    crumbs) and with the continuous columns at their best for these integers (a start stopped at the limit
    may have them worse), so the objective is the lower of the two costs."""
    started = time.perf_counter()
    values = fixed_integer_values(problem, solved.x)
    if values is not None:
        solved.x, solved.priced = values, True
        solved.objective = min(solved.objective, float(problem.col_cost @ solved.x))
    solved.pricing_seconds = time.perf_counter() - started
