"""The JSON Schemas (`dkw schema auction|result`) are generated from the code, accept every example and
every shared case, refuse what the loader refuses, and the docs' field tables are the schema's own."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import jsonschema
import pytest
from conftest import CASES_DIR, clear_and_verify

from dkw.clearing import document
from dkw.clearing.document import InvalidAuction, load_auction
from dkw.clearing.schema import FIELD_DOCS, auction_schema, markdown_tables, result_schema, type_hint_kind
from dkw.v1 import clearing_pb2 as pb

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@functools.cache
def validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = auction_schema() if kind == "auction" else result_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def assert_valid(kind: str, doc: dict) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(kind).iter_errors(doc)]
    assert errors == [], errors[:5]


def auction_files() -> list[Path]:
    files = sorted(CASES_DIR.glob("*.json")) + sorted(EXAMPLES.glob("*.json")) + sorted(EXAMPLES.glob("replay-week/*.json"))
    return [f for f in files if f.name != "expected.json" and "policy" not in f.name and not f.name.endswith(".result.json")]


@pytest.mark.parametrize("path", auction_files(), ids=lambda p: p.name)
def test_every_example_and_case_matches_the_auction_schema(path: Path) -> None:
    assert_valid("auction", json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", ["auction.json", "market-rules.json"])
def test_fresh_results_match_the_result_schema(name: str) -> None:
    """(Every shared case's result is checked in test_cases.py, where it is cleared anyway.)"""
    auction = load_auction(json.loads((EXAMPLES / name).read_text(encoding="utf-8")))
    assert_valid("result", clear_and_verify(auction).to_document())


def test_described_fields_are_the_loaders_fields() -> None:
    """A field the loader accepts but docs do not describe (or the reverse) fails here."""
    pairs = {"auction": document.TOP_FIELDS, "bid": document.BID_FIELDS, "line": document.LINE_FIELDS,
             "interface": document.INTERFACE_FIELDS, "interface_member": document.MEMBER_FIELDS,
             "requirement": document.REQUIREMENT_FIELDS, "resource": document.RESOURCE_FIELDS,
             "price_cap": document.CAP_FIELDS, "cost": document.COST_FIELDS,
             "metering": set(document.METERING_ENUMS) | set(document.METERING_NUMBERS) | {"next_gen_smart_meter"}}
    for name, fields in pairs.items():
        assert set(FIELD_DOCS[name]) == set(fields), name
    schema = auction_schema()
    assert set(schema["properties"]) == document.TOP_FIELDS
    assert set(schema["required"]) == document.TOP_REQUIRED
    assert set(schema["$defs"]["bid"]["required"]) == document.BID_REQUIRED


def test_proto_messages_carry_the_documents_fields() -> None:
    """The gRPC messages mirror the documents (their JSON encoding is the document)."""
    assert {f.name for f in pb.Auction.DESCRIPTOR.fields} == set(auction_schema()["properties"])
    assert {f.name for f in pb.Bid.DESCRIPTOR.fields} == set(auction_schema()["$defs"]["bid"]["properties"])
    result = result_schema()
    assert {f.name for f in pb.ClearingResult.DESCRIPTOR.fields} - {"extra"} <= set(result["properties"])
    for message, name in ((pb.Award, "award"), (pb.Flow, "flow"), (pb.AreaSummary, "area_summary"),
                          (pb.SolverInfo, "solver"), (pb.Explanation, "explanation")):
        assert {f.name for f in message.DESCRIPTOR.fields} == set(result["$defs"][name]["properties"]), name


def test_result_schema_types_follow_the_dataclasses() -> None:
    import typing

    from dkw.clearing import result as r
    from dkw.clearing.explain import Explanation

    schema = result_schema()
    for cls, name in ((r.Award, "award"), (r.AreaSummary, "area_summary"), (r.SolverInfo, "solver"),
                      (r.MarginalPrice, "price"), (Explanation, "explanation")):
        for field, hint in typing.get_type_hints(cls).items():
            prop = schema["$defs"][name]["properties"][field]
            kinds = prop.get("type")
            if kinds is None:
                continue  # enum / const
            kinds = {kinds} if isinstance(kinds, str) else set(kinds)
            assert kinds <= type_hint_kind(hint) | ({"integer"} if "number" in kinds else set()), (name, field)


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda d: d.update(block_minutes=45), "block_minutes"),
    (lambda d: d["bids"][0].update(kw=1e30), "bids/0/kw"),
    (lambda d: d["requirements"][0].update(kw=1e18), "requirements/0/kw"),
    (lambda d: d["bids"][0].update(price_yen_per_kw_h=-1), "bids/0/price_yen_per_kw_h"),
    (lambda d: d["bids"][0].update(colour="red"), "bids/0"),
    (lambda d: d["bids"][0].pop("category"), "bids/0"),
    (lambda d: d["bids"][0].update(category="GENERATOR"), "bids/0/category"),
    (lambda d: d.update(trading_date="1st of April"), "trading_date"),
    (lambda d: d["lines"][0].pop("forward_kw"), "lines/0"),
])
def test_schema_and_loader_refuse_the_same_mistakes(mutate, where: str) -> None:
    doc = json.loads((EXAMPLES / "auction.json").read_text(encoding="utf-8"))
    assert_valid("auction", doc)
    bad = copy.deepcopy(doc)
    mutate(bad)
    errors = list(validator("auction").iter_errors(bad))
    assert any("/".join(map(str, e.absolute_path)) == where for e in errors), [e.message for e in errors]
    with pytest.raises(InvalidAuction):
        load_auction(bad)


@pytest.mark.parametrize(("doc_file", "kind"), [("auction.md", "auction"), ("result.md", "result")])
def test_docs_tables_are_the_schemas(doc_file: str, kind: str) -> None:
    """docs/auction.md and docs/result.md embed `dkw schema KIND --markdown` verbatim."""
    text = (REPO / "docs" / doc_file).read_text(encoding="utf-8")
    tables = markdown_tables(auction_schema() if kind == "auction" else result_schema())
    assert tables in text, f"regenerate the tables: dkw schema {kind} --markdown"
