"""Shared fixtures: TPC-H SF 0.01 data generated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import tpch

# Tests run each workflow afresh; tests/test_program_cache.py turns the compiled-program cache on where it is tested.
os.environ.setdefault("MUSKETEER_CACHE", "off")

TPCH_TEST_SF = 0.01

#: A two-table join the cost-model, report and browser tests plan and run.
SMALL_JOIN_SQL = ("SELECT d.name, SUM(f.v) AS total\nFROM f JOIN d ON f.k = d.dk\n"
                  "WHERE f.v < 500\nGROUP BY d.name\nORDER BY d.name;\n")


def write_small_join(root: Path, rows: int = 1000) -> Path:
    """root/q.sql (SMALL_JOIN_SQL) over root/data/{f,d}.parquet: `rows` fact
    rows with keys 0-9 and a 10-row dimension table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = root / "data"
    data.mkdir()
    pq.write_table(pa.table({"k": [i % 10 for i in range(rows)], "v": [float(i) for i in range(rows)]}),
                   data / "f.parquet")
    pq.write_table(pa.table({"dk": list(range(10)), "name": [f"n{i}" for i in range(10)]}), data / "d.parquet")
    (root / "q.sql").write_text(SMALL_JOIN_SQL)
    return root


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    """The small join workflow, with the cost model's statistics caches cleared."""
    from musketeer.cost_model.stats import clear_caches

    clear_caches()
    return write_small_join(tmp_path)


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
