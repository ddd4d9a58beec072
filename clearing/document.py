"""Reading the auction document (SPEC §2): every structural problem found at once, then the domain model.

`load_auction` either returns a fully consistent `Auction` or raises `InvalidAuction` carrying one
`Problem` per fault, each naming the path in the document and the offending value or id, e.g.
``bids[3].min_kw: 12000 exceeds kw 10000``. Nothing is silently dropped or repaired.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearing.limits import plausibility_problems
from clearing.model import (
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


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


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


def _show(value: Any) -> str:
    """A value as it appears in the document, shortened so a message stays one line."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _Checker:
    """Collects problems while walking the raw document."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def fields(self, obj: Any, path: str, allowed: set[str], required: set[str]) -> bool:
        if not isinstance(obj, dict):
            self.add(path, f"expected an object, got {_show(obj)}")
            return False
        for key in obj:
            if key not in allowed:
                self.add(f"{path}.{key}" if path else key, "unknown field")
        for key in sorted(required - obj.keys()):
            self.add(f"{path}.{key}" if path else key, "missing required field")
        return True

    def string(self, obj: dict, key: str, path: str, required: bool = True) -> str | None:
        if key not in obj:
            return None
        value = obj[key]
        if not isinstance(value, str) or (required and not value):
            self.add(f"{path}.{key}" if path else key, f"expected a non-empty string, got {_show(value)}")
            return None
        return value

    def number(self, obj: dict, key: str, path: str, *, minimum: float = 0.0, integral: bool = False,
               positive: bool = False) -> float | None:
        if key not in obj:
            return None
        value = obj[key]
        where = f"{path}.{key}" if path else key
        if not _is_number(value):
            self.add(where, f"expected a number, got {_show(value)}")
            return None
        if positive and value <= 0:
            self.add(where, f"{_show(value)} must be positive")
            return None
        if value < minimum:
            self.add(where, f"{_show(value)} is negative" if minimum == 0 else f"{_show(value)} is below {minimum}")
            return None
        if integral and value != int(value):
            self.add(where, f"{_show(value)} is not a whole number")
            return None
        return float(value)

    def by_block(self, obj: dict, key: str, path: str, blocks: int | None) -> tuple[float, ...] | None:
        if key not in obj:
            return None
        value = obj[key]
        where = f"{path}.{key}"
        if not isinstance(value, list):
            self.add(where, f"expected a list of numbers, got {_show(value)}")
            return None
        if blocks is not None and len(value) != blocks:
            self.add(where, f"has {len(value)} entries, expected one per block ({blocks})")
            return None
        ok = True
        for i, v in enumerate(value):
            if not _is_number(v) or v < 0:
                self.add(f"{where}[{i}]", f"{_show(v)} is not a non-negative number")
                ok = False
        return tuple(float(v) for v in value) if ok else None

    def enum(self, obj: dict, key: str, path: str, allowed: tuple[str, ...]) -> str | None:
        if key not in obj:
            return None
        value = obj[key]
        if value not in allowed:
            where = f"{path}.{key}" if path else key
            self.add(where, f"unknown value {_show(value)} (expected one of {', '.join(allowed)})")
            return None
        return value

    def id_list(self, obj: dict, key: str, path: str, *, known: set[str] | None = None,
                what: str = "") -> list[str] | None:
        """A non-empty list of unique strings, each in `known` when given."""
        if key not in obj:
            return None
        value = obj[key]
        where = f"{path}.{key}" if path else key
        if not isinstance(value, list):
            self.add(where, f"expected a list, got {_show(value)}")
            return None
        if not value:
            self.add(where, "is empty")
            return None
        out, seen, ok = [], set(), True
        for i, v in enumerate(value):
            if not isinstance(v, str) or not v:
                self.add(f"{where}[{i}]", f"expected a non-empty string, got {_show(v)}")
                ok = False
            elif v in seen:
                self.add(f"{where}[{i}]", f"duplicate {_show(v)}")
                ok = False
            elif known is not None and v not in known:
                self.add(f"{where}[{i}]", f"unknown {what} {_show(v)}")
                ok = False
            else:
                seen.add(v)
                out.append(v)
        return out if ok else None

    def list_of_objects(self, doc: dict, key: str) -> list[Any]:
        value = doc.get(key, [])
        if not isinstance(value, list):
            self.add(key, f"expected a list, got {_show(value)}")
            return []
        return value


def parse_document(text: str | bytes) -> Any:
    """Parse JSON text; a syntax error becomes an `InvalidAuction` naming the line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidAuction([Problem("", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]) from None
    except UnicodeDecodeError as exc:
        raise InvalidAuction([Problem("", f"not UTF-8 text: {exc.reason}")]) from None


def load_auction_file(path: str | Path) -> Auction:
    """Read and validate an auction document file; the sha256 of its bytes is kept on the auction."""
    data = Path(path).read_bytes()
    return load_auction(parse_document(data), input_sha256=hashlib.sha256(data).hexdigest())


def document_sha256(doc: dict) -> str:
    """sha256 of a document given as a dict: of its canonical JSON (sorted keys, compact)."""
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_auction(doc: Any, input_sha256: str | None = None) -> Auction:
    """Validate a parsed document and build the domain model; raises `InvalidAuction` listing every problem."""
    c = _Checker()
    if not isinstance(doc, dict):
        raise InvalidAuction([Problem("", f"the document must be a JSON object, got {type(doc).__name__}")])
    c.fields(doc, "", TOP_FIELDS, TOP_REQUIRED)

    fmt = doc.get("format")
    if "format" in doc and fmt != AUCTION_FORMAT:
        c.add("format", f"unknown format {_show(fmt)} (expected {AUCTION_FORMAT!r})")
    auction_id = c.string(doc, "auction_id", "")
    trading_date = c.string(doc, "trading_date", "")
    if trading_date is not None:
        try:
            _dt.date.fromisoformat(trading_date)
        except ValueError:
            c.add("trading_date", f"{_show(trading_date)} is not an ISO 8601 date (YYYY-MM-DD)")
    blocks_f = c.number(doc, "blocks", "", integral=True, positive=True)
    blocks = int(blocks_f) if blocks_f is not None else None
    block_minutes_f = c.number(doc, "block_minutes", "", integral=True, positive=True)
    areas = c.id_list(doc, "areas", "") or []
    area_set = set(areas)
    products = c.id_list(doc, "products", "", known=set(PRODUCTS), what="product") or []
    product_set = set(products)
    shortfall_price = c.number(doc, "shortfall_price_yen_per_kw_h", "")
    mode = c.enum(doc, "price_cap_mode", "", tuple(m.value for m in PriceCapMode))

    def check_block(value: Any, where: str) -> int | None:
        if not _is_number(value) or value != int(value):
            c.add(where, f"expected a whole block number, got {_show(value)}")
            return None
        if blocks is not None and not 0 <= value < blocks:
            c.add(where, f"block {_show(value)} out of range 0..{blocks - 1}")
            return None
        return int(value)

    # price caps
    caps: list[PriceCap] | None = None
    if "price_caps" in doc:
        caps = []
        seen_caps: set[str] = set()
        for i, raw in enumerate(c.list_of_objects(doc, "price_caps")):
            path = f"price_caps[{i}]"
            if not c.fields(raw, path, CAP_FIELDS, CAP_FIELDS):
                continue
            product = c.enum(raw, "product", path, (*PRODUCTS, COMPOSITE))
            value = c.number(raw, "yen_per_kw_h", path)
            if product in seen_caps:
                c.add(f"{path}.product", f"duplicate cap for {_show(product)}")
            elif product is not None and value is not None:
                seen_caps.add(product)
                caps.append(PriceCap(product, value))

    # lines
    lines: list[Line] = []
    line_ids: set[str] = set()
    for i, raw in enumerate(c.list_of_objects(doc, "lines")):
        path = f"lines[{i}]"
        if not c.fields(raw, path, LINE_FIELDS, {"id", "from_area", "to_area"}):
            continue
        lid = c.string(raw, "id", path)
        if lid is not None and lid in line_ids:
            c.add(f"{path}.id", f"duplicate line id {_show(lid)}")
            lid = None
        ends = []
        for key in ("from_area", "to_area"):
            a = c.string(raw, key, path)
            if a is not None and a not in area_set:
                c.add(f"{path}.{key}", f"unknown area {_show(a)}")
                a = None
            ends.append(a)
        if ends[0] is not None and ends[0] == ends[1]:
            c.add(f"{path}.to_area", f"line connects area {_show(ends[0])} to itself")
        caps_by_dir = []
        for direction in ("forward", "backward"):
            flat = c.number(raw, f"{direction}_kw", path)
            by_block = c.by_block(raw, f"{direction}_kw_by_block", path, blocks)
            if f"{direction}_kw" not in raw and f"{direction}_kw_by_block" not in raw:
                c.add(f"{path}.{direction}_kw", "missing required field (or give "
                      f"{direction}_kw_by_block)")
            if by_block is None and flat is not None and blocks is not None:
                by_block = (flat,) * blocks
            caps_by_dir.append(by_block)
        line_products = product_set
        if "products" in raw:
            listed = c.id_list(raw, "products", path, known=product_set, what="product")
            line_products = set(listed) if listed is not None else None
        if lid is not None:
            line_ids.add(lid)
        if None not in (lid, *ends, *caps_by_dir, line_products):
            lines.append(Line(lid, ends[0], ends[1], caps_by_dir[0], caps_by_dir[1], frozenset(line_products)))

    # interfaces
    interfaces: list[Interface] = []
    interface_ids: set[str] = set()
    for i, raw in enumerate(c.list_of_objects(doc, "interfaces")):
        path = f"interfaces[{i}]"
        if not c.fields(raw, path, INTERFACE_FIELDS, INTERFACE_FIELDS):
            continue
        iid = c.string(raw, "id", path)
        if iid is not None and iid in interface_ids:
            c.add(f"{path}.id", f"duplicate interface id {_show(iid)}")
            iid = None
        limit = c.number(raw, "limit_kw", path)
        members: list[InterfaceMember] | None = []
        raw_members = raw.get("members")
        if not isinstance(raw_members, list) or not raw_members:
            c.add(f"{path}.members", f"expected a non-empty list, got {_show(raw_members)}")
            members = None
        else:
            seen_members = set()
            for j, m in enumerate(raw_members):
                mpath = f"{path}.members[{j}]"
                if not c.fields(m, mpath, MEMBER_FIELDS, MEMBER_FIELDS):
                    members = None
                    continue
                line = c.string(m, "line", mpath)
                if line is not None and line not in line_ids:
                    c.add(f"{mpath}.line", f"unknown line {_show(line)}")
                    line = None
                direction = c.enum(m, "direction", mpath, tuple(d.value for d in Direction))
                if (line, direction) in seen_members:
                    c.add(mpath, f"duplicate member {line} {direction}")
                    members = None
                seen_members.add((line, direction))
                if line is None or direction is None:
                    members = None
                elif members is not None:
                    members.append(InterfaceMember(line, Direction(direction)))
        if iid is not None:
            interface_ids.add(iid)
        if iid is not None and limit is not None and members is not None:
            interfaces.append(Interface(iid, limit, tuple(members)))

    # requirements
    requirements: list[Requirement] = []
    seen_req: dict[tuple, int] = {}
    for i, raw in enumerate(c.list_of_objects(doc, "requirements")):
        path = f"requirements[{i}]"
        if not c.fields(raw, path, REQUIREMENT_FIELDS, {"area", "product", "block", "kw"}):
            continue
        area = c.string(raw, "area", path)
        if area is not None and area not in area_set:
            c.add(f"{path}.area", f"unknown area {_show(area)}")
            area = None
        product = c.string(raw, "product", path)
        if product is not None and product not in product_set:
            c.add(f"{path}.product", f"unknown product {_show(product)} (not in products)")
            product = None
        block = check_block(raw.get("block"), f"{path}.block") if "block" in raw else None
        kw = c.number(raw, "kw", path)
        max_import = c.number(raw, "max_import_kw", path)
        key = (area, product, block)
        if None not in key and key in seen_req:
            c.add(path, f"duplicate requirement for area {area!r}, product {product!r}, block {block} "
                  f"(also requirements[{seen_req[key]}])")
            continue
        if None not in key:
            seen_req[key] = i
        if None not in (area, product, block, kw):
            requirements.append(Requirement(area, product, block, kw, max_import))

    # resources
    resources: list[Resource] = []
    resource_area: dict[str, str | None] = {}
    for i, raw in enumerate(c.list_of_objects(doc, "resources")):
        path = f"resources[{i}]"
        if not c.fields(raw, path, RESOURCE_FIELDS, {"id", "area"}):
            continue
        rid = c.string(raw, "id", path)
        if rid is not None and rid in resource_area:
            c.add(f"{path}.id", f"duplicate resource id {_show(rid)}")
            rid = None
        area = c.string(raw, "area", path)
        if area is not None and area not in area_set:
            c.add(f"{path}.area", f"unknown area {_show(area)}")
            area = None
        flat = c.number(raw, "capacity_kw", path)
        by_block = c.by_block(raw, "capacity_kw_by_block", path, blocks)
        if "capacity_kw" in raw and "capacity_kw_by_block" in raw:
            c.add(f"{path}.capacity_kw_by_block", "give capacity_kw or capacity_kw_by_block, not both")
        if by_block is None and flat is not None and blocks is not None:
            by_block = (flat,) * blocks
        startup = c.number(raw, "startup_cost_yen", path)
        if rid is not None:
            resource_area[rid] = area
            if area is not None:
                resources.append(Resource(rid, area, by_block, startup or 0.0))

    # bids
    bids: list[Bid] = []
    bid_index: dict[str, int] = {}
    raw_bids = c.list_of_objects(doc, "bids")
    parents: dict[str, tuple[str, int]] = {}
    for i, raw in enumerate(raw_bids):
        path = f"bids[{i}]"
        if not c.fields(raw, path, BID_FIELDS, BID_REQUIRED):
            continue
        bid_id = c.string(raw, "id", path)
        if bid_id is not None and bid_id in bid_index:
            c.add(f"{path}.id", f"duplicate bid id {_show(bid_id)} (also bids[{bid_index[bid_id]}])")
            bid_id = None
        elif bid_id is not None:
            bid_index[bid_id] = i
        area = c.string(raw, "area", path)
        if area is not None and area not in area_set:
            c.add(f"{path}.area", f"unknown area {_show(area)}")
            area = None
        bid_products = c.id_list(raw, "products", path, known=product_set, what="product")
        bid_blocks: list[int] | None = None
        raw_blocks = raw.get("blocks")
        if "blocks" in raw:
            if not isinstance(raw_blocks, list) or not raw_blocks:
                c.add(f"{path}.blocks", f"expected a non-empty list of blocks, got {_show(raw_blocks)}")
            else:
                checked = [check_block(b, f"{path}.blocks[{j}]") for j, b in enumerate(raw_blocks)]
                if None not in checked:
                    if len(set(checked)) != len(checked):
                        c.add(f"{path}.blocks", f"duplicate block in {_show(raw_blocks)}")
                    else:
                        bid_blocks = sorted(checked)
        kw = c.number(raw, "kw", path, integral=True, positive=True)
        min_kw = c.number(raw, "min_kw", path, integral=True) if "min_kw" in raw else 0.0
        if kw is not None and min_kw is not None and min_kw > kw:
            c.add(f"{path}.min_kw", f"{_show(raw['min_kw'])} exceeds kw {_show(raw['kw'])}")
            min_kw = None
        price = c.number(raw, "price_yen_per_kw_h", path)
        category = c.enum(raw, "category", path, tuple(k.value for k in Category))
        resource = c.string(raw, "resource", path)
        if resource is not None:
            if resource not in resource_area:
                c.add(f"{path}.resource", f"unknown resource {_show(resource)}")
                resource = None
            elif area is not None and resource_area[resource] not in (None, area):
                c.add(f"{path}.resource", f"resource {_show(resource)} is in area "
                      f"{_show(resource_area[resource])}, the bid in {_show(area)}")
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

    # parent references and cycles
    for child, (parent, i) in parents.items():
        if parent not in bid_index:
            c.add(f"bids[{i}].parent", f"unknown bid {_show(parent)}")
        elif parent == child:
            c.add(f"bids[{i}].parent", f"bid {_show(child)} is its own parent")
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
                c.add(f"bids[{i}].cost.substitutes", f"unknown bid {_show(sub)}")

    for path, message in plausibility_problems(doc):  # clearing.limits: the limits, in one place
        c.add(path, message)
    if c.problems:
        raise InvalidAuction(c.problems)
    return Auction(
        auction_id=auction_id, trading_date=trading_date, blocks=blocks, block_minutes=int(block_minutes_f),
        areas=tuple(areas), products=tuple(products), shortfall_price_yen_per_kw_h=shortfall_price,
        lines=tuple(lines), interfaces=tuple(interfaces), requirements=tuple(requirements),
        resources=tuple(resources), bids=tuple(bids), price_caps=tuple(caps) if caps is not None else None,
        price_cap_mode=PriceCapMode(mode) if mode else PriceCapMode.REJECT,
        input_sha256=input_sha256 if input_sha256 is not None else document_sha256(doc),
    )


def _metering(c: _Checker, raw: dict, path: str) -> Metering | None:
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
            c.add(f"{mpath}.next_gen_smart_meter", f"expected true or false, got {_show(m['next_gen_smart_meter'])}")
        else:
            values["next_gen_smart_meter"] = m["next_gen_smart_meter"]
    return Metering(**values)


def _cost(c: _Checker, raw: dict, path: str) -> CostInfo | None:
    if "cost" not in raw:
        return None
    m = raw["cost"]
    cpath = f"{path}.cost"
    if not c.fields(m, cpath, COST_FIELDS, set()):
        return None
    values: dict[str, Any] = {key: c.number(m, key, cpath) for key in COST_NUMBERS}
    values["substitutes"] = c.string(m, "substitutes", cpath)
    return CostInfo(**values)
