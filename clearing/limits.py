"""Plausibility limits of the auction document (SPEC §2), in one place.

A figure beyond these is a typo or a unit slip (MW for kW, yen per 30 minutes × 1000), not a market
fact, and clearing it would give a meaningless optimum or numerical trouble in the solver. Such a
document is refused like any other malformed input, naming the field and the value. docs/auction.md
lists the same limits; the JSON Schema (`dkw schema auction`) carries them as maxima.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: A bid's kW: seven times Japan's largest unit (about 1.4 GW).
MAX_BID_KW = 10_000_000
#: Requirements, import caps, line, interface and resource capacities: more than any area's peak demand.
MAX_CAPACITY_KW = 100_000_000
#: Any price in yen per kW per hour (bids, shortfall, caps, monitoring costs).
MAX_PRICE_YEN_PER_KW_H = 1_000_000
#: The block lengths the format allows: 30-minute blocks (FY2026 on) and the 3-hour blocks before.
BLOCK_MINUTES_ALLOWED = (30, 180)

#: (list in the document, or "" for the top level; field, dotted when nested; limit; unit) for every limited
#: number. `*_by_block` fields are lists, each entry checked.
LIMITED_FIELDS: tuple[tuple[str, str, float, str], ...] = (
    ("bids", "kw", MAX_BID_KW, "kW"),
    ("bids", "min_kw", MAX_BID_KW, "kW"),
    ("bids", "price_yen_per_kw_h", MAX_PRICE_YEN_PER_KW_H, "yen/kW·h"),
    ("requirements", "kw", MAX_CAPACITY_KW, "kW"),
    ("requirements", "max_import_kw", MAX_CAPACITY_KW, "kW"),
    ("lines", "forward_kw", MAX_CAPACITY_KW, "kW"),
    ("lines", "backward_kw", MAX_CAPACITY_KW, "kW"),
    ("lines", "forward_kw_by_block", MAX_CAPACITY_KW, "kW"),
    ("lines", "backward_kw_by_block", MAX_CAPACITY_KW, "kW"),
    ("interfaces", "limit_kw", MAX_CAPACITY_KW, "kW"),
    ("resources", "capacity_kw", MAX_CAPACITY_KW, "kW"),
    ("resources", "capacity_kw_by_block", MAX_CAPACITY_KW, "kW"),
    ("bids", "cost.opportunity_cost_yen_per_kw_h", MAX_PRICE_YEN_PER_KW_H, "yen/kW·h"),
    ("price_caps", "yen_per_kw_h", MAX_PRICE_YEN_PER_KW_H, "yen/kW·h"),
    ("", "shortfall_price_yen_per_kw_h", MAX_PRICE_YEN_PER_KW_H, "yen/kW·h"),
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: Any) -> str:
    return json.dumps(value)


def plausibility_problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) for every figure beyond its limit and a `block_minutes` the format does not
    allow. Values that are not finite numbers are left to the structural checks, which name them."""
    out: list[tuple[str, str]] = []
    minutes = doc.get("block_minutes")
    if _number(minutes) and minutes > 0 and minutes not in BLOCK_MINUTES_ALLOWED:
        out.append(("block_minutes", f"{_show(minutes)} is not an allowed block length "
                    f"({' or '.join(str(m) for m in BLOCK_MINUTES_ALLOWED)} minutes)"))
    for section, key, limit, unit in LIMITED_FIELDS:
        items = [doc] if section == "" else doc.get(section)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            *outer, leaf = key.split(".")
            for name in outer:  # a nested object, e.g. a bid's `cost`
                item = item.get(name) if isinstance(item, dict) else None
            if not isinstance(item, dict) or leaf not in item:
                continue
            where = key if section == "" else f"{section}[{i}].{key}"
            value = item[leaf]
            values = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
            for j, v in values:
                if _number(v) and v > limit:
                    at = where if j is None else f"{where}[{j}]"
                    out.append((at, f"{_show(v)} is above the plausibility limit of {limit:,} {unit} (docs/auction.md)"))
    return out
