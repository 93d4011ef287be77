"""Shared fixtures: TPC-H SF 0.01 data generated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import tpch

# Tests run each workflow afresh; tests/test_program_cache.py turns the compiled-program cache on where it is tested.
os.environ.setdefault("MUSKETEER_CACHE", "off")

TPCH_TEST_SF = 0.01


@pytest.fixture(scope="session")
def tpch_queries() -> dict[int, str]:
    """Query number -> standard TPC-H text (from DuckDB's tpch extension)."""
    return tpch.queries()


@pytest.fixture(scope="session")
def tpch_dir(tmp_path_factory) -> Path:
    """A session directory holding `data/` (the 8 tables as parquet, SF 0.01)
    and `queries/qNN.sql` (the unchanged standard texts)."""
    root = tmp_path_factory.mktemp("tpch")
    tpch.generate(TPCH_TEST_SF, root / "data", fmt="parquet")
    qdir = root / "queries"
    qdir.mkdir()
    for n, sql in tpch.queries().items():
        (qdir / f"q{n:02d}.sql").write_text(sql)
    return root


@pytest.fixture(scope="session")
def tpch_data_dir(tpch_dir) -> Path:
    return tpch_dir / "data"


@pytest.fixture(scope="session")
def tpch_query_file(tpch_dir):
    """n -> path of qNN.sql."""
    return lambda n: tpch_dir / "queries" / f"q{n:02d}.sql"


@pytest.fixture(scope="session")
def tpch_expected(tpch_data_dir):
    """n -> DuckDB's answer to query n over the session data (cached)."""
    queries = tpch.queries()
    con = tpch.duckdb_connection(tpch_data_dir)
    cache: dict[int, object] = {}

    def answer(n: int):
        if n not in cache:
            cache[n] = tpch.duckdb_answer(queries[n], tpch_data_dir, con=con)
        return cache[n]

    yield answer
    con.close()
