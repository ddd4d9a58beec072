"""A 1-opt pass over the binaries, each flip priced by the fixed-integer LP: does it find what the
neighbourhood search leaves?

    python -m dkw.bench.experiments.flip_pass AUCTION.json POINT.npy SECONDS [--adds] [--out BETTER.npy]

Takes the auction's largest component (as `dkw.bench.experiments.search_log` does, whose `--save` writes
POINT.npy) and, for SECONDS at most, tries every start-up binary at 1 (costliest first) switched off
together with every binary the model then forces off (its bids, their linked bids), and with `--adds` every
binary at 0 whose reduced cost in the fixed-integer LP says it is wanted, switched on together with what
it forces on (the start-up) and off (the other patterns of its exclusive group). Each flip is priced by
re-solving the LP with every integer fixed (warm, from the last basis) and kept when it is cheaper. One
JSON line per kept flip and a last line with the totals. For docs/performance.md (fourteenth round).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from dkw.clearing.document import load_auction_file
from dkw.clearing.formulation import formulate
from dkw.clearing.index import build_index
from dkw.solvers.api import SolveOptions
from dkw.solvers.arrays import ArrayProblem, violation
from dkw.solvers.fastpath.prepare import prepared_model
from dkw.solvers.fastpath.search import PASSED_OPTIONS
from dkw.solvers.fastpath.split import components_of
from dkw.solvers.highs import highs_for, solved_optimally, with_integers_fixed

IMPROVEMENT_REL = 1e-9


class FlipPass:
    """The fixed-integer LP of `problem` at `x`, and flips of binaries priced by it."""

    def __init__(self, problem: ArrayProblem, x: np.ndarray, settings: dict):
        self.p = problem
        self.ints = np.flatnonzero(problem.integrality == 1)
        lp = with_integers_fixed(problem, self.ints, np.round(x[self.ints]))
        self.highs = highs_for(lp, settings, PASSED_OPTIONS, output_flag=False)
        self.highs.run()
        assert solved_optimally(self.highs)
        self.objective = float(self.highs.getInfo().objective_function_value)
        self.x = np.array(self.highs.getSolution().col_value)
        self.dual = np.array(self.highs.getSolution().col_dual)
        is_int = problem.integrality == 1
        row_of_nz = problem.row_of_nonzeros()
        # rows whose every column is an integer: the ones a flip must keep satisfied itself
        cont_nz = np.bincount(row_of_nz, weights=(~is_int[problem.a_index]).astype(float),
                              minlength=problem.num_rows)
        self.int_row = cont_nz == 0
        keep = self.int_row[row_of_nz]
        order = np.argsort(problem.a_index[keep], kind="stable")
        self.nz_col = problem.a_index[keep][order]
        self.nz_row = row_of_nz[keep][order]
        self.col_start = np.searchsorted(self.nz_col, np.arange(problem.num_cols + 1))
        self.lp_seconds = 0.0
        self.lp_solves = 0

    def _row(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        s, e = self.p.a_start[r], self.p.a_start[r + 1]
        return self.p.a_index[s:e], self.p.a_value[s:e]

    def _rows_of(self, col: int) -> np.ndarray:
        return self.nz_row[self.col_start[col]:self.col_start[col + 1]]

    def cascade(self, col: int, value: float) -> dict[int, float] | None:
        """The binaries to change with `col` set to `value` so every all-integer row holds again (None: no
        way by these rules)."""
        y = {col: value}
        locked = {col}
        queue = [col]
        while queue:
            c = queue.pop()
            for r in self._rows_of(c):
                idx, val = self._row(int(r))
                lo, up = self.p.row_lower[r], self.p.row_upper[r]
                cur = np.array([y.get(int(i), round(self.x[i])) for i in idx])
                act = float(val @ cur)
                if lo - 1e-9 <= act <= up + 1e-9:
                    continue
                # move the activity towards the row: a column at 0 whose coefficient points that way goes to
                # 1, one at 1 whose coefficient points the other way goes to 0
                upward = act < lo
                for i, a, v in zip(idx, val, cur, strict=True):
                    i = int(i)
                    away = (a > 0) == (v > 0.5) if upward else (a > 0) != (v > 0.5)
                    if i in locked or away:
                        continue
                    y[i] = 1.0 - v
                    locked.add(i)
                    queue.append(i)
                act = float(val @ np.array([y.get(int(i), round(self.x[i])) for i in idx]))
                if act < lo - 1e-9 or act > up + 1e-9:
                    return None
        return y

    def try_flip(self, change: dict[int, float]) -> bool:
        cols = np.array(sorted(change), dtype=np.int32)
        new = np.array([change[c] for c in cols])
        old = np.round(self.x[cols])
        self.highs.changeColsBounds(len(cols), cols, new, new)
        t0 = time.perf_counter()
        self.highs.run()
        self.lp_seconds += time.perf_counter() - t0
        self.lp_solves += 1
        if solved_optimally(self.highs):
            objective = float(self.highs.getInfo().objective_function_value)
            if objective < self.objective * (1 - IMPROVEMENT_REL):
                self.objective = objective
                self.x = np.array(self.highs.getSolution().col_value)
                self.dual = np.array(self.highs.getSolution().col_dual)
                return True
        self.highs.changeColsBounds(len(cols), cols, old, old)
        return False

    def estimate(self, change: dict[int, float]) -> float:
        """A lower bound on what the flip changes the objective by: the LP's value is convex in the fixed
        columns' values, and their reduced costs at the current optimum are a subgradient. So a flip whose
        estimate is not negative cannot pay, and is never solved."""
        return float(sum(self.dual[c] * (v - round(self.x[c])) for c, v in change.items()))


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    doc, point, seconds = Path(argv[0]), np.load(argv[1]), float(argv[2])
    options = SolveOptions(time_limit_s=300, threads=1)
    sub = components_of(prepared_model(formulate(build_index(load_auction_file(doc))), options))[0]
    began = time.time()
    flips = FlipPass(sub, point, options.highs_settings())
    start = flips.objective
    print(json.dumps({"columns": len(sub.cols), "integers": int(sub.num_int), "point": float(sub.col_cost @ point),
                      "fixed_lp": start, "setup_s": round(time.time() - began, 2)}), flush=True)
    ints = flips.ints
    kept = {"off": 0, "on": 0}
    tried = {"off": 0, "on": 0}
    pruned = 0
    passes = 0
    more = True
    while more and time.time() - began < seconds:
        more = False
        passes += 1
        moves = []
        on = ints[flips.x[ints] > 0.5]
        for col in on[sub.col_cost[on] > 0]:
            change = flips.cascade(int(col), 0.0)
            if change is not None:
                moves.append((flips.estimate(change), "off", change))
        if "--adds" in argv:
            off = ints[(flips.x[ints] < 0.5) & (flips.dual[ints] < -1e-6)]
            for col in off:
                change = flips.cascade(int(col), 1.0)
                if change is not None:
                    moves.append((flips.estimate(change), "on", change))
        moves.sort(key=lambda m: m[0])
        for estimate, move, change in moves:
            if time.time() - began > seconds:
                break
            if estimate >= -1.0:
                pruned += 1
                continue
            if any(round(flips.x[c]) == v for c, v in change.items()):
                continue  # an earlier flip of this pass already moved one of its columns
            tried[move] += 1
            if flips.try_flip(change):
                kept[move] += 1
                more = True
                print(json.dumps({"t": round(time.time() - began, 2), "move": move, "cols": len(change),
                                  "estimate": round(estimate, 1), "objective": round(flips.objective, 1)}),
                      flush=True)
    if "--out" in argv:
        np.save(argv[argv.index("--out") + 1], flips.x)
    print(json.dumps({"seconds": round(time.time() - began, 1), "start": start, "best": flips.objective,
                      "gain": round(start - flips.objective, 1), "passes": passes, "tried": tried, "kept": kept, "pruned": pruned,
                      "lp_solves": flips.lp_solves, "lp_seconds": round(flips.lp_seconds, 1),
                      "violation": violation(sub, flips.x)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
