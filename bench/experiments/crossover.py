"""Crossover of two incumbents of the largest component: the sub-MILP with every integer column fixed where
the two points agree and free where they differ, from the cheaper of the two.

    python -m dkw.bench.experiments.crossover AUCTION.json A.npy B.npy SECONDS

A.npy, B.npy: incumbents of the largest component from `dkw.bench.experiments.search_log ... --save`, e.g.
two search seeds. Prints both points' costs, how many integer columns differ, and the crossover's point
(solved to optimality or not, its cost, seconds). The neighbourhood search's own sub-MILP settings (one
thread, HiGHS's sub-MIP heuristics off, the continuous columns near a freed one free, idle start-ups
switched off). The figures behind the negative result in docs/performance.md (eighteenth round).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from dkw.clearing.document import load_auction_file
from dkw.clearing.formulation import formulate
from dkw.clearing.index import build_index
from dkw.solvers.api import SolveOptions
from dkw.solvers.arrays import violation
from dkw.solvers.fastpath.prepare import prepared_model
from dkw.solvers.fastpath.search import NeighbourhoodSearch, SearchKnobs
from dkw.solvers.fastpath.split import components_of


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    options = SolveOptions(time_limit_s=300, threads=1)
    sub = components_of(prepared_model(formulate(build_index(load_auction_file(argv[0]))), options))[0]
    a, b = np.load(argv[1]), np.load(argv[2])
    seconds = float(argv[3])
    cost_a, cost_b = float(sub.col_cost @ a), float(sub.col_cost @ b)
    better, other = (a, b) if cost_a <= cost_b else (b, a)
    search = NeighbourhoodSearch(sub, better, None, sub.tags, options.highs_settings(),
                                 knobs=SearchKnobs(2, seconds, True, False))
    ints = search.ints
    free = np.round(better[ints]) != np.round(other[ints])
    began = time.time()
    solved, x, objective = search.solve_neighbourhood(free, seconds)
    took = time.time() - began
    print(json.dumps({"a": round(cost_a, 1), "b": round(cost_b, 1), "integers": len(ints),
                      "differ": int(free.sum()), "solved": solved, "crossover": round(objective, 1),
                      "gain_over_cheaper": round(min(cost_a, cost_b) - objective, 1), "seconds": round(took, 1),
                      "feasible": x is not None and violation(sub, x) <= 1e-6}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
