"""Clearing an auction end to end: index → MILP → HiGHS → result (SPEC §3–§4).

`clear` is what the CLI, the server and replay all call.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import asdict

from clearing.exact import real_objective_bound, result_prices
from clearing.explain import ExplainOptions, explain, explanations_document
from clearing.formulation import build_model
from clearing.index import ZERO_KW, AuctionIndex, RejectedBid, below_one_kw, build_index, price_cap_yen_per_kw_h
from clearing.model import Auction, PriceCapMode
from clearing.result import (
    AreaSummary,
    Award,
    ClearingResult,
    Flow,
    MarginalPrice,
    RejectedBidView,
    Shortfall,
    SolverInfo,
)
from clearing.rules import Policy, prepare_clearing
from solvers.highs import (
    Progress,
    ProgressCallback,
    PyomoHighsSolver,
    SolveOptions,
    SolveOutcome,
    highs_version,
)


def clean_kw(value: float) -> float:
    """Solver noise removed: snap to a whole kW within 1e-6, else keep 6 decimals."""
    nearest = round(value)
    if abs(value - nearest) < ZERO_KW:
        return float(nearest)
    return round(value, 6)


def clear(auction: Auction, options: SolveOptions | None = None, *,
          progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
          excluded: list[RejectedBid] | None = None, policy: Policy | None = None,
          explain_options: ExplainOptions | bool | None = None) -> ClearingResult:
    """Clear `auction` under the market rules of `policy` (default: the shipped one, SPEC §5): its price
    caps fill in where the auction lists none, and the bids it finds ineligible are left out unless
    `excluded` says which to leave out instead. Monitoring flags and the caps used go to `result.extra`,
    and so do the explanations of every bid not accepted in full (`explain_options` False: none)."""
    auction, excluded, rules_extra = prepare_clearing(auction, policy, excluded)
    result = _clear_auction(auction, options, progress=progress, cancel=cancel, excluded=excluded)
    result.extra.update(rules_extra)
    if explain_options is not False:  # why each bid was not accepted in full (clearing.explain)
        result.extra["explanations"] = explanations_document(
            explain(auction, result.to_document(), result.rejected_bids,
                    explain_options if isinstance(explain_options, ExplainOptions) else ExplainOptions()))
    return result


def _clear_auction(auction: Auction, options: SolveOptions | None = None, *,
                   progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
                   excluded: list[RejectedBid] | None = None) -> ClearingResult:
    """Clear `auction` to proven optimality (or the time limit). `excluded`: bids the market rules leave
    out (eligibility), reported in `rejected_bids` beside those above their price cap."""
    options = options or SolveOptions()
    started = time.perf_counter()
    if options.method == "fast":
        return _clear_fast(auction, options, progress, cancel, excluded, started)
    force_binary: set[str] = set()
    solves = 0
    while True:
        if progress:
            progress(Progress("building", time.perf_counter() - started))
        ix = build_index(auction, excluded, force_binary)
        model = build_model(ix)
        solver = PyomoHighsSolver(model, options, progress, cancel)
        build_seconds = time.perf_counter() - started
        if progress:
            progress(Progress("solving", time.perf_counter() - started))
        outcome = solver.solve()
        build_seconds += solver.transfer_seconds
        solves += 1
        if not outcome.has_solution:
            break
        if progress:
            progress(Progress("pricing", time.perf_counter() - started))
        pricing_started = time.perf_counter()
        mip_values = solver.values(model.q), solver.values(model.f), solver.values(model.s)
        polished = solver.fix_integers_and_resolve()
        q = solver.values(model.q) if polished else mip_values[0]
        tiny = below_one_kw(ix, q)
        if not tiny:
            break
        force_binary |= tiny

    if outcome.has_solution and polished:
        q, f, s = solver.values(model.q), solver.values(model.f), solver.values(model.s)
        duals = solver.duals(model.balance)
    elif outcome.has_solution:  # the pricing LP failed: the MIP's own values, no prices
        (q, f, s), duals = mip_values, {}
    else:
        q, f, s, duals = {}, {}, {}, {}
        pricing_started = time.perf_counter()
    pricing_seconds = time.perf_counter() - pricing_started
    return _finish(ix, outcome, q, f, s, duals, options, progress, started,
                   build_seconds=build_seconds, pricing_seconds=pricing_seconds, solves=solves)


def _clear_fast(auction: Auction, options: SolveOptions, progress: ProgressCallback | None,
                cancel: threading.Event | None, excluded: list[RejectedBid] | None, started: float) -> ClearingResult:
    """The fast path (arrays, components, highspy): same optimum, same result document."""
    from clearing.fastpath import solve_fast

    fast = solve_fast(auction, options, progress, cancel, excluded, started)
    return _finish(fast.ix, fast.outcome, fast.q, fast.f, fast.s, fast.duals, options, progress, started,
                   build_seconds=fast.build_seconds, pricing_seconds=fast.pricing_seconds, solves=fast.solves)


def _finish(ix: AuctionIndex, outcome: SolveOutcome, q: dict, f: dict, s: dict, duals: dict,
            options: SolveOptions, progress: ProgressCallback | None, started: float, *,
            build_seconds: float, pricing_seconds: float, solves: int) -> ClearingResult:
    """The result of either path, with the solver's figures and the options it ran with."""
    info = SolverInfo(
        name="HiGHS", version=highs_version(), termination=outcome.message, mip_gap=outcome.gap,
        objective_bound=outcome.bound, seconds=outcome.seconds, nodes=outcome.nodes,
        build_seconds=build_seconds, pricing_seconds=pricing_seconds,
        options={"time_limit_s": options.time_limit_s, "mip_rel_gap": options.mip_rel_gap,
                 "threads": options.threads, "method": options.method, **dict(options.highs_options)},
        solves=solves,
    )
    pricing_started = time.perf_counter()
    result = assemble_result(ix, outcome.status, q, f, s, duals, info)
    info.pricing_seconds += time.perf_counter() - pricing_started  # the exact prices (clearing.exact)
    info.objective_bound = real_objective_bound(ix, outcome.bound, result.objective_yen)
    info.total_seconds = time.perf_counter() - started
    if progress:
        progress(Progress("done", info.total_seconds, result.objective_yen, outcome.bound, outcome.gap))
    return result


def assemble_result(ix: AuctionIndex, status: str, q: dict[int, float], f: dict[int, float],
                    s: dict[tuple, float], duals: dict[tuple, float], info: SolverInfo) -> ClearingResult:
    """Turn solver values into the result: awards with payments, flows, shortfalls, prices, summaries.
    All cost figures are recomputed from the cleaned values with the real prices."""
    auction = ix.auction
    hours = ix.hours
    resources = {r.id: r for r in auction.resources}
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
    net_in: dict[tuple[str, str, int], float] = defaultdict(float)
    for k, (li, direction, p, t) in enumerate(ix.flow_keys):
        kw = clean_kw(f.get(k, 0.0))
        if kw <= ZERO_KW:
            continue
        line = auction.lines[li]
        src, dst = (line.from_area, line.to_area) if direction.value == "forward" else (line.to_area, line.from_area)
        net_in[(dst, p, t)] += kw
        net_in[(src, p, t)] -= kw
        flows.append(Flow(line.id, direction.value, p, t, kw))

    shortfalls: list[Shortfall] = []
    short_kw: dict[tuple[str, str, int], float] = {}
    for key in sorted(ix.requirement_kw):
        kw = clean_kw(s.get(key, 0.0))
        if kw > ZERO_KW:
            short_kw[key] = kw
            shortfalls.append(Shortfall(*key, kw))
    penalty = auction.shortfall_price_yen_per_kw_h * hours * sum(short_kw.values())

    # the solver's duals carry the tie-break; the reported prices are the real ones (clearing.exact)
    exact = result_prices(ix, {ix.bids[i].id for i in awarded}) if duals else {}
    prices = [MarginalPrice(*key, price) for key, price in exact.items()]

    # area summary: every (area, product, block) with a requirement or an offer
    offered: dict[tuple[str, str, int], float] = defaultdict(float)
    for bid in auction.bids:
        for p in bid.products:
            for t in bid.blocks:
                offered[(bid.area, p, t)] += bid.kw
    local_awards: dict[tuple[str, str, int], list[tuple[float, float]]] = defaultdict(list)
    for i, kw in awarded.items():
        bid = ix.bids[i]
        for p in bid.products:
            for t in bid.blocks:
                local_awards[(bid.area, p, t)].append((kw, bid.price_yen_per_kw_h))
    requirement = {(r.area, r.product, r.block): r.kw for r in auction.requirements}
    summary = []
    for key in sorted(set(requirement) | set(offered) | set(net_in)):
        local = local_awards.get(key, [])
        local_kw = sum(kw for kw, _ in local)
        prices_awarded = [price for _, price in local]
        summary.append(AreaSummary(
            *key, requirement_kw=requirement.get(key, 0.0), offered_kw=offered.get(key, 0.0),
            awarded_local_kw=clean_kw(local_kw), awarded_for_area_kw=clean_kw(local_kw + net_in.get(key, 0.0)),
            shortfall_kw=short_kw.get(key, 0.0),
            max_price_yen_per_kw_h=max(prices_awarded) if local else None,
            min_price_yen_per_kw_h=min(prices_awarded) if local else None,
            avg_price_yen_per_kw_h=round(sum(kw * pr for kw, pr in local) / local_kw, 6) if local else None,
        ))

    return ClearingResult(
        auction_id=auction.auction_id, trading_date=auction.trading_date, status=status,
        objective_yen=round(procurement + startup + penalty, 6), procurement_cost_yen=round(procurement, 6),
        startup_cost_yen=startup, shortfall_penalty_yen=round(penalty, 6), payment_total_yen=round(payments, 6),
        awards=awards, flows=flows, shortfalls=shortfalls, prices=prices, area_summary=summary,
        rejected_bids=[RejectedBidView(**asdict(r)) for r in ix.rejected], solver=info,
        input_sha256=auction.input_sha256,
    )
