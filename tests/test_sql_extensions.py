"""SQL constructs checked against DuckDB on the local engine where DuckDB
cannot run our text as it is (so they are not conformance workflows), or
where a small focused query says more than a workflow file.

The engines share these constructs' code paths with the conformance
workflows (tests/workflows/*.sql), which run on every engine.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from musketeer import api
from tests import tpch
from tests.conformance import data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return data.write(tmp_path_factory.mktemp("ext") / "data")


@pytest.fixture(scope="module")
def con(data_dir: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    for name in data.TABLES:
        c.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{data_dir / name}.parquet')")
    return c


def ours(sql: str, data_dir: Path, tmp_path: Path, backend: str = "local"):  # type: ignore[no-untyped-def]
    path = tmp_path / "q.sql"
    path.write_text(sql)
    return api.execute(path, backend=backend, data_dir=str(data_dir)).result.outputs["result"]


def check(sql: str, oracle: str, data_dir: Path, tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    expected = tpch.arrow_to_pandas(con.execute(oracle).to_arrow_table())
    tpch.assert_query_result(ours(sql, data_dir, tmp_path), expected, oracle)


def test_count_distinct_over_several_columns(data_dir: Path, tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """COUNT(DISTINCT a, b) counts distinct tuples without NULLs (DuckDB has
    no such call: the oracle counts non-NULL row values)."""
    check("SELECT region, count(DISTINCT e.dept_id, active) AS n, count(DISTINCT name, hired) AS m "
          "FROM emp e LEFT JOIN dept d ON e.dept_id = d.id GROUP BY region ORDER BY region NULLS FIRST",
          "SELECT region, count(DISTINCT CASE WHEN e.dept_id IS NOT NULL AND active IS NOT NULL "
          "THEN (e.dept_id, active) END) AS n, count(DISTINCT CASE WHEN name IS NOT NULL AND hired IS NOT NULL "
          "THEN (name, hired) END) AS m FROM emp e LEFT JOIN dept d ON e.dept_id = d.id GROUP BY region "
          "ORDER BY region NULLS FIRST", data_dir, tmp_path, con)


def test_global_holistic_aggregates_and_filter_over_empty_input(data_dir: Path, tmp_path: Path,
                                                                 con: duckdb.DuckDBPyConnection) -> None:
    sql = ("SELECT median(salary) AS m, string_agg(name, '|') AS s, count(*) FILTER (WHERE active) AS n, "
           "stddev_samp(salary) AS sd, quantile_disc(hired, 0.5) AS h FROM emp WHERE id < 0")
    check(sql, sql, data_dir, tmp_path, con)
    sql = ("SELECT median(salary) AS m, string_agg(name, '|' ORDER BY id) AS s, "
           "count(*) FILTER (WHERE active) AS n, round(stddev_samp(salary), 6) AS sd, "
           "quantile_disc(hired, 0.5) AS h, var_pop(bonus) AS vb FROM emp")
    check(sql, sql, data_dir, tmp_path, con)


SEVERAL_ROWS = [
    "SELECT id, (SELECT s.amount FROM sales s WHERE s.emp_id = e.id) AS a FROM emp e ORDER BY id",
    "SELECT id FROM emp WHERE salary > (SELECT salary FROM emp WHERE dept_id = 20)",
]


@pytest.mark.parametrize("backend", list(api.BACKENDS))
@pytest.mark.parametrize("sql", SEVERAL_ROWS, ids=["correlated", "uncorrelated"])
def test_scalar_subquery_with_several_rows_is_a_data_error(backend: str, sql: str, data_dir: Path, tmp_path: Path,
                                                           con: duckdb.DuckDBPyConnection) -> None:
    """As in DuckDB (and PostgreSQL): a run-time error, one line, on every engine."""
    from musketeer.ir import DataError
    from tests.conformance.test_conformance import require_backend

    require_backend(backend)
    with pytest.raises(duckdb.Error, match="More than one row returned by a subquery"):
        con.execute(sql).fetchall()
    with pytest.raises(DataError) as info:
        ours(sql, data_dir, tmp_path, backend)
    assert str(info.value.message).startswith("more than one row returned by a subquery used as an expression")


def test_recursive_cte_that_never_ends_stops_at_the_guard_and_says_so(data_dir: Path, tmp_path: Path) -> None:
    """An unbounded UNION ALL recursion runs MAX_ITERATIONS passes, then the
    loop metrics say it did not converge (DuckDB would run until memory ends)."""
    from musketeer.frontends.sql.recursive import MAX_ITERATIONS

    path = tmp_path / "q.sql"
    path.write_text("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT max(n) AS m FROM c")
    run = api.execute(path, backend="local", data_dir=str(data_dir))
    assert run.result.outputs["result"]["m"].tolist() == [MAX_ITERATIONS + 1]
    loops = run.result.metrics["loops"]
    (loop,) = loops.values()
    assert loop["converged"] is False and loop["iterations"] == MAX_ITERATIONS


def test_values_and_statement_errors_are_located(data_dir: Path, tmp_path: Path) -> None:
    from musketeer.ir import MusketeerError

    for sql, message in [
        ("SELECT * FROM (VALUES (1, 2), (3)) t(a, b)", "VALUES rows must all have 2 values"),
        ("SELECT * FROM (VALUES (1), ('x')) t(a)", "mixes int64 and string"),
        ("SELECT * FROM emp FETCH FIRST 2 ROWS WITH TIES", "WITH TIES"),
        ("WITH RECURSIVE r(n) AS (SELECT 1 INTERSECT SELECT n FROM r) SELECT * FROM r", "base UNION"),
    ]:
        with pytest.raises(MusketeerError) as info:
            ours(sql, data_dir, tmp_path)
        assert message in info.value.message, info.value.message
        assert info.value.loc is not None
