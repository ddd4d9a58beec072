"""`dkw bench` end to end on a tiny document: both paths run in their own processes, the same objective
is checked, and results.json / results.md are written. No timing is asserted."""

from __future__ import annotations

import json

from conftest import CASES_DIR

from dkw.cli import main


def test_bench_runs_both_paths_and_writes_results(tmp_path, capsys) -> None:
    code = main(["bench", "--sizes", "", "--documents", str(CASES_DIR / "06-composite.json"),
                 "--out", str(tmp_path), "--straight-limit", "60", "--fast-limit", "60"])
    assert code == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["machine"]["cores"] >= 1
    (row,) = doc["results"]
    assert row["document"] == "06-composite.json"
    assert row["fast"]["status"] == row["straight"]["status"] == "OPTIMAL"
    assert row["comparison"]["same_objective"] is True
    assert row["fast"]["peak_rss_mb"] > 0 and row["fast"]["end_to_end_s"] >= row["fast"]["clear_s"] * 0.5
    assert "| 3 (06-composite.json) |" in (tmp_path / "results.md").read_text()


def test_bench_refuses_bad_sizes(tmp_path, capsys) -> None:
    assert main(["bench", "--sizes", "10,-5", "--out", str(tmp_path)]) == 2
    assert "--sizes" in capsys.readouterr().err
