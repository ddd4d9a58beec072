"""report.md and its plots (matplotlib, Agg backend: no display needed) for a finished replay.

Plot texts stay ASCII (matplotlib's default font has no Japanese glyphs); the Markdown carries the terms.

Plots, in OUTDIR/plots/: procurement cost by area and scenario, shortfall by area and scenario, the price
duration curve per product (the highest awarded price of every area × block, sorted), and where present
dkw against the historical results and against EPRX's published figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dkw.clearing.replay.eprx import Comparison
    from dkw.clearing.replay.outcome import ReplayOutcome


BASELINE = "baseline"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _myen(value: float | None) -> str:
    return "" if value is None else f"{value / 1e6:,.3f}"


def _grouped_bars(path: Path, categories: list[str], series: dict[str, list[float]], ylabel: str, title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(categories) + 2), 3.6), dpi=90)
    n = max(1, len(series))
    width = 0.8 / n
    for i, (name, values) in enumerate(series.items()):
        xs = [c + (i - (n - 1) / 2) * width for c in range(len(categories))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks(range(len(categories)), categories, rotation=20)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _areas_and_products(records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    areas: list[str] = []
    products: list[str] = []
    for rec in records:
        for r in rec["rows"]:
            if r["area"] not in areas:
                areas.append(r["area"])
            if r["product"] not in products:
                products.append(r["product"])
    return areas, products


def _total_by_scenario_and_area(records: list[dict[str, Any]], scenarios: list[str],
                                column: str) -> dict[str, dict[str, float]]:
    """One summary column summed over days, products and blocks, per scenario and area."""
    total: dict[str, dict[str, float]] = {s: defaultdict(float) for s in scenarios}
    for rec in records:
        for r in rec["rows"]:
            total[rec["scenario"]][r["area"]] += r[column]
    return total


def plot_cost_by_area(path: Path, records: list[dict[str, Any]], scenarios: list[str]) -> None:
    areas, _ = _areas_and_products(records)
    cost = _total_by_scenario_and_area(records, scenarios, "procurement_cost_yen")
    _grouped_bars(path, areas, {s: [cost[s][a] / 1e6 for a in areas] for s in scenarios},
                  "million yen", "Procurement cost by resource location, all days")


def plot_shortfall_by_area(path: Path, records: list[dict[str, Any]], scenarios: list[str]) -> None:
    areas, _ = _areas_and_products(records)
    short = _total_by_scenario_and_area(records, scenarios, "shortfall_kw")
    _grouped_bars(path, areas, {s: [short[s][a] / 1e3 for a in areas] for s in scenarios},
                  "MW, summed over blocks", "Shortfall by area, all days and products")


def plot_price_duration(path: Path, records: list[dict[str, Any]], scenarios: list[str],
                        prices: dict[tuple[str, str], Sequence[float]]) -> None:
    """Per product: every area × block's highest awarded price over all days, sorted high to low.
    `prices[(scenario, product)]`: those prices, in any order."""
    plt = _pyplot()
    _, products = _areas_and_products(records)
    fig, axes = plt.subplots(1, max(1, len(products)), figsize=(3.6 * max(1, len(products)), 3.2), dpi=90,
                             squeeze=False)
    for ax, product in zip(axes[0], products, strict=False):
        for s in scenarios:
            values = sorted(prices.get((s, product), []), reverse=True)
            if values:
                xs = [100.0 * (i + 0.5) / len(values) for i in range(len(values))]
                ax.step(xs, values, where="mid", label=s)
        ax.set_title(product, fontsize=10)
        ax.set_xlabel("% of area × blocks with an award")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("highest awarded price, yen/kW·h")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Price duration curves (highest awarded price per area and block)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def write_report(out_dir: Path, outcome: ReplayOutcome, comparison: Comparison | None = None) -> Path:
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    records = outcome.records
    scenarios = [s for s in outcome.scenarios if any(r["scenario"] == s for r in records)]
    dates = sorted({r["trading_date"] for r in records})
    lines = ["# Replay report", ""]
    span = f"{dates[0]} … {dates[-1]}" if dates else "no days"
    lines += [f"{len(outcome.days)} trading days ({span}), scenarios: {', '.join(outcome.scenarios)}. "
              f"{len(outcome.cleared)} day × scenario runs cleared now, {len(outcome.skipped)} taken from an earlier "
              f"run, {len(outcome.failed)} failed. Every result was checked by the independent verifier "
              "(`dkw.clearing.verify`) before it was written.", ""]
    if outcome.earlier_scenarios:
        lines += [f"Scenarios not asked for this time but whose results an earlier run left in this directory, "
                  f"for the same source days, are included: {', '.join(outcome.earlier_scenarios)}.", ""]
    lines += ["Costs in million yen. Procurement cost is at the bids' own prices (pay as bid); the objective adds "
              "start-up costs and the shortfall penalty. Figures per area are by resource location (電源属地別); "
              "`summary.csv` has them per day, area and product, `days.csv` per day.", ""]
    if outcome.failed:
        lines += ["## Failed runs", ""] + [f"- {d} {s}: {m}" for d, s, m in outcome.failed] + [""]

    # totals per scenario
    totals: dict[str, dict[str, float]] = {s: defaultdict(float) for s in scenarios}
    for rec in records:
        t = totals[rec["scenario"]]
        for key in ("objective_yen", "procurement_cost_yen", "startup_cost_yen", "shortfall_penalty_yen",
                    "shortfall_kw"):
            t[key] += rec[key]
    base = totals.get(BASELINE, {})
    rows = []
    for s in scenarios:
        t = totals[s]
        rows.append([s, _myen(t["objective_yen"]), _myen(t["procurement_cost_yen"]), _myen(t["startup_cost_yen"]),
                     _myen(t["shortfall_penalty_yen"]), f"{t['shortfall_kw'] / 1e3:,.1f}",
                     _myen(t["objective_yen"] - base.get("objective_yen", 0.0)) if base else "",
                     _myen(t["procurement_cost_yen"] - base.get("procurement_cost_yen", 0.0)) if base else ""])
    lines += ["## Totals by scenario", ""]
    lines += _table(["scenario", "objective", "procurement", "start-up", "shortfall penalty",
                     "shortfall (MW over blocks)", "Δ objective vs baseline", "Δ procurement vs baseline"], rows)
    lines += [""]

    by_day = {(r["trading_date"], r["scenario"]): r for r in records}
    lines += ["## Objective by day", ""]
    lines += _table(["trading date", *scenarios],
                    [[d, *(_myen(by_day[(d, s)]["objective_yen"]) if (d, s) in by_day else "" for s in scenarios)]
                     for d in dates])
    lines += [""]

    if records:
        plot_cost_by_area(plots / "cost_by_area.png", records, scenarios)
        plot_shortfall_by_area(plots / "shortfall_by_area.png", records, scenarios)
        plot_price_duration(plots / "price_duration.png", records, scenarios, outcome.durations)
        lines += ["## Cost by area and scenario", "", "![procurement cost by area](plots/cost_by_area.png)", ""]
        areas, _ = _areas_and_products(records)
        cost: dict[tuple[str, str], float] = defaultdict(float)
        for rec in records:
            for r in rec["rows"]:
                cost[(rec["scenario"], r["area"])] += r["procurement_cost_yen"]
        lines += _table(["area", *scenarios], [[a, *(_myen(cost[(s, a)]) for s in scenarios)] for a in areas])
        lines += ["", "## Shortfall by area", "", "![shortfall by area](plots/shortfall_by_area.png)", "",
                  "## Price duration curves", "", "![price duration curves](plots/price_duration.png)", ""]

    notes = [(r["trading_date"], r["scenario"], n) for r in records for n in r.get("notes", [])]
    if notes:
        lines += ["## Scenario notes", ""] + [f"- {d} {s}: {n}" for d, s, n in notes] + [""]

    if outcome.history:
        lines += _history_section(plots, outcome.history, by_day)
    if comparison is not None:
        lines += _eprx_section(plots, comparison)

    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _history_section(plots: Path, history: list[dict[str, Any]], by_day: dict) -> list[str]:
    lines = ["## dkw against the historical results", "",
             "Historical result documents found beside the auctions (`NAME.result.json`), recomputed on the same "
             "footing as the replay and checked by the same verifier (its findings are listed, not fatal).", ""]
    rows = []
    for h in history:
        d = by_day.get((h["trading_date"], BASELINE))
        rows.append([h["trading_date"], _myen(h.get("procurement_cost_yen")),
                     _myen(d["procurement_cost_yen"]) if d else "",
                     f"{(h.get('shortfall_kw') or 0) / 1e3:,.1f}", f"{d['shortfall_kw'] / 1e3:,.1f}" if d else "",
                     _myen(h.get("objective_yen")), _myen(d["objective_yen"]) if d else "",
                     "; ".join(h.get("notes", []))])
    lines += _table(["trading date", "history procurement", "dkw procurement", "history shortfall (MW)",
                     "dkw shortfall (MW)", "history objective", "dkw objective", "notes"], rows)
    usable = [h for h in history if h.get("rows") and (h["trading_date"], BASELINE) in by_day]
    if usable:
        areas: list[str] = []
        for h in usable:
            for r in h["rows"]:
                if r["area"] not in areas:
                    areas.append(r["area"])
        hist: dict[str, float] = defaultdict(float)
        dkw: dict[str, float] = defaultdict(float)
        for h in usable:
            for r in h["rows"]:
                hist[r["area"]] += r["procurement_cost_yen"]
            for r in by_day[(h["trading_date"], BASELINE)]["rows"]:
                dkw[r["area"]] += r["procurement_cost_yen"]
        _grouped_bars(plots / "history.png", areas, {"history": [hist[a] / 1e6 for a in areas],
                                                     "dkw baseline": [dkw[a] / 1e6 for a in areas]},
                      "million yen", "Procurement cost by area: history and dkw (days with a historical result)")
        lines += ["", "![history against dkw](plots/history.png)"]
    return lines + [""]


def _eprx_section(plots: Path, comparison: Comparison) -> list[str]:
    lines = ["## EPRX published results beside the replay", ""]
    for table in comparison.tables:
        mark = " — **synthetic data, not EPRX's**" if table.synthetic else ""
        lines.append(f"- `{table.path.name}`: {table.title} ({table.status or 'status n/a'}, {table.month or ''}, "
                     f"product {table.product_code}, {table.blocks_per_day} blocks per day){mark}")
    lines += [f"- {n}" for n in comparison.notes]
    lines += ["", "Per block and area in `eprx_comparison.csv` (MW, prices in 円/kW·30分 as EPRX publishes them). "
              "Totals over the compared blocks:", ""]
    sums: dict[tuple[str, str], float] = defaultdict(float)
    areas: list[str] = []
    for r in comparison.rows:
        if r["area"] not in areas:
            areas.append(r["area"])
        for key in ("eprx_requirement_mw", "dkw_requirement_mw", "eprx_awarded_for_area_mw", "dkw_awarded_for_area_mw"):
            if r[key] is not None:
                sums[(r["area"], key)] += r[key]
    shown = [a for a in areas if any(sums.get((a, k)) for k in ("eprx_requirement_mw", "dkw_requirement_mw"))]
    lines += _table(["area", "EPRX 募集量 (MW)", "dkw requirement (MW)", "EPRX 落札量 TSO別 (MW)",
                     "dkw awarded for area (MW)"],
                    [[a, *(f"{sums[(a, k)]:,.1f}" for k in ("eprx_requirement_mw", "dkw_requirement_mw",
                                                             "eprx_awarded_for_area_mw", "dkw_awarded_for_area_mw"))]
                     for a in shown])
    if shown:
        _grouped_bars(plots / "eprx.png", shown,
                      {"EPRX awarded (TSO-wise)": [sums[(a, "eprx_awarded_for_area_mw")] for a in shown],
                       "dkw awarded for area": [sums[(a, "dkw_awarded_for_area_mw")] for a in shown]},
                      "MW, summed over blocks", "Awarded for the area: EPRX against the baseline replay")
        lines += ["", "![EPRX against dkw](plots/eprx.png)"]
    return lines + [""]
