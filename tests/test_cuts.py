"""Gomory mixed-integer cuts from the root tableau (solvers/cuts.py): every cut holds at the proven optimum
of the shared cases (a cut that removed it would be wrong), and the rounds raise the LP bound without
passing the optimum."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import EXPECTED, prepared_matrix

from dkw.solvers.api import SolveOptions
from dkw.solvers.arrays import ArrayProblem
from dkw.solvers.fastpath.cuts import Cuts, gomory_rounds
from dkw.solvers.highs import solve_mip


def assert_cuts_hold_at(cuts: Cuts, x: np.ndarray) -> None:
    """Every cut `c·x ≥ rhs` holds at `x` (a feasible point: a cut that removed it would be wrong)."""
    for c in range(len(cuts)):
        a, b = cuts.start[c], cuts.start[c + 1]
        lhs = float(np.dot(cuts.value[a:b], x[cuts.index[a:b]]))
        assert lhs >= cuts.rhs[c] - 1e-7 * max(1.0, abs(cuts.rhs[c])), f"cut {c} removes the point"


@pytest.mark.parametrize("name", ["02-indivisible", "04-startup-linked", "08-national-3h"])
def test_cuts_keep_the_optimum_and_raise_the_bound(name: str) -> None:
    mm = prepared_matrix(name)
    problem = ArrayProblem.whole(mm)
    optimum = solve_mip(problem, SolveOptions(threads=1), refine=False)
    assert optimum.status == "OPTIMAL"
    cuts = gomory_rounds(problem, rounds=3)  # valid for every feasible point, the optimum included
    assert len(cuts) > 0
    assert_cuts_hold_at(cuts, optimum.x)
    lp, *rounds = cuts.bounds
    assert rounds and rounds[-1] > lp
    assert all(bound <= optimum.objective * (1 + 1e-6) for bound in cuts.bounds)
    # the reported optimum (without the tie-break perturbation) is the shared case's
    assert optimum.objective == pytest.approx(EXPECTED[name]["objective_yen"], rel=1e-6)


@pytest.mark.parametrize("name", ["08-national-3h", "10-national-dense"])
def test_only_the_cuts_tight_at_the_last_lp_are_kept_and_they_hold_its_bound(name: str) -> None:
    """HiGHS gets only the cuts without slack at the last round's LP optimum: the LP relaxation with just
    those has the same optimum as with all of them (the last round's bound), and is no bigger."""
    import highspy

    from dkw.solvers.highs import load_problem, new_highs

    mm = prepared_matrix(name)
    problem = dataclasses.replace(ArrayProblem.whole(mm), integrality=np.zeros_like(mm.integrality))
    with_ints = dataclasses.replace(problem, integrality=mm.integrality)
    every = gomory_rounds(with_ints, rounds=3, active_only=False)
    tight = gomory_rounds(with_ints, rounds=3)
    assert 0 < len(tight) <= len(every)
    assert tight.bounds == pytest.approx(every.bounds, rel=1e-9)
    highs = new_highs()
    highs.setOptionValue("output_flag", False)
    load_problem(highs, problem)
    tight.add_to(highs)
    highs.run()
    assert highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
    assert highs.getInfo().objective_function_value == pytest.approx(tight.bounds[-1], rel=1e-7)


@pytest.mark.slow
def test_the_relaxations_basis_spares_the_first_lp_and_gives_the_same_cuts_bound() -> None:
    """Started from the relaxation's basis (as the fast path does), the rounds' first LP needs no
    re-solve from scratch, reaches the same bound, and the cuts still hold at the proven optimum."""
    from dkw.solvers.highs import LpBasis, load_problem, new_highs

    mm = prepared_matrix("10-national-dense")
    problem = ArrayProblem.whole(mm)
    highs = new_highs()
    highs.setOptionValue("output_flag", False)
    load_problem(highs, dataclasses.replace(problem, integrality=np.zeros_like(mm.integrality)))
    highs.run()
    basis = LpBasis.of(highs)
    assert basis is not None and len(basis.col_status) == len(problem.cols)
    cold = gomory_rounds(problem, rounds=3)
    warm = gomory_rounds(problem, rounds=3, basis=basis)
    assert cold.iterations[0] > 100
    assert warm.iterations[0] <= cold.iterations[0] // 20
    assert warm.bounds[0] == pytest.approx(cold.bounds[0], rel=1e-9)
    assert warm.bounds[-1] > warm.bounds[0]
    optimum = solve_mip(problem, SolveOptions(threads=1), refine=False)
    assert_cuts_hold_at(warm, optimum.x)
    assert warm.bounds[-1] <= optimum.objective * (1 + 1e-6)
