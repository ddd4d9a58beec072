"""Where a replay keeps each day × scenario in OUTDIR (result, scenario auction, summary record), and
reading a finished one back (a resumed replay skips it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dkw.clearing.replay.outcome import Day
from dkw.clearing.replay.scenarios import file_slug
from dkw.clearing.replay.summary import write_csv

RECORD_FORMAT = "dkw-replay-day/1"
DAY_COLUMNS = ("trading_date", "scenario", "status", "objective_yen", "procurement_cost_yen", "startup_cost_yen",
               "shortfall_penalty_yen", "payment_total_yen", "shortfall_kw", "accepted_bids", "left_out_bids",
               "mip_gap", "solve_seconds", "notes")


def paths(out_dir: Path, trading_date: str, scenario: str) -> tuple[Path, Path, Path]:
    """The result, scenario auction and summary record files of a day × scenario."""
    base = out_dir / "days" / trading_date / file_slug(scenario)
    return (base.with_name(base.name + ".result.json"), base.with_name(base.name + ".auction.json"),
            base.with_name(base.name + ".summary.json"))


def write_json(path: Path, doc: Any, indent: int | None = 1) -> None:
    """Atomic: a reader (or a resumed replay) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def load_record(out_dir: Path, trading_date: str, scenario: str) -> dict[str, Any] | None:
    """The stored record of a day × scenario (with its per-block figures), or None."""
    try:
        return json.loads(paths(out_dir, trading_date, scenario)[2].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_finished(out_dir: Path, day: Day, scenario: str) -> dict[str, Any] | None:
    """The stored record of a finished day × scenario made from the same source, or None."""
    result_path, _, record_path = paths(out_dir, day.trading_date, scenario)
    if not (record_path.is_file() and result_path.is_file()):
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (record.get("format") != RECORD_FORMAT or record.get("scenario") != scenario
            or record.get("source_sha256") != day.sha256):
        return None
    return record


def write_days_csv(path: Path, records: list[dict[str, Any]]) -> None:
    """OUTDIR/days.csv: one row per day × scenario (and per historical result)."""
    write_csv(path, DAY_COLUMNS, (dict(rec, notes="; ".join(rec.get("notes", []))) for rec in records))
