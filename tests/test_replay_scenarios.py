"""Replay scenarios (issue 6) on a hand-made two-area auction whose optimum under each scenario is known,
each cleared and checked by the independent verifier (`run_task`); parsing; the EPRX reader; the CLI."""

from __future__ import annotations

import copy
import json

import pytest

from dkw.clearing.replay.eprx import EprxFormatError, read_eprx_csv, write_eprx_csv
from dkw.clearing.replay.runner import ReplayTask, run_task
from dkw.clearing.replay.scenarios import ScenarioError, file_slug, parse_scenario
from dkw.cli import main

# tokyo needs 100 kW for one 30-minute block (0.5 h). chubu's cheap low-voltage pool (4 yen/kW·h) can send
# 50 kW over the line; tokyo has 60 kW at 10 and 100 kW at 20. Optimum: 50 from chubu + 50 at 10 = 350 yen.
TINY = {
    "format": "jp-balancing-auction/1", "auction_id": "tiny", "trading_date": "2026-10-05",
    "blocks": 1, "block_minutes": 30, "areas": ["tokyo", "chubu"], "products": ["tertiary1"],
    "shortfall_price_yen_per_kw_h": 1000.0,
    "price_caps": [{"product": "tertiary1", "yen_per_kw_h": 30.0}],
    "lines": [{"id": "tokyo-chubu", "from_area": "tokyo", "to_area": "chubu", "forward_kw": 50, "backward_kw": 50}],
    "requirements": [{"area": "tokyo", "product": "tertiary1", "block": 0, "kw": 100}],
    "bids": [
        {"id": "a1", "area": "tokyo", "products": ["tertiary1"], "blocks": [0], "kw": 60, "price_yen_per_kw_h": 10.0,
         "category": "SINGLE_GENERATOR"},
        # FY2026 monitoring limit: 1 + 100 / 100 / 0.5 h = 3 yen/kW·h
        {"id": "b1", "area": "chubu", "products": ["tertiary1"], "blocks": [0], "kw": 80, "price_yen_per_kw_h": 4.0,
         "category": "LOW_VOLTAGE_AGGREGATE",
         "cost": {"opportunity_cost_yen_per_kw_h": 1.0, "fixed_cost_ceiling_yen": 100, "expected_award_kw": 100}},
        {"id": "a2", "area": "tokyo", "products": ["tertiary1"], "blocks": [0], "kw": 100, "price_yen_per_kw_h": 20.0,
         "category": "LIST_PATTERN"},
    ],
}


def cleared(scenario: str, doc: dict | None = None):
    outcome = run_task(ReplayTask("2026-10-05", scenario, None, "0" * 64, document=doc or TINY))  # verifies or raises
    return outcome.result_document, outcome.record


@pytest.mark.parametrize("scenario, objective, awards", [
    ("baseline", 350.0, {"a1": 50, "b1": 50}),
    ("no-cross-area", 700.0, {"a1": 60, "a2": 40}),
    ("without:low-voltage", 700.0, {"a1": 60, "a2": 40}),
    ("price-rule", 325.0, {"a1": 50, "b1": 50}),
    ("reduction:0.5", 100.0, {"b1": 50}),
    ("no-cross-area+cap:8", 300.0 + 1000 * 0.5 * 40, {"a1": 60}),
])
def test_scenario_clears_to_the_hand_computed_optimum(scenario, objective, awards):
    result, record = cleared(scenario)
    assert result["status"] == "OPTIMAL"
    assert result["objective_yen"] == pytest.approx(objective)
    assert {a["bid"]: a["kw"] for a in result["awards"]} == awards
    assert sum(r["procurement_cost_yen"] for r in record["rows"]) == pytest.approx(result["procurement_cost_yen"])
    assert result["replay"]["scenario"] == scenario


def test_left_out_bids_are_reported_with_the_scenario_as_reason():
    result, _ = cleared("without:low-voltage")
    assert [(r["bid"], r["verdict"]) for r in result["rejected_bids"]] == [("b1", "LEFT_OUT_BY_SCENARIO")]
    result, _ = cleared("no-cross-area+cap:8")
    assert [(r["bid"], r["verdict"]) for r in result["rejected_bids"]] == [("a2", "PRICE_ABOVE_CAP")]


def test_scenarios_change_a_copy_never_the_input():
    before = copy.deepcopy(TINY)
    for name in ("no-cross-area", "reduction:0.9", "cap:10", "without:device-point,LIST_PATTERN", "price-rule"):
        parse_scenario(name).apply(TINY)
    assert TINY == before


def test_steps_do_what_their_names_say():
    doc = parse_scenario("no-cross-area").apply(TINY).document
    assert [(line["forward_kw"], line["backward_kw"]) for line in doc["lines"]] == [(0, 0)]
    assert parse_scenario("reduction:0.9").apply(TINY).document["requirements"][0]["kw"] == pytest.approx(90)
    # cap:X is per 30 minutes: 10 円/ΔkW·30分 = 20 yen/kW·h; tertiary1's own cap (30) is lowered to it
    caps = {c["product"]: c["yen_per_kw_h"] for c in parse_scenario("cap:10").apply(TINY).document["price_caps"]}
    assert caps == {"tertiary1": 20.0}
    two = dict(TINY, products=["primary", "tertiary1"],
               price_caps=[{"product": "primary", "yen_per_kw_h": 30.0}, {"product": "tertiary1", "yen_per_kw_h": 14.42}])
    caps = {c["product"]: c["yen_per_kw_h"] for c in parse_scenario("cap:10").apply(two).document["price_caps"]}
    assert caps == {"primary": 20.0, "tertiary1": 14.42, "composite": 20.0}
    inp = parse_scenario("without:device-point,low-voltage").apply(TINY)
    assert [r.bid for r in inp.left_out] == ["b1"]
    repriced = {b["id"]: b["price_yen_per_kw_h"] for b in parse_scenario("price-rule").apply(TINY).document["bids"]}
    assert repriced == {"a1": 10.0, "b1": pytest.approx(3.0), "a2": 20.0}


def test_price_rule_uses_the_formula_in_force_and_holds_substitutes_to_their_original():
    # 2021 guideline (before FY2026): limit = opportunity + marginal cost × 10% × 5% × 3 h / 3 h
    old = copy.deepcopy(TINY)
    old["trading_date"] = "2025-10-06"
    old["bids"][0]["cost"] = {"opportunity_cost_yen_per_kw_h": 7.0, "marginal_cost_yen_per_kwh": 20.0}
    old["bids"][2]["cost"] = {"substitutes": "a1"}
    prices = {b["id"]: b["price_yen_per_kw_h"] for b in parse_scenario("price-rule").apply(old).document["bids"]}
    assert prices["a1"] == pytest.approx(7.0 + 20.0 * 0.10 * 0.05)  # 7.1
    assert prices["a2"] == pytest.approx(prices["a1"])  # a substitute at most its original's price
    assert prices["b1"] == 4.0  # its cost data serve the FY2026 formula only: not judged, price kept


def test_composition_and_names():
    assert parse_scenario("no-cross-area+cap:10").name == "no-cross-area+cap:10"
    assert (parse_scenario("no-cross-area") + parse_scenario("cap:10")).name == "no-cross-area+cap:10"
    assert parse_scenario("baseline").is_baseline and parse_scenario("baseline+baseline").name == "baseline"
    assert file_slug("no-cross-area+cap:10") == "no-cross-area+cap_10"
    for bad in ("cap", "cap:-1", "cap:x", "reduction:0", "without:SOLAR", "no-cross", "a++b", ""):
        with pytest.raises(ScenarioError):
            parse_scenario(bad)


def test_cli_refuses_bad_input_before_clearing(tmp_path, capsys):
    (tmp_path / "day.json").write_text(json.dumps(TINY))
    assert main(["replay", str(tmp_path), "--out", str(tmp_path / "out"), "-s", "cap:ten"]) == 2
    assert "cap:ten" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "not a directory" in capsys.readouterr().err
    broken = dict(TINY, bids=[dict(TINY["bids"][0], min_kw=100)])
    (tmp_path / "day.json").write_text(json.dumps(broken))
    assert main(["replay", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "bids[0].min_kw: 100 exceeds kw 60" in capsys.readouterr().err
    assert not (tmp_path / "out" / "days").exists()


def test_cli_replays_a_day_and_reports(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "day.json").write_text(json.dumps(TINY))
    code = main(["replay", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "-s", "no-cross-area", "-j", "1"])
    assert code == 0, capsys.readouterr().err
    assert "2 cleared" in capsys.readouterr().out
    lines = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert lines[1].startswith("2026-10-05,baseline,tokyo,tertiary1,100,160,50,100,0,250,10,10,10,0")
    assert lines[3].startswith("2026-10-05,no-cross-area,tokyo,tertiary1,100,160,100,100,0,700,10,20,")
    assert lines[3].endswith(",450")
    assert (tmp_path / "out" / "report.md").is_file()


def test_a_verification_failure_fails_the_day_loudly(tmp_path, monkeypatch, capsys):
    """The engine's result is real; only the checker's verdict is replaced, to reach the failure path."""
    import dkw.clearing.replay.runner as runner

    monkeypatch.setattr(runner, "verify_result", lambda *a, **k: ["balance ('tokyo', 'tertiary1', 0): tampered"])
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "day.json").write_text(json.dumps(TINY))
    assert main(["replay", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "-j", "1"]) == 1
    err = capsys.readouterr().err
    assert "2026-10-05 baseline: VERIFICATION FAILED (1 problems): balance ('tokyo', 'tertiary1', 0): tampered" in err
    assert not (tmp_path / "out" / "days" / "2026-10-05").exists()


def test_eprx_reader_refuses_what_does_not_fit_the_layout(tmp_path):
    good = tmp_path / "SYNTHETIC.csv"
    values = {("2026-10-05", 0, "tokyo", "requirement_mw"): 12.5, ("2026-10-05", 0, "chubu", "requirement_mw"): None}
    write_eprx_csv(good, "SYNTHETIC test", "速報値", "2026/10", "tertiary1", 8, values)
    table = read_eprx_csv(good)
    assert table.values[("2026-10-05", 0, "tokyo", "requirement_mw")] == 12.5
    assert table.values[("2026-10-05", 0, "chubu", "requirement_mw")] is None
    assert table.status == "速報値" and table.synthetic
    text = good.read_bytes().decode("cp932")
    cases = {
        "no E line": text.replace("E\r\n", ""),
        "expected a key YYYYMMDDBnn": text.replace("20261005B01", "2026-10-05B1"),
        "out of range": text.replace("20261005B01", "20261005B09"),
        "unknown area": text.replace("東京", "東京都"),
        "is not a number": text.replace(",12.5,", ",12.5MW,"),
    }
    for message, broken in cases.items():
        bad = tmp_path / "bad.csv"
        bad.write_bytes(broken.encode("cp932"))
        with pytest.raises(EprxFormatError, match=message):
            read_eprx_csv(bad)
    bad.write_bytes(text.encode("utf-8"))
    with pytest.raises(EprxFormatError):
        read_eprx_csv(bad)


def test_summary_and_report_cover_every_scenario_in_the_output(tmp_path, capsys):
    """Two runs into one --out with different scenarios: the second run's summary and report still hold
    the first run's scenario, whose results are on disk."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "day.json").write_text(json.dumps(TINY))
    out = tmp_path / "out"
    assert main(["replay", str(tmp_path / "in"), "--out", str(out), "-s", "no-cross-area", "-j", "1"]) == 0
    assert main(["replay", str(tmp_path / "in"), "--out", str(out), "-s", "price-rule", "-j", "1"]) == 0
    capsys.readouterr()
    scenarios = {line.split(",")[1] for line in (out / "summary.csv").read_text().splitlines()[1:]}
    assert scenarios == {"baseline", "no-cross-area", "price-rule"}
    report = (out / "report.md").read_text()
    assert "no-cross-area" in report and "price-rule" in report and "earlier run" in report
