"""The start's polishing from the LP relaxation with its start-ups charged by their last LP value (slope
scaling), round by round.

    python -m dkw.bench.experiments.start_rescaling AUCTION.json ROUNDS

On the auction's largest component: the relaxation (the fast path's, tiny costs left out), then ROUNDS
re-solves, each one round of the fast path's own `rescaled_start_ups` (a charged block-tying column's
cost divided by its last LP value, at least `RESCALING_FLOOR`). After rounds 0, 1, 2, 4, 8, 16 and the
last, the block-tying columns the LP uses are rounded up, the rest polished block by block
(`polish_by_splitting`, one thread, idle start-ups switched off) and the polished start's cost printed.
The figures behind `FastPathTuning.start_up_rescaling_rounds` (docs/performance.md, fifteenth round).
"""
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np

from dkw.clearing.document import load_auction_file
from dkw.clearing.formulation import formulate
from dkw.clearing.index import build_index
from dkw.solvers.api import SolveOptions
from dkw.solvers.arrays import ArrayProblem, switch_off_idle
from dkw.solvers.fastpath.polish import polish_by_splitting
from dkw.solvers.fastpath.prepare import prepared_model
from dkw.solvers.fastpath.split import components_of
from dkw.solvers.fastpath.starts import HEURISTIC_OPTIONS, rescaled_start_ups, rounded_start
from dkw.solvers.highs import highs_for
from dkw.solvers.tuning import FastPathTuning

REPORTED_ROUNDS = (0, 1, 2, 4, 8, 16)


def polished_start(sub: ArrayProblem, x: np.ndarray, tying: np.ndarray, opts: dict, tuning: FastPathTuning) -> str:
    """The fast path's second start from `x`: block-tying columns it uses rounded up, the rest polished."""
    start = rounded_start(sub, tying, x > 1e-6, opts, math.inf)
    if start is None:
        return "rounding infeasible"
    began = time.time()
    polished = polish_by_splitting(sub, start, sub.block_tying, opts, time.time() + 60, tuning, workers=1)
    if polished is None:
        return "not polished within 60 s"
    polished = switch_off_idle(sub, polished)[0]
    return f"polished start {sub.col_cost @ polished / 1e6:,.3f}M yen in {time.time() - began:.1f} s"


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    rounds = int(argv[1])
    options = SolveOptions(time_limit_s=300, threads=1)
    sub = components_of(prepared_model(formulate(build_index(load_auction_file(Path(argv[0])))), options))[0]
    tuning = FastPathTuning()
    opts = options.highs_settings()
    tiny = (sub.col_cost > 0) & (sub.col_cost < tuning.lp_cost_floor_yen)
    cost = np.where(tiny, 0.0, sub.col_cost)
    highs = highs_for(dataclasses.replace(sub, col_cost=cost, integrality=np.zeros_like(sub.integrality), start=None),
                      opts, HEURISTIC_OPTIONS)
    highs.run()
    x = np.array(highs.getSolution().col_value)
    tying = (sub.integrality == 1) & sub.block_tying
    charged = np.flatnonzero(tying & (cost > 0)).astype(np.int32)
    print(f"{len(charged)} charged of {int(tying.sum())} block-tying columns", flush=True)
    for k in range(rounds + 1):
        if k:
            x = rescaled_start_ups(highs, cost, tying, x, 1, math.inf)
        line = f"round {k}: {int((x[charged] > 1e-6).sum())} start-ups used, LP at the real costs " \
               f"{cost @ x / 1e6:,.3f}M yen"
        if k in REPORTED_ROUNDS or k == rounds:
            line += "; " + polished_start(sub, x, tying, opts, tuning)
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
