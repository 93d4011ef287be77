"""The local engine (backends/local): generated pandas + pyarrow programs must
give DuckDB's answers on the same files, including every NULL corner."""

from __future__ import annotations

import ast
import datetime as dt
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from backends.base import RunOptions
from backends.local import BACKEND, LocalBackend
from ir import expr as E
from ir import operators as O
from ir.types import BOOL, DATE, FLOAT64, INT64, STRING, TIMESTAMP, DataError, decimal
from ir.workflow import Workflow
from tests.local_helpers import (
    DEPTS_TYPES, PEOPLE_TYPES, C, L, assert_same, duck, frame_rows, keep, project, result, run, scan,
    workflow, write_tables,
)

IV = E.Interval  # (months, days)
PY = sys.executable


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_tables(tmp_path_factory.mktemp("local_data"))


@pytest.fixture(scope="module")
def con(paths: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    return duck(paths)


@pytest.fixture(scope="module")
def people(paths: dict[str, Path]) -> O.Scan:
    return scan("people", paths["people"], PEOPLE_TYPES)


@pytest.fixture(scope="module")
def depts(paths: dict[str, Path]) -> O.Scan:
    return scan("depts", paths["depts"], DEPTS_TYPES)


# --- the backend contract ---------------------------------------------------------------
def test_backend_descriptor() -> None:
    assert BACKEND.name == "local" and isinstance(BACKEND, LocalBackend)
    assert set(O.OPERATORS) <= BACKEND.capabilities
    assert BACKEND.available() == (True, "")


def test_program_is_readable(people: O.Scan) -> None:
    f = O.Filter(people, E.Compare("<=", C("hired"), L(dt.date(1998, 9, 2))))
    prog = BACKEND.generate(workflow(keep(f, "id"), name="q1"))
    text = prog.text
    ast.parse(text)
    assert prog.backend == "local" and '"""Workflow q1' in text
    assert "# Filter: hired <= DATE '1998-09-02'" in text
    assert "TABLES: dict[str, str] = {" in text and "def run(tables" in text and "def main(argv" in text
    assert "del t0_people" in text  # intermediates are released after their last use
    assert "join_frames" not in text  # only the helpers this program needs


# --- expressions: one Project column each, against the same SQL in DuckDB -------------
EXPRESSIONS: list[tuple[str, E.Expr, str]] = [
    ("add_nulls", E.Arith("+", C("qty"), C("k")), "qty + k"),
    ("sub_float", E.Arith("-", C("salary"), L(1)), "salary - 1"),
    ("mul_mixed", E.Arith("*", C("qty"), C("salary")), "qty * salary"),
    ("div_ints", E.Arith("/", C("qty"), L(2)), "qty / 2"),
    ("div_by_zero", E.Arith("/", C("k"), C("qty")), "k / qty"),
    ("mod", E.Arith("%", C("qty"), L(3)), "qty % 3"),
    ("mod_negative_divisor", E.Arith("%", C("qty"), L(-4)), "qty % -4"),
    ("mod_by_zero", E.Arith("%", C("k"), C("qty")), "k % qty"),
    ("mod_float", E.Arith("%", C("salary"), L(7.0)), "salary % 7.0"),
    ("decimal_arith", E.Arith("*", C("price"), L(3)), "price * 3"),
    ("neg", E.Neg(C("salary")), "-salary"),
    ("null_plus", E.Arith("+", C("qty"), L(None)), "qty + NULL"),
    ("eq_null", E.Compare("=", C("k"), L(None)), "k = NULL"),
    ("lt_string", E.Compare("<", C("name"), L("bob")), "name < 'bob'"),
    ("date_vs_string", E.Compare(">=", C("hired"), L("2020-01-31")), "hired >= '2020-01-31'"),
    ("date_vs_timestamp", E.Compare("<", C("hired"), C("ts")), "hired < ts"),
    ("int_vs_float", E.Compare("=", C("k"), C("salary")), "k = salary"),
    ("and_kleene", E.And((E.Compare(">", C("salary"), L(50.0)), C("active"), E.Compare("<>", C("dept"), L("ops")))),
     "salary > 50.0 AND active AND dept <> 'ops'"),
    ("or_kleene", E.Or((C("active"), E.Compare("=", C("qty"), L(None)))), "active OR qty = NULL"),
    ("not", E.Not(C("active")), "NOT active"),
    ("is_null", E.IsNull(C("name")), "name IS NULL"),
    ("is_not_null", E.IsNull(C("hired"), True), "hired IS NOT NULL"),
    ("in_list", E.InList(C("k"), (L(1), L(2))), "k IN (1, 2)"),
    ("in_list_with_null", E.InList(C("k"), (L(1), L(None))), "k IN (1, NULL)"),
    ("not_in_with_null", E.InList(C("k"), (L(1), L(None)), True), "k NOT IN (1, NULL)"),
    ("not_in_strings", E.InList(C("dept"), (L("eng"), L("hr")), True), "dept NOT IN ('eng', 'hr')"),
    ("in_columns", E.InList(C("k"), (C("qty"), L(2))), "k IN (qty, 2)"),
    ("in_dates", E.InList(C("hired"), (L("2020-01-31"), L(dt.date(2018, 1, 1)))),
     "hired IN (DATE '2020-01-31', DATE '2018-01-01')"),
    ("in_float_list_int_col", E.InList(C("qty"), (L(7.0), L(2.5))), "qty IN (7.0, 2.5)"),
    ("like_prefix", E.Like(C("name"), "a%"), "name LIKE 'a%'"),
    ("like_contains", E.Like(C("name"), "%o%"), "name LIKE '%o%'"),
    ("like_suffix", E.Like(C("name"), "%l"), "name LIKE '%l'"),
    ("like_underscore", E.Like(C("name"), "_o%"), "name LIKE '_o%'"),
    ("like_literal_wildcards", E.Like(C("name"), "d%e_f"), "name LIKE 'd%e_f'"),
    ("like_backslash", E.Like(C("name"), "a\\b"), "name LIKE 'a\\b'"),
    ("like_quote", E.Like(C("name"), "O'N%"), "name LIKE 'O''N%'"),
    ("like_regex_chars", E.Like(C("name"), "_(.)%"), "name LIKE '_(.)%'"),
    ("like_exact", E.Like(C("name"), "bob"), "name LIKE 'bob'"),
    ("like_everything", E.Like(C("name"), "%"), "name LIKE '%'"),
    ("not_like", E.Like(C("name"), "%n%", negated=True), "name NOT LIKE '%n%'"),
    ("ilike_exact", E.Like(C("name"), "ann", case_insensitive=True), "name ILIKE 'ann'"),
    ("ilike_prefix", E.Like(C("name"), "B%", case_insensitive=True), "name ILIKE 'B%'"),
    ("ilike_regex", E.Like(C("name"), "_A%", case_insensitive=True), "name ILIKE '_A%'"),
    ("case", E.Case(((E.Compare(">", C("salary"), L(100.0)), L("high")),
                     (E.Compare(">", C("salary"), L(0.0)), L("low"))), L("none")),
     "CASE WHEN salary > 100.0 THEN 'high' WHEN salary > 0.0 THEN 'low' ELSE 'none' END"),
    ("case_null_condition_mixed_types", E.Case(((C("active"), C("qty")), (E.IsNull(C("active")), C("salary")))),
     "CASE WHEN active THEN qty WHEN active IS NULL THEN salary END"),
    ("cast_int_to_string", E.Cast(C("qty"), STRING), "CAST(qty AS VARCHAR)"),
    ("cast_float_to_int", E.Cast(C("salary"), INT64), "CAST(salary AS BIGINT)"),
    ("cast_string_to_date", E.Cast(L("2021-03-04"), DATE), "CAST('2021-03-04' AS DATE)"),
    ("cast_string_col_to_int", E.Cast(E.Cast(C("qty"), STRING), INT64), "CAST(CAST(qty AS VARCHAR) AS BIGINT)"),
    ("cast_date_to_string", E.Cast(C("hired"), STRING), "CAST(hired AS VARCHAR)"),
    ("cast_timestamp_to_date", E.Cast(C("ts"), DATE), "CAST(ts AS DATE)"),
    ("cast_date_to_timestamp", E.Cast(C("hired"), TIMESTAMP), "CAST(hired AS TIMESTAMP)"),
    ("cast_bool_to_int", E.Cast(C("active"), INT64), "CAST(active AS BIGINT)"),
    ("cast_to_decimal", E.Cast(C("salary"), decimal(10, 1)), "CAST(salary AS DECIMAL(10,1))"),
    ("cast_null", E.Cast(L(None), INT64), "CAST(NULL AS BIGINT)"),
    *[(f"extract_{p}_date", E.Extract(p, C("hired")), f"extract({p} FROM hired)")
      for p in ("year", "quarter", "month", "day", "dow", "doy")],
    *[(f"extract_{p}_ts", E.Extract(p, C("ts")), f"extract({p} FROM ts)")
      for p in ("year", "month", "day", "dow", "hour", "minute", "second")],
    ("date_plus_month", E.Arith("+", C("hired"), L(IV(1, 0))), "CAST(hired + INTERVAL 1 MONTH AS DATE)"),
    ("date_minus_months_days", E.Arith("-", C("hired"), L(IV(13, 5))),
     "CAST(hired - INTERVAL '13 months 5 days' AS DATE)"),
    ("interval_plus_date", E.Arith("+", L(IV(0, 10)), C("hired")), "CAST(INTERVAL 10 DAY + hired AS DATE)"),
    ("timestamp_plus_interval", E.Arith("+", C("ts"), L(IV(2, 1))), "ts + INTERVAL '2 months 1 day'"),
    ("date_minus_date", E.Arith("-", C("hired"), L(dt.date(2020, 1, 1))),
     "hired - DATE '2020-01-01'"),
    ("literal_date_arith", E.Compare("<=", C("hired"), E.Arith("-", L(dt.date(2020, 3, 31)),
                                                              L(IV(1, 0)))),
     "hired <= DATE '2020-03-31' - INTERVAL 1 MONTH"),
    ("substring", E.Func("substring", (C("name"), L(2), L(3))), "substring(name, 2, 3)"),
    ("substring_from_zero", E.Func("substring", (C("name"), L(0), L(2))), "substring(name, 0, 2)"),
    ("substring_negative_start", E.Func("substring", (C("name"), L(-3), L(2))), "substring(name, -3, 2)"),
    ("substring_negative_length", E.Func("substring", (C("name"), L(3), L(-2))), "substring(name, 3, -2)"),
    ("substring_to_end", E.Func("substring", (C("name"), L(2))), "substring(name, 2)"),
    ("substring_per_row", E.Func("substring", (C("name"), C("k"), C("qty"))), "substring(name, k, qty)"),
    ("upper", E.Func("upper", (C("name"),)), "upper(name)"),
    ("lower", E.Func("lower", (C("name"),)), "lower(name)"),
    ("trim", E.Func("trim", (C("name"),)), "trim(name)"),
    ("ltrim", E.Func("ltrim", (C("name"),)), "ltrim(name)"),
    ("rtrim", E.Func("rtrim", (C("name"),)), "rtrim(name)"),
    ("length", E.Func("length", (C("name"),)), "length(name)"),
    ("abs_int", E.Func("abs", (C("qty"),)), "abs(qty)"),
    ("abs_float", E.Func("abs", (C("salary"),)), "abs(salary)"),
    ("round_digits", E.Func("round", (C("salary"), L(1))), "round(salary, 1)"),
    ("round", E.Func("round", (C("salary"),)), "round(salary)"),
    ("round_int_negative_digits", E.Func("round", (C("qty"), L(-1))), "round(qty, -1)"),
    ("coalesce", E.Func("coalesce", (C("k"), C("qty"), L(0))), "coalesce(k, qty, 0)"),
    ("coalesce_strings", E.Func("coalesce", (C("name"), C("dept"), L(None))), "coalesce(name, dept, NULL)"),
    ("concat", E.Func("concat", (C("name"), L("-"), C("dept"))), "concat(name, '-', dept)"),
    ("concat_non_strings", E.Func("concat", (C("qty"), L("/"), C("hired"))), "concat(qty, '/', hired)"),
    ("sqrt", E.Func("sqrt", (E.Func("abs", (C("salary"),)),)), "sqrt(abs(salary))"),
    ("ln", E.Func("ln", (E.Arith("+", E.Func("abs", (C("salary"),)), L(1)),)), "ln(abs(salary) + 1)"),
    ("exp", E.Func("exp", (E.Arith("/", C("qty"), L(10)),)), "exp(qty / 10)"),
    ("floor", E.Func("floor", (C("salary"),)), "floor(salary)"),
    ("ceil", E.Func("ceil", (C("salary"),)), "ceil(salary)"),
    ("floor_int", E.Func("floor", (C("qty"),)), "floor(qty)"),
    ("upper_null", E.Func("upper", (L(None),)), "upper(NULL)"),
]


@pytest.mark.parametrize("expr,sql", [pytest.param(e, s, id=i) for i, e, s in EXPRESSIONS])
def test_expression(expr: E.Expr, sql: str, people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    out = result(project(people, id=C("id"), v=expr))
    assert_same(out, con, f"SELECT id, {sql} AS v FROM people")


def test_filter_keeps_only_true_rows(people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    pred = E.Or((E.And((E.Compare(">", C("salary"), L(50.0)), C("active"))), E.IsNull(C("dept"))))
    assert_same(result(keep(O.Filter(people, pred), "id", "name")), con,
                "SELECT id, name FROM people WHERE (salary > 50.0 AND active) OR dept IS NULL")
    # NOT of an unknown is unknown: rows with NULL salary are in neither half
    not_pred = E.Not(E.Compare(">", C("salary"), L(50.0)))
    assert_same(result(keep(O.Filter(people, not_pred), "id")), con,
                "SELECT id FROM people WHERE NOT (salary > 50.0)")


def test_constant_filters_and_literal_columns(people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    assert len(result(O.Filter(people, L(False)))) == 0
    assert len(result(O.Filter(people, L(None, BOOL)))) == 0
    out = result(project(O.Filter(people, L(True)), id=C("id"), one=L(1), s=L("x'y"), n=L(None),
                         d=L(dt.date(2020, 2, 29)), f=L(2.5), b=L(True)))
    assert_same(out, con, "SELECT id, 1 AS one, 'x''y' AS s, NULL AS n, DATE '2020-02-29' AS d, 2.5 AS f, "
                          "TRUE AS b FROM people")
    assert str(out["one"].dtype) == "int64[pyarrow]" and str(out["d"].dtype) == "date32[day][pyarrow]"
