"""Large-neighbourhood search for the incumbent: free a neighbourhood of the integer columns, fix the rest
at the incumbent, solve that sub-MILP exactly with HiGHS, keep it if it is cheaper.

Why: on national auctions most of the fast path's gap is its incumbent (issue 13: two thirds at 5,000
bids), and HiGHS's own heuristics, even at high effort, stop well above what a RINS-like search finds.
A sub-MILP with most binaries fixed is small after presolve and HiGHS solves it to optimality in
seconds, so many neighbourhoods fit in the time a full branch-and-bound spends without improving.

Neighbourhoods (over the integer columns only: quantities, flows and shortfalls stay free in every one, or
with `SearchKnobs.continuous_hops` those near a freed integer column, the rest then re-solved for each new
incumbent: `SearchKnobs.polish_continuous`):
- `rins`: the binaries where the LP relaxation and the incumbent disagree (RINS);
- `blocks`: the binaries of bids touching a window of consecutive blocks;
- `areas`: the binaries of bids in one area and the areas its lines reach;
- `product`: the binaries of bids offering one product.
Their size adapts: a sub-MILP solved to optimality well within its time widens the next one of its
kind; one that hits its time limit narrows it. Every sub-MILP starts from the incumbent (always feasible
in it), so an improvement is never lost and a failed one costs only its time. Deterministic given the
time it is allowed (seeded choices; HiGHS runs seeded).

This only finds incumbents: the bound and the proof stay with the full model's branch-and-bound. The
search runs either before it (`NeighbourhoodSearch.run`, when no core is spare) or beside it in a process
of its own (`ConcurrentSearch`), handing every improvement to the running branch-and-bound as a user
solution: on a national auction one component holds 98% of the bids, so the second core is otherwise
idle while HiGHS works on the bound (docs/performance.md has the figures).
"""

from __future__ import annotations

import math
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import highspy
import numpy as np

from dkw.solvers.arrays import ArrayProblem, switch_off_idle, violation
from dkw.solvers.highs import (
    claim_thread_scheduler,
    has_point,
    highs_for,
    limit_next_lp,
    solved_optimally,
    with_integers_fixed,
)

#: A sub-MILP may take at most this long (seconds; on national components `FastPathTuning.lns_sub_max_s`), and
#: at least SUB_MIN_S.
SUB_MAX_S = 6.0
SUB_MIN_S = 1.0
#: The LP of `SearchKnobs.polish_continuous` may take at most this long (s), or the polish stops.
POLISH_MAX_S = 2.0
#: An improvement smaller than this (relative) does not count (solver noise).
IMPROVEMENT_REL = 1e-9
#: HiGHS options taken over from the caller's for the sub-MILPs.
PASSED_OPTIONS = ("random_seed", "threads")


@dataclass
class ColumnTags:
    """Where each column of a problem sits in the market, for building neighbourhoods (-1 / 0: nowhere).

    `area`: the area of the bid (or resource) the column belongs to; `products`: a bitmask of the
    products it offers; `first_block` / `last_block`: the span of blocks it covers; `area_neighbours`:
    per area, the areas one line away; `linked`: the column is a bid's (quantity or acceptance) that has a
    parent or children (linked bids, 親子関係), where the fast path decides whether the search runs beside
    branch-and-bound at mid-size (`FastPathTuning.lns_beside_unlinked_min_integers`)."""

    area: np.ndarray
    products: np.ndarray
    first_block: np.ndarray
    last_block: np.ndarray
    num_blocks: int
    num_products: int
    area_neighbours: list[list[int]] = field(default_factory=list)
    linked: np.ndarray | None = None

    def take(self, cols: np.ndarray) -> ColumnTags:
        return ColumnTags(self.area[cols], self.products[cols], self.first_block[cols], self.last_block[cols],
                          self.num_blocks, self.num_products, self.area_neighbours,
                          None if self.linked is None else self.linked[cols])

    def any_linked(self) -> bool:
        """Whether any column is a linked bid's (unknown: True, the cautious answer)."""
        return self.linked is None or bool(self.linked.any())


@dataclass
class LnsStats:
    """What the search did, for the result's solver message and docs/performance.md."""

    tried: dict[str, int] = field(default_factory=dict)
    improved: dict[str, int] = field(default_factory=dict)
    start_objective: float | None = None
    objective: float | None = None
    seconds: float = 0.0
    history: list[tuple[float, float]] = field(default_factory=list)  # (seconds, objective) per improvement
    #: per sub-MILP: (kind, integers freed, solved to optimality, seconds, its objective)
    log: list[tuple[str, int, bool, float, float]] = field(default_factory=list)
    #: incumbents taken over from branch-and-bound beside it (cheaper than the search's own at the time)
    adopted: int = 0
    #: idle binaries switched off in the sub-MILPs' points (`SearchKnobs.trim_idle`)
    switched_off: int = 0
    #: yen gained by re-solving the incumbents' continuous columns (`SearchKnobs.polish_continuous`)
    polished: float = 0.0
    polish_seconds: float = 0.0

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {self.improved.get(k, 0)}/{n}" for k, n in sorted(self.tried.items()))
        adopted = f"; {self.adopted} from branch-and-bound" if self.adopted else ""
        n = self.switched_off
        idle = f"; {n} idle binar{'y' if n == 1 else 'ies'} switched off" if n else ""
        polished = f"; {self.polished / 1e6:.2f}M yen from re-solving continuous columns in " \
            f"{self.polish_seconds:.1f} s" if self.polished else ""
        return f"neighbourhood search {self.seconds:.0f} s ({kinds}{adopted}{idle}{polished})"


@dataclass(frozen=True)
class SearchKnobs:
    """How the search works on one component (`dkw.solvers.fastpath.component.ComponentRun.search_knobs`):
    `continuous_hops` 0: every continuous column stays free in a sub-MILP; k: only those within k rows of a
    freed integer column, the rest fixed at the incumbent (`FastPathTuning.lns_continuous_hops`);
    `sub_max_s`: the longest a sub-MILP may take; `trim_idle`: each sub-MILP's point gets its idle binaries
    switched off (`dkw.solvers.arrays.switch_off_idle`) before it is compared with the incumbent;
    `polish_continuous`: with `continuous_hops` set, every new incumbent's continuous columns are re-solved
    as the LP with its integers fixed, so the far columns a sub-MILP held fixed do not stay stale."""

    continuous_hops: int = 0
    sub_max_s: float = SUB_MAX_S
    trim_idle: bool = False
    polish_continuous: bool = False


class NeighbourhoodSearch:
    """The search over one problem (`ArrayProblem`) from a feasible incumbent, with the LP relaxation's
    values for RINS. One HiGHS instance holds the problem; each neighbourhood only changes its bounds."""

    def __init__(self, problem: ArrayProblem, incumbent: np.ndarray, lp_x: np.ndarray | None,
                 tags: ColumnTags | None, settings: dict[str, Any], seed: int = 0,
                 knobs: SearchKnobs = SearchKnobs()):
        self.problem = problem
        self.sub_max_s = knobs.sub_max_s
        self.trim_idle = knobs.trim_idle
        self.x = incumbent.copy()
        self.objective = float(problem.col_cost @ incumbent)
        self.lp_x = lp_x
        self.tags = tags
        self.rng = np.random.default_rng(seed)
        self.ints = np.flatnonzero(problem.integrality == 1).astype(np.int32)
        # the search is the heuristic: HiGHS's own sub-MIP heuristics took most of each sub-MILP's time
        off = {name: False for name in ("mip_heuristic_run_rins", "mip_heuristic_run_rens",
                                        "mip_heuristic_run_root_reduced_cost", "mip_heuristic_run_feasibility_jump",
                                        "mip_allow_restart")}
        self.highs = highs_for(problem, settings, PASSED_OPTIONS, output_flag=False, mip_rel_gap=0.0, **off,
                               mip_heuristic_effort=0.0)
        #: per kind, the share of the integer columns (or window width) to aim at; adapted as it goes
        self.size = {"rins": 1.0, "blocks": 2.0, "areas": 0.3, "product": 0.15}
        self.stats = LnsStats(start_objective=self.objective, objective=self.objective)
        self.continuous_hops = knobs.continuous_hops
        self._continuous_fixed = False
        self._is_continuous = problem.integrality != 1
        self.conts = np.flatnonzero(self._is_continuous).astype(np.int32)
        self._row_of_nz = problem.row_of_nonzeros()
        self._fixed_lp = None
        if knobs.polish_continuous and knobs.continuous_hops:
            lp = with_integers_fixed(problem, self.ints, np.round(incumbent[self.ints]))
            self._fixed_lp = highs_for(lp, settings, PASSED_OPTIONS, output_flag=False)

    def polish_continuous(self, on_improvement: Callable[[float], None] | None = None) -> float:
        """Re-solve the incumbent's continuous columns with its integers fixed (warm: the LP instance keeps
        its basis from the last call); returns the objective gained, and tells `on_improvement` if any. An
        LP that does not solve within POLISH_MAX_S turns the polish off for the rest of the search."""
        if self._fixed_lp is None:
            return 0.0
        ints = self.ints
        at = np.round(self.x[ints])
        began = time.perf_counter()
        self._fixed_lp.changeColsBounds(len(ints), ints, at, at)
        limit_next_lp(self._fixed_lp, POLISH_MAX_S)
        self._fixed_lp.run()
        self.stats.polish_seconds += time.perf_counter() - began
        if not solved_optimally(self._fixed_lp):
            self._fixed_lp = None
            return 0.0
        x = np.array(self._fixed_lp.getSolution().col_value)
        objective = float(self.problem.col_cost @ x)
        if objective >= self.objective * (1 - IMPROVEMENT_REL) or violation(self.problem, x) > 1e-6:
            return 0.0
        gained = self.objective - objective
        self.x, self.objective = x, objective
        self.stats.polished += gained
        if on_improvement is not None:
            on_improvement(objective)
        return gained

    def kinds(self) -> list[str]:
        kinds = ["rins"] if self.lp_x is not None else []
        if self.tags is not None:
            kinds += ["blocks", "areas", "product"]
        return kinds

    def neighbourhood(self, kind: str) -> np.ndarray:
        """A boolean mask over `self.ints`: the integer columns to free."""
        ints = self.ints
        if kind == "rins":
            free = np.abs(self.lp_x[ints] - self.x[ints]) > 1e-6
            return self._thin(free, self.size["rins"])
        tags = self.tags.take(ints)
        tagged = tags.area >= 0
        if kind == "blocks":
            # size above 1: the window's width in blocks; below 1: one block, a random share of its columns
            width = max(1, int(round(self.size["blocks"])))
            start = int(self.rng.integers(0, max(1, tags.num_blocks - width + 1)))
            free = tagged & (tags.first_block < start + width) & (tags.last_block >= start)
            return self._thin(free, self.size["blocks"])
        if kind == "areas":
            areas = sorted({int(a) for a in tags.area[tagged]})
            if not areas:
                return np.zeros(len(ints), dtype=bool)
            centre = areas[int(self.rng.integers(0, len(areas)))]
            chosen = {centre}
            if self.size["areas"] >= 1.0 and centre < len(tags.area_neighbours):
                chosen |= set(tags.area_neighbours[centre])
            free = tagged & np.isin(tags.area, sorted(chosen))
            return self._thin(free, self.size["areas"])
        if kind == "product":
            p = int(self.rng.integers(0, max(1, tags.num_products)))
            free = tagged & ((tags.products >> p) & 1).astype(bool)
            return self._thin(free, self.size["product"])
        raise ValueError(kind)

    def _thin(self, free: np.ndarray, share: float) -> np.ndarray:
        """Keep a random `share` (≤ 1) of the freed columns (a neighbourhood that timed out shrinks)."""
        if share >= 1.0:
            return free
        keep = self.rng.random(len(free)) < share
        return free & keep

    def adapt(self, kind: str, solved: bool, took: float, limit: float) -> None:
        if kind == "blocks":
            self.size[kind] = min(self.size[kind] * 1.5, 48.0) if solved and took < limit / 2 else \
                max(0.05, self.size[kind] / 1.5) if not solved else self.size[kind]
        else:
            self.size[kind] = min(1.0, self.size[kind] * 1.3) if solved and took < limit / 2 else \
                max(0.05, self.size[kind] / 1.5) if not solved else self.size[kind]

    def solve_neighbourhood(self, free: np.ndarray, limit: float) -> tuple[bool, np.ndarray | None, float]:
        """The sub-MILP with the integers outside `free` fixed at the incumbent. Returns (solved to
        optimality, its point if it is feasible, its objective)."""
        p, ints = self.problem, self.ints
        fixed = ints[~free]
        lower = p.col_lower[ints].copy()
        upper = p.col_upper[ints].copy()
        lower[~free] = np.round(self.x[fixed])
        upper[~free] = np.round(self.x[fixed])
        self.highs.changeColsBounds(len(ints), ints, lower, upper)
        if self.continuous_hops:
            self._fix_far_continuous(ints[free])
        elif self._continuous_fixed:  # hops set to 0 since the last sub-MILP: every continuous column free
            conts = self.conts
            self.highs.changeColsBounds(len(conts), conts, p.col_lower[conts], p.col_upper[conts])
            self._continuous_fixed = False
        self.highs.setOptionValue("time_limit", float(limit))
        sol = highspy.HighsSolution()
        sol.col_value = list(self.x)
        sol.value_valid = True
        self.highs.setSolution(sol)
        self.highs.run()
        solved = solved_optimally(self.highs)
        if not has_point(self.highs):
            return solved, None, float("inf")
        x = np.array(self.highs.getSolution().col_value)
        if self.trim_idle:
            # binaries outside the neighbourhood stay fixed, so a start-up whose bids the sub-MILP turned
            # down stays on in its point
            x, switched = switch_off_idle(p, x)
            self.stats.switched_off += switched
        return solved, x, float(p.col_cost @ x)

    def adopt(self, x: np.ndarray | None) -> bool:
        """Go on from `x` (branch-and-bound's incumbent) if it is feasible and cheaper than the search's own."""
        if x is None:
            return False
        objective = float(self.problem.col_cost @ x)
        if objective >= self.objective * (1 - IMPROVEMENT_REL) or violation(self.problem, x) > 1e-6:
            return False
        self.x, self.objective = x, objective
        self.stats.adopted += 1
        return True

    def _fix_far_continuous(self, freed: np.ndarray) -> None:
        """Fix at the incumbent every continuous column more than `continuous_hops` rows away from `freed`."""
        p, conts = self.problem, self.conts
        near = np.zeros(p.num_cols, dtype=bool)
        near[freed] = True
        for _ in range(self.continuous_hops):
            rows = np.zeros(p.num_rows, dtype=bool)
            rows[self._row_of_nz[near[p.a_index]]] = True
            reached = np.zeros(p.num_cols, dtype=bool)
            reached[p.a_index[rows[self._row_of_nz]]] = True
            near |= reached & self._is_continuous  # the other integers stay fixed: no reach through them
        far = ~near[conts]
        lower = p.col_lower[conts].copy()
        upper = p.col_upper[conts].copy()
        lower[far] = self.x[conts][far]
        upper[far] = self.x[conts][far]
        self.highs.changeColsBounds(len(conts), conts, lower, upper)
        self._continuous_fixed = True

    def run(self, deadline: float, on_improvement: Callable[[float], None] | None = None,
            stop: Callable[[], bool] | None = None, on_step: Callable[[], None] | None = None,
            incoming: Callable[[float], np.ndarray | None] | None = None) -> np.ndarray:
        """Search until `deadline` (time.time()) or until `stop()` says so (a cancelled clearing); returns the
        best point found (the incumbent at worst). `on_step()` is called after every sub-MILP;
        `incoming(objective)` before each: a point found elsewhere cheaper than `objective` (None: none),
        which the search then goes on from."""
        started = time.time()
        kinds = self.kinds()
        if not kinds or not len(self.ints):
            return self.x
        self.polish_continuous(on_improvement)
        turn = 0
        stale = 0
        while True:
            remaining = deadline - time.time()
            if remaining < SUB_MIN_S or (stop is not None and stop()):
                break
            if incoming is not None and self.adopt(incoming(self.objective)):
                stale = 0  # a new point to search around: the stall count starts again
                self.polish_continuous(on_improvement)
            kind = kinds[turn % len(kinds)]
            turn += 1
            free = self.neighbourhood(kind)
            if not free.any() or free.all():
                stale += 1
                if stale > 4 * len(kinds):
                    break
                continue
            limit = min(self.sub_max_s, remaining)
            t0 = time.time()
            solved, x, objective = self.solve_neighbourhood(free, limit)
            took = time.time() - t0
            self.stats.tried[kind] = self.stats.tried.get(kind, 0) + 1
            self.stats.log.append((kind, int(free.sum()), solved, took, objective))
            self.adapt(kind, solved, took, limit)
            if x is not None and objective < self.objective * (1 - IMPROVEMENT_REL) \
                    and violation(self.problem, x) <= 1e-6:
                self.x, self.objective = x, objective
                self.polish_continuous()
                self.stats.improved[kind] = self.stats.improved.get(kind, 0) + 1
                self.stats.history.append((time.time() - started, self.objective))
                stale = 0
                if on_improvement is not None:
                    on_improvement(self.objective)
            else:
                stale += 1
            self.stats.objective = self.objective
            self.stats.seconds = time.time() - started
            if on_step is not None:
                on_step()
            # every kind tried several times over without a gain: the incumbent is locally optimal
            if stale > 6 * len(kinds):
                break
        self.stats.objective = self.objective
        self.stats.seconds = time.time() - started
        return self.x


def lp_relaxation(problem: ArrayProblem, settings: dict[str, Any]) -> tuple[np.ndarray, float] | None:
    """The LP relaxation's values and objective (None if it did not solve)."""
    highs = highs_for(replace(problem, integrality=np.zeros_like(problem.integrality)), settings,
                      PASSED_OPTIONS + ("time_limit",), output_flag=False)
    claim_thread_scheduler(settings.get("threads"))
    highs.run()
    if not solved_optimally(highs):
        return None
    return np.array(highs.getSolution().col_value), float(highs.getInfo().objective_function_value)


class SharedPoint:
    """One point and its objective in shared memory: branch-and-bound's best incumbent, written by the
    clearing's process (`put`) and read by the search's (`cheaper_than`). Shared memory rather than a queue:
    a point is hundreds of kB, and a pipe nobody reads any more would block its writer."""

    def __init__(self, ctx: Any, num_cols: int):
        self._array = ctx.Array("d", num_cols + 1)  # [objective, x...], under the array's own lock
        with self._array.get_lock():
            self._values()[0] = math.inf

    def _values(self) -> np.ndarray:
        return np.frombuffer(self._array.get_obj(), dtype=np.float64)

    def put(self, x: np.ndarray, objective: float) -> None:
        with self._array.get_lock():
            values = self._values()
            if objective < values[0]:
                values[1:] = x
                values[0] = objective

    def cheaper_than(self, objective: float) -> np.ndarray | None:
        """The point held, if its objective is below `objective` (a copy), else None."""
        with self._array.get_lock():
            values = self._values()
            return values[1:].copy() if values[0] < objective else None


def _search_process(problem: ArrayProblem, incumbent: np.ndarray, lp_x: np.ndarray | None, tags: ColumnTags | None,
                    settings: dict[str, Any], deadline: float, out: Any, stop: Any, knobs: SearchKnobs,
                    shared: SharedPoint) -> None:
    """The body of `ConcurrentSearch`'s process: search until the deadline, a stall or `stop`, sending
    ("improved", objective, x) at every improvement, ("stats", stats) after every sub-MILP and ("done",
    stats) at the end; going on from branch-and-bound's incumbent (`shared`) whenever it is the cheaper."""
    search = NeighbourhoodSearch(problem, incumbent, lp_x, tags, settings, knobs=knobs)
    search.run(deadline, lambda objective: out.put(("improved", objective, search.x)), stop=stop.is_set,
               on_step=lambda: out.put(("stats", search.stats)), incoming=shared.cheaper_than)
    out.put(("done", search.stats))


class ConcurrentSearch:
    """The neighbourhood search in a process of its own, beside a branch-and-bound in this one.

    A thread here collects the improvements as they come (and tells `on_improvement`, for the progress
    line); `offer()` returns the best one not yet handed to the branch-and-bound (for HiGHS's
    user-solution callback); `share()` hands it branch-and-bound's incumbents (HiGHS's improving-solution
    callback), from which the search goes on when they are cheaper than its own; `finish()` stops the
    search and returns the best point and the search's statistics. The process is spawned (safe beside
    threads, as in the gRPC server) and never outlives `finish()`."""

    def __init__(self, problem: ArrayProblem, incumbent: np.ndarray, lp_x: np.ndarray | None,
                 tags: ColumnTags | None, settings: dict[str, Any], deadline: float,
                 on_improvement: Callable[[float], None] | None = None, knobs: SearchKnobs = SearchKnobs()):
        ctx = multiprocessing.get_context("spawn")
        self.x = incumbent.copy()
        self.objective = float(problem.col_cost @ incumbent)
        self.problem = problem
        self.on_improvement = on_improvement
        self.stats: LnsStats | None = None
        self.done = threading.Event()  # the search ended by itself (deadline or stall) and said so
        self._offered = self.objective
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._queue = ctx.Queue()
        self._stop = ctx.Event()
        self._shared = SharedPoint(ctx, problem.num_cols)
        self._process = ctx.Process(target=_search_process, name="dkw-neighbourhood-search",
                                    args=(problem, incumbent, lp_x, tags, settings, deadline, self._queue,
                                          self._stop, knobs, self._shared))
        self._process.start()
        self._collector = threading.Thread(target=self._collect, name="dkw-search-collector", daemon=True)
        self._collector.start()

    def _collect(self) -> None:
        while not self._closed.is_set():
            try:
                message = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            except (EOFError, OSError, ValueError):  # the process was terminated mid-message
                return
            if message[0] in ("stats", "done"):
                self.stats = message[1]
                if message[0] == "done":
                    self.done.set()
                continue
            _, objective, x = message
            if objective < self.objective and violation(self.problem, x) <= 1e-6:
                with self._lock:
                    self.x, self.objective = x, objective
                if self.on_improvement is not None:
                    self.on_improvement(objective)

    def share(self, x: np.ndarray, objective: float) -> None:
        """Branch-and-bound found `x` (costing `objective`): the search goes on from it if it is the cheaper."""
        self._shared.put(x, objective)

    def offer(self) -> np.ndarray | None:
        """The best point found, if it is better than the last one offered (else None)."""
        with self._lock:
            if self.objective < self._offered:
                self._offered = self.objective
                return self.x
        return None

    def finish(self, grace: float = 0.5) -> tuple[np.ndarray, float, LnsStats | None]:
        """Stop the search and return (best point, its objective, the search's statistics as last reported).
        Improvements are sent as they are found, so nothing is lost by not waiting for the sub-MILP under
        way: after `grace` seconds for messages in flight, the process is terminated."""
        self._stop.set()
        self.done.wait(grace)
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._closed.set()
        self._collector.join()
        self._queue.close()
        with self._lock:
            return self.x, self.objective, self.stats
