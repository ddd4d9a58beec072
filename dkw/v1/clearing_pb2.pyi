import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    forward: _ClassVar[Direction]
    backward: _ClassVar[Direction]

class AuctionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUCTION_STATE_UNSPECIFIED: _ClassVar[AuctionState]
    QUEUED: _ClassVar[AuctionState]
    RUNNING: _ClassVar[AuctionState]
    DONE: _ClassVar[AuctionState]
    FAILED: _ClassVar[AuctionState]
    CANCELLED: _ClassVar[AuctionState]
DIRECTION_UNSPECIFIED: Direction
forward: Direction
backward: Direction
AUCTION_STATE_UNSPECIFIED: AuctionState
QUEUED: AuctionState
RUNNING: AuctionState
DONE: AuctionState
FAILED: AuctionState
CANCELLED: AuctionState

class Auction(_message.Message):
    __slots__ = ("format", "auction_id", "trading_date", "blocks", "block_minutes", "areas", "products", "shortfall_price_yen_per_kw_h", "price_caps", "price_cap_mode", "lines", "interfaces", "requirements", "resources", "bids")
    class PriceCapMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PRICE_CAP_MODE_UNSPECIFIED: _ClassVar[Auction.PriceCapMode]
        REJECT: _ClassVar[Auction.PriceCapMode]
        PAY_CAP: _ClassVar[Auction.PriceCapMode]
    PRICE_CAP_MODE_UNSPECIFIED: Auction.PriceCapMode
    REJECT: Auction.PriceCapMode
    PAY_CAP: Auction.PriceCapMode
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    TRADING_DATE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_MINUTES_FIELD_NUMBER: _ClassVar[int]
    AREAS_FIELD_NUMBER: _ClassVar[int]
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_PRICE_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    PRICE_CAPS_FIELD_NUMBER: _ClassVar[int]
    PRICE_CAP_MODE_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    format: str
    auction_id: str
    trading_date: str
    blocks: int
    block_minutes: int
    areas: _containers.RepeatedScalarFieldContainer[str]
    products: _containers.RepeatedScalarFieldContainer[str]
    shortfall_price_yen_per_kw_h: float
    price_caps: _containers.RepeatedCompositeFieldContainer[PriceCap]
    price_cap_mode: Auction.PriceCapMode
    lines: _containers.RepeatedCompositeFieldContainer[Line]
    interfaces: _containers.RepeatedCompositeFieldContainer[Interface]
    requirements: _containers.RepeatedCompositeFieldContainer[Requirement]
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    bids: _containers.RepeatedCompositeFieldContainer[Bid]
    def __init__(self, format: _Optional[str] = ..., auction_id: _Optional[str] = ..., trading_date: _Optional[str] = ..., blocks: _Optional[int] = ..., block_minutes: _Optional[int] = ..., areas: _Optional[_Iterable[str]] = ..., products: _Optional[_Iterable[str]] = ..., shortfall_price_yen_per_kw_h: _Optional[float] = ..., price_caps: _Optional[_Iterable[_Union[PriceCap, _Mapping]]] = ..., price_cap_mode: _Optional[_Union[Auction.PriceCapMode, str]] = ..., lines: _Optional[_Iterable[_Union[Line, _Mapping]]] = ..., interfaces: _Optional[_Iterable[_Union[Interface, _Mapping]]] = ..., requirements: _Optional[_Iterable[_Union[Requirement, _Mapping]]] = ..., resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ..., bids: _Optional[_Iterable[_Union[Bid, _Mapping]]] = ...) -> None: ...

class PriceCap(_message.Message):
    __slots__ = ("product", "yen_per_kw_h")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    product: str
    yen_per_kw_h: float
    def __init__(self, product: _Optional[str] = ..., yen_per_kw_h: _Optional[float] = ...) -> None: ...

class Line(_message.Message):
    __slots__ = ("id", "from_area", "to_area", "forward_kw", "backward_kw", "forward_kw_by_block", "backward_kw_by_block", "products")
    ID_FIELD_NUMBER: _ClassVar[int]
    FROM_AREA_FIELD_NUMBER: _ClassVar[int]
    TO_AREA_FIELD_NUMBER: _ClassVar[int]
    FORWARD_KW_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_KW_FIELD_NUMBER: _ClassVar[int]
    FORWARD_KW_BY_BLOCK_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_KW_BY_BLOCK_FIELD_NUMBER: _ClassVar[int]
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    from_area: str
    to_area: str
    forward_kw: float
    backward_kw: float
    forward_kw_by_block: _containers.RepeatedScalarFieldContainer[float]
    backward_kw_by_block: _containers.RepeatedScalarFieldContainer[float]
    products: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., from_area: _Optional[str] = ..., to_area: _Optional[str] = ..., forward_kw: _Optional[float] = ..., backward_kw: _Optional[float] = ..., forward_kw_by_block: _Optional[_Iterable[float]] = ..., backward_kw_by_block: _Optional[_Iterable[float]] = ..., products: _Optional[_Iterable[str]] = ...) -> None: ...

class InterfaceMember(_message.Message):
    __slots__ = ("line", "direction")
    LINE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    line: str
    direction: Direction
    def __init__(self, line: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ...) -> None: ...

class Interface(_message.Message):
    __slots__ = ("id", "limit_kw", "members")
    ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_KW_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    limit_kw: float
    members: _containers.RepeatedCompositeFieldContainer[InterfaceMember]
    def __init__(self, id: _Optional[str] = ..., limit_kw: _Optional[float] = ..., members: _Optional[_Iterable[_Union[InterfaceMember, _Mapping]]] = ...) -> None: ...

class Requirement(_message.Message):
    __slots__ = ("area", "product", "block", "kw", "max_import_kw")
    AREA_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    KW_FIELD_NUMBER: _ClassVar[int]
    MAX_IMPORT_KW_FIELD_NUMBER: _ClassVar[int]
    area: str
    product: str
    block: int
    kw: float
    max_import_kw: float
    def __init__(self, area: _Optional[str] = ..., product: _Optional[str] = ..., block: _Optional[int] = ..., kw: _Optional[float] = ..., max_import_kw: _Optional[float] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("id", "area", "capacity_kw", "capacity_kw_by_block", "startup_cost_yen")
    ID_FIELD_NUMBER: _ClassVar[int]
    AREA_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_KW_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_KW_BY_BLOCK_FIELD_NUMBER: _ClassVar[int]
    STARTUP_COST_YEN_FIELD_NUMBER: _ClassVar[int]
    id: str
    area: str
    capacity_kw: float
    capacity_kw_by_block: _containers.RepeatedScalarFieldContainer[float]
    startup_cost_yen: float
    def __init__(self, id: _Optional[str] = ..., area: _Optional[str] = ..., capacity_kw: _Optional[float] = ..., capacity_kw_by_block: _Optional[_Iterable[float]] = ..., startup_cost_yen: _Optional[float] = ...) -> None: ...

class Metering(_message.Message):
    __slots__ = ("point", "receiving_voltage", "receiving_capacity_kw", "device_voltage", "device_capacity_kw", "resource_type", "meter", "next_gen_smart_meter")
    class Point(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        POINT_UNSPECIFIED: _ClassVar[Metering.Point]
        RECEIVING: _ClassVar[Metering.Point]
        DEVICE: _ClassVar[Metering.Point]
    POINT_UNSPECIFIED: Metering.Point
    RECEIVING: Metering.Point
    DEVICE: Metering.Point
    class VoltageClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        VOLTAGE_CLASS_UNSPECIFIED: _ClassVar[Metering.VoltageClass]
        LOW: _ClassVar[Metering.VoltageClass]
        HIGH: _ClassVar[Metering.VoltageClass]
        EXTRA_HIGH: _ClassVar[Metering.VoltageClass]
    VOLTAGE_CLASS_UNSPECIFIED: Metering.VoltageClass
    LOW: Metering.VoltageClass
    HIGH: Metering.VoltageClass
    EXTRA_HIGH: Metering.VoltageClass
    class ResourceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RESOURCE_TYPE_UNSPECIFIED: _ClassVar[Metering.ResourceType]
        NEGATIVE: _ClassVar[Metering.ResourceType]
        NEGATIVE_POSITIVE: _ClassVar[Metering.ResourceType]
        POSITIVE: _ClassVar[Metering.ResourceType]
        PUMPED_GENERATION: _ClassVar[Metering.ResourceType]
        PUMPED_LOAD_STORAGE: _ClassVar[Metering.ResourceType]
        PUMPED_LOAD_VPP: _ClassVar[Metering.ResourceType]
    RESOURCE_TYPE_UNSPECIFIED: Metering.ResourceType
    NEGATIVE: Metering.ResourceType
    NEGATIVE_POSITIVE: Metering.ResourceType
    POSITIVE: Metering.ResourceType
    PUMPED_GENERATION: Metering.ResourceType
    PUMPED_LOAD_STORAGE: Metering.ResourceType
    PUMPED_LOAD_VPP: Metering.ResourceType
    class Meter(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        METER_UNSPECIFIED: _ClassVar[Metering.Meter]
        TSO: _ClassVar[Metering.Meter]
        SPECIFIED: _ClassVar[Metering.Meter]
        SPECIAL_CASE: _ClassVar[Metering.Meter]
    METER_UNSPECIFIED: Metering.Meter
    TSO: Metering.Meter
    SPECIFIED: Metering.Meter
    SPECIAL_CASE: Metering.Meter
    POINT_FIELD_NUMBER: _ClassVar[int]
    RECEIVING_VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    RECEIVING_CAPACITY_KW_FIELD_NUMBER: _ClassVar[int]
    DEVICE_VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_CAPACITY_KW_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    METER_FIELD_NUMBER: _ClassVar[int]
    NEXT_GEN_SMART_METER_FIELD_NUMBER: _ClassVar[int]
    point: Metering.Point
    receiving_voltage: Metering.VoltageClass
    receiving_capacity_kw: float
    device_voltage: Metering.VoltageClass
    device_capacity_kw: float
    resource_type: Metering.ResourceType
    meter: Metering.Meter
    next_gen_smart_meter: bool
    def __init__(self, point: _Optional[_Union[Metering.Point, str]] = ..., receiving_voltage: _Optional[_Union[Metering.VoltageClass, str]] = ..., receiving_capacity_kw: _Optional[float] = ..., device_voltage: _Optional[_Union[Metering.VoltageClass, str]] = ..., device_capacity_kw: _Optional[float] = ..., resource_type: _Optional[_Union[Metering.ResourceType, str]] = ..., meter: _Optional[_Union[Metering.Meter, str]] = ..., next_gen_smart_meter: _Optional[bool] = ...) -> None: ...

class CostInfo(_message.Message):
    __slots__ = ("marginal_cost_yen_per_kwh", "opportunity_cost_yen_per_kw_h", "fixed_cost_ceiling_yen", "expected_award_kw", "substitutes")
    MARGINAL_COST_YEN_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    OPPORTUNITY_COST_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    FIXED_COST_CEILING_YEN_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_AWARD_KW_FIELD_NUMBER: _ClassVar[int]
    SUBSTITUTES_FIELD_NUMBER: _ClassVar[int]
    marginal_cost_yen_per_kwh: float
    opportunity_cost_yen_per_kw_h: float
    fixed_cost_ceiling_yen: float
    expected_award_kw: float
    substitutes: str
    def __init__(self, marginal_cost_yen_per_kwh: _Optional[float] = ..., opportunity_cost_yen_per_kw_h: _Optional[float] = ..., fixed_cost_ceiling_yen: _Optional[float] = ..., expected_award_kw: _Optional[float] = ..., substitutes: _Optional[str] = ...) -> None: ...

class Bid(_message.Message):
    __slots__ = ("id", "area", "products", "blocks", "kw", "min_kw", "price_yen_per_kw_h", "category", "resource", "group", "parent", "metering", "cost")
    class Category(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CATEGORY_UNSPECIFIED: _ClassVar[Bid.Category]
        SINGLE_GENERATOR: _ClassVar[Bid.Category]
        LIST_PATTERN: _ClassVar[Bid.Category]
        DEVICE_POINT_SINGLE_GENERATOR: _ClassVar[Bid.Category]
        DEVICE_POINT_LIST_PATTERN: _ClassVar[Bid.Category]
        LOW_VOLTAGE_AGGREGATE: _ClassVar[Bid.Category]
    CATEGORY_UNSPECIFIED: Bid.Category
    SINGLE_GENERATOR: Bid.Category
    LIST_PATTERN: Bid.Category
    DEVICE_POINT_SINGLE_GENERATOR: Bid.Category
    DEVICE_POINT_LIST_PATTERN: Bid.Category
    LOW_VOLTAGE_AGGREGATE: Bid.Category
    ID_FIELD_NUMBER: _ClassVar[int]
    AREA_FIELD_NUMBER: _ClassVar[int]
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    KW_FIELD_NUMBER: _ClassVar[int]
    MIN_KW_FIELD_NUMBER: _ClassVar[int]
    PRICE_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    METERING_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    id: str
    area: str
    products: _containers.RepeatedScalarFieldContainer[str]
    blocks: _containers.RepeatedScalarFieldContainer[int]
    kw: float
    min_kw: float
    price_yen_per_kw_h: float
    category: Bid.Category
    resource: str
    group: str
    parent: str
    metering: Metering
    cost: CostInfo
    def __init__(self, id: _Optional[str] = ..., area: _Optional[str] = ..., products: _Optional[_Iterable[str]] = ..., blocks: _Optional[_Iterable[int]] = ..., kw: _Optional[float] = ..., min_kw: _Optional[float] = ..., price_yen_per_kw_h: _Optional[float] = ..., category: _Optional[_Union[Bid.Category, str]] = ..., resource: _Optional[str] = ..., group: _Optional[str] = ..., parent: _Optional[str] = ..., metering: _Optional[_Union[Metering, _Mapping]] = ..., cost: _Optional[_Union[CostInfo, _Mapping]] = ...) -> None: ...

class ClearingResult(_message.Message):
    __slots__ = ("format", "auction_id", "trading_date", "status", "objective_yen", "procurement_cost_yen", "startup_cost_yen", "shortfall_penalty_yen", "payment_total_yen", "awards", "flows", "shortfalls", "prices", "area_summary", "rejected_bids", "solver", "input_sha256", "extra", "explanations")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[ClearingResult.Status]
        OPTIMAL: _ClassVar[ClearingResult.Status]
        TIME_LIMIT_FEASIBLE: _ClassVar[ClearingResult.Status]
        TIME_LIMIT_NO_SOLUTION: _ClassVar[ClearingResult.Status]
        CANCELLED: _ClassVar[ClearingResult.Status]
        ERROR: _ClassVar[ClearingResult.Status]
        INFEASIBLE_INPUT: _ClassVar[ClearingResult.Status]
    STATUS_UNSPECIFIED: ClearingResult.Status
    OPTIMAL: ClearingResult.Status
    TIME_LIMIT_FEASIBLE: ClearingResult.Status
    TIME_LIMIT_NO_SOLUTION: ClearingResult.Status
    CANCELLED: ClearingResult.Status
    ERROR: ClearingResult.Status
    INFEASIBLE_INPUT: ClearingResult.Status
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    TRADING_DATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_YEN_FIELD_NUMBER: _ClassVar[int]
    PROCUREMENT_COST_YEN_FIELD_NUMBER: _ClassVar[int]
    STARTUP_COST_YEN_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_PENALTY_YEN_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_TOTAL_YEN_FIELD_NUMBER: _ClassVar[int]
    AWARDS_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    SHORTFALLS_FIELD_NUMBER: _ClassVar[int]
    PRICES_FIELD_NUMBER: _ClassVar[int]
    AREA_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    REJECTED_BIDS_FIELD_NUMBER: _ClassVar[int]
    SOLVER_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHA256_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    EXPLANATIONS_FIELD_NUMBER: _ClassVar[int]
    format: str
    auction_id: str
    trading_date: str
    status: ClearingResult.Status
    objective_yen: float
    procurement_cost_yen: float
    startup_cost_yen: float
    shortfall_penalty_yen: float
    payment_total_yen: float
    awards: _containers.RepeatedCompositeFieldContainer[Award]
    flows: _containers.RepeatedCompositeFieldContainer[Flow]
    shortfalls: _containers.RepeatedCompositeFieldContainer[Shortfall]
    prices: _containers.RepeatedCompositeFieldContainer[MarginalPrice]
    area_summary: _containers.RepeatedCompositeFieldContainer[AreaSummary]
    rejected_bids: _containers.RepeatedCompositeFieldContainer[RejectedBid]
    solver: SolverInfo
    input_sha256: str
    extra: _struct_pb2.Struct
    explanations: _containers.RepeatedCompositeFieldContainer[Explanation]
    def __init__(self, format: _Optional[str] = ..., auction_id: _Optional[str] = ..., trading_date: _Optional[str] = ..., status: _Optional[_Union[ClearingResult.Status, str]] = ..., objective_yen: _Optional[float] = ..., procurement_cost_yen: _Optional[float] = ..., startup_cost_yen: _Optional[float] = ..., shortfall_penalty_yen: _Optional[float] = ..., payment_total_yen: _Optional[float] = ..., awards: _Optional[_Iterable[_Union[Award, _Mapping]]] = ..., flows: _Optional[_Iterable[_Union[Flow, _Mapping]]] = ..., shortfalls: _Optional[_Iterable[_Union[Shortfall, _Mapping]]] = ..., prices: _Optional[_Iterable[_Union[MarginalPrice, _Mapping]]] = ..., area_summary: _Optional[_Iterable[_Union[AreaSummary, _Mapping]]] = ..., rejected_bids: _Optional[_Iterable[_Union[RejectedBid, _Mapping]]] = ..., solver: _Optional[_Union[SolverInfo, _Mapping]] = ..., input_sha256: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., explanations: _Optional[_Iterable[_Union[Explanation, _Mapping]]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("bid", "reason", "text", "kw", "accepted_kw", "price_yen_per_kw_h", "marginal_yen_per_kw_h", "value_yen_per_kw_h", "other_area", "other_marginal_yen_per_kw_h", "extra_cost_yen", "extra_cost_lower_bound_yen", "proven", "verdict", "related")
    BID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    KW_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_KW_FIELD_NUMBER: _ClassVar[int]
    PRICE_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    MARGINAL_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    VALUE_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    OTHER_AREA_FIELD_NUMBER: _ClassVar[int]
    OTHER_MARGINAL_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    EXTRA_COST_YEN_FIELD_NUMBER: _ClassVar[int]
    EXTRA_COST_LOWER_BOUND_YEN_FIELD_NUMBER: _ClassVar[int]
    PROVEN_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    RELATED_FIELD_NUMBER: _ClassVar[int]
    bid: str
    reason: str
    text: str
    kw: float
    accepted_kw: float
    price_yen_per_kw_h: float
    marginal_yen_per_kw_h: float
    value_yen_per_kw_h: float
    other_area: str
    other_marginal_yen_per_kw_h: float
    extra_cost_yen: float
    extra_cost_lower_bound_yen: float
    proven: bool
    verdict: str
    related: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, bid: _Optional[str] = ..., reason: _Optional[str] = ..., text: _Optional[str] = ..., kw: _Optional[float] = ..., accepted_kw: _Optional[float] = ..., price_yen_per_kw_h: _Optional[float] = ..., marginal_yen_per_kw_h: _Optional[float] = ..., value_yen_per_kw_h: _Optional[float] = ..., other_area: _Optional[str] = ..., other_marginal_yen_per_kw_h: _Optional[float] = ..., extra_cost_yen: _Optional[float] = ..., extra_cost_lower_bound_yen: _Optional[float] = ..., proven: _Optional[bool] = ..., verdict: _Optional[str] = ..., related: _Optional[_Iterable[str]] = ...) -> None: ...

class Award(_message.Message):
    __slots__ = ("bid", "kw", "payment_yen")
    BID_FIELD_NUMBER: _ClassVar[int]
    KW_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_YEN_FIELD_NUMBER: _ClassVar[int]
    bid: str
    kw: float
    payment_yen: float
    def __init__(self, bid: _Optional[str] = ..., kw: _Optional[float] = ..., payment_yen: _Optional[float] = ...) -> None: ...

class Flow(_message.Message):
    __slots__ = ("line", "direction", "product", "block", "kw")
    LINE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    KW_FIELD_NUMBER: _ClassVar[int]
    line: str
    direction: Direction
    product: str
    block: int
    kw: float
    def __init__(self, line: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., product: _Optional[str] = ..., block: _Optional[int] = ..., kw: _Optional[float] = ...) -> None: ...

class Shortfall(_message.Message):
    __slots__ = ("area", "product", "block", "kw")
    AREA_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    KW_FIELD_NUMBER: _ClassVar[int]
    area: str
    product: str
    block: int
    kw: float
    def __init__(self, area: _Optional[str] = ..., product: _Optional[str] = ..., block: _Optional[int] = ..., kw: _Optional[float] = ...) -> None: ...

class MarginalPrice(_message.Message):
    __slots__ = ("area", "product", "block", "marginal_yen_per_kw_h")
    AREA_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    MARGINAL_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    area: str
    product: str
    block: int
    marginal_yen_per_kw_h: float
    def __init__(self, area: _Optional[str] = ..., product: _Optional[str] = ..., block: _Optional[int] = ..., marginal_yen_per_kw_h: _Optional[float] = ...) -> None: ...

class AreaSummary(_message.Message):
    __slots__ = ("area", "product", "block", "requirement_kw", "offered_kw", "awarded_local_kw", "awarded_for_area_kw", "shortfall_kw", "max_price_yen_per_kw_h", "min_price_yen_per_kw_h", "avg_price_yen_per_kw_h")
    AREA_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENT_KW_FIELD_NUMBER: _ClassVar[int]
    OFFERED_KW_FIELD_NUMBER: _ClassVar[int]
    AWARDED_LOCAL_KW_FIELD_NUMBER: _ClassVar[int]
    AWARDED_FOR_AREA_KW_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_KW_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    AVG_PRICE_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    area: str
    product: str
    block: int
    requirement_kw: float
    offered_kw: float
    awarded_local_kw: float
    awarded_for_area_kw: float
    shortfall_kw: float
    max_price_yen_per_kw_h: float
    min_price_yen_per_kw_h: float
    avg_price_yen_per_kw_h: float
    def __init__(self, area: _Optional[str] = ..., product: _Optional[str] = ..., block: _Optional[int] = ..., requirement_kw: _Optional[float] = ..., offered_kw: _Optional[float] = ..., awarded_local_kw: _Optional[float] = ..., awarded_for_area_kw: _Optional[float] = ..., shortfall_kw: _Optional[float] = ..., max_price_yen_per_kw_h: _Optional[float] = ..., min_price_yen_per_kw_h: _Optional[float] = ..., avg_price_yen_per_kw_h: _Optional[float] = ...) -> None: ...

class RejectedBid(_message.Message):
    __slots__ = ("bid", "verdict", "reason")
    BID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    bid: str
    verdict: str
    reason: str
    def __init__(self, bid: _Optional[str] = ..., verdict: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SolverInfo(_message.Message):
    __slots__ = ("name", "version", "termination", "mip_gap", "objective_bound", "seconds", "nodes", "build_seconds", "pricing_seconds", "total_seconds", "options", "solves")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_FIELD_NUMBER: _ClassVar[int]
    MIP_GAP_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_BOUND_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    BUILD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PRICING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SOLVES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    termination: str
    mip_gap: float
    objective_bound: float
    seconds: float
    nodes: int
    build_seconds: float
    pricing_seconds: float
    total_seconds: float
    options: _struct_pb2.Struct
    solves: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., termination: _Optional[str] = ..., mip_gap: _Optional[float] = ..., objective_bound: _Optional[float] = ..., seconds: _Optional[float] = ..., nodes: _Optional[int] = ..., build_seconds: _Optional[float] = ..., pricing_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ..., options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., solves: _Optional[int] = ...) -> None: ...

class SolveOptions(_message.Message):
    __slots__ = ("time_limit_s", "mip_rel_gap", "threads", "method")
    TIME_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    MIP_REL_GAP_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    time_limit_s: float
    mip_rel_gap: float
    threads: int
    method: str
    def __init__(self, time_limit_s: _Optional[float] = ..., mip_rel_gap: _Optional[float] = ..., threads: _Optional[int] = ..., method: _Optional[str] = ...) -> None: ...

class ClearRequest(_message.Message):
    __slots__ = ("auction", "auction_json", "options")
    AUCTION_FIELD_NUMBER: _ClassVar[int]
    AUCTION_JSON_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    auction: Auction
    auction_json: bytes
    options: SolveOptions
    def __init__(self, auction: _Optional[_Union[Auction, _Mapping]] = ..., auction_json: _Optional[bytes] = ..., options: _Optional[_Union[SolveOptions, _Mapping]] = ...) -> None: ...

class ClearResponse(_message.Message):
    __slots__ = ("auction_id", "state", "reason", "result", "result_json", "result_signature")
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    RESULT_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    state: AuctionState
    reason: str
    result: ClearingResult
    result_json: bytes
    result_signature: str
    def __init__(self, auction_id: _Optional[str] = ..., state: _Optional[_Union[AuctionState, str]] = ..., reason: _Optional[str] = ..., result: _Optional[_Union[ClearingResult, _Mapping]] = ..., result_json: _Optional[bytes] = ..., result_signature: _Optional[str] = ...) -> None: ...

class SubmitAuctionRequest(_message.Message):
    __slots__ = ("auction", "auction_json", "idempotency_key", "options")
    AUCTION_FIELD_NUMBER: _ClassVar[int]
    AUCTION_JSON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    auction: Auction
    auction_json: bytes
    idempotency_key: str
    options: SolveOptions
    def __init__(self, auction: _Optional[_Union[Auction, _Mapping]] = ..., auction_json: _Optional[bytes] = ..., idempotency_key: _Optional[str] = ..., options: _Optional[_Union[SolveOptions, _Mapping]] = ...) -> None: ...

class SubmitAuctionResponse(_message.Message):
    __slots__ = ("auction_id", "input_sha256", "state", "created")
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHA256_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    input_sha256: str
    state: AuctionState
    created: bool
    def __init__(self, auction_id: _Optional[str] = ..., input_sha256: _Optional[str] = ..., state: _Optional[_Union[AuctionState, str]] = ..., created: _Optional[bool] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("auction_id", "reason")
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    reason: str
    def __init__(self, auction_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetResultRequest(_message.Message):
    __slots__ = ("auction_id",)
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    def __init__(self, auction_id: _Optional[str] = ...) -> None: ...

class ListAuctionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: AuctionState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[AuctionState, str]] = ...) -> None: ...

class AuctionInfo(_message.Message):
    __slots__ = ("auction_id", "document_auction_id", "trading_date", "input_sha256", "received_at", "state", "reason", "idempotency_key", "attempts", "status", "objective_yen", "mip_gap", "solve_seconds", "solver")
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    TRADING_DATE_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHA256_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_YEN_FIELD_NUMBER: _ClassVar[int]
    MIP_GAP_FIELD_NUMBER: _ClassVar[int]
    SOLVE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SOLVER_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    document_auction_id: str
    trading_date: str
    input_sha256: str
    received_at: _timestamp_pb2.Timestamp
    state: AuctionState
    reason: str
    idempotency_key: str
    attempts: int
    status: ClearingResult.Status
    objective_yen: float
    mip_gap: float
    solve_seconds: float
    solver: str
    def __init__(self, auction_id: _Optional[str] = ..., document_auction_id: _Optional[str] = ..., trading_date: _Optional[str] = ..., input_sha256: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[AuctionState, str]] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., attempts: _Optional[int] = ..., status: _Optional[_Union[ClearingResult.Status, str]] = ..., objective_yen: _Optional[float] = ..., mip_gap: _Optional[float] = ..., solve_seconds: _Optional[float] = ..., solver: _Optional[str] = ...) -> None: ...

class ListAuctionsResponse(_message.Message):
    __slots__ = ("auctions", "next_page_token")
    AUCTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    auctions: _containers.RepeatedCompositeFieldContainer[AuctionInfo]
    next_page_token: str
    def __init__(self, auctions: _Optional[_Iterable[_Union[AuctionInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("auction_id",)
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    def __init__(self, auction_id: _Optional[str] = ...) -> None: ...

class ClearingProgress(_message.Message):
    __slots__ = ("auction_id", "phase", "state", "elapsed_s", "incumbent_yen", "bound_yen", "gap", "message", "result", "result_json", "result_signature")
    class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PHASE_UNSPECIFIED: _ClassVar[ClearingProgress.Phase]
        QUEUED: _ClassVar[ClearingProgress.Phase]
        VALIDATING: _ClassVar[ClearingProgress.Phase]
        BUILDING: _ClassVar[ClearingProgress.Phase]
        SOLVING: _ClassVar[ClearingProgress.Phase]
        PRICING: _ClassVar[ClearingProgress.Phase]
        DONE: _ClassVar[ClearingProgress.Phase]
        FAILED: _ClassVar[ClearingProgress.Phase]
        CANCELLED: _ClassVar[ClearingProgress.Phase]
    PHASE_UNSPECIFIED: ClearingProgress.Phase
    QUEUED: ClearingProgress.Phase
    VALIDATING: ClearingProgress.Phase
    BUILDING: ClearingProgress.Phase
    SOLVING: ClearingProgress.Phase
    PRICING: ClearingProgress.Phase
    DONE: ClearingProgress.Phase
    FAILED: ClearingProgress.Phase
    CANCELLED: ClearingProgress.Phase
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    INCUMBENT_YEN_FIELD_NUMBER: _ClassVar[int]
    BOUND_YEN_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    RESULT_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    auction_id: str
    phase: ClearingProgress.Phase
    state: AuctionState
    elapsed_s: float
    incumbent_yen: float
    bound_yen: float
    gap: float
    message: str
    result: ClearingResult
    result_json: bytes
    result_signature: str
    def __init__(self, auction_id: _Optional[str] = ..., phase: _Optional[_Union[ClearingProgress.Phase, str]] = ..., state: _Optional[_Union[AuctionState, str]] = ..., elapsed_s: _Optional[float] = ..., incumbent_yen: _Optional[float] = ..., bound_yen: _Optional[float] = ..., gap: _Optional[float] = ..., message: _Optional[str] = ..., result: _Optional[_Union[ClearingResult, _Mapping]] = ..., result_json: _Optional[bytes] = ..., result_signature: _Optional[str] = ...) -> None: ...

class ValidateRequest(_message.Message):
    __slots__ = ("auction", "auction_json")
    AUCTION_FIELD_NUMBER: _ClassVar[int]
    AUCTION_JSON_FIELD_NUMBER: _ClassVar[int]
    auction: Auction
    auction_json: bytes
    def __init__(self, auction: _Optional[_Union[Auction, _Mapping]] = ..., auction_json: _Optional[bytes] = ...) -> None: ...

class Problem(_message.Message):
    __slots__ = ("path", "message")
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    path: str
    message: str
    def __init__(self, path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class MonitoringFlag(_message.Message):
    __slots__ = ("flag", "rule", "price_yen_per_kw_h", "limit_yen_per_kw_h", "reason", "term_ja")
    FLAG_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    PRICE_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    LIMIT_YEN_PER_KW_H_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TERM_JA_FIELD_NUMBER: _ClassVar[int]
    flag: str
    rule: str
    price_yen_per_kw_h: float
    limit_yen_per_kw_h: float
    reason: str
    term_ja: str
    def __init__(self, flag: _Optional[str] = ..., rule: _Optional[str] = ..., price_yen_per_kw_h: _Optional[float] = ..., limit_yen_per_kw_h: _Optional[float] = ..., reason: _Optional[str] = ..., term_ja: _Optional[str] = ...) -> None: ...

class BidVerdict(_message.Message):
    __slots__ = ("bid", "verdict", "reason", "term_ja", "clearing", "left_out_because", "flags", "opening")
    BID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TERM_JA_FIELD_NUMBER: _ClassVar[int]
    CLEARING_FIELD_NUMBER: _ClassVar[int]
    LEFT_OUT_BECAUSE_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    OPENING_FIELD_NUMBER: _ClassVar[int]
    bid: str
    verdict: str
    reason: str
    term_ja: str
    clearing: str
    left_out_because: str
    flags: _containers.RepeatedCompositeFieldContainer[MonitoringFlag]
    opening: str
    def __init__(self, bid: _Optional[str] = ..., verdict: _Optional[str] = ..., reason: _Optional[str] = ..., term_ja: _Optional[str] = ..., clearing: _Optional[str] = ..., left_out_because: _Optional[str] = ..., flags: _Optional[_Iterable[_Union[MonitoringFlag, _Mapping]]] = ..., opening: _Optional[str] = ...) -> None: ...

class ValidateResponse(_message.Message):
    __slots__ = ("valid", "problems", "input_sha256", "bids", "requirements", "verdicts", "market_rules")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHA256_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    MARKET_RULES_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    problems: _containers.RepeatedCompositeFieldContainer[Problem]
    input_sha256: str
    bids: int
    requirements: int
    verdicts: _containers.RepeatedCompositeFieldContainer[BidVerdict]
    market_rules: _struct_pb2.Struct
    def __init__(self, valid: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[Problem, _Mapping]]] = ..., input_sha256: _Optional[str] = ..., bids: _Optional[int] = ..., requirements: _Optional[int] = ..., verdicts: _Optional[_Iterable[_Union[BidVerdict, _Mapping]]] = ..., market_rules: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ListAuditRecordsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "client_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    client_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., client_id: _Optional[str] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("record_id", "at", "client_id", "peer", "method", "auction_id", "status_code", "detail", "server")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    AUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    at: str
    client_id: str
    peer: str
    method: str
    auction_id: str
    status_code: str
    detail: str
    server: str
    def __init__(self, record_id: _Optional[str] = ..., at: _Optional[str] = ..., client_id: _Optional[str] = ..., peer: _Optional[str] = ..., method: _Optional[str] = ..., auction_id: _Optional[str] = ..., status_code: _Optional[str] = ..., detail: _Optional[str] = ..., server: _Optional[str] = ...) -> None: ...

class ListAuditRecordsResponse(_message.Message):
    __slots__ = ("records", "next_page_token")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    next_page_token: str
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
