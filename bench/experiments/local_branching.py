"""Local branching from a saved incumbent: the whole largest component with one row keeping the binaries
within K flips of the incumbent (Fischetti and Lodi's local branching), against the search's fixings.

    python -m dkw.bench.experiments.local_branching AUCTION.json POINT.npy K1,K2,... SECONDS [--heuristics]

POINT.npy: an incumbent of the largest component (`dkw.bench.experiments.search_log ... --save`). For each
K, HiGHS (one thread, gap 0, from the incumbent as its MIP start) solves the component with the row
Σ_{x̄=0} x − Σ_{x̄=1} x ≤ K − |{x̄=1}| within SECONDS; printed: the point's cost after idle start-ups are
switched off, how many binaries flipped, nodes. Without `--heuristics` HiGHS's sub-MIP heuristics are off
as in the search's own sub-MILPs. The figures behind the negative result in docs/performance.md
(seventeenth round).
"""
import sys
import time

import highspy
import numpy as np

from dkw.clearing.document import load_auction_file
from dkw.clearing.formulation import formulate
from dkw.clearing.index import build_index
from dkw.solvers.api import SolveOptions
from dkw.solvers.arrays import switch_off_idle, violation
from dkw.solvers.fastpath.prepare import prepared_model
from dkw.solvers.fastpath.search import PASSED_OPTIONS
from dkw.solvers.fastpath.split import components_of
from dkw.solvers.highs import has_point, highs_for, solved_optimally

SEARCH_HEURISTICS_OFF = ("mip_heuristic_run_rins", "mip_heuristic_run_rens", "mip_heuristic_run_root_reduced_cost",
                         "mip_heuristic_run_feasibility_jump", "mip_allow_restart")


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    ks, seconds = [int(k) for k in argv[2].split(",")], float(argv[3])
    heuristics = "--heuristics" in argv
    options = SolveOptions(time_limit_s=300, threads=1)
    sub = components_of(prepared_model(formulate(build_index(load_auction_file(argv[0]))), options))[0]
    incumbent = np.load(argv[1])
    cost = float(sub.col_cost @ incumbent)
    ints = np.flatnonzero(sub.integrality == 1)
    binary = ints[(sub.col_lower[ints] == 0) & (sub.col_upper[ints] == 1)]
    ones = binary[np.round(incumbent[binary]) == 1]
    zeros = binary[np.round(incumbent[binary]) == 0]
    print(f"incumbent {cost:,.0f} yen; {len(binary)} binaries, {len(ones)} at 1", flush=True)
    off = {} if heuristics else {**{name: False for name in SEARCH_HEURISTICS_OFF}, "mip_heuristic_effort": 0.0}
    for k in ks:
        highs = highs_for(sub, options.highs_settings(), PASSED_OPTIONS, output_flag=False, mip_rel_gap=0.0, **off)
        index = np.concatenate([zeros, ones]).astype(np.int32)
        value = np.concatenate([np.ones(len(zeros)), -np.ones(len(ones))])
        highs.addRow(-highspy.kHighsInf, float(k - len(ones)), len(index), index, value)
        highs.setOptionValue("time_limit", seconds)
        start = highspy.HighsSolution()
        start.col_value = list(incumbent)
        start.value_valid = True
        highs.setSolution(start)
        began = time.time()
        highs.run()
        took = time.time() - began
        if not has_point(highs):
            print(f"K={k}: no point in {took:.1f} s", flush=True)
            continue
        x, _ = switch_off_idle(sub, np.array(highs.getSolution().col_value))
        found = float(sub.col_cost @ x)
        flips = int((np.round(x[binary]) != np.round(incumbent[binary])).sum())
        print(f"K={k}: {took:.1f} s, proved {solved_optimally(highs)}, {found:,.0f} yen ({(cost - found) / 1e6:.3f}M "
              f"cheaper), {flips} flips, {int(highs.getInfo().mip_node_count)} nodes, violation "
              f"{violation(sub, x):.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
