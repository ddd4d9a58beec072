"""JSON Schemas of the auction and result documents, generated from the code that reads and writes them.

The field sets and required fields of the auction come from `dkw.clearing.document` (what the loader
accepts), the maxima from `dkw.clearing.limits`, the enumerations from `dkw.clearing.model`; the result's
fields and types come from the dataclasses of `dkw.clearing.result`. What is written here is the one thing
code cannot say: each field's meaning, unit and Japanese term (`FIELD_DOCS`), which both the schema's
`description`s and the field tables of docs/auction.md and docs/result.md are made from. A test holds
the three together (`tests/test_schema.py`): a field the loader accepts but nobody described fails it.

A schema checks shape, types and ranges. What needs the whole document — references that resolve, a
block below `blocks`, `min_kw` ≤ `kw`, unique ids — is `dkw validate`'s job, not the schema's.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from dkw.clearing import document, limits
from dkw.clearing.model import AUCTION_FORMAT, COMPOSITE, PRODUCTS, RESULT_FORMAT, Category, Direction, PriceCapMode
from dkw.solvers.api import SolveStatus

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# --- what each field means --------------------------------------------------------------------------
# (object, field) → (type, description). Types: id, string, date, whole, count, kw, kw_whole, price,
# yen, bool, or a ("list", item type) / ("enum", values) / ("object", object name) / ("list_of", object).

KW_BY_BLOCK = ("list", "kw")

FIELD_DOCS: dict[str, dict[str, tuple[Any, str]]] = {
    "auction": {
        "format": (("const", AUCTION_FORMAT), f"Format and version of the document: always `{AUCTION_FORMAT}`."),
        "auction_id": ("id", "The auction's identifier, chosen by the TSO; the result repeats it."),
        "trading_date": ("date", "Trading day (取引日), ISO 8601 `YYYY-MM-DD`. Decides the price caps and the "
                         "market rules in force."),
        "blocks": ("count", "Number of time blocks (コマ) T; blocks are numbered 0..T-1."),
        "block_minutes": (("enum", list(limits.BLOCK_MINUTES_ALLOWED)),
                          "Length of a block in minutes: 30 (30分コマ, day-ahead from FY2026) or 180 (3時間ブロック)."),
        "areas": (("list", "id"), "Area ids (エリア), e.g. `tokyo`; each bid, requirement and resource names one."),
        "products": (("list", ("enum", list(PRODUCTS))), "Products (商品) cleared in this auction."),
        "shortfall_price_yen_per_kw_h": ("price", "Price of one kW short for one hour (募集量未達), yen/kW·h. "
                                         "Must exceed every bid price for shortfall to be a last resort."),
        "price_caps": (("list_of", "price_cap"), "Price caps (上限価格), yen/kW·h. When given, the list is "
                       "complete (a product left out has no cap); when absent, the policy's schedule for the "
                       "trading date applies."),
        "price_cap_mode": (("enum", [m.value for m in PriceCapMode]),
                           "REJECT (default): a bid above its cap is left out of the clearing. PAY_CAP: it is "
                           "ranked by its own price and paid the cap."),
        "lines": (("list_of", "line"), "Interconnectors (連系線) with the capacity set aside for balancing."),
        "interfaces": (("list_of", "interface"), "Combined limits over sets of line directions (e.g. 中部関西→北陸)."),
        "requirements": (("list_of", "requirement"), "Requirements (募集量) per area, product and block."),
        "resources": (("list_of", "resource"), "Units or pools that several bids draw on (capacity, 起動費)."),
        "bids": (("list_of", "bid"), "ΔkW offers (応札)."),
    },
    "price_cap": {
        "product": (("enum", [*PRODUCTS, COMPOSITE]), "A product, or `composite` for bids offering several "
                    "products (複合)."),
        "yen_per_kw_h": ("price", "The cap (上限価格), yen/kW·h (EPRX quotes yen/kW·30min: half of this)."),
    },
    "line": {
        "id": ("id", "The line's id (連系線), e.g. `tokyo-chubu`."),
        "from_area": ("id", "Area at the `forward` end's start."),
        "to_area": ("id", "Area the `forward` direction flows into."),
        "forward_kw": ("kw", "Capacity from `from_area` to `to_area` set aside for balancing (連系線確保可能量), "
                       "kW, every block. Give this or `forward_kw_by_block`."),
        "backward_kw": ("kw", "Capacity from `to_area` to `from_area`, kW, every block."),
        "forward_kw_by_block": (KW_BY_BLOCK, "Forward capacity per block, kW, one entry per block."),
        "backward_kw_by_block": (KW_BY_BLOCK, "Backward capacity per block, kW, one entry per block."),
        "products": (("list", ("enum", list(PRODUCTS))), "Products the line may carry (default: all). Primary "
                     "reserve crosses no HVDC link or frequency converter."),
    },
    "interface": {
        "id": ("id", "The interface's id."),
        "limit_kw": ("kw", "Limit on the sum of its members' flows over all products, kW per block."),
        "members": (("list_of", "interface_member"), "The line directions it sums (at least one)."),
    },
    "interface_member": {
        "line": ("id", "A line id."),
        "direction": (("enum", [d.value for d in Direction]), "`forward` (from_area → to_area) or `backward`."),
    },
    "requirement": {
        "area": ("id", "The area whose TSO needs the reserve."),
        "product": (("enum", list(PRODUCTS)), "The product."),
        "block": ("block", "The block, 0..blocks-1."),
        "kw": ("kw", "Requirement (募集量), kW. 0 or absent: none."),
        "max_import_kw": ("kw", "Cap on imports minus exports of this product into the area (エリア外調達量の"
                          "上限), kW. Absent: no cap."),
    },
    "resource": {
        "id": ("id", "The resource's id."),
        "area": ("id", "Its area; every bid on it must be in the same area."),
        "capacity_kw": ("kw", "Per block, the sum accepted over its bids covering the block is at most this, kW. "
                        "Absent (and no `capacity_kw_by_block`): no limit."),
        "capacity_kw_by_block": (KW_BY_BLOCK, "Capacity per block, kW (instead of `capacity_kw`)."),
        "startup_cost_yen": ("yen", "Start-up cost (起動費), yen, paid once if any bid on the resource is accepted."),
    },
    "bid": {
        "id": ("id", "The bid's id (unique)."),
        "area": ("id", "Area where the resource is connected (電源属地)."),
        "products": (("list", ("enum", list(PRODUCTS))), "Products offered; several make a composite bid (複合): "
                     "the same ΔkW counts toward each. `tertiary2` is never combined with another product."),
        "blocks": (("list", "block"), "Blocks covered; the same quantity is accepted in each (a block bid)."),
        "kw": ("kw_whole", "Quantity offered (応札量), whole kW per block."),
        "min_kw": ("kw_whole", "Minimum acceptance (最低落札量), whole kW: 0 divisible, equal to `kw` indivisible."),
        "price_yen_per_kw_h": ("price", "ΔkW price (応札価格), yen per kW per hour (twice EPRX's yen/kW·30min)."),
        "category": (("enum", [c.value for c in Category]), "Bid category (入札区分): 単独電源, リスト・パターン, "
                     "機器点単独発電機, 機器点リスト・パターン, 低圧リソース."),
        "resource": ("id", "The resource it draws on (capacity and start-up cost)."),
        "group": ("id", "Exclusive group (リスト・パターン): at most one bid of a group is accepted."),
        "parent": ("id", "Linked bid (持ち下げ供出): accepted only if this bid (起動供出) is accepted."),
        "metering": (("object", "metering"), "What device-point eligibility needs (計量); absent: a pre-qualified "
                     "receiving-point resource."),
        "cost": (("object", "cost"), "What price monitoring needs (市場監視)."),
    },
    "metering": {
        "point": (("enum", list(document.METERING_ENUMS["point"])), "Metering point: RECEIVING (受電点) or "
                  "DEVICE (機器点)."),
        "receiving_voltage": (("enum", list(document.METERING_ENUMS["receiving_voltage"])),
                              "Receiving-point voltage class: LOW (低圧, <50 kW), HIGH (高圧, 50–2,000 kW), "
                              "EXTRA_HIGH (特別高圧, ≥2,000 kW)."),
        "receiving_capacity_kw": ("kw_any", "Receiving-point contract capacity, kW."),
        "device_voltage": (("enum", list(document.METERING_ENUMS["device_voltage"])), "Device voltage class."),
        "device_capacity_kw": ("kw_any", "Device capacity, kW (decides the eligibility table's column)."),
        "resource_type": (("enum", list(document.METERING_ENUMS["resource_type"])),
                          "NEGATIVE (ネガ), NEGATIVE_POSITIVE (ネガポジ), POSITIVE (ポジ), PUMPED_GENERATION "
                          "(揚水発電等), PUMPED_LOAD_STORAGE / PUMPED_LOAD_VPP (揚水動力等 特措無)."),
        "meter": (("enum", list(document.METERING_ENUMS["meter"])), "TSO (託送計量器), SPECIFIED (特定計量器), "
                  "SPECIAL_CASE (特例計量器)."),
        "next_gen_smart_meter": ("bool", "The receiving point has a second-generation smart meter (次世代スマートメーター)."),
    },
    "cost": {
        "marginal_cost_yen_per_kwh": ("price_any", "Marginal cost (限界費用), yen per kWh."),
        "opportunity_cost_yen_per_kw_h": ("price", "Lost opportunity (逸失利益), yen per kW per hour."),
        "fixed_cost_ceiling_yen": ("yen", "Fixed-cost recovery ceiling (固定費回収上限額), yen."),
        "expected_award_kw": ("kw_any", "Expected awarded quantity (想定約定量), kW."),
        "substitutes": ("id", "The bid this one substitutes (差替): its price may not exceed the original's."),
    },
    # --- the result document ----------------------------------------------------------------------------
    "result": {
        "format": (("const", RESULT_FORMAT), f"Always `{RESULT_FORMAT}`."),
        "auction_id": ("string", "The auction document's `auction_id`."),
        "trading_date": ("string", "The auction's trading day."),
        # the solve's statuses, and the service's for a document that failed validation
        "status": (("enum", [*(s.value for s in SolveStatus), "INFEASIBLE_INPUT"]),
                   "OPTIMAL: proven within the gap. TIME_LIMIT_FEASIBLE: the best solution at the time limit "
                   "(see `solver.mip_gap`). The others carry no awards."),
        "objective_yen": ("yen_any", "procurement + start-up + shortfall penalty, yen: the minimised objective, "
                          "without tie-break or flow-preference terms."),
        "procurement_cost_yen": ("yen_any", "Σ price × hours × blocks × accepted kW over accepted bids, at their own "
                                 "price, yen."),
        "startup_cost_yen": ("yen_any", "Σ start-up costs (起動費) of resources with an accepted bid, yen."),
        "shortfall_penalty_yen": ("yen_any", "shortfall price × hours × Σ shortfall kW, yen."),
        "payment_total_yen": ("yen_any", "Σ awards[].payment_yen: what the TSOs pay (pay-as-bid, マルチプライス)."),
        "awards": (("list_of", "award"), "Accepted bids only (落札), in document order."),
        "flows": (("list_of", "flow"), "Non-zero interconnector reservations (連系線確保量)."),
        "shortfalls": (("list_of", "shortfall"), "Non-zero shortfalls (募集量未達)."),
        "prices": (("list_of", "price"), "Marginal prices per balance row (see docs/result.md, Prices)."),
        "area_summary": (("list_of", "area_summary"), "EPRX's per-block, per-area metrics."),
        "rejected_bids": (("list_of", "rejected_bid"), "Bids left out of the clearing, with the verdict."),
        "solver": (("object", "solver"), "How the solve went."),
        "input_sha256": ("string", "sha256 (hex) of the auction document's RFC 8785 canonical JSON, empty "
                         "lines/interfaces/resources left out (docs/auction.md): one hash whether the auction came "
                         "as a file, as auction_json or as the Auction message."),
        "market_rules": ("object_any", "The policy the result was cleared under (`policy.version`, "
                         "`policy.source`) and the price caps that applied (`price_caps`)."),
        "monitoring_flags": ("list_any", "Price-monitoring flags (市場監視): bids whose price exceeds a monitoring "
                             "limit; they stay in the clearing."),
        "explanations": (("list_of", "explanation"), "Why each bid was not accepted in full (see docs/result.md, "
                         "Explanations), in document order."),
    },
    "explanation": {
        "bid": ("string", "The bid's id."),
        "reason": (("enum", ["LEFT_OUT_BY_RULES", "GROUP_ALTERNATIVE_CHOSEN", "PARENT_NOT_ACCEPTED", "RESOURCE_CAPACITY",
                             "IMPORT_LIMITED", "ABOVE_MARGINAL_PRICE", "MARGINAL", "DID_NOT_FIT"]),
                   "The first reason that holds, in this order of precedence."),
        "text": ("string", "The reason in one line, with its figures and the Japanese term where it helps."),
        "kw": ("kw_any", "Offered kW (応札量), per block."),
        "accepted_kw": ("kw_any", "Accepted kW (落札量), per block: 0, or less than `kw`."),
        "price_yen_per_kw_h": ("price_any", "The bid's price, yen/kW·h."),
        "marginal_yen_per_kw_h": ("price_or_null", "Marginal price (限界価格) of its area, summed over its products and "
                                  "averaged over its blocks, yen/kW·h."),
        "value_yen_per_kw_h": ("price_or_null", "Exactly what its first kW is worth: price − (cost of forcing 1 kW in) / "
                               "(hours × blocks), yen/kW·h; for bids without an acceptance decision."),
        "other_area": ("string_or_null", "IMPORT_LIMITED: the area it was cheaper for."),
        "other_marginal_yen_per_kw_h": ("price_or_null", "IMPORT_LIMITED: that area's marginal price, yen/kW·h."),
        "extra_cost_yen": ("number_or_null", "DID_NOT_FIT: how much more the best clearing found that accepts it costs, "
                           "yen (an upper bound unless `proven`)."),
        "extra_cost_lower_bound_yen": ("number_or_null", "DID_NOT_FIT: how much more any clearing that accepts it costs at "
                                       "least, yen."),
        "proven": ("bool_or_null", "DID_NOT_FIT: the forced re-solve reached the optimum (within the relative gap)."),
        "verdict": ("string_or_null", "LEFT_OUT_BY_RULES: the verdict (PRICE_ABOVE_CAP, PARENT_REJECTED, or an "
                    "eligibility verdict)."),
        "related": ("strings", "What the reason involves: the group alternative, the parent, the resource, or the "
                    "lines, interfaces and import caps in the way."),
    },
    "award": {
        "bid": ("string", "The bid's id."),
        "kw": ("kw_any", "Accepted quantity (落札量), kW per block of the bid."),
        "payment_yen": ("yen_any", "price (PAY_CAP: min(price, cap)) × hours × blocks × kw, yen."),
    },
    "flow": {
        "line": ("string", "The line's id."),
        "direction": (("enum", [d.value for d in Direction]), "`forward` (from_area → to_area) or `backward`."),
        "product": ("string", "The product the flow carries."),
        "block": ("block", "The block."),
        "kw": ("kw_any", "Reserved capacity (連系線確保量), kW."),
    },
    "shortfall": {
        "area": ("string", "The area."), "product": ("string", "The product."), "block": ("block", "The block."),
        "kw": ("kw_any", "Requirement not met (募集量未達), kW."),
    },
    "price": {
        "area": ("string", "The area."), "product": ("string", "The product."), "block": ("block", "The block."),
        "marginal_yen_per_kw_h": ("price_signed", "Marginal price (限界価格) of the balance row, yen/kW·h: what one "
                                  "more kW of requirement costs, with every acceptance decision fixed and the real "
                                  "prices (no tie-break)."),
    },
    "area_summary": {
        "area": ("string", "The area."), "product": ("string", "The product."), "block": ("block", "The block."),
        "requirement_kw": ("kw_any", "募集量（TSO別）, kW."),
        "offered_kw": ("kw_any", "応札量合計（電源属地別）: Σ kw of every bid in the area offering the product in the "
                       "block (left-out bids included), kW."),
        "awarded_local_kw": ("kw_any", "落札量合計（電源属地別）: accepted kW of bids located in the area, kW."),
        "awarded_for_area_kw": ("kw_signed", "落札量合計（TSO別）: awarded_local_kw + imports − exports, kW."),
        "shortfall_kw": ("kw_any", "募集量未達, kW."),
        "max_price_yen_per_kw_h": ("price_or_null", "最高落札価格（電源属地別）, yen/kW·h; null when nothing awarded."),
        "min_price_yen_per_kw_h": ("price_or_null", "最低落札価格（電源属地別）, yen/kW·h."),
        "avg_price_yen_per_kw_h": ("price_or_null", "平均落札価格（電源属地別）, kW-weighted, yen/kW·h."),
    },
    "rejected_bid": {
        "bid": ("string", "The bid's id."),
        "verdict": ("string", "PRICE_ABOVE_CAP (上限価格超過), PARENT_REJECTED, or an eligibility verdict "
                    "(NEEDS_SPECIFIED_METER, WRONG_CATEGORY, NOT_YET_PERMITTED, NOT_APPLICABLE)."),
        "reason": ("string", "Why, in English with the Japanese term."),
    },
    "solver": {
        "name": ("string", "Always `HiGHS`."),
        "version": ("string", "HiGHS version."),
        "termination": ("string", "HiGHS's own words on how it stopped (per independent component), with the fast path's "
                       "cut rounds and search; after a re-solve for the 1 kW minimum, the solve before it too "
                       "(\"re-solved after a bid came out below 1 kW, the solve before: …\")."),
        "mip_gap": ("number_or_null", "HiGHS's proven relative gap on the objective it solved (tie-break terms "
                    "included), |objective − bound| / max(|objective|, 1)."),
        "objective_bound": ("number_or_null", "Proven lower bound on the real objective (without the tie-break "
                            "terms), yen; never above `objective_yen`."),
        "seconds": ("seconds", "HiGHS's run time of the MIP, s (summed over the solves, `solves`)."),
        "nodes": ("count0", "Branch-and-bound nodes (summed over the solves)."),
        "build_seconds": ("seconds", "Index, model and transfer to the solver, s."),
        "pricing_seconds": ("seconds", "The fixed-integer LP for the prices, s."),
        "total_seconds": ("seconds", "Wall time of the whole clearing, s."),
        "options": ("object_any", "The options it ran with (time limit, gap, threads, method, HiGHS options)."),
        "solves": ("count", "MIP solves (more than one when a bid had to get a binary for the 1 kW minimum)."),
    },
}

#: Result sections added after the clearing by other modules (named here so the schema describes them).
RESULT_SECTIONS = ("market_rules", "monitoring_flags", "explanations")


# --- types --------------------------------------------------------------------------------------------

def _type(spec: Any) -> dict[str, Any]:
    simple: dict[str, dict[str, Any]] = {
        "id": {"type": "string", "minLength": 1},
        "string": {"type": "string"},
        "date": {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "count": {"type": "integer", "minimum": 1},
        "count0": {"type": "integer", "minimum": 0},
        "block": {"type": "integer", "minimum": 0},
        "kw": {"type": "number", "minimum": 0, "maximum": limits.MAX_CAPACITY_KW},
        "kw_whole": {"type": "integer", "minimum": 0, "maximum": limits.MAX_BID_KW},
        "kw_any": {"type": "number", "minimum": 0},
        "kw_signed": {"type": "number"},
        "price": {"type": "number", "minimum": 0, "maximum": limits.MAX_PRICE_YEN_PER_KW_H},
        "price_any": {"type": "number", "minimum": 0},
        "price_signed": {"type": "number"},
        "price_or_null": {"type": ["number", "null"]},
        "number_or_null": {"type": ["number", "null"]},
        "yen": {"type": "number", "minimum": 0},
        "yen_any": {"type": "number"},
        "seconds": {"type": "number", "minimum": 0},
        "bool": {"type": "boolean"},
        "bool_or_null": {"type": ["boolean", "null"]},
        "string_or_null": {"type": ["string", "null"]},
        "strings": {"type": "array", "items": {"type": "string"}},
        "object_any": {"type": "object"},
        "list_any": {"type": "array", "items": {"type": "object"}},
    }
    if isinstance(spec, str):
        return dict(simple[spec])
    kind, arg = spec
    if kind == "const":
        return {"const": arg}
    if kind == "enum":
        return {"enum": list(arg)}
    if kind == "list":
        return {"type": "array", "items": _type(arg), "minItems": 1, "uniqueItems": True}
    if kind == "list_of":
        return {"type": "array", "items": {"$ref": f"#/$defs/{arg}"}}
    if kind == "object":
        return {"$ref": f"#/$defs/{arg}"}
    raise ValueError(spec)


def _object(name: str, allowed: set[str] | None, required: set[str], *, closed: bool = True) -> dict[str, Any]:
    docs = FIELD_DOCS[name]
    names = list(docs) if allowed is None else [f for f in docs if f in allowed]
    props = {}
    for field_name in names:
        spec, text = docs[field_name]
        props[field_name] = {**_type(spec), "description": text}
    out: dict[str, Any] = {"type": "object", "properties": props, "required": sorted(required)}
    if closed:
        out["additionalProperties"] = False
    return out


def auction_schema() -> dict[str, Any]:
    """The auction document's schema: the loader's fields (dkw.clearing.document), the limits (dkw.clearing.limits)."""
    d = document
    defs = {
        "price_cap": _object("price_cap", d.CAP_FIELDS, d.CAP_FIELDS),
        "line": _object("line", d.LINE_FIELDS, {"id", "from_area", "to_area"}),
        "interface": _object("interface", d.INTERFACE_FIELDS, d.INTERFACE_FIELDS),
        "interface_member": _object("interface_member", d.MEMBER_FIELDS, d.MEMBER_FIELDS),
        "requirement": _object("requirement", d.REQUIREMENT_FIELDS, {"area", "product", "block", "kw"}),
        "resource": _object("resource", d.RESOURCE_FIELDS, {"id", "area"}),
        "bid": _object("bid", d.BID_FIELDS, d.BID_REQUIRED),
        "metering": _object("metering", set(d.METERING_ENUMS) | set(d.METERING_NUMBERS) | {"next_gen_smart_meter"},
                            set()),
        "cost": _object("cost", d.COST_FIELDS, set()),
    }
    defs["line"]["allOf"] = [{"anyOf": [{"required": [f"{way}_kw"]}, {"required": [f"{way}_kw_by_block"]}]}
                             for way in ("forward", "backward")]
    defs["resource"]["not"] = {"required": ["capacity_kw", "capacity_kw_by_block"]}
    defs["bid"]["properties"]["kw"]["minimum"] = 1
    defs["bid"]["properties"]["blocks"]["items"]["minimum"] = 0
    top = _object("auction", d.TOP_FIELDS, d.TOP_REQUIRED)
    return {"$schema": SCHEMA_DIALECT, "$id": f"urn:dkw:schema:{AUCTION_FORMAT}",
            "title": "ΔkW auction document (需給調整市場の入札・募集)",
            "description": "One auction: requirements per area, product and block, interconnectors and ΔkW bids. "
                           "Quantities in kW, prices in yen per kW per hour. See docs/auction.md.",
            **top, "$defs": defs}


def _dataclass_fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def result_schema() -> dict[str, Any]:
    """The result document's schema: the fields of dkw.clearing.result's dataclasses, as `to_document` writes them.
    The top level stays open: sections added by other modules (market rules, signatures) are allowed."""
    from dkw.clearing import result as r
    from dkw.clearing.explain import Explanation
    from dkw.clearing.left_out import LeftOutBid

    def fields_of(cls: type, name: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        names = set(_dataclass_fields(cls)) - set(skip)
        return _object(name, names, names)

    defs = {
        "award": fields_of(r.Award, "award"), "flow": fields_of(r.Flow, "flow"),
        "shortfall": fields_of(r.Shortfall, "shortfall"), "price": fields_of(r.MarginalPrice, "price"),
        "area_summary": fields_of(r.AreaSummary, "area_summary"),
        "rejected_bid": fields_of(LeftOutBid, "rejected_bid"),
        "solver": fields_of(r.SolverInfo, "solver"),
        "explanation": fields_of(Explanation, "explanation"),
    }
    defs["solver"]["additionalProperties"] = True  # a later solver may report more
    core = {r.DOCUMENT_NAMES.get(name, name) for name in _dataclass_fields(r.ClearingResult)} - {"extra"}
    top = _object("result", core | {"format"} | set(RESULT_SECTIONS), core | {"format"}, closed=False)
    return {"$schema": SCHEMA_DIALECT, "$id": f"urn:dkw:schema:{RESULT_FORMAT}",
            "title": "ΔkW clearing result document (約定結果)",
            "description": "What the clearing accepted, what flows, what is short, what it costs and why. "
                           "See docs/result.md.",
            **top, "$defs": defs}


SCHEMAS = {"auction": auction_schema, "result": result_schema}


def _type_text(prop: dict[str, Any]) -> str:
    if "const" in prop:
        return f"`\"{prop['const']}\"`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "$ref" in prop:
        return f"object ({prop['$ref'].rsplit('/', 1)[-1]})"
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type_text(prop['items'])}"
    if isinstance(kind, list):
        return " or ".join(kind)
    text = kind or "any"
    bounds = []
    if "minimum" in prop:
        bounds.append(f"≥ {prop['minimum']:,}")
    if "maximum" in prop:
        bounds.append(f"≤ {prop['maximum']:,}")
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def markdown_tables(schema: dict[str, Any]) -> str:
    """One table per object of a schema: field, required, type and range, meaning. docs/*.md embed these."""
    parts = []
    objects = [("(top level)", schema), *schema.get("$defs", {}).items()]
    for name, obj in objects:
        required = set(obj.get("required", []))
        rows = ["| field | required | type | meaning |", "| --- | --- | --- | --- |"]
        for field_name, prop in obj["properties"].items():
            rows.append(f"| `{field_name}` | {'yes' if field_name in required else ''} | {_type_text(prop)} | "
                        f"{prop['description']} |")
        parts.append(f"#### {name}\n\n" + "\n".join(rows))
    return "\n\n".join(parts) + "\n"


def type_hint_kind(hint: Any) -> set[str]:
    """JSON types a Python annotation of dkw.clearing.result allows (the schema test holds them to the schema)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return set().union(*(type_hint_kind(h) for h in typing.get_args(hint)))
    origin = typing.get_origin(hint) or hint
    return {float: {"number", "integer"}, int: {"integer"}, str: {"string"}, bool: {"boolean"},
            type(None): {"null"}, list: {"array"}, dict: {"object"}}.get(origin, {"object"})
