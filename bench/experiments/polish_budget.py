"""How much of the start's block-by-block polish a budget buys, where the LP relaxation is skipped.

    python -m dkw.bench.experiments.polish_budget AUCTION.json BUDGETS [WORKERS]

On the auction's largest component, the start the fast path has there when the relaxation is skipped (the
floor's rounding, `floor_start`) is polished (`polish_by_splitting`, WORKERS threads, default 2) within
each of the comma-separated BUDGETS (seconds), each time from the same start; printed: the time taken and
how much cheaper the point is. The figures behind `FastPathTuning.polish_s_per_integer` (docs/performance.md,
seventeenth round).
"""
import sys
import time

from dkw.clearing.document import load_auction_file
from dkw.clearing.formulation import formulate
from dkw.clearing.index import build_index
from dkw.solvers.api import SolveOptions
from dkw.solvers.arrays import violation
from dkw.solvers.fastpath.auction import start_from_floor
from dkw.solvers.fastpath.floor import floor_start, solve_floor
from dkw.solvers.fastpath.polish import polish_by_splitting
from dkw.solvers.fastpath.prepare import prepared_model
from dkw.solvers.fastpath.split import components_of


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    budgets = [float(b) for b in argv[1].split(",")]
    workers = int(argv[2]) if len(argv) > 2 else 2
    options = SolveOptions()
    settings = options.highs_settings()
    model = prepared_model(formulate(build_index(load_auction_file(argv[0]))), options)
    subs = components_of(model)
    start_from_floor(subs, floor_start(model, solve_floor(model, settings)))
    main_component = subs[0]
    start_cost = float(main_component.col_cost @ main_component.start)
    print(f"start {start_cost:,.0f} yen; {main_component.num_int} integer columns", flush=True)
    for budget in budgets:
        began = time.time()
        x = polish_by_splitting(main_component, main_component.start, main_component.block_tying, settings,
                                began + budget, options.tuning, workers=workers)
        took = time.time() - began
        if x is None:
            print(f"budget {budget:5.1f} s: took {took:5.1f} s, no point", flush=True)
            continue
        cost = float(main_component.col_cost @ x)
        print(f"budget {budget:5.1f} s: took {took:5.1f} s, {cost:,.0f} yen ({(start_cost - cost) / 1e6:.1f}M "
              f"cheaper), violation {violation(main_component, x):.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
