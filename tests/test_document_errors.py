"""Malformed auction documents are refused before solving: every problem at once, each naming the path
and the offending value or id; the CLI exits 2 with one line per problem and never a traceback."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CASES_DIR

from dkw.clearing.document import InvalidAuction, load_auction, parse_document

REPO = Path(__file__).resolve().parent.parent


def base() -> dict:
    """A small valid auction with lines, an interface, resources, a parent link and a group."""
    doc = json.loads((CASES_DIR / "11-cap-dc-interface.json").read_text())
    doc["resources"] = [{"id": "unit-1", "area": "kansai", "capacity_kw": 20000, "startup_cost_yen": 1000},
                        {"id": "pool", "area": "shikoku", "capacity_kw_by_block": [4000]}]
    doc["bids"][2]["resource"] = "unit-1"
    doc["bids"][3]["parent"] = "ks"
    doc["bids"][4]["resource"] = "pool"
    doc["bids"][4]["group"] = "G1"
    doc["bids"][5]["group"] = "G1"
    return doc


def set_path(doc: dict, path: str, value) -> dict:
    target = doc
    keys = path.split("/")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


def mutate(path: str, value) -> Callable[[dict], dict]:
    return lambda doc: set_path(doc, path, value)


def append(path: str, item_from: str) -> Callable[[dict], dict]:
    """Append a copy of an existing list item (e.g. a bid) to the list at `path`."""
    def run(doc: dict) -> dict:
        items = doc[path]
        items.append(copy.deepcopy(items[int(item_from)]))
        return doc
    return run


CASES: list[tuple[str, Callable[[dict], dict], str]] = [
    ("duplicate bid id", mutate("bids/1/id", "cb"), "bids[1].id: duplicate bid id 'cb'"),
    ("duplicate line id", mutate("lines/1/id", "chubu-kansai"), "lines[1].id: duplicate line id 'chubu-kansai'"),
    ("duplicate resource id", mutate("resources/1/id", "unit-1"), "resources[1].id: duplicate resource id 'unit-1'"),
    ("duplicate area", mutate("areas/1", "chubu"), "areas[1]: duplicate 'chubu'"),
    ("duplicate requirement", append("requirements", "0"),
     "requirements[3]: duplicate requirement for area 'kansai', product 'tertiary1', block 0"),
    ("duplicate interface id", lambda d: d["interfaces"].append(copy.deepcopy(d["interfaces"][0])) or d,
     "interfaces[1].id: duplicate interface id"),
    ("unknown area in line", mutate("lines/0/from_area", "mars"), "lines[0].from_area: unknown area 'mars'"),
    ("unknown area in bid", mutate("bids/0/area", "mars"), "bids[0].area: unknown area 'mars'"),
    ("unknown product in bid", mutate("bids/0/products", ["tertiary9"]), "bids[0].products[0]: unknown product 'tertiary9'"),
    ("unknown product in auction", mutate("products", ["primary", "fast"]), "products[1]: unknown product 'fast'"),
    ("unknown resource", mutate("bids/0/resource", "nowhere"), "bids[0].resource: unknown resource 'nowhere'"),
    ("unknown parent", mutate("bids/0/parent", "ghost"), "bids[0].parent: unknown bid 'ghost'"),
    ("unknown line in interface", mutate("interfaces/0/members/0/line", "tokyo-mars"),
     "interfaces[0].members[0].line: unknown line 'tokyo-mars'"),
    ("own parent", mutate("bids/0/parent", "cb"), "bids[0].parent: bid 'cb' is its own parent"),
    ("parent cycle", mutate("bids/2/parent", "ks-prim"), "bids[2].parent: parent cycle ks -> ks-prim -> ks"),
    ("bid block out of range", mutate("bids/0/blocks", [0, 1]), "bids[0].blocks[1]: block 1 out of range 0..0"),
    ("requirement block out of range", mutate("requirements/0/block", 5), "requirements[0].block: block 5 out of range 0..0"),
    ("negative kw", mutate("bids/0/kw", -10), "bids[0].kw: -10 must be positive"),
    ("negative requirement", mutate("requirements/0/kw", -1), "requirements[0].kw: -1 is negative"),
    ("non-numeric price", mutate("bids/0/price_yen_per_kw_h", "cheap"),
     "bids[0].price_yen_per_kw_h: expected a number, got 'cheap'"),
    ("negative price", mutate("bids/0/price_yen_per_kw_h", -2.5), "bids[0].price_yen_per_kw_h: -2.5 is negative"),
    ("boolean quantity", mutate("bids/0/kw", True), "bids[0].kw: expected a number, got true"),
    ("negative line capacity", mutate("lines/0/forward_kw", -5), "lines[0].forward_kw: -5 is negative"),
    ("min_kw above kw", mutate("bids/0/min_kw", 12000), "bids[0].min_kw: 12000 exceeds kw 10000"),
    ("fractional kw", mutate("bids/0/kw", 1000.5), "bids[0].kw: 1000.5 is not a whole number"),
    ("empty products", mutate("products", []), "products: is empty"),
    ("empty bid products", mutate("bids/0/products", []), "bids[0].products: is empty"),
    ("empty bid blocks", mutate("bids/0/blocks", []), "bids[0].blocks: expected a non-empty list of blocks, got []"),
    ("zero blocks", mutate("blocks", 0), "blocks: 0 must be positive"),
    ("per-block list too short", mutate("resources/1/capacity_kw_by_block", []),
     "resources[1].capacity_kw_by_block: has 0 entries, expected one per block (1)"),
    ("per-block line list too long", mutate("lines/0/forward_kw_by_block", [1, 2]),
     "lines[0].forward_kw_by_block: has 2 entries, expected one per block (1)"),
    ("bid and resource in different areas", mutate("bids/0/resource", "unit-1"),
     "bids[0].resource: resource 'unit-1' is in area 'kansai', the bid in 'chubu'"),
    ("unknown category", mutate("bids/0/category", "NUCLEAR"), "bids[0].category: unknown value 'NUCLEAR'"),
    ("unknown direction", mutate("interfaces/0/members/0/direction", "sideways"),
     "interfaces[0].members[0].direction: unknown value 'sideways'"),
    ("unknown cap mode", mutate("price_cap_mode", "IGNORE"), "price_cap_mode: unknown value 'IGNORE'"),
    ("unknown meter kind", mutate("bids/0/metering", {"point": "DEVICE", "meter": "SMART"}),
     "bids[0].metering.meter: unknown value 'SMART'"),
    ("unknown field on a bid", mutate("bids/0/colour", "red"), "bids[0].colour: unknown field"),
    ("unknown top-level field", mutate("currency", "JPY"), "currency: unknown field"),
    ("missing required field", lambda d: d["bids"][0].pop("kw") and d, "bids[0].kw: missing required field"),
    ("wrong format", mutate("format", "jp-balancing-auction/9"), "format: unknown format 'jp-balancing-auction/9'"),
    ("bad trading date", mutate("trading_date", "2026-13-01"), "trading_date: '2026-13-01' is not an ISO 8601 date"),
    ("line to itself", mutate("lines/0/to_area", "chubu"), "lines[0].to_area: line connects area 'chubu' to itself"),
    ("unknown substitute", mutate("bids/0/cost", {"substitutes": "nobody"}), "bids[0].cost.substitutes: unknown bid 'nobody'"),
]


def test_the_base_document_is_valid() -> None:
    auction = load_auction(base())
    assert len(auction.bids) == 7 and auction.bids[3].parent == "ks"


@pytest.mark.parametrize("name,change,message", CASES, ids=[c[0] for c in CASES])
def test_malformed_document_is_refused(name: str, change, message: str) -> None:
    with pytest.raises(InvalidAuction) as info:
        load_auction(change(base()))
    texts = [str(p) for p in info.value.problems]
    assert any(t.startswith(message) for t in texts), texts


def test_every_problem_is_reported_at_once() -> None:
    doc = base()
    doc["bids"][0]["min_kw"] = 99999
    doc["lines"][1]["to_area"] = "mars"
    doc["requirements"][2]["block"] = 7
    with pytest.raises(InvalidAuction) as info:
        load_auction(doc)
    paths = {p.path for p in info.value.problems}
    assert {"bids[0].min_kw", "lines[1].to_area", "requirements[2].block"} <= paths


@pytest.mark.parametrize("text,message", [
    ("[1, 2]", "the document must be a JSON object, got list"),
    ('"auction"', "the document must be a JSON object, got str"),
    ("{not json", "not valid JSON"),
])
def test_not_a_json_object(text: str, message: str) -> None:
    with pytest.raises(InvalidAuction) as info:
        load_auction(parse_document(text))
    assert str(info.value).startswith(message) or message in str(info.value)


def run_dkw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dkw", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_refuses_bad_document_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    doc = base()
    doc["bids"][0]["min_kw"] = 12000
    doc["lines"][0]["from_area"] = "mars"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    proc = run_dkw("clear", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "bids[0].min_kw: 12000 exceeds kw 10000" in proc.stderr
    assert "lines[0].from_area: unknown area 'mars'" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("content", ["[]", "", "\xff\xfe"])
def test_cli_refuses_non_object_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content.encode("latin-1"))
    proc = run_dkw("validate", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.strip()


def test_cli_missing_file_is_bad_input(tmp_path: Path) -> None:
    proc = run_dkw("clear", str(tmp_path / "absent.json"))
    assert proc.returncode == 2 and "cannot read" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_bad_gap_is_bad_input() -> None:
    proc = run_dkw("clear", str(CASES_DIR / "01-merit-order.json"), "--gap", "2")
    assert proc.returncode == 2 and "gap" in proc.stderr and "Traceback" not in proc.stderr
