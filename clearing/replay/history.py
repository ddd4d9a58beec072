"""The historical results found beside the auctions, read as replay records on the same footing as dkw's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dkw.clearing.document import InvalidAuction, load_auction, parse_document
from dkw.clearing.replay.outcome import Day
from dkw.clearing.replay.summary import summary_rows
from dkw.clearing.verify import verify_result

#: the scenario name of the historical results (reserved: no replay scenario may take it)
HISTORY = "history"


def history_records(days: list[Day], policy_file: Path | None = None) -> list[dict[str, Any]]:
    """Records for the historical results found beside the auctions, on the same footing as dkw's.
    A historical result is checked with the same verifier; its problems are reported, not fatal
    (history is what it was)."""
    out = []
    for day in days:
        if day.history_path is None:
            continue
        try:
            doc = parse_document(day.history_path.read_bytes())
        except (OSError, InvalidAuction) as exc:
            out.append({"trading_date": day.trading_date, "scenario": HISTORY, "status": "UNREADABLE",
                        "notes": [f"{day.history_path.name}: {exc}"], "rows": []})
            continue
        auction = load_auction(parse_document(day.path.read_bytes()), input_sha256=day.sha256)
        bids = {b.id for b in auction.bids}
        unknown = [a.get("bid") for a in doc.get("awards", []) if a.get("bid") not in bids]
        if unknown:
            out.append({"trading_date": day.trading_date, "scenario": HISTORY, "status": "UNMATCHED",
                        "notes": [f"{day.history_path.name}: awards of unknown bids {unknown[:3]}"],
                        "rows": []})
            continue
        left_out = {r["bid"] for r in doc.get("rejected_bids", []) if isinstance(r, dict) and "bid" in r}
        problems = verify_result(auction, doc, left_out=left_out, policy_file=policy_file)
        rows = summary_rows(auction, doc, HISTORY)
        out.append({
            "trading_date": day.trading_date, "scenario": HISTORY, "status": doc.get("status", "HISTORICAL"),
            "objective_yen": doc.get("objective_yen"),
            "procurement_cost_yen": round(sum(r["procurement_cost_yen"] for r in rows), 6),
            "startup_cost_yen": doc.get("startup_cost_yen"), "shortfall_penalty_yen": doc.get("shortfall_penalty_yen"),
            "payment_total_yen": doc.get("payment_total_yen"),
            "shortfall_kw": round(sum(float(s["kw"]) for s in doc.get("shortfalls", [])), 6),
            "accepted_bids": len(doc.get("awards", [])), "left_out_bids": len(left_out), "mip_gap": None,
            "solve_seconds": None,
            "notes": [f"verifier: {len(problems)} problem(s)" + (f", first: {problems[0]}" if problems else "")],
            "verification_problems": problems, "rows": rows,
        })
    return out
