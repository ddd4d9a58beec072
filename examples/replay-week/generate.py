#!/usr/bin/env python3
"""Regenerate the example week: seven synthetic trading days (Mon 2026-10-05 … Sun 2026-10-11), one
historical result and a synthetic EPRX CSV. Run from the repository root: python examples/replay-week/generate.py
(or with a directory to write elsewhere).

NOT real data, but at the magnitudes of the published market in September–October 2026 (EPRX results):

- the nine mainland areas and their ten interconnectors, 15% of each line's operational capacity set aside
  for balancing; primary reserve does not cross the HVDC links and the frequency converter; one
  interface (chubu + kansai → hokuriku);
- 48 half-hour blocks (30分コマ, day-ahead from FY2026); products primary and tertiary1;
- national primary requirement 1,000 MW at night to 1,400 MW in the afternoon, split over the areas by
  their share of demand, offers about 1.1 times the peak in each area (1.4–1.6 GW nationally), at a few
  yen per kW per 30 minutes with a tail up to and past the 10 円 cap (bids past it are left out);
- tertiary1 requirement 1,800–2,500 MW, offers close to it: on most days the market is covered through
  the interconnectors, on the scarce days (the week's supply varies by ±8%) the areas that cannot import
  enough run short — shortfall only where supply is really short;
- bids cover 3-hour windows (six blocks, one quantity), per area and window: a thermal unit offering
  primary and tertiary1 at once (単独電源, 複合, half of it a minimum acceptance), another unit, an
  aggregator's list with two patterns (an exclusive group), low-voltage pools (低圧リソース), demand
  response and a device-point list pattern (機器点, eligible metering); about 70% carry price-monitoring
  cost data for the price-rule scenario.

The historical result of the first day is dkw's own clearing with every interconnector at a tenth of its
capacity (as if the TSOs had set aside less), cut down to awards, flows and shortfalls. The EPRX CSV
(tertiary1, 3-1) carries the auctions' requirements and offers, and awarded quantities and prices that are
the baseline clearing's with ±10% noise; its H line and file name say it is synthetic.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from dkw.bench.casegen import DC_LINES, LINES, SUPPLY, WEIGHT  # noqa: E402
from dkw.clearing.document import load_auction  # noqa: E402
from dkw.clearing.engine import clear  # noqa: E402
from dkw.clearing.replay.eprx import write_eprx_csv  # noqa: E402
from dkw.clearing.replay.summary import block_figures  # noqa: E402
from dkw.clearing.verify import verify_result  # noqa: E402
from dkw.solvers.api import SolveOptions  # noqa: E402

FIRST_DAY = dt.date(2026, 10, 5)
DAYS = 7
AREAS = ["hokkaido", "tohoku", "tokyo", "chubu", "hokuriku", "kansai", "chugoku", "shikoku", "kyushu"]
BLOCKS, WINDOW = 48, 6  # half-hour blocks; bids cover 3-hour windows
LINE_SHARE = 0.15
EPRX_FILE = "SYNTHETIC-eprx-2026-10-3-1.csv"
#: caps from September 2026, yen per kW per hour (EPRX: 10 and 7.21 円/kW·30分)
CAPS = {"primary": 20.0, "composite": 20.0, "tertiary1": 14.42}
#: tertiary1 supply relative to the requirement, per day of the week: two scarce days
TERTIARY_SUPPLY = [1.12, 0.95, 1.14, 1.10, 0.97, 1.16, 1.12]


def shape(block: int) -> float:
    """0 at night … 1 in the afternoon (peak around 15:00)."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * (block - 6) / 48) if 6 <= block <= 54 else 0.0


def share(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights[a] for a in AREAS)
    return {a: weights[a] / total for a in AREAS}


def price_30min(rnd: random.Random, median: float) -> float:
    """A price in yen per kW per 30 minutes: log-normal around `median`, a few past the 10 円 cap."""
    return round(min(max(rnd.lognormvariate(math.log(median), 0.55), 0.2), 12.0), 2)


def add_cost_data(doc: dict, rnd: random.Random) -> None:
    """Cost data for price monitoring: the FY2026 margin (fixed-cost ceiling ÷ expected award, over the
    bid's hours, as the shipped policy's formula reads it) drawn between 0.5 and 8 yen/kW·h."""
    hours = doc["block_minutes"] / 60
    for bid in doc["bids"]:
        if rnd.random() > 0.7:
            continue
        expected_kw = round(bid["kw"] * rnd.uniform(0.3, 1.0))
        bid_hours = hours * len(bid["blocks"])
        cost = {"opportunity_cost_yen_per_kw_h": round(bid["price_yen_per_kw_h"] * rnd.uniform(0.2, 0.8), 2),
                "fixed_cost_ceiling_yen": round(expected_kw * bid_hours * rnd.uniform(0.5, 8.0)),
                "expected_award_kw": expected_kw}
        if bid["category"] == "SINGLE_GENERATOR":
            cost["marginal_cost_yen_per_kwh"] = round(rnd.uniform(10, 30), 1)
        bid["cost"] = cost


DEVICE_METERING = {"point": "DEVICE", "receiving_voltage": "HIGH", "receiving_capacity_kw": 1500,
                   "device_voltage": "HIGH", "device_capacity_kw": 400, "resource_type": "NEGATIVE",
                   "meter": "SPECIFIED", "next_gen_smart_meter": True}


def day_document(n: int) -> dict:
    date = FIRST_DAY + dt.timedelta(days=n)
    rnd = random.Random(20261005 + n)
    weekend = date.weekday() >= 5
    level = (0.92 if weekend else 1.0) * rnd.uniform(0.97, 1.03)
    demand, supply = share(WEIGHT), share(SUPPLY)
    primary_mw = [(1000 + 400 * shape(t)) * level for t in range(BLOCKS)]
    tertiary_mw = [(1800 + 700 * shape(t)) * level for t in range(BLOCKS)]
    requirements = []
    for a in AREAS:
        for t in range(BLOCKS):
            requirements.append({"area": a, "product": "primary", "block": t, "kw": round(primary_mw[t] * demand[a] * 1000)})
            requirements.append({"area": a, "product": "tertiary1", "block": t,
                                 "kw": round(tertiary_mw[t] * demand[a] * 1000)})
    lines = []
    for lid, src, dst, fwd, bwd in LINES:
        line = {"id": lid, "from_area": src, "to_area": dst, "forward_kw": round(fwd * LINE_SHARE * 1000),
                "backward_kw": round(bwd * LINE_SHARE * 1000)}
        if lid in DC_LINES:
            line["products"] = ["tertiary1"]
        lines.append(line)
    bids = []
    for w in range(BLOCKS // WINDOW):
        blocks = list(range(w * WINDOW, (w + 1) * WINDOW))
        peak_p = max(primary_mw[t] for t in blocks)
        peak_t = max(tertiary_mw[t] for t in blocks)
        for a in AREAS:
            p_kw = peak_p * demand[a] * 1000 * rnd.uniform(1.0, 1.15)  # primary stays in its AC system
            t_kw = peak_t * supply[a] * 1000 * TERTIARY_SUPPLY[n] * rnd.uniform(0.95, 1.05)
            tag = f"{a}-{w}"

            def bid(suffix: str, products: list[str], kw: float, median: float, category: str, *, tag=tag, a=a,
                    blocks=blocks, **extra) -> dict:
                b = {"id": f"{tag}-{suffix}", "area": a, "products": products, "blocks": blocks, "kw": max(round(kw), 100),
                     "price_yen_per_kw_h": round(2 * price_30min(rnd, median), 2), "category": category, **extra}
                bids.append(b)
                return b

            unit = bid("unit", ["primary", "tertiary1"], 0.4 * p_kw, 2.2, "SINGLE_GENERATOR")
            unit["min_kw"] = unit["kw"] // 2
            bid("prim", ["primary"], 0.35 * p_kw, 2.8, "SINGLE_GENERATOR")
            # an aggregator's two patterns of one list: at most one of them (an exclusive group)
            bid("vpp-a", ["primary"], 0.1 * p_kw, 3.4, "LIST_PATTERN", group=f"{tag}-agg")
            bid("vpp-b", ["primary"], 0.12 * p_kw, 3.8, "LIST_PATTERN", group=f"{tag}-agg")
            bid("lv", ["primary"], 0.08 * p_kw, 4.0, "LOW_VOLTAGE_AGGREGATE")
            # tertiary1: what the composite unit does not cover
            rest = max(t_kw - unit["kw"], 0)
            bid("t1-gen", ["tertiary1"], 0.55 * rest, 2.0, "SINGLE_GENERATOR")
            bid("t1-dr", ["tertiary1"], 0.25 * rest, 3.0, "LIST_PATTERN")
            bid("t1-lv", ["tertiary1"], 0.1 * rest, 3.6, "LOW_VOLTAGE_AGGREGATE")
            bid("t1-dp", ["tertiary1"], 0.1 * rest, 3.3, "DEVICE_POINT_LIST_PATTERN", metering=dict(DEVICE_METERING))
    doc = {
        "format": "jp-balancing-auction/1", "auction_id": f"synthetic-week-{date.isoformat()}",
        "trading_date": date.isoformat(), "blocks": BLOCKS, "block_minutes": 30, "areas": AREAS,
        "products": ["primary", "tertiary1"], "shortfall_price_yen_per_kw_h": 60.0,
        "price_caps": [{"product": p, "yen_per_kw_h": v} for p, v in CAPS.items()], "price_cap_mode": "REJECT",
        "lines": lines,
        "interfaces": [{"id": "chubu+kansai->hokuriku", "limit_kw": round(300 * 1000 * LINE_SHARE * 2),
                        "members": [{"line": "chubu-hokuriku", "direction": "forward"},
                                    {"line": "hokuriku-kansai", "direction": "backward"}]}],
        "requirements": requirements, "resources": [], "bids": bids,
    }
    add_cost_data(doc, random.Random(1000 + n))
    return doc


def cleared(doc: dict):
    auction = load_auction(doc)
    result = clear(auction, SolveOptions(threads=1))
    problems = verify_result(auction, result.to_document())
    assert not problems, problems
    return auction, result


def main(out: Path = HERE) -> None:
    out.mkdir(parents=True, exist_ok=True)
    eprx_values: dict = {}
    noise = random.Random(7)
    for n in range(DAYS):
        doc = day_document(n)
        date = doc["trading_date"]
        (out / f"{date}.json").write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
        if n == 0:
            reduced = dict(doc, lines=[dict(line, forward_kw=line["forward_kw"] // 10,
                                            backward_kw=line["backward_kw"] // 10) for line in doc["lines"]])
            _, hist = cleared(reduced)
            d = hist.to_document()
            history = {k: d[k] for k in ("format", "auction_id", "trading_date", "status", "objective_yen",
                                         "procurement_cost_yen", "startup_cost_yen", "shortfall_penalty_yen",
                                         "payment_total_yen", "awards", "flows", "shortfalls", "rejected_bids")}
            history["note"] = "SYNTHETIC history: dkw's clearing with every interconnector at a tenth of its capacity"
            (out / f"{date}.result.json").write_text(json.dumps(history, indent=None, ensure_ascii=False) + "\n")
        auction, result = cleared(doc)
        figures = block_figures(auction, result.to_document())
        for f in figures:
            if f.product != "tertiary1":
                continue
            key = (date, f.block, f.area)
            eprx_values[(*key, "requirement_mw")] = f.requirement_kw / 1000
            eprx_values[(*key, "offered_local_mw")] = f.offered_kw / 1000
            jitter = noise.uniform(0.9, 1.1)
            eprx_values[(*key, "awarded_for_area_mw")] = round(max(f.awarded_for_area_kw, 0) / 1000 * jitter, 3)
            eprx_values[(*key, "awarded_local_mw")] = round(f.awarded_local_kw / 1000 * jitter, 3)
            for name in ("max", "min", "avg"):
                price = getattr(f, f"{name}_price_yen_per_kw_h")
                eprx_values[(*key, f"{name}_price_yen_per_kw_30min")] = (
                    None if price is None else round(price / 2 * noise.uniform(0.9, 1.1), 2))
        primary = [f for f in figures if f.product == "primary"]
        req = max(sum(f.requirement_kw for f in primary if f.block == t) for t in range(BLOCKS)) / 1000
        offered = max(sum(f.offered_kw for f in primary if f.block == t) for t in range(BLOCKS)) / 1000
        avg = [f.avg_price_yen_per_kw_h for f in primary if f.avg_price_yen_per_kw_h is not None]
        short = sum(s.kw for s in result.shortfalls) / 1000
        print(f"{date} {result.status} objective {result.objective_yen:,.0f} yen; primary peak {req:,.0f} MW required, "
              f"{offered:,.0f} MW offered, mean awarded price {sum(avg) / len(avg) / 2:.2f} 円/kW·30分; "
              f"shortfall {short:,.1f} MW·blocks; {result.solver.total_seconds:.1f} s")
    write_eprx_csv(out / EPRX_FILE, "SYNTHETIC test data in the EPRX layout, not published results (合成データ)",
                   "確報値", "2026/10", "tertiary1", BLOCKS, eprx_values)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
