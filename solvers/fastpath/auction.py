"""The fast path of one auction, start to end: prepare → split → solve the components → stitch.

`solve_fast` is what `dkw.clearing.engine.solve` calls; each step is a module of this package:
`prepare.prepared_model` → `split.components_of` → `solve_components` (the big components through
`pool.ComponentPool`, each by `component.solve_component`) → `split.stitch`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from dkw.clearing.formulation import Formulation
from dkw.solvers.api import Progress, ProgressCallback, SolveCancelled, SolveOptions, SolveOutcome, relative_gap
from dkw.solvers.arrays import ArrayProblem
from dkw.solvers.fastpath.component import solve_component
from dkw.solvers.fastpath.floor import Floor, FloorRelaxation, component_floors, floor_start
from dkw.solvers.fastpath.pool import ComponentPool, worker_count
from dkw.solvers.fastpath.prepare import prepared_model
from dkw.solvers.fastpath.split import components_of, stitch
from dkw.solvers.fastpath.starts import carried_start, cheaper_feasible
from dkw.solvers.highs import ComponentSolution, MipEvents
from dkw.solvers.tuning import FastPathTuning

log = logging.getLogger("dkw.solvers.fastpath")


def solve_fast(form: Formulation, options: SolveOptions, progress: ProgressCallback | None = None,
               cancel: threading.Event | None = None, started: float | None = None,
               earlier: tuple[Formulation, np.ndarray] | None = None,
               start_hint: np.ndarray | None = None) -> SolveOutcome:
    """Prepare `form`'s arrays and solve them by components. `earlier`: an earlier solve's formulation and
    point (a re-solve for the 1 kW minimum), carried into `form`'s columns (`starts.carried_start`), or
    `start_hint`, a point of `form`'s columns (an incumbent a draining replica handed back): the MIP start
    where it is feasible and cheaper than the merit-order greedy's (`outcome.start_hint_used` says so)."""
    started = time.perf_counter() if started is None else started
    setup_started = time.perf_counter()
    hint = start_hint
    if earlier is not None and options.warm_start:
        hint = carried_start(earlier[0], earlier[1], form)
    model = prepared_model(form, options, hint)
    setup_seconds = time.perf_counter() - setup_started  # the split is the solve's, as before the pipeline
    subs = components_of(model)
    if progress:
        progress(Progress("solving", time.perf_counter() - started, message=f"{len(subs)} component(s)"))
    options = options.less_time(setup_seconds)
    floors, floor_s = None, None
    if subs and options.tuning.floor_wanted(len(subs[0].cols), options.time_limit_s):  # subs: largest first
        floor_started = time.perf_counter()
        deadline = None if options.time_limit_s is None else time.time() + options.time_limit_s
        relaxation = FloorRelaxation(model, options.highs_settings())
        floor = relaxation.solve(deadline)
        floor_s = relaxation.seconds if floor is not None else None  # what this machine takes: the estimates'
        final = floor is not None and deadline is not None and \
            options.tuning.floor_final(len(subs[0].cols), deadline - time.time(), floor_s)
        if not final:  # its bound comes from the relaxation: no need to hold the floor's LP through the start
            relaxation.release()
        if floor is not None and options.warm_start:
            start_from_floor(subs, floor_start(model, floor, deadline))
        if final:
            floor = tightened_floor(relaxation, len(subs[0].cols), deadline, options.tuning) or floor
            relaxation.release()
        floors = component_floors(subs, None if floor is None else floor.costs)
        options = options.less_time(time.perf_counter() - floor_started)
    outcome = solve_components(subs, model.num_cols, options, progress, cancel, started, floors=floors,
                               floor_s=floor_s)
    outcome.setup_seconds = setup_seconds
    outcome.start_hint_used = start_hint is not None and model.start is start_hint
    return outcome


def tightened_floor(relaxation: FloorRelaxation, num_cols: int, deadline: float, tuning: FastPathTuning) -> Floor | None:
    """The floor with the start-up costs (`FloorRelaxation.with_start_ups`) where it is the bound the clearing
    will end with (the largest component's LP relaxation not expected in the time left) and the re-solve can
    fit in its share of that time; else None."""
    left = deadline - time.time()
    if not tuning.floor_final(num_cols, left, relaxation.seconds):
        return None
    budget = tuning.floor_tightening_share * left
    if budget < tuning.floor_tightening_factor * relaxation.seconds:
        log.info("floor not tightened: %.1f s of its share of the time left, %.1f s expected", budget,
                 tuning.floor_tightening_factor * relaxation.seconds)
        return None
    return relaxation.with_start_ups(time.time() + budget)


def start_from_floor(subs: list[ArrayProblem], candidate: np.ndarray | None) -> None:
    """Each component's MIP start becomes the floor's rounding where that is feasible there and cheaper (at
    200,000 bids and short limits the component's LP relaxation never ends, so there is no other rounding:
    without it the start is the greedy's)."""
    if candidate is None:
        return
    for sub in subs:
        sub.start = cheaper_feasible(sub, sub.start, candidate[sub.cols])


class AuctionProgress:
    """The whole auction's incumbent and bound from its components': per component the best known (its start,
    else unknown) and its best bound (its floor, `floor.component_floors`, until a better one is known)."""

    def __init__(self, subs: list[ArrayProblem], progress: ProgressCallback | None, started: float,
                 floors: list[float] | None = None):
        self.progress = progress
        self.started = started
        self.incumbents = [float(s.col_cost @ s.start) if s.start is not None else None for s in subs]
        self.bounds = list(floors) if floors is not None else [0.0] * len(subs)
        self.done = 0

    def counter(self) -> str:
        return f"components {self.done}/{len(self.bounds)}"

    def heard(self, pos: int, incumbent: float | None, bound: float | None) -> None:
        """Component `pos` found a point costing `incumbent` or proved `bound` (either may be None)."""
        if incumbent is not None:
            old = self.incumbents[pos]
            self.incumbents[pos] = incumbent if old is None else min(old, incumbent)
        if bound is not None:
            self.bounds[pos] = max(self.bounds[pos], bound)
        self.report()

    def finished(self, pos: int, res: ComponentSolution) -> None:
        if res.objective is not None:
            self.incumbents[pos] = res.objective
        if res.bound is not None:
            self.bounds[pos] = max(self.bounds[pos], res.bound)
        self.done += 1
        self.report()

    def report(self) -> None:
        if self.progress is None:
            return
        incumbent = None if any(v is None for v in self.incumbents) else float(sum(self.incumbents))
        bound = float(sum(self.bounds))
        if incumbent is not None:
            bound = min(bound, incumbent)
        self.progress(Progress("solving", time.perf_counter() - self.started, incumbent, bound,
                               relative_gap(incumbent, bound), self.counter()))

    def listener(self, pos: int) -> Callable[[float | None, float | None], None] | None:
        """Component `pos`'s (objective, bound) callback; None without a progress callback."""
        return None if self.progress is None else lambda objective, bound: self.heard(pos, objective, bound)

    def events(self, pos: int, cancel: threading.Event | None) -> MipEvents:
        """HiGHS's callback for component `pos`: its MIP progress folded into the auction's, and the cancel."""
        relay = None if self.progress is None else lambda p: self.heard(pos, p.incumbent, p.bound)
        return MipEvents(relay, cancel, self.started, self.counter)


def solve_components(subs: list[ArrayProblem], num_cols: int, options: SolveOptions,
                     progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
                     started: float | None = None, workers: int | None = None,
                     floors: list[float] | None = None, floor_s: float | None = None) -> SolveOutcome:
    """Solve every component (big ones in parallel processes, `pool`), then stitch them (`split.stitch`).
    `floors`: a proven bound per component known beforehand (`floor.component_floors`), kept where the
    component's own solve ends with a lower one or none (stopped before its LP relaxation). `floor_s`: how
    long the floor's LP took, from which the largest component (solved here) expects its relaxation's time
    (`FastPathTuning.expected_relaxation_s`)."""
    started = time.perf_counter() if started is None else started
    deadline = time.time() + options.time_limit_s if options.time_limit_s is not None else None
    workers = worker_count(workers)
    tracker = AuctionProgress(subs, progress, started, floors)
    results: dict[int, ComponentSolution] = {}

    def record(pos: int, res: ComponentSolution) -> None:
        if floors is not None and (res.bound is None or res.bound < floors[pos]):
            res.bound = floors[pos]
        results[pos] = res
        tracker.finished(pos, res)

    pool = ComponentPool(subs, options, deadline, workers)
    try:
        # smallest first: the many small components are done in moments, so the counter and the whole
        # auction's figures move from the start, and the big one's progress is reported on top of them
        for pos in reversed(range(len(subs))):
            if pos in pool.pooled:
                continue
            if cancel is not None and cancel.is_set():
                raise SolveCancelled("cancelled while solving")
            record(pos, solve_component(subs[pos], options, on_event=tracker.events(pos, cancel), deadline=deadline,
                                        on_incumbent=tracker.listener(pos),
                                        spare_core=pool.executor is None and workers >= 2,
                                        floor_s=floor_s if pos == 0 else None))
        pool.collect(record, cancel)
    finally:
        pool.close(cancel)
    return stitch(subs, results, num_cols, cancel)
