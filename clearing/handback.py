"""A handed-back incumbent as a MIP start (docs/replicas.md: Graceful drain).

A replica that drains (SIGTERM) stops its unfinished solves and stores each one's best incumbent beside
the auction (`incumbent_of`: the awards, flows and shortfalls of the result document, which name every
entity by its id). The replica that claims the auction next turns it into a point of its own
formulation (`start_from_incumbent`) and hands it to the solve as a start hint; the fast path uses it
where it is feasible and cheaper than its own greedy start, so the search resumes from where the first
replica stopped rather than from scratch. Only ids are stored, never column positions, so a replica of
another version (or a re-solve with more binaries) still gets a point of its own columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dkw.clearing.figures import ZERO_KW
from dkw.clearing.formulation import Formulation


def incumbent_of(result: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a (stopped) result document a later solve can start from; None without an incumbent."""
    if result.get("status") in (None, "TIME_LIMIT_NO_SOLUTION", "ERROR") or result.get("objective_yen") is None:
        return None
    solver = result.get("solver") or {}
    return {
        "objective_yen": result["objective_yen"],
        "mip_gap": solver.get("mip_gap"),
        "awards": [[a["bid"], a["kw"]] for a in result.get("awards", [])],
        "flows": [[f["line"], f["direction"], f["product"], f["block"], f["kw"]] for f in result.get("flows", [])],
        "shortfalls": [[s["area"], s["product"], s["block"], s["kw"]] for s in result.get("shortfalls", [])],
    }


def start_from_incumbent(form: Formulation, incumbent: dict[str, Any]) -> np.ndarray:
    """The incumbent as a point of `form`'s columns: q from the awards, an acceptance binary 1 where its
    bid is accepted, a start-up binary 1 where any bid on the resource is, flows and shortfalls by key.
    Entities the formulation lacks are ignored; the solver checks the point before using it."""
    c, ix = form.columns, form.ix
    x = np.zeros(c.num_cols)
    position = {b.id: i for i, b in enumerate(ix.bids)}
    for bid, kw in incumbent.get("awards", []):
        i = position.get(bid)
        if i is not None:
            x[i] = min(float(kw), c.upper[i])
    for i, u in c.u_col.items():
        x[u] = 1.0 if x[i] > ZERO_KW else 0.0
    for r, v in c.v_col.items():
        x[v] = 1.0 if any(x[i] > ZERO_KW for i in ix.resource_bids.get(r, ())) else 0.0
    keyed = {(g.name, key): g.first + j for g in c.groups if g.name in ("f", "s") for j, key in enumerate(g.keys)}
    for line, direction, product, block, kw in incumbent.get("flows", []):
        col = keyed.get(("f", (line, direction, product, block)))
        if col is not None:
            x[col] = min(float(kw), c.upper[col])
    for area, product, block, kw in incumbent.get("shortfalls", []):
        col = keyed.get(("s", (area, product, block)))
        if col is not None:
            x[col] = min(float(kw), c.upper[col])
    return x
