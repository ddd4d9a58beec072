"""The bids left out of the clearing, resolved once: above their price cap, by the market rules, or orphaned.

Below both the index and the market rules: `dkw.clearing.rules` decides which bids are ineligible and which
caps apply (`effective_price_caps`), then calls `left_out_bids` once; `build_index` takes the list as
given. A bid left out is recorded with its reason, never dropped silently.

The code calls these bids "left out" everywhere (`LeftOutBid`, `left_out`); the documents keep their
field names: the result document's `rejected_bids` (and the proto's), and `left_out_because` in
`dkw validate --json`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dkw.clearing.model import COMPOSITE, Auction, Bid, PriceCapMode

#: A price this far above the cap is still within it (float noise in documents, not a real yen).
CAP_TOLERANCE_YEN = 1e-12


@dataclass(frozen=True, slots=True)
class LeftOutBid:
    """A bid left out of the clearing and why: an entry of the result document's `rejected_bids`."""

    bid: str
    verdict: str  # PRICE_ABOVE_CAP, PARENT_REJECTED, or an eligibility verdict
    reason: str


def price_cap_yen_per_kw_h(auction: Auction, bid: Bid) -> float | None:
    """The cap that applies to a bid (SPEC §3): its product's; for a composite bid the `composite` cap
    or, where the auction gives none, the lowest cap among its products. None: no cap. Reads the
    auction's caps as they stand: `clear` and `validate_auction` fill in the policy's schedule first
    (`dkw.clearing.rules.effective_price_caps`) where the document lists none."""
    if not auction.price_caps:
        return None
    caps = {c.product: c.yen_per_kw_h for c in auction.price_caps}
    if bid.is_composite:
        if COMPOSITE in caps:
            return caps[COMPOSITE]
        own = [caps[p] for p in bid.products if p in caps]
        return min(own) if own else None
    return caps.get(bid.products[0])


def above_cap(auction: Auction, bid: Bid) -> float | None:
    """The bid's cap if its price is above it, else None."""
    cap = price_cap_yen_per_kw_h(auction, bid)
    return cap if cap is not None and bid.price_yen_per_kw_h > cap + CAP_TOLERANCE_YEN else None


def leave_out_above_cap(auction: Auction) -> list[LeftOutBid]:
    """Bids above their cap, in REJECT mode (上限価格超過); empty in PAY_CAP mode."""
    if auction.price_cap_mode is not PriceCapMode.REJECT:
        return []
    out = []
    for bid in auction.bids:
        cap = above_cap(auction, bid)
        if cap is not None:
            out.append(LeftOutBid(bid.id, "PRICE_ABOVE_CAP",
                                   f"price {bid.price_yen_per_kw_h:g} yen/kW·h above the cap {cap:g} (上限価格超過)"))
    return out


def with_orphaned_children(auction: Auction, left_out: list[LeftOutBid]) -> list[LeftOutBid]:
    """Add the bids whose parent (directly or further up) is left out: they can never be accepted."""
    out = list(left_out)
    out_ids = {r.bid for r in left_out}
    changed = True
    while changed:
        changed = False
        for bid in auction.bids:
            if bid.parent in out_ids and bid.id not in out_ids:
                out_ids.add(bid.id)
                out.append(LeftOutBid(bid.id, "PARENT_REJECTED",
                                       f"its parent bid {bid.parent!r} is left out of the clearing"))
                changed = True
    return out


def left_out_bids(auction: Auction, by_rules: list[LeftOutBid],
                  left_out_above_cap: list[LeftOutBid] | None = None) -> list[LeftOutBid]:
    """Everything the clearing leaves out: the bids above their cap (`left_out_above_cap`, computed here if
    not given), then `by_rules` (the ineligible, a replay scenario's; one above its cap too is listed once,
    for the rules), then the bids whose parent is among them."""
    by_rules_ids = {r.bid for r in by_rules}
    if left_out_above_cap is None:
        left_out_above_cap = leave_out_above_cap(auction)
    return with_orphaned_children(auction, [r for r in left_out_above_cap if r.bid not in by_rules_ids] + list(by_rules))
