"""Exact figures (prices without the tie-break, a bound in the real objective's terms) and a verifier
that recomputes every figure of a result and re-judges the market rules under the policy it names."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import CASES_DIR, clear_and_verify

from dkw.clearing.document import load_auction, load_auction_file
from dkw.clearing.fixed_lp import build_fixed_lp
from dkw.clearing.verify import verify_result
from dkw.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def example(name: str = "auction.json") -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cleared_example():
    auction = load_auction(example())
    return auction, clear_and_verify(auction).to_document()


def prices_of(doc: dict) -> dict[tuple, float]:
    return {(p["area"], p["product"], p["block"]): p["marginal_yen_per_kw_h"] for p in doc["prices"]}


def test_example_prices_carry_no_tie_break(cleared_example) -> None:
    """The issue's example: chubu was 5.000001. Every price is now a whole bid or shortfall price here."""
    auction, doc = cleared_example
    prices = prices_of(doc)
    assert prices[("chubu", "tertiary1", 0)] == 5.0
    bid_prices = {b.price_yen_per_kw_h for b in auction.bids} | {0.0, auction.shortfall_price_yen_per_kw_h}
    assert set(prices.values()) <= bid_prices, prices


@pytest.mark.parametrize("name", ["01-merit-order", "02-indivisible", "04-startup-linked", "05-cross-area",
                                  "06-composite", "07-shortfall", "11-cap-dc-interface"])
def test_prices_are_the_cost_of_one_more_kw(name: str) -> None:
    """Each price equals (v(R + 1 kW) − v(R)) / hours of the fixed-integer LP, and for an area whose
    requirement is raised by 1 kW and cleared again with the same awards, the cost rises by that much."""
    auction = load_auction_file(CASES_DIR / f"{name}.json")
    doc = clear_and_verify(auction).to_document()
    lp = build_fixed_lp(auction, {a["bid"] for a in doc["awards"]}, {r["bid"] for r in doc["rejected_bids"]})
    assert lp.objective_yen == pytest.approx(doc["procurement_cost_yen"] + doc["shortfall_penalty_yen"], rel=1e-9)
    for key, price in prices_of(doc).items():
        assert lp.step_price(key) == pytest.approx(price, abs=1e-6), key
        assert 0 <= price <= auction.shortfall_price_yen_per_kw_h + 1e-9


def test_indivisible_surplus_row_is_priced_at_the_next_kw() -> None:
    """02: two indivisible bids meet the requirement exactly; HiGHS's dual there is 0 (degenerate), yet
    one more kW costs the cheapest divisible bid left: the documented rule picks that."""
    auction = load_auction_file(CASES_DIR / "02-indivisible.json")
    doc = clear_and_verify(auction).to_document()
    accepted = {a["bid"] for a in doc["awards"]}
    rest = [b for b in auction.bids if b.id not in accepted and b.min_kw == 0]
    assert prices_of(doc)[("tokyo", "tertiary1", 0)] == min(b.price_yen_per_kw_h for b in rest)


@pytest.mark.parametrize("name", ["01-merit-order", "03-list-pattern", "05-cross-area", "07-shortfall",
                                  "11-cap-dc-interface", "06-composite"])
def test_objective_bound_is_a_lower_bound_in_real_terms(name: str) -> None:
    doc = clear_and_verify(load_auction_file(CASES_DIR / f"{name}.json")).to_document()
    bound = doc["solver"]["objective_bound"]
    assert bound is not None and bound <= doc["objective_yen"]
    assert doc["objective_yen"] - bound <= 1e-4 * max(1.0, doc["objective_yen"])  # and not a useless one


def tampered(doc: dict, change) -> dict:
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


TAMPERINGS = [
    (lambda d: d.update(payment_total_yen=1.0), "payment_total_yen: reported"),
    (lambda d: d["area_summary"][0].update(offered_kw=d["area_summary"][0]["offered_kw"] + 1), "offered_kw reported"),
    (lambda d: d["area_summary"][0].update(avg_price_yen_per_kw_h=123.0), "avg_price_yen_per_kw_h reported"),
    (lambda d: d["area_summary"].pop(), "area_summary: no row"),
    (lambda d: d["prices"][0].update(marginal_yen_per_kw_h=d["prices"][0]["marginal_yen_per_kw_h"] + 0.5),
     "one more kW costs"),
    (lambda d: d["prices"].pop(), "prices: no price"),
    (lambda d: d["solver"].update(objective_bound=d["objective_yen"] + 1), "not a lower bound"),
]


@pytest.mark.parametrize("change,message", TAMPERINGS, ids=[t[1] for t in TAMPERINGS])
def test_every_figure_is_recomputed(cleared_example, change, message: str) -> None:
    auction, doc = cleared_example
    assert verify_result(auction, doc) == []
    problems = verify_result(auction, tampered(doc, change))
    assert any(message in p for p in problems), problems


@pytest.fixture(scope="module")
def under_override(tmp_path_factory):
    """examples/market-rules.json cleared under examples/policy-override.json, which opens device points
    the shipped policy calls NOT_YET_PERMITTED."""
    out = tmp_path_factory.mktemp("override") / "result.json"
    assert main(["clear", str(EXAMPLES / "market-rules.json"), "-q", "-o", str(out),
                 "--policy", str(EXAMPLES / "policy-override.json")]) == 0
    return out


def test_verify_refuses_a_result_cleared_under_another_policy(under_override: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["verify", str(EXAMPLES / "market-rules.json"), str(under_override)]) == 1
    out = capsys.readouterr().out
    assert "cleared under policy '2026-10-01.example'" in out
    assert "NOT_YET_PERMITTED under policy" in out


def test_verify_accepts_it_with_the_policy_it_names(under_override: Path, capsys) -> None:
    assert main(["verify", str(EXAMPLES / "market-rules.json"), str(under_override),
                 "--policy", str(EXAMPLES / "policy-override.json")]) == 0, capsys.readouterr()


def test_rejected_bids_are_rejudged() -> None:
    auction = load_auction(example("market-rules.json"))
    doc = clear_and_verify(auction).to_document()
    assert verify_result(auction, doc) == []
    first = doc["rejected_bids"][0]["bid"]
    assert any(f"bid {first}:" in p and "not in rejected_bids" in p
               for p in verify_result(auction, tampered(doc, lambda d: d["rejected_bids"].pop(0))))
    wrong = tampered(doc, lambda d: d["rejected_bids"][0].update(verdict="WRONG_CATEGORY"))
    assert any("rejected_bids says WRONG_CATEGORY" in p for p in verify_result(auction, wrong)) or \
        doc["rejected_bids"][0]["verdict"] == "WRONG_CATEGORY"
