"""`dkw explain`: why each bid was not accepted in full, read from a result or recomputed from its auction."""

from __future__ import annotations

import argparse
import sys

from dkw.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK


def _explanation_lines(e: dict) -> list[str]:
    figures = [f"offered {e['kw']:g} kW, accepted {e['accepted_kw']:g} kW, price {e['price_yen_per_kw_h']:g} yen/kW·h"]
    for key, label in (("marginal_yen_per_kw_h", "marginal price"), ("value_yen_per_kw_h", "worth per kW"),
                       ("other_marginal_yen_per_kw_h", f"price in {e.get('other_area')}")):
        if e.get(key) is not None:
            figures.append(f"{label} {e[key]:g}")
    if e.get("extra_cost_yen") is not None:
        proven = "proven" if e.get("proven") else f"not proven; at least {e.get('extra_cost_lower_bound_yen') or 0:,.2f}"
        figures.append(f"extra cost {e['extra_cost_yen']:,.2f} yen ({proven})")
    if e.get("verdict"):
        figures.append(f"verdict {e['verdict']}")
    return [f"{e['bid']}  {e['reason']}", f"  {e['text']}", f"  {'; '.join(figures)}"]


def cmd_explain(args: argparse.Namespace) -> int:
    """Why bids were not accepted in full: the result's `explanations`, or recomputed with --auction."""
    from dkw.commands import read_auction, read_result, write_json

    result = read_result(args.result)
    if result is None:
        return EXIT_BAD_INPUT
    if "awards" not in result:
        print(f"{args.result}: not a result document", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.auction:
        from dataclasses import replace

        from dkw.clearing.explain import ExplainOptions, explain, explanations_document
        from dkw.clearing.left_out import LeftOutBid
        from dkw.clearing.model import PriceCap

        auction = read_auction(args.auction)
        if auction is None:
            return EXIT_BAD_INPUT
        caps = ((result.get("market_rules") or {}).get("price_caps") or {}).get("caps")
        if caps is not None:  # the caps the clearing applied
            auction = replace(auction, price_caps=tuple(PriceCap(c["product"], c["yen_per_kw_h"]) for c in caps))
        left_out = [LeftOutBid(r["bid"], r["verdict"], r["reason"]) for r in result.get("rejected_bids", [])]
        options = ExplainOptions.timed(args.time_limit)
        explanations = explanations_document(explain(auction, result, left_out, options))
    elif "explanations" in result:
        explanations = result["explanations"]
    else:
        print(f"{args.result}: no explanations in this result; give --auction AUCTION.json to compute them",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.bid:
        chosen = [e for e in explanations if e["bid"] in args.bid]
        for bid in args.bid:
            if not any(e["bid"] == bid for e in chosen):
                awarded = {a["bid"]: a["kw"] for a in result.get("awards", [])}
                print(f"{bid}: accepted in full ({awarded[bid]:g} kW)" if bid in awarded else
                      f"{bid}: no such bid in the result's explanations", file=sys.stderr)
        if not chosen:
            return EXIT_FAILED
        explanations = chosen
    if args.json:
        write_json({"auction_id": result.get("auction_id"), "explanations": explanations}, None)
        return EXIT_OK
    for e in explanations:
        print("\n".join(_explanation_lines(e)))
    if not args.bid:
        from collections import Counter

        counts = Counter(e["reason"] for e in explanations)
        print(f"{len(explanations)} bids not accepted in full: " + ", ".join(f"{r} {n}" for r, n in counts.most_common()))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("explain", help="why each bid was not accepted in full (or only BID...)")
    p.add_argument("result", metavar="RESULT.json", help="a result document (- for standard input)")
    p.add_argument("bid", nargs="*", metavar="BID", help="only these bids")
    p.add_argument("--auction", metavar="AUCTION.json", help="recompute the explanations from the auction, e.g. with "
                   "more time for the forced re-solves")
    p.add_argument("--time-limit", type=float, default=60.0, metavar="S",
                   help="with --auction: seconds for the forced re-solves in all (default 60)")
    p.add_argument("--json", action="store_true", help="the explanations as JSON")
    p.set_defaults(handler=cmd_explain)
