"""Why each bid was not accepted in full (落札されなかった理由): one explanation per such bid, with its figure.

Run after the clearing, on the auction (with the caps that applied), the bids the rules left out and the
result. For every bid not accepted in full, partially accepted ones included, the first reason that holds,
in this order:

- LEFT_OUT_BY_RULES: left out before the clearing (ineligible, above its price cap, or its parent
  was); `verdict`.
- GROUP_ALTERNATIVE_CHOSEN: another bid of its exclusive group was accepted; `related`: that bid.
- PARENT_NOT_ACCEPTED: its parent bid (起動供出) was not accepted; `related`: the parent.
- RESOURCE_CAPACITY: its resource's capacity is used up in a block it covers; `related`: the resource.
- IMPORT_LIMITED: not worth its price in its own area, but cheaper than the marginal price of another
  area, and the lines, interfaces or import cap between are full (or carry no such product);
  `related`: those limits, `other_area` and its price.
- ABOVE_MARGINAL_PRICE: its price is above the marginal price of its area, product and block; both.
- MARGINAL: not above the marginal price: the marginal bid (partly accepted), one of equal price the
  tie-break passed over, or one whose kW would only serve what is already met; `value_yen_per_kw_h`.
- DID_NOT_FIT: not above the marginal price, yet not accepted: its minimum quantity, indivisibility or
  start-up cost does not fit; `extra_cost_yen`: how much more the best clearing that accepts it costs.

Prices are the result's exact marginal prices (dkw.clearing.fixed_lp: the cost of one more kW of
requirement). For a bid offering several products or blocks, `marginal_yen_per_kw_h` is the marginal
prices of its area summed over its products and averaged over its blocks; that can only overstate what a
kW of the bid is worth (the prices are convex in the requirements), so "above" stays a sound statement.
For a bid the fixed-integer LP may still choose from 0 (no acceptance decision), `value_yen_per_kw_h` is
exactly what its first kW is worth: its price minus what forcing 1 kW of it in costs, per kW·h.

DID_NOT_FIT's figure comes from re-solving the MILP with the bid forced in (accepted at no less than
max(min_kw, 1) kW), bounded in time: `proven` says whether that re-solve reached the optimum (within the
relative gap); when it did not, `extra_cost_yen` is what the best clearing found costs more (an upper
bound) and `extra_cost_lower_bound_yen` what any clearing accepting it must cost more at least. A bid
beyond the time budget keeps its reason with no figure.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dkw.clearing.figures import net_import
from dkw.clearing.fixed_lp import FixedLP, build_fixed_lp
from dkw.clearing.formulation import Formulation, formulate
from dkw.clearing.index import acceptance_binaries, build_index
from dkw.clearing.left_out import LeftOutBid
from dkw.clearing.matrix import to_matrix
from dkw.clearing.model import Auction, Bid, Direction
from dkw.clearing.result import ClearingResult, plain

#: kW and yen slack for "at capacity", "equal price", "accepted in full".
TOL_KW = 1e-6
TOL_PRICE = 1e-6


@dataclass(frozen=True, slots=True)
class ExplainOptions:
    """How much work the forced re-solves (DID_NOT_FIT) may take.

    `clear` uses `ExplainOptions()`: limits in work, not time, so the same document gives the same
    explanations twice (SPEC §3's determinism): at most `max_bids` bids re-solved, in document order, each
    within `max_nodes` branch-and-bound nodes, and none at all when more than `max_auction_bids` bids enter
    the clearing (a national auction: `dkw explain --auction` computes them with a time limit instead);
    `value_yen_per_kw_h` for at most `max_value_bids` bids, and for fewer on big auctions: each is an LP
    re-solve over the whole auction, so the count is also held to `max_value_work` LP columns in all (at
    200,000 bids 500 re-solves took 100 s, a third of the default time limit)."""

    max_bids: int | None = 20
    max_nodes: int | None = 500
    max_auction_bids: int | None = 100
    #: what a kW of a bid is worth (an LP re-solve each): for at most this many bids, in document order
    max_value_bids: int | None = 500
    max_value_work: int | None = 10_000_000
    per_bid_s: float | None = None  # time limits: dkw explain --auction ... --time-limit
    total_s: float | None = None
    mip_rel_gap: float = 1e-6

    @classmethod
    def timed(cls, total_s: float) -> ExplainOptions:
        """Every DID_NOT_FIT bid re-solved, within `total_s` seconds in all (at most 30 s per bid)."""
        return cls(max_bids=None, max_nodes=None, max_auction_bids=None, max_value_bids=None, max_value_work=None,
                   per_bid_s=min(total_s, 30.0), total_s=total_s)


@dataclass(slots=True)
class Explanation:
    """Why bid `bid` was not accepted in full. Absent figures are None (the document writes null)."""

    bid: str
    reason: str
    text: str
    kw: float  # offered, per block
    accepted_kw: float
    price_yen_per_kw_h: float
    marginal_yen_per_kw_h: float | None = None  # its area's marginal price (summed over products, per block)
    value_yen_per_kw_h: float | None = None  # exactly what its first kW is worth (bids the LP may choose freely)
    other_area: str | None = None  # IMPORT_LIMITED: the area it could have served
    other_marginal_yen_per_kw_h: float | None = None
    extra_cost_yen: float | None = None  # DID_NOT_FIT
    extra_cost_lower_bound_yen: float | None = None
    proven: bool | None = None
    verdict: str | None = None  # LEFT_OUT_BY_RULES
    related: list[str] = field(default_factory=list)  # the bid, resource, lines, interfaces involved

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


def _price_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


SOLVED = ("OPTIMAL", "TIME_LIMIT_FEASIBLE")  # the statuses with a solution: a fixed LP, forced re-solves


@dataclass(frozen=True, slots=True)
class _Cleared:
    """What the reasons read of a clearing's outcome: from the clearing's result object (`explain_clearing`)
    or from a result document (`explain`), the same figures either way."""

    status: str | None
    objective_yen: float | None
    accepted: dict[str, float]  # bid → kW, the bids accepted with more than 0 kW
    prices: list[tuple[str, str, int, float]]  # (area, product, block, yen/kW·h)
    flows: list[tuple[str, str, str, int, float]]  # (line, direction, product, block, kW)

    @classmethod
    def of_document(cls, doc: dict[str, Any]) -> _Cleared:
        return cls(doc.get("status"), doc.get("objective_yen"),
                   {a["bid"]: float(a["kw"]) for a in doc.get("awards", []) if float(a["kw"]) > 0},
                   [(p["area"], p["product"], p["block"], float(p["marginal_yen_per_kw_h"])) for p in doc.get("prices", [])],
                   [(f["line"], f["direction"], f["product"], int(f["block"]), float(f["kw"])) for f in doc.get("flows", [])])

    @classmethod
    def of_result(cls, result: ClearingResult) -> _Cleared:
        return cls(result.status, result.objective_yen,
                   {a.bid: float(a.kw) for a in result.awards if float(a.kw) > 0},
                   [(p.area, p.product, p.block, float(p.marginal_yen_per_kw_h)) for p in result.prices],
                   [(f.line, f.direction, f.product, int(f.block), float(f.kw)) for f in result.flows])


class _Context:
    """The result laid out for the questions the reasons ask."""

    def __init__(self, auction: Auction, cleared: _Cleared, lp: FixedLP | None = None,
                 options: ExplainOptions | None = None):
        self.auction = auction
        self.lp = lp
        self.hours = auction.block_minutes / 60.0
        self.accepted = cleared.accepted
        self.price = {(area, product, block): v for area, product, block, v in cleared.prices}
        self.by_product_block: dict[tuple[str, int], list[tuple[float, str]]] = defaultdict(list)
        for (area, product, block), v in self.price.items():
            self.by_product_block[(product, block)].append((v, area))
        for entries in self.by_product_block.values():
            entries.sort(reverse=True)
        self.values_left = options.max_value_bids if options is not None else None
        if options is not None and options.max_value_work is not None and lp is not None:
            by_work = options.max_value_work // max(1, lp.highs.getNumCol())
            self.values_left = by_work if self.values_left is None else min(self.values_left, by_work)
        self.priced = bool(self.price) or cleared.status in SOLVED
        self.bids = {b.id: b for b in auction.bids}
        self.resources = {r.id: r for r in auction.resources}
        self.use: dict[tuple[str, int], float] = defaultdict(float)
        self.group_winner: dict[str, str] = {}
        self.accepted_children: dict[str, list[str]] = defaultdict(list)  # parent → its accepted children
        for bid_id, kw in self.accepted.items():
            bid = self.bids[bid_id]
            if bid.parent is not None:
                self.accepted_children[bid.parent].append(bid_id)
            if bid.resource is not None:
                for t in bid.blocks:
                    self.use[(bid.resource, t)] += kw
            if bid.group is not None:
                self.group_winner.setdefault(bid.group, bid_id)
        self.line_use: dict[tuple[str, str, int], float] = defaultdict(float)
        for line_id, direction, _, block, kw in cleared.flows:
            self.line_use[(line_id, direction, block)] += kw
        self.net_in = net_import(auction, cleared.flows)

    def value(self, bid: Bid) -> float | None:
        """The bid's marginal value per kW·h: its area's prices summed over products, averaged over blocks."""
        if not self.priced:
            return None  # no solution, no prices: a row without a price is a row nothing is needed in
        total = sum(self.price.get((bid.area, p, t), 0.0) for p in bid.products for t in bid.blocks)
        return total / len(bid.blocks)

    def full_resource_block(self, bid: Bid) -> int | None:
        resource = self.resources.get(bid.resource) if bid.resource else None
        if resource is None or resource.capacity_kw_by_block is None:
            return None
        for t in bid.blocks:
            if self.use[(resource.id, t)] >= resource.capacity_kw_by_block[t] - TOL_KW:
                return t
        return None

    def limits_towards(self, bid: Bid, area: str, product: str, block: int) -> list[str]:
        """What stops one more kW of `product` going from the bid's area to `area` in `block`: searching
        the lines with room left (not full, carrying the product, no interface of theirs at its limit),
        the limits on the edge of what the bid's area can reach, or `area`'s import cap. Empty when a
        path with room exists."""
        auction = self.auction
        full_interfaces = {}
        for interface in auction.interfaces:
            total = sum(self.line_use.get((m.line, m.direction.value, block), 0.0) for m in interface.members)
            if total >= interface.limit_kw - TOL_KW:
                for m in interface.members:
                    full_interfaces[(m.line, m.direction)] = interface
        edges: list[tuple[str, str, str | None]] = []  # (from, to, why it is closed or None)
        for line in auction.lines:
            for direction in Direction:
                src, dst = line.ends(direction)
                cap = line.capacity_kw(direction, block)
                used = self.line_use.get((line.id, direction.value, block), 0.0)
                if product not in line.products:
                    why = f"line {line.id} does not carry {product}"
                elif used >= cap - TOL_KW:
                    why = f"line {line.id} {direction.value} is full ({cap:g} kW)"
                elif (line.id, direction) in full_interfaces:
                    why = f"interface {full_interfaces[(line.id, direction)].id} is at its limit"
                else:
                    why = None
                edges.append((src, dst, why))
        reach, frontier = {bid.area}, [bid.area]
        while frontier:
            here = frontier.pop()
            for src, dst, why in edges:
                if src == here and why is None and dst not in reach:
                    reach.add(dst)
                    frontier.append(dst)
        if area in reach:
            for r in auction.requirements:
                if (r.area, r.product, r.block) == (area, product, block) and r.max_import_kw is not None and \
                        self.net_in.get((area, product, block), 0.0) >= r.max_import_kw - TOL_KW:
                    return [f"{area}'s import cap ({r.max_import_kw:g} kW) is reached"]
            return []
        return sorted({why for src, dst, why in edges if src in reach and dst not in reach and why is not None})


def _explain_one(ctx: _Context, bid: Bid, left_out: dict[str, LeftOutBid]) -> Explanation:
    accepted = ctx.accepted.get(bid.id, 0.0)
    base = {"bid": bid.id, "kw": bid.kw, "accepted_kw": accepted, "price_yen_per_kw_h": bid.price_yen_per_kw_h}
    value = ctx.value(bid)
    if bid.id in left_out:
        r = left_out[bid.id]
        return Explanation(reason="LEFT_OUT_BY_RULES", verdict=r.verdict, text=f"left out before the clearing: {r.reason}",
                           **base)
    if accepted <= TOL_KW and bid.group is not None and bid.group in ctx.group_winner:
        other = ctx.group_winner[bid.group]
        return Explanation(reason="GROUP_ALTERNATIVE_CHOSEN", related=[other], marginal_yen_per_kw_h=value,
                           text=f"bid {other} of its exclusive group {bid.group} was accepted (リスト・パターン: at most one)",
                           **base)
    if accepted <= TOL_KW and bid.parent is not None and bid.parent not in ctx.accepted:
        return Explanation(reason="PARENT_NOT_ACCEPTED", related=[bid.parent], marginal_yen_per_kw_h=value,
                           text=f"its parent bid {bid.parent} was not accepted (持ち下げ供出 needs its 起動供出)", **base)
    block = ctx.full_resource_block(bid)
    if block is not None:
        cap = ctx.resources[bid.resource].capacity_kw_by_block[block]
        return Explanation(reason="RESOURCE_CAPACITY", related=[bid.resource], marginal_yen_per_kw_h=value,
                           text=f"resource {bid.resource} is used up in block {block} ({cap:g} kW by accepted bids)",
                           **base)
    price = bid.price_yen_per_kw_h
    if accepted > TOL_KW and value is not None and price > value + TOL_PRICE:  # held at its minimum
        children = sorted(ctx.accepted_children.get(bid.id, ()))
        why = f"; it is the parent (起動供出) of accepted {', '.join(children)}" if children else ""
        return Explanation(reason="ABOVE_MARGINAL_PRICE", marginal_yen_per_kw_h=value, related=children,
                           text=f"price {price:g} is above the marginal price {_price_text(value)}: accepted only at "
                                f"the least it can deliver, {accepted:g} of {bid.kw:g} kW{why}", **base)
    if accepted > TOL_KW:  # strictly between its bounds in the LP: the price-setting bid
        return Explanation(reason="MARGINAL", marginal_yen_per_kw_h=value,
                           text=f"the marginal bid: {accepted:g} of {bid.kw:g} kW were needed at its price {price:g}",
                           **base)
    first_kw = None
    if ctx.lp is not None and bid.id in ctx.lp.free_bids:
        first_kw = ctx.lp.from_basis(bid.id)  # most bids: read off the optimal basis, no re-solve
        if first_kw is None and (ctx.values_left is None or ctx.values_left > 0):
            first_kw = ctx.lp.resolved_first_kw_cost(bid.id)
            ctx.values_left = None if ctx.values_left is None else ctx.values_left - 1
    # exact: its first kW would raise the cost by first_kw, so it is worth price − that per kW·h
    worth = round(price - first_kw / (ctx.hours * len(bid.blocks)), 6) if first_kw is not None else None
    worth_text = (f"; a kW of it is worth {_price_text(worth)} yen/kW·h here (its first kW would raise the cost by "
                  f"{first_kw:,.2f} yen)" if first_kw is not None else "")
    base["value_yen_per_kw_h"] = worth
    # `value` (summed marginal prices) can only overstate what a kW of the bid is worth: "above" is sound
    above = value is not None and price > value + TOL_PRICE
    tie = first_kw is not None and first_kw <= TOL_PRICE * max(1.0, ctx.hours * len(bid.blocks))
    if above or (first_kw is not None and not tie):
        for p in bid.products:
            for t in bid.blocks:
                dearer = [(v, a) for v, a in ctx.by_product_block.get((p, t), ())
                          if a != bid.area and v > price + TOL_PRICE]
                for other_price, area in dearer:
                    limits = ctx.limits_towards(bid, area, p, t)
                    if limits:
                        return Explanation(
                            reason="IMPORT_LIMITED", marginal_yen_per_kw_h=value, other_area=area,
                            other_marginal_yen_per_kw_h=other_price, related=limits,
                            text=f"price {price:g} is below {area}'s marginal price {other_price:g} for {p} in block "
                                 f"{t}, but {'; '.join(limits)} (連系線); in its own area the marginal price is "
                                 f"{_price_text(value)}{worth_text}", **base)
    if above:
        return Explanation(reason="ABOVE_MARGINAL_PRICE", marginal_yen_per_kw_h=value,
                           text=f"price {price:g} is above the marginal price {_price_text(value)} yen/kW·h of "
                                f"{bid.area} {'+'.join(bid.products)}{worth_text}", **base)
    if first_kw is not None:
        why = ("an equally cheap clearing takes it; the tie-break (earlier in the document first) chose another"
               if tie else "what it could serve is already met")
        return Explanation(reason="MARGINAL", marginal_yen_per_kw_h=value,
                           text=f"price {price:g} is at the marginal price {_price_text(value)}: {why}{worth_text}",
                           **base)
    if ctx.lp is not None and bid.id in ctx.lp.free_bids:  # no acceptance decision; its worth not computed
        return Explanation(reason="MARGINAL", marginal_yen_per_kw_h=value,
                           text=f"price {price:g} is not above the marginal price {_price_text(value)}: an equally "
                                "cheap clearing may take it, or what it could serve is already met", **base)
    return Explanation(reason="DID_NOT_FIT", marginal_yen_per_kw_h=value,
                       text=f"price {price:g} is not above the marginal price {_price_text(value)}, but its "
                            f"{_lumpiness(bid, ctx)} does not fit", **base)


def _lumpiness(bid: Bid, ctx: _Context) -> str:
    parts = []
    if bid.min_kw >= bid.kw:
        parts.append(f"indivisible {bid.kw:g} kW")
    elif bid.min_kw > 0:
        parts.append(f"minimum {bid.min_kw:g} kW")
    resource = ctx.resources.get(bid.resource) if bid.resource else None
    if resource is not None and resource.startup_cost_yen > 0:
        parts.append(f"start-up cost {resource.startup_cost_yen:g} yen (起動費)")
    return " and ".join(parts) or "acceptance"


def explain(auction: Auction, result: dict[str, Any], left_out: list[LeftOutBid],
            options: ExplainOptions | None = None) -> list[Explanation]:
    """From the documents (`dkw explain RESULT.json --auction AUCTION.json`): an explanation for every bid
    of `auction` not accepted in full by `result`, in document order. `auction` carries the price caps that
    applied; `left_out` the bids the rules left out. The fixed LP, and the MILP where bids are forced in,
    are built here from the documents."""
    cleared = _Cleared.of_document(result)
    lp = None
    if cleared.status in SOLVED:
        lp = build_fixed_lp(auction, {a["bid"] for a in result.get("awards", [])}, {r.bid for r in left_out})

    return _explain_all(auction, cleared, left_out, lp, options or ExplainOptions(),
                        lambda forced: formulate(build_index(auction, left_out, forced)))


def explain_clearing(form: Formulation, result: ClearingResult, lp: FixedLP | None,
                     options: ExplainOptions | None = None) -> list[Explanation]:
    """`explain` for the clearing that just ran (`clear`), from what it already has: its result object (no
    document), its fixed LP (dkw.clearing.exact.clearing_lp, shared with the prices) and its index and
    formulation (formulated again only where a bid to force in has no acceptance binary yet)."""
    ix = form.ix

    def model(forced: set[str]) -> Formulation:
        wanted = acceptance_binaries(ix.bids, ix.children, forced)
        return form if wanted == ix.needs_binary else formulate(replace(ix, needs_binary=wanted))

    return _explain_all(ix.auction, _Cleared.of_result(result), ix.left_out, lp if result.status in SOLVED else None,
                        options or ExplainOptions(), model)


def _explain_all(auction: Auction, cleared: _Cleared, left_out: list[LeftOutBid], lp: FixedLP | None,
                 options: ExplainOptions, model: Callable[[set[str]], Formulation]) -> list[Explanation]:
    """The explanations, and DID_NOT_FIT's figures from `model(the bids to force in)`: the clearing's MILP
    with an acceptance binary for each of them (the rules' binaries, and theirs)."""
    left_out_by_id = {r.bid: r for r in left_out}
    ctx = _Context(auction, cleared, lp if lp is not None and lp.objective_yen is not None else None, options)
    out = [_explain_one(ctx, bid, left_out_by_id) for bid in auction.bids
           if ctx.accepted.get(bid.id, 0.0) < bid.kw - TOL_KW]
    did_not_fit = [e for e in out if e.reason == "DID_NOT_FIT"]
    if did_not_fit and cleared.status in SOLVED:
        _price_forcing(len(auction.bids) - len(left_out), float(cleared.objective_yen), did_not_fit, options, model)
    return out


def _forcing_highs(form: Formulation, options: ExplainOptions) -> Any:
    """One HiGHS instance holding `form`'s MILP with the real costs: the tie-break and flow preference only
    pick among equal costs, and without them the solver's bound is a bound on the real extra cost."""
    from dkw.solvers.highs import ArrayProblem, load_problem, new_highs

    ix, c = form.ix, form.columns
    mm = to_matrix(form)
    cost = mm.col_cost.copy()
    cost[:c.num_bids] = ix.cost_per_kw
    cost[c.f_first:c.f_first + len(ix.flow_keys)] = 0.0
    highs = new_highs()
    for name, value in (("output_flag", False), ("random_seed", 0), ("mip_rel_gap", options.mip_rel_gap)):
        highs.setOptionValue(name, value)
    if options.max_nodes is not None:
        highs.setOptionValue("mip_max_nodes", options.max_nodes)
    load_problem(highs, replace(ArrayProblem.whole(mm), col_cost=cost))
    return highs


def _price_forcing(entering: int, base: float, explanations: list[Explanation], options: ExplainOptions,
                   model: Callable[[set[str]], Formulation]) -> None:
    """Fill in DID_NOT_FIT's figures: the clearing's MILP re-solved with each bid forced in, within the
    budget (`entering`: bids in the clearing; `base`: its objective). One HiGHS model; each bid's
    acceptance column is fixed at 1, solved, and released."""
    import highspy
    import numpy as np

    started = time.perf_counter()
    if options.max_auction_bids is not None and entering > options.max_auction_bids:
        for e in explanations:
            e.text += (f"; not re-solved: {entering} bids is more than the {options.max_auction_bids} the clearing "
                       "re-solves for (dkw explain --auction computes it)")
        return
    form = model({e.bid for e in explanations})
    highs = _forcing_highs(form, options)
    ix, c = form.ix, form.columns
    s_cols = np.array(list(c.s_col.values()), dtype=np.int64)
    for n, e in enumerate(explanations):
        left = None if options.total_s is None else options.total_s - (time.perf_counter() - started)
        if (left is not None and left <= 0.05) or (options.max_bids is not None and n >= options.max_bids):
            e.text += "; not re-solved within the explanation budget (dkw explain --auction computes it)"
            continue
        col = c.u_col[ix.bid_pos[e.bid]]
        limit = min((x for x in (options.per_bid_s, left) if x is not None), default=None)
        within = f"{limit:.3g} s" if limit is not None else f"{options.max_nodes} nodes"
        highs.changeColBounds(col, 1.0, 1.0)
        highs.setOptionValue("time_limit", limit if limit is not None else highspy.kHighsInf)
        highs.run()
        status, info = highs.getModelStatus(), highs.getInfo()
        highs.changeColBounds(col, 0.0, 1.0)
        proven = status == highspy.HighsModelStatus.kOptimal
        if info.primal_solution_status == 2:
            x = np.asarray(highs.getSolution().col_value)
            q = x[:c.num_bids]
            on = {ix.bids[j].resource for j in np.flatnonzero(q > TOL_KW) if ix.bids[j].resource}
            total = (float(np.dot(ix.cost_per_kw, q)) + sum(ix.resources[r].startup_cost_yen for r in on)
                     + ix.auction.shortfall_price_yen_per_kw_h * ix.hours * float(x[s_cols].sum()))
            e.extra_cost_yen = round(max(total - base, 0.0), 6)
            bound = info.mip_dual_bound if np.isfinite(info.mip_dual_bound) else -np.inf
            e.extra_cost_lower_bound_yen = e.extra_cost_yen if proven else round(max(bound - base, 0.0), 6)
            e.proven = proven
            e.text += (f": the best clearing that accepts it costs {e.extra_cost_yen:,.2f} yen more" if proven else
                       f": a clearing that accepts it costs {e.extra_cost_yen:,.2f} yen more, and any at least "
                       f"{e.extra_cost_lower_bound_yen:,.2f} (not proven within {within})")
        elif status == highspy.HighsModelStatus.kInfeasible:
            e.proven = True
            e.text += ": no feasible clearing accepts it"
        else:
            e.proven = False
            e.text += f": no clearing accepting it was found within {within}"


def explanations_document(explanations: list[Explanation]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in explanations]
