"""Idle binaries switched off (`switch_off_idle`): a start-up (起動費) paid for a resource none of whose bids is
accepted costs the solver's point what the result never charges; switching it off keeps the point feasible."""

from __future__ import annotations

import numpy as np
from conftest import prepared_matrix

from dkw.solvers.api import SolveOptions, SolveStatus
from dkw.solvers.arrays import ArrayProblem, switch_off_idle, violation
from dkw.solvers.highs import IncumbentTrim, solve_mip


def tiny(row_lower: list[float], row_upper: list[float], rows: list[list[tuple[int, float]]],
         cost: list[float], integrality: list[int]) -> ArrayProblem:
    """A problem from its rows as (column, value) lists; columns in [0, 10]."""
    starts = np.cumsum([0] + [len(r) for r in rows])
    n = len(cost)
    return ArrayProblem(np.arange(n), np.arange(len(rows)), np.array(cost, dtype=float), np.zeros(n),
                        np.where(np.array(integrality) == 1, 1.0, 10.0), np.array(integrality),
                        np.array(row_lower, dtype=float), np.array(row_upper, dtype=float), starts,
                        np.array([j for r in rows for j, _ in r], dtype=np.int32),
                        np.array([v for r in rows for _, v in r], dtype=float))


def test_a_start_up_with_nothing_accepted_is_switched_off_and_one_in_use_is_kept() -> None:
    # columns: q0, q1 (quantities), v0, v1 (start-ups); q_k - 10 v_k <= 0
    problem = tiny([-np.inf, -np.inf], [0.0, 0.0], [[(0, 1.0), (2, -10.0)], [(1, 1.0), (3, -10.0)]],
                   [1.0, 1.0, 100.0, 50.0], [0, 0, 1, 1])
    x = np.array([0.0, 4.0, 1.0, 1.0])
    trimmed, switched = switch_off_idle(problem, x)
    assert switched == 1 and trimmed.tolist() == [0.0, 4.0, 0.0, 1.0]
    assert x.tolist() == [0.0, 4.0, 1.0, 1.0]  # the point given is left as it was
    assert switch_off_idle(problem, trimmed)[1] == 0


def test_binaries_a_row_needs_stay_on_and_the_costlier_goes_first() -> None:
    # v0 + v1 >= 1: only one of the two can go, the dearer; v2 >= 1 on its own row: none; v3 costs nothing
    problem = tiny([1.0, 1.0], [np.inf, np.inf], [[(0, 1.0), (1, 1.0)], [(2, 1.0)]],
                   [3.0, 5.0, 7.0, 0.0], [1, 1, 1, 1])
    trimmed, switched = switch_off_idle(problem, np.ones(4))
    assert switched == 1 and trimmed.tolist() == [1.0, 0.0, 1.0, 1.0]


def test_a_row_already_off_by_a_tolerance_does_not_get_worse() -> None:
    # q - 10 v <= 0 with q = 1e-7 (a solver's crumb): switching v off would break the row by 1e-7
    problem = tiny([-np.inf], [0.0], [[(0, 1.0), (1, -10.0)]], [1.0, 100.0], [0, 1])
    assert switch_off_idle(problem, np.array([1e-7, 1.0]))[1] == 0


def test_the_optimum_with_every_start_up_on_trims_back_to_the_optimum() -> None:
    """A real auction with start-up costs: its proven optimum with every start-up binary set to 1 is still
    feasible; the trim gives back a point as cheap as the optimum, feasible, differing only in start-ups."""
    mm = prepared_matrix("09-national-30min")
    problem = ArrayProblem.whole(mm)
    v_cols = np.array(sorted(mm.columns.v_col.values()))
    assert len(v_cols) and (problem.col_cost[v_cols] > 0).all()
    solved = solve_mip(problem, SolveOptions(threads=1, mip_rel_gap=0.0))
    assert solved.status == SolveStatus.OPTIMAL
    optimum = solved.x
    idle_cost = float(problem.col_cost[v_cols] @ (1 - np.round(optimum[v_cols])))
    assert idle_cost > 0  # some resource starts nothing at the optimum: the case tests something
    all_on = optimum.copy()
    all_on[v_cols] = 1.0
    assert violation(problem, all_on) <= 1e-6
    trimmed, switched = switch_off_idle(problem, all_on)
    assert violation(problem, trimmed) <= 1e-6
    assert switched >= 1
    assert float(problem.col_cost @ trimmed) <= float(problem.col_cost @ optimum) + 1e-6
    changed = np.flatnonzero(trimmed != all_on)
    assert set(changed.tolist()) <= set(v_cols.tolist())


def test_branch_and_bounds_trimmed_incumbent_is_handed_back_once() -> None:
    """`IncumbentTrim`: an incumbent with an idle start-up comes back trimmed, and is offered to HiGHS once;
    one with none is not offered."""
    problem = tiny([-np.inf], [0.0], [[(0, 1.0), (1, -10.0)]], [1.0, 100.0], [0, 1])
    trim = IncumbentTrim(problem)
    x, objective = trim.improving(np.array([0.0, 1.0]))
    assert x.tolist() == [0.0, 0.0] and objective == 0.0
    offered = trim.take()
    assert offered is not None and offered[0].tolist() == [0.0, 0.0] and offered[1] == 0.0
    assert trim.take() is None
    trim.improving(np.array([3.0, 1.0]))
    assert trim.take() is None
    assert "1 idle binary switched off in 1 incumbent" in trim.note()
