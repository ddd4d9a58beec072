"""Gomory mixed-integer cuts from the root tableau (solvers/cuts.py): every cut holds at the proven optimum
of the shared cases (a cut that removed it would be wrong), and the rounds raise the LP bound without
passing the optimum."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CASES_DIR, EXPECTED, load_auction_file

from clearing.index import build_index
from clearing.matrix import build_matrix
from solvers.api import SolveOptions
from solvers.cuts import gomory_rounds
from solvers.highs import ArrayProblem, run_problem


@pytest.mark.parametrize("name", ["02-indivisible", "04-startup-linked", "08-national-3h"])
def test_cuts_keep_the_optimum_and_raise_the_bound(name: str) -> None:
    mm = build_matrix(build_index(load_auction_file(CASES_DIR / f"{name}.json")))
    problem = ArrayProblem(np.arange(mm.num_cols), np.arange(mm.num_rows), mm.col_cost, mm.col_lower, mm.col_upper,
                           mm.integrality, mm.row_lower, mm.row_upper, mm.a_start, mm.a_index, mm.a_value)
    optimum = run_problem(problem, SolveOptions(threads=1), price=False)
    assert optimum.status == "OPTIMAL"
    cuts = gomory_rounds(problem, rounds=3)  # valid for every feasible point, the optimum included
    assert len(cuts) > 0
    for c in range(len(cuts)):
        a, b = cuts.start[c], cuts.start[c + 1]
        lhs = float(np.dot(cuts.value[a:b], optimum.x[cuts.index[a:b]]))
        assert lhs >= cuts.rhs[c] - 1e-7 * max(1.0, abs(cuts.rhs[c])), f"cut {c} removes the optimum"
    lp, *rounds = cuts.bounds
    assert rounds and rounds[-1] > lp
    assert all(bound <= optimum.objective * (1 + 1e-6) for bound in cuts.bounds)
    # the reported optimum (without the tie-break perturbation) is the shared case's
    assert optimum.objective == pytest.approx(EXPECTED[name]["objective_yen"], rel=1e-6)
