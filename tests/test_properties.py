"""Property tests over random small auctions: every result is feasible (independent checker), and for
tiny auctions its objective equals a brute force over which bids are accepted.

The brute force does not use the formulation: for every subset of bids it fixes acceptance, checks the
combinatorial rules (groups, parents) itself, and solves the remaining LP (quantities, flows, shortfall)
built by hand in highspy.
"""

from __future__ import annotations

import itertools

import highspy
import numpy as np
from conftest import clear_and_verify
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dkw.clearing.document import load_auction
from dkw.clearing.model import Auction

AREAS = ["east", "west", "south"]
PRODUCTS = ["secondary2", "tertiary1"]


@st.composite
def auctions(draw, max_bids: int = 6) -> dict:
    n_areas = draw(st.integers(1, 3))
    areas = AREAS[:n_areas]
    products = PRODUCTS[: draw(st.integers(1, 2))]
    blocks = draw(st.integers(1, 2))
    lines = []
    for i in range(n_areas - 1):
        if draw(st.booleans()):
            line = {"id": f"L{i}", "from_area": areas[i], "to_area": areas[i + 1],
                    "forward_kw": draw(st.sampled_from([0, 500, 2000])),
                    "backward_kw": draw(st.sampled_from([0, 1000, 3000]))}
            if len(products) > 1 and draw(st.booleans()):
                line["products"] = [products[-1]]
            lines.append(line)
    requirements = []
    for a in areas:
        for p in products:
            for t in range(blocks):
                kw = draw(st.sampled_from([0, 1000, 2500, 4000]))
                if kw:
                    r = {"area": a, "product": p, "block": t, "kw": kw}
                    if lines and draw(st.integers(0, 4)) == 0:
                        r["max_import_kw"] = draw(st.sampled_from([0, 500, 1500]))
                    requirements.append(r)
    resources = [{"id": "R0", "area": areas[0], "capacity_kw": draw(st.sampled_from([1500, 3000, 6000])),
                  "startup_cost_yen": draw(st.sampled_from([0, 500, 3000]))}]
    bids = []
    for i in range(draw(st.integers(1, max_bids))):
        area = draw(st.sampled_from(areas))
        kw = draw(st.sampled_from([500, 1000, 1500, 3000]))
        bid = {"id": f"b{i}", "area": area,
               "products": draw(st.sampled_from([[p] for p in products] + ([products] if len(products) > 1 else []))),
               "blocks": draw(st.sampled_from([[t] for t in range(blocks)] + ([[0, 1]] if blocks > 1 else []))),
               "kw": kw, "min_kw": draw(st.sampled_from([0, 0, kw // 2, kw])),
               "price_yen_per_kw_h": draw(st.sampled_from([1.0, 2.0, 2.0, 3.5, 5.0])),
               "category": "SINGLE_GENERATOR"}
        if area == areas[0] and draw(st.booleans()):
            bid["resource"] = "R0"
        if draw(st.integers(0, 3)) == 0:
            bid["group"] = draw(st.sampled_from(["G1", "G2"]))
        if i > 0 and draw(st.integers(0, 3)) == 0:
            bid["parent"] = f"b{draw(st.integers(0, i - 1))}"
        bids.append(bid)
    doc = {"format": "jp-balancing-auction/1", "auction_id": "random", "trading_date": "2026-10-01",
           "blocks": blocks, "block_minutes": draw(st.sampled_from([30, 180])), "areas": areas,
           "products": products, "shortfall_price_yen_per_kw_h": draw(st.sampled_from([4.0, 100.0])),
           "lines": lines, "requirements": requirements, "resources": resources, "bids": bids}
    if len(lines) >= 2 and draw(st.booleans()):
        doc["interfaces"] = [{"id": "I", "limit_kw": 1500, "members": [
            {"line": lines[0]["id"], "direction": "forward"}, {"line": lines[1]["id"], "direction": "forward"}]}]
    return doc


def brute_force_objective(auction: Auction, forced: str | None = None) -> float:
    """Minimum cost over all acceptance subsets, each an LP with acceptance fixed; with `forced`, over the
    subsets that accept that bid (at least max(min_kw, 1) kW)."""
    hours = auction.block_minutes / 60
    bids = auction.bids
    resources = {r.id: r for r in auction.resources}
    best = float("inf")
    for accepted in itertools.product([False, True], repeat=len(bids)):
        chosen = {b.id for b, on in zip(bids, accepted, strict=True) if on}
        if forced is not None and forced not in chosen:
            continue
        groups = [b.group for b in bids if b.id in chosen and b.group]
        if len(groups) != len(set(groups)):
            continue
        if any(b.parent and b.parent not in chosen for b in bids if b.id in chosen):
            continue
        startup = sum(resources[r].startup_cost_yen for r in {b.resource for b in bids if b.id in chosen and b.resource})
        lp = solve_fixed_lp(auction, chosen, hours)
        if lp is not None:
            best = min(best, lp + startup)
    return best


def solve_fixed_lp(auction: Auction, chosen: set[str], hours: float) -> float | None:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    cols: list[tuple[float, float, float]] = []  # (cost, lb, ub)
    rows: list[tuple[float, float, dict[int, float]]] = []
    q = {}
    for b in auction.bids:
        if b.id in chosen:
            q[b.id] = len(cols)
            cols.append((b.price_yen_per_kw_h * hours * len(b.blocks), max(b.min_kw, 1.0), b.kw))
    f = {}
    for line in auction.lines:
        for d, caps in (("forward", line.forward_kw_by_block), ("backward", line.backward_kw_by_block)):
            for t in range(auction.blocks):
                for p in auction.products:
                    if p in line.products:
                        f[(line.id, d, p, t)] = len(cols)
                        cols.append((0.0, 0.0, caps[t]))
                rows.append((-np.inf, caps[t], {f[k]: 1.0 for k in f if k[0] == line.id and k[1] == d and k[3] == t}))
    for interface in auction.interfaces:
        for t in range(auction.blocks):
            members = {(m.line, m.direction.value) for m in interface.members}
            rows.append((-np.inf, interface.limit_kw, {c: 1.0 for k, c in f.items() if (k[0], k[1]) in members and k[3] == t}))
    for r in auction.resources:
        if r.capacity_kw_by_block is None:
            continue
        for t in range(auction.blocks):
            rows.append((-np.inf, r.capacity_kw_by_block[t],
                         {q[b.id]: 1.0 for b in auction.bids if b.id in q and b.resource == r.id and t in b.blocks}))
    lines = {line.id: line for line in auction.lines}
    req = {(r.area, r.product, r.block): r for r in auction.requirements}
    for a in auction.areas:
        for p in auction.products:
            for t in range(auction.blocks):
                coef: dict[int, float] = {}
                for b in auction.bids:
                    if b.id in q and b.area == a and p in b.products and t in b.blocks:
                        coef[q[b.id]] = 1.0
                net: dict[int, float] = {}
                for (lid, d, pp, tt), c in f.items():
                    if pp != p or tt != t:
                        continue
                    src, dst = (lines[lid].from_area, lines[lid].to_area)
                    if d == "backward":
                        src, dst = dst, src
                    if dst == a:
                        net[c] = net.get(c, 0.0) + 1.0
                    if src == a:
                        net[c] = net.get(c, 0.0) - 1.0
                coef.update(net)
                r = req.get((a, p, t))
                need = r.kw if r else 0.0
                if need > 0:
                    s = len(cols)
                    cols.append((auction.shortfall_price_yen_per_kw_h * hours, 0.0, need))
                    coef[s] = 1.0
                rows.append((need, np.inf, coef))
                if r is not None and r.max_import_kw is not None:
                    rows.append((-np.inf, r.max_import_kw, net))
    for cost, lb, ub in cols:
        h.addVar(lb, ub)
        h.changeColCost(h.getNumCol() - 1, cost)
    for lo, hi, coef in rows:
        idx = np.array(list(coef), dtype=np.int32)
        val = np.array(list(coef.values()), dtype=np.float64)
        h.addRow(lo, hi, len(idx), idx, val)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kModelEmpty:
        return 0.0
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return h.getInfo().objective_function_value


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(auctions(max_bids=6))
def test_result_is_feasible_and_equals_brute_force(doc: dict) -> None:
    auction = load_auction(doc)
    result = clear_and_verify(auction)
    assert result.status == "OPTIMAL"
    expected = brute_force_objective(auction)
    assert abs(result.objective_yen - expected) <= 1e-6 * max(1.0, abs(expected)) + 1e-3, (result.objective_yen, expected)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(auctions(max_bids=14))
def test_larger_random_auctions_are_feasible(doc: dict) -> None:
    auction = load_auction(doc)
    result = clear_and_verify(auction)
    assert result.status == "OPTIMAL"
    assert result.solver.mip_gap is not None and result.solver.mip_gap <= 1e-6
