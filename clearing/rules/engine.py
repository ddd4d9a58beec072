"""The rules engine: a bid's facts, matched against the policy's flat rules; monitoring formulas evaluated.

No market rule lives here: the code only derives facts (voltage class from capacity, table column,
generation or demand class) by the policy's own tables, matches conditions, and ranks verdicts by the
policy's `verdict_order`. Every rule that fires is kept as a finding, so a bid's report says all that is
wrong with it, not only the first thing.
"""

from __future__ import annotations

import ast
import functools
import operator
from dataclasses import dataclass, field
from typing import Any

from dkw.clearing.model import Auction, Bid
from dkw.clearing.rules.policy import Policy, Rule

#: Prices within this of a limit do not raise a flag (yen per kW per hour).
PRICE_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired for a bid."""

    rule: str
    verdict: str
    reason: str
    term_ja: str
    opening: str | None = None

    def text(self) -> str:
        return f"{self.reason} ({self.term_ja})" if self.term_ja else self.reason


@dataclass(frozen=True, slots=True)
class Flag:
    """A monitoring flag (市場監視): the bid stays in the clearing."""

    flag: str
    rule: str
    price_yen_per_kw_h: float
    limit_yen_per_kw_h: float
    reason: str
    term_ja: str

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "rule": self.rule, "price_yen_per_kw_h": self.price_yen_per_kw_h,
                "limit_yen_per_kw_h": round(self.limit_yen_per_kw_h, 9), "reason": self.reason,
                "term_ja": self.term_ja}


@dataclass(slots=True)
class BidReport:
    """A bid's verdict under the policy, why, and its monitoring flags."""

    bid: str
    verdict: str
    term_ja: str
    findings: list[Finding] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    opening: str | None = None  # NOT_YET_PERMITTED: the date all dated conditions are met, if every one has a date

    @property
    def eligible(self) -> bool:
        return self.verdict == "ELIGIBLE"

    def reason_text(self) -> str:
        """One line for `rejected_bids[].reason`."""
        text = "; ".join(f.text() for f in self.findings if f.verdict == self.verdict)
        if self.verdict == "NOT_YET_PERMITTED":
            text += f" [opens {self.opening}]" if self.opening else " [no opening date yet]"
        return text

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"bid": self.bid, "verdict": self.verdict, "term_ja": self.term_ja,
                               "reasons": [f.text() for f in self.findings],
                               "findings": [{"rule": f.rule, "verdict": f.verdict, "reason": f.reason,
                                             "term_ja": f.term_ja, **({"opening": f.opening} if f.verdict ==
                                                                      "NOT_YET_PERMITTED" else {})}
                                            for f in self.findings],
                               "flags": [fl.to_dict() for fl in self.flags]}
        if self.verdict == "NOT_YET_PERMITTED":
            doc["opening"] = self.opening
        return doc


# --- facts --------------------------------------------------------------------------------------------

def _voltage_by_capacity(policy: Policy, capacity_kw: float | None) -> str | None:
    if capacity_kw is None:
        return None
    for entry in policy.voltage_by_capacity:
        if entry.get("below_kw") is None or capacity_kw < entry["below_kw"]:
            return entry["voltage"]
    return None


def _device_band(policy: Policy, voltage: str | None, capacity_kw: float | None) -> str | None:
    """The table column: the first band of the device's voltage class whose kW range holds the capacity.
    A band with a kW range needs the capacity; one without takes the voltage class alone."""
    if voltage is None:
        return None
    for band in policy.device_bands:
        if band["voltage"] != voltage:
            continue
        lo, hi = band.get("from_kw"), band.get("below_kw")
        if lo is None and hi is None:
            return band["band"]
        if capacity_kw is None:
            return None
        if (lo is None or capacity_kw >= lo) and (hi is None or capacity_kw < hi):
            return band["band"]
    return None


def bid_facts(bid: Bid, trading_date: str, policy: Policy) -> dict[str, Any]:
    """What the rules may test about a bid; absent data stays absent (None), so no rule on it matches.
    No metering: `point` is None (a pre-qualified receiving-point resource, SPEC §5), so only the
    rules that do not test `point` apply to it."""
    facts: dict[str, Any] = {"category": bid.category.value, "products": tuple(bid.products),
                             "product_count": len(bid.products), "trading_date": trading_date}
    for name, value in policy.switches.items():
        facts[f"switch.{name}"] = value
    m = bid.metering
    if m is None:
        facts["point"] = None
        return facts
    point = m.point or ("DEVICE" if m.device_voltage or m.device_capacity_kw is not None else "RECEIVING")
    device_voltage = m.device_voltage or _voltage_by_capacity(policy, m.device_capacity_kw)
    facts.update(
        point=point,
        receiving_voltage=m.receiving_voltage or _voltage_by_capacity(policy, m.receiving_capacity_kw),
        receiving_capacity_kw=m.receiving_capacity_kw,
        device_voltage=device_voltage,
        device_capacity_kw=m.device_capacity_kw,
        device_band=_device_band(policy, device_voltage, m.device_capacity_kw),
        resource_type=m.resource_type,
        resource_class=policy.resource_class_of.get(m.resource_type) if m.resource_type else None,
        meter=m.meter,
        next_gen_smart_meter=m.next_gen_smart_meter,
    )
    return facts


# --- matching -----------------------------------------------------------------------------------------

_COMPARE = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
            "before": operator.lt, "on_or_after": operator.ge}


def matches_value(value: Any, matcher: Any) -> bool:
    """A fact against one matcher: a plain value is equality, a list is membership, an object holds
    operators (all must hold). A missing fact (None) matches only `{"present": false}`."""
    if isinstance(matcher, dict):
        for op, arg in matcher.items():
            if op == "present":
                if (value is not None) != bool(arg):
                    return False
            elif value is None:
                return False
            elif op == "in":
                if value not in arg:
                    return False
            elif op == "not_in":
                if value in arg:
                    return False
            elif op == "contains":
                if arg not in value:
                    return False
            elif not _COMPARE[op](value, arg):
                return False
        return True
    if value is None:
        return False
    if isinstance(matcher, list):
        return value in matcher
    return value == matcher


def matches(facts: dict[str, Any], condition: dict[str, Any]) -> bool:
    return all(matches_value(facts.get(name), matcher) for name, matcher in condition.items())


def fires(rule: Rule, facts: dict[str, Any]) -> bool:
    return matches(facts, rule.when) and not (rule.unless is not None and matches(facts, rule.unless))


# --- monitoring ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _parsed(expr: str) -> ast.Expression:
    return ast.parse(expr, mode="eval")


_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate_formula(expr: str, names: dict[str, float | None]) -> float | None:
    """The value of a checked policy formula (+ - * / over numbers and names); None when a name it
    uses is unknown for this bid or it divides by zero (the formula cannot be judged)."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            value = names.get(node.id)
            if value is None:
                raise LookupError(node.id)
            return float(value)
        if isinstance(node, ast.UnaryOp):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        if isinstance(node, ast.BinOp):
            return _ARITH[type(node.op)](ev(node.left), ev(node.right))
        raise TypeError(type(node).__name__)  # excluded when the policy was checked

    try:
        return ev(_parsed(expr))
    except (LookupError, ZeroDivisionError):
        return None


def monitoring_flags(bid: Bid, auction: Auction, policy: Policy, prices: dict[str, float]) -> list[Flag]:
    """The monitoring formulas in force on the trading date that the bid's price exceeds."""
    cost = bid.cost
    hours = auction.hours_per_block
    names: dict[str, float | None] = {
        "price_yen_per_kw_h": bid.price_yen_per_kw_h, "block_hours": hours, "blocks": len(bid.blocks),
        "bid_hours": hours * len(bid.blocks),
        "marginal_cost_yen_per_kwh": cost.marginal_cost_yen_per_kwh if cost else None,
        "opportunity_cost_yen_per_kw_h": cost.opportunity_cost_yen_per_kw_h if cost else None,
        "fixed_cost_ceiling_yen": cost.fixed_cost_ceiling_yen if cost else None,
        "expected_award_kw": cost.expected_award_kw if cost else None,
        "original_price_yen_per_kw_h": prices.get(cost.substitutes) if cost and cost.substitutes else None,
    }
    flags = []
    for rule in policy.monitoring:
        if not rule.in_force(auction.trading_date) or any(names.get(n) is None for n in rule.names):
            continue
        limit = evaluate_formula(rule.limit_expr, names)
        if limit is not None and bid.price_yen_per_kw_h > limit + PRICE_TOLERANCE:
            flags.append(Flag(rule.flag, rule.id, bid.price_yen_per_kw_h, limit, rule.reason, rule.term_ja))
    return flags


# --- evaluation ---------------------------------------------------------------------------------------

def judge_bid(bid: Bid, auction: Auction, policy: Policy, prices: dict[str, float] | None = None, *,
              cached: tuple[str, str, list[Finding], str | None] | None = None) -> BidReport:
    """The bid's verdict: the first of the policy's `verdict_order` among the rules that fire, else ELIGIBLE.
    `cached`: (verdict, term, findings, opening) of an earlier bid with the same category, products and
    metering, which decide the verdict (monitoring flags are always the bid's own)."""
    if prices is None:
        prices = {b.id: b.price_yen_per_kw_h for b in auction.bids}
    flags = monitoring_flags(bid, auction, policy, prices)
    if cached is not None:
        verdict, term, findings, opening = cached
        return BidReport(bid.id, verdict, term, list(findings), flags, opening)
    facts = bid_facts(bid, auction.trading_date, policy)
    findings = [Finding(r.id, r.verdict, r.reason, r.term_ja, r.opening) for r in policy.rules if fires(r, facts)]
    rank = {v: i for i, v in enumerate(policy.verdict_order)}
    findings.sort(key=lambda f: rank[f.verdict])  # stable: policy order within a verdict
    verdict = findings[0].verdict if findings else "ELIGIBLE"
    opening = None
    if verdict == "NOT_YET_PERMITTED":
        dates = [f.opening for f in findings if f.verdict == verdict]
        opening = None if None in dates else max(dates)
    return BidReport(bid.id, verdict, policy.verdict_terms[verdict], findings, flags, opening)
