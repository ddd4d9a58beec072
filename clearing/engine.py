"""Clearing an auction end to end (SPEC §3–§4): prepare → index → solve → assemble.

`clear` is what the CLI, the server and replay all call. The market rules resolve the caps and the bids
left out once (`dkw.clearing.rules.prepare_clearing`); the auction is grouped by rows (`dkw.clearing.index`) and
described as the MILP (`dkw.clearing.formulation`); a back-end behind the solver boundary (`dkw.solvers.api`)
solves it; the values become the result (`assemble_result`). The one loop around index and solve is
SPEC §3's 1 kW minimum: a bid that came out below 1 kW gets an acceptance binary and the model is solved
again (rare: the data are whole kW).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from dkw.clearing.exact import clearing_lp, perturbation_ceiling_yen, real_objective_bound, result_prices
from dkw.clearing.explain import ExplainOptions, explain_clearing, explanations_document
from dkw.clearing.figures import ZERO_KW, area_figures, clean_kw, net_import
from dkw.clearing.formulation import Formulation, formulate
from dkw.clearing.index import AuctionIndex, below_one_kw, build_index
from dkw.clearing.left_out import LeftOutBid, price_cap_yen_per_kw_h
from dkw.clearing.model import Auction, PriceCapMode
from dkw.clearing.result import (
    AreaSummary,
    Award,
    ClearingResult,
    Flow,
    MarginalPrice,
    Shortfall,
    SolverInfo,
)
from dkw.clearing.rules import Policy, prepare_clearing
from dkw.solvers.api import Progress, ProgressCallback, SolveOptions, SolveOutcome, relative_gap

log = logging.getLogger("dkw.clearing")


def clear(auction: Auction, options: SolveOptions | None = None, *,
          progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
          ineligible: list[LeftOutBid] | None = None, also_left_out: Sequence[LeftOutBid] = (),
          policy: Policy | None = None, explain_options: ExplainOptions | bool | None = None,
          start: dict | None = None) -> ClearingResult:
    """Clear `auction` to proven optimality (or the time limit) under the market rules of `policy`
    (default: the shipped one, SPEC §5): its price caps fill in where the auction lists none, and the
    bids it finds ineligible are left out, unless `ineligible` says which to leave out instead;
    `also_left_out` (a replay scenario's) are left out on top. Every bid left out is reported
    (`result.left_out`); monitoring flags and the caps used go to `result.extra`, and so do the explanations
    of every bid not accepted in full (dkw.clearing.explain; `explain_options` False: none). `start`: an
    incumbent handed back by a draining replica (dkw.clearing.handback), the first solve's start hint."""
    options = options or SolveOptions()
    started = time.perf_counter()  # the time limit counts from here (options_within_limit)
    auction, left_out, rules_extra = prepare_clearing(auction, policy, ineligible, also_left_out)
    form, outcome, build_seconds, solves = solve_until_min_kw_holds(auction, left_out, options, progress, cancel,
                                                                    started, start)
    from dkw.solvers.highs import highs_version

    info = SolverInfo(
        name="HiGHS", version=highs_version(), termination=outcome.message, mip_gap=outcome.gap,
        objective_bound=outcome.bound, seconds=outcome.seconds, nodes=outcome.nodes,
        build_seconds=build_seconds, pricing_seconds=outcome.pricing_seconds, options=options.describe(),
        solves=solves,
    )
    pricing_started = time.perf_counter()
    log.info("solve returned at %.1f s of the clearing", pricing_started - started)
    q, f, s, priced = solution_values(form, outcome)
    result = assemble_result(form.ix, outcome.status.value, q, f, s, info)
    # the one post-solve LP (dkw.clearing.exact): the exact prices and the explanations both read it
    lp = clearing_lp(form.ix, result) if outcome.x is not None else None
    if lp is not None and priced:
        result.prices = [MarginalPrice(*key, price) for key, price in result_prices(form.ix, lp).items()]
    info.pricing_seconds += time.perf_counter() - pricing_started  # the exact prices (dkw.clearing.exact)
    info.objective_bound = real_objective_bound(form.ix, outcome.bound, result.objective_yen)
    result.extra.update(rules_extra)
    if start is not None:  # docs/replicas.md: Graceful drain
        result.extra["handed_back_start"] = {"objective_yen": start.get("objective_yen"), "used": outcome.start_hint_used}
    if explain_options is not False:  # why each bid was not accepted in full
        result.extra["explanations"] = explanations_document(explain_clearing(
            form, result, lp, explain_options if isinstance(explain_options, ExplainOptions) else ExplainOptions()))
    info.total_seconds = time.perf_counter() - started
    log.info("prices, explanations and the result in %.1f s (%d bids; reserved %.1f s)",
             info.total_seconds - (pricing_started - started), len(form.ix.bids), after_solve_reserve_s(len(form.ix.bids)))
    if progress:  # the result's own figures (as the server's DONE event: dkw.server.service.final_figures)
        progress(Progress("done", info.total_seconds, result.objective_yen, info.objective_bound, info.mip_gap))
    return result


def progress_in_result_terms(progress: ProgressCallback | None, ix: AuctionIndex) -> ProgressCallback | None:
    """`progress` fed with bounds in the result's terms (docs/result.md, `solver.objective_bound`): the
    solver reports its bound on the perturbed objective (tie-break and flow-preference terms), up to
    `perturbation_ceiling_yen` above a bound on the real one; the same ceiling is taken off here as
    `real_objective_bound` takes it off the final figure, so the line never promises more than the result.
    The incumbent stays the solver's (the perturbed cost of its point, never below that point's real cost),
    and the gap is recomputed from it and the restated bound: never smaller than the real gap."""
    if progress is None:
        return None
    ceiling = perturbation_ceiling_yen(ix)

    def relay(p: Progress) -> None:
        if p.bound is not None and math.isfinite(p.bound):
            bound = p.bound if p.incumbent is None else min(p.bound, p.incumbent)
            bound = round(bound - ceiling, 6)
            p = replace(p, bound=bound, gap=relative_gap(p.incumbent, bound))
        progress(p)

    return relay


def solve(form: Formulation, options: SolveOptions, progress: ProgressCallback | None,
          cancel: threading.Event | None, started: float,
          earlier: tuple[Formulation, np.ndarray] | None = None,
          start_hint: np.ndarray | None = None) -> SolveOutcome:
    """The back-end `options.method` names; imported here, so that only a solve loads Pyomo or highspy.
    `earlier`: an earlier solve's formulation and point, and `start_hint`: a point of `form`'s columns (a
    handed-back incumbent), either of which the fast path may start from (if feasible)."""
    if options.method == "straight":
        from dkw.solvers.straight import solve_straight

        return solve_straight(form, options, progress, cancel, started)
    from dkw.solvers.fastpath.auction import solve_fast

    return solve_fast(form, options, progress, cancel, started, earlier=earlier, start_hint=start_hint)


def solve_until_min_kw_holds(auction: Auction, left_out: list[LeftOutBid], options: SolveOptions,
                             progress: ProgressCallback | None, cancel: threading.Event | None,
                             started: float, start: dict | None = None) -> tuple[Formulation, SolveOutcome, float, int]:
    """Index, formulate and solve until no bid without an acceptance binary came out in (0, 1) kW (SPEC §3:
    an accepted bid delivers at least max(min_kw, 1) kW); such bids get a binary for the next solve.
    Returns the last formulation and outcome, the build seconds and the number of solves."""
    force_binary: set[str] = set()
    build_seconds = 0.0
    solves = 0
    previous: tuple[Formulation, SolveOutcome] | None = None
    hint_used = False  # the handed-back start was the first solve's MIP start
    while True:
        if progress:
            progress(Progress("building", time.perf_counter() - started))
        build_started = time.perf_counter()
        form = formulate(build_index(auction, left_out, force_binary))
        handed_back = None
        if previous is None and start is not None:  # a draining replica's incumbent (docs/replicas.md)
            from dkw.clearing.handback import start_from_incumbent

            handed_back = start_from_incumbent(form, start)
        build_seconds += time.perf_counter() - build_started
        outcome = solve(form, options_within_limit(options, started, len(form.ix.bids)),
                        progress_in_result_terms(progress, form.ix), cancel, started,
                        earlier=None if previous is None else (previous[0], previous[1].x), start_hint=handed_back)
        build_seconds += outcome.setup_seconds
        hint_used = hint_used or outcome.start_hint_used
        solves += 1
        if previous is not None:
            keep_earlier_bound(outcome, previous[1])
            keep_earlier_account(outcome, previous[1])
        if outcome.x is None:
            break
        below_1kw = below_one_kw(form.ix, outcome.x[:form.columns.num_bids])
        if not below_1kw:
            break
        force_binary |= below_1kw
        previous = (form, outcome)
    outcome.start_hint_used = hint_used
    return form, outcome, build_seconds, solves


def keep_earlier_bound(outcome: SolveOutcome, earlier: SolveOutcome) -> None:
    """A re-solve only adds binaries, so an earlier solve's proven bound still holds: keep the higher one
    (a re-solve left little time may prove none of its own)."""
    if earlier.bound is None or not math.isfinite(earlier.bound):
        return
    if outcome.bound is None or earlier.bound > outcome.bound:
        outcome.bound = earlier.bound if outcome.objective is None else min(earlier.bound, outcome.objective)
        outcome.gap = relative_gap(outcome.objective, outcome.bound)


def keep_earlier_account(outcome: SolveOutcome, earlier: SolveOutcome) -> None:
    """The re-solve's message and figures keep the earlier solve's: the result's `solver` otherwise
    describes only the last solve, which at a time limit may have had a second or two (its message without
    the cut rounds and the search that found most of the clearing, `seconds` near 0)."""
    outcome.message = f"{outcome.message}; re-solved after a bid came out below 1 kW, the solve before: " \
                      f"{earlier.message}"
    outcome.seconds += earlier.seconds
    outcome.nodes += earlier.nodes


#: What the steps after the solve's limit take (the search's grace, pricing the incumbent, exact prices,
#: explanations, the result): a fixed part and a part per bid in the clearing, measured on 2 cores with a
#: margin (seventeenth round, the component's pricing past its deadline and the steps in `clear` together:
#: 80,000 bids 4.2 s, 200,000 bids 10.2 s, about 6e-5 s per bid; 2e-4 before, from slower code and
#: machines; docs/performance.md); and the least share of the time limit the solve keeps whatever the
#: estimate says.
AFTER_SOLVE_S = 1.0
AFTER_SOLVE_S_PER_BID = 1e-4
MIN_SOLVE_SHARE = 0.5


def options_within_limit(options: SolveOptions, started: float, num_bids: int) -> SolveOptions:
    """The options for the next solve: the time limit covers the whole clearing (build, solve, exact prices,
    explanations; not reading the document or writing the result), so the solve gets what is left of it
    after the time spent so far and the estimated time of the steps after it (at least MIN_SOLVE_SHARE of
    the limit, and at least HiGHS's 0.01 s: a re-solve for the 1 kW minimum may run over)."""
    if options.time_limit_s is None:
        return options
    elapsed = time.perf_counter() - started
    left = options.time_limit_s - elapsed - after_solve_reserve_s(num_bids)
    handed = max(left, MIN_SOLVE_SHARE * options.time_limit_s - elapsed, 0.01)
    log.info("solve handed %.1f s from %.1f s of the clearing", handed, elapsed)
    return replace(options, time_limit_s=handed)


def after_solve_reserve_s(num_bids: int) -> float:
    """The estimated time of the steps after the solve for `num_bids` bids (AFTER_SOLVE_S_PER_BID)."""
    return AFTER_SOLVE_S + AFTER_SOLVE_S_PER_BID * num_bids


def solution_values(form: Formulation, outcome: SolveOutcome) -> tuple[dict, dict, dict, bool]:
    """The solution by entity: kW per bid position, per flow key position and per shortfall key (empty where
    the solve found nothing), and whether the point is exact (`SolveOutcome.priced`): only then are prices
    worked out (clearing/exact.py)."""
    x = outcome.x
    if x is None:
        return {}, {}, {}, False
    c = form.columns
    q = {i: float(x[i]) for i in range(c.num_bids)}
    f = {k: float(x[c.f_first + k]) for k in range(len(form.ix.flow_keys))}
    s = {key: float(x[col]) for key, col in c.s_col.items()}
    return q, f, s, outcome.priced


def assemble_result(ix: AuctionIndex, status: str, q: dict[int, float], f: dict[int, float],
                    s: dict[tuple, float], info: SolverInfo) -> ClearingResult:
    """Turn solver values into the result: awards with payments, flows, shortfalls, summaries; the prices
    come after, from the clearing's fixed LP (`clear`). All cost figures are recomputed from the cleaned
    values with the real prices."""
    auction = ix.auction
    hours = ix.hours
    resources = ix.resources
    pay_cap = auction.price_cap_mode is PriceCapMode.PAY_CAP

    awards: list[Award] = []
    awarded: dict[int, float] = {}
    procurement = payments = 0.0
    for i, bid in enumerate(ix.bids):
        kw = clean_kw(q.get(i, 0.0))
        if kw <= ZERO_KW:
            continue
        awarded[i] = kw
        paid_price = bid.price_yen_per_kw_h
        if pay_cap:
            cap = price_cap_yen_per_kw_h(auction, bid)
            if cap is not None:
                paid_price = min(paid_price, cap)
        payment = paid_price * hours * len(bid.blocks) * kw
        procurement += bid.price_yen_per_kw_h * hours * len(bid.blocks) * kw
        payments += payment
        awards.append(Award(bid.id, kw, round(payment, 6)))
    started = {ix.bids[i].resource for i in awarded if ix.bids[i].resource is not None}
    startup = sum(resources[r].startup_cost_yen for r in started)

    flows: list[Flow] = []
    for k, (li, direction, p, t) in enumerate(ix.flow_keys):
        kw = clean_kw(f.get(k, 0.0))
        if kw > ZERO_KW:
            flows.append(Flow(auction.lines[li].id, direction.value, p, t, kw))

    shortfalls: list[Shortfall] = []
    short_kw: dict[tuple[str, str, int], float] = {}
    for key in sorted(ix.requirement_kw):
        kw = clean_kw(s.get(key, 0.0))
        if kw > ZERO_KW:
            short_kw[key] = kw
            shortfalls.append(Shortfall(*key, kw))
    penalty = auction.shortfall_price_yen_per_kw_h * hours * sum(short_kw.values())

    net = net_import(auction, ((x.line, x.direction, x.product, x.block, x.kw) for x in flows))
    summary = [AreaSummary(**figures) for figures in
               area_figures(auction, ((ix.bids[i], kw) for i, kw in awarded.items()), net, short_kw)]

    return ClearingResult(
        auction_id=auction.auction_id, trading_date=auction.trading_date, status=status,
        objective_yen=round(procurement + startup + penalty, 6), procurement_cost_yen=round(procurement, 6),
        startup_cost_yen=startup, shortfall_penalty_yen=round(penalty, 6), payment_total_yen=round(payments, 6),
        awards=awards, flows=flows, shortfalls=shortfalls, prices=[], area_summary=summary,
        left_out=list(ix.left_out), solver=info,
        input_sha256=auction.input_sha256,
    )
