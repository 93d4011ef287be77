"""`musketeer.read(frame)`: pandas, pyarrow and polars frames as datasets
(checked against DuckDB over the same frame), and the notebook views
(`_repr_html_`) of a Dataset and of a run's result."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from musketeer import col, count, read
from musketeer.ir import MusketeerError
from tests.tpch import assert_same_rows

polars = pytest.importorskip("polars", reason="polars is in the dev extras; install musketeer[polars]")

FRAME = pd.DataFrame({
    "k": pd.array([1, 2, 2, None, 3], dtype="Int64"),
    "v": [1.5, None, 3.0, 4.0, -1.0],
    "s": ["a", "b", None, "d", "a"],
    "d": pd.to_datetime(["2024-01-01", None, "2024-03-01", "2024-01-01", "2024-02-29"]).date,
})
QUERY = "SELECT k, COUNT(*) AS n, SUM(v) AS t, MIN(s) AS first_s FROM frame WHERE s IS NULL OR s <> 'd' " \
        "GROUP BY k ORDER BY k NULLS LAST"


def _dataset(source):
    d = read(source, name="frame")
    return (d.where(d.s.is_null() | (d.s != "d")).group_by("k")
            .agg(n=count(), t=d.v.sum(), first_s=d.s.min()).order_by(col("k")))


@pytest.mark.parametrize("kind", ["pandas", "pyarrow", "polars"])
@pytest.mark.parametrize("backend", ["local", "dask"])
def test_frame_queries_match_duckdb(kind: str, backend: str) -> None:
    source = {"pandas": FRAME, "pyarrow": pa.Table.from_pandas(FRAME, preserve_index=False),
              "polars": polars.from_pandas(FRAME)}[kind]
    con = duckdb.connect()
    con.register("frame", FRAME)
    expected = con.sql(QUERY).df()
    actual = _dataset(source).collect(backend)
    assert_same_rows(actual, expected, order_by=[(0, True)])


def test_empty_frame_and_same_frame_twice() -> None:
    empty = FRAME.iloc[0:0]
    assert len(read(empty).collect("local")) == 0
    a, b = read(FRAME), read(FRAME)
    assert a.op.path == b.op.path  # written once


def test_unsupported_inputs_are_one_line_user_errors() -> None:
    with pytest.raises(MusketeerError, match=r"^read\(\) takes a path .* got builtins\.int$"):
        read(42)
    with pytest.raises(MusketeerError, match=r"column 'xs' has type list<"):
        read(pd.DataFrame({"xs": [[1, 2], [3]]}))


def test_repr_html_of_dataset_and_result() -> None:
    d = read(FRAME, name="frame")
    page = d.where(d.v > 0)._repr_html_()
    assert "<td>k</td><td>int64</td>" in page and "Filter(" in page and "nothing has run" in page
    result = d.where(d.v > 0).run("local")
    page = result._repr_html_()
    con = duckdb.connect()
    con.register("frame", FRAME)
    expected = con.sql("SELECT * FROM frame WHERE v > 0").df()
    assert f"({len(expected)} rows)" in page
    assert "<td>NULL</td>" in page  # s is NULL in one of the rows with v > 0
    assert page.count("<tr>") == len(expected) + 1
