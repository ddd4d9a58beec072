"""One component's solve as a list of phases, each with its share of the time left (`FastPathTuning`).

With a MIP start wanted (`SolveOptions.warm_start`) and integers to decide:

1. LP relaxation and roundings (`starts.lp_rounding_starts`): the bound, and start candidates; what they take
   (skipped where the component has a start and the relaxation is expected to take more than the time left,
   twice over by the estimate by columns, once by the floor's own time: `FastPathTuning.relaxation_hopeless`);
2. the start polished block by block (`polish`): polish_share of the time left, at most polish_max_s (without
   the relaxation, the component's own start, within polish_share_without_relaxation);
3. the neighbourhood search (`search`) beside branch-and-bound, from here to the end, when a core is spare
   (the one big component of a national auction, solved in the main process; at mid-size, a big component
   without linked bids);
4. Gomory cut rounds for the bound (`cuts`), handed to HiGHS with the MIP: cut_share of the time left (at
   most cut_max_s);
5. the neighbourhood search before branch-and-bound when no core is spare: lns_share (at most lns_max_s);

then, always, 6. branch-and-bound to the requested gap from the best start, and the LP with the integers
fixed (`dkw.solvers.highs.solve_mip`). Each phase appends (what, seconds) to the component's report
(`dkw.solvers.api.ComponentReport`), and on big components logs a line (logger dkw.solvers.fastpath).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dkw.solvers.api import ComponentReport, CutsReport, SearchReport, SolveOptions, SolveStatus
from dkw.solvers.arrays import ArrayProblem, switch_off_idle
from dkw.solvers.fastpath.cuts import Cuts, gomory_rounds
from dkw.solvers.fastpath.polish import polish_by_splitting
from dkw.solvers.fastpath.search import ConcurrentSearch, NeighbourhoodSearch, SearchKnobs
from dkw.solvers.fastpath.starts import lp_rounding_starts
from dkw.solvers.highs import (
    ComponentSolution,
    LpBasis,
    MipEvents,
    refine_point,
    release_freed_memory,
    solve_mip,
    start_kept,
)
from dkw.solvers.tuning import FastPathTuning

log = logging.getLogger("dkw.solvers.fastpath")

#: (objective, bound) of a component as it is found: every start, improvement and bound
Listener = Callable[[float | None, float | None], None]


def solve_component(sub: ArrayProblem, options: SolveOptions, *, refine: bool = True,
                    on_event: MipEvents | None = None, deadline: float | None = None,
                    on_incumbent: Listener | None = None, spare_core: bool = False,
                    floor_s: float | None = None) -> ComponentSolution:
    """Solve one component to the requested gap from the best start found (the phases above), then (if
    `refine`) the LP with its integers fixed. `on_incumbent(objective, bound)` hears of every start,
    improvement and bound found; `spare_core`: a core is free for the search beside branch-and-bound;
    `floor_s`: how long the floor's LP took, where one was solved (the relaxation's expected time)."""
    run = ComponentRun.begin(sub, options, deadline, on_incumbent, spare_core, floor_s)
    if options.warm_start and sub.num_int:
        lp_relaxation_and_roundings(run)
        polish_start(run)
        start_search_beside(run)
        try:
            cut_rounds(run)
        except BaseException:
            if run.concurrent is not None:
                run.concurrent.finish()
            raise
        search_before(run, on_event)
    solved = branch_and_bound(run, on_event, refine)
    return run.finished(solved)


@dataclass
class ComponentRun:
    """What the phases of one component's solve hand on to each other."""

    sub: ArrayProblem
    options: SolveOptions
    deadline: float | None
    settings: dict[str, Any]
    on_incumbent: Listener | None
    spare_core: bool
    report: ComponentReport
    phase_started: float = field(default_factory=time.time)
    lp_x: np.ndarray | None = None
    lp_bound: float | None = None
    lp_basis: LpBasis | None = None
    lp_seconds: float = 0.0
    candidates: list[np.ndarray] = field(default_factory=list)  # start candidates from the LP roundings
    relaxation_skipped: bool = False
    floor_s: float | None = None  # how long the floor's LP took (FastPathTuning.expected_relaxation_s)
    cuts: Cuts | None = None
    concurrent: ConcurrentSearch | None = None

    @classmethod
    def begin(cls, sub: ArrayProblem, options: SolveOptions, deadline: float | None, on_incumbent: Listener | None,
              spare_core: bool, floor_s: float | None = None) -> ComponentRun:
        settings = options.highs_settings()
        if deadline is None and "time_limit" in settings:
            deadline = time.time() + settings["time_limit"]
        report = ComponentReport(len(sub.cols), len(sub.rows), sub.num_int)
        return cls(sub, options, deadline, settings, on_incumbent, spare_core, report, floor_s=floor_s)

    @property
    def tuning(self) -> FastPathTuning:
        return self.options.tuning

    @property
    def big(self) -> bool:
        return len(self.sub.cols) >= self.tuning.parallel_min_cols

    @property
    def parallel(self) -> bool:
        """A second core for this component: the search beside branch-and-bound, two roundings at once."""
        return self.spare_core and self.options.threads != 1

    def until(self, share: float, max_s: float) -> float:
        """The end (time.time()) of a phase that may take `share` of the time left, at most `max_s`."""
        budget = share * (self.deadline - time.time()) if self.deadline is not None else max_s
        return time.time() + min(max_s, max(budget, 0.0))

    def start_cost(self) -> float | None:
        return None if self.sub.start is None else float(self.sub.col_cost @ self.sub.start)

    def improved(self) -> Callable[[float], None] | None:
        return None if self.on_incumbent is None else lambda objective: self.on_incumbent(objective, self.lp_bound)

    def phase_done(self, name: str, what: str) -> None:
        """Record the phase just ended; on big components also a log line: where a clearing's time goes."""
        seconds = time.time() - self.phase_started
        self.report.phases.append((name, seconds))
        if self.big:
            log.info("component of %d columns, %d integers: %s in %.1f s", len(self.sub.cols), self.sub.num_int,
                     what, seconds)
        self.phase_started = time.time()

    def relaxation_hopeless(self) -> bool:
        """The LP relaxation would not end in the time left (by the tuning's estimate, with its margin), and the
        component has a start to polish instead (at 80,000 bids and 30 s, the floor's rounding)."""
        return self.deadline is not None and self.sub.start is not None and \
            self.tuning.relaxation_hopeless(len(self.sub.cols), self.deadline - time.time(), self.floor_s)

    def search_wanted(self) -> bool:
        """The search pays on this component: a start, integers within the tuning's range, time enough."""
        return self.sub.start is not None and self.tuning.searches(self.sub.num_int, self.beside_unlinked()) and \
            (self.deadline is None or self.deadline - time.time() >= self.tuning.lns_min_left_s)

    def beside_unlinked(self) -> bool:
        """The search could run beside branch-and-bound on a big component with no linked bid: at mid-size
        it then finds the optimum sooner than branch-and-bound alone (`lns_beside_unlinked_min_integers`)."""
        return self.parallel and self.big and self.sub.tags is not None and not self.sub.tags.any_linked()

    def search_knobs(self) -> SearchKnobs:
        """How the search works here: on components where it runs by size (national auctions), smaller
        sub-MILPs, their own time limit and idle binaries switched off; elsewhere as at mid-size."""
        if not self.tuning.search_at_scale(self.sub.num_int):
            return SearchKnobs()
        polish = self.tuning.lns_polish_continuous and self.sub.num_cols <= self.tuning.lns_polish_max_columns
        return SearchKnobs(self.tuning.lns_continuous_hops, self.tuning.lns_sub_max_s, self.tuning.trim_incumbents,
                           polish)

    def adopts_incumbents(self) -> bool:
        """The search beside branch-and-bound goes on from branch-and-bound's cheaper incumbents."""
        return self.tuning.lns_adopts_incumbents and self.tuning.search_at_scale(self.sub.num_int)

    def trims_incumbents(self) -> bool:
        """Branch-and-bound's incumbents go back to it with their idle binaries switched off."""
        return self.tuning.trim_incumbents and self.tuning.search_at_scale(self.sub.num_int)

    def finished(self, solved: ComponentSolution) -> ComponentSolution:
        # lp_bound (the LP relaxation's, raised by the cut rounds) is proven too; branch-and-bound stopped by
        # the limit may not have got back up to it (or, on the largest auctions, not even through its root)
        if self.lp_bound is not None and solved.status != SolveStatus.OPTIMAL:
            solved.bound = self.lp_bound if solved.bound is None else max(solved.bound, self.lp_bound)
        self.report.status = solved.status
        self.report.stopped_by = solved.stopped_by
        solved.report = self.report
        return solved


def lp_relaxation_and_roundings(run: ComponentRun) -> None:
    """Phase 1: the LP relaxation (the bound, told at once) and its roundings (start candidates); not tried
    where it would not end (`ComponentRun.relaxation_hopeless`)."""
    sub = run.sub
    if run.relaxation_hopeless():
        run.relaxation_skipped = True
        expected = run.tuning.expected_relaxation_s(len(sub.cols), run.floor_s)
        run.phase_done("LP relaxation skipped", f"LP relaxation skipped ({expected:.0f} s expected, "
                                                f"{run.deadline - time.time():.0f} s left)")
        return
    if run.deadline is not None:
        run.settings["time_limit"] = max(0.01, run.deadline - time.time())
    # two copies of the biggest components' LP at once would raise the peak that no memory ceiling watches
    workers = (2 if run.parallel else 1) if sub.num_int <= run.tuning.lns_max_integers else 1
    run.candidates, lp = lp_rounding_starts(sub, run.settings, run.tuning, workers=workers)
    if run.big:
        release_freed_memory()
    run.lp_seconds = time.time() - run.phase_started
    run.phase_done("LP relaxation and roundings", "LP relaxation and roundings")
    if lp is not None:
        run.lp_x, run.lp_bound, run.lp_basis = lp
        if run.on_incumbent is not None:  # the bound now, not after the polishing
            run.on_incumbent(run.start_cost(), run.lp_bound)


def polish_start(run: ComponentRun) -> None:
    """Phase 2: the rounding with the block-tying columns rounded up, polished block by block; then the
    cheapest of the candidates and the component's start becomes its start."""
    sub, candidates = run.sub, run.candidates
    if sub.block_tying is not None and sub.block_tying.any():
        workers = 2 if run.parallel else 1
        if run.relaxation_skipped:  # no roundings: the component's own start, with nothing else left to do
            until = run.until(run.tuning.polish_share_without_relaxation, math.inf)
            fits = until - time.time() >= run.tuning.polish_s_per_integer * sub.num_int
            polished = polish_by_splitting(sub, sub.start, sub.block_tying, run.settings, until, run.tuning,
                                           workers=workers) if fits else None
        else:
            until = run.until(run.tuning.polish_share, run.tuning.polish_max_s)
            # only the candidate with the block-tying columns rounded up (the last): the full rounding polishes
            # worse in about as long (50,000 bids: 2,859.7 against 2,847.5 million yen, 19.8 s and 21.8 s)
            polished = polish_by_splitting(sub, candidates[-1], sub.block_tying, run.settings, until, run.tuning,
                                           workers=workers) if len(candidates) > 1 else None
        candidates = [c for c in candidates[:1] + [polished] if c is not None]
        if run.big:
            release_freed_memory()
        run.phase_done("start polished", "start polished block by block")
    if run.trims_incumbents():
        candidates = [switch_off_idle(sub, c)[0] for c in candidates]
    for candidate in candidates:
        if sub.start is None or sub.col_cost @ candidate < sub.col_cost @ sub.start:
            sub.start = candidate
    if sub.start is not None and run.on_incumbent is not None:
        run.on_incumbent(run.start_cost(), run.lp_bound)


def start_search_beside(run: ComponentRun) -> None:
    """Phase 3: with a spare core, the search in a process of its own from now until the end, beside the
    cuts and the branch-and-bound of this process."""
    if run.search_wanted() and run.parallel and run.sub.num_int >= run.tuning.lns_beside_min_integers:
        run.concurrent = ConcurrentSearch(run.sub, run.sub.start, run.lp_x, run.sub.tags, run.settings,
                                          run.deadline if run.deadline is not None else math.inf, run.improved(),
                                          knobs=run.search_knobs())


def cut_rounds(run: ComponentRun) -> None:
    """Phase 4: Gomory cut rounds for the bound, on components with enough integers."""
    sub, tuning = run.sub, run.tuning
    if run.relaxation_skipped:  # the rounds start from the relaxation's basis; without it they would solve it
        return
    share = tuning.cut_share_for(sub.num_int)
    budget = share * (run.deadline - time.time()) if run.deadline is not None else tuning.cut_max_s
    # a round re-solves an LP bigger than the relaxation (a slack column per row): when the relaxation and
    # its two roundings alone took longer than the budget, no round would finish
    if not (tuning.cut_rounds and sub.num_int >= tuning.cut_min_integers and run.lp_seconds < min(tuning.cut_max_s,
                                                                                                   budget)):
        return
    cuts = gomory_rounds(sub, tuning.cut_rounds, tuning.cut_max_per_round, run.until(share, tuning.cut_max_s),
                         threads=run.options.threads, basis=run.lp_basis)
    run.cuts = cuts
    if cuts.bounds:
        run.lp_bound = max(cuts.bounds + ([run.lp_bound] if run.lp_bound is not None else []))
    run.report.cuts = CutsReport(len(cuts), cuts.seconds, cuts.bounds[0] if cuts.bounds else None,
                                 run.lp_bound if cuts.bounds else None)
    if sub.start is not None and run.on_incumbent is not None:
        run.on_incumbent(run.start_cost(), run.lp_bound)
    run.phase_done("cuts", run.report.cuts.text())


def search_before(run: ComponentRun, on_event: MipEvents | None) -> None:
    """Phase 5: without a spare core, the search before branch-and-bound, for a share of the time left."""
    if not run.search_wanted() or run.concurrent is not None:
        return
    search = NeighbourhoodSearch(run.sub, run.sub.start, run.lp_x, run.sub.tags, run.settings,
                                 knobs=run.search_knobs())
    cancel = on_event.cancel if on_event is not None else None
    run.sub.start = search.run(run.until(run.tuning.lns_share, run.tuning.lns_max_s), run.improved(),
                               stop=None if cancel is None else cancel.is_set)
    run.report.search = SearchReport(search.stats.summary())
    run.phase_done("search", run.report.search.text())


def branch_and_bound(run: ComponentRun, on_event: MipEvents | None, refine: bool) -> ComponentSolution:
    """Phase 6: HiGHS's branch-and-bound from the best start (with the cuts), beside the search if it runs;
    then the LP with the integers fixed. Where the relaxation was skipped and no search runs, the start is
    kept and priced without it (`highs.start_kept`)."""
    # where the LP relaxation was skipped for not ending in the time left, so would branch-and-bound's root
    kept = start_kept(run.sub, "the LP relaxation would not end in the time left", refine=refine) \
        if run.relaxation_skipped and run.concurrent is None else None
    if kept is not None:
        solved, what = kept, "start kept without branch-and-bound"
    else:
        solved = solve_mip(run.sub, run.options, deadline=run.deadline, on_event=on_event, refine=refine,
                           cuts=run.cuts, trim_incumbents=run.trims_incumbents()) if run.concurrent is None \
            else _beside_the_search(run, on_event, refine)
        what = f"branch-and-bound ({solved.nodes} nodes, {solved.status})"
    run.phase_done("branch-and-bound", f"{what} and pricing ({solved.pricing_seconds:.1f} s)")
    return solved


def _beside_the_search(run: ComponentRun, on_event: MipEvents | None, refine: bool) -> ComponentSolution:
    """Branch-and-bound while the search runs in its own process: its improvements are handed to HiGHS as
    user solutions (it asks before each dive); at the end the better of the two points is the component's
    (refined here, since it may not be the one HiGHS holds). The report keeps each side's best, so a reader
    sees which found the point (HiGHS's heuristics start from the search's points: at 5,000 bids they often
    found the final incumbent; docs/performance.md, seventh round)."""
    search = run.concurrent
    try:
        solved = solve_mip(run.sub, run.options, deadline=run.deadline, on_event=on_event, refine=False,
                           cuts=run.cuts, user_solution=search.offer,
                           on_improving=search.share if run.adopts_incumbents() else None,
                           trim_incumbents=run.trims_incumbents())
    finally:
        x, objective, stats = search.finish()
    run.report.search = SearchReport(stats.summary() if stats is not None else "", beside=True, best=objective,
                                     branch_and_bound_best=solved.objective)
    if solved.x is None or objective < solved.objective:
        solved.x, solved.objective = x, objective
    if refine and solved.x is not None:
        refine_point(run.sub, solved)
    return solved
