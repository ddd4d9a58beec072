"""The floor under the bound (solvers/fastpath/floor.py): a relaxation of the LP relaxation, so never above
it, hence never above the optimum; shared per component exactly; and a real HiGHS solve, no mock."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CASES_DIR, EXPECTED, case_auction, clear_and_verify, load_auction_file, prepared_matrix
from hypothesis import HealthCheck, given, settings
from test_properties import auctions

from dkw.clearing.document import load_auction
from dkw.solvers.api import SolveOptions
from dkw.solvers.arrays import ArrayProblem, violation
from dkw.solvers.fastpath.floor import component_floors, floor_start, solve_floor, split_relaxation
from dkw.solvers.fastpath.prepare import fix_always_full
from dkw.solvers.fastpath.split import components_of
from dkw.solvers.fastpath.starts import greedy_start
from dkw.solvers.highs import highs_for, solved_optimally
from dkw.solvers.tuning import FastPathTuning

SETTINGS = {"threads": 1, "output_flag": False}


def lp_relaxation(mm) -> float:
    relaxed = ArrayProblem.whole(mm)
    relaxed.integrality = np.zeros_like(relaxed.integrality)
    highs = highs_for(relaxed, SETTINGS, ("threads",), output_flag=False)
    highs.run()
    assert solved_optimally(highs)
    return highs.getInfo().objective_function_value


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_floor_is_below_the_lp_relaxation_and_the_optimum(name: str) -> None:
    mm = prepared_matrix(load_auction_file(CASES_DIR / f"{name}.json"))
    solved = solve_floor(mm, SETTINGS)
    assert solved is not None
    costs = solved.costs
    floor = float(costs.sum())
    lp = lp_relaxation(mm)
    assert 0.0 <= floor <= lp + 1e-6 * max(1.0, abs(lp))
    assert floor <= EXPECTED[name]["objective_yen"] * (1 + 1e-9) + 1.0  # the real optimum (perturbations ≥ 0)
    subs = components_of(mm)
    assert sum(component_floors(subs, costs)) == pytest.approx(floor, rel=1e-9, abs=1e-6)


def test_the_floor_keeps_the_interconnectors_and_the_local_rows() -> None:
    """On the dense national case the floor is most of the LP relaxation (it keeps the areas apart, the
    groups and the capacities), where pooling the areas would lose about half of it."""
    mm = prepared_matrix(load_auction_file(CASES_DIR / "10-national-dense.json"))
    relaxed, original = split_relaxation(mm)
    assert relaxed.num_cols == len(original) and original.max() < mm.num_cols
    assert float(solve_floor(mm, SETTINGS).costs.sum()) >= 0.8 * lp_relaxation(mm)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(auctions(max_bids=8))
def test_the_floor_never_exceeds_the_lp_relaxation_on_random_auctions(doc: dict) -> None:
    mm = prepared_matrix(load_auction(doc))
    solved = solve_floor(mm, SETTINGS)
    assert solved is not None
    lp = lp_relaxation(mm)
    assert float(solved.costs.sum()) <= lp + 1e-6 * max(1.0, abs(lp))


def test_a_clearing_stopped_before_its_relaxation_still_has_a_proven_bound() -> None:
    """A limit far too short for the big component's LP relaxation (as 30 s is at 200,000 bids): with the
    floor the result still carries a proven bound, below its clearing and below the optimum."""
    name = "10-national-dense"
    result = clear_and_verify(load_auction_file(CASES_DIR / f"{name}.json"),
                              SolveOptions(time_limit_s=0.05, tuning=FastPathTuning(floor_min_cols=0)))
    assert result.status == "TIME_LIMIT_FEASIBLE"
    bound = result.solver.objective_bound
    assert bound is not None and 0 < bound <= EXPECTED[name]["objective_yen"] <= result.objective_yen


def test_the_floor_is_wanted_where_the_relaxation_may_not_end_in_the_time_left() -> None:
    """The biggest components always; smaller ones when their LP relaxation is not expected to end in the time
    left (the 80,000-bid auction's 144,517 columns: at 30 s, about 20 s left, not at 60 s, about 48 s left)."""
    tuning = FastPathTuning()
    assert tuning.floor_wanted(345_510, None) and tuning.floor_wanted(tuning.floor_min_cols, 10_000.0)
    assert tuning.floor_wanted(144_517, 20.0) and not tuning.floor_wanted(144_517, 48.0)
    assert not tuning.floor_wanted(144_517, None)
    assert not tuning.floor_wanted(93_582, 22.0)  # 50,000 bids at 30 s: its relaxation took 8.2 s
    assert not tuning.floor_wanted(438, 0.05) and FastPathTuning(floor_min_cols=0).floor_wanted(438, 0.05)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_floors_rounding_is_a_feasible_start_never_below_the_optimum(name: str) -> None:
    """The start the floor gives the biggest components: feasible in the whole model (or none at all), so
    never cheaper than the optimum."""
    mm = prepared_matrix(load_auction_file(CASES_DIR / f"{name}.json"))
    fix_always_full(mm)
    floor = solve_floor(mm, SETTINGS)
    assert floor is not None
    start = floor_start(mm, floor)
    if start is not None:
        assert violation(ArrayProblem.whole(mm), start) <= 1e-6
        assert float(mm.col_cost @ start) >= EXPECTED[name]["objective_yen"] * (1 - 1e-9) - 1.0


def test_the_floors_rounding_beats_the_greedy_start_on_a_national_case() -> None:
    """What the floor's start is for: with flows in it, it is far cheaper than the merit-order greedy's."""
    mm = prepared_matrix(load_auction_file(CASES_DIR / "10-national-dense.json"))
    fix_always_full(mm)
    start = floor_start(mm, solve_floor(mm, SETTINGS))
    assert start is not None
    assert float(mm.col_cost @ start) < float(mm.col_cost @ greedy_start(mm))


def test_the_floors_start_keeps_to_the_clearings_deadline() -> None:
    """The time limit covers the whole clearing: with less than a second left, no start is tried."""
    import time

    mm = prepared_matrix(load_auction_file(CASES_DIR / "10-national-dense.json"))
    floor = solve_floor(mm, SETTINGS)
    assert floor_start(mm, floor, deadline=time.time() + 0.5) is None
    assert floor_start(mm, floor, deadline=time.time() + 60) is not None


def _tightened(mm, deadline_s: float = 60.0):
    import time

    from dkw.solvers.fastpath.floor import FloorRelaxation

    relaxation = FloorRelaxation(mm, SETTINGS)
    plain = relaxation.solve()
    assert plain is not None
    return plain, relaxation.with_start_ups(time.time() + deadline_s)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_floor_with_start_ups_stays_below_the_lp_relaxation_and_the_optimum(name: str) -> None:
    """Tightened with the start-up costs, the floor is still a relaxation of the LP relaxation: never below the
    plain floor, never above the LP relaxation or the optimum, and shared per component exactly."""
    mm = prepared_matrix(load_auction_file(CASES_DIR / f"{name}.json"))
    plain, tightened = _tightened(mm)
    if not mm.ix.startup_resources:
        assert tightened is None
        return
    assert tightened is not None
    floor, lp = float(tightened.costs.sum()), lp_relaxation(mm)
    assert float(plain.costs.sum()) - 1e-6 * max(1.0, abs(lp)) <= floor <= lp + 1e-6 * max(1.0, abs(lp))
    assert floor <= EXPECTED[name]["objective_yen"] * (1 + 1e-9) + 1.0
    assert sum(component_floors(components_of(mm), tightened.costs)) == pytest.approx(floor, rel=1e-9, abs=1e-6)


def test_the_start_ups_lift_the_floor_on_a_national_case() -> None:
    """What the tightening is for: the plain floor charges no start-up at all; on the national case with
    start-ups (3.9M yen of them in its optimum) they close more than half of its distance to the LP
    relaxation (90.70M -> 94.41M yen against 96.13M; the floor is the bound a clearing ends with where the LP
    relaxation does not end in time)."""
    mm = prepared_matrix(load_auction_file(CASES_DIR / "09-national-30min.json"))
    assert mm.ix.startup_resources
    plain, tightened = _tightened(mm)
    assert tightened is not None
    before, lp = float(plain.costs.sum()), lp_relaxation(mm)
    assert float(tightened.costs.sum()) >= before + 0.5 * (lp - before)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(auctions(max_bids=8))
def test_the_floor_with_start_ups_never_exceeds_the_lp_relaxation_on_random_auctions(doc: dict) -> None:
    mm = prepared_matrix(load_auction(doc))
    _, tightened = _tightened(mm)
    if tightened is not None:
        lp = lp_relaxation(mm)
        assert float(tightened.costs.sum()) <= lp + 1e-6 * max(1.0, abs(lp))


def test_the_floor_is_tightened_only_where_it_is_the_final_bound_and_the_re_solve_fits() -> None:
    """`tightened_floor`: not where the LP relaxation is expected in the time left (its bound comes anyway; the
    expectation from the floor's own time), not when the share of the time left is below the re-solve's
    expected time; otherwise the start-ups floor."""
    import time

    from dkw.solvers.fastpath.auction import tightened_floor
    from dkw.solvers.fastpath.floor import FloorRelaxation

    mm = prepared_matrix(load_auction_file(CASES_DIR / "09-national-30min.json"))
    relaxation = FloorRelaxation(mm, SETTINGS)
    plain = relaxation.solve()
    assert plain is not None
    tuning = FastPathTuning()
    assert tightened_floor(relaxation, 1_000, time.time() + 30, tuning) is None  # the relaxation ends in time
    relaxation.seconds = 100.0  # as if the first solve had taken 100 s: no re-solve fits in 30 s
    assert tightened_floor(relaxation, 345_510, time.time() + 30, tuning) is None
    relaxation.seconds = 0.01  # a floor this fast says the relaxation (about 20 times as long) ends in time
    assert tightened_floor(relaxation, 345_510, time.time() + 30, tuning) is None
    slow_relaxation = FastPathTuning(relaxation_per_floor_s=1e6)
    tightened = tightened_floor(relaxation, 345_510, time.time() + 30, slow_relaxation)
    assert tightened is not None and float(tightened.costs.sum()) > float(plain.costs.sum())


@pytest.mark.slow
def test_a_clearing_whose_floor_is_final_tightens_it_and_stays_verified(caplog: pytest.LogCaptureFixture) -> None:
    """In a clearing, as at 200,000 bids and 60 s: the floor is final (here forced: the relaxation 'expected'
    to take hours), so it is tightened with the start-ups before the components' solve; the clearing is
    still verified, its bound below the optimum."""
    import logging

    name = "09-national-30min"
    tuning = FastPathTuning(floor_min_cols=0, floor_lp_s_at_100k_cols=1e9, relaxation_per_floor_s=1e9)
    with caplog.at_level(logging.INFO, logger="dkw.solvers.fastpath"):
        result = clear_and_verify(case_auction(name), SolveOptions(time_limit_s=60, tuning=tuning))
    assert any("floor with start-ups" in r.getMessage() for r in caplog.records)
    optimum = EXPECTED[name]["objective_yen"]
    assert result.solver.objective_bound <= optimum * (1 + 1e-9)
    assert result.objective_yen >= optimum * (1 - 1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("calibrated_says_hopeless", [False, True])
def test_the_clearing_decides_on_the_relaxation_from_the_floors_time(calibrated_says_hopeless: bool) -> None:
    """The largest component decides from the floor's measured time where a floor was solved, not from the
    estimate by columns: with that one saying hours, the relaxation is still tried when the floor's time says
    it ends; with the floor's time saying hours, it is skipped. Either way the result is feasible."""
    from dkw.clearing.formulation import formulate
    from dkw.clearing.index import build_index
    from dkw.solvers.fastpath.auction import solve_fast

    per_floor = 1e9 if calibrated_says_hopeless else FastPathTuning().relaxation_per_floor_s
    tuning = FastPathTuning(floor_min_cols=0, floor_lp_s_at_100k_cols=1e9, relaxation_per_floor_s=per_floor)
    form = formulate(build_index(case_auction("09-national-30min")))
    outcome = solve_fast(form, SolveOptions(time_limit_s=60, tuning=tuning))
    largest = max(outcome.components, key=lambda r: r.columns)
    names = [name for name, _ in largest.phases]
    assert ("LP relaxation skipped" in names) == calibrated_says_hopeless
    assert ("LP relaxation and roundings" in names) != calibrated_says_hopeless
    assert outcome.x is not None and outcome.objective is not None


def test_a_relaxation_that_cannot_end_is_not_tried() -> None:
    """`FastPathTuning.relaxation_hopeless`: the 80,000-bid auction's main component (144,517 columns,
    expected 33 s) with 12 s left is not worth the try; with 45 s, or no limit, it is."""
    tuning = FastPathTuning()
    assert tuning.relaxation_hopeless(144_517, 12.0)
    assert not tuning.relaxation_hopeless(144_517, 45.0) and not tuning.relaxation_hopeless(144_517, None)
    assert not tuning.relaxation_hopeless(15_376, 5.0)  # a 5,000-bid component: its relaxation takes 0.5 s


def test_the_floors_own_time_calibrates_the_relaxations_estimate() -> None:
    """With the floor's LP time measured on this machine (`floor_s`), the relaxation is expected to take
    relaxation_per_floor_s times it, without the margin of the estimate by columns: at 200,000 bids (a 3.3 s
    floor) a 120 s clearing, about 80 s left at the component, now tries the relaxation (about 50 s measured;
    191 s by columns); a 60 s one, 14 s left, still does not. `floor_final` takes the floor's rounding (as
    long as the floor) out of the time left, so it agrees with the component's later decision."""
    tuning = FastPathTuning()
    assert tuning.expected_relaxation_s(345_510) > 150 and tuning.expected_relaxation_s(345_510, 3.3) == pytest.approx(66)
    assert tuning.relaxation_hopeless(345_510, 80.0) and not tuning.relaxation_hopeless(345_510, 80.0, 3.3)
    assert tuning.relaxation_hopeless(345_510, 14.0, 3.3)
    assert tuning.floor_final(345_510, 86.0) and not tuning.floor_final(345_510, 86.0, 3.3)
    assert tuning.floor_final(345_510, 68.0, 3.3)  # 66 s expected, 64.7 s left after the rounding
    assert not tuning.floor_final(345_510, None, 3.3) and not tuning.relaxation_hopeless(345_510, None, 3.3)
    # 80,000 bids at 30 s (a 0.9 s floor, 17 s left): still final, and the component still skips it with 12 s
    assert tuning.floor_final(144_517, 17.0, 0.9) and tuning.relaxation_hopeless(144_517, 12.0, 0.9)


def test_without_its_relaxation_a_component_polishes_its_start_and_stays_feasible() -> None:
    """Where the relaxation is skipped (here forced), the component's start (the floor's rounding) is polished
    block by block instead, and the point it ends with is feasible and no dearer than that start; no
    branch-and-bound follows (its root would solve the skipped relaxation), and the point is priced."""
    import time

    from dkw.clearing.formulation import formulate
    from dkw.clearing.index import build_index
    from dkw.solvers.fastpath.auction import start_from_floor
    from dkw.solvers.fastpath.component import solve_component
    from dkw.solvers.fastpath.prepare import prepared_model

    # as the fast path prepares it: fixings, and the column tags that say which columns tie blocks together
    mm = prepared_model(formulate(build_index(case_auction("09-national-30min"))), SolveOptions())
    subs = components_of(mm)
    start_from_floor(subs, floor_start(mm, solve_floor(mm, SETTINGS)))
    main = subs[0]
    assert main.start is not None and main.block_tying is not None and main.block_tying.any()
    start_cost = float(main.col_cost @ main.start)
    tuning = FastPathTuning(floor_lp_s_at_100k_cols=1e9, polish_s_per_integer=0.0)
    solved = solve_component(main, SolveOptions(time_limit_s=5, tuning=tuning), deadline=time.time() + 5)
    names = [name for name, _ in solved.report.phases]
    assert names == ["LP relaxation skipped", "start polished", "branch-and-bound"]
    assert solved.nodes == 0 and solved.bound is None and solved.priced
    assert solved.message.startswith("branch-and-bound not started")
    assert solved.x is not None and violation(main, solved.x) <= 1e-6
    assert float(main.col_cost @ solved.x) <= start_cost + 1e-6 * abs(start_cost)


def test_a_start_is_kept_only_where_it_is_feasible() -> None:
    """`start_kept` takes a feasible MIP start as the solution (no bound, priced); without a start, or with one
    that breaks a row, it gives None and the caller runs branch-and-bound."""
    import dataclasses

    from dkw.clearing.formulation import formulate
    from dkw.clearing.index import build_index
    from dkw.solvers.fastpath.prepare import prepared_model
    from dkw.solvers.highs import start_kept

    mm = prepared_model(formulate(build_index(case_auction("09-national-30min"))), SolveOptions())
    main = components_of(mm)[0]
    start = floor_start(mm, solve_floor(mm, SETTINGS))[main.cols]
    feasible = dataclasses.replace(main, start=start)
    kept = start_kept(feasible, "a test")
    assert kept is not None and kept.bound is None and kept.nodes == 0 and kept.priced
    assert kept.objective <= float(main.col_cost @ start) * (1 + 1e-9) and violation(main, kept.x) <= 1e-6
    assert start_kept(dataclasses.replace(main, start=None), "a test") is None
    assert start_kept(dataclasses.replace(main, start=np.zeros(main.num_cols)), "a test") is None


@pytest.mark.parametrize("seconds", [0.02, 0.3, 30.0])
def test_a_polish_stopped_short_keeps_the_pieces_it_got_through(seconds: float) -> None:
    """From a feasible start, each piece of the polish keeps the cheaper of its own solution and the start's
    values: whatever the deadline leaves (here from almost nothing to all it needs), the point is feasible and
    no dearer than the start, never None; with all the time it needs, cheaper."""
    import time

    from dkw.clearing.formulation import formulate
    from dkw.clearing.index import build_index
    from dkw.solvers.fastpath.polish import polish_by_splitting
    from dkw.solvers.fastpath.prepare import prepared_model

    mm = prepared_model(formulate(build_index(case_auction("09-national-30min"))), SolveOptions())
    main = components_of(mm)[0]
    start = floor_start(mm, solve_floor(mm, SETTINGS))[main.cols]
    assert violation(main, start) <= 1e-6 and main.block_tying is not None
    polished = polish_by_splitting(main, start, main.block_tying, SETTINGS, time.time() + seconds, FastPathTuning(),
                                   workers=2)
    assert polished is not None and violation(main, polished) <= 1e-6
    start_cost, cost = float(main.col_cost @ start), float(main.col_cost @ polished)
    assert cost <= start_cost + 1e-9 * start_cost
    if seconds >= 30:
        assert cost < start_cost - 1e-4 * start_cost
