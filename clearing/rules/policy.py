"""The market policy as data: loading, overriding, checking, and compiling it into flat rules.

The shipped `policy.json` holds everything SPEC §1 and §5 date or tabulate: the device-point table
(機器点計測の可否), the dated openings, the smart-meter dates, the primary-reserve switch (③), the
category rules, the price-cap schedule (上限価格) and the price-monitoring formulas. A user file given
with `--policy FILE` is merged over it: objects merge key by key, any other value (a list included)
replaces the shipped one. So `{"switches": {"primary_at_device_point": true}}` is a complete override.

`Policy` compiles the table, the openings and the smart-meter dates into the same flat `Rule` form as
the explicit `rules` list, so one small evaluator (dkw.clearing.rules.engine) runs them all.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICY_FORMAT = "dkw-market-policy/1"
DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.json")

VERDICTS = ("ELIGIBLE", "NEEDS_SPECIFIED_METER", "WRONG_CATEGORY", "NOT_YET_PERMITTED", "NOT_APPLICABLE")
#: Facts a rule may test (see engine.bid_facts); `switch.NAME` tests a policy switch.
FACTS = ("point", "receiving_voltage", "receiving_capacity_kw", "device_voltage", "device_capacity_kw",
         "device_band", "resource_type", "resource_class", "meter", "next_gen_smart_meter", "category",
         "products", "product_count", "trading_date")
NUMERIC_FACTS = ("receiving_capacity_kw", "device_capacity_kw", "product_count")
MATCH_OPS = ("in", "not_in", "lt", "le", "gt", "ge", "before", "on_or_after", "contains", "present")
#: Names a monitoring formula may use (see engine.monitoring_flags).
FORMULA_NAMES = ("price_yen_per_kw_h", "marginal_cost_yen_per_kwh", "opportunity_cost_yen_per_kw_h",
                 "fixed_cost_ceiling_yen", "expected_award_kw", "original_price_yen_per_kw_h", "block_hours",
                 "blocks", "bid_hours")
#: How many yen per kW per hour one unit of a cap is worth (EPRX quotes per 30 minutes).
CAP_UNITS = {"yen_per_kw_30min": 2.0, "yen_per_kw_h": 1.0}


class PolicyError(ValueError):
    """The policy file is not usable; `problems` names each bad entry by its path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class Rule:
    """One check: when `when` matches a bid's facts and `unless` does not, the bid gets `verdict`.
    `opening` is the date from which a NOT_YET_PERMITTED rule stops firing (None: no date yet)."""

    id: str
    verdict: str
    when: dict[str, Any]
    unless: dict[str, Any] | None
    reason: str
    term_ja: str
    opening: str | None = None


@dataclass(frozen=True, slots=True)
class MonitoringRule:
    """A price ceiling for market surveillance, in force on [from, until); a flag, never a rejection."""

    id: str
    flag: str
    starts: str | None
    until: str | None
    limit_expr: str
    reason: str
    term_ja: str

    @property
    def names(self) -> frozenset[str]:
        """The names the formula uses: a bid lacking any of them is not judged by it."""
        return _formula_names(self.limit_expr)

    def in_force(self, trading_date: str) -> bool:
        return (self.starts is None or trading_date >= self.starts) and (self.until is None or trading_date < self.until)


@functools.lru_cache(maxsize=256)
def _formula_names(expr: str) -> frozenset[str]:
    return frozenset(node.id for node in ast.walk(ast.parse(expr, mode="eval")) if isinstance(node, ast.Name))


def deep_merge(base: Any, override: Any) -> Any:
    """`override` over `base`: objects merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return override


class Policy:
    """A checked policy document and the rules compiled from it."""

    def __init__(self, data: dict[str, Any], source: str = "builtin"):
        self.data = data
        self.source = source
        problems: list[str] = []
        _check(data, problems)
        if problems:
            raise PolicyError(problems)
        self.version: str = data["version"]
        self.verdict_terms: dict[str, str] = data["verdicts"]
        self.verdict_order: list[str] = data["verdict_order"]
        self.switches: dict[str, Any] = data.get("switches", {})
        self.resource_class_of: dict[str, str] = {
            rtype: cls for cls, types in data["resource_classes"].items() for rtype in types}
        self.voltage_by_capacity: list[dict] = data["voltage_by_capacity"]
        self.device_bands: list[dict] = data["device_bands"]
        self.rules: list[Rule] = compile_rules(data)
        caps = data["price_caps"]
        factor = CAP_UNITS[caps["unit"]]
        self.cap_schedule: list[tuple[str | None, str, dict[str, float]]] = [
            (entry.get("from"), entry.get("label", ""), {p: v * factor for p, v in entry["caps"].items()})
            for entry in caps["schedule"]]
        self.monitoring: list[MonitoringRule] = [
            MonitoringRule(m["id"], m["flag"], m.get("from"), m.get("until"), m["limit_yen_per_kw_h"],
                           m["reason"], m["term_ja"]) for m in data.get("monitoring", [])]

    def describe(self) -> dict[str, str]:
        return {"version": self.version, "source": self.source}

    def price_caps_on(self, trading_date: str) -> tuple[str, dict[str, float]]:
        """(label, caps in yen per kW per hour) of the schedule entry in force on `trading_date`."""
        label, caps = "", {}
        for starts, entry_label, entry_caps in self.cap_schedule:
            if starts is None or trading_date >= starts:
                label, caps = entry_label, entry_caps
        return label, dict(caps)


def compile_rules(data: dict[str, Any]) -> list[Rule]:
    """The table cells, the openings and the smart-meter dates as flat rules, then the explicit ones."""
    rules: list[Rule] = []
    table = data["device_point_table"]
    marks = table["marks"]
    for receiving, row in table["cells"].items():
        for band, cell in row.items():
            by_class = cell if isinstance(cell, dict) else {"generation": cell, "demand": cell}
            for cls, cell_marks in by_class.items():
                for mark in cell_marks:
                    spec = marks[mark]
                    if "verdict" not in spec:  # an annotation (○, ①): nothing to check here
                        continue
                    rules.append(Rule(
                        id=f"table.{receiving}.{band}.{cls}.{mark}", verdict=spec["verdict"],
                        when={"point": "DEVICE", "receiving_voltage": receiving, "device_band": band,
                              "resource_class": cls},
                        unless=spec.get("unless"), reason=f"{spec['reason']} (receiving {receiving}, device {band}, "
                        f"{cls} class)", term_ja=spec["term_ja"]))
    for n, opening in enumerate(data.get("openings", [])):
        when: dict[str, Any] = {"point": "DEVICE", "device_band": opening["device_band"]}
        if "resource_class" in opening:
            when["resource_class"] = opening["resource_class"]
        starts = opening.get("from")
        if starts is not None:
            when["trading_date"] = {"before": starts}
        bands = opening["device_band"] if isinstance(opening["device_band"], list) else [opening["device_band"]]
        who = " or ".join(bands) + (f" ({opening['resource_class']} class)" if "resource_class" in opening else "")
        rules.append(Rule(
            id=f"opening.{n}", verdict="NOT_YET_PERMITTED", when=when, unless=None,
            reason=f"device points {who} trade from {starts}" if starts else
            f"device points {who} have no opening date yet", term_ja=opening.get("term_ja", ""), opening=starts))
    smart = data.get("smart_meter", {})
    for voltage, starts in smart.get("from_by_receiving_voltage", {}).items():
        if starts is None:
            continue
        rules.append(Rule(
            id=f"smart-meter.{voltage}", verdict="NOT_YET_PERMITTED",
            when={"point": "DEVICE", "receiving_voltage": voltage, "trading_date": {"before": starts}}, unless=None,
            reason=f"second-generation smart meters at {voltage} receiving points serve device-point metering "
            f"from {starts}", term_ja=smart.get("term_ja", ""), opening=starts))
    for raw in data.get("rules", []):
        rules.append(Rule(raw["id"], raw["verdict"], raw["when"], raw.get("unless"), raw["reason"],
                          raw.get("term_ja", ""), raw.get("opening")))
    return rules


def load_policy(path: str | Path | None = None) -> Policy:
    """The shipped policy, or the shipped one with the file at `path` merged over it."""
    base = json.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    if path is None:
        return Policy(base)
    try:
        override = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError([f"{path}: not valid JSON: {exc}"]) from None
    if not isinstance(override, dict):
        raise PolicyError([f"{path}: the policy must be a JSON object"])
    return Policy(deep_merge(base, override), source=str(path))


_DEFAULT: Policy | None = None


def default_policy() -> Policy:
    """The shipped policy, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_policy()
    return _DEFAULT


# --- checking a policy document -------------------------------------------------------------------------

def _date_ok(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _check_condition(cond: Any, path: str, switches: dict, problems: list[str]) -> None:
    if not isinstance(cond, dict):
        problems.append(f"{path}: expected an object of fact: matcher")
        return
    for fact, matcher in cond.items():
        where = f"{path}.{fact}"
        if fact.startswith("switch."):
            if fact[len("switch."):] not in switches:
                problems.append(f"{where}: unknown switch")
        elif fact not in FACTS:
            problems.append(f"{where}: unknown fact (expected one of {', '.join(FACTS)})")
        if isinstance(matcher, dict):
            for op, arg in matcher.items():
                if op not in MATCH_OPS:
                    problems.append(f"{where}.{op}: unknown matcher (expected one of {', '.join(MATCH_OPS)})")
                elif op in ("before", "on_or_after") and (fact != "trading_date" or arg is None or not _date_ok(arg)):
                    problems.append(f"{where}.{op}: compares trading_date with a date YYYY-MM-DD, got {arg!r}")
                elif op in ("lt", "le", "gt", "ge") and (fact not in NUMERIC_FACTS or isinstance(arg, bool)
                                                         or not isinstance(arg, int | float)):
                    problems.append(f"{where}.{op}: compares a number fact ({', '.join(NUMERIC_FACTS)}) with a "
                                    f"number, got {arg!r}")
                elif op in ("in", "not_in") and not isinstance(arg, list):
                    problems.append(f"{where}.{op}: expected a list, got {arg!r}")


def _check_formula(expr: Any, path: str, problems: list[str]) -> None:
    if not isinstance(expr, str):
        problems.append(f"{path}: expected a formula string")
        return
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        problems.append(f"{path}: not a formula: {exc.msg}")
        return
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd,
               ast.Constant, ast.Name, ast.Load)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            problems.append(f"{path}: {type(node).__name__} is not allowed (only + - * / numbers and names)")
        elif isinstance(node, ast.Name) and node.id not in FORMULA_NAMES:
            problems.append(f"{path}: unknown name {node.id!r} (expected one of {', '.join(FORMULA_NAMES)})")
        elif isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, int | float)):
            problems.append(f"{path}: {node.value!r} is not a number")


def _check_rules(rules: list[Any], switches: Any, problems: list[str]) -> None:
    """The eligibility rules: each with an id (unique), a rejecting verdict, a condition and a reason."""
    ids = set()
    for n, rule in enumerate(rules):
        where = f"rules[{n}]"
        for key in ("id", "verdict", "when", "reason"):
            if key not in rule:
                problems.append(f"{where}.{key}: missing")
        if rule.get("id") in ids:
            problems.append(f"{where}.id: duplicate {rule.get('id')!r}")
        ids.add(rule.get("id"))
        if rule.get("verdict") not in VERDICTS or rule.get("verdict") == "ELIGIBLE":
            problems.append(f"{where}.verdict: {rule.get('verdict')!r} is not a rejecting verdict")
        if "when" in rule:
            _check_condition(rule["when"], f"{where}.when", switches, problems)
        if rule.get("unless") is not None:
            _check_condition(rule["unless"], f"{where}.unless", switches, problems)


def _check_price_caps(caps: Any, problems: list[str]) -> None:
    """The price cap schedule: a known unit, increasing dates, a non-negative cap per known product."""
    if caps.get("unit") not in CAP_UNITS:
        problems.append(f"price_caps.unit: {caps.get('unit')!r} (expected one of {', '.join(CAP_UNITS)})")
    previous = None
    for n, entry in enumerate(caps.get("schedule", [])):
        where = f"price_caps.schedule[{n}]"
        starts = entry.get("from")
        if not _date_ok(starts):
            problems.append(f"{where}.from: {starts!r} is not a date YYYY-MM-DD or null")
        elif n > 0 and (starts is None or (previous is not None and starts <= previous)):
            problems.append(f"{where}.from: entries must have increasing dates (only the first may be null)")
        previous = starts if _date_ok(starts) else previous
        for product, value in entry.get("caps", {}).items():
            if product not in ("primary", "secondary1", "secondary2", "tertiary1", "tertiary2", "composite"):
                problems.append(f"{where}.caps.{product}: unknown product")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                problems.append(f"{where}.caps.{product}: {value!r} is not a non-negative number")


def _check(data: Any, problems: list[str]) -> None:
    """Every problem of a (merged) policy document, each named by its path."""
    if not isinstance(data, dict):
        problems.append("the policy must be a JSON object")
        return
    if data.get("format") != POLICY_FORMAT:
        problems.append(f"format: {data.get('format')!r} is not {POLICY_FORMAT!r}")
    for key in ("version", "verdicts", "verdict_order", "resource_classes", "voltage_by_capacity", "device_bands",
                "device_point_table", "price_caps"):
        if key not in data:
            problems.append(f"{key}: missing")
    if problems:
        return
    if set(data["verdicts"]) != set(VERDICTS):
        problems.append(f"verdicts: must name exactly {', '.join(VERDICTS)}")
    if sorted(data["verdict_order"]) != sorted(v for v in VERDICTS if v != "ELIGIBLE"):
        problems.append("verdict_order: must order every verdict but ELIGIBLE")
    switches = data.get("switches", {})
    bands = {b.get("band") for b in data["device_bands"] if isinstance(b, dict)}
    voltages = {v.get("voltage") for v in data["voltage_by_capacity"] if isinstance(v, dict)}
    table = data["device_point_table"]
    marks = table.get("marks", {})
    for mark, spec in marks.items():
        if "verdict" in spec:
            if spec["verdict"] not in VERDICTS:
                problems.append(f"device_point_table.marks.{mark}.verdict: unknown verdict {spec['verdict']!r}")
            for key in ("reason", "term_ja"):
                if key not in spec:
                    problems.append(f"device_point_table.marks.{mark}.{key}: missing")
            if spec.get("unless") is not None:
                _check_condition(spec["unless"], f"device_point_table.marks.{mark}.unless", switches, problems)
    for receiving, row in table.get("cells", {}).items():
        if receiving not in voltages:
            problems.append(f"device_point_table.cells.{receiving}: unknown receiving voltage")
        for band, cell in row.items():
            where = f"device_point_table.cells.{receiving}.{band}"
            if band not in bands:
                problems.append(f"{where}: unknown device band (expected one of {', '.join(sorted(bands))})")
            for cls, cell_marks in (cell.items() if isinstance(cell, dict) else [("", cell)]):
                if cls and cls not in data["resource_classes"]:
                    problems.append(f"{where}.{cls}: unknown resource class")
                for mark in cell_marks if isinstance(cell_marks, list) else [None]:
                    if mark not in marks:
                        problems.append(f"{where}: unknown mark {mark!r}")
    for n, opening in enumerate(data.get("openings", [])):
        where = f"openings[{n}]"
        listed = opening.get("device_band")
        for band in listed if isinstance(listed, list) else [listed]:
            if band not in bands:
                problems.append(f"{where}.device_band: unknown band {band!r}")
        if "resource_class" in opening and opening["resource_class"] not in data["resource_classes"]:
            problems.append(f"{where}.resource_class: unknown class {opening['resource_class']!r}")
        if not _date_ok(opening.get("from")):
            problems.append(f"{where}.from: {opening.get('from')!r} is not a date YYYY-MM-DD or null")
    for voltage, starts in data.get("smart_meter", {}).get("from_by_receiving_voltage", {}).items():
        if not _date_ok(starts):
            problems.append(f"smart_meter.from_by_receiving_voltage.{voltage}: {starts!r} is not a date or null")
    _check_rules(data.get("rules", []), switches, problems)
    _check_price_caps(data["price_caps"], problems)
    for n, m in enumerate(data.get("monitoring", [])):
        where = f"monitoring[{n}]"
        for key in ("id", "flag", "limit_yen_per_kw_h", "reason", "term_ja"):
            if key not in m:
                problems.append(f"{where}.{key}: missing")
        for key in ("from", "until"):
            if not _date_ok(m.get(key)):
                problems.append(f"{where}.{key}: {m.get(key)!r} is not a date YYYY-MM-DD or null")
        if "limit_yen_per_kw_h" in m:
            _check_formula(m["limit_yen_per_kw_h"], f"{where}.limit_yen_per_kw_h", problems)
