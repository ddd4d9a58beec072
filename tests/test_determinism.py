"""Determinism (SPEC §3): the same document gives the same awards, equal prices go to the bid earlier in
the document, and reordering anything but equal-price bids never changes the awards."""

from __future__ import annotations

import json
import random

import pytest
from conftest import CASES_DIR, clear_and_verify
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import auctions

from dkw.clearing.document import load_auction
from dkw.solvers.api import SolveOptions

EXACT = SolveOptions(mip_rel_gap=0.0)


def awards(doc: dict, options: SolveOptions = EXACT) -> list[tuple[str, float]]:
    return sorted((a.bid, a.kw) for a in clear_and_verify(load_auction(doc), options).awards)


def two_equal_bids(first: str, second: str) -> dict:
    doc = json.loads((CASES_DIR / "01-merit-order.json").read_text())
    doc["requirements"] = [{"area": doc["areas"][0], "product": doc["products"][0], "block": 0, "kw": 1000}]
    template = doc["bids"][0]
    doc["bids"] = [dict(template, id=first, kw=1000, min_kw=1000, price_yen_per_kw_h=3.0, blocks=[0]),
                   dict(template, id=second, kw=1000, min_kw=1000, price_yen_per_kw_h=3.0, blocks=[0])]
    return doc


def test_equal_prices_go_to_the_earlier_bid() -> None:
    assert awards(two_equal_bids("x", "y")) == [("x", 1000.0)]
    assert awards(two_equal_bids("y", "x")) == [("y", 1000.0)]


@pytest.mark.slow
def test_same_document_same_result_twice() -> None:
    auction = load_auction(json.loads((CASES_DIR / "10-national-dense.json").read_text()))
    first = clear_and_verify(auction).to_document()
    second = clear_and_verify(auction).to_document()
    for doc in (first, second):
        doc.pop("solver")
    assert first == second


def permute_keeping_ties(bids: list[dict], rnd: random.Random) -> list[dict]:
    """A random order of the bids in which bids of equal price keep their relative order."""
    shuffled = bids[:]
    rnd.shuffle(shuffled)
    by_price: dict[float, list[dict]] = {}
    for b in bids:
        by_price.setdefault(b["price_yen_per_kw_h"], []).append(b)
    cursor = {p: iter(group) for p, group in by_price.items()}
    return [next(cursor[b["price_yen_per_kw_h"]]) for b in shuffled]


@pytest.mark.parametrize("method", ["fast", pytest.param("straight", marks=pytest.mark.slow)])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(auctions(max_bids=10), st.integers(0, 2**32 - 1))
def test_reordering_anything_but_ties_keeps_the_awards(method: str, doc: dict, seed: int) -> None:
    options = SolveOptions(mip_rel_gap=0.0, method=method)
    reordered = dict(doc, bids=permute_keeping_ties(doc["bids"], random.Random(seed)))
    assert awards(reordered, options) == awards(doc, options)


def test_an_auction_with_no_requirement_clears_on_both_paths():
    """Found by the reordering property: with no requirement the only row is a resource's capacity and the
    objective has no constant, so Pyomo's LP file gets its ONE_VAR_CONSTANT column and row, which the
    straight path must leave out (it raised KeyError)."""
    doc = {"format": "jp-balancing-auction/1", "auction_id": "random", "trading_date": "2026-10-01", "blocks": 1,
           "block_minutes": 30, "areas": ["east"], "products": ["secondary2"], "shortfall_price_yen_per_kw_h": 4.0,
           "lines": [], "requirements": [],
           "resources": [{"id": "R0", "area": "east", "capacity_kw": 1500, "startup_cost_yen": 0}],
           "bids": [{"id": "b0", "area": "east", "products": ["secondary2"], "blocks": [0], "kw": 500, "min_kw": 0,
                     "price_yen_per_kw_h": 1.0, "category": "SINGLE_GENERATOR"}]}
    for method in ("fast", "straight"):
        result = clear_and_verify(load_auction(doc), SolveOptions(method=method, mip_rel_gap=0.0))
        assert (result.status, result.objective_yen, result.awards) == ("OPTIMAL", 0.0, [])
