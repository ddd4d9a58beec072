"""The formulation of `clearing/formulation.py` as a Pyomo model, readable and writable as an LP file.

Derived, like the arrays of `clearing/matrix.py`, from the one description: one Pyomo variable per column
group (`q`, `u`, `v`, `f`, `s`, indexed by their keys: bid ids, resource ids, (line, direction, product,
block), (area, product, block)), the objective from the column costs, and one indexed constraint per
family, named after the family and indexed by its row keys. So the LP file says which rule and which
entity each row belongs to (`balance(tokyo_primary_3)`), and `compile_to_arrays` reads the model back
through HiGHS in the layout's own column and row order: the straight back-end solves that, and
`tests/test_formulation.py` compares it with the arrays built directly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression
from pyomo.opt import ProblemFormat

from dkw.clearing.formulation import INF, Formulation, Key
from dkw.solvers.arrays import ArrayProblem
from dkw.solvers.highs import new_highs


def _index(keys: list[Key]) -> list[Any]:
    """Pyomo index values: a one-part key as its value, longer keys as tuples."""
    return [k[0] if len(k) == 1 else k for k in keys]


def _bound(value: float) -> float | None:
    return None if value in (INF, -INF) else float(value)


def build_pyomo_model(form: Formulation) -> tuple[pyo.ConcreteModel, list[Any], list[Any]]:
    """The Pyomo model of `form`, with its variables in column order and its constraints in row order."""
    m = pyo.ConcreteModel(name=form.ix.auction.auction_id)
    c = form.columns
    variables: list[Any] = [None] * c.num_cols
    for group in c.groups:
        keys = _index(group.keys)
        m.add_component(f"{group.name}_index", pyo.Set(initialize=keys, dimen=len(group.key_names), ordered=True))
        var = pyo.Var(m.component(f"{group.name}_index"), domain=pyo.Binary if group.integer else pyo.NonNegativeReals)
        m.add_component(group.name, var)
        for j, key in enumerate(keys):
            col = group.first + j
            var[key].setlb(float(c.lower[col]))
            var[key].setub(float(c.upper[col]))
            variables[col] = var[key]
    costed = np.flatnonzero(c.cost)
    m.cost = pyo.Objective(expr=LinearExpression(constant=0, linear_coefs=[float(c.cost[j]) for j in costed],
                                                 linear_vars=[variables[j] for j in costed]), sense=pyo.minimize)
    constraints: list[Any] = []
    for rows in form.families:
        keys = _index(rows.keys)
        terms = dict(zip(keys, rows.terms(), strict=True))

        def rule(_, *key, terms=terms):
            _key, lower, upper, cols, vals = terms[key[0] if len(key) == 1 else key]
            expr = LinearExpression(constant=0, linear_coefs=list(vals), linear_vars=[variables[j] for j in cols])
            return (_bound(lower), expr, _bound(upper))

        m.add_component(f"{rows.name}_index", pyo.Set(initialize=keys, dimen=len(rows.key_names), ordered=True))
        con = pyo.Constraint(m.component(f"{rows.name}_index"), rule=rule)
        m.add_component(rows.name, con)
        constraints.extend(con[key] for key in keys)
    return m, variables, constraints


def write_lp(model: pyo.ConcreteModel, path: str | Path) -> dict[str, Any]:
    """Write `model` as an LP file with readable names; returns the names → Pyomo components."""
    _, symbol_map_id = model.write(str(path), format=ProblemFormat.cpxlp, io_options={"symbolic_solver_labels": True})
    return dict(model.solutions.symbol_map[symbol_map_id].bySymbol)


def compile_to_arrays(form: Formulation) -> tuple[ArrayProblem, float]:
    """The Pyomo model of `form` as HiGHS reads it from Pyomo's LP file, put back into the layout's column
    and row order (a column the LP file leaves out — in no row, no cost — keeps its Pyomo bounds).
    Returns the arrays and the seconds it took."""
    import time

    started = time.perf_counter()
    model, variables, constraints = build_pyomo_model(form)
    col_of = {id(v): j for j, v in enumerate(variables)}
    row_of = {id(con): i for i, con in enumerate(constraints)}
    with tempfile.TemporaryDirectory(prefix="dkw-lp-") as tmp:
        path = Path(tmp) / "model.lp"
        symbols = write_lp(model, path)
        highs = new_highs()
        highs.setOptionValue("output_flag", False)
        highs.readModel(str(path))
    lp = highs.getLp()
    # -1: a column or row of Pyomo's own, not the layout's (ONE_VAR_CONSTANT and its row, written when the
    # objective has a constant or a model would otherwise be empty): left out
    col_pos = np.array([col_of.get(id(symbols.get(name)), -1) for name in lp.col_names_], dtype=np.int64)
    row_pos = np.array([row_of.get(id(symbols.get(name)), -1) for name in lp.row_names_], dtype=np.int64)
    cols, rows = col_pos >= 0, row_pos >= 0
    num_cols, num_rows = len(variables), len(constraints)

    col_cost = np.zeros(num_cols)
    col_lower = np.array([v.lb if v.lb is not None else -INF for v in variables], dtype=float)
    col_upper = np.array([v.ub if v.ub is not None else INF for v in variables], dtype=float)
    integrality = np.array([1 if v.is_integer() else 0 for v in variables], dtype=np.int32)
    col_cost[col_pos[cols]] = np.asarray(lp.col_cost_)[cols]
    col_lower[col_pos[cols]] = np.asarray(lp.col_lower_)[cols]
    col_upper[col_pos[cols]] = np.asarray(lp.col_upper_)[cols]
    if len(lp.integrality_):
        integrality[col_pos[cols]] = [1 if int(t) == 1 else 0 for t, known in zip(lp.integrality_, cols, strict=True)
                                      if known]
    row_lower = np.empty(num_rows)
    row_upper = np.empty(num_rows)
    row_lower[row_pos[rows]] = np.asarray(lp.row_lower_)[rows]
    row_upper[row_pos[rows]] = np.asarray(lp.row_upper_)[rows]

    # HiGHS holds the matrix column-wise: re-sort the nonzeros by (layout row, layout column) into CSR
    matrix = lp.a_matrix_
    starts = np.asarray(matrix.start_, dtype=np.int64)
    nz_col = col_pos[np.repeat(np.arange(len(col_pos)), np.diff(starts))]
    nz_row = row_pos[np.asarray(matrix.index_, dtype=np.int64)]
    values = np.asarray(matrix.value_, dtype=float)
    known = (nz_col >= 0) & (nz_row >= 0)
    nz_col, nz_row, values = nz_col[known], nz_row[known], values[known]
    order = np.lexsort((nz_col, nz_row))
    a_start = np.zeros(num_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(nz_row, minlength=num_rows), out=a_start[1:])
    problem = ArrayProblem(np.arange(num_cols), np.arange(num_rows), col_cost, col_lower, col_upper, integrality,
                           row_lower, row_upper, a_start, nz_col[order].astype(np.int32), values[order])
    return problem, time.perf_counter() - started
