"""The auction grouped once by the rows it touches, and the set of bids that enter the clearing.

Built before any model: every constraint family then takes its pre-grouped data in one pass
(no scanning all bids per row). The bids left out of the clearing come resolved, with their reasons
(`clearing/left_out.py`), and stay in the index for the result.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from dkw.clearing.figures import ZERO_KW
from dkw.clearing.left_out import LeftOutBid, left_out_bids
from dkw.clearing.model import Auction, Bid, Direction, Resource

#: Objective perturbation per kW of accepted quantity per rank among equal-price bids (yen). Breaks
#: ties toward the bid earlier in the document; far below any real price difference (0.01 yen).
TIE_BREAK_YEN_PER_KW = 1e-6
#: Objective cost per kW of flow per line direction and block (yen): among equal-cost solutions,
#: prefer less total flow (SPEC §3). Real cost figures never include it.
FLOW_PREFERENCE_YEN_PER_KW = 1e-5


def below_one_kw(ix: AuctionIndex, q) -> set[str]:
    """Bids without an acceptance binary whose quantity came out in (0, 1) kW. SPEC §3: an accepted bid
    delivers at least max(min_kw, 1) kW; such bids get a binary and the model is solved again (rare:
    the data are whole kW). `q`: quantity per bid position, a sequence or a dict."""
    pairs = q.items() if isinstance(q, dict) else enumerate(q)
    return {ix.bids[i].id for i, v in pairs if ZERO_KW < v < 1 - ZERO_KW and i not in ix.needs_binary}


_GOLDEN = 0.6180339887498949


def tie_ranks(bids: list[Bid]) -> list[float]:
    """Tie-break weight of each bid; its objective cost is TIE_BREAK_YEN_PER_KW × weight per kW.

    Among bids of equal price the weight grows with document order (earlier first: 0, 1, 2, ...). A
    fractional part in [0, 0.5) from the bid's rank in the (price, document order) sort — irrational
    steps, so no two sums of weights coincide — also separates combinations of bids at different prices
    that happen to cost the same. Both depend only on prices and on the order of equal-price bids, so
    reordering the document in any other way leaves every weight, and so the awards, unchanged.
    """
    order = sorted(range(len(bids)), key=lambda i: (bids[i].price_yen_per_kw_h, i))
    weights = [0.0] * len(bids)
    seen: dict[float, int] = defaultdict(int)
    for sorted_rank, i in enumerate(order):
        price = bids[i].price_yen_per_kw_h
        weights[i] = seen[price] + 0.5 * ((sorted_rank * _GOLDEN) % 1.0)
        seen[price] += 1
    return weights


@dataclass
class AuctionIndex:
    """Index sets of the MILP (SPEC §3) for the bids that enter the clearing, in document order."""

    auction: Auction
    bids: list[Bid]
    left_out: list[LeftOutBid]  # the bids not in `bids`, with the reason (clearing/left_out.py)
    hours: float
    resources: dict[str, Resource] = field(default_factory=dict)
    bid_pos: dict[str, int] = field(default_factory=dict)
    bids_at: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)  # (area, product, block)
    requirement_kw: dict[tuple[str, str, int], float] = field(default_factory=dict)
    max_import_kw: dict[tuple[str, str, int], float] = field(default_factory=dict)
    balance_keys: list[tuple[str, str, int]] = field(default_factory=list)
    flow_keys: list[tuple[int, Direction, str, int]] = field(default_factory=list)  # (line, dir, product, block)
    flows_into: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)  # positions in flow_keys
    flows_out_of: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)
    flows_on: dict[tuple[int, Direction, int], list[int]] = field(default_factory=dict)
    resource_bids: dict[str, list[int]] = field(default_factory=dict)
    #: (resource, block) → its bids covering the block, for the resources with a capacity
    resource_block_bids: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    group_bids: dict[str, list[int]] = field(default_factory=dict)
    children: dict[int, list[int]] = field(default_factory=dict)
    parent_of: dict[int, int] = field(default_factory=dict)
    startup_resources: list[str] = field(default_factory=list)
    needs_binary: set[int] = field(default_factory=set)
    tie_rank: list[float] = field(default_factory=list)  # see tie_ranks
    cost_per_kw: list[float] = field(default_factory=list)  # price × hours × |blocks|: yen per kW accepted


def acceptance_binaries(bids: list[Bid], children: dict[int, list[int]], force: set[str]) -> set[int]:
    """Positions of the bids with an acceptance binary: a minimum quantity, an exclusive group, children of
    their own, or in `force` (ids). A child that is itself constrained keeps its own binary, linked to its
    parent's."""
    return {i for i, b in enumerate(bids) if b.min_kw > 0 or b.group is not None or i in children or b.id in force}


def build_index(auction: Auction, left_out: list[LeftOutBid] | None = None,
                force_binary: set[str] | None = None) -> AuctionIndex:
    """Group the auction by rows. `left_out`: every bid the clearing leaves out (`dkw.clearing.rules.
    prepare_clearing` resolves them once); None: those above the caps the auction lists, and their
    children. `force_binary`: bids given an acceptance binary so they deliver ≥ 1 kW when accepted."""
    if left_out is None:
        left_out = left_out_bids(auction, [])
    left_out_ids = {r.bid for r in left_out}
    bids = [b for b in auction.bids if b.id not in left_out_ids]
    ix = AuctionIndex(auction, bids, left_out, auction.hours_per_block)
    ix.bid_pos = {b.id: i for i, b in enumerate(bids)}
    ix.resources = resources = {r.id: r for r in auction.resources}

    bids_at: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    resource_bids: dict[str, list[int]] = defaultdict(list)
    group_bids: dict[str, list[int]] = defaultdict(list)
    children: dict[int, list[int]] = defaultdict(list)
    for i, b in enumerate(bids):
        for p in b.products:
            for t in b.blocks:
                bids_at[(b.area, p, t)].append(i)
        if b.resource is not None:
            resource_bids[b.resource].append(i)
        if b.group is not None:
            group_bids[b.group].append(i)
        if b.parent is not None:
            parent = ix.bid_pos[b.parent]
            children[parent].append(i)
            ix.parent_of[i] = parent
    ix.bids_at, ix.resource_bids, ix.group_bids, ix.children = (
        dict(bids_at), dict(resource_bids), dict(group_bids), dict(children))
    for r, members in ix.resource_bids.items():
        if resources[r].capacity_kw_by_block is not None:
            for i in members:
                for t in bids[i].blocks:
                    ix.resource_block_bids.setdefault((r, t), []).append(i)

    for r in auction.requirements:
        if r.kw > 0:
            ix.requirement_kw[(r.area, r.product, r.block)] = r.kw
        if r.max_import_kw is not None:
            ix.max_import_kw[(r.area, r.product, r.block)] = r.max_import_kw

    flows_into: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    flows_out_of: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    flows_on: dict[tuple[int, Direction, int], list[int]] = defaultdict(list)
    for li, line in enumerate(auction.lines):
        for direction in Direction:
            src, dst = line.ends(direction)
            for p in auction.products:
                if p not in line.products:
                    continue
                for t in range(auction.blocks):
                    if line.capacity_kw(direction, t) <= 0:
                        continue
                    k = len(ix.flow_keys)
                    ix.flow_keys.append((li, direction, p, t))
                    flows_out_of[(src, p, t)].append(k)
                    flows_into[(dst, p, t)].append(k)
                    flows_on[(li, direction, t)].append(k)
    ix.flows_into, ix.flows_out_of, ix.flows_on = dict(flows_into), dict(flows_out_of), dict(flows_on)

    # a balance row wherever there is a requirement or a flow could leave the area
    ix.balance_keys = sorted(set(ix.requirement_kw) | set(flows_out_of))
    ix.startup_resources = [r for r in resource_bids if resources[r].startup_cost_yen > 0]

    ix.needs_binary = acceptance_binaries(bids, ix.children, set(force_binary or ()))
    ix.cost_per_kw = [b.price_yen_per_kw_h * ix.hours * len(b.blocks) for b in bids]
    ix.tie_rank = tie_ranks(bids)
    return ix
