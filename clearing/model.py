"""Domain model of an auction document (SPEC §2): plain frozen dataclasses, units in the names.

Nothing here knows Pyomo, HiGHS or protobuf. Objects are built only by `dkw.clearing.document.load_auction`,
which validates the document first, so code downstream may trust every reference and range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

AUCTION_FORMAT = "jp-balancing-auction/1"
RESULT_FORMAT = "jp-balancing-result/1"

#: Products in SPEC §1 order, fastest first. `composite` is not a product: it names the cap of bids
#: offering several products (複合).
PRODUCTS = ("primary", "secondary1", "secondary2", "tertiary1", "tertiary2")
COMPOSITE = "composite"


class Category(str, Enum):
    """Bid category (入札区分)."""

    SINGLE_GENERATOR = "SINGLE_GENERATOR"  # 単独電源
    LIST_PATTERN = "LIST_PATTERN"  # リスト・パターン
    DEVICE_POINT_SINGLE_GENERATOR = "DEVICE_POINT_SINGLE_GENERATOR"  # 機器点単独発電機
    DEVICE_POINT_LIST_PATTERN = "DEVICE_POINT_LIST_PATTERN"  # 機器点リスト・パターン
    LOW_VOLTAGE_AGGREGATE = "LOW_VOLTAGE_AGGREGATE"  # 低圧リソース


class Direction(str, Enum):
    """Direction of a flow on a line: `forward` is from_area → to_area."""

    FORWARD = "forward"
    BACKWARD = "backward"


class PriceCapMode(str, Enum):
    """What a bid above its price cap (上限価格) gets: rejected, or accepted and paid the cap."""

    REJECT = "REJECT"
    PAY_CAP = "PAY_CAP"


@dataclass(frozen=True, slots=True)
class PriceCap:
    product: str  # a product code or "composite"
    yen_per_kw_h: float


@dataclass(frozen=True, slots=True)
class Line:
    """Interconnector (連系線) with the capacity set aside for balancing, per direction and block."""

    id: str
    from_area: str
    to_area: str
    forward_kw_by_block: tuple[float, ...]
    backward_kw_by_block: tuple[float, ...]
    products: frozenset[str]  # products allowed on the line

    def capacity_kw(self, direction: Direction, block: int) -> float:
        return self.kw_by_block(direction)[block]

    def kw_by_block(self, direction: Direction | str) -> tuple[float, ...]:
        """The capacity per block in `direction` (a Direction or its value, as documents write it)."""
        return self.forward_kw_by_block if direction == Direction.FORWARD else self.backward_kw_by_block

    def ends(self, direction: Direction | str) -> tuple[str, str]:
        """(the area a flow in `direction` leaves, the area it enters)."""
        return (self.from_area, self.to_area) if direction == Direction.FORWARD else (self.to_area, self.from_area)


@dataclass(frozen=True, slots=True)
class InterfaceMember:
    line: str
    direction: Direction


@dataclass(frozen=True, slots=True)
class Interface:
    """Combined limit over a set of line directions (e.g. 中部関西→北陸), per block, all products."""

    id: str
    limit_kw: float
    members: tuple[InterfaceMember, ...]


@dataclass(frozen=True, slots=True)
class Requirement:
    """Requirement (募集量) of one area, product and block, with an optional import cap."""

    area: str
    product: str
    block: int
    kw: float
    max_import_kw: float | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """A unit or an aggregator's pool that several bids draw on."""

    id: str
    area: str
    capacity_kw_by_block: tuple[float, ...] | None  # None: no capacity limit
    startup_cost_yen: float = 0.0  # 起動費, paid once if any bid on the resource is accepted


@dataclass(frozen=True, slots=True)
class Metering:
    """What device-point eligibility needs (SPEC §5). Values are kept as the document's strings."""

    point: str | None = None  # RECEIVING | DEVICE
    receiving_voltage: str | None = None  # LOW | HIGH | EXTRA_HIGH
    receiving_capacity_kw: float | None = None
    device_voltage: str | None = None
    device_capacity_kw: float | None = None
    resource_type: str | None = None
    meter: str | None = None  # TSO | SPECIFIED | SPECIAL_CASE
    next_gen_smart_meter: bool | None = None


@dataclass(frozen=True, slots=True)
class CostInfo:
    """What price monitoring needs (SPEC §5)."""

    marginal_cost_yen_per_kwh: float | None = None
    opportunity_cost_yen_per_kw_h: float | None = None
    fixed_cost_ceiling_yen: float | None = None
    expected_award_kw: float | None = None
    substitutes: str | None = None  # id of the bid this one substitutes


@dataclass(frozen=True, slots=True)
class Bid:
    """A ΔkW offer: the same quantity in every listed block, counted toward every listed product."""

    id: str
    area: str
    products: tuple[str, ...]
    blocks: tuple[int, ...]
    kw: float
    min_kw: float
    price_yen_per_kw_h: float
    category: Category
    resource: str | None = None
    group: str | None = None  # exclusive group (リスト・パターン): at most one bid of a group accepted
    parent: str | None = None  # linked bid (持ち下げ供出): accepted only if the parent is accepted
    metering: Metering | None = None
    cost: CostInfo | None = None

    @property
    def is_composite(self) -> bool:
        return len(self.products) > 1


@dataclass(frozen=True, slots=True)
class Auction:
    auction_id: str
    trading_date: str
    blocks: int
    block_minutes: int
    areas: tuple[str, ...]
    products: tuple[str, ...]
    shortfall_price_yen_per_kw_h: float
    lines: tuple[Line, ...]
    interfaces: tuple[Interface, ...]
    requirements: tuple[Requirement, ...]
    resources: tuple[Resource, ...]
    bids: tuple[Bid, ...]
    price_caps: tuple[PriceCap, ...] | None = None  # None: the document lists no caps
    price_cap_mode: PriceCapMode = PriceCapMode.REJECT
    input_sha256: str = field(default="", compare=False)

    @property
    def hours_per_block(self) -> float:
        return self.block_minutes / 60.0
