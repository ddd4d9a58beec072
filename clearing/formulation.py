"""The clearing MILP of SPEC §3 in Pyomo, as a composition of constraint families.

`FORMULATION` lists the families in the order SPEC §3 states them; each is a function of
(model, index) that adds one rule's rows. Swapping a family for a tighter one is a one-line change.

Variables:
    q[b]        accepted kW of bid b, the same in every block the bid covers     (0 ≤ q ≤ kw)
    u[b]        1 if bid b is accepted, only where it matters (min_kw, group, parent, forced)
    v[r]        1 if any bid on resource r is accepted (r has a start-up cost)
    f[k]        flow on (line, direction, product, block) k                      (0 ≤ f ≤ capacity)
    s[a,p,t]    shortfall (募集量未達) where the requirement is positive           (0 ≤ s ≤ R)
"""

from __future__ import annotations

from collections.abc import Callable

import pyomo.environ as pyo

from clearing.index import FLOW_PREFERENCE_YEN_PER_KW, TIE_BREAK_YEN_PER_KW, AuctionIndex
from clearing.model import Direction


def add_variables(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """Decision variables with their natural bounds."""
    auction = ix.auction
    m.B = pyo.Set(initialize=range(len(ix.bids)), ordered=True)
    m.q = pyo.Var(m.B, domain=pyo.NonNegativeReals, bounds=lambda _, i: (0, ix.bids[i].kw))
    m.UB = pyo.Set(initialize=sorted(ix.needs_binary), ordered=True)
    m.u = pyo.Var(m.UB, domain=pyo.Binary)
    m.R = pyo.Set(initialize=ix.startup_resources, ordered=True)
    m.v = pyo.Var(m.R, domain=pyo.Binary)
    m.K = pyo.Set(initialize=range(len(ix.flow_keys)), ordered=True)

    def flow_bounds(_, k):
        li, direction, _p, t = ix.flow_keys[k]
        return (0, auction.lines[li].capacity_kw(direction, t))

    m.f = pyo.Var(m.K, domain=pyo.NonNegativeReals, bounds=flow_bounds)
    m.S = pyo.Set(initialize=sorted(ix.requirement_kw), dimen=3, ordered=True)
    m.s = pyo.Var(m.S, domain=pyo.NonNegativeReals, bounds=lambda _, a, p, t: (0, ix.requirement_kw[(a, p, t)]))


def add_acceptance(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """SPEC §3: q_b = 0 or max(min_kw_b, 1) ≤ q_b ≤ kw_b, wherever b has an acceptance binary."""
    def upper(_, i):
        return m.q[i] <= ix.bids[i].kw * m.u[i]

    def lower(_, i):
        return m.q[i] >= max(ix.bids[i].min_kw, 1.0) * m.u[i]

    m.accept_upper = pyo.Constraint(m.UB, rule=upper)
    m.accept_lower = pyo.Constraint(m.UB, rule=lower)


def add_exclusive_groups(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """SPEC §3: at most one bid of a group (リスト・パターン) is accepted, over the whole auction."""
    groups = [g for g, members in ix.group_bids.items() if len(members) > 1]
    m.G = pyo.Set(initialize=groups, ordered=True)
    m.exclusive_group = pyo.Constraint(m.G, rule=lambda _, g: sum(m.u[i] for i in ix.group_bids[g]) <= 1)


def add_parent_links(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """SPEC §3: b accepted ⇒ parent accepted (持ち下げ供出 needs its 起動供出). A child with its own binary
    links binaries; otherwise its quantity is bounded by the parent's binary directly."""
    def link(_, i):
        parent = ix.parent_of[i]
        if i in ix.needs_binary:
            return m.u[i] <= m.u[parent]
        return m.q[i] <= ix.bids[i].kw * m.u[parent]

    m.L = pyo.Set(initialize=sorted(ix.parent_of), ordered=True)
    m.parent_link = pyo.Constraint(m.L, rule=link)


def add_startup(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """SPEC §3: a resource with a start-up cost (起動費) is paid once if any of its bids is accepted."""
    pairs = [(r, i) for r in ix.startup_resources for i in ix.resource_bids[r]]
    m.RB = pyo.Set(initialize=pairs, dimen=2, ordered=True)

    def started(_, r, i):
        if i in ix.needs_binary:
            return m.u[i] <= m.v[r]
        return m.q[i] <= ix.bids[i].kw * m.v[r]

    m.startup_link = pyo.Constraint(m.RB, rule=started)


def add_resource_capacity(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """SPEC §3: per block, Σ q over the resource's bids covering the block ≤ capacity. For a resource with
    a start-up cost the capacity is multiplied by v[r] (valid, and tighter in the LP relaxation)."""
    resources = {r.id: r for r in ix.auction.resources}
    rows: dict[tuple[str, int], list[int]] = {}
    for r, members in ix.resource_bids.items():
        cap = resources[r].capacity_kw_by_block
        if cap is None:
            continue
        for i in members:
            for t in ix.bids[i].blocks:
                rows.setdefault((r, t), []).append(i)
    # rows that can never bind are left out
    rows = {k: v for k, v in rows.items()
            if sum(ix.bids[i].kw for i in v) > resources[k[0]].capacity_kw_by_block[k[1]]
            or k[0] in ix.startup_resources}
    startup = set(ix.startup_resources)
    m.RC = pyo.Set(initialize=sorted(rows), dimen=2, ordered=True)

    def capacity(_, r, t):
        cap = resources[r].capacity_kw_by_block[t]
        rhs = cap * m.v[r] if r in startup else cap
        return sum(m.q[i] for i in rows[(r, t)]) <= rhs

    m.resource_capacity = pyo.Constraint(m.RC, rule=capacity)


def add_line_limits(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """SPEC §3: per line, direction and block, the sum of flows over products ≤ that direction's capacity
    (a composite ΔkW exported for two products uses the line twice)."""
    keys = [k for k, flows in ix.flows_on.items() if len(flows) > 1]
    m.LD = pyo.Set(initialize=range(len(keys)), ordered=True)

    def limit(_, n):
        li, direction, t = keys[n]
        return sum(m.f[k] for k in ix.flows_on[keys[n]]) <= ix.auction.lines[li].capacity_kw(direction, t)

    m.line_limit = pyo.Constraint(m.LD, rule=limit)


def add_interface_limits(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """SPEC §3: per interface and block, Σ of its members' flows over all products ≤ limit_kw."""
    line_pos = {line.id: li for li, line in enumerate(ix.auction.lines)}
    rows = []
    for n, interface in enumerate(ix.auction.interfaces):
        for t in range(ix.auction.blocks):
            flows = [k for member in interface.members
                     for k in ix.flows_on.get((line_pos[member.line], Direction(member.direction), t), [])]
            if flows:
                rows.append((n, t, flows))
    m.IF = pyo.Set(initialize=range(len(rows)), ordered=True)
    m.interface_limit = pyo.Constraint(
        m.IF, rule=lambda _, j: sum(m.f[k] for k in rows[j][2]) <= ix.auction.interfaces[rows[j][0]].limit_kw)


def net_import(m: pyo.ConcreteModel, ix: AuctionIndex, key: tuple[str, str, int]):
    return sum(m.f[k] for k in ix.flows_into.get(key, ())) - sum(m.f[k] for k in ix.flows_out_of.get(key, ()))


def add_balance(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """SPEC §3: for every area, product and block, Σ q (local bids offering p in t) + imports − exports
    + shortfall ≥ requirement. Rows with no requirement keep exports within what the area has."""
    m.BAL = pyo.Set(initialize=ix.balance_keys, dimen=3, ordered=True)

    def balance(_, a, p, t):
        key = (a, p, t)
        supply = sum(m.q[i] for i in ix.bids_at.get(key, ())) + net_import(m, ix, key)
        if key in ix.requirement_kw:
            return supply + m.s[key] >= ix.requirement_kw[key]
        return supply >= 0

    m.balance = pyo.Constraint(m.BAL, rule=balance)


def add_import_caps(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """SPEC §3: where max_import_kw is given, imports − exports ≤ max_import_kw (エリア外調達量の上限)."""
    keys = [k for k in sorted(ix.max_import_kw) if ix.flows_into.get(k)]
    m.IC = pyo.Set(initialize=keys, dimen=3, ordered=True)
    m.import_cap = pyo.Constraint(m.IC, rule=lambda _, a, p, t: net_import(m, ix, (a, p, t)) <= ix.max_import_kw[(a, p, t)])


def add_objective(m: pyo.ConcreteModel, ix: AuctionIndex) -> None:
    """SPEC §3: Σ price·hours·|blocks|·q + Σ start-up costs + shortfall price·hours·Σ shortfall, plus the
    documented tie-break and flow-preference perturbations (never part of the reported cost)."""
    resources = {r.id: r for r in ix.auction.resources}
    shortfall = ix.auction.shortfall_price_yen_per_kw_h * ix.hours
    m.cost = pyo.Objective(
        expr=sum((ix.cost_per_kw[i] + TIE_BREAK_YEN_PER_KW * ix.tie_rank[i]) * m.q[i] for i in m.B)
        + sum(resources[r].startup_cost_yen * m.v[r] for r in m.R)
        + sum(shortfall * m.s[key] for key in m.S)
        + sum(FLOW_PREFERENCE_YEN_PER_KW * m.f[k] for k in m.K),
        sense=pyo.minimize,
    )


#: The formulation, read top to bottom as SPEC §3.
FORMULATION: tuple[Callable[[pyo.ConcreteModel, AuctionIndex], None], ...] = (
    add_variables,
    add_acceptance,
    add_exclusive_groups,
    add_parent_links,
    add_startup,
    add_resource_capacity,
    add_line_limits,
    add_interface_limits,
    add_balance,
    add_import_caps,
    add_objective,
)


def build_model(ix: AuctionIndex) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name=ix.auction.auction_id)
    for family in FORMULATION:
        family(m, ix)
    return m
