"""Shared fixtures: the repository's copy of the shared cases and a helper that clears and verifies."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path

import pytest

from clearing.document import load_auction, load_auction_file
from clearing.engine import clear
from clearing.model import Auction
from clearing.result import ClearingResult
from clearing.verify import verify_result
from solvers.api import SolveOptions

CASES_DIR = Path(__file__).parent / "cases"
EXPECTED = json.loads((CASES_DIR / "expected.json").read_text())


def clear_and_verify(auction: Auction, options: SolveOptions | None = None, **kwargs) -> ClearingResult:
    """Every test that clears also verifies, independently of the model."""
    result = clear(auction, options, **kwargs)
    problems = verify_result(auction, result.to_document(), left_out={r.bid for r in result.left_out})
    assert problems == [], problems
    return result


@pytest.fixture
def case_doc():
    def load(name: str) -> dict:
        return json.loads((CASES_DIR / f"{name}.json").read_text())

    return load


__all__ = ["CASES_DIR", "EXPECTED", "NO_POSTGRES", "TEST_DATABASE_URL", "clear_and_verify", "load_auction",
           "load_auction_file", "pg_schema"]


# ---- storage backends: SQLite always, PostgreSQL when DKW_TEST_DATABASE_URL names a server -------------

#: e.g. postgresql://postgres@127.0.0.1:5432/test (.ci/run sets it when a server answers there)
TEST_DATABASE_URL = os.environ.get("DKW_TEST_DATABASE_URL", "")
NO_POSTGRES = ("DKW_TEST_DATABASE_URL is not set: the PostgreSQL tests are skipped "
               "(.ci/run sets it when a server answers on 127.0.0.1:5432)")


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
