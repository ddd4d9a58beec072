"""The clearing MILP as arrays for highspy, stacked from the one description in `clearing/formulation.py`.

Column bounds, costs and integrality come from `formulation.columns`; the rows are the constraint
families in `FORMULATION` order, turned into one CSR matrix. No per-term Python objects and no
expression trees, and a model that the fast path can cut into independent components by slicing arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dkw.clearing.formulation import Columns, Formulation, formulate
from dkw.clearing.index import AuctionIndex
from dkw.solvers.arrays import ArrayProblem


@dataclass(kw_only=True)
class MatrixModel(ArrayProblem):
    """The whole clearing MILP as the one array type (`dkw.solvers.arrays.ArrayProblem`), with the formulation
    it was stacked from: what the fast path's preparation reads the market through."""

    formulation: Formulation
    balance_row: dict[tuple[str, str, int], int]  # (area, product, block) → its balance row

    @property
    def ix(self) -> AuctionIndex:
        return self.formulation.ix

    @property
    def columns(self) -> Columns:
        return self.formulation.columns

    @property
    def num_bids(self) -> int:
        return self.columns.num_bids


def to_matrix(form: Formulation) -> MatrixModel:
    """Stack the families of `form` into CSR arrays (copies of the column arrays: the fast path changes
    bounds in place)."""
    families = form.families

    def stacked(name: str, dtype: type) -> np.ndarray:
        parts = [np.asarray(getattr(rows, name), dtype=dtype) for rows in families]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    lengths = stacked("lengths", np.int32)
    a_start = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=a_start[1:])
    first = form.first_rows()
    balance = next(rows for rows in families if rows.name == "balance")
    c = form.columns
    return MatrixModel(
        cols=np.arange(c.num_cols), rows=np.arange(len(a_start) - 1),
        formulation=form, col_cost=c.cost.copy(), col_lower=c.lower.copy(), col_upper=c.upper.copy(),
        integrality=c.integrality.copy(),
        row_lower=stacked("lower", float), row_upper=stacked("upper", float),
        a_start=a_start,
        a_index=stacked("cols", np.int32), a_value=stacked("vals", float),
        balance_row={key: first["balance"] + j for j, key in enumerate(balance.keys)},
    )


def build_matrix(ix: AuctionIndex) -> MatrixModel:
    """SPEC §3 as arrays: the one formulation of `ix`, stacked."""
    return to_matrix(formulate(ix))
