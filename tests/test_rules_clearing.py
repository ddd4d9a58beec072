"""The market rules inside `clear`: ineligible bids left out and listed, policy caps when the auction lists
none, monitoring flags in the result, a user policy, and the independent checker agreeing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import clear_and_verify
from test_rules import DEVICE_PRIMARY, auction_doc, bid

from dkw.clearing.document import load_auction
from dkw.clearing.engine import clear
from dkw.clearing.rules import load_policy
from dkw.clearing.verify import verify_result
from dkw.cli import main

TOO_EARLY = dict(DEVICE_PRIMARY, device_capacity_kw=1500, resource_type="POSITIVE")  # generation 1–2 MW: no date


def market(trading_date: str = "2026-10-01", **top) -> dict:
    """2,500 kW of tertiary1 wanted; the cheapest bids are ineligible or above the cap."""
    doc = auction_doc([
        bid("EARLY", "DEVICE_POINT_SINGLE_GENERATOR", price=1.0, metering=TOO_EARLY),
        bid("CHILD", "LIST_PATTERN", price=1.5),
        bid("DEAR", price=15.0),  # above the 14.42 yen/kW·h tertiary1 cap of the schedule
        bid("OK1", "DEVICE_POINT_LIST_PATTERN", price=2.0, metering=DEVICE_PRIMARY),
        bid("OK2", price=3.0, cost={"substitutes": "OK1"}),
        bid("OK3", price=4.0),
    ], trading_date, **top)
    doc["bids"][1]["parent"] = "EARLY"
    doc["requirements"] = [{"area": "tokyo", "product": "tertiary1", "block": 0, "kw": 2500}]
    return doc


def test_clear_leaves_ineligible_bids_out_and_lists_them() -> None:
    auction = load_auction(market())
    result = clear_and_verify(auction)
    assert sorted((a.bid, a.kw) for a in result.awards) == [("OK1", 1000), ("OK2", 1000), ("OK3", 500)]
    left_out = {r.bid: r for r in result.left_out}
    assert {b: r.verdict for b, r in left_out.items()} == {
        "EARLY": "NOT_YET_PERMITTED", "CHILD": "PARENT_REJECTED", "DEAR": "PRICE_ABOVE_CAP"}
    assert "no opening date yet" in left_out["EARLY"].reason and "機器点" in left_out["EARLY"].reason
    doc = result.to_document()
    assert doc["rejected_bids"][0].keys() == {"bid", "verdict", "reason"}
    assert [(f["bid"], f["flag"]) for f in doc["monitoring_flags"]] == [("OK2", "SUBSTITUTE_ABOVE_ORIGINAL")]
    caps = doc["market_rules"]["price_caps"]
    assert caps["source"] == "policy" and {"product": "tertiary1", "yen_per_kw_h": 14.42} in caps["caps"]
    # the checker finds the awards of left-out bids, ineligible or above the policy's cap
    tampered = dict(doc, awards=doc["awards"] + [{"bid": "DEAR", "kw": 1000, "payment_yen": 7500.0}])
    assert any("DEAR" in p for p in verify_result(auction, tampered, left_out={"EARLY", "CHILD"}))


def test_explicit_ineligible_replaces_the_eligibility_verdicts() -> None:
    result = clear_and_verify(load_auction(market()), ineligible=[])
    assert {r.bid for r in result.left_out} == {"DEAR"}
    assert sorted(a.bid for a in result.awards) == ["CHILD", "EARLY", "OK1"]  # 1.0 + 1.5 + 2.0 for 2,500 kW


def test_pay_cap_with_the_policy_cap_pays_the_cap() -> None:
    doc = market(price_cap_mode="PAY_CAP")
    doc["requirements"][0]["kw"] = 4000
    auction = load_auction(doc)
    result = clear_and_verify(auction)  # the checker recomputes the payment with the policy's cap itself
    award = {a.bid: a for a in result.awards}["DEAR"]
    assert award.payment_yen == pytest.approx(14.42 * 0.5 * award.kw)
    assert any(f["flag"] == "PAID_AT_CAP" for f in result.to_document()["monitoring_flags"])


def test_a_user_policy_reaches_the_clearing_and_the_checker(tmp_path: Path) -> None:
    """Open 1–2 MW device-point generation on 2026-10-01 and lower tertiary1's cap to 1.75/30 min."""
    base = load_policy().data
    openings = [dict(o, **({"from": "2026-10-01"} if o["device_band"] == "HIGH_1000_2000" else {}))
                for o in base["openings"]]
    schedule = base["price_caps"]["schedule"] + [{"from": "2026-10-01", "caps": {"tertiary1": 1.75}}]
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"openings": openings, "price_caps": {"schedule": schedule}}))
    policy = load_policy(path)
    auction = load_auction(market())
    result = clear(auction, policy=policy)
    assert verify_result(auction, result.to_document(), left_out={r.bid for r in result.left_out},
                         policy_file=path) == []
    # 3.5 yen/kW·h now caps tertiary1: OK3 (4.0) joins DEAR outside; EARLY and its child may now enter
    assert sorted(a.bid for a in result.awards) == ["CHILD", "EARLY", "OK1"]
    assert {r.bid for r in result.left_out} == {"DEAR", "OK3"}
    assert result.to_document()["market_rules"]["policy"]["source"] == str(path)
    # the same result checked against the shipped schedule: OK3's cap is gone, DEAR's is back
    assert verify_result(auction, result.to_document(), left_out={"DEAR", "OK3"}) == []
    # ...but an award above the user policy's cap is caught when the checker is told the policy
    tampered = result.to_document()
    tampered["awards"] = tampered["awards"] + [{"bid": "OK3", "kw": 1000, "payment_yen": 2000.0}]
    assert any("OK3" in p for p in verify_result(auction, tampered, policy_file=path))


def test_cli_clear_and_verify_with_policy(tmp_path: Path, capsys) -> None:
    auction_path = tmp_path / "a.json"
    auction_path.write_text(json.dumps(market()))
    policy_path = tmp_path / "p.json"
    policy_path.write_text(json.dumps({"price_caps": {"schedule": [{"from": None, "caps": {"tertiary1": 1.75}}]}}))
    out = tmp_path / "r.json"
    assert main(["clear", str(auction_path), "-o", str(out), "-q", "--policy", str(policy_path)]) == 0
    doc = json.loads(out.read_text())
    assert [a["bid"] for a in doc["awards"]] == ["OK1", "OK2"] and doc["shortfalls"][0]["kw"] == 500
    assert {r["bid"]: r["verdict"] for r in doc["rejected_bids"]} == {
        "EARLY": "NOT_YET_PERMITTED", "CHILD": "PARENT_REJECTED", "DEAR": "PRICE_ABOVE_CAP", "OK3": "PRICE_ABOVE_CAP"}
    assert main(["verify", str(auction_path), str(out), "--policy", str(policy_path)]) == 0
    assert main(["clear", str(auction_path), "-q", "--policy", str(tmp_path / "nope.json")]) == 2
    capsys.readouterr()
