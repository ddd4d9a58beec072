"""The straight back-end: the Pyomo model of the formulation, compiled through Pyomo's LP writer, solved
whole by HiGHS (no decomposition, no reductions, no MIP start). The reference the fast path is held to."""

from __future__ import annotations

import threading
import time

from dkw.clearing.formulation import Formulation
from dkw.solvers.api import Progress, ProgressCallback, SolveCancelled, SolveOptions, SolveOutcome, relative_gap
from dkw.solvers.highs import MipEvents, solve_mip
from dkw.solvers.pyomo_model import compile_to_arrays


def solve_straight(form: Formulation, options: SolveOptions, progress: ProgressCallback | None = None,
                   cancel: threading.Event | None = None, started: float | None = None) -> SolveOutcome:
    started = time.perf_counter() if started is None else started
    problem, setup_seconds = compile_to_arrays(form)
    if cancel is not None and cancel.is_set():
        raise SolveCancelled("cancelled before solving")
    if progress:
        progress(Progress("solving", time.perf_counter() - started))
    events = MipEvents(progress, cancel, started) if progress is not None or cancel is not None else None
    def pricing() -> None:
        if progress:
            progress(Progress("pricing", time.perf_counter() - started))

    res = solve_mip(problem, options.less_time(setup_seconds), on_event=events, cancel=cancel, on_refine=pricing)
    bound = res.bound if res.bound is None or res.objective is None else min(res.bound, res.objective)
    return SolveOutcome(res.status, res.objective, bound, relative_gap(res.objective, bound), res.seconds, res.nodes,
                        res.x, res.priced, res.message, setup_seconds=setup_seconds, pricing_seconds=res.pricing_seconds)
