"""The price-monitoring limit (市場監視: 逸失利益 + 一定額) that the ``price-rule`` scenario re-prices bids to.

SPEC §5: a ΔkW price may not exceed the lost opportunity (逸失利益) plus a fixed margin (一定額).
- 2021 guideline (trading dates before FY2026): margin per ΔkW and 3 h block = marginal cost (yen/kWh)
  × 10% × 5% (average utilisation of reserved units) × 3 h. Per kW·h that is marginal cost × 0.005.
- FY2026 (from 2026-04-01): margin = fixed-cost recovery ceiling ÷ expected awarded quantity
  (固定費回収上限額 ÷ 想定約定量). `expected_award_kw` is read as the expected award summed over the
  hours the ceiling covers (kW·h), so the quotient is yen per kW·h, the document's price unit.

This is a small stand-in with the same inputs as the market-rules engine's monitoring (issue 4), kept in
one function so the scenario can be pointed at the rules engine's formula once it is on main.
"""

from __future__ import annotations

import datetime as dt

from clearing.model import CostInfo

#: When the FY2026 formula replaces the 2021 guideline's.
FY2026_START = dt.date(2026, 4, 1)
#: 2021 guideline: 10% of the marginal cost × 5% utilisation × a 3 h block, per kW of ΔkW and block.
GUIDELINE_2021_SHARE = 0.10
GUIDELINE_2021_UTILISATION = 0.05
GUIDELINE_2021_BLOCK_HOURS = 3.0


def margin_yen_per_kw_h(cost: CostInfo, trading_date: dt.date) -> float | None:
    """The fixed margin (一定額) in yen per kW·h under the formula in force on `trading_date`; None when
    the bid's cost data lack what that formula needs."""
    if trading_date >= FY2026_START:
        if cost.fixed_cost_ceiling_yen is None or not cost.expected_award_kw:
            return None
        return cost.fixed_cost_ceiling_yen / cost.expected_award_kw
    if cost.marginal_cost_yen_per_kwh is None:
        return None
    per_kw_and_block = (cost.marginal_cost_yen_per_kwh * GUIDELINE_2021_SHARE * GUIDELINE_2021_UTILISATION
                        * GUIDELINE_2021_BLOCK_HOURS)
    return per_kw_and_block / GUIDELINE_2021_BLOCK_HOURS


def monitoring_limit_yen_per_kw_h(cost: CostInfo | None, trading_date: dt.date) -> float | None:
    """Highest ΔkW price the monitoring rule accepts: lost opportunity (0 when not given) + margin.
    None: the rule cannot be evaluated for this bid (no cost data), so the bid keeps its price."""
    if cost is None:
        return None
    margin = margin_yen_per_kw_h(cost, trading_date)
    if margin is None:
        return None
    return (cost.opportunity_cost_yen_per_kw_h or 0.0) + margin
