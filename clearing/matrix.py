"""The clearing MILP of SPEC §3 as arrays (column bounds, costs, integrality, CSR rows) for highspy.

The same formulation as `clearing/formulation.py`, family by family and coefficient by coefficient,
built straight into numpy arrays instead of Pyomo objects: no per-term Python objects, no expression
trees, and a model that can be cut into independent components (`solvers/decompose.py`) by slicing
arrays. `tests/test_fast_path.py` keeps both builds honest against each other.

Column layout (`MatrixModel.*_col`):
    q[b]  one per bid in clearing order          u[b]  one per bid in `ix.needs_binary` (sorted)
    v[r]  one per start-up resource              f[k]  one per flow key
    s[a,p,t]  one per positive requirement (sorted)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clearing.index import FLOW_PREFERENCE_YEN_PER_KW, TIE_BREAK_YEN_PER_KW, AuctionIndex
from clearing.model import Direction

INF = float("inf")


@dataclass
class MatrixModel:
    """A MILP `min c·x  s.t.  row_lower ≤ A x ≤ row_upper,  col_lower ≤ x ≤ col_upper`, A in CSR."""

    ix: AuctionIndex
    col_cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray  # 1 for binaries, 0 continuous (HiGHS's kInteger / kContinuous)
    row_lower: np.ndarray
    row_upper: np.ndarray
    a_start: np.ndarray  # CSR: row i holds a_index/a_value[a_start[i]:a_start[i+1]]
    a_index: np.ndarray
    a_value: np.ndarray
    row_family: list[tuple[str, int]] = field(default_factory=list)  # (family, first row) in order
    u_col: dict[int, int] = field(default_factory=dict)
    v_col: dict[str, int] = field(default_factory=dict)
    f_offset: int = 0
    s_col: dict[tuple[str, str, int], int] = field(default_factory=dict)
    balance_row: dict[tuple[str, str, int], int] = field(default_factory=dict)

    @property
    def num_cols(self) -> int:
        return len(self.col_cost)

    @property
    def num_rows(self) -> int:
        return len(self.row_lower)

    @property
    def num_bids(self) -> int:
        return len(self.ix.bids)


class _Rows:
    """Rows collected as (lower, upper, column list, coefficient list), turned into CSR at the end."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.lengths: list[int] = []
        self.index: list[int] = []
        self.value: list[float] = []
        self.families: list[tuple[str, int]] = []

    def family(self, name: str) -> None:
        self.families.append((name, len(self.lower)))

    def add(self, lower: float, upper: float, cols: list[int], vals: list[float]) -> int:
        self.lower.append(lower)
        self.upper.append(upper)
        self.lengths.append(len(cols))
        self.index.extend(cols)
        self.value.extend(vals)
        return len(self.lower) - 1


def build_matrix(ix: AuctionIndex) -> MatrixModel:
    """SPEC §3 as arrays; each block below mirrors one `add_*` family of `clearing/formulation.py`."""
    auction = ix.auction
    bids = ix.bids
    n_bids = len(bids)
    resources = {r.id: r for r in auction.resources}

    # --- variables (add_variables) ---
    binaries = sorted(ix.needs_binary)
    u_col = {i: n_bids + j for j, i in enumerate(binaries)}
    v_first = n_bids + len(binaries)
    v_col = {r: v_first + j for j, r in enumerate(ix.startup_resources)}
    f_offset = v_first + len(ix.startup_resources)
    s_first = f_offset + len(ix.flow_keys)
    s_keys = sorted(ix.requirement_kw)
    s_col = {key: s_first + j for j, key in enumerate(s_keys)}
    n_cols = s_first + len(s_keys)

    lower = np.zeros(n_cols)
    upper = np.empty(n_cols)
    cost = np.zeros(n_cols)
    integrality = np.zeros(n_cols, dtype=np.int32)
    upper[:n_bids] = [b.kw for b in bids]
    upper[n_bids:f_offset] = 1.0
    integrality[n_bids:f_offset] = 1
    upper[f_offset:s_first] = [auction.lines[li].capacity_kw(d, t) for li, d, _p, t in ix.flow_keys]
    upper[s_first:] = [ix.requirement_kw[key] for key in s_keys]

    # --- objective (add_objective): the same perturbations as the Pyomo model ---
    cost[:n_bids] = [ix.cost_per_kw[i] + TIE_BREAK_YEN_PER_KW * ix.tie_rank[i] for i in range(n_bids)]
    for r, col in v_col.items():
        cost[col] = resources[r].startup_cost_yen
    cost[f_offset:s_first] = FLOW_PREFERENCE_YEN_PER_KW
    cost[s_first:] = auction.shortfall_price_yen_per_kw_h * ix.hours

    rows = _Rows()

    # --- add_acceptance: q ≤ kw·u, q ≥ max(min_kw, 1)·u ---
    rows.family("accept_upper")
    for i in binaries:
        rows.add(-INF, 0.0, [i, u_col[i]], [1.0, -bids[i].kw])
    rows.family("accept_lower")
    for i in binaries:
        rows.add(0.0, INF, [i, u_col[i]], [1.0, -max(bids[i].min_kw, 1.0)])

    # --- add_exclusive_groups: Σ u ≤ 1 ---
    rows.family("exclusive_group")
    for members in ix.group_bids.values():
        if len(members) > 1:
            rows.add(-INF, 1.0, [u_col[i] for i in members], [1.0] * len(members))

    # --- add_parent_links: u[child] ≤ u[parent], or q[child] ≤ kw·u[parent] ---
    rows.family("parent_link")
    for i in sorted(ix.parent_of):
        parent = ix.parent_of[i]
        if i in ix.needs_binary:
            rows.add(-INF, 0.0, [u_col[i], u_col[parent]], [1.0, -1.0])
        else:
            rows.add(-INF, 0.0, [i, u_col[parent]], [1.0, -bids[i].kw])

    # --- add_startup: u[b] ≤ v[r], or q[b] ≤ kw·v[r] ---
    rows.family("startup_link")
    for r in ix.startup_resources:
        for i in ix.resource_bids[r]:
            if i in ix.needs_binary:
                rows.add(-INF, 0.0, [u_col[i], v_col[r]], [1.0, -1.0])
            else:
                rows.add(-INF, 0.0, [i, v_col[r]], [1.0, -bids[i].kw])

    # --- add_resource_capacity: Σ q ≤ cap (· v[r] with a start-up cost); rows that cannot bind left out ---
    rows.family("resource_capacity")
    cap_rows: dict[tuple[str, int], list[int]] = {}
    for r, members in ix.resource_bids.items():
        if resources[r].capacity_kw_by_block is None:
            continue
        for i in members:
            for t in bids[i].blocks:
                cap_rows.setdefault((r, t), []).append(i)
    startup = set(ix.startup_resources)
    for (r, t) in sorted(cap_rows):
        members = cap_rows[(r, t)]
        cap = resources[r].capacity_kw_by_block[t]
        if not (sum(bids[i].kw for i in members) > cap or r in startup):
            continue
        if r in startup:
            rows.add(-INF, 0.0, members + [v_col[r]], [1.0] * len(members) + [-cap])
        else:
            rows.add(-INF, cap, members, [1.0] * len(members))

    # --- add_line_limits: Σ_products f ≤ capacity, per line, direction, block ---
    rows.family("line_limit")
    for (li, direction, t), flows in ix.flows_on.items():
        if len(flows) > 1:
            rows.add(-INF, auction.lines[li].capacity_kw(direction, t), [f_offset + k for k in flows],
                     [1.0] * len(flows))

    # --- add_interface_limits: Σ members' flows ≤ limit_kw, per block ---
    rows.family("interface_limit")
    line_pos = {line.id: li for li, line in enumerate(auction.lines)}
    for interface in auction.interfaces:
        for t in range(auction.blocks):
            flows = [k for member in interface.members
                     for k in ix.flows_on.get((line_pos[member.line], Direction(member.direction), t), [])]
            if flows:
                rows.add(-INF, interface.limit_kw, [f_offset + k for k in flows], [1.0] * len(flows))

    # --- add_balance: Σ q + imports − exports (+ s) ≥ R ---
    rows.family("balance")
    balance_row: dict[tuple[str, str, int], int] = {}
    for key in ix.balance_keys:
        cols, vals = _net_import(ix, key, f_offset)
        local = ix.bids_at.get(key, ())
        cols = list(local) + cols
        vals = [1.0] * len(local) + vals
        if key in ix.requirement_kw:
            balance_row[key] = rows.add(ix.requirement_kw[key], INF, cols + [s_col[key]], vals + [1.0])
        else:
            balance_row[key] = rows.add(0.0, INF, cols, vals)

    # --- add_import_caps: imports − exports ≤ max_import_kw ---
    rows.family("import_cap")
    for key in sorted(ix.max_import_kw):
        if ix.flows_into.get(key):
            cols, vals = _net_import(ix, key, f_offset)
            rows.add(-INF, ix.max_import_kw[key], cols, vals)

    a_start = np.zeros(len(rows.lengths) + 1, dtype=np.int32)
    np.cumsum(rows.lengths, out=a_start[1:])
    return MatrixModel(
        ix=ix, col_cost=cost, col_lower=lower, col_upper=upper, integrality=integrality,
        row_lower=np.array(rows.lower, dtype=float), row_upper=np.array(rows.upper, dtype=float),
        a_start=a_start, a_index=np.array(rows.index, dtype=np.int32), a_value=np.array(rows.value, dtype=float),
        row_family=rows.families, u_col=u_col, v_col=v_col, f_offset=f_offset, s_col=s_col,
        balance_row=balance_row,
    )


def _net_import(ix: AuctionIndex, key: tuple[str, str, int], f_offset: int) -> tuple[list[int], list[float]]:
    into = ix.flows_into.get(key, ())
    out = ix.flows_out_of.get(key, ())
    return [f_offset + k for k in into] + [f_offset + k for k in out], [1.0] * len(into) + [-1.0] * len(out)
