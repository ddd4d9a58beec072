"""The start's rounding from the LP re-solved with the start-ups charged by their last LP value
(`dkw.solvers.fastpath.starts.rescaled_start_ups`, slope scaling), and the time limit of a re-solved LP
(`dkw.solvers.highs.limit_next_lp`), on real HiGHS solves of a generated national auction."""

from __future__ import annotations

import dataclasses
import time

import highspy
import numpy as np
import pytest
from conftest import generated_auction, prepared_matrix

from dkw.solvers.api import SolveOptions
from dkw.solvers.arrays import ArrayProblem, violation
from dkw.solvers.fastpath.polish import polish_by_splitting
from dkw.solvers.fastpath.prepare import block_tying_columns
from dkw.solvers.fastpath.starts import lp_rounding_starts, rescaled_start_ups
from dkw.solvers.highs import highs_for, limit_next_lp, solved_optimally
from dkw.solvers.tuning import FastPathTuning


@pytest.fixture(scope="module")
def national() -> tuple[ArrayProblem, object]:
    """A casegen auction with start-up costs on most resources, as one problem with its block-tying columns."""
    mm = prepared_matrix(generated_auction(1, 1500))
    whole = ArrayProblem.whole(mm)
    whole.block_tying = block_tying_columns(mm)
    return whole, mm


def relaxation(problem: ArrayProblem) -> highspy.Highs:
    highs = highs_for(dataclasses.replace(problem, integrality=np.zeros_like(problem.integrality), start=None),
                      {}, output_flag=False)
    highs.run()
    assert solved_optimally(highs)
    return highs


def test_rescaling_starts_fewer_resources_and_its_start_stays_feasible(national) -> None:
    """Charged by what the LP last used, the LP uses fewer start-ups than the relaxation; rounding those up
    and polishing gives a feasible start, and the relaxation's own values and bound are left untouched."""
    whole, mm = national
    highs = relaxation(whole)
    x = np.array(highs.getSolution().col_value)
    charged = (whole.integrality == 1) & whole.block_tying & (whole.col_cost > 0)
    assert charged.sum() > 20
    rescaled = rescaled_start_ups(highs, whole.col_cost, (whole.integrality == 1) & whole.block_tying, x, 4,
                                  time.time() + 60)
    used_before, used_after = (x[charged] > 1e-6).sum(), (rescaled[charged] > 1e-6).sum()
    assert used_after < used_before
    relaxed = dataclasses.replace(whole, integrality=np.zeros_like(whole.integrality))
    assert violation(relaxed, rescaled) <= 1e-6  # still a point of the relaxation
    # through the fast path's own entry point: the block-tying rounding is the rescaled one, the LP is not
    tuning = FastPathTuning(lns_min_integers=1)
    opts = SolveOptions().highs_settings()
    candidates, (lp_x, bound, _basis) = lp_rounding_starts(whole, opts, tuning)
    plain, (plain_x, plain_bound, _) = lp_rounding_starts(whole, opts, FastPathTuning(start_up_rescaling_rounds=0))
    assert bound == pytest.approx(plain_bound, rel=1e-9) and np.allclose(lp_x, plain_x)
    started = candidates[-1][charged] > 0.5
    assert started.sum() < (plain[-1][charged] > 0.5).sum()
    polished = polish_by_splitting(whole, candidates[-1], whole.block_tying, opts, time.time() + 60, tuning)
    assert polished is not None and violation(mm, polished) <= 1e-6


def test_rescaling_is_only_where_the_search_runs_by_size(national) -> None:
    """Below lns_min_integers (mid-size) the rounding is the plain relaxation's, as measured there."""
    whole, _mm = national
    opts = SolveOptions().highs_settings()
    assert whole.num_int < FastPathTuning().lns_min_integers
    default, _ = lp_rounding_starts(whole, opts, FastPathTuning())
    plain, _ = lp_rounding_starts(whole, opts, FastPathTuning(start_up_rescaling_rounds=0))
    assert np.array_equal(default[-1], plain[-1])


def test_a_re_solved_lp_gets_its_seconds_on_top_of_its_earlier_runs(national) -> None:
    """HiGHS holds an LP to `time_limit` against the instance's run time over all its runs: a re-solve given
    fewer seconds than the first solve took stops at once; with `limit_next_lp` it solves."""
    whole, _mm = national
    highs = relaxation(whole)
    first = highs.getRunTime()
    cols = np.flatnonzero(whole.integrality == 1).astype(np.int32)

    def resolve(scale: float) -> highspy.HighsModelStatus:
        highs.changeColsCost(len(cols), cols, whole.col_cost[cols] * scale)
        highs.run()
        return highs.getModelStatus()

    highs.setOptionValue("time_limit", first / 2)  # what the seconds left used to be set to
    assert resolve(3.0) == highspy.HighsModelStatus.kTimeLimit
    limit_next_lp(highs, first / 2)
    limit = highs.getOptionValue("time_limit")
    limit = limit[1] if isinstance(limit, tuple) else limit  # (status, value) in highspy 1.16
    assert limit == pytest.approx(highs.getRunTime() + first / 2)
    assert resolve(3.0) == highspy.HighsModelStatus.kOptimal
