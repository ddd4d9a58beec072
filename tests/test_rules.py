"""Market rules (SPEC §5): every cell of the device-point table, the dated openings, the category rules,
price caps by date and the monitoring formulas, checked against expectations written from the SPEC here
(not read from the policy file), so a wrong policy entry fails a test."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

from dkw.clearing.document import load_auction
from dkw.clearing.left_out import price_cap_yen_per_kw_h
from dkw.clearing.rules import PolicyError, default_policy, effective_price_caps, load_policy, validate_auction

GENERATION = ("POSITIVE", "PUMPED_GENERATION", "PUMPED_LOAD_STORAGE")
DEMAND = ("NEGATIVE", "NEGATIVE_POSITIVE", "PUMPED_LOAD_VPP")
METERS = ("TSO", "SPECIFIED", "SPECIAL_CASE")
DEVICE_CATEGORIES = ("DEVICE_POINT_LIST_PATTERN", "DEVICE_POINT_SINGLE_GENERATOR", "LIST_PATTERN")

# SPEC §5 table: receiving voltage -> device column -> marks for (generation, demand); "-" no such case
CELLS = {
    "LOW": {"LOW": ("○", "○"), "HIGH_50_500": ("-", "-"), "HIGH_500_1000": ("-", "-"),
            "HIGH_1000_2000": ("-", "-"), "EXTRA_HIGH": ("-", "-")},
    "HIGH": {"LOW": ("○", "○"), "HIGH_50_500": ("○", "○"), "HIGH_500_1000": ("△", "△"),
             "HIGH_1000_2000": ("△②", "△"), "EXTRA_HIGH": ("-", "-")},
    "EXTRA_HIGH": {"LOW": ("○", "○"), "HIGH_50_500": ("○", "○"), "HIGH_500_1000": ("△", "△"),
                   "HIGH_1000_2000": ("△②", "△"), "EXTRA_HIGH": ("△①②", "△①")},
}
# a device inside each column: (device_voltage, device_capacity_kw); and a receiving point of each class
COLUMN_DEVICE = {"LOW": ("LOW", 30), "HIGH_50_500": ("HIGH", 300), "HIGH_500_1000": ("HIGH", 800),
                 "HIGH_1000_2000": ("HIGH", 1500), "EXTRA_HIGH": ("EXTRA_HIGH", 3000)}
RECEIVING_KW = {"LOW": 45, "HIGH": 1900, "EXTRA_HIGH": 6000}
# SPEC §5 dates: device-column openings per class (None: no date yet) and smart-meter dates per receiving voltage
OPENING = {("LOW", "g"): "2026-04-01", ("LOW", "d"): "2026-04-01",
           ("HIGH_50_500", "g"): "2026-10-01", ("HIGH_50_500", "d"): "2026-10-01",
           ("HIGH_500_1000", "g"): "2026-10-01", ("HIGH_500_1000", "d"): "2026-10-01",
           ("HIGH_1000_2000", "g"): None, ("HIGH_1000_2000", "d"): "2026-10-01",
           ("EXTRA_HIGH", "g"): None, ("EXTRA_HIGH", "d"): None}
SMART_METER = {"LOW": "2025-04-01", "HIGH": "2026-10-01", "EXTRA_HIGH": "2026-10-01"}
# both sides of every date above, and well before and after
DATES = ("2024-06-01", "2025-03-31", "2025-04-01", "2026-03-31", "2026-04-01", "2026-09-30", "2026-10-01",
         "2030-01-01")


def auction_doc(bids: list[dict], trading_date: str = "2026-10-01", **top) -> dict:
    doc = {"format": "jp-balancing-auction/1", "auction_id": "rules", "trading_date": trading_date,
           "blocks": 2, "block_minutes": 30, "areas": ["tokyo"],
           "products": ["primary", "secondary1", "secondary2", "tertiary1", "tertiary2"],
           "shortfall_price_yen_per_kw_h": 1000.0, "requirements": [], "bids": bids}
    doc.update(top)
    return doc


def bid(bid_id: str, category: str = "LIST_PATTERN", products=("tertiary1",), price: float = 5.0,
        metering: dict | None = None, cost: dict | None = None, blocks=(0,)) -> dict:
    out = {"id": bid_id, "area": "tokyo", "products": list(products), "blocks": list(blocks), "kw": 1000,
           "price_yen_per_kw_h": price, "category": category}
    if metering is not None:
        out["metering"] = dict(metering)
    if cost is not None:
        out["cost"] = cost
    return out


def verdicts(doc: dict, policy=None) -> dict[str, dict]:
    return {b["bid"]: b for b in validate_auction(load_auction(doc), policy).to_document()["bids"]}


def expected_device_verdict(receiving: str, column: str, rtype: str, meter: str, category: str, smart: bool,
                            date: str) -> tuple[str, str | None]:
    """SPEC §5 by hand: (verdict, opening date for NOT_YET_PERMITTED)."""
    generation = rtype in GENERATION
    marks = CELLS[receiving][column][0 if generation else 1]
    if marks == "-":
        return "NOT_APPLICABLE", None
    opening = OPENING[(column, "g" if generation else "d")]
    gates = [opening, SMART_METER[receiving]]
    failing = [d for d in gates if d is None or date < d]
    if not smart:
        failing.append(None)
    if failing:
        return "NOT_YET_PERMITTED", None if None in failing else max(failing)
    device_kw = COLUMN_DEVICE[column][1]
    if not category.startswith("DEVICE_POINT_"):  # device points bid in the new categories (② included)
        return "WRONG_CATEGORY", None
    if category == "DEVICE_POINT_SINGLE_GENERATOR" and not (generation and device_kw >= 1000):
        return "WRONG_CATEGORY", None
    if "△" in marks and meter == "SPECIAL_CASE":
        return "NEEDS_SPECIFIED_METER", None
    return "ELIGIBLE", None


@pytest.mark.parametrize("receiving,column", [(r, c) for r in CELLS for c in CELLS[r]])
def test_every_cell_class_meter_category_and_date(receiving: str, column: str) -> None:
    """Each cell × all six resource types × meter kinds × categories × smart meter or not × both sides of
    every opening and smart-meter date."""
    device_voltage, device_kw = COLUMN_DEVICE[column]
    combos = list(itertools.product(GENERATION + DEMAND, METERS, DEVICE_CATEGORIES, (True, False)))
    mismatches = []
    for date in DATES:
        bids = [bid(f"B{n}", category, metering={
            "point": "DEVICE", "receiving_voltage": receiving, "receiving_capacity_kw": RECEIVING_KW[receiving],
            "device_voltage": device_voltage, "device_capacity_kw": device_kw, "resource_type": rtype,
            "meter": meter, "next_gen_smart_meter": smart}) for n, (rtype, meter, category, smart) in enumerate(combos)]
        got = verdicts(auction_doc(bids, date))
        for n, combo in enumerate(combos):
            want, opening = expected_device_verdict(receiving, column, *combo, date)
            have = got[f"B{n}"]
            if have["verdict"] != want or (want == "NOT_YET_PERMITTED" and have["opening"] != opening):
                mismatches.append((date, combo, want, opening, have["verdict"], have.get("opening"), have["reasons"]))
            assert have["reasons"] or want == "ELIGIBLE"
            assert all("(" in r for r in have["reasons"])  # every reason carries its Japanese term
    assert mismatches == [], mismatches[:5]


def test_cells_cover_the_whole_table() -> None:
    policy_cells = default_policy().data["device_point_table"]["cells"]
    assert {(r, c) for r in policy_cells for c in policy_cells[r]} == {(r, c) for r in CELLS for c in CELLS[r]}


@pytest.mark.parametrize("capacity_kw,column", [(49, "LOW"), (50, "HIGH_50_500"), (499, "HIGH_50_500"),
                                                (500, "HIGH_500_1000"), (999, "HIGH_500_1000"),
                                                (1000, "HIGH_1000_2000"), (1999, "HIGH_1000_2000"),
                                                (2000, "EXTRA_HIGH")])
def test_column_boundaries_from_capacity_alone(capacity_kw: int, column: str) -> None:
    """Without device_voltage the class comes from the capacity; 500 kW already needs a specified meter."""
    meter = {"point": "DEVICE", "receiving_voltage": "EXTRA_HIGH", "device_capacity_kw": capacity_kw,
             "resource_type": "NEGATIVE", "meter": "SPECIAL_CASE", "next_gen_smart_meter": True}
    got = verdicts(auction_doc([bid("B", "DEVICE_POINT_LIST_PATTERN", metering=meter)], "2026-10-01"))["B"]
    want, _ = expected_device_verdict("EXTRA_HIGH", column, "NEGATIVE", "SPECIAL_CASE",
                                      "DEVICE_POINT_LIST_PATTERN", True, "2026-10-01")
    assert got["verdict"] == want


RECEIVING_CASES = [
    # (resource_type, receiving kW, receiving voltage, category, verdict)
    ("POSITIVE", 1000, "HIGH", "SINGLE_GENERATOR", "ELIGIBLE"),
    ("POSITIVE", 1000, "HIGH", "LIST_PATTERN", "WRONG_CATEGORY"),
    ("PUMPED_GENERATION", 5000, "EXTRA_HIGH", "LIST_PATTERN", "WRONG_CATEGORY"),
    ("PUMPED_LOAD_STORAGE", 5000, "EXTRA_HIGH", "SINGLE_GENERATOR", "ELIGIBLE"),
    ("POSITIVE", 999, "HIGH", "SINGLE_GENERATOR", "WRONG_CATEGORY"),
    ("POSITIVE", 999, "HIGH", "LIST_PATTERN", "ELIGIBLE"),
    ("NEGATIVE", 5000, "EXTRA_HIGH", "SINGLE_GENERATOR", "WRONG_CATEGORY"),
    ("NEGATIVE_POSITIVE", 5000, "EXTRA_HIGH", "LIST_PATTERN", "ELIGIBLE"),
    ("PUMPED_LOAD_VPP", 1500, "HIGH", "LIST_PATTERN", "ELIGIBLE"),
    ("NEGATIVE", 30, "LOW", "LOW_VOLTAGE_AGGREGATE", "ELIGIBLE"),
    ("NEGATIVE", 300, "HIGH", "LOW_VOLTAGE_AGGREGATE", "WRONG_CATEGORY"),
    ("POSITIVE", 1500, "HIGH", "DEVICE_POINT_SINGLE_GENERATOR", "WRONG_CATEGORY"),
    ("NEGATIVE", 300, "HIGH", "DEVICE_POINT_LIST_PATTERN", "WRONG_CATEGORY"),
]


@pytest.mark.parametrize("rtype,kw,voltage,category,want", RECEIVING_CASES)
def test_receiving_point_category_rules(rtype: str, kw: int, voltage: str, category: str, want: str) -> None:
    meter = {"point": "RECEIVING", "receiving_voltage": voltage, "receiving_capacity_kw": kw, "resource_type": rtype,
             "meter": "TSO"}
    for date in ("2024-06-01", "2026-10-01"):  # no dates at the receiving point
        assert verdicts(auction_doc([bid("B", category, metering=meter)], date))["B"]["verdict"] == want


def test_no_metering_is_eligible_but_tertiary2_stands_alone() -> None:
    got = verdicts(auction_doc([bid("A", "SINGLE_GENERATOR"), bid("B", "DEVICE_POINT_LIST_PATTERN"),
                                bid("C", "LIST_PATTERN", products=("tertiary1", "tertiary2")),
                                bid("D", "LIST_PATTERN", products=("primary", "secondary1"))]))
    assert {k: v["verdict"] for k, v in got.items()} == {
        "A": "ELIGIBLE", "B": "ELIGIBLE", "C": "WRONG_CATEGORY", "D": "ELIGIBLE"}
    assert "三次調整力②" in got["C"]["reasons"][0]


def test_incomplete_device_metering_is_not_applicable() -> None:
    got = verdicts(auction_doc([
        bid("A", "DEVICE_POINT_LIST_PATTERN", metering={"point": "DEVICE", "receiving_voltage": "HIGH",
                                                         "device_voltage": "HIGH", "resource_type": "NEGATIVE",
                                                         "meter": "TSO", "next_gen_smart_meter": True}),
        bid("B", "DEVICE_POINT_LIST_PATTERN", metering={"point": "DEVICE", "receiving_voltage": "HIGH",
                                                         "device_capacity_kw": 300, "meter": "TSO",
                                                         "next_gen_smart_meter": True})]))
    assert got["A"]["verdict"] == "NOT_APPLICABLE" and "device_capacity_kw" in got["A"]["reasons"][0]
    assert got["B"]["verdict"] == "NOT_APPLICABLE" and "resource_type" in " ".join(got["B"]["reasons"])


DEVICE_PRIMARY = {"point": "DEVICE", "receiving_voltage": "HIGH", "receiving_capacity_kw": 1800,
                  "device_voltage": "HIGH", "device_capacity_kw": 300, "resource_type": "NEGATIVE",
                  "meter": "SPECIFIED", "next_gen_smart_meter": True}


def test_primary_at_device_point_is_a_switch(tmp_path: Path) -> None:
    """③: off by default (undecided); switching it on is a data edit."""
    doc = auction_doc([bid("P", "DEVICE_POINT_LIST_PATTERN", products=("primary",), metering=DEVICE_PRIMARY),
                       bid("S", "DEVICE_POINT_LIST_PATTERN", products=("secondary1",), metering=DEVICE_PRIMARY)])
    got = verdicts(doc)
    assert got["P"]["verdict"] == "NOT_YET_PERMITTED" and got["P"]["opening"] is None
    assert got["S"]["verdict"] == "ELIGIBLE"
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"switches": {"primary_at_device_point": True}}))
    assert verdicts(doc, load_policy(path))["P"]["verdict"] == "ELIGIBLE"


def test_a_new_opening_date_is_a_data_edit(tmp_path: Path) -> None:
    """Open HIGH device points of 1,000–2,000 kW for generation on 2027-04-01 and move LOW to 2026-06-01."""
    policy_data = json.loads((Path(__file__).parent.parent / "clearing/rules/policy.json").read_text())
    openings = policy_data["openings"]
    for o in openings:
        if o["device_band"] == "HIGH_1000_2000" and o.get("resource_class") == "generation":
            o["from"] = "2027-04-01"
        if o["device_band"] == "LOW":
            o["from"] = "2026-06-01"
    path = tmp_path / "openings.json"
    path.write_text(json.dumps({"openings": openings}))
    modified = load_policy(path)

    big = dict(DEVICE_PRIMARY, device_capacity_kw=1500, resource_type="POSITIVE")
    low = dict(DEVICE_PRIMARY, receiving_voltage="LOW", receiving_capacity_kw=40, device_voltage="LOW",
               device_capacity_kw=20)
    bids = [bid("G", "DEVICE_POINT_SINGLE_GENERATOR", metering=big), bid("L", "DEVICE_POINT_LIST_PATTERN", metering=low)]
    for date, policy, want_g, want_l in [
        ("2027-04-01", None, ("NOT_YET_PERMITTED", None), ("ELIGIBLE", None)),
        ("2027-03-31", modified, ("NOT_YET_PERMITTED", "2027-04-01"), ("ELIGIBLE", None)),
        ("2027-04-01", modified, ("ELIGIBLE", None), ("ELIGIBLE", None)),
        ("2026-05-01", None, ("NOT_YET_PERMITTED", None), ("ELIGIBLE", None)),
        ("2026-05-01", modified, ("NOT_YET_PERMITTED", "2027-04-01"), ("NOT_YET_PERMITTED", "2026-06-01")),
    ]:
        got = verdicts(auction_doc(bids, date), policy)
        for name, want in (("G", want_g), ("L", want_l)):
            assert (got[name]["verdict"], got[name].get("opening")) == want, (date, name, got[name])


# --- price caps ----------------------------------------------------------------------------------------

CAP_BOUNDARIES = [  # date, caps in yen per kW per hour (EPRX's per-30-min figures x 2)
    ("2025-06-01", {"primary": 39.02, "secondary1": 39.02, "composite": 39.02, "secondary2": 14.42,
                    "tertiary1": 14.42, "tertiary2": None}),
    ("2026-03-31", {"primary": 39.02, "secondary1": 39.02, "composite": 39.02, "secondary2": 14.42,
                    "tertiary1": 14.42, "tertiary2": None}),
    ("2026-04-01", {"primary": 30.0, "secondary1": 30.0, "composite": 30.0, "secondary2": 14.42,
                    "tertiary1": 14.42, "tertiary2": None}),
    ("2026-08-31", {"primary": 30.0, "secondary1": 30.0, "composite": 30.0, "secondary2": 14.42,
                    "tertiary1": 14.42, "tertiary2": None}),
    ("2026-09-01", {"primary": 20.0, "secondary1": 20.0, "composite": 20.0, "secondary2": 14.42,
                    "tertiary1": 14.42, "tertiary2": None}),
]


@pytest.mark.parametrize("date,caps", CAP_BOUNDARIES)
def test_price_cap_schedule_boundaries(date: str, caps: dict) -> None:
    single = [bid(f"B-{p}", products=(p,)) for p in ("primary", "secondary1", "secondary2", "tertiary1", "tertiary2")]
    composite = bid("B-composite", products=("secondary2", "tertiary1"))  # the composite cap, not min of its own
    listed = load_auction(auction_doc(single + [composite], date))
    auction = replace(listed, price_caps=effective_price_caps(listed)[0])  # the schedule's, as `clear` fills in
    for b in auction.bids:
        product = "composite" if b.is_composite else b.products[0]
        assert price_cap_yen_per_kw_h(auction, b) == pytest.approx(caps[product]) if caps[product] else \
            price_cap_yen_per_kw_h(auction, b) is None, (date, product)


def test_the_auctions_own_caps_override_and_are_complete() -> None:
    auction = load_auction(auction_doc([bid("A", products=("primary",)), bid("B", products=("tertiary1",)),
                                        bid("C", products=("primary", "secondary1"))], "2026-09-01",
                                       price_caps=[{"product": "primary", "yen_per_kw_h": 12.0}]))
    caps, source = effective_price_caps(auction)
    assert source == {"source": "auction"} and [(c.product, c.yen_per_kw_h) for c in caps] == [("primary", 12.0)]
    by_id = {b.id: b for b in auction.bids}
    assert price_cap_yen_per_kw_h(auction, by_id["A"]) == 12.0
    assert price_cap_yen_per_kw_h(auction, by_id["B"]) is None  # not listed: no cap
    assert price_cap_yen_per_kw_h(auction, by_id["C"]) == 12.0  # no composite cap: lowest of its products


def test_a_new_cap_is_a_data_edit(tmp_path: Path) -> None:
    schedule = default_policy().data["price_caps"]["schedule"] + [
        {"from": "2027-04-01", "label": "FY2027", "caps": {"primary": 5, "tertiary1": 7.21}}]
    path = tmp_path / "caps.json"
    path.write_text(json.dumps({"price_caps": {"schedule": schedule}}))
    doc = auction_doc([bid("P", products=("primary",), price=12.0), bid("S", products=("secondary1",), price=25.0)],
                      "2027-04-01")
    default = validate_auction(load_auction(doc)).to_document()
    modified = validate_auction(load_auction(doc), load_policy(path)).to_document()
    assert [b["clearing"] for b in default["bids"]] == ["ENTERS", "LEFT_OUT"]  # 20 / 20 per hour
    assert [b["clearing"] for b in modified["bids"]] == ["LEFT_OUT", "ENTERS"]  # 10 / none per hour
    assert modified["price_caps"]["schedule_entry"] == "FY2027"


def test_a_broken_policy_names_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"openings": [{"device_band": "HUGE", "from": "2026-13-01"}],
                                "rules": [{"id": "x", "verdict": "MAYBE", "when": {"colour": "red"}, "reason": "r"},
                                          {"id": "y", "verdict": "WRONG_CATEGORY", "reason": "r",
                                           "when": {"device_capacity_kw": {"ge": "1000"},
                                                    "category": {"before": "2026-01-01"}}}],
                                "monitoring": [{"id": "m", "flag": "F", "reason": "r", "term_ja": "t",
                                                "limit_yen_per_kw_h": "__import__('os')"}]}))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    text = str(err.value)
    for needle in ("openings[0].device_band", "openings[0].from", "rules[0].verdict", "rules[0].when.colour",
                   "rules[1].when.device_capacity_kw.ge", "rules[1].when.category.before",
                   "monitoring[0].limit_yen_per_kw_h"):
        assert needle in text, text


# --- monitoring ----------------------------------------------------------------------------------------

def flags_of(doc: dict) -> dict[str, list[tuple[str, str, float]]]:
    return {k: [(f["flag"], f["rule"], f["limit_yen_per_kw_h"]) for f in v["flags"]] for k, v in verdicts(doc).items()}


def test_lost_opportunity_2021_formula() -> None:
    """2021 guideline: limit = opportunity 2.0 + 20 yen/kWh × 10% × 5% × 3 h per 3-h block (0.3 yen/kW)
    → 0.1 yen/kW·h, so 2.1 yen/kW·h."""
    cost = {"marginal_cost_yen_per_kwh": 20.0, "opportunity_cost_yen_per_kw_h": 2.0}
    bids = [bid("AT", price=2.1, cost=cost), bid("ABOVE", price=2.11, cost=cost)]
    got = flags_of(auction_doc(bids, "2025-06-01", block_minutes=180))
    assert got["AT"] == []
    assert [(f, r) for f, r, _ in got["ABOVE"]] == [("PRICE_ABOVE_LOST_OPPORTUNITY", "lost-opportunity-2021")]
    assert got["ABOVE"][0][2] == pytest.approx(2.1)
    # from FY2026 the 2021 formula is out of force, and these bids lack the FY2026 inputs: no flag
    assert flags_of(auction_doc(bids, "2026-04-01", block_minutes=180))["ABOVE"] == []


def test_lost_opportunity_fy2026_formula() -> None:
    """FY2026: limit = opportunity 3.0 + 600,000 yen ÷ 100,000 kW = 6 yen/kW over the bid's 2 × 30 min
    = 1 h → 9.0 yen/kW·h."""
    cost = {"opportunity_cost_yen_per_kw_h": 3.0, "fixed_cost_ceiling_yen": 600_000, "expected_award_kw": 100_000,
            "marginal_cost_yen_per_kwh": 1000.0}
    bids = [bid("AT", price=9.0, cost=cost, blocks=(0, 1)), bid("ABOVE", price=9.5, cost=cost, blocks=(0, 1)),
            bid("ONE", price=9.5, cost=cost, blocks=(0,))]  # over 0.5 h: limit 3 + 12 = 15
    got = flags_of(auction_doc(bids, "2026-04-01"))
    assert got["AT"] == [] and got["ONE"] == []
    assert got["ABOVE"] == [("PRICE_ABOVE_LOST_OPPORTUNITY", "lost-opportunity-fy2026", pytest.approx(9.0))]
    # the day before, the 2021 formula is in force: 3.0 + 1000 × 0.005 = 8.0
    before = flags_of(auction_doc(bids, "2026-03-31"))
    assert before["AT"] == [("PRICE_ABOVE_LOST_OPPORTUNITY", "lost-opportunity-2021", pytest.approx(8.0))]


def test_substitute_may_not_exceed_its_original() -> None:
    bids = [bid("ORIG", price=5.0), bid("SUB-UP", price=6.0, cost={"substitutes": "ORIG"}),
            bid("SUB-EQ", price=5.0, cost={"substitutes": "ORIG"})]
    got = flags_of(auction_doc(bids))
    assert got["SUB-UP"] == [("SUBSTITUTE_ABOVE_ORIGINAL", "substitute-price", 5.0)]
    assert got["SUB-EQ"] == [] and got["ORIG"] == []
    # a flag, not a rejection
    assert all(b["verdict"] == "ELIGIBLE" for b in verdicts(auction_doc(bids)).values())
