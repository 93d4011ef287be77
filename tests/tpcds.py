"""TPC-DS support for the correctness tests and the benchmark.

Test/bench support code, not part of the product. Everything TPC-DS comes
from DuckDB's tpcds extension (the ``duckdb-extension-tpcds`` wheel, pinned
to the duckdb version): the data generator (``CALL dsdgen(sf=...)``) and the
99 query texts (``tpcds_queries()``), used unchanged. DuckDB is also the
oracle: ``duckdb_answer`` runs a query over the *same exported parquet
files* the engine under test reads.

Results are compared with the TPC-H helpers (tests/tpch.py:
``assert_same_rows``: multisets, ORDER BY order up to ties, floats within a
relative tolerance). ``query_shape`` here extends TPC-H's for what TPC-DS
writes and TPC-H does not: ``SELECT *`` over a derived table (the ORDER BY
keys are then found among the output columns by name) and ORDER BY keys
that are expressions over output columns (computed from both results, so
the order is still checked on every key); a key that is not computable
from the output ends the keys compared (rows sorted on all keys are sorted
on a prefix).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from tests import tpch

TABLES = (
    "call_center", "catalog_page", "catalog_returns", "catalog_sales", "customer",
    "customer_address", "customer_demographics", "date_dim", "household_demographics",
    "income_band", "inventory", "item", "promotion", "reason", "ship_mode", "store",
    "store_returns", "store_sales", "time_dim", "warehouse", "web_page", "web_returns",
    "web_sales", "web_site",
)
QUERIES = tuple(range(1, 100))


# --------------------------------------------------------------------------- data / queries

def _extension_path() -> Path:
    import duckdb
    import duckdb_extension_tpcds

    base = pathlib.Path(duckdb_extension_tpcds.__file__).parent / "extensions"
    path = base / f"v{duckdb.__version__}" / "tpcds.duckdb_extension"
    if not path.exists():
        found = sorted(base.glob("*/tpcds.duckdb_extension"))
        if not found:
            raise FileNotFoundError(f"tpcds extension not found under {base}")
        path = found[-1]
    return path


def _tpcds_connection():
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"LOAD '{tpch._sql_str(_extension_path())}'")
    return con


def generate(sf: float, out_dir: Path) -> dict[str, Path]:
    """Generate TPC-DS data at scale factor `sf` into `out_dir/<table>.parquet`.

    Each file is written under a temporary name and renamed, so an
    interrupted run never leaves a half-written table behind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = _tpcds_connection()
    try:
        con.execute(f"CALL dsdgen(sf={float(sf)!r})")
        return tpch.export_tables(con, TABLES, out_dir)
    finally:
        con.close()


def ensure_data(sf: float, root: Path) -> Path:
    """root/sf<SF>/ with the 24 parquet tables, generated on first use and
    reused afterwards (a marker file records a completed generation)."""
    return tpch.ensure_generated(root, sf, TABLES, "TPC-DS", lambda d: generate(sf, d))


def queries() -> dict[int, str]:
    """The 99 TPC-DS query texts, exactly as the extension ships them."""
    return tpch.shipped_queries(_tpcds_connection, "tpcds_queries")


def write_query_files(texts: dict[int, str], out_dir: Path) -> dict[int, Path]:
    """qNN.sql per query (the unchanged texts): Musketeer reads workflow files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for n, sql in texts.items():
        p = out_dir / f"q{n:02d}.sql"
        if not p.exists() or p.read_text() != sql:
            p.write_text(sql)
        paths[n] = p
    return paths


def duckdb_connection(data_dir: Path, threads: int | None = None):
    """A DuckDB connection with one view per TPC-DS table over the exported files."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    for t in TABLES:
        p = Path(data_dir) / f"{t}.parquet"
        if not p.exists():
            raise FileNotFoundError(f"no {t}.parquet in {data_dir}")
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{tpch._sql_str(p)}')")
    return con


def duckdb_answer(sql: str, con) -> pd.DataFrame:
    """The oracle: `sql` in DuckDB over the views of `con` (types kept)."""
    return tpch.arrow_to_pandas(con.execute(sql).to_arrow_table())


# --------------------------------------------------------------------------- comparison

@dataclass(frozen=True)
class Shape:
    """What the comparison needs to know about a query's outermost SELECT.

    `order_by` holds (column index, ascending) per ORDER BY key; an index
    past the output columns names `derived[index - len(columns)]`, a key
    computed from the output columns (a DuckDB expression over their names).
    """

    order_by: list[tuple[int, bool]] | None
    limit: int | None
    names_defined: list[bool]
    derived: list[str]


def query_shape(sql: str, columns: list[str]) -> Shape:
    """ORDER BY keys, LIMIT and name-definedness of `sql`'s outermost
    SELECT, given the result's column names `columns` (from the oracle).

    TPC-H's rules (tpch.query_shape), plus what TPC-DS writes:
    - ``SELECT *`` over a derived table: keys are found among `columns` by
      name, and every column's name is defined;
    - a key that is an expression over output columns
      (``ORDER BY sum_sales - avg_monthly_sales``, ``CASE WHEN grouping(a) +
      grouping(b) = 0 THEN a END`` with that sum in the SELECT list) is
      computed from them (`derived`): SELECT-list expressions inside it are
      replaced by their output names first;
    - the keys stop at the first one that is neither (the order is then
      compared on that prefix of keys, which the full order implies).
    """
    import sqlglot
    from sqlglot import exp

    node = sqlglot.parse_one(sql, read="duckdb")
    select = node
    while isinstance(select, (exp.SetOperation, exp.Subquery)):
        select = select.this
    if not isinstance(select, exp.Select):
        select = node.find(exp.Select)
    if select is None:
        raise ValueError("no SELECT in query")
    projections = list(select.expressions)
    star = any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
               for p in projections)
    if star:
        names: list[str | None] = list(columns)
        names_defined = [True] * len(columns)
    else:
        names = [p.alias if isinstance(p, exp.Alias) else p.name if isinstance(p, exp.Column) else None
                 for p in projections]
        names_defined = [n is not None for n in names]
    lowered = [c.lower() for c in columns]
    aliased = [] if star else [(p.this, p.alias) for p in projections
                               if isinstance(p, exp.Alias) and p.alias.lower() in lowered]

    def derive(key: exp.Expression) -> str | None:
        """`key` as an expression over the output columns, or None."""
        def swap(n: exp.Expression) -> exp.Expression:
            for inner, alias in aliased:
                if n == inner:
                    return exp.column(alias, quoted=True)
            return n

        key = key.copy().transform(swap)
        if key.find(exp.AggFunc, exp.Window, exp.Subquery, exp.Select) is not None:
            return None
        refs = list(key.find_all(exp.Column))
        if not refs or any(c.table or lowered.count(c.name.lower()) != 1 for c in refs):
            return None
        for c in refs:
            c.replace(exp.column(columns[lowered.index(c.name.lower())], quoted=True))
        return key.sql(dialect="duckdb")

    order_by: list[tuple[int, bool]] | None = None
    derived: list[str] = []
    order = node.args.get("order")
    if order is not None:
        order_by = []
        for o in order.expressions:
            key = o.this
            idx = None if star else tpch._order_key_index(key, projections, names)
            if idx is None and isinstance(key, exp.Literal) and key.is_int and 1 <= int(key.name) <= len(columns):
                idx = int(key.name) - 1
            if idx is None and isinstance(key, exp.Column) and lowered.count(key.name.lower()) == 1:
                idx = lowered.index(key.name.lower())
            if idx is None:
                text = derive(key)
                if text is None:
                    break  # not computable from the output: compare the order on the keys so far
                idx = len(columns) + len(derived)
                derived.append(text)
            order_by.append((idx, not bool(o.args.get("desc"))))

    limit = None
    lim = node.args.get("limit")
    if lim is not None:
        val = lim.expression if lim.expression is not None else lim.this
        try:
            limit = int(val.name)
        except (TypeError, ValueError, AttributeError):
            limit = None
    return Shape(order_by=order_by, limit=limit, names_defined=names_defined, derived=derived)


def with_derived_keys(frame: Any, columns: list[str], derived: list[str]) -> pa.Table:
    """`frame` (its columns renamed to `columns`, by position) plus one column
    per derived ORDER BY key, computed by DuckDB row by row in order."""
    import duckdb

    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    table = table.rename_columns(list(columns))
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        con.execute("SET preserve_insertion_order = true")
        con.register("result_rows", table)
        keys = ", ".join(f"{text} AS \"__order_key_{i}\"" for i, text in enumerate(derived))
        extra = con.execute(f"SELECT {keys} FROM result_rows").to_arrow_table()
    finally:
        con.close()
    for i in range(extra.num_columns):
        table = table.append_column(extra.schema.field(i).name, extra.column(i))
    return table


def assert_query_result(actual: Any, expected: Any, sql: str) -> None:
    """tpch.assert_same_rows with ORDER BY / LIMIT / name rules derived from `sql`."""
    columns = [str(c) for c in (expected.column_names if isinstance(expected, pa.Table) else expected.columns)]
    shape = query_shape(sql, columns)
    names_defined = shape.names_defined
    actual_width = actual.num_columns if isinstance(actual, pa.Table) else actual.shape[1]
    if shape.derived and actual_width == len(columns):
        tpch.assert_same_rows(actual, expected, None, check_names=names_defined)  # names first, unordered
        actual = with_derived_keys(actual, columns, shape.derived)
        expected = with_derived_keys(expected, columns, shape.derived)
        names_defined = list(names_defined) + [False] * len(shape.derived)
    elif shape.derived:  # the widths differ: assert_same_rows says so (keys up to the first derived one)
        keys = list(shape.order_by or [])
        first = next(i for i, (idx, _) in enumerate(keys) if idx >= len(columns))
        shape = Shape(keys[:first], shape.limit, names_defined, [])
    tpch.assert_same_rows(actual, expected, shape.order_by, limit=shape.limit, check_names=names_defined)
