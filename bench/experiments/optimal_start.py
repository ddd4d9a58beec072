"""How long branch-and-bound takes on a document when its MIP start is already the optimum.

    python -m dkw.bench.experiments.optimal_start AUCTION.json SEED [SEED ...]

Clears the document once (HiGHS seed 0, 300 s) and keeps the result beside it (AUCTION.json.result.json),
then clears it again per HiGHS seed with that result as the start hint, as a draining replica's handed-back
incumbent is (dkw.clearing.handback). One JSON line per seed: seconds, nodes, status, and whether the start
was used. What is left is the proof alone: the difference to an ordinary clearing is the time spent finding
the incumbent (docs/performance.md, "The incumbent is the mid-size time").
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from dkw.clearing.document import load_auction_file
from dkw.clearing.engine import clear
from dkw.clearing.handback import incumbent_of
from dkw.solvers.api import SolveOptions


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    doc = Path(argv[0])
    saved = Path(f"{doc}.result.json")
    if not saved.exists():
        first = clear(load_auction_file(doc), SolveOptions(time_limit_s=300, highs_options={"random_seed": 0}),
                      explain_options=False)
        saved.write_text(json.dumps(first.to_document()))
    start = incumbent_of(json.loads(saved.read_text()))
    for seed in (int(s) for s in argv[1:]):
        began = time.perf_counter()
        result = clear(load_auction_file(doc), SolveOptions(time_limit_s=150, highs_options={"random_seed": seed}),
                       start=start, explain_options=False)
        print(json.dumps({"doc": doc.name, "seed": seed, "seconds": round(time.perf_counter() - began, 1),
                          "nodes": result.solver.nodes, "status": result.status,
                          "objective_yen": result.objective_yen,
                          "start_used": result.extra["handed_back_start"]["used"]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
