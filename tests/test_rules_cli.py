"""`dkw validate` with the market rules: the JSON document, the table, policy overrides, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import CASES_DIR
from test_rules import DEVICE_PRIMARY, auction_doc, bid

from dkw.cli import main


def write(tmp_path: Path, name: str, doc: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def mixed_auction() -> dict:
    early = dict(DEVICE_PRIMARY, device_capacity_kw=800, meter="SPECIAL_CASE")
    return auction_doc([
        bid("OK", "DEVICE_POINT_LIST_PATTERN", metering=DEVICE_PRIMARY),
        bid("METER", "DEVICE_POINT_LIST_PATTERN", metering=early),
        bid("CAT", "LIST_PATTERN", metering=DEVICE_PRIMARY),
        bid("SUB", cost={"substitutes": "OK"}, price=6.0),
        bid("CAP", products=("tertiary1",), price=20.0),
    ], "2026-10-01")


def test_validate_json(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "a.json", mixed_auction())
    assert main(["validate", path, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    got = {b["bid"]: b for b in doc["bids"]}
    assert {k: v["verdict"] for k, v in got.items()} == {
        "OK": "ELIGIBLE", "METER": "NEEDS_SPECIFIED_METER", "CAT": "WRONG_CATEGORY", "SUB": "ELIGIBLE",
        "CAP": "ELIGIBLE"}
    assert got["SUB"]["flags"][0]["flag"] == "SUBSTITUTE_ABOVE_ORIGINAL"
    assert got["CAP"]["clearing"] == "LEFT_OUT" and got["CAP"]["left_out_because"]["verdict"] == "PRICE_ABOVE_CAP"
    assert doc["summary"]["by_verdict"] == {"ELIGIBLE": 3, "NEEDS_SPECIFIED_METER": 1, "WRONG_CATEGORY": 1}
    assert doc["summary"]["left_out"] == 3 and doc["summary"]["flagged_bids"] == 1
    assert doc["price_caps"]["source"] == "policy" and doc["price_caps"]["schedule_entry"] == "from September 2026"


def test_validate_table_and_policy_override(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "a.json", mixed_auction())
    assert main(["validate", path, "--problems"]) == 0
    out = capsys.readouterr().out
    assert "NEEDS_SPECIFIED_METER" in out and "特定計量器" in out and "FLAG SUBSTITUTE_ABOVE_ORIGINAL" in out
    assert "\nOK " not in out  # --problems hides the clean bids
    policy = write(tmp_path, "p.json", {"device_point_table": {"marks": {"△": {"unless": {"meter": ["SPECIFIED", "TSO",
                                                                                                  "SPECIAL_CASE"]}}}}})
    assert main(["validate", path, "--json", "--policy", policy]) == 0
    got = {b["bid"]: b["verdict"] for b in json.loads(capsys.readouterr().out)["bids"]}
    assert got["METER"] == "ELIGIBLE"


def test_validate_bad_inputs_exit_2(tmp_path: Path, capsys) -> None:
    broken = mixed_auction()
    broken["bids"][0]["metering"]["meter"] = "SMART"
    assert main(["validate", write(tmp_path, "b.json", broken)]) == 2
    assert "bids[0].metering.meter" in capsys.readouterr().err
    good = write(tmp_path, "a.json", mixed_auction())
    assert main(["validate", good, "--policy", write(tmp_path, "p.json", {"switches": {"nope": True},
                                                                         "rules": [{"id": "r", "verdict": "ELIGIBLE",
                                                                                    "when": {}, "reason": "x"}]})]) == 2
    assert "rules[0].verdict" in capsys.readouterr().err
    assert main(["validate", good, "--policy", str(tmp_path / "missing.json")]) == 2


def test_shared_cases_are_all_eligible(capsys) -> None:
    """The generated cases' device-point bids (HIGH 800 kW behind HIGH 1,800 kW, specified meter, smart
    meter, 2026-10-01) are eligible: the shared optima stand under the default policy."""
    for path in sorted(CASES_DIR.glob("*.json")):
        if path.name == "expected.json":
            continue
        assert main(["validate", str(path), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["summary"]["eligible"] == doc["summary"]["bids"], path.name


EXAMPLES = Path(__file__).parent.parent / "examples"


def test_the_example_shows_every_verdict_and_the_override_changes_them(capsys) -> None:
    """examples/market-rules.json has one bid per verdict; examples/policy-override.json opens 1–2 MW
    device-point generation, switches ③ on and caps tertiary1 at 1.5 yen/kW·30 min."""
    assert main(["validate", str(EXAMPLES / "market-rules.json"), "--json"]) == 0
    default = {b["bid"]: b for b in json.loads(capsys.readouterr().out)["bids"]}
    assert {b["verdict"] for b in default.values()} == {
        "ELIGIBLE", "NEEDS_SPECIFIED_METER", "WRONG_CATEGORY", "NOT_YET_PERMITTED", "NOT_APPLICABLE"}
    assert main(["validate", str(EXAMPLES / "market-rules.json"), "--json",
                 "--policy", str(EXAMPLES / "policy-override.json")]) == 0
    override = {b["bid"]: b for b in json.loads(capsys.readouterr().out)["bids"]}
    assert [b for b in default if default[b]["verdict"] != override[b]["verdict"]] == ["dp-gen-1500", "dp-primary"]
    assert override["plain"]["left_out_because"]["verdict"] == "PRICE_ABOVE_CAP"
