"""Marginal prices, pay-as-bid and PAY_CAP payments, and the EPRX-style area summary."""

from __future__ import annotations

from collections import defaultdict

import pytest
from conftest import clear_and_verify

from dkw.clearing.document import load_auction


def price_of(result, area: str, product: str, block: int) -> float:
    return next(p.marginal_yen_per_kw_h for p in result.prices
                if (p.area, p.product, p.block) == (area, product, block))


def test_marginal_price_is_the_marginal_bid(case_doc) -> None:
    result = clear_and_verify(load_auction(case_doc("01-merit-order")))
    # B (1.0) and C (2.0) in full, A (3.0) marginal at 5,000 kW: the price is A's
    assert price_of(result, "tokyo", "tertiary1", 0) == pytest.approx(3.0, abs=1e-4)
    assert dict((a.bid, a.payment_yen) for a in result.awards) == {"A": 7500.0, "B": 5000.0, "C": 10000.0}


def test_marginal_price_where_short_is_the_shortfall_price(case_doc) -> None:
    doc = case_doc("07-shortfall")
    result = clear_and_verify(load_auction(doc))
    for s in result.shortfalls:
        assert price_of(result, s.area, s.product, s.block) == pytest.approx(doc["shortfall_price_yen_per_kw_h"], rel=1e-6)


def test_pay_cap_pays_the_cap_but_ranks_by_own_price(case_doc) -> None:
    doc = case_doc("01-merit-order")
    doc["price_caps"] = [{"product": "tertiary1", "yen_per_kw_h": 2.5}]
    doc["price_cap_mode"] = "PAY_CAP"
    result = clear_and_verify(load_auction(doc))
    payments = {a.bid: a.payment_yen for a in result.awards}
    assert payments["A"] == pytest.approx(2.5 * 0.5 * 5000)  # paid the cap, not its 3.0
    assert payments["B"] == pytest.approx(1.0 * 0.5 * 10000)
    assert result.procurement_cost_yen == pytest.approx(22500.0)  # the optimisation uses own prices
    assert result.payment_total_yen == pytest.approx(sum(payments.values()))
    assert result.left_out == []


def test_reject_mode_leaves_bids_above_the_cap_out_with_a_reason(case_doc) -> None:
    doc = case_doc("01-merit-order")
    doc["price_caps"] = [{"product": "tertiary1", "yen_per_kw_h": 2.5}]
    result = clear_and_verify(load_auction(doc))
    left_out = {r.bid: r for r in result.left_out}
    assert set(left_out) == {"A", "D"}
    assert "above the cap 2.5" in left_out["A"].reason
    assert sum(s.kw for s in result.shortfalls) == pytest.approx(5000)


def test_composite_cap_falls_back_to_the_lowest_product_cap(case_doc) -> None:
    doc = case_doc("06-composite")
    caps = [{"product": p, "yen_per_kw_h": 100.0} for p in doc["products"]]
    caps[0]["yen_per_kw_h"] = 0.01
    doc["price_caps"] = caps
    result = clear_and_verify(load_auction(doc))
    composite = [b["id"] for b in doc["bids"] if len(b["products"]) > 1]
    assert composite and {r.bid for r in result.left_out} >= set(composite)


def test_area_summary_decomposes_flows(case_doc) -> None:
    doc = case_doc("05-cross-area")
    result = clear_and_verify(load_auction(doc))
    rows = {(s.area, s.product, s.block): s for s in result.area_summary}
    local_total, for_area_total = defaultdict(float), defaultdict(float)
    for s in result.area_summary:
        local_total[(s.product, s.block)] += s.awarded_local_kw
        for_area_total[(s.product, s.block)] += s.awarded_for_area_kw
        if s.requirement_kw > 0:
            assert s.awarded_for_area_kw + s.shortfall_kw >= s.requirement_kw - 1e-6
    assert local_total == pytest.approx(for_area_total)
    tokyo = rows[("tokyo", "tertiary1", 0)]
    assert tokyo.awarded_for_area_kw > tokyo.awarded_local_kw  # tokyo imports
    awarded_prices = [b["price_yen_per_kw_h"] for b in doc["bids"] if b["area"] == "tokyo"
                      and b["id"] in {a.bid for a in result.awards}]
    assert tokyo.max_price_yen_per_kw_h == max(awarded_prices)


@pytest.mark.slow  # 09
def test_time_limit_returns_the_incumbent_with_its_gap(case_doc) -> None:
    from dkw.solvers.api import SolveOptions

    result = clear_and_verify(load_auction(case_doc("09-national-30min")), SolveOptions(time_limit_s=1.0))
    assert result.status in ("TIME_LIMIT_FEASIBLE", "OPTIMAL")
    if result.status == "TIME_LIMIT_FEASIBLE":
        assert result.solver.mip_gap is not None and result.solver.mip_gap > 0
    assert result.awards and result.solver.options["time_limit_s"] == 1.0


def test_the_document_is_what_dataclasses_asdict_gives(case_doc) -> None:
    """`dkw.clearing.result.plain` replaced `dataclasses.asdict` for speed: the same dicts, explanations too."""
    from dataclasses import asdict

    from dkw.clearing.explain import ExplainOptions, explain
    from dkw.clearing.result import plain

    result = clear_and_verify(load_auction(case_doc("04-startup-linked")))
    for item in [*result.awards, *result.flows, *result.prices, *result.area_summary, *result.left_out,
                 result.solver]:
        assert plain(item) == asdict(item)
    explanations = explain(load_auction(case_doc("04-startup-linked")), result.to_document(), [], ExplainOptions())
    assert explanations
    for e in explanations:
        assert e.to_dict() == asdict(e)
