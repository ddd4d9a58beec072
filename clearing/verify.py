"""Independent check of a result document against its auction document (SPEC §3–§4).

Works from the two documents alone: it does not import the formulation, the index or the clearing's
solver, and recomputes every rule of SPEC §3 and every figure of the result from scratch — feasibility,
costs, payments and their total, the area summary, the marginal prices (against the fixed-integer LP
built from the documents, dkw.clearing.fixed_lp, by re-solving with one more kW: its own build, never the
clearing's LP) and that the reported bound
is not above the objective. Returns the violations found. Price caps, where the auction lists none,
come from the policy *data* (the cap schedule in `clearing/rules/policy.json`, or a user policy file),
read and looked up here, not from the result's `market_rules` section: a result reporting wrong caps is
caught, not believed. Which bids the market rules leave out is re-judged under the policy the result
names (dkw.clearing.rules evaluates the policy data): a result cleared under another policy is refused
unless that policy is given.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from dkw.clearing.model import COMPOSITE, Auction, Bid

#: kW slack allowed for solver tolerances on rows and bounds.
TOL_KW = 1e-3
#: relative slack on yen figures.
TOL_REL = 1e-7


#: The shipped market policy; the checker reads its cap schedule itself (not through dkw.clearing.rules).
POLICY_FILE = Path(__file__).parent / "rules" / "policy.json"
#: yen per kW per hour in one unit of the policy's caps (EPRX quotes per 30 minutes).
CAP_UNIT_FACTOR = {"yen_per_kw_30min": 2.0, "yen_per_kw_h": 1.0}


def scheduled_caps(trading_date: str, policy_file: str | Path | None = None) -> dict[str, float]:
    """The policy's caps in force on `trading_date`, in yen per kW per hour: the last schedule entry whose
    `from` is on or before the date. `policy_file`: a user policy whose `price_caps`, if it has them,
    replace the shipped ones (as `--policy` does)."""
    section = json.loads(POLICY_FILE.read_text(encoding="utf-8"))["price_caps"]
    if policy_file is not None:
        user = json.loads(Path(policy_file).read_text(encoding="utf-8")).get("price_caps", {})
        section = {**section, **user}
    factor = CAP_UNIT_FACTOR[section["unit"]]
    caps: dict[str, float] = {}
    for entry in section["schedule"]:
        if entry.get("from") is None or entry["from"] <= trading_date:
            caps = {p: v * factor for p, v in entry["caps"].items()}
    return caps


def caps_in_force(auction: Auction, policy_file: str | Path | None = None) -> dict[str, float]:
    """SPEC §3: the auction's own caps (complete when listed), else the policy schedule's for its date."""
    if auction.price_caps is not None:
        return {c.product: c.yen_per_kw_h for c in auction.price_caps}
    return scheduled_caps(auction.trading_date, policy_file)


def _cap(caps: dict[str, float], products: tuple[str, ...]) -> float | None:
    if not caps:
        return None
    if len(products) > 1:
        if COMPOSITE in caps:
            return caps[COMPOSITE]
        own = [caps[p] for p in products if p in caps]
        return min(own) if own else None
    return caps.get(products[0])


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(1e-6, TOL_REL * max(abs(a), abs(b)))


def verify_result(auction: Auction, result: dict[str, Any], *, left_out: set[str] | None = None,
                  policy_file: str | Path | None = None, notes: list[str] | None = None,
                  check_prices: bool = True) -> list[str]:
    """Every violation of SPEC §3 by `result`, as readable lines; empty means feasible and consistent.
    `left_out`: ids of bids the market rules left out, which must not be awarded; None: re-judge them under
    the policy (`policy_file` merged over the shipped one), which must be the one the result names, and
    check `rejected_bids` against the verdicts. Price caps: the auction's own, else the policy data's
    schedule, looked up here. `notes`: receives what was checked only in part (prices of a large auction)."""
    problems: list[str] = []
    if left_out is None:
        left_out = _rejudge(auction, result, policy_file, problems)
    caps = caps_in_force(auction, policy_file)
    bids = {b.id: b for b in auction.bids}
    if result.get("input_sha256") and auction.input_sha256 and result["input_sha256"] != auction.input_sha256:
        problems.append(f"input_sha256 {result['input_sha256']} is not the auction's {auction.input_sha256}")
    if result.get("auction_id") != auction.auction_id:
        problems.append(f"auction_id {result.get('auction_id')!r} is not {auction.auction_id!r}")
    q = _check_awards(result, bids, problems)
    accepted = {b for b, kw in q.items() if kw > 0}
    all_left_out = _check_left_out(auction, caps, accepted, left_out, problems)
    _check_groups_and_parents(bids, accepted, problems)
    _check_resources(auction, bids, q, accepted, problems)
    net_in = _check_flows(auction, result, problems)
    short = _check_balance(auction, result, bids, q, accepted, net_in, problems)
    _check_costs(auction, result, caps, bids, q, accepted, short, problems)
    _check_area_summary(auction, result, q, net_in, short, problems)
    if check_prices and result.get("prices"):
        _check_prices(auction, result, accepted, all_left_out, problems, notes)
    return problems


def _check_awards(result: dict[str, Any], bids: dict[str, Bid], problems: list[str]) -> dict[str, float]:
    """Each award's bid exists, once, within its kW and at least its minimum; kW per awarded bid."""
    q: dict[str, float] = {}
    for n, award in enumerate(result.get("awards", [])):
        bid = bids.get(award["bid"])
        if bid is None:
            problems.append(f"awards[{n}]: unknown bid {award['bid']!r}")
            continue
        if award["bid"] in q:
            problems.append(f"awards[{n}]: bid {bid.id!r} awarded twice")
        kw = float(award["kw"])
        q[bid.id] = kw
        if kw > bid.kw + TOL_KW:
            problems.append(f"bid {bid.id}: awarded {kw} kW above its {bid.kw} kW")
        if kw < max(bid.min_kw, 1.0) - TOL_KW:
            problems.append(f"bid {bid.id}: awarded {kw} kW below its minimum {max(bid.min_kw, 1.0)} kW")
    return q


def _check_left_out(auction: Auction, caps: dict[str, float], accepted: set[str], left_out: set[str],
                    problems: list[str]) -> set[str]:
    """No bid left out of the clearing is accepted: above the cap in REJECT mode, or by the rules, or their
    children. Returns every bid left out."""
    all_left_out = set(left_out or ())
    if auction.price_cap_mode.value == "REJECT":
        for bid in auction.bids:
            cap = _cap(caps, bid.products)
            if cap is not None and bid.price_yen_per_kw_h > cap + 1e-12:
                all_left_out.add(bid.id)
    for b in sorted(accepted & all_left_out):
        problems.append(f"bid {b}: awarded although it is left out of the clearing (cap or eligibility)")
    return all_left_out


def _check_groups_and_parents(bids: dict[str, Bid], accepted: set[str], problems: list[str]) -> None:
    """At most one bid per exclusive group; no child accepted without its parent."""
    by_group: dict[str, list[str]] = defaultdict(list)
    for b in accepted:
        if bids[b].group is not None:
            by_group[bids[b].group].append(b)
    for g, members in by_group.items():
        if len(members) > 1:
            problems.append(f"group {g}: {len(members)} bids accepted ({', '.join(sorted(members))}), at most one allowed")
    for b in accepted:
        parent = bids[b].parent
        if parent is not None and parent not in accepted:
            problems.append(f"bid {b}: accepted without its parent {parent}")


def _check_resources(auction: Auction, bids: dict[str, Bid], q: dict[str, float], accepted: set[str],
                     problems: list[str]) -> None:
    """Resource capacity per block."""
    resources = {r.id: r for r in auction.resources}
    use: dict[tuple[str, int], float] = defaultdict(float)
    for b in accepted:
        bid = bids[b]
        if bid.resource is not None:
            for t in bid.blocks:
                use[(bid.resource, t)] += q[b]
    for (r, t), kw in use.items():
        cap = resources[r].capacity_kw_by_block
        if cap is not None and kw > cap[t] + TOL_KW:
            problems.append(f"resource {r} block {t}: {kw} kW accepted above capacity {cap[t]} kW")


def _check_flows(auction: Auction, result: dict[str, Any], problems: list[str]) -> dict[tuple[str, str, int], float]:
    """Each flow on a known line, direction, product and block, within the line's and the interfaces'
    capacity. Returns the net import per (area, product, block)."""
    lines = {line.id: line for line in auction.lines}
    net_in: dict[tuple[str, str, int], float] = defaultdict(float)
    on_line: dict[tuple[str, str, int], float] = defaultdict(float)
    for n, flow in enumerate(result.get("flows", [])):
        line = lines.get(flow["line"])
        if line is None:
            problems.append(f"flows[{n}]: unknown line {flow['line']!r}")
            continue
        direction, p, t, kw = flow["direction"], flow["product"], int(flow["block"]), float(flow["kw"])
        if direction not in ("forward", "backward"):
            problems.append(f"flows[{n}]: unknown direction {direction!r}")
            continue
        if kw < -TOL_KW:
            problems.append(f"flows[{n}]: negative flow {kw}")
        if p not in line.products:
            problems.append(f"flows[{n}]: line {line.id} does not carry {p}")
        if not 0 <= t < auction.blocks:
            problems.append(f"flows[{n}]: block {t} out of range")
            continue
        src, dst = (line.from_area, line.to_area) if direction == "forward" else (line.to_area, line.from_area)
        net_in[(dst, p, t)] += kw
        net_in[(src, p, t)] -= kw
        on_line[(line.id, direction, t)] += kw
    for (lid, direction, t), kw in on_line.items():
        cap = (lines[lid].forward_kw_by_block if direction == "forward" else lines[lid].backward_kw_by_block)[t]
        if kw > cap + TOL_KW:
            problems.append(f"line {lid} {direction} block {t}: {kw} kW above capacity {cap} kW")
    for interface in auction.interfaces:
        for t in range(auction.blocks):
            kw = sum(on_line.get((m.line, m.direction.value, t), 0.0) for m in interface.members)
            if kw > interface.limit_kw + TOL_KW:
                problems.append(f"interface {interface.id} block {t}: {kw} kW above limit {interface.limit_kw} kW")
    return net_in


def _check_balance(auction: Auction, result: dict[str, Any], bids: dict[str, Bid], q: dict[str, float],
                   accepted: set[str], net_in: dict[tuple[str, str, int], float],
                   problems: list[str]) -> dict[tuple[str, str, int], float]:
    """Balance with shortfall, import caps. Returns the shortfall per (area, product, block)."""
    requirement = {(r.area, r.product, r.block): r for r in auction.requirements}
    short: dict[tuple[str, str, int], float] = {}
    for n, s in enumerate(result.get("shortfalls", [])):
        key = (s["area"], s["product"], int(s["block"]))
        req = requirement.get(key)
        if req is None or req.kw <= 0:
            problems.append(f"shortfalls[{n}]: shortfall where there is no requirement {key}")
        if float(s["kw"]) < -TOL_KW:
            problems.append(f"shortfalls[{n}]: negative shortfall")
        short[key] = short.get(key, 0.0) + float(s["kw"])
    supply: dict[tuple[str, str, int], float] = defaultdict(float)
    for b in accepted:
        bid = bids[b]
        for p in bid.products:
            for t in bid.blocks:
                supply[(bid.area, p, t)] += q[b]
    for key in set(requirement) | set(net_in):
        need = requirement[key].kw if key in requirement else 0.0
        have = supply.get(key, 0.0) + net_in.get(key, 0.0) + short.get(key, 0.0)
        if have < need - TOL_KW:
            problems.append(f"balance {key}: {have} kW (local + imports − exports + shortfall) below requirement {need} kW")
        req = requirement.get(key)
        if req is not None and req.max_import_kw is not None and net_in.get(key, 0.0) > req.max_import_kw + TOL_KW:
            problems.append(f"import cap {key}: net import {net_in[key]} kW above {req.max_import_kw} kW")
    return short


def _check_costs(auction: Auction, result: dict[str, Any], caps: dict[str, float], bids: dict[str, Bid],
                 q: dict[str, float], accepted: set[str], short: dict[tuple[str, str, int], float],
                 problems: list[str]) -> None:
    """The cost figures, each payment and their total, and that the bound is not above the objective."""
    hours = auction.block_minutes / 60.0
    resources = {r.id: r for r in auction.resources}
    procurement = sum(bids[b].price_yen_per_kw_h * hours * len(bids[b].blocks) * q[b] for b in accepted)
    started = {bids[b].resource for b in accepted if bids[b].resource is not None}
    startup = sum(resources[r].startup_cost_yen for r in started)
    penalty = auction.shortfall_price_yen_per_kw_h * hours * sum(short.values())
    for name, value in (("procurement_cost_yen", procurement), ("startup_cost_yen", startup),
                        ("shortfall_penalty_yen", penalty), ("objective_yen", procurement + startup + penalty)):
        if name in result and not _close(float(result[name]), value):
            problems.append(f"{name}: reported {result[name]}, recomputed {value}")
    pay_cap = auction.price_cap_mode.value == "PAY_CAP"
    payments = 0.0
    for n, award in enumerate(result.get("awards", [])):
        bid = bids.get(award["bid"])
        if bid is None:
            continue
        price = bid.price_yen_per_kw_h
        cap = _cap(caps, bid.products) if pay_cap else None
        if cap is not None:
            price = min(price, cap)
        expected = price * hours * len(bid.blocks) * float(award["kw"])
        payments += expected
        if "payment_yen" in award and not _close(float(award["payment_yen"]), expected):
            problems.append(f"awards[{n}]: payment {award['payment_yen']} yen, expected {expected}")
    if "payment_total_yen" in result and not _close(float(result["payment_total_yen"]), payments):
        problems.append(f"payment_total_yen: reported {result['payment_total_yen']}, recomputed {payments}")
    objective = procurement + startup + penalty
    bound = (result.get("solver") or {}).get("objective_bound")
    if bound is not None and float(bound) > objective + max(1e-6, TOL_REL * abs(objective)):
        problems.append(f"solver.objective_bound {bound} is above the objective {objective}: not a lower bound")


def _rejudge(auction: Auction, result: dict[str, Any], policy_file: str | Path | None, problems: list[str]) -> set[str]:
    """The bids the market rules leave out under the policy the result names, and every difference
    between those and the result's `rejected_bids` (a wrong verdict, a bid wrongly left out or let in)."""
    from dkw.clearing.rules import PolicyError, load_policy, validate_auction

    try:
        policy = load_policy(policy_file)
    except PolicyError as exc:
        problems.extend(exc.problems)
        return {r["bid"] for r in result.get("rejected_bids", []) if isinstance(r, dict) and "bid" in r}
    named = ((result.get("market_rules") or {}).get("policy") or {}).get("version")
    if named is not None and named != policy.version:
        problems.append(f"market_rules.policy: the result was cleared under policy {named!r}, this check judges "
                        f"under {policy.version!r} ({policy.source}); give the policy it names with --policy")
    left_out = {r.bid: r.verdict for r in validate_auction(auction, policy).left_out}
    reported = {r["bid"]: r.get("verdict") for r in result.get("rejected_bids", []) if isinstance(r, dict) and "bid" in r}
    for bid, verdict in sorted(left_out.items()):
        if bid not in reported:
            problems.append(f"bid {bid}: {verdict} under policy {policy.version!r}, but not in rejected_bids")
        elif reported[bid] != verdict:
            problems.append(f"bid {bid}: rejected_bids says {reported[bid]}, policy {policy.version!r} says {verdict}")
    for bid in sorted(set(reported) - set(left_out)):
        problems.append(f"bid {bid}: in rejected_bids ({reported[bid]}) but eligible and within its cap under "
                        f"policy {policy.version!r}")
    return set(left_out)


def _check_area_summary(auction: Auction, result: dict[str, Any], q: dict[str, float],
                        net_in: dict[tuple[str, str, int], float], short: dict[tuple[str, str, int], float],
                        problems: list[str]) -> None:
    """Every row of `area_summary` recomputed: the same rows, the same figures."""
    if "area_summary" not in result:
        return
    requirement = {(r.area, r.product, r.block): r.kw for r in auction.requirements}
    offered: dict[tuple[str, str, int], float] = defaultdict(float)
    local: dict[tuple[str, str, int], list[tuple[float, float]]] = defaultdict(list)
    for bid in auction.bids:
        for p in bid.products:
            for t in bid.blocks:
                offered[(bid.area, p, t)] += bid.kw
                if q.get(bid.id, 0.0) > 0:
                    local[(bid.area, p, t)].append((q[bid.id], bid.price_yen_per_kw_h))
    expected_keys = set(requirement) | set(offered) | {k for k, v in net_in.items()}
    seen = set()
    for n, row in enumerate(result["area_summary"]):
        key = (row.get("area"), row.get("product"), row.get("block"))
        if key not in expected_keys or key in seen:
            problems.append(f"area_summary[{n}]: {'duplicate' if key in seen else 'unexpected'} row {key}")
            continue
        seen.add(key)
        awarded = local.get(key, [])
        kw = sum(k for k, _ in awarded)
        want = {"requirement_kw": requirement.get(key, 0.0), "offered_kw": offered.get(key, 0.0),
                "awarded_local_kw": kw, "awarded_for_area_kw": kw + net_in.get(key, 0.0),
                "shortfall_kw": short.get(key, 0.0),
                "max_price_yen_per_kw_h": max((p for _, p in awarded), default=None),
                "min_price_yen_per_kw_h": min((p for _, p in awarded), default=None),
                "avg_price_yen_per_kw_h": sum(k * p for k, p in awarded) / kw if awarded else None}
        for name, value in want.items():
            got = row.get(name)
            off = value is not None and got is not None and abs(float(got) - value) > max(TOL_KW, 1e-6 * abs(value))
            if (value is None) != (got is None) or off:
                problems.append(f"area_summary[{n}] {key}: {name} reported {got}, recomputed {value}")
    for key in sorted(expected_keys - seen, key=str):
        problems.append(f"area_summary: no row for {key}")


#: Prices of at most this many rows are re-solved one by one; beyond, an even spread of them.
MAX_PRICE_ROWS_CHECKED = 200
#: Tolerance on a price (yen/kW·h).
TOL_PRICE = 1e-5


def _check_prices(auction: Auction, result: dict[str, Any], accepted: set[str], left_out: set[str],
                  problems: list[str], notes: list[str] | None) -> None:
    """Prices against their definition: the fixed-integer LP's cost of one more kW, re-solved per row. The
    LP is built here from the documents, not taken from the clearing (which shares one between its prices
    and its explanations): a check must not reuse what it checks."""
    from dkw.clearing.fixed_lp import balance_keys, build_fixed_lp

    keys = balance_keys(auction)
    reported = {}
    for n, p in enumerate(result["prices"]):
        key = (p.get("area"), p.get("product"), p.get("block"))
        if key in reported:
            problems.append(f"prices[{n}]: duplicate price for {key}")
        reported[key] = float(p.get("marginal_yen_per_kw_h", float("nan")))
    for key in sorted(set(keys) - set(reported)):
        problems.append(f"prices: no price for balance row {key}")
    for key in sorted(set(reported) - set(keys), key=str):
        problems.append(f"prices: {key} is not a balance row")
    lp = build_fixed_lp(auction, accepted, left_out)
    if lp.objective_yen is None:
        problems.append(f"prices: the fixed-integer LP of these awards is {lp.status}")
        return
    checked = [k for k in keys if k in reported]
    if len(checked) > MAX_PRICE_ROWS_CHECKED:
        step = len(checked) / MAX_PRICE_ROWS_CHECKED
        checked = [checked[int(i * step)] for i in range(MAX_PRICE_ROWS_CHECKED)]
        if notes is not None:
            notes.append(f"prices: {len(checked)} of {len(reported)} rows re-solved (an even spread)")
    for key in checked:
        price = lp.step_price(key)
        if price is None or abs(price - reported[key]) > TOL_PRICE * max(1.0, abs(price)):
            problems.append(f"price {key}: reported {reported[key]}, one more kW costs {price} yen/kW·h "
                            "(fixed-integer LP)")
