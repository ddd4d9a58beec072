"""The fast path (arrays, components, highspy) against the straight Pyomo model: the same proven optimum.

Real HiGHS solves both ways; every result also passes the independent verifier. Small auctions only
(CI budget): the shared cases that the straight model clears in seconds, and hypothesis-drawn auctions
from the bench generator scaled down.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CASES_DIR, EXPECTED, clear_and_verify, prepared_matrix
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dkw.clearing.document import load_auction, load_auction_file
from dkw.clearing.index import build_index
from dkw.clearing.matrix import build_matrix
from dkw.solvers.api import SolveOptions
from dkw.solvers.arrays import ArrayProblem, violation
from dkw.solvers.fastpath.auction import solve_components
from dkw.solvers.fastpath.component import solve_component
from dkw.solvers.fastpath.polish import polish_by_splitting
from dkw.solvers.fastpath.split import split_components, subproblems
from dkw.solvers.fastpath.starts import lp_rounding_starts
from dkw.solvers.tuning import FastPathTuning

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dkw.bench.casegen import gen  # noqa: E402

FAST = SolveOptions(method="fast")
STRAIGHT = SolveOptions(method="straight")
#: cases the straight model clears in a few seconds (09-national-30min takes ~25 s: left to test_cases)
QUICK_CASES = [name for name in sorted(EXPECTED) if not name.startswith("09")]


def assert_same_optimum(auction) -> tuple:
    straight = clear_and_verify(auction, STRAIGHT)
    quick = clear_and_verify(auction, FAST)
    assert straight.status == quick.status == "OPTIMAL"
    assert quick.objective_yen == pytest.approx(straight.objective_yen, rel=1e-6, abs=1e-6)
    assert quick.solver.mip_gap is not None and quick.solver.mip_gap <= 1e-6
    assert sum(s.kw for s in quick.shortfalls) == pytest.approx(sum(s.kw for s in straight.shortfalls), abs=1e-3)
    return straight, quick


@pytest.mark.parametrize("name", QUICK_CASES)
def test_fast_path_matches_straight_on_shared_cases(name: str) -> None:
    straight, quick = assert_same_optimum(load_auction_file(CASES_DIR / f"{name}.json"))
    assert quick.objective_yen == pytest.approx(EXPECTED[name]["objective_yen"], rel=1e-6)
    if isinstance(EXPECTED[name]["accepted_bids"], list):  # unique optimum: the same awards
        assert sorted((a.bid, a.kw) for a in quick.awards) == sorted((a.bid, a.kw) for a in straight.awards)


def test_marginal_prices_match_on_a_non_degenerate_case() -> None:
    """Balance-row duals of the integer-fixed LP: same sign convention and values both ways."""
    auction = load_auction_file(CASES_DIR / "01-merit-order.json")
    straight = clear_and_verify(auction, STRAIGHT)
    quick = clear_and_verify(auction, FAST)
    keys = [(p.area, p.product, p.block) for p in quick.prices]
    assert keys == [(p.area, p.product, p.block) for p in straight.prices]
    for a, b in zip(quick.prices, straight.prices, strict=True):
        assert a.marginal_yen_per_kw_h == pytest.approx(b.marginal_yen_per_kw_h, abs=1e-6)
    assert any(p.marginal_yen_per_kw_h > 0 for p in quick.prices)


small_auctions = st.builds(
    dict,
    seed=st.integers(0, 10_000),
    n_bids=st.integers(8, 45),
    blocks=st.sampled_from([1, 2, 6, 8]),
    areas=st.sampled_from([["tokyo", "chubu"], ["chubu", "hokuriku", "kansai"], ["hokkaido", "tohoku", "tokyo"],
                           ["kansai", "shikoku", "chugoku", "okinawa"]]),
    products=st.sampled_from([["primary"], ["primary", "secondary1"], ["secondary2", "tertiary1", "tertiary2"],
                              ["primary", "secondary1", "tertiary2"]]),
    scarcity=st.sampled_from([0.4, 0.7, 1.1]),
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(small_auctions)
def test_fast_path_matches_straight_on_random_small_auctions(params: dict) -> None:
    doc = gen(params["seed"], params["n_bids"], blocks=params["blocks"], areas=params["areas"],
              products=params["products"], scarcity=params["scarcity"])
    # a primary-only market: the generator's DC lines then carry no product at all; such a line is left out
    doc["lines"] = [line for line in doc["lines"] if line.get("products", True)]
    assert_same_optimum(load_auction(doc))


def split_auction_doc() -> dict:
    """Two independent markets in one document: tokyo/tohoku secondary and kyushu tertiary, one block bid
    chaining blocks, a list-pattern group and a start-up resource, nothing shared between the halves."""
    return {
        "format": "jp-balancing-auction/1", "auction_id": "split", "trading_date": "2026-10-01",
        "blocks": 3, "block_minutes": 30, "areas": ["tohoku", "tokyo", "kyushu"],
        "products": ["secondary1", "tertiary1"], "shortfall_price_yen_per_kw_h": 1000.0,
        "lines": [{"id": "tohoku-tokyo", "from_area": "tohoku", "to_area": "tokyo", "forward_kw": 3000,
                   "backward_kw": 1000, "products": ["secondary1"]}],
        "requirements": [{"area": "tokyo", "product": "secondary1", "block": t, "kw": 9000} for t in range(3)]
        + [{"area": "kyushu", "product": "tertiary1", "block": t, "kw": 4000 + 1000 * t} for t in range(3)],
        "resources": [{"id": "R1", "area": "tohoku", "capacity_kw": 6000, "startup_cost_yen": 4000},
                      {"id": "P1", "area": "kyushu", "capacity_kw": 5000}],
        "bids": [
            {"id": "T1", "area": "tohoku", "products": ["secondary1"], "blocks": [0, 1, 2], "kw": 5000,
             "min_kw": 5000, "price_yen_per_kw_h": 3.0, "category": "SINGLE_GENERATOR", "resource": "R1"},
            {"id": "K1", "area": "tokyo", "products": ["secondary1"], "blocks": [0], "kw": 7000, "min_kw": 7000,
             "price_yen_per_kw_h": 4.0, "category": "SINGLE_GENERATOR"},
            {"id": "K2", "area": "tokyo", "products": ["secondary1"], "blocks": [1], "kw": 9000, "min_kw": 0,
             "price_yen_per_kw_h": 6.0, "category": "SINGLE_GENERATOR"},
            {"id": "K3", "area": "tokyo", "products": ["secondary1"], "blocks": [2], "kw": 4000, "min_kw": 2000,
             "price_yen_per_kw_h": 5.0, "category": "SINGLE_GENERATOR"},
            {"id": "Q1", "area": "kyushu", "products": ["tertiary1"], "blocks": [0], "kw": 5000, "min_kw": 5000,
             "price_yen_per_kw_h": 2.0, "category": "LIST_PATTERN", "resource": "P1", "group": "G"},
            {"id": "Q2", "area": "kyushu", "products": ["tertiary1"], "blocks": [0], "kw": 3000, "min_kw": 1000,
             "price_yen_per_kw_h": 1.5, "category": "LIST_PATTERN", "resource": "P1", "group": "G"},
            {"id": "Q3", "area": "kyushu", "products": ["tertiary1"], "blocks": [0, 1, 2], "kw": 6000, "min_kw": 0,
             "price_yen_per_kw_h": 2.5, "category": "SINGLE_GENERATOR"},
        ],
    }


def test_components_follow_the_couplings() -> None:
    """The tohoku/tokyo market and the kyushu market fall apart; within each, bids stay together."""
    ix = build_index(load_auction(split_auction_doc()))
    mm = build_matrix(ix)
    col_label, row_label, count = split_components(mm.num_cols, mm.a_start, mm.a_index)
    bid_label = {b.id: col_label[i] for i, b in enumerate(ix.bids)}
    assert bid_label["T1"] == bid_label["K1"] == bid_label["K2"] == bid_label["K3"]  # line + block bid
    assert bid_label["Q1"] == bid_label["Q2"] == bid_label["Q3"]  # group + resource + requirement rows
    assert bid_label["T1"] != bid_label["Q1"]
    # no row crosses a component boundary
    for r in range(mm.num_rows):
        cols = mm.a_index[mm.a_start[r]:mm.a_start[r + 1]]
        assert set(col_label[cols].tolist()) <= {row_label[r]}
    assert count >= 2


def test_stitched_components_equal_the_whole_model() -> None:
    """Solving the components apart and stitching gives the optimum of the model solved in one piece."""
    ix = build_index(load_auction(split_auction_doc()))
    mm = build_matrix(ix)
    args = (mm.col_cost, mm.col_lower, mm.col_upper, mm.integrality, mm.row_lower, mm.row_upper,
            mm.a_start, mm.a_index, mm.a_value)
    subs = subproblems(*args)
    assert len(subs) >= 2
    split = solve_components(subs, mm.num_cols, SolveOptions())
    whole = ArrayProblem.whole(mm)
    one = solve_component(whole, SolveOptions())
    assert split.status == one.status == "OPTIMAL"
    assert split.objective == pytest.approx(one.objective, rel=1e-9)
    assert float(mm.col_cost @ split.x) == pytest.approx(one.objective, rel=1e-9)
    # the stitched solution is feasible for the whole model
    activity = np.array([mm.a_value[lo:hi] @ split.x[mm.a_index[lo:hi]]
                         for lo, hi in zip(mm.a_start[:-1], mm.a_start[1:], strict=True)])
    assert np.all(activity >= mm.row_lower - 1e-6) and np.all(activity <= mm.row_upper + 1e-6)
    assert split.priced  # every component's point made exact by its LP with the integers fixed
    # one report per component, in the solver message's terms
    assert len(split.components) == len(subs) and {r.status for r in split.components} == {"OPTIMAL"}
    assert sorted(r.columns for r in split.components) == sorted(len(s.cols) for s in subs)
    assert split.message.startswith(f"{len(subs)} component(s): OPTIMAL")


def test_big_components_solved_in_worker_processes() -> None:
    """The process-pool branch: components sent to spawned workers come back stitched the same."""
    auction = load_auction(split_auction_doc())
    expected = clear_and_verify(auction, STRAIGHT)
    result = clear_and_verify(auction, dataclasses.replace(FAST, tuning=FastPathTuning(parallel_min_cols=1)))
    assert result.objective_yen == pytest.approx(expected.objective_yen, rel=1e-9)
    assert sorted((a.bid, a.kw) for a in result.awards) == sorted((a.bid, a.kw) for a in expected.awards)


def test_bids_in_structurally_short_rows_are_fixed_and_change_no_optimum() -> None:
    """07-shortfall: the area cannot meet its requirement even with every bid; those bids are fixed in
    full before the solve, and the fast path still reaches the reference optimum."""
    from dkw.clearing.reduce import always_full_bids, structurally_short_rows
    from dkw.solvers.fastpath.prepare import fix_always_full

    auction = load_auction_file(CASES_DIR / "07-shortfall.json")
    ix = build_index(auction)
    assert structurally_short_rows(ix)
    full = always_full_bids(ix)
    assert full
    mm = build_matrix(ix)
    assert fix_always_full(mm) == len(full)
    for i in full:
        assert mm.col_lower[i] == mm.col_upper[i] == ix.bids[i].kw
    result = clear_and_verify(auction, FAST)
    awarded = {a.bid: a.kw for a in result.awards}
    assert all(awarded.get(ix.bids[i].id) == ix.bids[i].kw for i in full)
    assert result.objective_yen == pytest.approx(EXPECTED["07-shortfall"]["objective_yen"], rel=1e-6)


def test_fast_path_reports_components_to_the_progress_bar() -> None:
    from dkw.progress import COMPONENTS

    seen = []
    clear_and_verify(load_auction(split_auction_doc()), FAST, progress=seen.append)
    done = [COMPONENTS.search(p.message) for p in seen if p.phase == "solving" and p.message]
    counts = [(int(m.group(1)), int(m.group(2))) for m in done if m]
    assert counts and counts[-1][0] == counts[-1][1] >= 2
    assert seen[-1].phase == "done" and seen[-1].gap is not None and seen[-1].gap <= 1e-6


def test_an_explicit_thread_count_after_other_solves_still_solves() -> None:
    """HiGHS refuses a thread count that differs from its scheduler's; the fast path resets it."""
    auction = load_auction_file(CASES_DIR / "02-indivisible.json")
    clear_and_verify(auction, FAST)
    for threads in (1, 2, 1):
        result = clear_and_verify(auction, SolveOptions(method="fast", threads=threads))
        assert result.status == "OPTIMAL"
        assert result.objective_yen == pytest.approx(EXPECTED["02-indivisible"]["objective_yen"], rel=1e-6)


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(small_auctions)
def test_mip_starts_are_feasible(params: dict) -> None:
    """Both MIP starts (the merit-order greedy and the LP rounding) satisfy every row and bound, and a start
    never makes the proven optimum worse than the model's."""
    from dkw.solvers.fastpath.prepare import block_tying_columns, fix_always_full
    from dkw.solvers.fastpath.starts import greedy_start

    doc = gen(params["seed"], params["n_bids"], blocks=params["blocks"], areas=params["areas"],
              products=params["products"], scarcity=params["scarcity"])
    doc["lines"] = [line for line in doc["lines"] if line.get("products", True)]
    mm = prepared_matrix(load_auction(doc))
    fix_always_full(mm)
    start = greedy_start(mm)
    assert violation(mm, start) <= 1e-6
    whole = ArrayProblem.whole(mm)
    opts = SolveOptions().highs_settings()
    whole.block_tying = block_tying_columns(mm)
    tuning = FastPathTuning()
    candidates, _lp = lp_rounding_starts(whole, opts, tuning)
    if candidates:
        assert violation(mm, candidates[0]) <= 1e-6  # every binary rounded: a full start
    for candidate in candidates:
        polished = polish_by_splitting(whole, candidate, whole.block_tying, opts, time.time() + 30, tuning)
        if polished is not None:
            assert violation(mm, polished) <= 1e-6
        # the pieces in two threads: as good a start (each piece within the polishing's gap)
        in_threads = polish_by_splitting(whole, candidate, whole.block_tying, opts, time.time() + 30, tuning,
                                         workers=2)
        assert (in_threads is None) == (polished is None)
        if in_threads is not None:
            assert violation(mm, in_threads) <= 1e-6
            assert mm.col_cost @ in_threads == pytest.approx(mm.col_cost @ polished, rel=2 * tuning.polish_gap)
    whole.block_tying = None
    cold = solve_component(whole, SolveOptions(warm_start=False), refine=False)
    whole.start = start
    warm = solve_component(whole, SolveOptions(), refine=False)
    assert warm.status == cold.status == "OPTIMAL"
    assert warm.objective == pytest.approx(cold.objective, rel=1e-6)


def test_the_lp_relaxation_without_perturbations_is_a_bound_within_their_weight() -> None:
    """The start heuristics' LP relaxation leaves out the sub-yen tie-break and flow-preference costs: its
    objective (the component's LP bound) is at most the full LP's, and below it by no more than those
    costs can weigh at their columns' upper bounds."""
    import highspy

    from dkw.solvers.highs import load_problem, new_highs

    mm = prepared_matrix(load_auction(gen(3, 400, blocks=6)))
    whole = ArrayProblem.whole(mm)
    tiny = (mm.col_cost > 0) & (mm.col_cost < FastPathTuning().lp_cost_floor_yen)
    assert tiny.any()  # the document has flows: the perturbations are there to leave out
    _x, bound, _basis = lp_rounding_starts(whole, SolveOptions().highs_settings(), FastPathTuning())[1]
    highs = new_highs()
    highs.setOptionValue("output_flag", False)
    load_problem(highs, dataclasses.replace(whole, integrality=np.zeros_like(mm.integrality)))
    highs.run()
    assert highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
    full = highs.getInfo().objective_function_value
    weight = float(mm.col_cost[tiny] @ mm.col_upper[tiny])
    assert full - weight - 1e-6 <= bound <= full + 1e-6 * abs(full)
    assert bound < full  # the flows carry some of their preference cost at the LP optimum


def test_a_mip_start_highs_calls_optimal_at_zero_is_not_taken() -> None:
    """Found by the property test: given the greedy start (b0 at its 1,500 kW minimum, 750 yen), HiGHS 1.16
    answered "optimal" with objective and bound 0; the optimum is b1 in full (500 yen)."""
    doc = {"format": "jp-balancing-auction/1", "auction_id": "start", "trading_date": "2026-10-01", "blocks": 1,
           "block_minutes": 30, "areas": ["east", "west"], "products": ["secondary2"],
           "shortfall_price_yen_per_kw_h": 4.0, "lines": [],
           "requirements": [{"area": "west", "product": "secondary2", "block": 0, "kw": 1000}],
           "resources": [{"id": "R0", "area": "east", "capacity_kw": 1500, "startup_cost_yen": 0}],
           "bids": [{"id": "b0", "area": "west", "products": ["secondary2"], "blocks": [0], "kw": 3000,
                     "min_kw": 1500, "price_yen_per_kw_h": 1.0, "category": "SINGLE_GENERATOR"},
                    {"id": "b1", "area": "west", "products": ["secondary2"], "blocks": [0], "kw": 1000,
                     "min_kw": 1000, "price_yen_per_kw_h": 1.0, "category": "SINGLE_GENERATOR"}]}
    result = clear_and_verify(load_auction(doc), SolveOptions())
    assert result.status == "OPTIMAL"
    assert result.objective_yen == pytest.approx(500.0)
    assert [(a.bid, a.kw) for a in result.awards] == [("b1", 1000.0)]


@pytest.mark.parametrize("seconds", [0.01, 0.05])
def test_a_solve_stopped_in_presolve_keeps_a_feasible_point_at_its_own_cost(seconds: float) -> None:
    """A component of the 200,000-bid bench document (2,594 columns, 1,140 binaries; tests/data), given its
    greedy MIP start and a few hundredths of a second: HiGHS 1.16 stops in its presolve and hands back the
    start with an objective below the start's cost. The old guard against that mismatch (meant for a false
    "optimal") re-solved without the start, found nothing in the time left, and the whole 200,000-bid
    clearing ended TIME_LIMIT_NO_SOLUTION with every award lost. A stopped solve must come back with a
    feasible point, reported at its own cost, and priced."""
    from dkw.solvers.highs import solve_mip

    data = np.load(Path(__file__).parent / "data" / "component-stopped-in-presolve.npz")
    n, m = len(data["col_cost"]), len(data["row_lower"])
    sub = ArrayProblem(np.arange(n), np.arange(m), data["col_cost"], data["col_lower"], data["col_upper"],
                       data["integrality"], data["row_lower"], data["row_upper"], data["a_start"], data["a_index"],
                       data["a_value"])
    sub.start = data["start"]
    solved = solve_mip(sub, SolveOptions(), deadline=time.time() + seconds)
    assert solved.status in ("TIME_LIMIT_FEASIBLE", "OPTIMAL")
    assert solved.x is not None and violation(sub, solved.x) <= 1e-6
    assert solved.objective == pytest.approx(float(sub.col_cost @ solved.x), rel=1e-9)
    assert solved.objective <= float(sub.col_cost @ sub.start) + 1e-6
    assert solved.priced  # made exact by the fixed-integer LP like any other incumbent


@pytest.mark.slow
def test_cancel_keeps_the_incumbents_of_components_solved_in_other_processes() -> None:
    """A cancel while big components are solved in pool processes stops them at HiGHS's next callback and
    keeps each one's incumbent: the clearing ends CANCELLED with a complete, feasible point (it used to
    end with nothing, the processes terminated)."""
    import threading

    m = prepared_matrix("09-national-30min")
    subs = subproblems(m.col_cost, m.col_lower, m.col_upper, m.integrality, m.row_lower, m.row_upper,
                            m.a_start, m.a_index, m.a_value)
    big = max(subs, key=lambda s: len(s.cols))
    num_cols, num_rows = len(m.col_cost), len(m.row_lower)
    twin = dataclasses.replace(big, cols=big.cols + num_cols, rows=big.rows + num_rows)
    tuning = FastPathTuning(parallel_min_cols=1)  # both copies go to pool processes
    cancel = threading.Event()
    timer = threading.Timer(4.0, cancel.set)
    timer.start()
    started = time.perf_counter()
    try:
        solution = solve_components([big, twin], 2 * num_cols,
                                    SolveOptions(time_limit_s=120, mip_rel_gap=0, tuning=tuning), cancel=cancel,
                                    workers=2)
    finally:
        timer.cancel()
    assert solution.status == "CANCELLED"
    assert solution.has_solution and solution.x is not None
    assert time.perf_counter() - started < 4.0 + tuning.cancel_grace_s
    for sub in (big, twin):
        assert violation(dataclasses.replace(sub, start=None), solution.x[sub.cols]) <= 1e-6
