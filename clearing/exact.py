"""Exact figures of a clearing (docs/result.md, "Exact prices and bounds"): what the result reports is
in the real objective's terms, never in the solver's perturbed ones.

The MILP carries two tiny perturbations (dkw.clearing.index: the tie-break among equal prices and the
preference for less flow). They decide between equal-cost solutions and are never reported, but they
leak into two figures the solver hands back: the duals (a price of 5.000001 instead of 5) and the
proven bound (above the real objective by up to the perturbations' size). Here both are restated:

- prices come from the fixed-integer LP with the real costs (dkw.clearing.fixed_lp), under its rule for a
  row with several optimal duals: the cost of one more kW. A clearing builds that LP once
  (`clearing_lp`) and shares it with the explanations (dkw.clearing.explain);
- the bound is the solver's bound on the perturbed objective minus the largest value the perturbations
  can take in any feasible solution, so it is a proven lower bound on the real objective (and so never
  above the reported objective).
"""

from __future__ import annotations

from collections import defaultdict

from dkw.clearing.fixed_lp import FixedLP, build_fixed_lp
from dkw.clearing.index import FLOW_PREFERENCE_YEN_PER_KW, TIE_BREAK_YEN_PER_KW, AuctionIndex
from dkw.clearing.result import ClearingResult


def perturbation_ceiling_yen(ix: AuctionIndex) -> float:
    """The most the tie-break and flow-preference terms can add to any feasible solution's cost: every
    bid at its full kW and every line direction and block at its capacity."""
    ties = sum(TIE_BREAK_YEN_PER_KW * rank * bid.kw for rank, bid in zip(ix.tie_rank, ix.bids, strict=True))
    capacity: dict[tuple, float] = defaultdict(float)
    for li, direction, _, t in ix.flow_keys:  # products share a direction's capacity
        capacity[(li, direction, t)] = ix.auction.lines[li].capacity_kw(direction, t)
    return ties + FLOW_PREFERENCE_YEN_PER_KW * sum(capacity.values())


def real_objective_bound(ix: AuctionIndex, solver_bound: float | None, objective_yen: float) -> float | None:
    """A proven lower bound on the real objective from the solver's bound on the perturbed one."""
    if solver_bound is None:
        return None
    return round(min(solver_bound - perturbation_ceiling_yen(ix), objective_yen), 6)


def clearing_lp(ix: AuctionIndex, result: ClearingResult) -> FixedLP:
    """The fixed-integer LP of a clearing that accepted `result`'s awards: built once after the solve, for
    the exact prices (`result_prices`) and the explanations (dkw.clearing.explain.explain_clearing)."""
    return build_fixed_lp(ix.auction, {a.bid for a in result.awards}, {r.bid for r in ix.left_out})


def result_prices(ix: AuctionIndex, lp: FixedLP) -> dict[tuple[str, str, int], float]:
    """Exact marginal prices (yen/kW·h) of the index's balance rows, from the clearing's fixed LP."""
    prices = lp.prices()
    return {key: prices[key] for key in ix.balance_keys if key in prices}
