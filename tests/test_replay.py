"""Offline replay (issue 6): the example week under baseline and no-cross-area, with real HiGHS solves.

The first three days of the week (the first with its historical result, the second a scarce day) are
cleared once per module over a process pool (6 day × scenario runs; the whole week is what the README's
report shows, and every day of it is checked against the schema); the other tests read what it wrote,
rerun it (everything skipped), and replay two of its days on a Dask LocalCluster. All slow (a process
pool over national-size days); the fast lane replays through test_replay_scenarios.py.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from dkw.clearing.document import load_auction, load_auction_file
from dkw.clearing.replay.eprx import read_eprx_csv
from dkw.clearing.replay.runner import ReplayConfig, replay
from dkw.clearing.replay.summary import SUMMARY_COLUMNS, read_summary_csv
from dkw.clearing.verify import verify_result

WEEK = Path(__file__).resolve().parents[1] / "examples" / "replay-week"
EPRX = WEEK / "SYNTHETIC-eprx-2026-10-3-1.csv"
DATES = [f"2026-10-{d:02d}" for d in range(5, 8)]
SCENARIOS = ["baseline", "no-cross-area"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    src = tmp_path_factory.mktemp("week-in")
    for date in DATES:
        shutil.copy(WEEK / f"{date}.json", src / f"{date}.json")
    shutil.copy(WEEK / f"{DATES[0]}.result.json", src / f"{DATES[0]}.result.json")
    out = tmp_path_factory.mktemp("replay-week")
    config = ReplayConfig(src, out, scenarios=["no-cross-area"], workers=2, eprx_files=[EPRX])
    outcome = replay(config, log=lambda _: None)
    return config, outcome


def test_week_writes_summary_results_and_report(week):
    config, outcome = week
    out = config.out_dir
    assert outcome.ok and outcome.skipped == []
    assert sorted(outcome.cleared) == sorted((d, s) for d in DATES for s in SCENARIOS)
    for date in DATES:
        for scenario in SCENARIOS:
            doc = json.loads((out / "days" / date / f"{scenario}.result.json").read_text())
            assert doc["format"] == "jp-balancing-result/1" and doc["status"] == "OPTIMAL"
            assert doc["replay"]["scenario"] == scenario
        assert (out / "days" / date / "no-cross-area.auction.json").is_file()
        assert not (out / "days" / date / "baseline.auction.json").exists()  # the input file is the auction
    header = (out / "summary.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == list(SUMMARY_COLUMNS)
    rows = read_summary_csv(out / "summary.csv")
    # one row per date × scenario × area × product (9 areas, 2 products), plus the one historical day
    assert len(rows) == len(DATES) * len(SCENARIOS) * 9 * 2 + 9 * 2
    report = (out / "report.md").read_text(encoding="utf-8")
    for png in ("cost_by_area", "shortfall_by_area", "price_duration", "history", "eprx"):
        assert f"(plots/{png}.png)" in report
        assert (out / "plots" / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "dkw against the historical results" in report and "synthetic data, not EPRX's" in report


def _auction_for(out: Path, date: str, scenario: str):
    if scenario == "baseline":
        return load_auction_file(WEEK / f"{date}.json")
    return load_auction(json.loads((out / "days" / date / f"{scenario}.auction.json").read_text()))


def test_summary_costs_equal_the_verified_results(week):
    config, _ = week
    out = config.out_dir
    rows = read_summary_csv(out / "summary.csv")
    by_run: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by_run[(r["trading_date"], r["scenario"])].append(r)
    for date in DATES:
        for scenario in SCENARIOS:
            auction = _auction_for(out, date, scenario)
            result = json.loads((out / "days" / date / f"{scenario}.result.json").read_text())
            left_out = {r["bid"] for r in result["rejected_bids"]}
            assert verify_result(auction, result, left_out=left_out) == []  # independent re-check
            run = by_run[(date, scenario)]
            total = sum(r["procurement_cost_yen"] for r in run)
            assert total == pytest.approx(result["procurement_cost_yen"], rel=1e-9)
            # by resource location, a composite bid's cost split equally over its products
            bids = {b.id: b for b in auction.bids}
            expected: dict[tuple[str, str], float] = defaultdict(float)
            for award in result["awards"]:
                bid = bids[award["bid"]]
                cost = bid.price_yen_per_kw_h * auction.hours_per_block * len(bid.blocks) * award["kw"]
                for p in bid.products:
                    expected[(bid.area, p)] += cost / len(bid.products)
            for r in run:
                own = expected[(r["area"], r["product"])]
                assert r["procurement_cost_yen"] == pytest.approx(own, rel=1e-9, abs=1e-6)
            assert sum(r["shortfall_kw"] for r in run) == pytest.approx(sum(s["kw"] for s in result["shortfalls"]))
            assert sum(r["requirement_kw"] for r in run) == pytest.approx(sum(q.kw for q in auction.requirements))
    base = {(r["trading_date"], r["area"], r["product"]): r["procurement_cost_yen"]
            for r in rows if r["scenario"] == "baseline"}
    for r in rows:
        assert r["cost_delta_vs_baseline_yen"] == pytest.approx(
            r["procurement_cost_yen"] - base[(r["trading_date"], r["area"], r["product"])], abs=1e-5)


def test_no_cross_area_never_costs_less_than_baseline(week):
    """Zero line capacity only shrinks the feasible set, so the optimal objective (procurement + start-up +
    shortfall penalty) cannot fall; procurement cost alone may (buying less and running short is allowed)."""
    config, _ = week
    for date in DATES:
        base = json.loads((config.out_dir / "days" / date / "baseline.result.json").read_text())
        isolated = json.loads((config.out_dir / "days" / date / "no-cross-area.result.json").read_text())
        assert isolated["flows"] == []
        assert base["flows"] != []
        # both proven within the relative gap of 1e-6 of their optimum
        assert isolated["objective_yen"] >= base["objective_yen"] * (1 - 2e-6), date
    assert any(json.loads((config.out_dir / "days" / d / "no-cross-area.result.json").read_text())["objective_yen"]
               > json.loads((config.out_dir / "days" / d / "baseline.result.json").read_text())["objective_yen"]
               for d in DATES)


def test_rerun_skips_finished_days(week):
    config, first = week
    results = sorted((config.out_dir / "days").rglob("*.result.json"))
    stamps = {p: p.stat().st_mtime_ns for p in results}
    summary = (config.out_dir / "summary.csv").read_bytes()
    again = replay(config, log=lambda _: None)
    assert again.cleared == [] and again.failed == []
    assert sorted(again.skipped) == sorted(first.cleared)
    assert {p: p.stat().st_mtime_ns for p in results} == stamps
    assert (config.out_dir / "summary.csv").read_bytes() == summary


def test_a_changed_day_is_cleared_again_and_force_redoes(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    doc = json.loads((WEEK / "2026-10-09.json").read_text())
    (src / "day.json").write_text(json.dumps(doc))
    config = ReplayConfig(src, tmp_path / "out", workers=1, report=False)
    assert replay(config, log=lambda _: None).cleared == [("2026-10-09", "baseline")]
    assert replay(config, log=lambda _: None).skipped == [("2026-10-09", "baseline")]
    doc["requirements"][0]["kw"] += 1000
    (src / "day.json").write_text(json.dumps(doc))
    changed = replay(config, log=lambda _: None)
    assert changed.cleared == [("2026-10-09", "baseline")]
    config.force = True
    assert replay(config, log=lambda _: None).cleared == [("2026-10-09", "baseline")]


def test_dask_local_cluster_gives_the_same_summary_as_the_pool(week, tmp_path):
    distributed = pytest.importorskip("distributed")
    config, _ = week
    days = ["2026-10-06"]
    src = tmp_path / "in"
    src.mkdir()
    for d in days:
        shutil.copy(WEEK / f"{d}.json", src / f"{d}.json")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        outcome = replay(ReplayConfig(src, tmp_path / "out", scenarios=["no-cross-area"],
                                      dask_address=cluster.scheduler_address, report=False), log=lambda _: None)
    assert outcome.ok and len(outcome.cleared) == 2
    pool_lines = [line for line in (config.out_dir / "summary.csv").read_text().splitlines()
                  if line.split(",")[0] in days and line.split(",")[1] in SCENARIOS]
    dask_lines = (tmp_path / "out" / "summary.csv").read_text().splitlines()[1:]
    assert dask_lines == pool_lines


def test_eprx_comparison_lines_up_blocks_areas_and_units(week):
    config, _ = week
    table = read_eprx_csv(EPRX)
    assert table.synthetic and table.product == "tertiary1" and table.blocks_per_day == 48
    assert table.areas[0] == "hokkaido" and len(table.areas) == 9
    text = (config.out_dir / "eprx_comparison.csv").read_text(encoding="utf-8").splitlines()
    header = text[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in text[1:]]
    assert len(rows) == len(DATES) * 48 * 9  # 48 half-hour blocks × the 9 mainland areas
    for r in rows:  # the synthetic file carries the auctions' own requirements: they must line up exactly
        assert float(r["eprx_requirement_mw"]) == pytest.approx(float(r["dkw_requirement_mw"]), abs=1e-6)
    first = next(r for r in rows if r["trading_date"] == "2026-10-05" and r["block"] == "0" and r["area"] == "tokyo")
    auction = load_auction_file(WEEK / "2026-10-05.json")
    req = next(q.kw for q in auction.requirements if (q.area, q.product, q.block) == ("tokyo", "tertiary1", 0))
    assert float(first["dkw_requirement_mw"]) == pytest.approx(req / 1000)
    assert first["eprx_block"] == "B01"
