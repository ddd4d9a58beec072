"""The independent checker accepts real results and catches each kind of violation in a tampered one."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CASES_DIR, clear_and_verify

from dkw.clearing.document import load_auction_file
from dkw.clearing.verify import verify_result

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cleared() -> dict[str, tuple]:
    out = {}
    for name in ("03-list-pattern", "04-startup-linked", "05-cross-area", "07-shortfall", "11-cap-dc-interface"):
        auction = load_auction_file(CASES_DIR / f"{name}.json")
        out[name] = (auction, clear_and_verify(auction).to_document())
    return out


def tamper(doc: dict, change) -> dict:
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


def award(doc: dict, bid: str) -> dict:
    return next(a for a in doc["awards"] if a["bid"] == bid)


TAMPERINGS = [
    ("05-cross-area", lambda d: d["awards"].pop(0), "below requirement"),
    ("05-cross-area", lambda d: award(d, "tk-1").update(kw=99999), "above its"),
    ("05-cross-area", lambda d: d["flows"][0].update(kw=d["flows"][0]["kw"] * 10), "above capacity"),
    ("05-cross-area", lambda d: d.update(objective_yen=d["objective_yen"] - 1), "objective_yen: reported"),
    ("05-cross-area", lambda d: award(d, "tk-1").update(payment_yen=1.0), "payment"),
    ("03-list-pattern", lambda d: d["awards"].append({"bid": "p2", "kw": 8000, "payment_yen": 0}), "at most one"),
    ("04-startup-linked", lambda d: d["awards"].remove(award(d, "start")), "without its parent start"),
    ("04-startup-linked", lambda d: d.update(startup_cost_yen=0), "startup_cost_yen: reported"),
    ("04-startup-linked", lambda d: award(d, "lower").update(kw=0.5), "below its minimum"),
    ("07-shortfall", lambda d: d["shortfalls"].clear(), "below requirement"),
    ("11-cap-dc-interface", lambda d: d["awards"].append({"bid": "sk-prim-capped", "kw": 1, "payment_yen": 25}),
     "left out of the clearing"),
    ("11-cap-dc-interface", lambda d: d["flows"].append(
        {"line": "kansai-shikoku", "direction": "forward", "product": "primary", "block": 0, "kw": 1}), "does not carry primary"),
]


@pytest.mark.parametrize("name,change,message", TAMPERINGS, ids=[f"{t[0]}:{t[2]}" for t in TAMPERINGS])
def test_tampered_result_is_caught(cleared, name: str, change, message: str) -> None:
    auction, doc = cleared[name]
    problems = verify_result(auction, tamper(doc, change))
    assert any(message in p for p in problems), problems


def test_interface_limit_is_checked(cleared) -> None:
    auction, doc = cleared["11-cap-dc-interface"]

    def overload(d: dict) -> None:
        d["flows"] = [f for f in d["flows"] if f["line"] not in ("chubu-kansai", "hokuriku-kansai")]
        d["flows"] += [{"line": line, "direction": "forward", "product": "tertiary1", "block": 0, "kw": 7000}
                       for line in ("chubu-kansai", "hokuriku-kansai")]

    assert any("interface" in p for p in verify_result(auction, tamper(doc, overload)))


def test_dkw_verify_command(cleared, tmp_path: Path) -> None:
    auction, doc = cleared["05-cross-area"]
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(doc))
    bad.write_text(json.dumps(tamper(doc, lambda d: d["awards"].pop(0))))
    case = str(CASES_DIR / "05-cross-area.json")
    ok = subprocess.run([sys.executable, "-m", "dkw", "verify", case, str(good)], cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0 and "feasible" in ok.stdout
    fail = subprocess.run([sys.executable, "-m", "dkw", "verify", case, str(bad)], cwd=REPO, capture_output=True, text=True)
    assert fail.returncode == 1 and "below requirement" in fail.stdout
