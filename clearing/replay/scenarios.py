"""What-if scenarios: transformations of an auction document applied before it is cleared.

A scenario is a sequence of steps, written as names joined by ``+`` and applied left to right
(``no-cross-area+cap:10``); in Python, ``Scenario + Scenario`` composes the same way. Steps edit the
document (a dict, before `load_auction`, so the changed auction is validated like any other) and may
leave bids out of the clearing the way the market rules do (`LeftOutBid`, reported in the result).

Steps (SPEC §1 for the market terms):
- ``baseline``: the auction as it was.
- ``no-cross-area``: every interconnector's balancing capacity at zero (no 広域調達).
- ``reduction:F``: every requirement × F (募集量削減係数, e.g. 0.9); import caps (max_import_kw) kept.
- ``cap:X``: price cap X 円/ΔkW·30分 (= 2X yen/kW·h) on the capped products: primary, secondary1 and
  composite bids (the products the FY2026 caps of 15 and 10 apply to) get X; other products' caps are
  kept, lowered to X if above it; uncapped products (tertiary2) stay uncapped. The auction's cap mode
  (REJECT or PAY_CAP) is kept.
- ``without:CATEGORY[,CATEGORY...]``: bids of those categories left out (aliases ``device-point`` for
  both device-point categories, ``low-voltage`` for LOW_VOLTAGE_AGGREGATE): the value of the FY2026 reform.
- ``price-rule``: bids priced above a price-monitoring limit of the market rules (逸失利益 + 一定額 by
  the formula in force on the trading date, and a substitute at most its original's price; the formulas
  are the policy's data, `dkw.clearing.rules`) re-priced to the lowest limit they exceed, as the seed's re-bid
  estimate did. Bids without the cost data a formula needs keep their price.

Where the auction lists no price caps, ``cap:X`` starts from the policy's schedule for the trading date
(what the clearing would apply), so the products it does not touch keep their scheduled caps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dkw.clearing.document import load_auction
from dkw.clearing.left_out import LeftOutBid
from dkw.clearing.model import COMPOSITE, Category
from dkw.clearing.rules import Policy, default_policy, effective_price_caps
from dkw.clearing.rules.engine import monitoring_flags

BASELINE = "baseline"
#: Products whose cap the headline schedule sets (19.51 → 15 → 10 円/ΔkW·30分), SPEC §1.
HEADLINE_CAPPED = ("primary", "secondary1", COMPOSITE)
#: The verdict of bids a scenario leaves out, in the result's rejected_bids.
SCENARIO_VERDICT = "LEFT_OUT_BY_SCENARIO"
CATEGORY_ALIASES = {
    "device-point": (Category.DEVICE_POINT_SINGLE_GENERATOR, Category.DEVICE_POINT_LIST_PATTERN),
    "low-voltage": (Category.LOW_VOLTAGE_AGGREGATE,),
}


class ScenarioError(ValueError):
    """A scenario name that cannot be parsed; the message names the part and what is allowed."""


@dataclass(frozen=True)
class ScenarioInput:
    """What is cleared: the (changed) document, bids the scenario leaves out, and notes for the report."""

    document: dict[str, Any]
    left_out: tuple[LeftOutBid, ...] = ()
    notes: tuple[str, ...] = ()
    policy: Policy | None = field(default=None, compare=False)  # None: the shipped market policy


@dataclass(frozen=True)
class Step:
    """One transformation; `label` is how it is written in a scenario name."""

    label: str
    transform: Callable[[ScenarioInput], ScenarioInput] = field(compare=False, repr=False)

    def apply(self, inp: ScenarioInput) -> ScenarioInput:
        return self.transform(inp)


@dataclass(frozen=True)
class Scenario:
    """Steps applied left to right. The empty scenario is the baseline."""

    steps: tuple[Step, ...] = ()

    @property
    def name(self) -> str:
        return "+".join(s.label for s in self.steps) or BASELINE

    @property
    def is_baseline(self) -> bool:
        return not self.steps

    def __add__(self, other: Scenario) -> Scenario:
        return Scenario(self.steps + other.steps)

    def apply(self, document: dict[str, Any], policy: Policy | None = None) -> ScenarioInput:
        inp = ScenarioInput(document, policy=policy)
        for step in self.steps:
            inp = step.apply(inp)
        return inp

    def __str__(self) -> str:
        return self.name


# --- the steps ---------------------------------------------------------------------------------------

def _no_cross_area(inp: ScenarioInput) -> ScenarioInput:
    doc = dict(inp.document)
    lines = []
    for line in doc.get("lines", []):
        line = dict(line, forward_kw=0, backward_kw=0)
        for key in ("forward_kw_by_block", "backward_kw_by_block"):
            if key in line:
                line[key] = [0] * len(line[key])
        lines.append(line)
    doc["lines"] = lines
    return replace(inp, document=doc)


def _reduction(factor: float) -> Callable[[ScenarioInput], ScenarioInput]:
    def apply(inp: ScenarioInput) -> ScenarioInput:
        doc = dict(inp.document)
        doc["requirements"] = [dict(r, kw=round(r["kw"] * factor, 6)) for r in doc.get("requirements", [])]
        return replace(inp, document=doc)

    return apply


def _cap(yen_per_kw_30min: float) -> Callable[[ScenarioInput], ScenarioInput]:
    cap_h = yen_per_kw_30min * 2.0  # EPRX quotes per kW per 30 min; documents price per kW per hour

    def apply(inp: ScenarioInput) -> ScenarioInput:
        doc = dict(inp.document)
        products = list(doc.get("products", []))
        if "price_caps" in doc:
            caps: dict[str, float] = {c["product"]: c["yen_per_kw_h"] for c in doc["price_caps"]}
        else:  # the caps the clearing would take from the policy's schedule
            in_force, _ = effective_price_caps(load_auction(doc), inp.policy)
            caps = {c.product: c.yen_per_kw_h for c in in_force}
        for product, value in list(caps.items()):
            caps[product] = cap_h if product in HEADLINE_CAPPED else min(value, cap_h)
        for product in HEADLINE_CAPPED:
            composite_possible = len([p for p in products if p != "tertiary2"]) > 1
            if product in products or (product == COMPOSITE and composite_possible):
                caps[product] = cap_h
        doc["price_caps"] = [{"product": p, "yen_per_kw_h": v} for p, v in caps.items()]
        return replace(inp, document=doc)

    return apply


def _without(categories: frozenset[Category], label: str) -> Callable[[ScenarioInput], ScenarioInput]:
    def apply(inp: ScenarioInput) -> ScenarioInput:
        already = {r.bid for r in inp.left_out}
        left_out = [
            LeftOutBid(b["id"], SCENARIO_VERDICT,
                        f"category {b['category']} left out by scenario {label} (what-if, not a market rule)")
            for b in inp.document.get("bids", [])
            if b.get("category") in {c.value for c in categories} and b["id"] not in already
        ]
        note = f"{label}: {len(left_out)} bids left out"
        return replace(inp, left_out=inp.left_out + tuple(left_out), notes=inp.notes + (note,))

    return apply


def _price_rule(inp: ScenarioInput) -> ScenarioInput:
    auction = load_auction(inp.document)
    policy = inp.policy or default_policy()
    price = {b.id: b.price_yen_per_kw_h for b in auction.bids}
    repriced: set[str] = set()
    # a substitute's limit is its original's price, which may itself fall: repeat until nothing moves
    for _ in range(len(auction.bids) + 1):
        changed = False
        for bid in auction.bids:
            flags = monitoring_flags(replace(bid, price_yen_per_kw_h=price[bid.id]), auction, policy, price)
            if flags:
                price[bid.id] = round(min(f.limit_yen_per_kw_h for f in flags), 9)
                repriced.add(bid.id)
                changed = True
        if not changed:
            break
    doc = dict(inp.document)
    doc["bids"] = [dict(b, price_yen_per_kw_h=price[b["id"]]) if b["id"] in repriced else b
                   for b in doc.get("bids", [])]
    note = f"price-rule: {len(repriced)} bids re-priced to the monitoring limit (policy {policy.version})"
    return replace(inp, document=doc, notes=inp.notes + (note,))


# --- parsing -----------------------------------------------------------------------------------------

def _positive_number(text: str, what: str, part: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError(f"scenario part {part!r}: {what} {text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ScenarioError(f"scenario part {part!r}: {what} {text!r} must be a positive number")
    return value


def _categories(text: str, part: str) -> frozenset[Category]:
    out: set[Category] = set()
    for name in (t.strip() for t in text.split(",")):
        if name.lower() in CATEGORY_ALIASES:
            out.update(CATEGORY_ALIASES[name.lower()])
            continue
        try:
            out.add(Category(name.upper().replace("-", "_")))
        except ValueError:
            allowed = ", ".join([*CATEGORY_ALIASES, *(c.value for c in Category)])
            raise ScenarioError(f"scenario part {part!r}: unknown category {name!r} (one of {allowed})") from None
    return frozenset(out)


def parse_step(part: str) -> Step | None:
    """One ``+``-separated part; None for ``baseline`` (which changes nothing)."""
    kind, _, arg = part.partition(":")
    kind = kind.strip().lower()
    if kind == BASELINE and not arg:
        return None
    if kind == "no-cross-area" and not arg:
        return Step(part, _no_cross_area)
    if kind == "price-rule" and not arg:
        return Step(part, _price_rule)
    if kind == "reduction" and arg:
        return Step(part, _reduction(_positive_number(arg, "factor", part)))
    if kind == "cap" and arg:
        return Step(part, _cap(_positive_number(arg, "cap (円/ΔkW·30分)", part)))
    if kind == "without" and arg:
        return Step(part, _without(_categories(arg, part), part))
    raise ScenarioError(f"unknown scenario part {part!r}: use baseline, no-cross-area, reduction:F, cap:X, "
                        "without:CATEGORY or price-rule, joined with '+'")


def parse_scenario(name: str) -> Scenario:
    """``no-cross-area+cap:10`` → Scenario; raises `ScenarioError` naming the bad part."""
    if not name or not name.strip():
        raise ScenarioError("empty scenario name")
    steps = []
    for part in name.split("+"):
        if not part.strip():
            raise ScenarioError(f"scenario {name!r}: empty part between '+'")
        step = parse_step(part.strip())
        if step is not None:
            steps.append(step)
    return Scenario(tuple(steps))


def file_slug(name: str) -> str:
    """A scenario name as a file name: letters, digits, '.', '+', '-' kept, anything else '_'."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in ".+-") else "_" for ch in name)
