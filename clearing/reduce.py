"""Exact reductions before the solve: bids that every optimal clearing accepts in full.

A balance row (area, product, block) is *structurally short* (構造的な募集量未達) when even every bid that
could serve it at full kW plus every kW the lines could bring in falls short of the requirement:

    Σ_local units max kW  +  min(Σ capacity of lines into the area for the product, max_import_kw)  <  R

(a list-pattern group counts once, with its largest pattern; a resource's bids at most its capacity).
Such a row has shortfall in every feasible solution, whatever the other decisions are.

Take a bid b that covers at least one structurally short row and nothing couples it except its own
rows: no group, no parent, no resource capacity that could bind, and, for a resource with a start-up
cost, one whose start-up is cheaper than what b saves. Raising q_b to kw_b in any feasible solution
keeps it feasible (each short row's shortfall drops by the increase and stays positive; other balance
rows only gain supply) and changes the objective by

    Δ · (cost_per_kw_b + tie-break)  −  Δ · shortfall price · hours · (short rows b covers)  [+ start-up]

which is negative whenever the bid is cheaper than shortfall. So every optimum has q_b = kw_b (and its
acceptance and start-up binaries at 1): fixing them changes no optimum, only the work to prove it.
"""

from __future__ import annotations

from collections import defaultdict

from dkw.clearing.index import TIE_BREAK_YEN_PER_KW, AuctionIndex

#: Slack (kW) by which a row must be short to count: far above solver tolerances, far below a real kW.
SHORT_MARGIN_KW = 1e-3


def max_import_kw(ix: AuctionIndex, key: tuple[str, str, int]) -> float:
    """The most the lines can bring into (area, product, block): their capacities, capped by max_import_kw."""
    total = 0.0
    for k in ix.flows_into.get(key, ()):
        li, direction, _p, t = ix.flow_keys[k]
        total += ix.auction.lines[li].capacity_kw(direction, t)
    cap = ix.max_import_kw.get(key)
    return total if cap is None else min(total, max(cap, 0.0))


def structurally_short_rows(ix: AuctionIndex) -> set[tuple[str, str, int]]:
    """Balance rows with shortfall in every feasible solution (see the module docstring)."""
    resources = ix.resources
    short = set()
    for key, requirement in ix.requirement_kw.items():
        _area, _product, t = key
        by_unit: dict[str, float] = defaultdict(float)  # group → largest pattern; other bids add up
        by_resource: dict[str | None, dict[str, float]] = defaultdict(dict)
        for i in ix.bids_at.get(key, ()):
            bid = ix.bids[i]
            unit = f"group:{bid.group}" if bid.group is not None else f"bid:{i}"
            if bid.group is not None:
                by_unit[unit] = max(by_unit[unit], bid.kw)
            else:
                by_unit[unit] += bid.kw
            by_resource[bid.resource][unit] = by_unit[unit]
        local = 0.0
        for resource, units in by_resource.items():
            supply = sum(units.values())
            if resource is not None:
                cap = resources[resource].capacity_kw_by_block
                if cap is not None:
                    supply = min(supply, cap[t])
            local += supply
        if local + max_import_kw(ix, key) < requirement - SHORT_MARGIN_KW:
            short.add(key)
    return short


def always_full_bids(ix: AuctionIndex) -> list[int]:
    """Positions (in `ix.bids`) of the bids every optimum accepts at full kW (see the module docstring)."""
    short = structurally_short_rows(ix)
    if not short:
        return []
    resources = ix.resources
    shortfall_per_kw_row = ix.auction.shortfall_price_yen_per_kw_h * ix.hours
    # resources whose capacity can never bind: the sum of all their bids' kW fits in every block
    loose = set()
    for r, members in ix.resource_bids.items():
        cap = resources[r].capacity_kw_by_block
        if cap is None:
            loose.add(r)
            continue
        load: dict[int, float] = defaultdict(float)
        for i in members:
            for t in ix.bids[i].blocks:
                load[t] += ix.bids[i].kw
        if all(kw <= cap[t] for t, kw in load.items()):
            loose.add(r)
    out = []
    for i, bid in enumerate(ix.bids):
        if bid.group is not None or bid.parent is not None:
            continue
        if bid.resource is not None and bid.resource not in loose:
            continue
        rows = sum(1 for p in bid.products for t in bid.blocks if (bid.area, p, t) in short)
        if rows == 0:
            continue
        saving = bid.kw * (shortfall_per_kw_row * rows - ix.cost_per_kw[i] - TIE_BREAK_YEN_PER_KW * ix.tie_rank[i])
        if saving <= 0:
            continue
        if bid.resource is not None and bid.resource in ix.startup_resources:
            if saving <= resources[bid.resource].startup_cost_yen:
                continue
        out.append(i)
    return out
