"""TPC-H support for the correctness tests and the benchmarks.

Test/bench support code, not part of the product. Everything TPC-H comes from
DuckDB's tpch extension (shipped in the ``duckdb-extension-tpch`` wheel): the
data generator (dbgen) and the 22 standard query texts. DuckDB is also the
oracle: ``duckdb_answer`` runs a query over the *same exported files* the
engine under test reads.

``assert_same_rows`` compares two results the way SQL defines equality of
results: same columns, same rows as a multiset, and -- when the query has
ORDER BY -- the same order up to permutations of rows that tie on the ORDER BY
keys. Floats (and decimals) compare within a relative tolerance.
"""

from __future__ import annotations

import datetime as _dt
import math
import pathlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pyarrow as pa

TABLES = ("nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem")

REL_TOL = 1e-6
ABS_TOL = 1e-9


# --------------------------------------------------------------------------- data / queries

def _extension_path() -> Path:
    import duckdb_extension_tpch

    version = _duckdb_version()
    path = pathlib.Path(duckdb_extension_tpch.__file__).parent / "extensions" / f"v{version}" / "tpch.duckdb_extension"
    if not path.exists():
        found = sorted(pathlib.Path(duckdb_extension_tpch.__file__).parent.glob("extensions/*/tpch.duckdb_extension"))
        if not found:
            raise FileNotFoundError(f"tpch extension not found next to {duckdb_extension_tpch.__file__}")
        path = found[-1]
    return path


def _duckdb_version() -> str:
    import duckdb

    return duckdb.__version__


def _tpch_connection():
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"LOAD '{_extension_path()}'")
    return con


def generate(sf: float, out_dir: Path, fmt: str = "parquet") -> dict[str, Path]:
    """Generate TPC-H data at scale factor `sf` into `out_dir/<table>.<fmt>`.

    fmt is "parquet" or "csv" (with a header row). Returns table -> path.
    Files are written to a temporary name and renamed, so an interrupted run
    never leaves a half-written table behind.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = _tpch_connection()
    try:
        con.execute(f"CALL dbgen(sf={float(sf)!r})")
        return export_tables(con, TABLES, out_dir, fmt)
    finally:
        con.close()


def export_tables(con, tables, out_dir: Path, fmt: str = "parquet") -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """COPY each of `tables` from a DuckDB connection to out_dir/<table>.<fmt>,
    each under a temporary name renamed into place. Returns table -> path."""
    paths = {}
    for t in tables:
        final = out_dir / f"{t}.{fmt}"
        tmp = out_dir / f".{t}.{fmt}.tmp"
        opts = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
        con.execute(f"COPY {t} TO '{_sql_str(tmp)}' ({opts})")
        tmp.replace(final)
        paths[t] = final
    return paths


def sf_label(sf: float) -> str:
    return f"{sf:g}"


def ensure_data(sf: float, root: Path) -> Path:
    """root/sf<SF>/ with the 8 parquet tables, generated on first use and
    reused afterwards (a marker file records a completed generation)."""
    return ensure_generated(root, sf, TABLES, "TPC-H", lambda d: generate(sf, d, fmt="parquet"))


def ensure_generated(root: Path, sf: float, tables, benchmark: str, make) -> Path:  # type: ignore[no-untyped-def]
    """root/sf<SF>/ holding `tables` as parquet files: `make(dir)` writes
    them on first use; a marker file records a completed generation, so an
    interrupted one is redone. Shared by the TPC-H and TPC-DS helpers."""
    import sys
    import time

    d = Path(root) / f"sf{sf_label(sf)}"
    marker = d / ".complete"
    if marker.exists() and all((d / f"{t}.parquet").exists() for t in tables):
        return d
    print(f"generating {benchmark} SF {sf_label(sf)} into {d} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    make(d)
    marker.write_text(f"sf={sf}\n")
    print(f"  done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return d


def queries() -> dict[int, str]:
    """The 22 standard TPC-H query texts, exactly as the extension ships them."""
    return shipped_queries(_tpch_connection, "tpch_queries")


def shipped_queries(connect, function: str) -> dict[int, str]:  # type: ignore[no-untyped-def]
    """query number -> text from a DuckDB benchmark extension's table
    function (tpch_queries, tpcds_queries), on a connection from `connect()`."""
    con = connect()
    try:
        rows = con.execute(f"SELECT query_nr, query FROM {function}() ORDER BY query_nr").fetchall()
    finally:
        con.close()
    return {int(n): q for n, q in rows}


def table_paths(data_dir: Path) -> dict[str, Path]:
    """table -> file for the TPC-H tables in `data_dir` (parquet preferred over csv)."""
    data_dir = Path(data_dir)
    out = {}
    for t in TABLES:
        for ext in ("parquet", "csv"):
            p = data_dir / f"{t}.{ext}"
            if p.exists():
                out[t] = p
                break
        else:
            raise FileNotFoundError(f"no {t}.parquet or {t}.csv in {data_dir}")
    return out


def _sql_str(p: Any) -> str:
    return str(p).replace("'", "''")


def duckdb_connection(data_dir: Path, threads: int | None = None):
    """A DuckDB connection with one view per TPC-H table over the exported files."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    for t, p in table_paths(data_dir).items():
        reader = "read_parquet" if p.suffix == ".parquet" else "read_csv_auto"
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM {reader}('{_sql_str(p)}')")
    return con


def duckdb_answer(sql: str, data_dir: Path, con=None) -> pd.DataFrame:
    """The oracle: run `sql` in DuckDB over the files in `data_dir`.

    Types are kept (pyarrow-backed columns: decimals stay decimals, dates stay
    dates). Pass `con` (from duckdb_connection) to reuse views.
    """
    own = con is None
    if own:
        con = duckdb_connection(data_dir)
    try:
        table = con.execute(sql).to_arrow_table()
    finally:
        if own:
            con.close()
    return arrow_to_pandas(table)


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow table -> DataFrame with ArrowDtype columns, keeping duplicate names."""
    df = pd.DataFrame({i: table.column(i).to_pandas(types_mapper=pd.ArrowDtype) for i in range(table.num_columns)})
    df.columns = list(table.column_names)
    return df


# --------------------------------------------------------------------------- query shape

@dataclass(frozen=True)
class QueryShape:
    """What the result comparison needs to know about a query's outermost SELECT."""

    order_by: list[tuple[int, bool]] | None  # (output column index, ascending); None = no ORDER BY
    limit: int | None
    # Per output column: True if its name is defined by the query (a column
    # reference or an alias); False for unaliased expressions such as
    # `sum(l_quantity)`, whose output name SQL leaves to the implementation.
    names_defined: list[bool]


def query_shape(sql: str, dialect: str = "duckdb") -> QueryShape:
    """ORDER BY keys (as output positions), LIMIT and name-definedness of `sql`'s outermost SELECT."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read=dialect)
    node = tree
    # The outermost query: ORDER BY / LIMIT may hang on a set operation too.
    select = node
    while isinstance(select, (exp.SetOperation, exp.Subquery)):  # names come from the leftmost SELECT
        select = select.this
    if not isinstance(select, exp.Select):
        select = node.find(exp.Select)
    if select is None:
        raise ValueError("no SELECT in query")
    projections = list(select.expressions)

    def out_name(e: exp.Expression) -> str | None:
        if isinstance(e, exp.Alias):
            return e.alias
        if isinstance(e, exp.Column):
            return e.name
        return None

    names = [out_name(e) for e in projections]
    names_defined = [n is not None for n in names]

    order = node.args.get("order")
    order_by: list[tuple[int, bool]] | None = None
    if order is not None:
        order_by = []
        for o in order.expressions:
            key = o.this
            asc = not bool(o.args.get("desc"))
            idx = _order_key_index(key, projections, names)
            if idx is None:
                raise ValueError(f"ORDER BY key {key.sql()!r} is not in the SELECT list; cannot compare order")
            order_by.append((idx, asc))

    limit = None
    lim = node.args.get("limit")
    if lim is not None:
        val = lim.expression if lim.expression is not None else lim.this
        try:
            limit = int(val.name if hasattr(val, "name") else val)
        except (TypeError, ValueError):
            limit = None
    return QueryShape(order_by=order_by, limit=limit, names_defined=names_defined)


def _order_key_index(key, projections, names) -> int | None:
    from sqlglot import exp

    if isinstance(key, exp.Literal) and key.is_int:
        pos = int(key.name)
        return pos - 1 if 1 <= pos <= len(projections) else None
    if isinstance(key, exp.Column):
        n = key.name.lower()
        # An output alias/name takes precedence (SQL's ORDER BY scoping).
        for i, name in enumerate(names):
            if name is not None and name.lower() == n:
                if not key.table or isinstance(projections[i], exp.Column):
                    return i
    target = key.sql(normalize=True).lower() if hasattr(key, "sql") else None
    for i, p in enumerate(projections):
        inner = p.this if isinstance(p, exp.Alias) else p
        if inner.sql().lower() == key.sql().lower():
            return i
        if target is not None and inner.sql(normalize=True).lower() == target:
            return i
    return None


# --------------------------------------------------------------------------- comparison

_NUM, _STR, _TIME, _BOOL, _OTHER = "number", "string", "time", "bool", "other"


def _columns(frame) -> tuple[list[str], list[pa.DataType], list[list[Any]]]:
    """Column names, arrow types and Python values of a DataFrame or arrow Table."""
    if isinstance(frame, pa.Table):
        names = list(frame.column_names)
        arrays = [frame.column(i).combine_chunks() if frame.column(i).num_chunks else pa.array([], frame.schema.field(i).type)
                  for i in range(frame.num_columns)]
    elif isinstance(frame, pd.DataFrame):
        names = [str(c) for c in frame.columns]
        arrays = []
        for i in range(frame.shape[1]):
            s = frame.iloc[:, i]
            try:
                arrays.append(pa.array(s, from_pandas=True))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arrays.append(pa.array(s.astype(object).where(s.notna(), None).tolist(), from_pandas=True))
    else:
        raise TypeError(f"expected a pandas DataFrame or a pyarrow Table, got {type(frame).__name__}")
    types = [a.type for a in arrays]
    values = [_pyvalues(a) for a in arrays]
    return names, types, values


def _pyvalues(a) -> list[Any]:
    t = a.type
    if pa.types.is_dictionary(t):
        a = a.cast(t.value_type)
    vals = a.to_pylist()
    if pa.types.is_decimal(a.type):
        vals = [None if v is None else float(v) for v in vals]
    return vals


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return _NUM
    if pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        return _STR
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return _TIME
    if pa.types.is_boolean(t):
        return _BOOL
    if pa.types.is_null(t):
        return "null"
    return _OTHER


def _is_exact(at: pa.DataType, et: pa.DataType) -> bool:
    """Compare without tolerance unless a side is a float or decimal."""
    approx = (pa.types.is_floating, pa.types.is_decimal)
    return not any(f(t) for f in approx for t in (at, et))


def _norm_time(v):
    if isinstance(v, _dt.datetime):
        return v.replace(tzinfo=None) if v.tzinfo is None else v
    if isinstance(v, _dt.date):
        return _dt.datetime(v.year, v.month, v.day)
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v


def _values_equal(a, b, exact: bool) -> bool:
    """One value vs one value. NULL equals NULL (and NaN equals NaN)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if exact:
            return a == b
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        return math.isclose(fa, fb, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if isinstance(a, (_dt.date, pd.Timestamp)) and isinstance(b, (_dt.date, pd.Timestamp)):
        return _norm_time(a) == _norm_time(b)
    return a == b


def _fmt(v) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return repr(v)
    return str(v)


def _fmt_row(row: Sequence[Any]) -> str:
    return "(" + ", ".join(_fmt(v) for v in row) + ")"


class _Cmp:
    """Row comparison over the common column layout of two results."""

    def __init__(self, exact: list[bool]):
        self.exact = exact
        self.approx_cols = [i for i, e in enumerate(exact) if not e]
        self.exact_cols = [i for i, e in enumerate(exact) if e]

    def rows_equal(self, r1, r2, cols=None) -> bool:
        cols = range(len(self.exact)) if cols is None else cols
        return all(_values_equal(r1[i], r2[i], self.exact[i]) for i in cols)

    def _bucket_key(self, row):
        return tuple(_hashable(row[i]) for i in self.exact_cols)

    def _sort_key(self, row):
        return tuple(_sortable(row[i]) for i in self.approx_cols)

    def multiset_diff(self, expected: list[tuple], actual: list[tuple]) -> tuple[list[tuple], list[tuple]]:
        """(rows of expected with no partner in actual, rows of actual with no partner in expected)."""
        from collections import defaultdict

        eb: dict[Any, list] = defaultdict(list)
        ab: dict[Any, list] = defaultdict(list)
        for r in expected:
            eb[self._bucket_key(r)].append(r)
        for r in actual:
            ab[self._bucket_key(r)].append(r)
        missing: list[tuple] = []
        extra: list[tuple] = []
        for key in list(eb.keys()) + [k for k in ab.keys() if k not in eb]:
            es = eb.get(key, [])
            as_ = ab.get(key, [])
            if not self.approx_cols:
                n = min(len(es), len(as_))
                missing.extend(es[n:])
                extra.extend(as_[n:])
                continue
            es_sorted = sorted(es, key=self._sort_key)
            as_sorted = sorted(as_, key=self._sort_key)
            if len(es_sorted) == len(as_sorted) and all(
                self.rows_equal(x, y, self.approx_cols) for x, y in zip(es_sorted, as_sorted)
            ):
                continue
            # Fall back to greedy matching within the bucket (float noise can reorder near-ties).
            unmatched = list(as_sorted)
            for r in es_sorted:
                for j, c in enumerate(unmatched):
                    if self.rows_equal(r, c, self.approx_cols):
                        del unmatched[j]
                        break
                else:
                    missing.append(r)
            extra.extend(unmatched)
        return missing, extra


def _hashable(v):
    if isinstance(v, (_dt.date, pd.Timestamp)):
        return ("t", _norm_time(v))
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def _sortable(v):
    # NULLs first, then by value; NaN after numbers.
    if v is None:
        return (0, 0.0)
    if isinstance(v, float) and math.isnan(v):
        return (2, 0.0)
    if isinstance(v, (int, float)):
        return (1, float(v))
    return (1, v)


def _bag_difference(title: str, header: str, missing: list, extra: list, max_shown: int) -> str:
    """The failure message for rows missing from / extra in the actual result (first `max_shown` of each)."""
    msg = [title, header]
    if missing:
        msg.append(f"{len(missing)} expected rows missing from actual, first ones:")
        msg += ["  " + _fmt_row(r) for r in missing[:max_shown]]
    if extra:
        msg.append(f"{len(extra)} actual rows not in expected, first ones:")
        msg += ["  " + _fmt_row(r) for r in extra[:max_shown]]
    return "\n".join(msg)


def assert_same_rows(
    actual,
    expected,
    order_by: list[tuple[int, bool]] | None = None,
    *,
    limit: int | None = None,
    check_names: bool | Sequence[bool] = True,
    max_shown: int = 5,
) -> None:
    """Assert `actual` holds the same rows as `expected` (DataFrames or arrow Tables).

    - Column count must match; names compared case-insensitively (per column
      if `check_names` is a list of bools -- False for columns whose name is
      implementation-defined, see QueryShape.names_defined).
    - Values by type: numbers within REL_TOL relative (ABS_TOL absolute near
      0) unless both sides are integers (then exactly); strings, dates,
      timestamps, bools exactly; a date equals a timestamp at midnight of the
      same day; NULL equals NULL.
    - order_by None: rows compared as multisets. Otherwise `order_by` lists
      (column index, ascending) of the ORDER BY keys: the row order must match
      `expected`'s except that rows tying on all keys (floats within
      tolerance) may come in any order among themselves.
    - limit: the query's LIMIT. If the expected result was cut by it (has
      exactly `limit` rows) the rows of the last tie group are only compared
      on the ORDER BY keys, since which of the tying rows make the cut is not
      defined by SQL.
    """
    a_names, a_types, a_vals = _columns(actual)
    e_names, e_types, e_vals = _columns(expected)
    problems: list[str] = []

    if len(a_names) != len(e_names):
        raise AssertionError(
            f"column count differs: actual has {len(a_names)} {a_names}, expected {len(e_names)} {e_names}"
        )
    checks = [check_names] * len(e_names) if isinstance(check_names, bool) else list(check_names)
    if len(checks) != len(e_names):
        raise ValueError("check_names must have one entry per column")
    bad = [
        f"column {i}: actual {a!r} vs expected {e!r}"
        for i, (a, e, c) in enumerate(zip(a_names, e_names, checks))
        if c and a.lower() != e.lower()
    ]
    if bad:
        raise AssertionError("column names differ (case-insensitive):\n  " + "\n  ".join(bad))

    exact = []
    for i, (at, et) in enumerate(zip(a_types, e_types)):
        ak, ek = _kind(at), _kind(et)
        if "null" not in (ak, ek) and ak != ek:
            problems.append(f"column {i} ({e_names[i]!r}): type {at} is not comparable with expected {et}")
        exact.append(_is_exact(at, et))
    if problems:
        raise AssertionError("\n".join(problems))

    a_rows = list(zip(*a_vals)) if a_vals else []
    e_rows = list(zip(*e_vals)) if e_vals else []
    cmp = _Cmp(exact)
    header = "columns: (" + ", ".join(e_names) + ")"

    if order_by is None:
        missing, extra = cmp.multiset_diff(e_rows, a_rows)
        if missing or extra:
            raise AssertionError(_bag_difference(
                f"rows differ (compared as multisets): actual {len(a_rows)} rows, expected {len(e_rows)}",
                header, missing, extra, max_shown))
        return

    for idx, _asc in order_by:
        if not 0 <= idx < len(e_names):
            raise ValueError(f"order_by column index {idx} out of range")
    if len(a_rows) != len(e_rows):
        missing, extra = cmp.multiset_diff(e_rows, a_rows)
        raise AssertionError(_bag_difference(
            f"row count differs: actual {len(a_rows)}, expected {len(e_rows)}", header, missing, extra, max_shown))

    key_cols = [i for i, _ in order_by]
    # Tie groups: maximal runs of consecutive expected rows equal on all keys.
    groups: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(e_rows) + 1):
        if i == len(e_rows) or not cmp.rows_equal(e_rows[i - 1], e_rows[i], key_cols):
            groups.append((start, i))
            start = i
    cut_by_limit = limit is not None and len(e_rows) == limit
    for g, (lo, hi) in enumerate(groups):
        es, as_ = e_rows[lo:hi], a_rows[lo:hi]
        last = g == len(groups) - 1
        if cut_by_limit and last:
            # Only the keys are defined for the rows that make the LIMIT cut.
            bad_rows = [j for j in range(lo, hi) if not cmp.rows_equal(e_rows[j], a_rows[j], key_cols)]
            if not bad_rows:
                continue
            missing, extra = [e_rows[bad_rows[0]]], [a_rows[bad_rows[0]]]
        else:
            missing, extra = cmp.multiset_diff(es, as_)
            if not missing and not extra:
                continue
        # Find the first position that differs, for the message.
        first = lo
        for j in range(lo, hi):
            if not cmp.rows_equal(e_rows[j], a_rows[j]):
                first = j
                break
        msg = [
            f"rows differ at row {first} of {len(e_rows)} (compared in ORDER BY order; "
            f"ORDER BY keys {[(e_names[i], 'asc' if asc else 'desc') for i, asc in order_by]}; "
            f"rows {lo}..{hi - 1} tie on them and may come in any order)",
            header,
        ]
        s0, s1 = max(0, lo - 1), min(len(e_rows), max(hi, first + 1) + 1)
        s1 = min(s1, s0 + 2 * max_shown)
        for j in range(s0, s1):
            mark = "  " if cmp.rows_equal(e_rows[j], a_rows[j]) else "! "
            msg.append(f"{mark}row {j}: actual   {_fmt_row(a_rows[j])}")
            msg.append(f"{mark}row {j}: expected {_fmt_row(e_rows[j])}")
        if missing:
            msg.append("expected rows of this tie group missing from actual: "
                       + "; ".join(_fmt_row(r) for r in missing[:max_shown]))
        if extra:
            msg.append("actual rows not expected in this tie group: "
                       + "; ".join(_fmt_row(r) for r in extra[:max_shown]))
        raise AssertionError("\n".join(msg))


def assert_query_result(actual, expected, sql: str) -> None:
    """assert_same_rows with ORDER BY / LIMIT / name rules derived from `sql`."""
    shape = query_shape(sql)
    assert_same_rows(actual, expected, shape.order_by, limit=shape.limit, check_names=shape.names_defined)
