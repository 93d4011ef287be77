"""Helpers for the local-backend tests: small input tables with NULLs in every
column type, IR shorthands, and comparison against DuckDB (the oracle).

Kept out of conftest.py so the shared fixtures there stay minimal.
"""

from __future__ import annotations

import ast
import datetime as dt
import decimal
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from musketeer.backends.base import RunOptions, RunResult
from musketeer.backends.local import BACKEND
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import BOOL, DATE, FLOAT64, INT64, STRING, TIMESTAMP, DataType, decimal as dec
from musketeer.ir.workflow import Workflow

D = dt.date
TS = dt.datetime

PEOPLE_TYPES: dict[str, DataType] = {
    "id": INT64, "k": INT64, "name": STRING, "dept": STRING, "salary": FLOAT64, "qty": INT64,
    "hired": DATE, "active": BOOL, "ts": TIMESTAMP, "price": dec(10, 2),
}
PEOPLE = {
    "id": list(range(1, 13)),
    "k": [1, 2, 2, None, 3, 5, None, 1, 4, 2, 6, None],
    "name": ["Ann", "bob", "  Carl ", "d%e_f", "O'Neil", None, "Zoë", "a\\b", "ann", "Bob", "carl", None],
    "dept": ["eng", "ops", None, "eng", "sales", "ops", "eng", None, "hr", "eng", "ops", "sales"],
    "salary": [100.5, None, 80.0, -5.25, 0.0, 120.0, None, 99.99, 100.5, 1e3, 42.0, 7.5],
    "qty": [7, -7, 0, None, 3, 10, -3, 2, None, 5, 0, 1],
    "hired": [D(2020, 1, 31), D(2020, 2, 29), None, D(2019, 3, 31), D(2021, 12, 31), D(2020, 5, 15), None,
              D(2018, 1, 1), D(2020, 1, 31), D(2022, 8, 31), D(2019, 11, 30), D(2023, 3, 1)],
    "active": [True, False, None, True, True, False, None, True, False, True, None, False],
    "ts": [TS(2020, 1, 31, 10, 30, 15), None, TS(2021, 6, 1, 0, 0, 0), TS(2019, 12, 31, 23, 59, 59),
           TS(2020, 2, 29, 12, 0, 0), TS(2022, 1, 1, 6, 7, 8), None, TS(2018, 5, 5, 5, 5, 5),
           TS(2020, 1, 31, 10, 30, 15), TS(2023, 3, 31, 1, 2, 3), TS(2021, 1, 1), None],
    "price": [decimal.Decimal(x) if x else None for x in
              ["10.50", "3.25", None, "0.01", "99.99", "10.50", "7.00", None, "1.10", "2.20", "3.30", "4.40"]],
}
DEPTS_TYPES: dict[str, DataType] = {"d_dept": STRING, "budget": INT64, "k2": INT64, "floor_no": FLOAT64}
DEPTS = {
    "d_dept": ["eng", "ops", "hr", None, "eng2", "ops", "sales"],
    "budget": [1000, None, 300, 50, 10, 200, 100],
    "k2": [1, 2, None, 3, 7, 2, None],
    "floor_no": [1.0, 2.0, None, 3.0, 7.0, 2.0, 5.0],
}


def arrow_table(data: dict[str, list], types: dict[str, DataType]) -> pa.Table:
    mapping = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string(), "date": pa.date32(),
               "bool": pa.bool_(), "timestamp": pa.timestamp("us")}
    arrays = {}
    for name, values in data.items():
        t = types[name]
        arrays[name] = pa.array(values, pa.decimal128(t.precision, t.scale) if t.kind == "decimal" else mapping[t.kind])
    return pa.table(arrays)


def write_tables(directory: Path) -> dict[str, Path]:
    """people/depts as parquet and CSV (CSV without the decimal column)."""
    paths = {}
    for name, data, types in (("people", PEOPLE, PEOPLE_TYPES), ("depts", DEPTS, DEPTS_TYPES)):
        table = arrow_table(data, types)
        paths[name] = directory / f"{name}.parquet"
        pq.write_table(table, paths[name])
        csv_table = table.drop_columns(["price"]) if "price" in table.column_names else table
        paths[f"{name}_csv"] = directory / f"{name}.csv"
        pacsv.write_csv(csv_table, paths[f"{name}_csv"])
    return paths


# Module-scoped fixtures over those tables: a test module imports them by name.
@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """people/depts written once per test module (see write_tables)."""
    return write_tables(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def con(paths: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """DuckDB (the oracle) with people/depts as views over the same files."""
    return duck(paths)


# --- IR shorthands -------------------------------------------------------------
C = E.Col


def L(value: Any, dtype: DataType | None = None) -> E.Lit:  # noqa: N802 - reads like SQL
    return E.Lit(value, dtype) if dtype is not None else E.Lit.of(value)


def scan(table: str, path: Path | str, types: dict[str, DataType], fmt: str = "parquet",
         columns: list[str] | None = None, rename: dict[str, str] | None = None) -> O.Scan:
    rename = rename or {}
    cols = tuple(O.ScanColumn(n, rename.get(n, n), types[n]) for n in (columns or list(types)))
    return O.Scan(table, str(path), fmt, cols)


def project(op: O.Op, **exprs: E.Expr) -> O.Project:
    return O.Project(op, tuple(exprs.items()))


def keep(op: O.Op, *names: str) -> O.Project:
    return O.Project(op, tuple((n, C(n)) for n in names))


def workflow(op: O.Op, name: str = "test") -> Workflow:
    return Workflow((O.Sink(op, "result"),), name)


def run(op: O.Op | Workflow, tables: dict[str, str] | None = None) -> RunResult:
    wf = op if isinstance(op, Workflow) else workflow(op)
    return BACKEND.run(BACKEND.generate(wf), RunOptions(tables=tables or {}))


def result(op: O.Op | Workflow, tables: dict[str, str] | None = None) -> pd.DataFrame:
    return run(op, tables).outputs["result"]


# --- comparing with DuckDB ---------------------------------------------------------
def _norm(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, dt.date)):
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        f = float(value)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return f
        return float(f"{f:.9g}")
    return value


def frame_rows(frame: pd.DataFrame) -> list[tuple]:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return [tuple(_norm(v) for v in row.values()) for row in table.to_pylist()]


def _sort_key(row: tuple) -> list:
    return [(v is None, str(type(v)) if v is not None else "", v if v is not None else 0) for v in row]


def assert_same(frame: pd.DataFrame, con: duckdb.DuckDBPyConnection, sql: str,
                ordered: bool = False, check_names: bool = True) -> None:
    """Our frame equals DuckDB's answer to `sql`: same rows (as a bag unless
    `ordered`), same column names."""
    rel = con.sql(sql)
    theirs = [tuple(_norm(v) for v in row) for row in rel.fetchall()]
    ours = frame_rows(frame)
    if check_names:
        assert list(frame.columns) == [d[0] for d in rel.description]
    if not ordered:
        ours, theirs = sorted(ours, key=_sort_key), sorted(theirs, key=_sort_key)
    assert ours == theirs, f"\nours:   {ours}\nduckdb: {theirs}"


def duck(paths: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the test tables as views over the same files."""
    con = duckdb.connect()
    con.sql(f"CREATE VIEW people AS SELECT * FROM read_parquet('{paths['people']}')")
    con.sql(f"CREATE VIEW depts AS SELECT * FROM read_parquet('{paths['depts']}')")
    return con


# --- user text that tries to become code ------------------------------------------------------
@dataclass(frozen=True)
class Injection:
    """A workflow whose every piece of user text (directory, file, table,
    column and workflow names, literals, patterns) tries to run code."""

    workflow: Workflow
    columns: list[str]  # the result's column names, exactly as given
    row: tuple  # its one row, as frame_rows() gives it
    sink_path: Path  # the file its second sink writes
    canaries: tuple[Path, ...]  # files that exist only if injected code ran


INJECTED_A = 'a"); import os; os.system("touch PWNED"); #'
INJECTED_LITERAL = "it's \"q\"\n\\ end"


def injection_case(tmp_path: Path, dir_name: str, col_b: str, third: str) -> Injection:
    """The injection workflow over a parquet file in `tmp_path/dir_name`:
    filter on column `col_b`, then project three columns (the last named `third`)."""
    evil_dir = tmp_path / dir_name
    evil_dir.mkdir()
    data = evil_dir / "t.parquet"
    pq.write_table(pa.table({INJECTED_A: [1, 2, None], col_b: [INJECTED_LITERAL, "plain", None]}), data)
    t = O.Scan('t"; import os #', str(data), "parquet",
               (O.ScanColumn(INJECTED_A, INJECTED_A, INT64), O.ScanColumn(col_b, col_b, STRING)))
    f = O.Filter(t, E.Or((E.Compare("=", C(col_b), L(INJECTED_LITERAL)), E.Like(C(col_b), "%'\"\n\\%"))))
    p = O.Project(f, ((INJECTED_A, C(INJECTED_A)), ('"""; os.system("touch PWNED") #', C(col_b)),
                      (third, L('"""\\'))))
    sink_path = evil_dir / "o'ut\".csv"
    wf = Workflow((O.Sink(p, "result"), O.Sink(p, 'side"\nimport os', str(sink_path))),
                  'evil """\n import os; os.system("touch PWNED") \\')
    return Injection(wf, [INJECTED_A, '"""; os.system("touch PWNED") #', third],
                     (1.0, INJECTED_LITERAL, '"""\\'), sink_path, (tmp_path / "PWNED", evil_dir / "PWNED"))


def assert_text_stays_data(text: str) -> None:
    """The generated program parses with one docstring, calls none of the
    injected names, and every comment line is printable."""
    tree = ast.parse(text)
    assert ast.get_docstring(tree).count("\n") > 3  # the docstring is still one docstring
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"system", "PWNED", "__import__"}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            assert line.isprintable()


def assert_injection_result(case: Injection, frame: pd.DataFrame) -> None:
    """The run kept every name and value as data, wrote the side output and ran nothing injected."""
    assert list(frame.columns) == case.columns
    assert frame_rows(frame) == [case.row]
    assert case.sink_path.exists()
    assert not any(p.exists() for p in case.canaries)
