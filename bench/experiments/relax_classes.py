"""Which binaries carry the integrality gap? (issue 13, sixth round; docs/performance.md)

    python -m dkw.bench.experiments.relax_classes AUCTION.json MODE TIME_LIMIT_S

Solves the whole MILP as formulated (no fast-path reductions) with HiGHS, one class of binaries relaxed:
MODE `lp` (all relaxed), `relax_spanning` (the bids covering several blocks, their start-up binaries and
their linked bids relaxed), `relax_single` (only those stay integer), `full` (nothing relaxed), or
`area_rows` (nothing relaxed, plus per area, product and block the balance row without its flows against
the requirement less what can be imported: knapsack rows for HiGHS's cut separators). Prints the status,
incumbent, bound and nodes.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import highspy
import numpy as np

from dkw.clearing.document import load_auction, parse_document
from dkw.clearing.index import build_index
from dkw.clearing.matrix import MatrixModel, build_matrix
from dkw.solvers.arrays import ArrayProblem
from dkw.solvers.highs import load_problem, new_highs

MODES = ("lp", "relax_spanning", "relax_single", "full", "area_rows")


def spanning_binaries(mm: MatrixModel) -> set[int]:
    """The acceptance binaries of bids covering several blocks (linked bids share their parent's blocks)
    and the start-up binaries of their resources."""
    ix, c = mm.ix, mm.columns
    spanning = {i for i, b in enumerate(ix.bids) if len(b.blocks) > 1}
    cols = {col for i, col in c.u_col.items() if i in spanning}
    cols |= {col for r, col in c.v_col.items() if any(i in spanning for i in ix.resource_bids.get(r, []))}
    return cols


def area_rows(mm: MatrixModel) -> list[tuple[list[int], list[float], float]]:
    """Σ q + shortfall ≥ R − (what can be imported), per area, product and block where that is positive."""
    ix, c = mm.ix, mm.columns
    flows = range(c.f_first, c.f_first + len(ix.flow_keys))
    rows = []
    for key, row in mm.balance_row.items():
        requirement = ix.requirement_kw.get(key, 0.0)
        capacity_in = sum(ix.auction.lines[ix.flow_keys[k][0]].capacity_kw(ix.flow_keys[k][1], key[2])
                          for k in ix.flows_into.get(key, []))
        rhs = requirement - min(capacity_in, ix.max_import_kw.get(key, float("inf")))
        if rhs <= 0:
            continue
        lo, hi = mm.a_start[row], mm.a_start[row + 1]
        terms = [(int(j), float(v)) for j, v in zip(mm.a_index[lo:hi], mm.a_value[lo:hi], strict=True)
                 if j not in flows]
        rows.append(([j for j, _ in terms], [v for _, v in terms], rhs))
    return rows


def main(argv: list[str]) -> int:
    path, mode, limit = Path(argv[0]), argv[1], float(argv[2])
    if mode not in MODES:
        print(f"MODE must be one of {', '.join(MODES)}, not {mode!r}", file=sys.stderr)
        return 2
    mm = build_matrix(build_index(load_auction(parse_document(path.read_bytes()))))
    integrality = mm.integrality.copy()
    spanning = sorted(spanning_binaries(mm))
    if mode == "lp":
        integrality[:] = 0
    elif mode == "relax_spanning":
        integrality[spanning] = 0
    elif mode == "relax_single":
        kept = integrality[spanning].copy()
        integrality[:] = 0
        integrality[spanning] = kept
    print(f"binaries {int(mm.integrality.sum())}, block-spanning {len(spanning)}, integer here {int(integrality.sum())}")
    problem = dataclasses.replace(ArrayProblem.whole(mm), integrality=integrality)
    h = new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", limit)
    h.setOptionValue("mip_rel_gap", 1e-6)
    load_problem(h, problem)
    if mode == "area_rows":
        extra = area_rows(mm)
        print(f"area rows {len(extra)}")
        for cols, vals, rhs in extra:
            h.addRow(rhs, highspy.kHighsInf, len(cols), np.array(cols, dtype=np.int32), np.array(vals))
    started = time.time()
    h.run()
    info = h.getInfo()
    print(f"{mode}: {h.modelStatusToString(h.getModelStatus())}, incumbent {info.objective_function_value:,.0f}, "
          f"bound {info.mip_dual_bound:,.0f}, nodes {info.mip_node_count}, {time.time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
