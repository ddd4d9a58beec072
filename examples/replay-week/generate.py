#!/usr/bin/env python3
"""Regenerate the example week: seven synthetic trading days (2026-10-05 … 2026-10-11), one historical
result and a synthetic EPRX CSV. Run from the repository root: python examples/replay-week/generate.py

Each day is `bench/casegen.py` (seed = day number) on five areas of the 60/50 Hz boundary (tohoku, tokyo,
chubu, hokuriku, kansai: the DC link tokyo–chubu carries no primary, the chubu–hokuriku–kansai loop has an
interface), primary and tertiary1 (composite bids offer both), 8 blocks of 3 h, 150 bids. Then, so that the
price-rule scenario has something to act on, about 70% of the bids get price-monitoring cost data (SPEC §5).

NOT real data. The historical result of the first day is dkw's own clearing with every interconnector at
a tenth of its capacity (as if the TSOs had set aside less), cut down to awards, flows and shortfalls. The EPRX
CSV (tertiary1, 3-1) carries the auctions' requirements and offers, and awarded quantities and prices
that are the baseline clearing's with ±10% noise; its H line and file name say it is synthetic.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from bench.casegen import gen  # noqa: E402
from clearing.document import load_auction  # noqa: E402
from clearing.engine import clear  # noqa: E402
from clearing.replay.eprx import write_eprx_csv  # noqa: E402
from clearing.replay.summary import block_figures  # noqa: E402
from clearing.verify import verify_result  # noqa: E402
from solvers.api import SolveOptions  # noqa: E402

FIRST_DAY = dt.date(2026, 10, 5)
DAYS = 7
AREAS = ["tohoku", "tokyo", "chubu", "hokuriku", "kansai"]
EPRX_FILE = "SYNTHETIC-eprx-2026-10-3-1.csv"


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


def day_document(n: int) -> dict:
    date = FIRST_DAY + dt.timedelta(days=n)
    doc = gen(n + 1, 150, blocks=8, block_minutes=180, areas=AREAS, products=["primary", "tertiary1"],
              scarcity=0.6, frac_indivisible=0.05, frac_group=0.1, frac_multiblock=0.1)
    doc["auction_id"] = f"synthetic-week-{date.isoformat()}"
    doc["trading_date"] = date.isoformat()
    add_cost_data(doc, random.Random(1000 + n))
    return doc


def cleared(doc: dict):
    auction = load_auction(doc)
    result = clear(auction, SolveOptions(threads=1))
    problems = verify_result(auction, result.to_document(), excluded={r.bid for r in result.rejected_bids})
    assert not problems, problems
    return auction, result


def main() -> None:
    eprx_values: dict = {}
    noise = random.Random(7)
    for n in range(DAYS):
        doc = day_document(n)
        date = doc["trading_date"]
        (HERE / f"{date}.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        if n == 0:
            reduced = dict(doc, lines=[dict(line, forward_kw=line["forward_kw"] // 10,
                                            backward_kw=line["backward_kw"] // 10) for line in doc["lines"]])
            _, hist = cleared(reduced)
            d = hist.to_document()
            history = {k: d[k] for k in ("format", "auction_id", "trading_date", "status", "objective_yen",
                                         "procurement_cost_yen", "startup_cost_yen", "shortfall_penalty_yen",
                                         "payment_total_yen", "awards", "flows", "shortfalls", "rejected_bids")}
            history["note"] = "SYNTHETIC history: dkw's clearing with every interconnector at a tenth of its capacity"
            (HERE / f"{date}.result.json").write_text(json.dumps(history, indent=None, ensure_ascii=False) + "\n")
        auction, result = cleared(doc)
        for f in block_figures(auction, result.to_document()):
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
        print(date, result.status, f"{result.objective_yen:,.0f}", f"{result.solver.total_seconds:.2f} s")
    write_eprx_csv(HERE / EPRX_FILE, "SYNTHETIC test data in the EPRX layout, not published results (合成データ)",
                   "確報値", "2026/10", "tertiary1", 8, eprx_values)


if __name__ == "__main__":
    main()
