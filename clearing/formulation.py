"""The clearing MILP of SPEC §3, described once: one column layout and one function per constraint family.

`FORMULATION` lists the families in the order SPEC §3 states them. Each is a function of (index, columns)
returning its rows: a readable key per row (which rule, which entity), bounds, and column–coefficient
terms over the one column layout of `columns`. Every build derives from these: the arrays that highspy
solves (`clearing/matrix.py`) and the Pyomo model that `dkw model --lp` writes and the straight path
solves (`solvers/pyomo_model.py`); `tests/test_formulation.py` holds the two builds equal.

Columns (in this order; the keys name them in the Pyomo model and the LP file):
    q[bid]                    accepted kW of a bid, the same in every block it covers     (0 ≤ q ≤ kw)
    u[bid]                    1 if the bid is accepted, only where it matters (min_kw, group, parent, forced)
    v[resource]               1 if any bid on the resource is accepted (it has a start-up cost)
    f[line, dir, product, t]  flow                                                          (0 ≤ f ≤ capacity)
    s[area, product, t]       shortfall (募集量未達) where the requirement is positive         (0 ≤ s ≤ R)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dkw.clearing.index import FLOW_PREFERENCE_YEN_PER_KW, TIE_BREAK_YEN_PER_KW, AuctionIndex

INF = float("inf")

Key = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ColumnGroup:
    """One variable of the model: columns first .. first+len(keys)-1 of the layout."""

    name: str
    key_names: tuple[str, ...]
    keys: list[Key]
    first: int
    integer: bool


@dataclass
class Columns:
    """The one column layout: bounds, objective costs and integrality of every column."""

    groups: list[ColumnGroup]
    lower: np.ndarray
    upper: np.ndarray
    cost: np.ndarray
    integrality: np.ndarray  # 1 for binaries, 0 continuous (HiGHS's kInteger / kContinuous)
    num_bids: int
    u_col: dict[int, int]  # bid position → its acceptance binary
    v_col: dict[str, int]  # resource → its start-up binary
    f_first: int  # flow k is column f_first + k
    s_col: dict[tuple[str, str, int], int]

    @property
    def num_cols(self) -> int:
        return len(self.cost)


@dataclass
class Rows:
    """One constraint family: row j is `lower[j] ≤ Σ vals·x[cols] ≤ upper[j]`, its terms in the flat lists,
    which `compact()` turns into numpy arrays once the family is built (`formulate` does)."""

    name: str
    key_names: tuple[str, ...]
    keys: list[Key] = field(default_factory=list)
    lower: list[float] | np.ndarray = field(default_factory=list)
    upper: list[float] | np.ndarray = field(default_factory=list)
    lengths: list[int] | np.ndarray = field(default_factory=list)
    cols: list[int] | np.ndarray = field(default_factory=list)
    vals: list[float] | np.ndarray = field(default_factory=list)

    def add(self, key: Key, lower: float, upper: float, cols: list[int], vals: list[float]) -> None:
        if isinstance(self.cols, np.ndarray):
            raise RuntimeError(f"rows {self.name!r} are compacted: no row can be added")
        self.keys.append(key)
        self.lower.append(lower)
        self.upper.append(upper)
        self.lengths.append(len(cols))
        self.cols.extend(cols)
        self.vals.extend(vals)

    def compact(self) -> Rows:
        """The terms and bounds as numpy arrays: a Python list holds a pointer and often an object per
        entry, 4-5 times the array's bytes (the formulation stays alive through the solve: at 200,000
        bids this is memory that branch-and-bound's peak sits on top of)."""
        self.lower = np.asarray(self.lower, dtype=float)
        self.upper = np.asarray(self.upper, dtype=float)
        self.lengths = np.asarray(self.lengths, dtype=np.int32)
        self.cols = np.asarray(self.cols, dtype=np.int32)
        self.vals = np.asarray(self.vals, dtype=float)
        return self

    def terms(self):
        """(key, lower, upper, cols, vals) per row."""
        start = 0
        for key, lower, upper, n in zip(self.keys, self.lower, self.upper, self.lengths, strict=True):
            yield key, lower, upper, self.cols[start:start + n], self.vals[start:start + n]
            start += n


def columns(ix: AuctionIndex) -> Columns:
    """The decision variables with their natural bounds, and the objective (SPEC §3): Σ price·hours·
    |blocks|·q + Σ start-up costs + shortfall price·hours·Σ shortfall, plus the documented tie-break and
    flow-preference perturbations (never part of the reported cost)."""
    auction = ix.auction
    bids = ix.bids
    n_bids = len(bids)
    resources = {r.id: r for r in auction.resources}
    binaries = sorted(ix.needs_binary)
    u_col = {i: n_bids + j for j, i in enumerate(binaries)}
    v_first = n_bids + len(binaries)
    v_col = {r: v_first + j for j, r in enumerate(ix.startup_resources)}
    f_first = v_first + len(ix.startup_resources)
    s_first = f_first + len(ix.flow_keys)
    s_keys = sorted(ix.requirement_kw)
    s_col = {key: s_first + j for j, key in enumerate(s_keys)}
    n_cols = s_first + len(s_keys)

    lower = np.zeros(n_cols)
    upper = np.empty(n_cols)
    cost = np.zeros(n_cols)
    integrality = np.zeros(n_cols, dtype=np.int32)
    upper[:n_bids] = [b.kw for b in bids]
    upper[n_bids:f_first] = 1.0
    integrality[n_bids:f_first] = 1
    upper[f_first:s_first] = [auction.lines[li].capacity_kw(d, t) for li, d, _p, t in ix.flow_keys]
    upper[s_first:] = [ix.requirement_kw[key] for key in s_keys]

    cost[:n_bids] = [ix.cost_per_kw[i] + TIE_BREAK_YEN_PER_KW * ix.tie_rank[i] for i in range(n_bids)]
    for r, col in v_col.items():
        cost[col] = resources[r].startup_cost_yen
    cost[f_first:s_first] = FLOW_PREFERENCE_YEN_PER_KW
    cost[s_first:] = auction.shortfall_price_yen_per_kw_h * ix.hours

    groups = [
        ColumnGroup("q", ("bid",), [(b.id,) for b in bids], 0, False),
        ColumnGroup("u", ("bid",), [(bids[i].id,) for i in binaries], n_bids, True),
        ColumnGroup("v", ("resource",), [(r,) for r in ix.startup_resources], v_first, True),
        ColumnGroup("f", ("line", "direction", "product", "block"),
                    [(auction.lines[li].id, d.value, p, t) for li, d, p, t in ix.flow_keys], f_first, False),
        ColumnGroup("s", ("area", "product", "block"), list(s_keys), s_first, False),
    ]
    return Columns(groups, lower, upper, cost, integrality, n_bids, u_col, v_col, f_first, s_col)


def accept_upper(ix: AuctionIndex, c: Columns) -> Rows:
    """SPEC §3: an accepted bid delivers at most kw_b: q_b ≤ kw_b·u_b, wherever b has an acceptance binary."""
    rows = Rows("accept_upper", ("bid",))
    for i, u in c.u_col.items():
        rows.add((ix.bids[i].id,), -INF, 0.0, [i, u], [1.0, -ix.bids[i].kw])
    return rows


def accept_lower(ix: AuctionIndex, c: Columns) -> Rows:
    """SPEC §3: an accepted bid delivers at least max(min_kw_b, 1): q_b ≥ max(min_kw_b, 1)·u_b."""
    rows = Rows("accept_lower", ("bid",))
    for i, u in c.u_col.items():
        rows.add((ix.bids[i].id,), 0.0, INF, [i, u], [1.0, -max(ix.bids[i].min_kw, 1.0)])
    return rows


def exclusive_group(ix: AuctionIndex, c: Columns) -> Rows:
    """SPEC §3: at most one bid of a group (リスト・パターン) is accepted, over the whole auction."""
    rows = Rows("exclusive_group", ("group",))
    for group, members in ix.group_bids.items():
        if len(members) > 1:
            rows.add((group,), -INF, 1.0, [c.u_col[i] for i in members], [1.0] * len(members))
    return rows


def parent_link(ix: AuctionIndex, c: Columns) -> Rows:
    """SPEC §3: b accepted ⇒ parent accepted (持ち下げ供出 needs its 起動供出). A child with its own binary
    links binaries; otherwise its quantity is bounded by the parent's binary directly."""
    rows = Rows("parent_link", ("bid",))
    for i in sorted(ix.parent_of):
        parent = c.u_col[ix.parent_of[i]]
        if i in c.u_col:
            rows.add((ix.bids[i].id,), -INF, 0.0, [c.u_col[i], parent], [1.0, -1.0])
        else:
            rows.add((ix.bids[i].id,), -INF, 0.0, [i, parent], [1.0, -ix.bids[i].kw])
    return rows


def startup_link(ix: AuctionIndex, c: Columns) -> Rows:
    """SPEC §3: a resource with a start-up cost (起動費) is paid once if any of its bids is accepted."""
    rows = Rows("startup_link", ("resource", "bid"))
    for r in ix.startup_resources:
        v = c.v_col[r]
        for i in ix.resource_bids[r]:
            if i in c.u_col:
                rows.add((r, ix.bids[i].id), -INF, 0.0, [c.u_col[i], v], [1.0, -1.0])
            else:
                rows.add((r, ix.bids[i].id), -INF, 0.0, [i, v], [1.0, -ix.bids[i].kw])
    return rows


def resource_capacity(ix: AuctionIndex, c: Columns) -> Rows:
    """SPEC §3: per block, Σ q over the resource's bids covering the block ≤ capacity. For a resource with
    a start-up cost the capacity is multiplied by v[r] (valid, and tighter in the LP relaxation). Rows
    that can never bind (all the bids together fit) are left out for the others."""
    rows = Rows("resource_capacity", ("resource", "block"))
    for (r, t), members in sorted(ix.resource_block_bids.items()):
        cap = ix.resources[r].capacity_kw_by_block[t]
        if r in c.v_col:
            rows.add((r, t), -INF, 0.0, members + [c.v_col[r]], [1.0] * len(members) + [-cap])
        elif sum(ix.bids[i].kw for i in members) > cap:
            rows.add((r, t), -INF, cap, members, [1.0] * len(members))
    return rows


def line_limit(ix: AuctionIndex, c: Columns) -> Rows:
    """SPEC §3: per line, direction and block, the sum of flows over products ≤ that direction's capacity
    (a composite ΔkW exported for two products uses the line twice). One product: its column bound."""
    rows = Rows("line_limit", ("line", "direction", "block"))
    for (li, direction, t), flows in ix.flows_on.items():
        if len(flows) > 1:
            line = ix.auction.lines[li]
            rows.add((line.id, direction.value, t), -INF, line.capacity_kw(direction, t),
                     [c.f_first + k for k in flows], [1.0] * len(flows))
    return rows


def interface_limit(ix: AuctionIndex, c: Columns) -> Rows:
    """SPEC §3: per interface and block, Σ of its members' flows over all products ≤ limit_kw."""
    rows = Rows("interface_limit", ("interface", "block"))
    line_pos = {line.id: li for li, line in enumerate(ix.auction.lines)}
    for interface in ix.auction.interfaces:
        for t in range(ix.auction.blocks):
            flows = [k for member in interface.members
                     for k in ix.flows_on.get((line_pos[member.line], member.direction, t), [])]
            if flows:
                rows.add((interface.id, t), -INF, interface.limit_kw, [c.f_first + k for k in flows],
                         [1.0] * len(flows))
    return rows


def _net_import(ix: AuctionIndex, c: Columns, key: tuple[str, str, int]) -> tuple[list[int], list[float]]:
    """Imports − exports of (area, product, block) as terms: +1 per flow in, −1 per flow out."""
    into = ix.flows_into.get(key, ())
    out = ix.flows_out_of.get(key, ())
    return ([c.f_first + k for k in into] + [c.f_first + k for k in out], [1.0] * len(into) + [-1.0] * len(out))


def balance(ix: AuctionIndex, c: Columns) -> Rows:
    """SPEC §3: for every area, product and block, Σ q (local bids offering p in t) + imports − exports
    + shortfall ≥ requirement. Rows with no requirement keep exports within what the area has."""
    rows = Rows("balance", ("area", "product", "block"))
    for key in ix.balance_keys:
        cols, vals = _net_import(ix, c, key)
        local = ix.bids_at.get(key, ())
        cols = list(local) + cols
        vals = [1.0] * len(local) + vals
        if key in c.s_col:
            rows.add(key, ix.requirement_kw[key], INF, cols + [c.s_col[key]], vals + [1.0])
        else:
            rows.add(key, 0.0, INF, cols, vals)
    return rows


def import_cap(ix: AuctionIndex, c: Columns) -> Rows:
    """SPEC §3: where max_import_kw is given, imports − exports ≤ max_import_kw (エリア外調達量の上限)."""
    rows = Rows("import_cap", ("area", "product", "block"))
    for key in sorted(ix.max_import_kw):
        if ix.flows_into.get(key):
            cols, vals = _net_import(ix, c, key)
            rows.add(key, -INF, ix.max_import_kw[key], cols, vals)
    return rows


#: The constraint families, read top to bottom as SPEC §3; the objective and bounds are `columns`.
FORMULATION: tuple[Callable[[AuctionIndex, Columns], Rows], ...] = (
    accept_upper,
    accept_lower,
    exclusive_group,
    parent_link,
    startup_link,
    resource_capacity,
    line_limit,
    interface_limit,
    balance,
    import_cap,
)


@dataclass
class Formulation:
    """The model of one auction index: its columns and its constraint families, in `FORMULATION` order."""

    ix: AuctionIndex
    columns: Columns
    families: list[Rows]

    def first_rows(self) -> dict[str, int]:
        """Each family's first row in the stacked order (the arrays' and the solution duals' row numbers)."""
        out, first = {}, 0
        for rows in self.families:
            out[rows.name] = first
            first += len(rows.keys)
        return out


def formulate(ix: AuctionIndex) -> Formulation:
    cols = columns(ix)
    return Formulation(ix, cols, [family(ix, cols).compact() for family in FORMULATION])
