"""A cross-check of the reference brackets with another open solver (issue 13, seventh round; docs/performance.md)

    python -m dkw.bench.experiments.cbc_crosscheck mps AUCTION.json OUT.mps
    cbc OUT.mps -sec 600 -threads 1 -solve -solu OUT.sol          # CBC 2.10, e.g. the binary `pip install pulp` ships
    python -m dkw.bench.experiments.cbc_crosscheck verify AUCTION.json OUT.sol[.gz]

`mps` writes the whole clearing MILP of the auction as `dkw clear` formulates it (market rules applied,
before the fast path's reductions), with HiGHS's writer: columns c0, c1, … in the model's own layout. CBC is
not a dependency of dkw; this only reads its solution file. `verify` puts that solution back into the model:
its largest row or bound violation, its objective as the solver saw it (with the documented tie-break and
flow-preference terms), and the result document built from it exactly as a clearing builds its own,
checked by the independent verifier (`clearing/verify.py`). A solution that passes is a feasible clearing:
its `objective_yen` is an upper bound on the optimum, fit for `bench/reference.json`.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

from dkw.clearing.document import load_auction, parse_document
from dkw.clearing.engine import assemble_result, solution_values
from dkw.clearing.formulation import Formulation, formulate
from dkw.clearing.index import build_index
from dkw.clearing.matrix import MatrixModel, to_matrix
from dkw.clearing.result import SolverInfo
from dkw.clearing.rules import prepare_clearing
from dkw.clearing.verify import verify_result
from dkw.solvers.api import SolveOutcome, SolveStatus
from dkw.solvers.arrays import ArrayProblem, violation
from dkw.solvers.highs import load_problem, new_highs


def clearing_model(auction_path: Path) -> tuple[object, Formulation, MatrixModel]:
    """The prepared auction (rules applied), its formulation and its arrays, as `dkw clear` builds them."""
    auction = load_auction(parse_document(auction_path.read_bytes()))
    prepared, left_out, _ = prepare_clearing(auction)
    form = formulate(build_index(prepared, left_out))
    return prepared, form, to_matrix(form)


def write_mps(auction_path: Path, out: Path) -> None:
    _, _, mm = clearing_model(auction_path)
    write_model(mm, out)
    print(f"{out}: {mm.num_cols} columns ({int(mm.integrality.sum())} binaries), {mm.num_rows} rows")


def write_model(mm: MatrixModel, out: Path) -> None:
    """The arrays as HiGHS writes them (MPS by the suffix): columns c0, c1, … in the model's own layout."""
    highs = new_highs()
    highs.setOptionValue("output_flag", False)
    load_problem(highs, ArrayProblem.whole(mm))
    highs.writeModel(str(out))


def read_cbc_solution(path: Path, num_cols: int) -> np.ndarray:
    """CBC's `-solu` file: a status line, then `index name value reduced-cost` per nonzero column (a leading
    `**` marks an infeasibility); the names are HiGHS's `c<column>`."""
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    x = np.zeros(num_cols)
    lines = text.splitlines()
    print(f"CBC: {lines[0].strip()}")
    for line in lines[1:]:
        parts = line.split()
        if parts and parts[0] == "**":
            parts = parts[1:]
        if len(parts) < 3 or not parts[1].startswith("c"):
            raise ValueError(f"{path}: not a CBC solution line of this model: {line!r}")
        x[int(parts[1][1:])] = float(parts[2])
    return x


def verify(auction_path: Path, solution_path: Path) -> int:
    prepared, form, mm = clearing_model(auction_path)
    x = read_cbc_solution(solution_path, mm.num_cols)
    doc, findings, worst = verified_clearing(prepared, form, mm, x, "CBC")
    print(f"largest violation {worst:.2e} (kW or yen units of the rows); objective as solved "
          f"{float(mm.col_cost @ x):,.2f}")
    print(f"objective_yen {doc['objective_yen']:,.2f}; {len(doc['awards'])} awards; verifier: "
          + ("no findings" if not findings else f"{len(findings)} findings"))
    for finding in findings[:20]:
        print(f"  {finding}")
    return 1 if findings else 0


def verified_clearing(prepared, form: Formulation, mm: MatrixModel, x: np.ndarray,
                      solver: str) -> tuple[dict, list, float]:
    """Another solver's point `x` of the model (its integers rounded in place) as the result document a
    clearing builds from its own (unpriced), the independent verifier's findings on it, and its largest row
    or bound violation. The document's `objective_yen` is the point's real cost (no tie-break terms)."""
    integer = mm.integrality == 1
    x[integer] = np.round(x[integer])
    outcome = SolveOutcome(SolveStatus.TIME_LIMIT_FEASIBLE, float(mm.col_cost @ x), None, None, 0.0, 0, x, message=solver)
    info = SolverInfo(solver, "", f"read from a {solver} solution", None, None, 0.0, 0)
    q, f, s, _ = solution_values(form, outcome)
    result = assemble_result(form.ix, "TIME_LIMIT_FEASIBLE", q, f, s, info)  # unpriced, as before
    doc = result.to_document()
    findings = verify_result(prepared, doc, left_out={r["bid"] for r in doc["rejected_bids"]})
    return doc, findings, violation(mm, x)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("mps", "verify"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "mps":
        write_mps(Path(argv[1]), Path(argv[2]))
        return 0
    return verify(Path(argv[1]), Path(argv[2]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
