"""`SolveOptions.memory_limit_mb` (`dkw clear --memory-limit`, `dkw serve --memory-limit`): HiGHS has no
memory limit, so a guard on its MIP callback stops branch-and-bound once the process's resident memory
passes 80% of the ceiling. The clearing then ends as at a time limit: the best incumbent, a proven bound
no higher than the optimum, the reason in the termination, and a result that verifies."""

from __future__ import annotations

import json

import pytest
from conftest import clear_and_verify, generated_auction

from dkw.bench.casegen import gen
from dkw.clearing.engine import clear
from dkw.clearing.verify import verify_result
from dkw.cli import main
from dkw.solvers.api import SolveOptions
from dkw.solvers.highs import MEMORY_NOTE


@pytest.fixture(scope="module")
def auction():
    # 400 bids over 6 blocks: 32 components, the big one needing some thousand nodes to prove
    return generated_auction(1, 400, blocks=6)


@pytest.fixture(scope="module")
def optimum(auction) -> float:
    result = clear_and_verify(auction, SolveOptions(time_limit_s=120))
    assert result.status == "OPTIMAL"
    return result.objective_yen


@pytest.mark.slow  # the optimum of 400 bids first
@pytest.mark.parametrize("method", ["fast", "straight"])
def test_a_ceiling_below_the_process_stops_branch_and_bound_with_a_verified_result(auction, optimum, method) -> None:
    result = clear(auction, SolveOptions(time_limit_s=120, method=method, memory_limit_mb=1.0))
    assert MEMORY_NOTE in result.solver.termination
    assert result.status in ("TIME_LIMIT_FEASIBLE", "TIME_LIMIT_NO_SOLUTION")
    assert result.status == "TIME_LIMIT_FEASIBLE" or method == "straight"  # the fast path has its MIP starts
    if result.status == "TIME_LIMIT_FEASIBLE":
        assert verify_result(auction, result.to_document(), left_out={r.bid for r in result.left_out}) == []
        assert result.objective_yen >= optimum * (1 - 1e-9)
    if result.solver.objective_bound is not None:
        assert result.solver.objective_bound <= optimum * (1 + 1e-9)
    assert result.solver.options["memory_limit_mb"] == 1.0


@pytest.mark.slow
def test_a_ceiling_far_above_changes_nothing(auction, optimum) -> None:
    result = clear_and_verify(auction, SolveOptions(time_limit_s=120, memory_limit_mb=1e6))
    assert result.status == "OPTIMAL" and MEMORY_NOTE not in result.solver.termination
    assert result.objective_yen == pytest.approx(optimum, rel=1e-6)


def test_the_command_line_refuses_a_bad_ceiling_and_one_it_cannot_apply(tmp_path, capsys) -> None:
    doc = tmp_path / "auction.json"
    doc.write_text(json.dumps(gen(1, 20, blocks=2)))
    assert main(["clear", str(doc), "--memory-limit", "-5"]) == 2
    assert "memory limit -5.0" in capsys.readouterr().err
    assert main(["clear", str(doc), "--memory-limit", "2048", "--server", "127.0.0.1:1"]) == 2
    assert "--memory-limit applies to a clearing here" in capsys.readouterr().err


def test_the_service_adds_its_ceiling_to_every_clearing_and_refuses_a_bad_one(tmp_path) -> None:
    from dkw.server.command import open_storage
    from dkw.server.limits import options_from_message
    from dkw.server.service import ClearingService
    from dkw.v1 import clearing_pb2 as pb

    options = options_from_message(pb.SolveOptions(), context=None, default_threads=None, memory_limit_mb=1500.0)
    assert options["memory_limit_mb"] == 1500.0 and SolveOptions(**options).memory_limit_mb == 1500.0
    assert "memory_limit_mb" not in options_from_message(pb.SolveOptions(), context=None, default_threads=None)
    storage = open_storage(None, str(tmp_path))
    try:
        with pytest.raises(ValueError, match="--memory-limit"):
            ClearingService(storage, 1, memory_limit_mb=-1.0)
    finally:
        storage.close()


@pytest.mark.slow
def test_replay_passes_its_ceiling_to_every_clearing_and_refuses_a_bad_one(tmp_path, capsys) -> None:
    """`dkw replay --memory-limit MB`: each day × scenario's clearing (each worker's) gets the ceiling."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "day.json").write_text(json.dumps(gen(1, 40, blocks=2)))
    assert main(["replay", str(src), "--out", str(tmp_path / "bad"), "--memory-limit", "0", "--quiet"]) == 2
    assert "--memory-limit" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "out"
    assert main(["replay", str(src), "--out", str(out), "--memory-limit", "1e6", "--workers", "1", "--quiet"]) == 0
    results = sorted((out / "days").rglob("*.result.json"))
    assert results
    for path in results:
        assert json.loads(path.read_text())["solver"]["options"]["memory_limit_mb"] == 1e6
