"""`dkw bench` end to end on a tiny document: both paths run in their own processes, the same objective
is checked, and results.json / results.md are written. No timing is asserted."""

from __future__ import annotations

import gzip
import json

import pytest
from conftest import CASES_DIR

from dkw.cli import main


@pytest.mark.slow
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
    written = (tmp_path / "results.md").read_text()
    assert "| 3 (06-composite.json) |" in written
    (tmp_path / "results.md").unlink()
    assert main(["bench", "--render", "--out", str(tmp_path)]) == 0  # the same tables from results.json alone
    assert (tmp_path / "results.md").read_text() == written
    assert main(["bench", "--render", "--out", str(tmp_path / "none")]) == 2


def test_bench_refuses_bad_sizes(tmp_path, capsys) -> None:
    assert main(["bench", "--sizes", "10,-5", "--out", str(tmp_path)]) == 2
    assert "--sizes" in capsys.readouterr().err


def test_gap_over_time_and_its_split_against_the_reference() -> None:
    """The trace's figures at each checkpoint, the first time each gap target is met, and the split:
    incumbent above the reference incumbent, bound below the reference bound."""
    from dkw.bench.gaps import load_references, summarise

    trace = [[2.0, 1100.0, 900.0], [30.0, 1010.0, 990.0], [200.0, 1000.0, 1000.0 - 0.01]]
    over = summarise(trace, {"incumbent": 1000.0, "bound": 995.0})
    at10, at60, at300 = (over["checkpoints"][k] for k in ("10", "60", "300"))
    assert at10["gap"] == pytest.approx(200 / 1100) and at60["gap"] == pytest.approx(20 / 1010)
    assert at10["incumbent_above_reference"] == pytest.approx(0.1)
    assert at60["bound_below_reference"] == pytest.approx(5 / 1000)
    assert at300["bound_below_reference"] < 0  # better than the reference's bound
    assert over["time_to_gap_0.0001"] == 200.0 and over["time_to_gap_1e-06"] is None
    assert summarise([], None)["checkpoints"]["10"] is None
    shipped = load_references()
    assert all(ref["bound"] <= ref["incumbent"] and ref["how"] for ref in shipped.values())


def test_a_run_whose_limit_is_the_checkpoint_reports_its_result_there() -> None:
    """The limit covers the whole clearing, so a 300 s run ends a little before 300 s: its result is the
    300 s figure. A run with a 60 s limit says nothing about 300 s."""
    from dkw.bench.command import gap_markdown
    from dkw.bench.gaps import summarise

    def row(limit: float) -> dict:
        trace = [[5.0, 1100.0, 900.0], [limit - 4.0, 1010.0, 1000.0]]
        return {"bids": 5000, "fast": {"status": "TIME_LIMIT_FEASIBLE", "wall_s": limit - 3.0, "time_limit_s": limit,
                                       "over_time": summarise(trace, None)}}

    lines = gap_markdown({"results": [row(300.0), row(60.0)]}).splitlines()
    full, short = (line for line in lines if line.startswith("| 5,000 |"))
    assert full.split(" | ")[3] == "0.990%"  # at 300 s: its result
    assert short.split(" | ")[2] == "0.990%" and short.split(" | ")[3] == "–"


@pytest.mark.slow
def test_mid_size_bench_runs_both_paths_per_highs_seed(tmp_path) -> None:
    """`dkw bench --mid-size` on a tiny generated document: each path once per HiGHS seed, every proven
    optimum the same, the summary counting the seeds where the fast path was not slower."""
    code = main(["bench", "--mid-size", "--mid-documents", "5:60:3", "--highs-seeds", "2",
                 "--straight-limit", "60", "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    (row,) = doc["results"]
    assert (row["seed"], row["bids"], row["blocks"]) == (5, 60, 3)
    for method in ("straight", "fast"):
        assert [r["highs_seed"] for r in row["runs"][method]] == [0, 1]
        assert all(r["status"] == "OPTIMAL" for r in row["runs"][method])
    summary = row["summary"]
    assert summary["seeds_compared"] == 2 and 0 <= summary["seeds_fast_not_slower"] <= 2
    assert summary["objective_spread_rel"] <= 1e-6
    assert row["variant"] == "full" and summary["fast_over_straight"] > 0
    assert "| 5, 60, 3, full |" in (tmp_path / "results.md").read_text()


def test_mid_size_summary_compares_the_same_seed_and_flags_disagreeing_optima() -> None:
    from dkw.bench.midsize import summarise

    def run(seed: int, seconds: float, objective: float) -> dict:
        return {"highs_seed": seed, "end_to_end_s": seconds, "nodes": 10, "status": "OPTIMAL", "objective_yen": objective}

    summary = summarise({"straight": [run(0, 10.0, 100.0), run(1, 30.0, 100.0)],
                         "fast": [run(1, 20.0, 100.0), run(0, 12.0, 100.0001)]})
    assert summary["seeds_fast_not_slower"] == 1  # seed 1: 20 ≤ 30; seed 0: 12 > 10
    assert summary["straight"]["median_s"] == 20.0 and summary["fast"]["worst_s"] == 20.0
    assert summary["objective_spread_rel"] == pytest.approx(1e-6)
    assert summary["fast_over_straight"] == pytest.approx(16.0 / 20.0)  # medians: 16 s over 20 s


def test_mid_size_documents_name_what_they_hold() -> None:
    """SEED:BIDS:BLOCKS is casegen's full mix; a fourth part leaves out links, or block bids (and with them
    start-up costs) and links: the generated documents differ in exactly that."""
    from dkw.bench.casegen import gen
    from dkw.bench.midsize import VARIANTS, parse_documents

    assert parse_documents("1:300:12, 2:300:12:plain,3:300:6:nolinks") == [
        (1, 300, 12, "full"), (2, 300, 12, "plain"), (3, 300, 6, "nolinks")]
    full, plain = gen(2, 300, blocks=12), gen(2, 300, blocks=12, **VARIANTS["plain"])
    nolinks = gen(2, 300, blocks=12, **VARIANTS["nolinks"])
    assert any(len(b["blocks"]) > 1 for b in full["bids"]) and any("parent" in b for b in full["bids"])
    assert any(r.get("startup_cost_yen") for r in full["resources"])
    assert any(len(b["blocks"]) > 1 for b in nolinks["bids"]) and not any("parent" in b for b in nolinks["bids"])
    assert all(len(b["blocks"]) == 1 and "parent" not in b for b in plain["bids"])
    assert not any(r.get("startup_cost_yen") for r in plain["resources"])


def test_mid_size_bench_refuses_a_malformed_document_list(tmp_path, capsys) -> None:
    assert main(["bench", "--mid-size", "--mid-documents", "1:1200", "--out", str(tmp_path)]) == 2
    assert "'1:1200'" in capsys.readouterr().err
    assert main(["bench", "--mid-size", "--mid-documents", "1:1200:12:dense", "--out", str(tmp_path)]) == 2
    assert "variant must be one of full, nolinks, plain" in capsys.readouterr().err


def test_bench_passes_a_memory_ceiling_to_every_clearing(tmp_path) -> None:
    code = main(["bench", "--sizes", "", "--documents", str(CASES_DIR / "06-composite.json"), "--methods", "fast",
                 "--memory-limit", "4096", "--out", str(tmp_path), "--fast-limit", "60"])
    assert code == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["settings"]["memory_limit_mb"] == 4096
    assert doc["results"][0]["fast"]["status"] == "OPTIMAL"
    assert doc["results"][0]["fast"]["memory_limit_mb"] == 4096  # the clearing itself had it
    assert "memory ceiling 4,096 MB" in (tmp_path / "results.md").read_text()


def test_cbc_crosscheck_verifies_a_solution_file_of_the_written_model(tmp_path, capsys) -> None:
    """The cross-check reads another solver's solution of the MPS it wrote, in CBC's `-solu` format, back
    into the model and through the independent verifier: HiGHS's optimum of that MPS, written in that
    format, passes at the shared case's optimum; the same file with one award's kW halved does not."""
    import highspy

    from dkw.bench.experiments.cbc_crosscheck import main as crosscheck

    case = CASES_DIR / "04-startup-linked.json"
    mps = tmp_path / "model.mps"
    assert crosscheck(["mps", str(case), str(mps)]) == 0
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.readModel(str(mps))
    highs.run()
    x = list(highs.getSolution().col_value)
    lines = [f"Optimal - objective value {highs.getInfo().objective_function_value}"]
    lines += [f"{j:7d} c{j:<16d} {v:.10g} 0" for j, v in enumerate(x) if abs(v) > 1e-9]
    solution = tmp_path / "model.sol"
    solution.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert crosscheck(["verify", str(case), str(solution)]) == 0
    out = capsys.readouterr().out
    expected = json.loads((CASES_DIR / "expected.json").read_text())["04-startup-linked"]["objective_yen"]
    assert "no findings" in out and f"objective_yen {expected:,.2f}" in out

    biggest = max(range(len(x)), key=lambda j: x[j])  # a kW figure (a binary is at most 1)
    assert x[biggest] > 1
    lines = [line if not line.split()[1] == f"c{biggest}" else f"{biggest:7d} c{biggest} {x[biggest] / 2} 0"
             for line in lines]
    solution.write_text("\n".join(lines) + "\n")
    assert crosscheck(["verify", str(case), str(solution)]) == 1
    assert "findings" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_puts_scip_beside_dkw_on_the_same_document(tmp_path) -> None:
    """`dkw bench --peers scip` (issue 25, item 2) on a tiny generated auction: SCIP's clearing passes the
    verifier, its figures are in the result's terms (clearing ≥ bound, both within 1e-6 of dkw's proven
    optimum of the same document), and results.md puts it beside dkw with the core count."""
    pytest.importorskip("pyscipopt", reason='SCIP is an optional peer: pip install -e ".[bench]"')
    from conftest import generated_auction

    from dkw.clearing.engine import clear
    from dkw.solvers.api import SolveOptions

    code = main(["bench", "--sizes", "200", "--seed", "2", "--methods", "fast", "--fast-limit", "10",
                 "--peers", "scip", "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["machine"]["scip"].startswith("SCIP") and doc["settings"]["peers"] == ["scip"]
    (row,) = doc["results"]
    scip = row["peers"]["scip"]
    assert scip["status"] == "OPTIMAL" and scip["findings"] == [] and scip["threads"] == 1, scip
    assert scip["peak_rss_mb"] > 0 and scip["time_limit_s"] == 10
    assert scip["bound"] <= scip["objective_yen"]
    optimum = clear(generated_auction(2, 200), SolveOptions(time_limit_s=None), explain_options=False)
    assert optimum.status == "OPTIMAL"
    assert scip["objective_yen"] == pytest.approx(optimum.objective_yen, rel=1e-6)
    assert scip["bound"] == pytest.approx(optimum.objective_yen, rel=1e-6)
    assert scip["bound"] <= optimum.objective_yen + 1e-6  # a proven bound on the real objective
    fast = row["fast"]
    assert fast["bound"] <= optimum.objective_yen + 1e-6 <= fast["objective_yen"] + 1e-6 * optimum.objective_yen
    written = (tmp_path / "results.md").read_text()
    assert f"Peers side by side ({doc['machine']['cores']} cores" in written
    assert "| 200 | 10 s | dkw |" in written and "| 200 | 10 s | SCIP | OPTIMAL |" in written
    (tmp_path / "results.md").unlink()
    assert main(["bench", "--render", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "results.md").read_text() == written


@pytest.mark.slow
def test_bench_puts_cbc_beside_dkw_on_the_same_document(tmp_path) -> None:
    """`dkw bench --peers cbc` ("CBC where it fits"): the binary pulp ships, on the same tiny auction; its
    point passes the verifier and its figures, in the result's terms, bracket dkw's proven optimum."""
    pytest.importorskip("pulp", reason='CBC is an optional peer: pip install -e ".[bench]"')
    from dkw.bench.peers import cbc_binary

    if cbc_binary() is None:
        pytest.skip("pulp ships no CBC binary for this platform")
    from conftest import generated_auction

    from dkw.clearing.engine import clear
    from dkw.solvers.api import SolveOptions

    assert main(["bench", "--sizes", "200", "--seed", "2", "--methods", "fast", "--fast-limit", "10",
                 "--peers", "cbc", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["machine"]["cbc"].startswith("CBC 2.")
    cbc = doc["results"][0]["peers"]["cbc"]
    assert cbc["status"] == "OPTIMAL" and cbc["findings"] == [] and cbc["threads"] == 1, cbc
    optimum = clear(generated_auction(2, 200), SolveOptions(time_limit_s=None), explain_options=False)
    assert cbc["objective_yen"] == pytest.approx(optimum.objective_yen, rel=1e-6)
    assert cbc["bound"] <= optimum.objective_yen + 1e-6 and cbc["bound"] == pytest.approx(optimum.objective_yen, rel=1e-6)
    assert "| 200 | 10 s | CBC | OPTIMAL |" in (tmp_path / "results.md").read_text()


def test_bench_peers_cbc_without_its_binary_says_how_to_install_it(tmp_path, capsys, monkeypatch) -> None:
    import dkw.bench.command

    monkeypatch.setattr(dkw.bench.command, "cbc_binary", lambda: None)
    assert main(["bench", "--sizes", "200", "--peers", "cbc", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pulp" in err[0] and 'pip install -e ".[bench]"' in err[0]
    assert not (tmp_path / "results.json").exists()


def test_bench_peers_without_pyscipopt_say_how_to_install_it(tmp_path, capsys, monkeypatch) -> None:
    import dkw.bench.command

    monkeypatch.setattr(dkw.bench.command, "scip_available", lambda: False)
    assert main(["bench", "--sizes", "200", "--peers", "scip", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install -e ".[bench]"' in err[0]
    assert not (tmp_path / "results.json").exists()
    assert main(["bench", "--sizes", "200", "--peers", "cplex", "--out", str(tmp_path)]) == 2
    assert "--peers" in capsys.readouterr().err


def test_a_scip_reference_run_keeps_its_point_and_counts_cpu_seconds(tmp_path, capsys) -> None:
    """`python -m dkw.bench.peers scip DOC LIMIT --cpu-clock --solution X.npy` (the long reference runs of
    bench/reference.json): the point saved is the one verified, its cost the row's clearing."""
    pytest.importorskip("pyscipopt", reason='SCIP is an optional peer: pip install -e ".[bench]"')
    import numpy as np

    from dkw.bench.experiments.cbc_crosscheck import clearing_model
    from dkw.bench.peers import main as peers_main

    case = CASES_DIR / "04-startup-linked.json"
    point = tmp_path / "scip.npy"
    assert peers_main(["scip", str(case), "20", "--cpu-clock", "--solution", str(point)]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = json.loads((CASES_DIR / "expected.json").read_text())["04-startup-linked"]["objective_yen"]
    assert row["status"] == "OPTIMAL" and row["findings"] == [] and row["objective_yen"] == pytest.approx(expected)
    _, _, mm = clearing_model(case)
    assert np.load(point).shape == (mm.num_cols,)
    # that point, gzipped, as the next run's first solution (--start), with a tighter tolerance (--feastol)
    zipped = tmp_path / "scip.npy.gz"
    zipped.write_bytes(gzip.compress(point.read_bytes()))
    assert peers_main(["scip", str(case), "20", "--start", str(zipped), "--feastol", "1e-9"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["start"] == {"file": "scip.npy.gz", "accepted": True} and again["feastol"] == 1e-9
    assert again["objective_yen"] == pytest.approx(expected)
    assert peers_main(["scip", str(case)]) == 2


def test_median_over_seeds_takes_the_middle_run_by_gap_and_keeps_every_seed(monkeypatch) -> None:
    """The bench's median over HiGHS seeds: each seed goes to its own run as --random-seed; the row is the
    middle run by gap (of an even count the worse of the middle two; a crashed run counts as the worst)."""
    import dkw.bench.run_one as run_one

    gaps = {"0": 0.0029, "1": 0.0018, "2": None, "3": 0.0020}
    seen: list[list[str]] = []

    def fake_measure(path, method, limit, show_progress, options):
        seen.append(list(options))
        seed = options[options.index("--random-seed") + 1]
        if gaps[seed] is None:
            return {"method": method, "status": "CRASHED", "error": "killed"}
        return {"method": method, "status": "TIME_LIMIT_FEASIBLE", "gap": gaps[seed], "objective_yen": 1e9,
                "bound": 1e9 * (1 - gaps[seed]), "end_to_end_s": 60.0, "peak_rss_mb": 100.0}

    monkeypatch.setattr(run_one, "measure", fake_measure)
    row = run_one.median_over_seeds(None, "fast", 60, False, ["--memory-limit", "900"], 3)
    assert seen == [["--memory-limit", "900", "--random-seed", str(k)] for k in range(3)]
    assert row["random_seed"] == 0 and row["gap"] == 0.0029  # 0.0018 < 0.0029 < crashed
    assert [r["random_seed"] for r in row["seed_runs"]] == [0, 1, 2]
    assert row["seed_runs"][2]["status"] == "CRASHED"
    four = run_one.median_over_seeds(None, "fast", 60, False, [], 4)
    assert four["random_seed"] == 0  # 0.0018, 0.0020, 0.0029, crashed: the worse of the middle two


def test_bench_refuses_seeds_with_repeats(tmp_path, capsys) -> None:
    assert main(["bench", "--sizes", "200", "--highs-seeds", "3", "--repeat", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--highs-seeds" in err[0] and "--repeat" in err[0]
    assert main(["bench", "--sizes", "200", "--highs-seeds", "0", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "results.json").exists()


@pytest.mark.slow
def test_bench_runs_dkw_and_highs_over_seeds_side_by_side(tmp_path) -> None:
    """`dkw bench --peers highs --highs-seeds 3`: dkw and HiGHS straight once per seed, each row the median
    with every seed's figures, and results.md says so and lists each seed's gap."""
    assert main(["bench", "--sizes", "200", "--seed", "2", "--methods", "fast", "--fast-limit", "60",
                 "--peers", "highs", "--highs-seeds", "3", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["settings"]["highs_seeds"] == 3
    (row,) = doc["results"]
    for run in (row["fast"], row["peers"]["highs"]):
        assert [r["random_seed"] for r in run["seed_runs"]] == [0, 1, 2]
        # on a loaded machine a seed may stop at the limit: feasible all the same, with its gap
        assert all(r["status"] in ("OPTIMAL", "TIME_LIMIT_FEASIBLE") for r in run["seed_runs"]), run["seed_runs"]
        gaps = sorted(r["gap"] for r in run["seed_runs"])
        assert run["gap"] == gaps[1] and run["seed_runs"][run["random_seed"]]["gap"] == run["gap"]
    # the seeds that prove optimality prove the same optimum
    proven = [r["objective_yen"] for r in row["fast"]["seed_runs"] + row["peers"]["highs"]["seed_runs"]
              if r["status"] == "OPTIMAL"]
    assert proven and max(proven) == pytest.approx(min(proven), rel=1e-6)
    written = (tmp_path / "results.md").read_text()
    assert "the median of HiGHS seeds 0–2" in written and written.count("(seeds ") == 2
