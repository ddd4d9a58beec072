"""The fixed-integer LP of a clearing, built from the auction and the accepted bids alone, and the exact
marginal prices it defines.

Every integer decision of SPEC §3 is fixed at the clearing's choice: a bid with an acceptance decision
(minimum quantity, exclusive group, or a parent of other bids) is either off (0 kW) or on (between
max(min_kw, 1) and kw kW); a linked bid whose parent is off is off; a resource with a start-up cost is
started or not, and the bids on one not started are off (start-up costs are then constants). What is
left is an LP in the accepted quantities, the flows and the shortfalls, with the *real* costs: no
tie-break, no flow preference. It is built here from the documents (not from the clearing's model), so
`dkw verify` can check a result's prices against it independently of how the clearing was computed.

**The price rule.** The marginal price of an area, product and block is what one more kW of its
requirement costs, per hour, with the integer decisions fixed:

    price = (v(R + 1 kW) − v(R)) / hours

where v is the LP's optimal value. Where the LP's dual of the balance row is unique this is that dual
(divided by hours); where several duals are optimal (degenerate rows, e.g. an area whose requirement is
met exactly by an indivisible bid, or a row with no requirement) it picks the one a TSO would quote: the
cost of the next kW, not of the last one. To make that defined everywhere, the LP lets every balance row
run short at the shortfall price (rows without a requirement included; this changes no optimum, since
a shortfall costs the same wherever it sits), so a price never exceeds the shortfall price.

Computed from one LP solve: HiGHS's ranging tells for each balance row over how many kW its dual stays
valid; where that covers the next kW the dual is the price, elsewhere the row is raised by 1 kW and
re-solved from the optimal basis.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dkw.clearing.model import Auction, Bid, Direction

INF = float("inf")

#: The requirement step that defines a price (kW).
PRICE_STEP_KW = 1.0
#: Ranging that covers the step up to this slack counts as covering it (kW).
RANGE_SLACK_KW = 1e-7

Key = tuple[str, str, int]


@dataclass(frozen=True)
class Optimum:
    """An optimal basis of the LP and what it shows, read off HiGHS once: per column its value, reduced
    cost, whether it is nonbasic at its lower bound and how far ranging lets that bound rise with the basis
    still optimal; per row its dual, activity, lower bound, whether it is basic and how far ranging lets
    its lower bound rise (None: HiGHS gave no ranging). The prices and the explanations read the same one."""

    col_value: np.ndarray
    col_dual: np.ndarray
    col_at_lower: np.ndarray
    col_room: np.ndarray
    row_dual: np.ndarray
    row_value: np.ndarray
    row_lower: np.ndarray
    row_basic: np.ndarray
    row_room: np.ndarray | None


@dataclass
class FixedLP:
    """The LP and where its rows and columns are. A clearing builds one and shares it between the exact
    prices and the explanations (dkw.clearing.exact.clearing_lp); `dkw verify` builds its own from the
    documents."""

    auction: Auction
    highs: Any  # a highspy.Highs holding the LP (highspy is imported only when an LP is built)
    balance_row: dict[Key, int] = field(default_factory=dict)
    requirement_kw: dict[Key, float] = field(default_factory=dict)
    status: str = ""
    objective_yen: float | None = None  # v(R): the LP's value, without start-up costs
    bid_column: dict[str, int] = field(default_factory=dict)
    free_bids: set[str] = field(default_factory=set)  # bids whose quantity the LP may still choose from 0
    #: the LP's first optimum as HiGHS reports it, read once (`optimum`)
    _optimum: Optimum | None = None
    #: a re-solve restored its bound but left HiGHS's solution at the changed LP's optimum
    _moved: bool = False

    @property
    def hours(self) -> float:
        return self.auction.block_minutes / 60.0

    def value_with(self, key: Key, extra_kw: float) -> float | None:
        """v with the requirement of `key` raised by `extra_kw`, re-solved from the current basis."""
        import highspy

        h, row = self.highs, self.balance_row[key]
        base = self.requirement_kw.get(key, 0.0)
        h.changeRowBounds(row, base + extra_kw, INF)
        h.run()
        ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        value = h.getInfo().objective_function_value if ok else None
        h.changeRowBounds(row, base, INF)  # the next run starts from this (dual feasible) basis
        self._moved = True
        return value

    def first_kw_cost(self, bid_id: str, kw: float = 1.0) -> float | None:
        """How much more the LP costs with at least `kw` of a bid it may choose freely (yen; None if it
        cannot take that much). Its own cost included: 0 means the bid is worth its price.

        Read off the optimal basis where it shows the answer (`from_basis`), else by a re-solve with the
        bid's lower bound at `kw` (`resolved_first_kw_cost`; the explanations call the two apart, to count
        the re-solves against their budget)."""
        known = self.from_basis(bid_id, kw)
        return known if known is not None else self.resolved_first_kw_cost(bid_id, kw)

    def from_basis(self, bid_id: str, kw: float = 1.0) -> float | None:
        """`first_kw_cost` without a re-solve, where LP theory gives it exactly, else None:

        - the LP already takes at least `kw` of the bid: forcing `kw` in cuts off nothing, so 0;
        - its column is at 0 and nonbasic, and ranging shows its value can rise to `kw` with the basis still
          primal feasible (bounds do not touch dual feasibility, so the basis stays optimal): the cost
          rises at the column's reduced cost all the way, so reduced cost × `kw`.

        Both rules hold at any optimal basis, so which one HiGHS lands on (`optimum`) does not matter."""
        optimum = self.optimum()
        if optimum is None:
            return None
        j = self.bid_column[bid_id]
        value = optimum.col_value[j]
        if value >= kw - RANGE_SLACK_KW:
            return 0.0
        if optimum.col_at_lower[j] and abs(value) <= RANGE_SLACK_KW and optimum.col_room[j] >= kw - RANGE_SLACK_KW:
            return float(optimum.col_dual[j]) * kw
        return None

    def optimum(self) -> Optimum | None:
        """The LP's optimum (None if it has none), read once: right after the build's solve, before any
        re-solve moved HiGHS's solution, when `prices` asks first (as in a clearing); after a re-solve the
        LP is solved again first (a re-solve restores the bounds but leaves the changed LP's solution)."""
        import highspy

        if self.objective_yen is None:
            return None
        if self._optimum is None:
            h = self.highs
            if self._moved:
                h.run()
                self._moved = False
                if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                    return None
            solution, basis = h.getSolution(), h.getBasis()
            col_at_lower = np.array([s == highspy.HighsBasisStatus.kLower for s in basis.col_status], dtype=bool)
            status, ranging = h.getRanging()
            ranged = status == highspy.HighsStatus.kOk and ranging.valid
            self._optimum = Optimum(
                col_value=np.asarray(solution.col_value), col_dual=np.asarray(solution.col_dual),
                col_at_lower=col_at_lower,
                col_room=np.asarray(ranging.col_bound_up.value_, dtype=float) if ranged else np.zeros(len(col_at_lower)),
                row_dual=np.asarray(solution.row_dual), row_value=np.asarray(solution.row_value),
                row_lower=np.asarray(h.getLp().row_lower_),
                row_basic=np.array([s == highspy.HighsBasisStatus.kBasic for s in basis.row_status], dtype=bool),
                row_room=np.asarray(ranging.row_bound_up.value_) if ranged else None)
        return self._optimum

    def resolved_first_kw_cost(self, bid_id: str, kw: float = 1.0) -> float | None:
        """`first_kw_cost` by its definition: a re-solve with the bid's lower bound at `kw`."""
        import highspy

        h, j = self.highs, self.bid_column[bid_id]
        lp = h.getLp()
        upper = lp.col_upper_[j]
        h.changeColBounds(j, kw, upper)
        h.run()
        ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        value = h.getInfo().objective_function_value if ok else None
        h.changeColBounds(j, 0.0, upper)
        self._moved = True
        if value is None or self.objective_yen is None:
            return None
        return value - self.objective_yen

    def step_price(self, key: Key) -> float | None:
        """The price by its definition: a re-solve with one more kW (yen/kW·h)."""
        raised = self.value_with(key, PRICE_STEP_KW)
        if raised is None or self.objective_yen is None:
            return None
        return (raised - self.objective_yen) / (PRICE_STEP_KW * self.hours)

    def prices(self) -> dict[Key, float]:
        """Every balance row's price (yen/kW·h): the dual where the basis shows it holds for the next kW
        (a binding row whose ranging covers one more kW: price = dual; a row with more than 1 kW of
        surplus: price 0), else a re-solve with one more kW."""
        optimum = self.optimum()
        if optimum is None:
            return {}
        lower, basic = optimum.row_lower, optimum.row_basic
        covered = np.zeros(len(lower), dtype=bool)
        if optimum.row_room is not None:
            covered = ~basic & (optimum.row_room >= lower + PRICE_STEP_KW - RANGE_SLACK_KW)
        surplus = basic & (optimum.row_value >= lower + PRICE_STEP_KW + RANGE_SLACK_KW)
        out: dict[Key, float] = {}
        for key, row in self.balance_row.items():
            if surplus[row]:
                out[key] = 0.0
            elif covered[row]:
                out[key] = float(optimum.row_dual[row]) / self.hours
            else:
                price = self.step_price(key)
                if price is not None:
                    out[key] = price
        return {k: _clean_price(v) for k, v in out.items()}


def _clean_price(value: float) -> float:
    """6 decimals, and no negative zero."""
    return round(value, 6) + 0.0


def balance_keys(auction: Auction) -> list[Key]:
    """The balance rows of SPEC §3 that carry a price: every (area, product, block) with a requirement,
    or out of which a line could carry the product."""
    keys = {(r.area, r.product, r.block) for r in auction.requirements if r.kw > 0}
    for line in auction.lines:
        for direction in Direction:
            by_block = line.kw_by_block(direction)
            src = line.ends(direction)[0]
            for p in auction.products:
                if p in line.products:
                    for t in range(auction.blocks):
                        if by_block[t] > 0:
                            keys.add((src, p, t))
    return sorted(keys)


class _Builder:
    """The LP's columns and the matrix's entries in compact arrays (at 200,000 bids a dict of rows of dicts
    of columns, and a list of entry tuples, peaked at 2.3 GB). A row exists only where it has a bound; an
    entry in a row that does not exist is dropped."""

    def __init__(self) -> None:
        self.cost, self.lo, self.hi = array("d"), array("d"), array("d")
        self.entry_col, self.entry_row, self.entry_value = array("i"), array("i"), array("d")
        self.row_index: dict[object, int] = {}
        self.row_lo, self.row_hi = array("d"), array("d")

    def row(self, key: object, lower: float, upper: float) -> None:
        self.row_index[key] = len(self.row_lo)
        self.row_lo.append(lower)
        self.row_hi.append(upper)

    def column(self, c: float, lower: float, upper: float) -> int:
        self.cost.append(c)
        self.lo.append(lower)
        self.hi.append(upper)
        return len(self.cost) - 1

    def entry(self, key: object, j: int, value: float) -> None:
        i = self.row_index.get(key)
        if i is not None:
            self.entry_col.append(j)
            self.entry_row.append(i)
            self.entry_value.append(value)

    def rows(self, auction: Auction, bids: list[Bid], keys: list[Key]) -> None:
        """Balance (≥ requirement), resource capacity, import cap, line and interface rows."""
        requirement = {(r.area, r.product, r.block): r.kw for r in auction.requirements}
        for key in keys:
            self.row(("bal", key), requirement.get(key, 0.0), INF)
        # a resource's row in a block no bid of it covers would be empty (at 200,000 bids 2.4M of 2.6M rows,
        # which took HiGHS 1.5 GB): only the blocks its bids cover, and any impossible (negative) capacity
        covered = {(b.resource, t) for b in bids if b.resource is not None for t in b.blocks}
        for r in auction.resources:
            if r.capacity_kw_by_block is not None:
                for t in range(auction.blocks):
                    if (r.id, t) in covered or r.capacity_kw_by_block[t] < 0:
                        self.row(("res", r.id, t), -INF, r.capacity_kw_by_block[t])
        caps = {(r.area, r.product, r.block): r.max_import_kw for r in auction.requirements if r.max_import_kw is not None}
        for key, cap in caps.items():
            self.row(("imp", key), -INF, cap)
        for line in auction.lines:
            for direction in Direction:
                by_block = line.kw_by_block(direction)
                for t in range(auction.blocks):
                    if by_block[t] > 0:
                        self.row(("line", line.id, direction.value, t), -INF, by_block[t])
        for interface in auction.interfaces:
            for t in range(auction.blocks):
                self.row(("ifc", interface.id, t), -INF, interface.limit_kw)

    def bid_columns(self, auction: Auction, bids: list[Bid], accepted: set[str]) -> tuple[dict[str, int], set[str]]:
        """A column per bid with its decisions fixed (module docstring); its column by id, and the bids the
        LP may still choose from 0."""
        hours = auction.block_minutes / 60.0
        by_id = {b.id: b for b in auction.bids}
        has_children = {b.parent for b in bids if b.parent is not None}

        def chain_on(bid: Bid) -> bool:
            """A linked bid can be on only while every ancestor is accepted."""
            node = bid
            while node.parent is not None:
                if node.parent not in accepted:
                    return False
                node = by_id[node.parent]
            return True

        bid_column: dict[str, int] = {}
        free: set[str] = set()
        startup = {r.id for r in auction.resources if r.startup_cost_yen > 0}
        started = {by_id[b].resource for b in accepted if b in by_id and by_id[b].resource in startup}
        for bid in bids:
            decided = bid.min_kw > 0 or bid.group is not None or bid.id in has_children
            possible = chain_on(bid) and (bid.resource not in startup or bid.resource in started)
            if decided:
                on = bid.id in accepted and possible
                lower, upper = (max(bid.min_kw, 1.0), bid.kw) if on else (0.0, 0.0)
            else:
                lower, upper = (0.0, bid.kw) if possible else (0.0, 0.0)
            j = self.column(bid.price_yen_per_kw_h * hours * len(bid.blocks), lower, upper)
            bid_column[bid.id] = j
            if not decided and upper > 0:
                free.add(bid.id)
            for p in bid.products:
                for t in bid.blocks:
                    self.entry(("bal", (bid.area, p, t)), j, 1.0)
            if bid.resource is not None:
                for t in bid.blocks:
                    self.entry(("res", bid.resource, t), j, 1.0)
        return bid_column, free

    def flow_columns(self, auction: Auction) -> None:
        """A column per line, direction, block and product the line carries, at no cost."""
        for line in auction.lines:
            for direction in Direction:
                by_block = line.kw_by_block(direction)
                src, dst = line.ends(direction)
                members = [i.id for i in auction.interfaces
                           if any(m.line == line.id and m.direction is direction for m in i.members)]
                for t in range(auction.blocks):
                    if by_block[t] <= 0:
                        continue
                    for p in auction.products:
                        if p not in line.products:
                            continue
                        j = self.column(0.0, 0.0, by_block[t])
                        self.entry(("line", line.id, direction.value, t), j, 1.0)
                        self.entry(("bal", (dst, p, t)), j, 1.0)
                        self.entry(("bal", (src, p, t)), j, -1.0)
                        self.entry(("imp", (dst, p, t)), j, 1.0)
                        self.entry(("imp", (src, p, t)), j, -1.0)
                        for interface_id in members:
                            self.entry(("ifc", interface_id, t), j, 1.0)

    def solved(self) -> Any:
        """A HiGHS instance holding the LP, run once."""
        import highspy

        from dkw.solvers.highs import new_highs

        h = new_highs()  # without the banner HiGHS prints on stdout at its first instance
        h.setOptionValue("output_flag", False)
        h.setOptionValue("random_seed", 0)
        lp = highspy.HighsLp()
        num_rows = len(self.row_lo)
        lp.num_col_, lp.num_row_ = len(self.cost), num_rows
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.array(self.cost), np.array(self.lo), np.array(self.hi)
        lp.row_lower_, lp.row_upper_ = np.array(self.row_lo), np.array(self.row_hi)
        # column-wise, rows ascending within a column; an entry given twice counts once (the last one)
        cols = np.frombuffer(self.entry_col, dtype=np.int32).astype(np.int64)
        rows_of = np.frombuffer(self.entry_row, dtype=np.int32).astype(np.int64)
        values = np.frombuffer(self.entry_value, dtype=np.float64)
        flat = cols * max(1, num_rows) + rows_of
        order = np.argsort(flat, kind="stable")
        last = np.ones(len(order), dtype=bool)
        last[:-1] = flat[order][1:] != flat[order][:-1]
        order = order[last]
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        per_column = np.bincount(cols[order], minlength=len(self.cost))
        lp.a_matrix_.start_ = np.concatenate(([0], np.cumsum(per_column))).astype(np.int32)
        lp.a_matrix_.index_ = rows_of[order].astype(np.int32)
        lp.a_matrix_.value_ = values[order].copy()
        h.passModel(lp)
        h.run()
        return h


def build_fixed_lp(auction: Auction, accepted: set[str], left_out: set[str]) -> FixedLP:
    """The LP with the decisions of a clearing that accepted `accepted` and left `left_out` out of the
    clearing (price caps, eligibility), solved once."""
    import highspy

    bids = [b for b in auction.bids if b.id not in left_out]
    keys = balance_keys(auction)
    lp = _Builder()
    lp.rows(auction, bids, keys)
    bid_column, free = lp.bid_columns(auction, bids, accepted)
    lp.flow_columns(auction)
    shortfall_cost = auction.shortfall_price_yen_per_kw_h * (auction.block_minutes / 60.0)
    for key in keys:  # every balance row may run short (module docstring)
        lp.entry(("bal", key), lp.column(shortfall_cost, 0.0, INF), 1.0)
    h = lp.solved()
    requirement = {(r.area, r.product, r.block): r.kw for r in auction.requirements}
    out = FixedLP(auction, h, {key: lp.row_index[("bal", key)] for key in keys},
                  {k: requirement[k] for k in keys if k in requirement}, bid_column=bid_column, free_bids=free)
    status = h.getModelStatus()
    out.status = h.modelStatusToString(status)
    if status == highspy.HighsModelStatus.kOptimal:
        out.objective_yen = h.getInfo().objective_function_value
    return out
