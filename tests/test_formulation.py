"""The MILP is described once (clearing/formulation.py); its two builds must be the same model.

The arrays the fast path solves are stacked from the families directly (clearing/matrix.py); the Pyomo
model is built from the same families, written by Pyomo's LP writer and read back by HiGHS
(solvers/pyomo_model.py), which is what the straight path solves. On every shared case both builds'
standard forms — column costs, bounds and integrality, row bounds, every coefficient — are equal.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CASES_DIR, EXPECTED, prepared_formulation

from dkw.clearing.formulation import FORMULATION
from dkw.clearing.matrix import to_matrix
from dkw.cli import main
from dkw.solvers.pyomo_model import compile_to_arrays


def differences(a, b) -> list[str]:
    """Where two standard forms differ (empty: the same model). Rows compared as sets of (column, value)."""
    out = []
    for field in ("col_cost", "col_lower", "col_upper", "integrality", "row_lower", "row_upper"):
        x, y = getattr(a, field), getattr(b, field)
        if x.shape != y.shape or not np.allclose(x, y, rtol=1e-12, atol=0, equal_nan=False):
            out.append(field)
    if len(a.a_start) != len(b.a_start):
        return out + ["rows"]
    for r in range(len(a.a_start) - 1):
        if row_terms(a, r) != row_terms(b, r):
            out.append(f"row {r}")
    return out


def row_terms(model, r: int) -> list[tuple[int, float]]:
    nz = slice(model.a_start[r], model.a_start[r + 1])
    return sorted(zip(model.a_index[nz].tolist(), model.a_value[nz].tolist(), strict=True))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_pyomo_model_and_the_arrays_are_the_same_model(name: str) -> None:
    form = prepared_formulation(name)
    arrays = to_matrix(form)
    compiled, _seconds = compile_to_arrays(form)
    assert arrays.num_rows == sum(len(rows.keys) for rows in form.families) > 0
    assert differences(arrays, compiled) == []


def test_the_comparison_sees_a_changed_coefficient_and_bound() -> None:
    form = prepared_formulation("04-startup-linked")
    arrays = to_matrix(form)
    compiled, _ = compile_to_arrays(form)
    arrays.a_value[-1] += 0.5
    arrays.col_upper[0] += 1
    found = differences(arrays, compiled)
    assert "col_upper" in found and f"row {arrays.num_rows - 1}" in found


def test_every_family_names_its_rows_after_the_rule_and_the_entity() -> None:
    form = prepared_formulation("11-cap-dc-interface")
    assert [rows.name for rows in form.families] == [family.__name__ for family in FORMULATION]
    for rows in form.families:
        assert all(len(key) == len(rows.key_names) for key in rows.keys), rows.name
        assert len(set(rows.keys)) == len(rows.keys), rows.name
    balance = next(rows for rows in form.families if rows.name == "balance")
    assert balance.key_names == ("area", "product", "block") and balance.keys


def test_dkw_model_writes_a_readable_lp_file(tmp_path, capsys) -> None:
    lp = tmp_path / "model.lp"
    assert main(["model", str(CASES_DIR / "04-startup-linked.json"), "--lp", str(lp)]) == 0
    text = lp.read_text()
    assert "\nmin \n" in text and "\nbinary\n" in text and "q(start)" in text and "v(unit_1)" in text
    for family in ("accept_upper", "startup_link", "balance"):
        assert f"{family}(" in text
    out = capsys.readouterr().out
    assert "balance" in out and str(lp) in out


def test_a_built_family_holds_its_terms_as_arrays_and_takes_no_more_rows() -> None:
    """`formulate` compacts each family (the formulation lives through the solve; lists cost 4-5 times the
    bytes): terms and bounds are numpy arrays whose rows read back as they were added, and adding a row
    afterwards is refused rather than lost from the arrays."""
    form = prepared_formulation("06-composite")
    balance = next(rows for rows in form.families if rows.name == "balance")
    assert isinstance(balance.cols, np.ndarray) and balance.cols.dtype == np.int32
    assert len(balance.lengths) == len(balance.keys) and int(balance.lengths.sum()) == len(balance.cols)
    key, lower, upper, cols, vals = next(iter(balance.terms()))
    assert key == balance.keys[0] and len(cols) == len(vals) == balance.lengths[0]
    with pytest.raises(RuntimeError, match="balance"):
        balance.add(("X", "P", 0), 0.0, 1.0, [0], [1.0])
