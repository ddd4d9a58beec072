"""EPRX's per-area figures (area × product × block), computed one way for the result's `area_summary`
and for replay's summary from a result document: requirement (募集量), offered (応札量, every bid of
the document, left out or not), awarded locally (落札量 電源属地別), awarded for the area after its net
imports (落札量 TSO別), shortfall, and the max/min/kW-weighted average price of the accepted bids located
in the area."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from dkw.clearing.model import Auction, Bid

#: Solver values closer than this to zero are zero; closer to a whole kW, that whole kW.
ZERO_KW = 1e-6

Row = tuple[str, str, int]  # (area, product, block)


def clean_kw(value: float) -> float:
    """Solver noise removed: snap to a whole kW within 1e-6, else keep 6 decimals."""
    nearest = round(value)
    if abs(value - nearest) < ZERO_KW:
        return float(nearest)
    return round(value, 6)


def net_import(auction: Auction, flows: Iterable[tuple[str, str, str, int, float]]) -> dict[Row, float]:
    """Imports − exports per (area, product, block) of flows given as (line, direction, product, block, kW)."""
    lines = {line.id: line for line in auction.lines}
    net: dict[Row, float] = defaultdict(float)
    for line_id, direction, product, block, kw in flows:
        src, dst = lines[line_id].ends(direction)
        net[(dst, product, block)] += kw
        net[(src, product, block)] -= kw
    return net


def area_figures(auction: Auction, awarded: Iterable[tuple[Bid, float]], net: dict[Row, float],
                 shortfall_kw: dict[Row, float]) -> list[dict[str, Any]]:
    """One dict of figures per (area, product, block) with a requirement, an offer or a flow, sorted; the
    keyword arguments of both `AreaSummary` and `BlockFigures`. `awarded`: (bid, accepted kW) pairs."""
    requirement = {(r.area, r.product, r.block): r.kw for r in auction.requirements}
    offered: dict[Row, float] = defaultdict(float)
    for bid in auction.bids:
        for p in bid.products:
            for t in bid.blocks:
                offered[(bid.area, p, t)] += bid.kw
    local: dict[Row, list[tuple[float, float]]] = defaultdict(list)
    for bid, kw in awarded:
        for p in bid.products:
            for t in bid.blocks:
                local[(bid.area, p, t)].append((kw, bid.price_yen_per_kw_h))
    out = []
    for key in sorted(set(requirement) | set(offered) | set(net) | set(shortfall_kw)):
        awards = local.get(key, [])
        local_kw = sum(kw for kw, _ in awards)
        prices = [price for _, price in awards]
        area, product, block = key
        out.append({
            "area": area, "product": product, "block": block, "requirement_kw": requirement.get(key, 0.0),
            "offered_kw": clean_kw(offered.get(key, 0.0)), "awarded_local_kw": clean_kw(local_kw),
            "awarded_for_area_kw": clean_kw(local_kw + net.get(key, 0.0)),
            "shortfall_kw": clean_kw(shortfall_kw.get(key, 0.0)),
            "max_price_yen_per_kw_h": max(prices) if prices else None,
            "min_price_yen_per_kw_h": min(prices) if prices else None,
            "avg_price_yen_per_kw_h": round(sum(kw * pr for kw, pr in awards) / local_kw, 6) if local_kw > 0 else None,
        })
    return out
