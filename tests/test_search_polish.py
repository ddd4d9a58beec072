"""The search's incumbents with their continuous columns re-solved (`SearchKnobs.polish_continuous`): with
`continuous_hops` a sub-MILP holds far quantities and flows fixed, so they go stale; the polish re-solves
the LP with the integers fixed and must give a feasible point as cheap as that LP's optimum, with the same
integer decisions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import prepared_matrix

from dkw.solvers.api import SolveOptions, SolveStatus
from dkw.solvers.arrays import ArrayProblem, violation
from dkw.solvers.fastpath.search import NeighbourhoodSearch, SearchKnobs
from dkw.solvers.highs import fixed_integer_values, highs_for, solve_mip, solved_optimally, with_integers_fixed


def dearest_continuous(problem: ArrayProblem, x: np.ndarray) -> np.ndarray:
    """`x`'s integers with the continuous columns at their worst: the LP with the integers fixed and the
    costs reversed (feasible, and as stale as a point can get)."""
    ints = np.flatnonzero(problem.integrality == 1)
    highs = highs_for(replace(with_integers_fixed(problem, ints, np.round(x[ints])), col_cost=-problem.col_cost),
                      {}, output_flag=False)
    highs.run()
    assert solved_optimally(highs)
    return np.array(highs.getSolution().col_value)


@pytest.fixture(scope="module")
def clearing() -> tuple[ArrayProblem, np.ndarray]:
    """A national auction with start-ups and links, and a good clearing of it (any feasible one would do)."""
    problem = ArrayProblem.whole(prepared_matrix("08-national-3h"))
    solved = solve_mip(problem, SolveOptions(threads=1, mip_rel_gap=1e-3))
    assert solved.status == SolveStatus.OPTIMAL
    return problem, solved.x


def test_a_stale_incumbent_is_polished_to_its_fixed_integer_optimum(clearing) -> None:
    problem, x = clearing
    # the clearing's integers with the continuous columns chosen under reversed costs: feasible and dearer
    stale = dearest_continuous(problem, x)
    best = fixed_integer_values(problem, x)
    assert violation(problem, stale) <= 1e-6
    stale_cost, best_cost = float(problem.col_cost @ stale), float(problem.col_cost @ best)
    assert stale_cost > best_cost + 1.0
    search = NeighbourhoodSearch(problem, stale, None, None, {},
                                 knobs=SearchKnobs(continuous_hops=2, polish_continuous=True))
    gained = search.polish_continuous()
    assert abs(search.objective - best_cost) <= 1e-6 * abs(best_cost) + 1e-6
    assert abs(gained - (stale_cost - best_cost)) <= 1e-6 * abs(best_cost) + 1e-6
    assert violation(problem, search.x) <= 1e-6
    ints = problem.integrality == 1
    assert np.array_equal(np.round(search.x[ints]), np.round(stale[ints]))
    assert search.polish_continuous() == 0.0  # nothing left to gain: the point stays
    assert search.stats.polished == gained


def test_without_hops_there_is_nothing_to_polish(clearing) -> None:
    """Every continuous column is free in each sub-MILP then, so the polish is not set up at all."""
    problem, x = clearing
    stale = dearest_continuous(problem, x)
    search = NeighbourhoodSearch(problem, stale, None, None, {},
                                 knobs=SearchKnobs(continuous_hops=0, polish_continuous=True))
    assert search.polish_continuous() == 0.0
    assert np.array_equal(search.x, stale)
