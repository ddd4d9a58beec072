"""Shared fixtures: the repository's copy of the shared cases and a helper that clears and verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearing.document import load_auction, load_auction_file
from clearing.engine import clear
from clearing.model import Auction
from clearing.result import ClearingResult
from clearing.verify import verify_result
from solvers.api import SolveOptions

CASES_DIR = Path(__file__).parent / "cases"
EXPECTED = json.loads((CASES_DIR / "expected.json").read_text())


def clear_and_verify(auction: Auction, options: SolveOptions | None = None, **kwargs) -> ClearingResult:
    """Every test that clears also verifies, independently of the model."""
    result = clear(auction, options, **kwargs)
    problems = verify_result(auction, result.to_document(), excluded={r.bid for r in result.rejected_bids})
    assert problems == [], problems
    return result


@pytest.fixture
def case_doc():
    def load(name: str) -> dict:
        return json.loads((CASES_DIR / f"{name}.json").read_text())

    return load


__all__ = ["CASES_DIR", "EXPECTED", "clear_and_verify", "load_auction", "load_auction_file"]
