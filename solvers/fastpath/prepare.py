"""The fast path's preparation: what it knows of the market, added to the arrays of the one formulation.

Which bids every optimum accepts in full (clearing/reduce.py: their bounds raised), the whole model's MIP
start (`starts.whole_model_start`), which columns tie blocks together (for the polishing) and where each
column sits in the market (for the neighbourhood search). `split` then cuts the model into components.
"""

from __future__ import annotations

import numpy as np

from dkw.clearing.formulation import Formulation
from dkw.clearing.matrix import MatrixModel, to_matrix
from dkw.clearing.reduce import always_full_bids
from dkw.solvers.api import SolveOptions
from dkw.solvers.fastpath.search import ColumnTags
from dkw.solvers.fastpath.starts import whole_model_start


def prepared_model(form: Formulation, options: SolveOptions, start_hint: np.ndarray | None = None) -> MatrixModel:
    """`form` as arrays with the bids every optimum accepts in full fixed, and, with `options.warm_start`,
    its MIP start (the greedy's, or `start_hint` where feasible and cheaper), block-tying columns and tags."""
    mm = to_matrix(form)
    fix_always_full(mm)
    if options.warm_start:
        mm.start = whole_model_start(mm, start_hint)
        mm.block_tying = block_tying_columns(mm)
        mm.tags = column_tags(mm)
    return mm


def block_tying_columns(mm: MatrixModel) -> np.ndarray:
    """Columns that tie blocks together: bids covering more than one block (quantity and acceptance) and
    the start-up binaries of their resources. With them fixed, a national auction falls apart per block."""
    ix, c = mm.ix, mm.columns
    block_tying = np.zeros(mm.num_cols, dtype=bool)
    for i, bid in enumerate(ix.bids):
        if len(bid.blocks) > 1:
            block_tying[i] = True
            if i in c.u_col:
                block_tying[c.u_col[i]] = True
            if bid.resource in c.v_col:
                block_tying[c.v_col[bid.resource]] = True
    return block_tying


def column_tags(mm: MatrixModel) -> ColumnTags:
    """Where each integer column sits (area, products, blocks) for the neighbourhood search
    (`solvers/fastpath/search.py`): an acceptance binary is its bid's, a start-up binary spans its resource's bids;
    and which columns are linked bids'."""
    ix, c = mm.ix, mm.columns
    areas = sorted({b.area for b in ix.bids} | {a for line in ix.auction.lines for a in (line.from_area, line.to_area)})
    area_pos = {a: k for k, a in enumerate(areas)}
    products = sorted({p for b in ix.bids for p in b.products})
    product_bit = {p: 1 << k for k, p in enumerate(products)}
    n = mm.num_cols
    area = np.full(n, -1, dtype=np.int32)
    mask = np.zeros(n, dtype=np.int64)
    first = np.zeros(n, dtype=np.int32)
    last = np.zeros(n, dtype=np.int32)

    def tag(col: int, i: int) -> None:
        bid = ix.bids[i]
        bits = sum(product_bit[p] for p in bid.products)
        if area[col] < 0:
            area[col], mask[col], first[col], last[col] = area_pos[bid.area], bits, min(bid.blocks), max(bid.blocks)
        else:
            mask[col] |= bits
            first[col], last[col] = min(first[col], min(bid.blocks)), max(last[col], max(bid.blocks))

    for i, col in c.u_col.items():
        tag(col, i)
    for r, col in c.v_col.items():
        for i in ix.resource_bids[r]:
            tag(col, i)
    neighbours: list[set[int]] = [set() for _ in areas]
    for line in ix.auction.lines:
        a, b = area_pos[line.from_area], area_pos[line.to_area]
        neighbours[a].add(b)
        neighbours[b].add(a)
    return ColumnTags(area, mask, first, last, ix.auction.blocks, len(products), [sorted(s) for s in neighbours],
                      linked_columns(mm))


def linked_columns(mm: MatrixModel) -> np.ndarray:
    """The columns (quantity and acceptance) of the bids that have a parent or children."""
    c = mm.columns
    linked = np.zeros(mm.num_cols, dtype=bool)
    for child, parent in mm.ix.parent_of.items():
        for i in (child, parent):
            linked[i] = True
            if i in c.u_col:
                linked[c.u_col[i]] = True
    return linked


def fix_always_full(mm: MatrixModel) -> int:
    """Raise the lower bounds of the bids every optimum accepts in full (clearing/reduce.py) to kw, with
    their acceptance and start-up binaries at 1. Returns how many bids were fixed."""
    ix, c = mm.ix, mm.columns
    full = always_full_bids(ix)
    for i in full:
        mm.col_lower[i] = mm.col_upper[i]
        if i in c.u_col:
            mm.col_lower[c.u_col[i]] = 1.0
        resource = ix.bids[i].resource
        if resource in c.v_col:
            mm.col_lower[c.v_col[resource]] = 1.0
    return len(full)
