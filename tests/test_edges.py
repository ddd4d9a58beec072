"""Nothing lost at the edges: plausibility limits, the output path checked before solving, `-` for
standard input, `dkw --version`, `validate --json` on a broken document, a console that cannot show `·`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CASES_DIR

from dkw.clearing import limits
from dkw.clearing.document import InvalidAuction, load_auction
from dkw.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "auction.json"


def example() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def problems_of(doc: dict) -> dict[str, str]:
    with pytest.raises(InvalidAuction) as exc:
        load_auction(doc)
    return {p.path: p.message for p in exc.value.problems}


@pytest.mark.parametrize(("path", "value", "limit"), [
    ("bids/0/kw", 1e30, limits.MAX_BID_KW),
    ("bids/0/min_kw", limits.MAX_BID_KW + 1, limits.MAX_BID_KW),
    ("bids/0/price_yen_per_kw_h", 2e6, limits.MAX_PRICE_YEN_PER_KW_H),
    ("requirements/0/kw", 1e18, limits.MAX_CAPACITY_KW),
    ("requirements/0/max_import_kw", 1e9, limits.MAX_CAPACITY_KW),
    ("lines/0/forward_kw", 1e9, limits.MAX_CAPACITY_KW),
    ("shortfall_price_yen_per_kw_h", 1e7, limits.MAX_PRICE_YEN_PER_KW_H),
])
def test_implausible_figures_are_refused_with_the_field_named(path: str, value: float, limit: float) -> None:
    doc = example()
    *outer, last = path.split("/")
    target = doc
    for key in outer:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[last] = value
    if last == "min_kw":
        target["kw"] = value  # min_kw ≤ kw holds: only the limit is broken
    got = problems_of(doc)
    where = ".".join(f"[{k}]" if k.isdigit() else k for k in path.split("/")).replace(".[", "[")
    assert where in got, got
    assert f"{limit:,}" in got[where] and "plausibility" in got[where]


def test_by_block_capacities_and_resource_limits_are_checked_per_entry() -> None:
    doc = example()
    doc["resources"] = [{"id": "r", "area": doc["areas"][0], "capacity_kw_by_block": [1e12] * doc["blocks"]}]
    got = problems_of(doc)
    assert "resources[0].capacity_kw_by_block[0]" in got
    assert len([p for p in got if p.startswith("resources[0]")]) == doc["blocks"]


@pytest.mark.parametrize("minutes", [45, 60, 15])
def test_block_minutes_other_than_30_or_180_are_refused(minutes: int) -> None:
    doc = example()
    doc["block_minutes"] = minutes
    assert "not an allowed block length" in problems_of(doc)["block_minutes"]


def test_limits_at_the_boundary_are_accepted() -> None:
    doc = example()
    doc["bids"][0]["kw"] = limits.MAX_BID_KW
    doc["requirements"][0]["kw"] = limits.MAX_CAPACITY_KW
    doc["block_minutes"] = 180
    load_auction(doc)


def test_every_shared_case_is_within_the_limits() -> None:
    for path in sorted(CASES_DIR.glob("*.json")):
        if path.name != "expected.json":
            assert limits.plausibility_problems(json.loads(path.read_text())) == [], path.name


def test_output_path_checked_before_solving(tmp_path: Path, capsys) -> None:
    assert main(["clear", str(EXAMPLE), "-o", str(tmp_path / "missing" / "r.json"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "nothing was cleared" in err
    assert main(["clear", str(EXAMPLE), "-o", str(tmp_path), "-q"]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_dash_reads_standard_input(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(EXAMPLE.read_bytes())))
    assert main(["clear", "-", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["auction_id"] == example()["auction_id"] and doc["status"] == "OPTIMAL"
    from dkw.clearing.document import document_sha256

    assert doc["input_sha256"] == document_sha256(example())  # of the document's RFC 8785 form, not its bytes


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("dkw ") and "HiGHS" in out and "jp-balancing-result/1" in out


@pytest.mark.parametrize("text", ['{"format": 1}', "[1, 2]", "{not json"])
def test_validate_json_reports_problems_as_an_object(tmp_path: Path, capsys, text: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    assert main(["validate", "--json", str(path)]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False and doc["problems"]
    assert all(set(p) == {"path", "message"} for p in doc["problems"])


def test_validate_json_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["validate", "--json", str(tmp_path / "nope.json")]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False and "cannot read" in doc["problems"][0]["message"]


def test_validate_json_valid_document(capsys) -> None:
    assert main(["validate", "--json", str(EXAMPLE)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True and doc["problems"] == [] and doc["bids"]


def test_cp932_console_does_not_crash() -> None:
    """`dkw validate` prints `·` (yen/kW·h), which cp932 cannot encode; it falls back, and JSON on
    stdout is escaped rather than mangled."""
    env = {**os.environ, "PYTHONIOENCODING": "cp932"}
    run = subprocess.run([sys.executable, "-m", "dkw", "validate", str(EXAMPLE)], capture_output=True, env=env,
                         cwd=REPO, timeout=60)
    assert run.returncode == 0, run.stderr.decode("cp932", "replace")
    assert "Traceback" not in run.stderr.decode("cp932", "replace")
    assert "yen/kW・h" in run.stdout.decode("cp932")
    run = subprocess.run([sys.executable, "-m", "dkw", "validate", "--json", str(REPO / "examples" / "market-rules.json")],
                         capture_output=True, env=env, cwd=REPO, timeout=60)
    assert run.returncode == 0
    assert json.loads(run.stdout.decode("ascii"))["valid"] is True
