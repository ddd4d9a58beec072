"""Per area × product figures of one cleared day, as EPRX publishes them (SPEC §4 "Replay summary").

Everything is recomputed from the auction and a result document's awards, flows and shortfalls, not
from its `area_summary`, so a historical result that carries only those (or was produced elsewhere)
gives figures on the same footing as dkw's own.

Conventions: kW figures are summed over blocks. Costs are by resource location (電源属地別): a bid's
procurement cost (price × hours × blocks × kW, at its own price, as `procurement_cost_yen`) goes to its
area, split equally over its products when it is composite, so the rows of one day and scenario add up
to the result's procurement cost. Start-up costs and the shortfall penalty stay out of the rows.
Prices are yen per kW·h over the accepted bids located in the area; the average is weighted by kW summed
over blocks. `offered_kw` counts every bid of the document (応札量), those left out of the clearing
(ineligible, above the cap, or by a scenario) included.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dkw.clearing.figures import area_figures, clean_kw, net_import
from dkw.clearing.model import Auction

SUMMARY_COLUMNS = (
    "trading_date", "scenario", "area", "product", "requirement_kw", "offered_kw", "awarded_local_kw",
    "awarded_for_area_kw", "shortfall_kw", "procurement_cost_yen", "min_price_yen_per_kw_h",
    "max_price_yen_per_kw_h", "avg_price_yen_per_kw_h", "cost_delta_vs_baseline_yen",
)
BASELINE = "baseline"


@dataclass(frozen=True, slots=True)
class BlockFigures:
    """One area, product and block (EPRX's per-block metrics); prices None where nothing was awarded."""

    area: str
    product: str
    block: int
    requirement_kw: float
    offered_kw: float
    awarded_local_kw: float
    awarded_for_area_kw: float
    shortfall_kw: float
    min_price_yen_per_kw_h: float | None
    max_price_yen_per_kw_h: float | None
    avg_price_yen_per_kw_h: float | None


def _awarded(auction: Auction, result: dict[str, Any]) -> list[tuple[Any, float]]:
    bids = {b.id: b for b in auction.bids}
    out = []
    for award in result.get("awards", []):
        kw = float(award["kw"])
        if kw > 0:
            out.append((bids[award["bid"]], kw))
    return out


def block_figures(auction: Auction, result: dict[str, Any]) -> list[BlockFigures]:
    """Every (area, product, block) with a requirement, an offer, an award or a flow, sorted."""
    net = net_import(auction, ((x["line"], x["direction"], x["product"], int(x["block"]), float(x["kw"]))
                               for x in result.get("flows", [])))
    short: dict[tuple[str, str, int], float] = defaultdict(float)
    for s in result.get("shortfalls", []):
        short[(s["area"], s["product"], int(s["block"]))] += float(s["kw"])
    return [BlockFigures(**figures) for figures in area_figures(auction, _awarded(auction, result), net, short)]


def cost_by_area_product(auction: Auction, result: dict[str, Any]) -> dict[tuple[str, str], float]:
    """Procurement cost by resource location and product; a composite bid's cost split equally."""
    hours = auction.hours_per_block
    cost: dict[tuple[str, str], float] = defaultdict(float)
    for bid, kw in _awarded(auction, result):
        share = bid.price_yen_per_kw_h * hours * len(bid.blocks) * kw / len(bid.products)
        for p in bid.products:
            cost[(bid.area, p)] += share
    return dict(cost)


def summary_rows(auction: Auction, result: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
    """One row per area × product of the auction (every pair, so scenarios line up), delta left empty."""
    figures = block_figures(auction, result)
    cost = cost_by_area_product(auction, result)
    per_pair: dict[tuple[str, str], list[BlockFigures]] = defaultdict(list)
    for f in figures:
        per_pair[(f.area, f.product)].append(f)
    # awarded prices over the bids themselves, weighted by kW summed over blocks
    priced: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for bid, kw in _awarded(auction, result):
        for p in bid.products:
            priced[(bid.area, p)].append((kw * len(bid.blocks), bid.price_yen_per_kw_h))
    rows = []
    for area in auction.areas:
        for product in auction.products:
            fs = per_pair.get((area, product), [])
            pr = priced.get((area, product), [])
            volume = sum(kw for kw, _ in pr)
            rows.append({
                "trading_date": auction.trading_date, "scenario": scenario, "area": area, "product": product,
                "requirement_kw": clean_kw(sum(f.requirement_kw for f in fs)),
                "offered_kw": clean_kw(sum(f.offered_kw for f in fs)),
                "awarded_local_kw": clean_kw(sum(f.awarded_local_kw for f in fs)),
                "awarded_for_area_kw": clean_kw(sum(f.awarded_for_area_kw for f in fs)),
                "shortfall_kw": clean_kw(sum(f.shortfall_kw for f in fs)),
                "procurement_cost_yen": round(cost.get((area, product), 0.0), 6),
                "min_price_yen_per_kw_h": min(p for _, p in pr) if pr else None,
                "max_price_yen_per_kw_h": max(p for _, p in pr) if pr else None,
                "avg_price_yen_per_kw_h": round(sum(kw * p for kw, p in pr) / volume, 6) if volume > 0 else None,
                "cost_delta_vs_baseline_yen": None,
            })
    return rows


def with_baseline_deltas(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill cost_delta_vs_baseline_yen: the row's cost minus the baseline's for the same day, area and
    product (0 for the baseline itself; empty where the day has no baseline row)."""
    rows = list(rows)
    base = {(r["trading_date"], r["area"], r["product"]): r["procurement_cost_yen"]
            for r in rows if r["scenario"] == BASELINE}
    out = []
    for r in rows:
        b = base.get((r["trading_date"], r["area"], r["product"]))
        out.append(dict(r, cost_delta_vs_baseline_yen=None if b is None else round(r["procurement_cost_yen"] - b, 6)))
    return out


def format_value(value: Any) -> str:
    """CSV text: empty for None, whole numbers without a decimal point, other floats as Python's repr."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """A CSV file with `columns`, written whole or not at all (a temporary file, then renamed)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([format_value(r.get(c)) for c in columns])
    tmp.replace(path)


def write_summary_csv(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    write_csv(path, SUMMARY_COLUMNS, rows)


def read_summary_csv(path: Path) -> list[dict[str, Any]]:
    """The rows back, numbers as floats and empty cells as None (what tests and notebooks want)."""
    text_columns = {"trading_date", "scenario", "area", "product"}
    out = []
    with path.open(encoding="utf-8", newline="") as fh:
        for raw in csv.DictReader(fh):
            out.append({k: (v if k in text_columns else (float(v) if v != "" else None)) for k, v in raw.items()})
    return out


def block_figures_as_lists(figures: Iterable[BlockFigures]) -> list[list[Any]]:
    """Compact form for the per-day sidecar: one list per block in BlockFigures field order."""
    return [list(asdict(f).values()) for f in figures]


def block_figures_from_lists(rows: Iterable[list[Any]]) -> list[BlockFigures]:
    return [BlockFigures(*r) for r in rows]
