"""EPRX public result CSVs (取引結果, SPEC §4) read for an area-level comparison with a replay.

EPRX publishes per fiscal year and product a ZIP of monthly CSVs, CP932 (Shift_JIS) encoded:
  H,<title...>                                  header line
  P,<速報値|確報値>,<YYYY/MM>,<product code>,<blocks per day: 8 or 48>
  TT,取引情報,北海道,東北,東京,中部,北陸,関西,中国,四国,九州,合計
  YYYYMMDDBnn,<metric label>,<9 area values>,<total>      '-' for no data; Bnn counts blocks from B01
  E
Metric labels carry their unit: 募集量（TSO別）[MW], 応札量合計（電源属地別）[MW], 落札量合計（TSO別）[MW],
応札件数（電源属地別）[件], 落札件数（電源属地別）[件], 最高・最低・平均落札価格（…）[円/kW・30分].
Product codes 1-0 一次 (primary), 2-1 二次① (secondary1), 2-2 二次② (secondary2), 3-1 三次①
(tertiary1), 3-2 三次② (tertiary2), 4-0 複合 (composite: the composite market's own figures, which no
single product of a replay corresponds to, so they are read but not compared).

The reader finds the P line's fields by their form rather than position, accepts a label's qualifier in
full- or half-width brackets, and keeps metrics it does not know under their label. Anything else that
does not fit the layout is an `EprxFormatError` naming the file, line and value.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENCODING = "cp932"
AREA_NAMES = {"北海道": "hokkaido", "東北": "tohoku", "東京": "tokyo", "中部": "chubu", "北陸": "hokuriku",
              "関西": "kansai", "中国": "chugoku", "四国": "shikoku", "九州": "kyushu"}
AREA_LABELS = {v: k for k, v in AREA_NAMES.items()}
TOTAL = "合計"
PRODUCT_CODES = {"1-0": "primary", "2-1": "secondary1", "2-2": "secondary2", "3-1": "tertiary1",
                 "3-2": "tertiary2", "4-0": "composite"}
PRODUCT_LABELS = {v: k for k, v in PRODUCT_CODES.items()}
#: (metric name, qualifier or None for any) → field name; the unit is checked against UNITS.
METRICS = {
    ("募集量", "TSO別"): "requirement_mw",
    ("応札量合計", "電源属地別"): "offered_local_mw",
    ("落札量合計", "TSO別"): "awarded_for_area_mw",
    ("落札量合計", "電源属地別"): "awarded_local_mw",
    ("応札件数", "電源属地別"): "offers",
    ("落札件数", "電源属地別"): "awards",
    ("最高落札価格", None): "max_price_yen_per_kw_30min",
    ("最低落札価格", None): "min_price_yen_per_kw_30min",
    ("平均落札価格", None): "avg_price_yen_per_kw_30min",
}
LABELS = {
    "requirement_mw": "募集量（TSO別）[MW]",
    "offered_local_mw": "応札量合計（電源属地別）[MW]",
    "awarded_for_area_mw": "落札量合計（TSO別）[MW]",
    "awarded_local_mw": "落札量合計（電源属地別）[MW]",
    "offers": "応札件数（電源属地別）[件]",
    "awards": "落札件数（電源属地別）[件]",
    "max_price_yen_per_kw_30min": "最高落札価格（TSO別）[円/kW・30分]",
    "min_price_yen_per_kw_30min": "最低落札価格（TSO別）[円/kW・30分]",
    "avg_price_yen_per_kw_30min": "平均落札価格（TSO別）[円/kW・30分]",
}
UNITS = {"MW", "件", "円/kW・30分", "円/kW･30分", "円/kW·30分"}
LABEL_RE = re.compile(r"^(?P<name>[^（(]+)[（(](?P<qualifier>[^）)]+)[）)]\s*\[(?P<unit>[^\]]+)\]$")
KEY_RE = re.compile(r"^(?P<date>\d{8})B(?P<block>\d{2})$")


class EprxFormatError(ValueError):
    """The file does not follow the EPRX layout; the message names file, line and value."""


@dataclass
class EprxTable:
    """One monthly file: values[(date ISO, block from 0, area id, field)] = number or None ('-')."""

    path: Path
    title: str
    status: str | None  # 速報値 (preliminary) | 確報値 (final)
    month: str | None  # YYYY/MM
    product_code: str
    blocks_per_day: int
    areas: list[str]
    values: dict[tuple[str, int, str, str], float | None] = field(default_factory=dict)
    other_metrics: set[str] = field(default_factory=set)

    @property
    def product(self) -> str | None:
        return PRODUCT_CODES.get(self.product_code)

    @property
    def synthetic(self) -> bool:
        return "synthetic" in self.title.lower() or "合成" in self.title

    def dates(self) -> list[str]:
        return sorted({k[0] for k in self.values})


def _number(text: str, where: str) -> float | None:
    text = text.strip().replace(",", "")
    if text in ("-", "", "－", "―"):
        return None
    try:
        return float(text)
    except ValueError:
        raise EprxFormatError(f"{where}: {text!r} is not a number or '-'") from None


def metric_field(label: str) -> str | None:
    """A metric label → our field name; None for a well-formed label we do not compare."""
    m = LABEL_RE.match(label.strip())
    if not m:
        return None
    name, qualifier = m["name"].strip(), m["qualifier"].strip()
    return METRICS.get((name, qualifier)) or METRICS.get((name, None))


def read_eprx_csv(path: str | Path) -> EprxTable:
    path = Path(path)
    try:
        text = path.read_bytes().decode(ENCODING)
    except OSError as exc:
        raise EprxFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise EprxFormatError(f"{path}: not CP932 (Shift_JIS) text at byte {exc.start}") from None
    rows = list(csv.reader(io.StringIO(text)))
    rows = [[c.strip() for c in r] for r in rows]
    numbered = [(n + 1, r) for n, r in enumerate(rows) if any(r)]
    if not numbered or numbered[0][1][0] != "H":
        got = ",".join(numbered[0][1]) if numbered else "an empty file"
        raise EprxFormatError(f"{path}: line 1: expected the H line, got {got!r}")
    title = ",".join(c for c in numbered[0][1][1:] if c)
    status = month = code = None
    blocks = None
    areas: list[str] | None = None
    table: EprxTable | None = None
    ended = False
    for n, row in numbered[1:]:
        where = f"{path}: line {n}"
        kind = row[0]
        if ended:
            raise EprxFormatError(f"{where}: data after the E line")
        if kind == "P":
            status, month, code, blocks = _p_line(where, row, status, month, code, blocks)
        elif kind == "TT":
            names = [c for c in row[2:] if c]
            if names and names[-1] == TOTAL:
                names = names[:-1]
            unknown = [c for c in names if c not in AREA_NAMES]
            if unknown or not names:
                raise EprxFormatError(f"{where}: unknown area column(s) {unknown or names!r} in the TT line")
            areas = [AREA_NAMES[c] for c in names]
        elif kind == "E":
            ended = True
        else:
            if areas is None or code is None or blocks is None:
                raise EprxFormatError(f"{where}: data before the P and TT lines")
            if table is None:
                table = EprxTable(path, title, status, month, code, blocks, areas)
            _data_row(where, row, table, areas, blocks)
    if not ended:
        raise EprxFormatError(f"{path}: no E line at the end (a truncated file?)")
    if table is None:
        raise EprxFormatError(f"{path}: no data rows")
    return table


def _p_line(where: str, row: list[str], status: str | None, month: str | None, code: str | None,
            blocks: int | None) -> tuple[str | None, str | None, str, int]:
    """The P line's status, month, product code and blocks per day (the ones given so far where it has none)."""
    for cell in row[1:]:
        if cell in ("速報値", "確報値"):
            status = cell
        elif re.fullmatch(r"\d{4}/\d{1,2}", cell) or re.fullmatch(r"\d{6}", cell):
            month = cell if "/" in cell else f"{cell[:4]}/{cell[4:]}"
        elif re.fullmatch(r"\d-\d", cell):
            code = cell
        elif cell in ("8", "48"):
            blocks = int(cell)
    if code is None or blocks is None:
        raise EprxFormatError(f"{where}: the P line needs a product code (e.g. 3-1) and the blocks per day "
                              f"(8 or 48), got {','.join(row)!r}")
    if code not in PRODUCT_CODES:
        raise EprxFormatError(f"{where}: unknown product code {code!r} (one of {', '.join(PRODUCT_CODES)})")
    return status, month, code, blocks


def _data_row(where: str, row: list[str], table: EprxTable, areas: list[str], blocks: int) -> None:
    """One data row (key YYYYMMDDBnn, metric label, a value per area) into `table`."""
    kind = row[0]
    m = KEY_RE.match(kind)
    if not m:
        raise EprxFormatError(f"{where}: expected a key YYYYMMDDBnn, got {kind!r}")
    try:
        date = dt.datetime.strptime(m["date"], "%Y%m%d").date().isoformat()
    except ValueError:
        raise EprxFormatError(f"{where}: {m['date']!r} is not a date") from None
    block = int(m["block"])
    if not 1 <= block <= blocks:
        raise EprxFormatError(f"{where}: block B{m['block']} out of range B01..B{blocks:02d}")
    if len(row) < 2 + len(areas):
        raise EprxFormatError(f"{where}: {len(row) - 2} values, expected {len(areas)} areas and the total")
    label = row[1]
    lm = LABEL_RE.match(label)
    if not lm or lm["unit"] not in UNITS:
        raise EprxFormatError(f"{where}: metric label {label!r} is not 'name（qualifier）[unit]'")
    name = metric_field(label)
    if name is None:
        table.other_metrics.add(label)
        return
    for area, cell in zip(areas, row[2:2 + len(areas)], strict=True):
        table.values[(date, block - 1, area, name)] = _number(cell, f"{where}, {AREA_LABELS[area]}")


def write_eprx_csv(path: str | Path, title: str, status: str, month: str, product: str, blocks_per_day: int,
                   values: dict[tuple[str, int, str, str], float | None]) -> None:
    """Write `values` (keys as `EprxTable.values`) in the EPRX layout, CP932; used for synthetic files."""
    fields = [f for f in LABELS if any(k[3] == f for k in values)]
    keys = sorted({(k[0], k[1]) for k in values})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["H", title])
    writer.writerow(["P", status, month, PRODUCT_LABELS[product], str(blocks_per_day)])
    writer.writerow(["TT", "取引情報", *AREA_NAMES, TOTAL])
    for date, block in keys:
        key = date.replace("-", "") + f"B{block + 1:02d}"
        for f in fields:
            cells = [values.get((date, block, area, f)) for area in AREA_NAMES.values()]
            numbers = [c for c in cells if c is not None]
            if f.endswith("_mw") or f in ("offers", "awards"):
                total = sum(numbers) if numbers else None
            elif f.startswith("max"):
                total = max(numbers) if numbers else None
            elif f.startswith("min"):
                total = min(numbers) if numbers else None
            else:
                total = None  # an average needs the volumes: left as '-'
            writer.writerow([key, LABELS[f], *(_cell(c) for c in cells), _cell(total)])
    writer.writerow(["E"])
    Path(path).write_bytes(out.getvalue().encode(ENCODING))


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


# --- the comparison ---------------------------------------------------------------------------------------

#: Each compared EPRX figure: dkw's BlockFigures field and what it is divided by (kW → MW; yen per kW·h →
#: yen per kW·30 min, EPRX's unit for half-hour blocks)
DKW_FIGURE_OF = {
    "requirement_mw": ("requirement_kw", 1000.0),
    "offered_local_mw": ("offered_kw", 1000.0),
    "awarded_local_mw": ("awarded_local_kw", 1000.0),
    "awarded_for_area_mw": ("awarded_for_area_kw", 1000.0),
    "max_price_yen_per_kw_30min": ("max_price_yen_per_kw_h", 2.0),
    "min_price_yen_per_kw_30min": ("min_price_yen_per_kw_h", 2.0),
    "avg_price_yen_per_kw_30min": ("avg_price_yen_per_kw_h", 2.0),
}
COMPARISON_COLUMNS = (
    "trading_date", "block", "eprx_block", "area", "product",
    "eprx_requirement_mw", "dkw_requirement_mw", "eprx_offered_local_mw", "dkw_offered_local_mw",
    "eprx_awarded_local_mw", "dkw_awarded_local_mw", "eprx_awarded_for_area_mw", "dkw_awarded_for_area_mw",
    "eprx_max_price_yen_per_kw_30min", "dkw_max_price_yen_per_kw_30min",
    "eprx_min_price_yen_per_kw_30min", "dkw_min_price_yen_per_kw_30min",
    "eprx_avg_price_yen_per_kw_30min", "dkw_avg_price_yen_per_kw_30min",
)


@dataclass
class Comparison:
    rows: list[dict[str, Any]]
    notes: list[str]
    tables: list[EprxTable]


def compare_with_replay(tables: Iterable[EprxTable], days: list,
                        baseline_record: Callable[[str], dict[str, Any] | None]) -> Comparison:
    """EPRX's published figures beside the baseline replay, per trading date, block and area.
    `days`: the replay's `Day`s; `baseline_record(date)`: the stored baseline record (with per-block
    figures) of that date. dkw's quantities in MW (kW / 1000) and prices in 円/kW·30分 (yen/kW·h ÷ 2),
    EPRX's units."""
    from dkw.clearing.replay.summary import block_figures_from_lists

    tables = list(tables)
    by_date = {d.trading_date: d for d in days}
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for table in tables:
        label = f"{table.path.name} ({table.product_code}{', synthetic' if table.synthetic else ''})"
        if table.product is None or table.product == "composite":
            notes.append(f"{label}: the composite market's figures have no single product to compare with")
            continue
        matched = 0
        for date in table.dates():
            day = by_date.get(date)
            record = baseline_record(date) if day is not None else None
            if record is None:
                continue
            if table.product not in day.products:
                notes.append(f"{label}: {date} has no {table.product} in the replayed auction")
                continue
            if day.blocks != table.blocks_per_day:
                notes.append(f"{label}: {date} has {table.blocks_per_day} blocks per day in EPRX, "
                             f"{day.blocks} in the auction: not compared")
                continue
            figures = {(f.area, f.block): f for f in block_figures_from_lists(record["blocks"])
                       if f.product == table.product}
            for block in range(table.blocks_per_day):
                for area in table.areas:
                    eprx = {name: table.values.get((date, block, area, name)) for name in LABELS}
                    if all(v is None for v in eprx.values()) and area not in day.areas:
                        continue
                    f = figures.get((area, block))
                    row = {"trading_date": date, "block": block, "eprx_block": f"B{block + 1:02d}", "area": area,
                           "product": table.product}
                    for label, (attr, scale) in DKW_FIGURE_OF.items():
                        value = getattr(f, attr) if f else None
                        row[f"eprx_{label}"] = eprx[label]
                        row[f"dkw_{label}"] = None if value is None else round(value / scale, 6)
                    if f is None and area in day.areas:
                        row["dkw_requirement_mw"] = 0.0  # an area of the auction without a requirement there
                    rows.append(row)
                    matched += 1
        if matched == 0:
            notes.append(f"{label}: no trading date in common with the replay")
        else:
            notes.append(f"{label}: {matched} block × area rows laid beside the baseline replay")
    return Comparison(rows, notes, tables)


def write_comparison_csv(path: Path, comparison: Comparison) -> None:
    from dkw.clearing.replay.summary import write_csv

    write_csv(path, COMPARISON_COLUMNS, comparison.rows)
