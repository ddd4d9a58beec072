"""Market rules beside the optimisation (SPEC §5): eligibility verdicts, price caps by date, monitoring flags.

The rules are data (`policy.json`, overridable with `--policy FILE`), evaluated by a small engine
(`dkw.clearing.rules.engine`). This module is what the CLI, the server and `dkw.clearing.engine.clear` call:

- `validate_auction(auction, policy)` → `Validation`: one `BidReport` per bid (verdict, reasons,
  monitoring flags), beside the price caps in force and the bids the clearing will leave out;
- `prepare_clearing(auction, policy, ineligible, also_left_out)` → the auction with its effective price
  caps, every bid the clearing leaves out (resolved once, `clearing/left_out.py`), and the sections the
  result reports (`market_rules`, `monitoring_flags`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from dkw.clearing.left_out import LeftOutBid, above_cap, leave_out_above_cap, left_out_bids
from dkw.clearing.model import Auction, PriceCap, PriceCapMode
from dkw.clearing.rules.engine import BidReport, Finding, Flag, judge_bid
from dkw.clearing.rules.policy import DEFAULT_POLICY_PATH, Policy, PolicyError, default_policy, load_policy

__all__ = ["BidReport", "DEFAULT_POLICY_PATH", "Finding", "Flag", "Policy", "PolicyError", "Validation",
           "default_policy", "effective_price_caps", "load_policy", "prepare_clearing", "validate_auction"]


def effective_price_caps(auction: Auction, policy: Policy | None = None) -> tuple[tuple[PriceCap, ...], dict[str, Any]]:
    """The caps that apply (yen per kW per hour) and where they come from: the auction's own list when
    it gives one (complete: a product it leaves out has no cap, SPEC §3), else the policy's schedule
    entry for the trading date."""
    if auction.price_caps is not None:
        return auction.price_caps, {"source": "auction"}
    policy = policy or default_policy()
    label, caps = policy.price_caps_on(auction.trading_date)
    return (tuple(PriceCap(p, v) for p, v in caps.items()),
            {"source": "policy", "schedule_entry": label, "policy_version": policy.version})


@dataclass
class Validation:
    """What the market rules say about an auction before it is cleared."""

    auction: Auction
    policy: Policy
    reports: list[BidReport]
    price_caps: tuple[PriceCap, ...]
    price_caps_from: dict[str, Any]
    left_out_above_cap: list[LeftOutBid]  # above their cap (REJECT mode), ineligible or not
    left_out: list[LeftOutBid]  # everything the clearing leaves out: above the cap, ineligible, orphaned

    def ineligible(self) -> list[LeftOutBid]:
        """The ineligible bids, each left out with its verdict."""
        return [LeftOutBid(r.bid, r.verdict, r.reason_text()) for r in self.reports if not r.eligible]

    def caps_document(self) -> dict[str, Any]:
        return {**self.price_caps_from, "mode": self.auction.price_cap_mode.value,
                "caps": [{"product": c.product, "yen_per_kw_h": c.yen_per_kw_h} for c in self.price_caps]}

    def flags_document(self) -> list[dict[str, Any]]:
        return [{"bid": r.bid, **f.to_dict()} for r in self.reports for f in r.flags]

    def to_document(self) -> dict[str, Any]:
        """`dkw validate --json` (and the gRPC Validate answer): per bid its verdict, reasons and flags.
        `clearing` says what the clearing will do with the bid: ELIGIBLE bids may still be left out for
        their price (PRICE_ABOVE_CAP) or their parent (PARENT_REJECTED)."""
        left_out = {r.bid: r for r in self.left_out}
        bids = []
        for report in self.reports:
            doc = report.to_dict()
            out = left_out.get(report.bid)
            doc["clearing"] = "LEFT_OUT" if out else "ENTERS"
            if out is not None and out.verdict != report.verdict:
                doc["left_out_because"] = {"verdict": out.verdict, "reason": out.reason}
            bids.append(doc)
        by_verdict = Counter(r.verdict for r in self.reports)
        return {
            "auction_id": self.auction.auction_id, "trading_date": self.auction.trading_date,
            "policy": self.policy.describe(), "price_caps": self.caps_document(),
            "bids": bids,
            "summary": {"bids": len(self.reports), "eligible": by_verdict.get("ELIGIBLE", 0),
                        "by_verdict": dict(sorted(by_verdict.items())),
                        "left_out": len(self.left_out),
                        "left_out_by_verdict": dict(sorted(Counter(r.verdict for r in self.left_out).items())),
                        "flagged_bids": sum(1 for r in self.reports if r.flags),
                        "flags": sum(len(r.flags) for r in self.reports)},
        }


def validate_auction(auction: Auction, policy: Policy | None = None) -> Validation:
    """Judge every bid of `auction` under `policy` (default: the shipped one)."""
    policy = policy or default_policy()
    prices = {b.id: b.price_yen_per_kw_h for b in auction.bids}
    cache: dict[tuple, tuple[str, str, list[Finding], str | None]] = {}
    reports = []
    for bid in auction.bids:
        # the verdict depends on the bid only through these; generated auctions repeat them a lot
        key = (bid.category, bid.products, bid.metering)
        report = judge_bid(bid, auction, policy, prices, cached=cache.get(key))
        cache.setdefault(key, (report.verdict, report.term_ja, report.findings, report.opening))
        reports.append(report)
    caps, caps_from = effective_price_caps(auction, policy)
    with_caps = replace(auction, price_caps=caps)
    above_cap_bids = leave_out_above_cap(with_caps)
    if auction.price_cap_mode is PriceCapMode.PAY_CAP:
        for report, bid in zip(reports, auction.bids, strict=True):
            cap = above_cap(with_caps, bid)
            if cap is not None:
                report.flags.append(Flag("PAID_AT_CAP", "price-cap", bid.price_yen_per_kw_h, cap,
                                         "price above the cap: ranked by its own price, paid the cap (PAY_CAP)",
                                         "上限価格"))
    validation = Validation(with_caps, policy, reports, caps, caps_from, above_cap_bids, [])
    validation.left_out = left_out_bids(with_caps, validation.ineligible(), above_cap_bids)
    return validation


def prepare_clearing(auction: Auction, policy: Policy | None = None, ineligible: list[LeftOutBid] | None = None,
                     also_left_out: Sequence[LeftOutBid] = ()) -> tuple[Auction, list[LeftOutBid], dict[str, Any]]:
    """What `clear` needs from the rules, each computed once: the auction with its effective caps filled
    in; every bid the clearing leaves out (above the cap, then `ineligible` — by default the ones the
    policy finds ineligible — then `also_left_out` where not already out for another reason, then
    orphaned children); and the result's extra sections."""
    validation = validate_auction(auction, policy)
    left_out = validation.left_out
    if ineligible is not None or also_left_out:
        by_rules = validation.ineligible() if ineligible is None else list(ineligible)
        already_out = {r.bid for r in by_rules} | {r.bid for r in validation.left_out_above_cap}
        by_rules += [r for r in also_left_out if r.bid not in already_out]
        left_out = left_out_bids(validation.auction, by_rules, validation.left_out_above_cap)
    extra = {"market_rules": {"policy": validation.policy.describe(), "price_caps": validation.caps_document()},
             "monitoring_flags": validation.flags_document()}
    return validation.auction, left_out, extra
