"""The neighbourhood search alone on an auction's largest component, one line per sub-MILP.

    python -m dkw.bench.experiments.search_log AUCTION.json SECONDS [--seed K] [--size kind=share ...]
                                                [--sub-max-s S] [--kinds rins,blocks,...] [--hops K] [--trim-idle]
                                                [--polish] [--rins-from-cuts] [--highs-option NAME=VALUE ...] [--save POINT.npy]

Prepares the auction as the fast path does (prepare → split), takes the largest component through the
fast path's first two phases (the LP relaxation with its roundings, the start polished block by block)
and runs `NeighbourhoodSearch` from that start for SECONDS on one core, printing each sub-MILP as a JSON
line (kind, integers freed, solved to optimality, seconds, objective, the incumbent after it) and a last
line with the totals. The start is cached beside the document (AUCTION.json.search-start.npz) so every
variant starts from the same point; `--save` keeps the search's last incumbent (e.g. for
`dkw.bench.experiments.flip_pass`). For the search's throughput experiments in docs/performance.md.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from dkw.bench.run_one import option_value
from dkw.clearing.document import load_auction_file
from dkw.clearing.formulation import formulate
from dkw.clearing.index import build_index
from dkw.solvers.api import SolveOptions
from dkw.solvers.fastpath.component import ComponentRun, lp_relaxation_and_roundings, polish_start
from dkw.solvers.fastpath.prepare import prepared_model
from dkw.solvers.fastpath.search import SUB_MAX_S, NeighbourhoodSearch, SearchKnobs
from dkw.solvers.fastpath.split import components_of


def flag(argv: list[str], name: str, default: str | None = None) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else default


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    doc, seconds = Path(argv[0]), float(argv[1])
    options = SolveOptions(time_limit_s=300, threads=1)
    form = formulate(build_index(load_auction_file(doc)))
    sub = components_of(prepared_model(form, options))[0]
    cached = Path(f"{doc}.search-start.npz")
    if cached.exists():
        saved = np.load(cached)
        sub.start, lp_x = saved["start"], saved["lp_x"]
    else:
        run = ComponentRun.begin(sub, options, time.time() + 300, None, spare_core=True)
        lp_relaxation_and_roundings(run)
        polish_start(run)
        lp_x = run.lp_x
        np.savez(cached, start=sub.start, lp_x=lp_x)
    if "--rins-from-cuts" in argv:  # RINS against the LP with the fast path's Gomory rounds, not the bare one
        from dkw.solvers.fastpath.cuts import gomory_rounds
        cut_x = Path(f"{doc}.search-cut-lp.npy")
        if not cut_x.exists():
            np.save(cut_x, gomory_rounds(sub, 6, 400, time.time() + 40, threads=1).lp_x)
        lp_x = np.load(cut_x)
    search = NeighbourhoodSearch(sub, sub.start, lp_x, sub.tags, options.highs_settings(),
                                 seed=int(flag(argv, "--seed", "0")),
                                 knobs=SearchKnobs(int(flag(argv, "--hops", "0")),
                                                   float(flag(argv, "--sub-max-s", str(SUB_MAX_S))),
                                                   "--trim-idle" in argv, "--polish" in argv))
    for k, arg in enumerate(argv):
        if arg == "--size":
            kind, _, share = argv[k + 1].partition("=")
            search.size[kind] = float(share)
        if arg == "--highs-option":  # on the search's own instance, over the search's settings
            name, _, value = argv[k + 1].partition("=")
            search.highs.setOptionValue(name, option_value(value))
    if "--kinds" in argv:
        chosen = flag(argv, "--kinds").split(",")
        search.kinds = lambda: chosen  # type: ignore[method-assign]
    began = time.time()
    logged = 0

    def step() -> None:
        nonlocal logged
        for kind, freed, solved, took, objective in search.stats.log[logged:]:
            print(json.dumps({"t": round(time.time() - began, 2), "kind": kind, "freed": freed, "solved": solved,
                              "took": round(took, 2), "objective": round(objective, 1),
                              "incumbent": round(search.objective, 1)}), flush=True)
        logged = len(search.stats.log)

    print(json.dumps({"columns": len(sub.cols), "integers": int(sub.num_int),
                      "start": round(float(sub.col_cost @ sub.start), 1)}), flush=True)
    search.run(began + seconds, on_step=step)
    if "--save" in argv:
        np.save(flag(argv, "--save"), search.x)
    print(json.dumps({"seconds": round(time.time() - began, 1), "start": search.stats.start_objective,
                      "best": search.objective, "tried": search.stats.tried, "improved": search.stats.improved,
                      "polished": round(search.stats.polished, 1),
                      "polish_s": round(search.stats.polish_seconds, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
