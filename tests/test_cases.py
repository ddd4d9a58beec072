"""Every shared case clears to its independently computed optimum and passes the independent checker."""

from __future__ import annotations

import pytest
from conftest import CASES_DIR, EXPECTED, clear_and_verify

from clearing.document import load_auction_file


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_case_reaches_reference_optimum(name: str) -> None:
    expected = EXPECTED[name]
    auction = load_auction_file(CASES_DIR / f"{name}.json")
    result = clear_and_verify(auction)

    assert result.status == "OPTIMAL"
    assert result.objective_yen == pytest.approx(expected["objective_yen"], rel=1e-6)
    assert result.procurement_cost_yen == pytest.approx(expected["procurement_cost_yen"], rel=1e-6, abs=1e-6)
    assert result.startup_cost_yen == pytest.approx(expected["startup_cost_yen"], rel=1e-6, abs=1e-6)
    assert result.shortfall_penalty_yen == pytest.approx(expected["shortfall_penalty_yen"], rel=1e-6, abs=1e-6)
    assert sum(s.kw for s in result.shortfalls) == pytest.approx(expected["shortfall_kw_blocks"], abs=1e-3)
    assert result.solver.mip_gap is not None and result.solver.mip_gap <= 1e-6
    accepted = expected["accepted_bids"]
    if isinstance(accepted, list):  # hand-made cases: the unique optimum
        assert sorted([a.bid, a.kw] for a in result.awards) == sorted(accepted)
    else:  # generated cases: equal-cost alternatives may exist
        assert len(result.awards) > 0
