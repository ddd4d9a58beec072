"""Reading the auction document (SPEC §2): every structural problem found at once, then the domain model.

`load_auction` either returns a fully consistent `Auction` or raises `InvalidAuction` carrying one
`Problem` per fault, each naming the path in the document and the offending value or id, e.g.
``bids[3].min_kw: 12000 exceeds kw 10000``. Nothing is silently dropped or repaired.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from dkw.clearing.canonical import NotCanonical, jcs_sha256
from dkw.clearing.document_checker import Checker, Problem, show
from dkw.clearing.limits import plausibility_problems
from dkw.clearing.model import (
    AUCTION_FORMAT,
    COMPOSITE,
    PRODUCTS,
    Auction,
    Bid,
    Category,
    CostInfo,
    Direction,
    Interface,
    InterfaceMember,
    Line,
    Metering,
    PriceCap,
    PriceCapMode,
    Requirement,
    Resource,
)


class InvalidAuction(ValueError):
    """The document is not a valid auction; `problems` lists every fault found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


TOP_FIELDS = {
    "format", "auction_id", "trading_date", "blocks", "block_minutes", "areas", "products",
    "shortfall_price_yen_per_kw_h", "price_caps", "price_cap_mode", "lines", "interfaces",
    "requirements", "resources", "bids",
}
TOP_REQUIRED = {"format", "auction_id", "trading_date", "blocks", "block_minutes", "areas", "products",
                "shortfall_price_yen_per_kw_h", "requirements", "bids"}
LINE_FIELDS = {"id", "from_area", "to_area", "forward_kw", "backward_kw", "forward_kw_by_block",
               "backward_kw_by_block", "products"}
INTERFACE_FIELDS = {"id", "limit_kw", "members"}
MEMBER_FIELDS = {"line", "direction"}
REQUIREMENT_FIELDS = {"area", "product", "block", "kw", "max_import_kw"}
RESOURCE_FIELDS = {"id", "area", "capacity_kw", "capacity_kw_by_block", "startup_cost_yen"}
BID_FIELDS = {"id", "area", "products", "blocks", "kw", "min_kw", "price_yen_per_kw_h", "category",
              "resource", "group", "parent", "metering", "cost"}
BID_REQUIRED = {"id", "area", "products", "blocks", "kw", "price_yen_per_kw_h", "category"}
CAP_FIELDS = {"product", "yen_per_kw_h"}
METERING_ENUMS = {
    "point": ("RECEIVING", "DEVICE"),
    "receiving_voltage": ("LOW", "HIGH", "EXTRA_HIGH"),
    "device_voltage": ("LOW", "HIGH", "EXTRA_HIGH"),
    "resource_type": ("NEGATIVE", "NEGATIVE_POSITIVE", "POSITIVE", "PUMPED_GENERATION",
                      "PUMPED_LOAD_STORAGE", "PUMPED_LOAD_VPP"),
    "meter": ("TSO", "SPECIFIED", "SPECIAL_CASE"),
}
METERING_NUMBERS = ("receiving_capacity_kw", "device_capacity_kw")
COST_NUMBERS = ("marginal_cost_yen_per_kwh", "opportunity_cost_yen_per_kw_h", "fixed_cost_ceiling_yen",
                "expected_award_kw")
COST_FIELDS = set(COST_NUMBERS) | {"substitutes"}


def parse_document(text: str | bytes) -> Any:
    """Parse JSON text; a syntax error becomes an `InvalidAuction` naming the line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidAuction([Problem("", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]) from None
    except UnicodeDecodeError as exc:
        raise InvalidAuction([Problem("", f"not UTF-8 text: {exc.reason}")]) from None


def load_auction_file(path: str | Path) -> Auction:
    """Read and validate an auction document file (its `input_sha256`: `document_sha256`)."""
    return load_auction(parse_document(Path(path).read_bytes()))


#: Top-level lists where empty means absent: left out of the hashed form when empty, so a file writing
#: `"lines": []` hashes as its `Auction` message does (protobuf cannot tell an empty list from none).
#: `price_caps` is not one of them: `[]` there means "no caps", absent "the policy's caps".
EMPTY_MEANS_ABSENT = ("lines", "interfaces", "resources")


def document_sha256(doc: Any) -> str:
    """`input_sha256`: sha256 of the document's RFC 8785 canonical JSON, `EMPTY_MEANS_ABSENT` lists left out
    when empty (docs/auction.md), so a file, the same bytes as `auction_json` and the `Auction` message all
    give the same hash. `InvalidAuction` for a document with no canonical form (a lone UTF-16 surrogate)."""
    if isinstance(doc, dict) and any(doc.get(key) == [] for key in EMPTY_MEANS_ABSENT):
        doc = {k: v for k, v in doc.items() if not (k in EMPTY_MEANS_ABSENT and v == [])}
    try:
        return jcs_sha256(doc)
    except NotCanonical as exc:
        raise InvalidAuction([Problem("", str(exc))]) from None


def load_auction(doc: Any, input_sha256: str | None = None) -> Auction:
    """Validate a parsed document and build the domain model; raises `InvalidAuction` listing every problem.
    One function per section of the document, in the document's order; the header first, since the
    other sections refer to its areas, products and blocks."""
    c = Checker()
    if not isinstance(doc, dict):
        raise InvalidAuction([Problem("", f"the document must be a JSON object, got {type(doc).__name__}")])
    header = _header(c, doc)
    caps = _price_caps(c, doc)
    lines, line_ids = _lines(c, doc)
    interfaces = _interfaces(c, doc, line_ids)
    requirements = _requirements(c, doc)
    resources, resource_area = _resources(c, doc)
    bids = _bids(c, doc, resource_area)
    for path, message in plausibility_problems(doc):  # dkw.clearing.limits: the limits, in one place
        c.add(path, message)
    if c.problems:
        raise InvalidAuction(c.problems)
    return Auction(
        **header, lines=tuple(lines), interfaces=tuple(interfaces), requirements=tuple(requirements),
        resources=tuple(resources), bids=tuple(bids), price_caps=tuple(caps) if caps is not None else None,
        input_sha256=input_sha256 if input_sha256 is not None else document_sha256(doc),
    )


def _header(c: Checker, doc: dict) -> dict[str, Any]:
    """format, auction_id, trading_date, blocks, block_minutes, areas, products, prices: the Auction's own
    fields (and the checker's context for the other sections)."""
    c.fields(doc, "", TOP_FIELDS, TOP_REQUIRED)
    fmt = doc.get("format")
    if "format" in doc and fmt != AUCTION_FORMAT:
        c.add("format", f"unknown format {show(fmt)} (expected {AUCTION_FORMAT!r})")
    auction_id = c.string(doc, "auction_id", "")
    trading_date = c.string(doc, "trading_date", "")
    if trading_date is not None:
        try:
            _dt.date.fromisoformat(trading_date)
        except ValueError:
            c.add("trading_date", f"{show(trading_date)} is not an ISO 8601 date (YYYY-MM-DD)")
    blocks_f = c.number(doc, "blocks", "", integral=True, positive=True)
    c.blocks = int(blocks_f) if blocks_f is not None else None
    block_minutes_f = c.number(doc, "block_minutes", "", integral=True, positive=True)
    areas = c.id_list(doc, "areas", "") or []
    c.areas = set(areas)
    products = c.id_list(doc, "products", "", known=set(PRODUCTS), what="product") or []
    c.products = set(products)
    shortfall_price = c.number(doc, "shortfall_price_yen_per_kw_h", "")
    mode = c.enum(doc, "price_cap_mode", "", tuple(m.value for m in PriceCapMode))
    return {"auction_id": auction_id, "trading_date": trading_date, "blocks": c.blocks,
            "block_minutes": int(block_minutes_f) if block_minutes_f is not None else None,
            "areas": tuple(areas), "products": tuple(products), "shortfall_price_yen_per_kw_h": shortfall_price,
            "price_cap_mode": PriceCapMode(mode) if mode else PriceCapMode.REJECT}


def _price_caps(c: Checker, doc: dict) -> list[PriceCap] | None:
    """price_caps, at most one per product (or `composite`); None where the document lists none."""
    if "price_caps" not in doc:
        return None
    caps: list[PriceCap] = []
    seen: set[str] = set()
    for _, raw, path in c.entries(doc, "price_caps", CAP_FIELDS, CAP_FIELDS):
        product = c.enum(raw, "product", path, (*PRODUCTS, COMPOSITE))
        value = c.number(raw, "yen_per_kw_h", path)
        if product in seen:
            c.add(f"{path}.product", f"duplicate cap for {show(product)}")
        elif product is not None and value is not None:
            seen.add(product)
            caps.append(PriceCap(product, value))
    return caps


def _lines(c: Checker, doc: dict) -> tuple[list[Line], set[str]]:
    """lines: unique ids, two different known areas, a capacity per direction (flat or per block). Also
    every well-formed id, for the interfaces' references (a faulty line is not also an unknown one)."""
    lines: list[Line] = []
    line_ids: set[str] = set()
    for _, raw, path in c.entries(doc, "lines", LINE_FIELDS, {"id", "from_area", "to_area"}):
        lid = c.unique_id(raw, path, line_ids, "line")
        ends = [c.reference(raw, key, path, c.areas, "area") for key in ("from_area", "to_area")]
        if ends[0] is not None and ends[0] == ends[1]:
            c.add(f"{path}.to_area", f"line connects area {show(ends[0])} to itself")
        caps_by_dir = []
        for direction in ("forward", "backward"):
            flat = c.number(raw, f"{direction}_kw", path)
            by_block = c.by_block(raw, f"{direction}_kw_by_block", path, c.blocks)
            if f"{direction}_kw" not in raw and f"{direction}_kw_by_block" not in raw:
                c.add(f"{path}.{direction}_kw", "missing required field (or give "
                      f"{direction}_kw_by_block)")
            if by_block is None and flat is not None and c.blocks is not None:
                by_block = (flat,) * c.blocks
            caps_by_dir.append(by_block)
        line_products = c.products
        if "products" in raw:
            listed = c.id_list(raw, "products", path, known=c.products, what="product")
            line_products = set(listed) if listed is not None else None
        if lid is not None:
            line_ids.add(lid)
        if None not in (lid, *ends, *caps_by_dir, line_products):
            lines.append(Line(lid, ends[0], ends[1], caps_by_dir[0], caps_by_dir[1], frozenset(line_products)))
    return lines, line_ids


def _interfaces(c: Checker, doc: dict, line_ids: set[str]) -> list[Interface]:
    """interfaces: unique ids, a limit, a non-empty list of distinct (known line, direction) members."""
    interfaces: list[Interface] = []
    interface_ids: set[str] = set()
    for _, raw, path in c.entries(doc, "interfaces", INTERFACE_FIELDS, INTERFACE_FIELDS):
        iid = c.unique_id(raw, path, interface_ids, "interface")
        limit = c.number(raw, "limit_kw", path)
        members = _interface_members(c, raw, path, line_ids)
        if iid is not None:
            interface_ids.add(iid)
        if iid is not None and limit is not None and members is not None:
            interfaces.append(Interface(iid, limit, tuple(members)))
    return interfaces


def _interface_members(c: Checker, raw: dict, path: str, line_ids: set[str]) -> list[InterfaceMember] | None:
    raw_members = raw.get("members")
    if not isinstance(raw_members, list) or not raw_members:
        c.add(f"{path}.members", f"expected a non-empty list, got {show(raw_members)}")
        return None
    members: list[InterfaceMember] | None = []
    seen = set()
    for j, m in enumerate(raw_members):
        mpath = f"{path}.members[{j}]"
        if not c.fields(m, mpath, MEMBER_FIELDS, MEMBER_FIELDS):
            members = None
            continue
        line = c.reference(m, "line", mpath, line_ids, "line")
        direction = c.enum(m, "direction", mpath, tuple(d.value for d in Direction))
        if (line, direction) in seen:
            c.add(mpath, f"duplicate member {line} {direction}")
            members = None
        seen.add((line, direction))
        if line is None or direction is None:
            members = None
        elif members is not None:
            members.append(InterfaceMember(line, Direction(direction)))
    return members


def _requirements(c: Checker, doc: dict) -> list[Requirement]:
    """requirements: at most one per known area, product and block."""
    requirements: list[Requirement] = []
    seen: dict[tuple, int] = {}
    for i, raw, path in c.entries(doc, "requirements", REQUIREMENT_FIELDS, {"area", "product", "block", "kw"}):
        area = c.reference(raw, "area", path, c.areas, "area")
        product = c.reference(raw, "product", path, c.products, "product", " (not in products)")
        block = c.block(raw.get("block"), f"{path}.block") if "block" in raw else None
        kw = c.number(raw, "kw", path)
        max_import = c.number(raw, "max_import_kw", path)
        key = (area, product, block)
        if None not in key and key in seen:
            c.add(path, f"duplicate requirement for area {area!r}, product {product!r}, block {block} "
                  f"(also requirements[{seen[key]}])")
            continue
        if None not in key:
            seen[key] = i
        if None not in (area, product, block, kw):
            requirements.append(Requirement(area, product, block, kw, max_import))
    return requirements


def _resources(c: Checker, doc: dict) -> tuple[list[Resource], dict[str, str | None]]:
    """resources: unique ids in known areas, a capacity (flat or per block, not both), a start-up cost.
    Also every declared id with its area (None if the area is faulty), for the bids' references."""
    resources: list[Resource] = []
    resource_area: dict[str, str | None] = {}
    for _, raw, path in c.entries(doc, "resources", RESOURCE_FIELDS, {"id", "area"}):
        rid = c.unique_id(raw, path, resource_area.keys(), "resource")
        area = c.reference(raw, "area", path, c.areas, "area")
        flat = c.number(raw, "capacity_kw", path)
        by_block = c.by_block(raw, "capacity_kw_by_block", path, c.blocks)
        if "capacity_kw" in raw and "capacity_kw_by_block" in raw:
            c.add(f"{path}.capacity_kw_by_block", "give capacity_kw or capacity_kw_by_block, not both")
        if by_block is None and flat is not None and c.blocks is not None:
            by_block = (flat,) * c.blocks
        startup = c.number(raw, "startup_cost_yen", path)
        if rid is not None:
            resource_area[rid] = area
            if area is not None:
                resources.append(Resource(rid, area, by_block, startup or 0.0))
    return resources, resource_area


def _bids(c: Checker, doc: dict, resource_area: dict[str, str | None]) -> list[Bid]:
    """bids: each checked on its own, then the references between bids (parents, substitutes)."""
    bids: list[Bid] = []
    bid_index: dict[str, int] = {}
    parents: dict[str, tuple[str, int]] = {}
    for i, raw, path in c.entries(doc, "bids", BID_FIELDS, BID_REQUIRED):
        bid_id = c.unique_id(raw, path, bid_index, "bid", first_at=bid_index)
        if bid_id is not None:
            bid_index[bid_id] = i
        area = c.reference(raw, "area", path, c.areas, "area")
        bid_products = c.id_list(raw, "products", path, known=c.products, what="product")
        bid_blocks = _bid_blocks(c, raw, path)
        kw = c.number(raw, "kw", path, integral=True, positive=True)
        min_kw = c.number(raw, "min_kw", path, integral=True) if "min_kw" in raw else 0.0
        if kw is not None and min_kw is not None and min_kw > kw:
            c.add(f"{path}.min_kw", f"{show(raw['min_kw'])} exceeds kw {show(raw['kw'])}")
            min_kw = None
        price = c.number(raw, "price_yen_per_kw_h", path)
        category = c.enum(raw, "category", path, tuple(k.value for k in Category))
        resource = c.reference(raw, "resource", path, resource_area, "resource")
        if resource is not None and area is not None and resource_area[resource] not in (None, area):
            c.add(f"{path}.resource", f"resource {show(resource)} is in area "
                  f"{show(resource_area[resource])}, the bid in {show(area)}")
            resource = None
        group = c.string(raw, "group", path)
        parent = c.string(raw, "parent", path)
        if parent is not None:
            parents[bid_id or f"#{i}"] = (parent, i)
        metering = _metering(c, raw, path)
        cost = _cost(c, raw, path)
        if None not in (bid_id, area, bid_products, bid_blocks, kw, min_kw, price, category) and \
                ("resource" not in raw or resource is not None) and ("parent" not in raw or parent is not None) \
                and ("group" not in raw or group is not None):
            bids.append(Bid(bid_id, area, tuple(bid_products), tuple(bid_blocks), kw, min_kw, price,
                            Category(category), resource, group, parent, metering, cost))
    _bid_references(c, doc["bids"] if isinstance(doc.get("bids"), list) else [], bid_index, parents)
    return bids


def _bid_blocks(c: Checker, raw: dict, path: str) -> list[int] | None:
    """A bid's blocks: a non-empty list of distinct block numbers, sorted."""
    if "blocks" not in raw:
        return None
    raw_blocks = raw["blocks"]
    if not isinstance(raw_blocks, list) or not raw_blocks:
        c.add(f"{path}.blocks", f"expected a non-empty list of blocks, got {show(raw_blocks)}")
        return None
    checked = [c.block(b, f"{path}.blocks[{j}]") for j, b in enumerate(raw_blocks)]
    if None in checked:
        return None
    if len(set(checked)) != len(checked):
        c.add(f"{path}.blocks", f"duplicate block in {show(raw_blocks)}")
        return None
    return sorted(checked)


def _bid_references(c: Checker, raw_bids: list[Any], bid_index: dict[str, int],
                    parents: dict[str, tuple[str, int]]) -> None:
    """Parents that exist and form no cycle; substitutes that exist."""
    for child, (parent, i) in parents.items():
        if parent not in bid_index:
            c.add(f"bids[{i}].parent", f"unknown bid {show(parent)}")
        elif parent == child:
            c.add(f"bids[{i}].parent", f"bid {show(child)} is its own parent")
    for child, (parent, i) in parents.items():
        if parent == child or parent not in bid_index:
            continue
        chain, node = [child], parent
        while node in parents and node not in chain and len(chain) <= len(parents):
            chain.append(node)
            node = parents[node][0]
        # report a cycle once, from its member that comes first in the document
        if node == child and i == min(parents[n][1] for n in chain):
            c.add(f"bids[{i}].parent", "parent cycle " + " -> ".join(chain + [child]))
    for i, raw in enumerate(raw_bids):
        if isinstance(raw, dict) and isinstance(raw.get("cost"), dict):
            sub = raw["cost"].get("substitutes")
            if isinstance(sub, str) and sub not in bid_index:
                c.add(f"bids[{i}].cost.substitutes", f"unknown bid {show(sub)}")


def _metering(c: Checker, raw: dict, path: str) -> Metering | None:
    if "metering" not in raw:
        return None
    m = raw["metering"]
    mpath = f"{path}.metering"
    allowed = set(METERING_ENUMS) | set(METERING_NUMBERS) | {"next_gen_smart_meter"}
    if not c.fields(m, mpath, allowed, set()):
        return None
    values: dict[str, Any] = {}
    for key, options in METERING_ENUMS.items():
        values[key] = c.enum(m, key, mpath, options)
    for key in METERING_NUMBERS:
        values[key] = c.number(m, key, mpath)
    if "next_gen_smart_meter" in m:
        if not isinstance(m["next_gen_smart_meter"], bool):
            c.add(f"{mpath}.next_gen_smart_meter", f"expected true or false, got {show(m['next_gen_smart_meter'])}")
        else:
            values["next_gen_smart_meter"] = m["next_gen_smart_meter"]
    return Metering(**values)


def _cost(c: Checker, raw: dict, path: str) -> CostInfo | None:
    if "cost" not in raw:
        return None
    m = raw["cost"]
    cpath = f"{path}.cost"
    if not c.fields(m, cpath, COST_FIELDS, set()):
        return None
    values: dict[str, Any] = {key: c.number(m, key, cpath) for key in COST_NUMBERS}
    values["substitutes"] = c.string(m, "substitutes", cpath)
    return CostInfo(**values)
