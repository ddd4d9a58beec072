"""What a replay produced: the input days it found and the outcome of the run (read by the report)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Day:
    """One auction document of the input directory, and the historical result beside it if any."""

    trading_date: str
    path: Path
    sha256: str
    history_path: Path | None
    blocks: int
    areas: tuple[str, ...]
    products: tuple[str, ...]



@dataclass
class ReplayOutcome:
    days: list[Day]
    scenarios: list[str]
    cleared: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # date, scenario, message
    records: list[dict[str, Any]] = field(default_factory=list)  # per run, without the per-block figures
    durations: dict[tuple[str, str], array] = field(default_factory=dict)  # (scenario, product) → prices
    history: list[dict[str, Any]] = field(default_factory=list)
    earlier_scenarios: list[str] = field(default_factory=list)  # found in OUTDIR from earlier runs
    summary_path: Path | None = None
    report_path: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed
