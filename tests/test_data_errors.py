"""Engines agree on data errors (issue 14): a value a CAST cannot convert is
the same one-line DataError, naming the column and the value, on every
engine (exit 2 from the CLI), where DuckDB also reports an error; values
that do convert give DuckDB's answer. Spark's own cast would give NULL,
pyarrow's an internal ArrowInvalid."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musketeer import api
from musketeer.cli import main
from musketeer.ir import DataError
from tests import tpch
from tests.linq_helpers import EVERY_BACKEND


def _table(path: Path, values: list[str | None]) -> Path:
    pq.write_table(pa.table({"id": pa.array(range(len(values)), pa.int64()),
                             "status": pa.array(values, pa.string())}), path)
    return path


def _duckdb(sql: str, data: Path):
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{data}')")
    try:
        return tpch.arrow_to_pandas(con.execute(sql).to_arrow_table())
    finally:
        con.close()


GOOD = [" 10 ", "2.5", "-2.5", "1e3", "+4", None, "0"]


@EVERY_BACKEND
def test_casts_of_strings_that_convert_match_duckdb(tmp_path: Path, backend: str) -> None:
    data = _table(tmp_path / "t.parquet", GOOD)
    sql = ("SELECT id, CAST(status AS BIGINT) AS i, CAST(status AS DOUBLE) AS f, "
           "CAST(status AS DECIMAL(12,2)) AS d FROM t ORDER BY id")
    (tmp_path / "q.sql").write_text(sql + ";\n")
    got = api.run_workflow(tmp_path / "q.sql", backend=backend, tables={"t": str(data)}).outputs["result"]
    tpch.assert_query_result(got, _duckdb(sql, data), sql)
    bools = _table(tmp_path / "b.parquet", ["true", "F", "yes", "n", "1", None])
    sql = "SELECT id, CAST(status AS BOOLEAN) AS b FROM t ORDER BY id"
    (tmp_path / "b.sql").write_text(sql + ";\n")
    got = api.run_workflow(tmp_path / "b.sql", backend=backend, tables={"t": str(bools)}).outputs["result"]
    tpch.assert_query_result(got, _duckdb(sql, bools), sql)


@pytest.mark.parametrize("target,good,bad,ir_type", [
    ("INTEGER", "1", "shipped", "int64"), ("DOUBLE", "1.5", "n/a", "float64"),
    ("DATE", "2023-01-05", "2023-02-30x", "date"), ("BOOLEAN", "true", "maybe", "bool")])
@EVERY_BACKEND
def test_a_bad_cast_is_the_same_data_error_on_every_engine(tmp_path: Path, backend: str, target: str, good: str,
                                                          bad: str,
                                                          ir_type: str, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = _table(tmp_path / "t.parquet", [good, None, bad, good])
    sql = f"SELECT id, CAST(status AS {target}) AS v FROM t"
    with pytest.raises(duckdb.ConversionException):
        _duckdb(sql, data)
    (tmp_path / "q.sql").write_text(sql + ";\n")
    message = f"column 'status': cannot cast {bad!r} to {ir_type}"
    with pytest.raises(DataError) as info:
        api.run_workflow(tmp_path / "q.sql", backend=backend, tables={"t": str(data)})
    assert str(info.value) == message
    monkeypatch.chdir(tmp_path)
    assert main(["run", "q.sql", "--table", f"t={data}", "--backend", backend]) == 2
    assert capsys.readouterr().err.endswith(f"musketeer: error: {message}\n")


def test_compare_writes_its_report_with_the_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """It used to abort on the first engine's error and write no report."""
    data = _table(tmp_path / "t.parquet", ["1", "shipped"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.sql").write_text("SELECT id, CAST(status AS INTEGER) AS n FROM t;\n")
    code = main(["compare", "q.sql", "--table", f"t={data}", "--backends", "local,duckdb", "--report", "r.html"])
    captured = capsys.readouterr()
    message = "column 'status': cannot cast 'shipped' to int64"
    assert code == 2 and captured.err.endswith(f"musketeer: error: {message}\n"), captured.err
    assert captured.out.count(f"failed: {message}") == 2
    assert message.replace("'", "&#39;") in (tmp_path / "r.html").read_text()


def test_compare_flags_an_engine_that_fails_where_another_answers() -> None:
    from musketeer.compare import BackendRun, disagreement

    import pandas as pd

    ok = BackendRun("local", 0.1, 0.1, 1, "", {"result": pd.DataFrame({"n": [1]})})
    failed = BackendRun("dask", 0.1, 0.1, 0, "", {}, error="column 'status': cannot cast 'x' to int64")
    assert disagreement([ok, failed]) == ("results differ: backend dask failed: column 'status': cannot cast 'x' "
                                          "to int64, backend local returned 1 rows")
    assert disagreement([failed, failed]) is None and disagreement([ok, ok]) is None


@EVERY_BACKEND
def test_integer_overflow_is_a_data_error(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """DuckDB errors where an int64 result overflows; the arrow engines raised
    an internal ArrowInvalid (exit 1) and Spark wraps around silently."""
    if backend == "spark":
        request.applymarker(pytest.mark.xfail(strict=True, reason="Spark (ANSI mode off) wraps int64 overflow "
                                                               "around instead of failing"))
    data = tmp_path / "t.parquet"
    pq.write_table(pa.table({"i": pa.array([1, 2], pa.int64())}), data)
    sql = "SELECT i + 9223372036854775806 AS x FROM t"
    with pytest.raises(duckdb.OutOfRangeException):
        _duckdb(sql, data)
    (tmp_path / "q.sql").write_text(sql + ";\n")
    with pytest.raises(DataError, match="^integer overflow: a result does not fit in int64$"):
        api.run_workflow(tmp_path / "q.sql", backend=backend, tables={"t": str(data)})
