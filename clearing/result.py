"""The clearing result (SPEC §4), computed once; the JSON document, the proto message and the CLI summary
are views of it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from dkw.clearing.left_out import LeftOutBid
from dkw.clearing.model import RESULT_FORMAT

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_PLAIN_TYPES = (str, int, float, bool, type(None))


def plain(obj: Any) -> dict[str, Any]:
    """`dataclasses.asdict`, the same dicts, without its deep copy of every number and string: asdict took
    about 3 s of a 50,000-bid clearing's result and explanations (docs/performance.md, sixth round)."""
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    return {name: _plain_value(getattr(obj, name)) for name in names}


def _plain_value(value: Any) -> Any:
    if isinstance(value, _PLAIN_TYPES):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return plain(value)
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_plain_value(v) for v in value)
    if isinstance(value, dict):
        return {_plain_value(k): _plain_value(v) for k, v in value.items()}
    return copy.deepcopy(value)


@dataclass(frozen=True, slots=True)
class Award:
    bid: str
    kw: float
    payment_yen: float  # pay-as-bid (マルチプライス); PAY_CAP pays min(bid, cap)


@dataclass(frozen=True, slots=True)
class Flow:
    line: str
    direction: str  # forward | backward
    product: str
    block: int
    kw: float


@dataclass(frozen=True, slots=True)
class Shortfall:
    area: str
    product: str
    block: int
    kw: float


@dataclass(frozen=True, slots=True)
class MarginalPrice:
    area: str
    product: str
    block: int
    marginal_yen_per_kw_h: float


@dataclass(frozen=True, slots=True)
class AreaSummary:
    """EPRX's per-block, per-area metrics. awarded_for_area_kw (TSO別) = awarded_local_kw + imports −
    exports of that product and block: what the area's own requirement received, net of transit."""

    area: str
    product: str
    block: int
    requirement_kw: float
    offered_kw: float
    awarded_local_kw: float  # 電源属地別
    awarded_for_area_kw: float  # TSO別
    shortfall_kw: float
    max_price_yen_per_kw_h: float | None
    min_price_yen_per_kw_h: float | None
    avg_price_yen_per_kw_h: float | None


@dataclass(slots=True)
class SolverInfo:
    name: str
    version: str
    termination: str
    mip_gap: float | None
    objective_bound: float | None
    seconds: float  # HiGHS run time of the MIP
    nodes: int
    build_seconds: float = 0.0  # index + model construction + transfer to the solver
    pricing_seconds: float = 0.0
    total_seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    solves: int = 1  # >1 when bids had to be given a binary to honour the 1 kW minimum


#: ClearingResult's fields that the result document names otherwise (the document's names stay as they are).
DOCUMENT_NAMES = {"left_out": "rejected_bids"}


@dataclass(slots=True)
class ClearingResult:
    """The result; its fields are the document's (`DOCUMENT_NAMES`: where the document names one otherwise)."""

    auction_id: str
    trading_date: str
    status: str  # OPTIMAL | TIME_LIMIT_FEASIBLE | TIME_LIMIT_NO_SOLUTION | CANCELLED | ERROR
    objective_yen: float
    procurement_cost_yen: float
    startup_cost_yen: float
    shortfall_penalty_yen: float
    payment_total_yen: float
    awards: list[Award]
    flows: list[Flow]
    shortfalls: list[Shortfall]
    prices: list[MarginalPrice]
    area_summary: list[AreaSummary]
    left_out: list[LeftOutBid]  # the document's `rejected_bids`
    solver: SolverInfo
    input_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)  # sections added by market rules (flags, ...)

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format": RESULT_FORMAT,
            "auction_id": self.auction_id,
            "trading_date": self.trading_date,
            "status": self.status,
            "objective_yen": self.objective_yen,
            "procurement_cost_yen": self.procurement_cost_yen,
            "startup_cost_yen": self.startup_cost_yen,
            "shortfall_penalty_yen": self.shortfall_penalty_yen,
            "payment_total_yen": self.payment_total_yen,
            "awards": [plain(a) for a in self.awards],
            "flows": [plain(f) for f in self.flows],
            "shortfalls": [plain(s) for s in self.shortfalls],
            "prices": [plain(p) for p in self.prices],
            "area_summary": [plain(s) for s in self.area_summary],
            "rejected_bids": [plain(r) for r in self.left_out],
            "solver": plain(self.solver),
            "input_sha256": self.input_sha256,
        }
        doc.update(self.extra)
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ClearingResult:
        """The result object behind a result document (to print the same summary for a result cleared
        elsewhere, e.g. by `dkw serve`)."""
        known = {DOCUMENT_NAMES.get(f.name, f.name) for f in fields(cls)}
        solver_fields = {f.name for f in fields(SolverInfo)}
        return cls(
            auction_id=doc["auction_id"], trading_date=doc["trading_date"], status=doc["status"],
            objective_yen=doc["objective_yen"], procurement_cost_yen=doc["procurement_cost_yen"],
            startup_cost_yen=doc["startup_cost_yen"], shortfall_penalty_yen=doc["shortfall_penalty_yen"],
            payment_total_yen=doc["payment_total_yen"],
            awards=[Award(**a) for a in doc["awards"]],
            flows=[Flow(**f) for f in doc["flows"]],
            shortfalls=[Shortfall(**s) for s in doc["shortfalls"]],
            prices=[MarginalPrice(**p) for p in doc["prices"]],
            area_summary=[AreaSummary(**s) for s in doc["area_summary"]],
            left_out=[LeftOutBid(**r) for r in doc["rejected_bids"]],
            solver=SolverInfo(**{k: v for k, v in doc["solver"].items() if k in solver_fields}),
            input_sha256=doc["input_sha256"],
            extra={k: v for k, v in doc.items() if k not in known and k != "format"},
        )

    def summary_text(self) -> str:
        """A few lines for a human at a terminal: cost, shortfall by area, solve time, gap."""
        gap = "n/a" if self.solver.mip_gap is None else f"{self.solver.mip_gap:.2e}"
        lines = [
            f"auction {self.auction_id} ({self.trading_date}): {self.status}",
            f"  objective {self.objective_yen:,.2f} yen = procurement {self.procurement_cost_yen:,.2f}"
            f" + start-up {self.startup_cost_yen:,.2f} + shortfall penalty {self.shortfall_penalty_yen:,.2f}",
            f"  {len(self.awards)} bids accepted, payments {self.payment_total_yen:,.2f} yen;"
            f" {len(self.left_out)} bids left out of the clearing",
        ]
        short: dict[str, float] = {}
        for s in self.shortfalls:
            short[s.area] = short.get(s.area, 0.0) + s.kw
        if short:
            lines.append("  shortfall (kW summed over products and blocks): "
                         + ", ".join(f"{a} {kw:,.0f}" for a, kw in sorted(short.items())))
        else:
            lines.append("  no shortfall")
        lines.append(f"  solved in {self.solver.seconds:.2f} s (total {self.solver.total_seconds:.2f} s),"
                     f" gap {gap}, {self.solver.nodes} nodes, HiGHS {self.solver.version}")
        return "\n".join(lines)
