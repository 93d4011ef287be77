# ruff: noqa: F811 - paths and con are fixtures from tests/local_helpers.py, requested by name
"""The local engine (backends/local): generated pandas + pyarrow programs must
give DuckDB's answers on the same files, including every NULL corner."""

from __future__ import annotations

import ast
import datetime as dt
import os
import subprocess
import sys
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from musketeer.backends.base import RunOptions
from musketeer.backends.local import BACKEND, LocalBackend
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.schema import Schema
from musketeer.ir.types import BOOL, DATE, FLOAT64, INT64, STRING, TIMESTAMP, DataError, decimal
from musketeer.ir.workflow import Workflow
from tests.local_helpers import (  # noqa: F401 - paths, con: module-scoped fixtures, requested by name
    DEPTS_TYPES, PEOPLE, PEOPLE_TYPES, C, L, arrow_table, assert_injection_result, assert_same,
    assert_text_stays_data, con, duck, frame_rows, injection_case, keep, paths, project, result, run, scan,
    workflow, write_tables,
)

IV = E.Interval  # (months, days)
PY = sys.executable


@pytest.fixture(scope="module")
def people(paths: dict[str, Path]) -> O.Scan:
    return scan("people", paths["people"], PEOPLE_TYPES)


@pytest.fixture(scope="module")
def depts(paths: dict[str, Path]) -> O.Scan:
    return scan("depts", paths["depts"], DEPTS_TYPES)


# --- the backend contract ---------------------------------------------------------------
def test_backend_descriptor() -> None:
    assert BACKEND.name == "local" and isinstance(BACKEND, LocalBackend)
    assert set(O.OPERATORS) <= BACKEND.capabilities.operators
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
    ("case_constant_conditions", E.Case(((L(None, BOOL), L(1)), (E.IsNull(L(None)), C("qty")))),
     "CASE WHEN NULL THEN 1 WHEN NULL IS NULL THEN qty END"),
    ("literals_only", E.Arith("+", E.Arith("/", L(7), L(2)), E.Arith("%", L(-7), L(2))), "7 / 2 + -7 % 2"),
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
    ("concat", E.Func("concat", (C("name"), L("-"), C("dept"))), "name || '-' || dept"),  # IR concat is SQL's ||
    ("concat_non_strings", E.Func("concat", (C("qty"), L("/"), C("hired"))), "qty || '/' || hired"),
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


# --- joins -------------------------------------------------------------------------------
RESIDUAL = E.Compare("<", C("qty"), C("floor_no"))
JOIN_SQL = {"inner": "JOIN", "left": "LEFT JOIN", "right": "RIGHT JOIN", "full": "FULL JOIN"}


@pytest.mark.parametrize("kind", ["inner", "left", "right", "full"])
@pytest.mark.parametrize("residual", [False, True], ids=["keys", "keys+residual"])
def test_join(kind: str, residual: bool, people: O.Scan, depts: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    j = O.Join(people, depts, kind, ("k",), ("k2",), RESIDUAL if residual else None)
    extra = " AND p.qty < d.floor_no" if residual else ""
    assert_same(result(keep(j, "id", "k", "qty", "d_dept", "k2", "floor_no")), con,
                f"SELECT id, k, qty, d_dept, k2, floor_no FROM people p {JOIN_SQL[kind]} depts d "
                f"ON p.k = d.k2{extra}")


@pytest.mark.parametrize("kind", ["inner", "left", "right", "full"])
def test_join_on_residual_only_and_two_keys(kind: str, people: O.Scan, depts: O.Scan,
                                            con: duckdb.DuckDBPyConnection) -> None:
    theta = O.Join(people, depts, kind, residual=E.Compare(">", C("salary"), C("budget")))
    assert_same(result(keep(theta, "id", "d_dept", "budget")), con,
                f"SELECT id, d_dept, budget FROM people p {JOIN_SQL[kind]} depts d ON p.salary > d.budget")
    two = O.Join(people, depts, kind, ("dept", "k"), ("d_dept", "k2"))
    assert_same(result(keep(two, "id", "dept", "d_dept", "budget")), con,
                f"SELECT id, dept, d_dept, budget FROM people p {JOIN_SQL[kind]} depts d "
                f"ON p.dept = d.d_dept AND p.k = d.k2")


def test_join_keys_of_different_types(people: O.Scan, depts: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    j = O.Join(people, depts, "left", ("k",), ("floor_no",))
    out = result(keep(j, "id", "k", "floor_no"))
    assert str(out["k"].dtype) == "int64[pyarrow]"  # the key keeps its own type in the output
    assert_same(out, con, "SELECT id, k, floor_no FROM people p LEFT JOIN depts d ON p.k = d.floor_no")


@pytest.mark.parametrize("key", ["k", "dept", "hired", "ts", "active", "salary", "price"])
@pytest.mark.parametrize("kind", ["inner", "left", "right", "full"])
def test_self_join_on_every_key_type(key: str, kind: str, paths: dict[str, Path],
                                     con: duckdb.DuckDBPyConnection) -> None:
    """Equi-joins on each column type (the hash join takes integer, string,
    date, timestamp and bool keys, float keys keep the pandas path), carrying
    every column type, NULL keys and duplicate keys on both sides; the
    right side is filtered smaller or larger than the left, so both sides get
    hashed."""
    right_names = {n: f"r_{n}" for n in PEOPLE_TYPES}
    for cut in (4, 10):
        left = O.Filter(scan("people", paths["people"], PEOPLE_TYPES), E.Compare("<=", C("id"), L(cut)))
        right = scan("people", paths["people"], PEOPLE_TYPES, rename=right_names)
        j = O.Join(left, right, kind, (key,), (f"r_{key}",))
        cols = ", ".join([f"a.{n}" for n in PEOPLE_TYPES] + [f"b.{n} AS r_{n}" for n in PEOPLE_TYPES])
        assert_same(result(j), con, f"SELECT {cols} FROM (SELECT * FROM people WHERE id <= {cut}) a "
                                    f"{JOIN_SQL[kind]} people b ON a.{key} = b.{key}")


def test_float_join_keys_match_negative_zero(tmp_path: Path) -> None:
    """-0.0 = 0.0 and NaN = NaN in SQL (DuckDB), though they differ bit for bit."""
    path = tmp_path / "f.parquet"
    nans = np.array([np.nan, -np.nan, np.float64(np.nan) * -1.0]).tolist()
    pq.write_table(pa.table({"x": pa.array([0.0, -0.0, 1.5, None, *nans], pa.float64()),
                             "i": list(range(1, 8))}), path)
    a = scan("f", path, {"x": FLOAT64, "i": INT64})
    b = scan("f", path, {"x": FLOAT64, "i": INT64}, rename={"x": "y", "i": "j"})
    con = duckdb.connect()
    con.sql(f"CREATE VIEW f AS SELECT * FROM read_parquet('{path}')")
    for kind in ("inner", "left", "full"):
        assert_same(result(O.Join(a, b, kind, ("x",), ("y",))), con,
                    f"SELECT a.x, a.i, b.x AS y, b.i AS j FROM f a {JOIN_SQL[kind]} f b ON a.x = b.x")


def test_negative_zero_and_nan_group_match_and_dedupe_as_in_duckdb(tmp_path: Path) -> None:
    """GROUP BY, DISTINCT, EXISTS, IN and the set operations treat -0.0 as
    0.0 and all NaNs as one value (pyarrow's hashing alone would not)."""
    path = tmp_path / "f.parquet"
    nans = np.array([np.nan, -np.nan]).tolist()
    pq.write_table(pa.table({"x": pa.array([0.0, -0.0, 1.5, None, *nans, -0.0], pa.float64()),
                             "i": list(range(1, 8))}), path)
    f = scan("f", path, {"x": FLOAT64, "i": INT64})
    g = scan("f", path, {"x": FLOAT64, "i": INT64}, rename={"x": "y", "i": "j"})
    con = duckdb.connect()
    con.sql(f"CREATE VIEW f AS SELECT * FROM read_parquet('{path}')")
    assert_same(result(O.Aggregate(f, ("x",), (("n", E.AggCall("count_star")), ("s", E.AggCall("sum", "i"))))),
                con, "SELECT x, count(*) AS n, sum(i) AS s FROM f GROUP BY x")
    assert_same(result(O.Distinct(keep(f, "x"))), con, "SELECT DISTINCT x FROM f")
    zero_or_nan = O.Filter(g, E.InList(C("j"), (L(2), L(6)), False))  # -0.0 and the negative NaN
    for kind in ("semi", "anti"):
        assert_same(result(keep(O.Join(f, zero_or_nan, kind, ("x",), ("y",)), "i")), con,
                    f"SELECT i FROM f WHERE {'NOT ' if kind == 'anti' else ''}EXISTS "
                    f"(SELECT 1 FROM f g WHERE g.x = f.x AND g.i IN (2, 6))")
    # (DuckDB folds `x IN (..., NaN)` over a parquet scan to false for NaN, so only -0.0 here)
    assert_same(result(keep(O.Filter(f, E.InList(C("x"), (L(0.0), L(2.5)), False)), "i")), con,
                "SELECT i FROM f WHERE x IN (0.0, 2.5)")
    zero = keep(O.Filter(f, E.Compare("=", C("i"), L(2))), "x")
    for cls, sql_op in ((O.Intersect, "INTERSECT"), (O.Except, "EXCEPT")):
        assert_same(result(cls(keep(f, "x"), zero, True)), con, f"SELECT x FROM f {sql_op} SELECT x FROM f WHERE i = 2")


def test_cross_join(people: O.Scan, depts: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    assert_same(result(keep(O.Join(people, depts, "cross"), "id", "d_dept")), con,
                "SELECT id, d_dept FROM people CROSS JOIN depts")


@pytest.mark.parametrize("anti", [False, True], ids=["semi", "anti"])
@pytest.mark.parametrize("residual", [False, True], ids=["keys", "keys+residual"])
def test_semi_and_anti_join(anti: bool, residual: bool, people: O.Scan, depts: O.Scan,
                            con: duckdb.DuckDBPyConnection) -> None:
    j = O.Join(people, depts, "anti" if anti else "semi", ("k",), ("k2",), RESIDUAL if residual else None)
    extra = " AND p.qty < d.floor_no" if residual else ""
    out = result(j)
    assert list(out.columns) == list(PEOPLE_TYPES)
    assert_same(keep_frame(out), con,
                f"SELECT id, k FROM people p WHERE {'NOT ' if anti else ''}EXISTS "
                f"(SELECT 1 FROM depts d WHERE p.k = d.k2{extra})")


def keep_frame(frame):  # noqa: ANN001, ANN201 - tiny test helper
    return frame[["id", "k"]]


def test_semi_join_with_shared_column_names(people: O.Scan, con: duckdb.DuckDBPyConnection,
                                            paths: dict[str, Path]) -> None:
    # without a residual the right side's names never surface, so they may clash with the left's
    other = scan("people", paths["people"], PEOPLE_TYPES, columns=["k", "dept"])
    for kind in ("semi", "anti"):
        out = result(keep(O.Join(people, O.Filter(other, E.Compare("=", C("dept"), L("ops"))), kind,
                                 ("k", "dept"), ("k", "dept")), "id"))
        assert_same(out, con, f"SELECT id FROM people p WHERE {'NOT ' if kind == 'anti' else ''}EXISTS "
                              f"(SELECT 1 FROM people q WHERE q.dept = 'ops' AND q.k = p.k AND q.dept = p.dept)")


@pytest.mark.parametrize("right_filter,sql_filter", [
    (None, ""),                                                # right keys hold a NULL: nothing survives
    (E.IsNull(C("k2"), True), "WHERE k2 IS NOT NULL"),          # no NULLs: left NULL keys are dropped
    (L(False), "WHERE false"),                                 # empty right side: every left row stays
], ids=["right-has-null", "right-no-null", "right-empty"])
def test_null_aware_anti_join(right_filter: E.Expr | None, sql_filter: str, people: O.Scan, depts: O.Scan,
                              con: duckdb.DuckDBPyConnection) -> None:
    right = depts if right_filter is None else O.Filter(depts, right_filter)
    out = result(keep(O.Join(people, right, "anti", ("k",), ("k2",), null_aware=True), "id", "k"))
    assert_same(out, con, f"SELECT id, k FROM people WHERE k NOT IN (SELECT k2 FROM depts {sql_filter})")


def test_null_aware_anti_join_correlated(people: O.Scan, depts: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    # k NOT IN (SELECT k2 FROM depts WHERE d_dept = dept): the residual correlates
    j = O.Join(people, depts, "anti", ("k",), ("k2",), E.Compare("=", C("dept"), C("d_dept")), null_aware=True)
    assert_same(result(keep(j, "id", "k", "dept")), con,
                "SELECT id, k, dept FROM people p WHERE k NOT IN (SELECT k2 FROM depts d WHERE d.d_dept = p.dept)")


# --- aggregation ---------------------------------------------------------------------------
AGGS = (
    ("total_qty", E.AggCall("sum", "qty")), ("n_qty", E.AggCall("count", "qty")), ("n", E.AggCall("count_star")),
    ("avg_salary", E.AggCall("avg", "salary")), ("first_name", E.AggCall("min", "name")),
    ("last_hired", E.AggCall("max", "hired")), ("max_ts", E.AggCall("max", "ts")),
    ("n_k", E.AggCall("count", "k", distinct=True)), ("sum_k", E.AggCall("sum", "k", distinct=True)),
    ("avg_k", E.AggCall("avg", "k", distinct=True)), ("sum_price", E.AggCall("sum", "price")),
    ("min_active", E.AggCall("min", "active")),
)
AGGS_SQL = ("sum(qty) AS total_qty, count(qty) AS n_qty, count(*) AS n, avg(salary) AS avg_salary, "
            "min(name) AS first_name, max(hired) AS last_hired, max(ts) AS max_ts, count(DISTINCT k) AS n_k, "
            "sum(DISTINCT k) AS sum_k, avg(DISTINCT k) AS avg_k, sum(price) AS sum_price, "
            "min(active) AS min_active")


@pytest.mark.parametrize("keys", [(), ("dept",), ("dept", "active")], ids=["global", "one-key", "two-keys"])
def test_aggregate(keys: tuple[str, ...], people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    out = result(O.Aggregate(people, keys, AGGS))
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    select = ", ".join(keys + (AGGS_SQL,))
    assert_same(out, con, f"SELECT {select} FROM people{group}")
    assert str(out["n"].dtype) == "int64[pyarrow]" and str(out["total_qty"].dtype) == "int64[pyarrow]"


def test_aggregate_over_empty_input(people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    empty = O.Filter(people, L(False))
    out = result(O.Aggregate(empty, (), AGGS))
    assert len(out) == 1 and out["n"][0] == 0 and out["total_qty"].isna()[0]
    assert_same(out, con, f"SELECT {AGGS_SQL} FROM people WHERE false")
    assert len(result(O.Aggregate(empty, ("dept",), AGGS))) == 0


def test_group_keys_only_and_distinct(people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    assert_same(result(O.Aggregate(people, ("dept", "active"), ())), con,
                "SELECT dept, active FROM people GROUP BY dept, active")
    assert_same(result(O.Distinct(keep(people, "dept", "active"))), con,
                "SELECT DISTINCT dept, active FROM people")


# --- set operations ----------------------------------------------------------------------------
def _halves(people: O.Scan) -> tuple[O.Op, O.Op]:
    a = keep(O.Filter(people, E.Compare("<=", C("id"), L(8))), "dept", "k")
    b = keep(O.Filter(people, E.Compare(">=", C("id"), L(3))), "dept", "k")
    return a, b


@pytest.mark.parametrize("op_class,sql_op", [(O.Union, "UNION"), (O.Intersect, "INTERSECT"), (O.Except, "EXCEPT")])
@pytest.mark.parametrize("distinct", [True, False], ids=["distinct", "all"])
def test_set_operations(op_class: type, sql_op: str, distinct: bool, people: O.Scan,
                        con: duckdb.DuckDBPyConnection) -> None:
    a, b = _halves(people)
    doubled = O.Union(b, b, distinct=False)  # duplicates on the right too, for the bag semantics
    out = result(op_class(a, doubled if sql_op != "UNION" else b, distinct=distinct))
    right_sql = ("(SELECT dept, k FROM people WHERE id >= 3 UNION ALL SELECT dept, k FROM people WHERE id >= 3)"
                 if sql_op != "UNION" else "SELECT dept, k FROM people WHERE id >= 3")
    assert_same(out, con, f"SELECT dept, k FROM people WHERE id <= 8 {sql_op}{'' if distinct else ' ALL'} "
                          f"SELECT * FROM ({right_sql})")


def test_union_promotes_types_and_takes_left_names(people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    a = keep(people, "id", "k")
    b = project(people, x=C("id"), y=C("salary"))
    out = result(O.Union(a, b, distinct=False))
    assert list(out.columns) == ["id", "k"] and str(out["k"].dtype) == "double[pyarrow]"
    assert_same(out, con, "SELECT id, k FROM people UNION ALL SELECT id, salary FROM people")


# --- ordering -----------------------------------------------------------------------------------
SORTS = [
    ((O.SortKey("dept", True, True), O.SortKey("salary", False, False), O.SortKey("id")),
     "dept ASC NULLS FIRST, salary DESC NULLS LAST, id"),
    ((O.SortKey("hired", False, True), O.SortKey("name", True, False), O.SortKey("id")),
     "hired DESC NULLS FIRST, name ASC NULLS LAST, id"),
    ((O.SortKey("active", True, True), O.SortKey("ts", False, True), O.SortKey("id", False)),
     "active ASC NULLS FIRST, ts DESC NULLS FIRST, id DESC"),
]


@pytest.mark.parametrize("keys,sql", SORTS)
def test_sort_with_per_key_null_placement(keys: tuple[O.SortKey, ...], sql: str, people: O.Scan,
                                          con: duckdb.DuckDBPyConnection) -> None:
    out = result(keep(O.Sort(people, keys), "id", "dept", "salary", "hired", "name", "active", "ts"))
    assert_same(out, con, f"SELECT id, dept, salary, hired, name, active, ts FROM people ORDER BY {sql}",
                ordered=True)


def test_sort_is_stable(people: O.Scan) -> None:
    out = result(O.Sort(people, (O.SortKey("dept", True, True),)))
    for _, group in out.groupby("dept", dropna=False):
        assert list(group["id"]) == sorted(group["id"])


@pytest.mark.parametrize("count,offset", [(5, 3), (None, 10), (0, 0), (100, 0)])
def test_limit_offset(count: int | None, offset: int, people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    out = result(keep(O.Limit(O.Sort(people, (O.SortKey("id"),)), count, offset), "id"))
    limit = f"LIMIT {count}" if count is not None else ""
    assert_same(out, con, f"SELECT id FROM people ORDER BY id {limit} OFFSET {offset}", ordered=True)
    assert list(out.index) == list(range(len(out)))


# --- While loops ------------------------------------------------------------------------------
NUMS = {"id": INT64, "v": INT64}


def _write_nums(path: Path, values: list[int | None]) -> Path:
    pq.write_table(pa.table({"id": pa.array(range(len(values)), pa.int64()), "v": pa.array(values, pa.int64())}),
                   path)
    return path


def _doubling_loop(nums: O.Scan, max_iter: int | None = 100, limit: int = 1000) -> O.While:
    """Double every v until the smallest one exceeds `limit` (stop relation over the new values)."""
    x = O.LoopVar("x", nums.schema)
    doubled = project(x, id=C("id"), v=E.Arith("*", C("v"), L(2)))
    smallest = O.Aggregate(doubled, (), (("m", E.AggCall("min", "v")),))
    stop = project(smallest, done=E.Compare(">", C("m"), L(limit)))
    return O.While((nums,), ("x",), (doubled,), "x", max_iter=max_iter, stop=stop)


@pytest.mark.parametrize("values", [[3, 700, None], [600, 2000], [1, 5]], ids=["from-3", "from-600", "from-1"])
def test_while_with_data_dependent_stop(values: list[int | None], tmp_path: Path, paths: dict[str, Path]) -> None:
    default = _write_nums(tmp_path / "default.parquet", [1])
    program = BACKEND.generate(workflow(_doubling_loop(scan("nums", default, NUMS))))
    data = _write_nums(tmp_path / "nums.parquet", values)
    out = BACKEND.run(program, RunOptions(tables={"nums": str(data)}))  # same program, other input
    con = duckdb.connect()
    expected_iterations = con.sql(
        f"WITH RECURSIVE r(i, m) AS (SELECT 0, min(v) FROM read_parquet('{data}') "
        f"UNION ALL SELECT i + 1, m * 2 FROM r WHERE m <= 1000) SELECT max(i) FROM r").fetchone()[0]
    assert out.metrics["iterations"] == expected_iterations
    (loop,) = out.metrics["loops"].values()
    assert loop == {"iterations": expected_iterations, "converged": True, "runs": 1}
    assert_same(out.outputs["result"], con,
                f"SELECT id, v * CAST(2 ** {expected_iterations} AS BIGINT) AS v FROM read_parquet('{data}')")


def test_while_fixpoint_transitive_closure(tmp_path: Path) -> None:
    """WITH RECURSIVE's answer; the edge to NULL joins nothing but stays in
    the closure, so the fixpoint test must treat NULLs as equal."""
    edges_path = tmp_path / "edges.parquet"
    pq.write_table(pa.table({"src": [1, 2, 3, 4, 6, 7, 2], "dst": [2, 3, 1, 5, 7, 8, None]}), edges_path)
    edges = scan("edges", edges_path, {"src": INT64, "dst": INT64})
    renamed = project(edges, e_src=C("src"), e_dst=C("dst"))
    reach = O.LoopVar("reach", edges.schema)
    step = project(O.Join(reach, renamed, "inner", ("dst",), ("e_src",)), src=C("src"), dst=C("e_dst"))
    body = O.Union(reach, step, distinct=True)
    loop = O.While((edges,), ("reach",), (body,), "reach", max_iter=50, fixpoint=True)
    out = run(loop)
    con = duckdb.connect()
    assert_same(out.outputs["result"], con,
                f"WITH RECURSIVE reach(src, dst) AS (SELECT src, dst FROM read_parquet('{edges_path}') UNION "
                f"SELECT r.src, e.dst FROM reach r JOIN read_parquet('{edges_path}') e ON r.dst = e.src) "
                f"SELECT * FROM reach")
    (loop_metrics,) = out.metrics["loops"].values()
    assert loop_metrics["converged"] is True and 2 <= loop_metrics["iterations"] < 50


def test_while_warns_when_max_iter_stops_it(tmp_path: Path) -> None:
    nums = scan("nums", _write_nums(tmp_path / "n.parquet", [1, 2]), NUMS)
    with pytest.warns(RuntimeWarning, match="did not converge after 3 iterations"):
        out = run(_doubling_loop(nums, max_iter=3, limit=10**9))
    assert out.metrics["iterations"] == 3
    assert list(out.metrics["loops"].values())[0]["converged"] is False
    assert sorted(out.outputs["result"]["v"]) == [8, 16]
    with warnings.catch_warnings():  # a plain counted loop (no stop rule) is not "unconverged"
        warnings.simplefilter("error")
        x = O.LoopVar("x", nums.schema)
        counted = O.While((nums,), ("x",), (project(x, id=C("id"), v=E.Arith("+", C("v"), L(1))),), "x", max_iter=4)
        assert sorted(result(counted)["v"]) == [5, 6]


def test_while_with_two_variables_and_invariant_input(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    nums = scan("nums", _write_nums(tmp_path / "n.parquet", [1, 2, 3]), NUMS)
    bonus = O.Aggregate(nums, (), (("b", E.AggCall("sum", "v")),))  # loop-invariant: computed once
    x, n = O.LoopVar("x", nums.schema), O.LoopVar("n", bonus.schema)
    x_next = project(O.Join(x, bonus, "cross"), id=C("id"), v=E.Arith("+", C("v"), C("b")))
    n_next = project(n, b=E.Arith("+", C("b"), L(1)))
    loop = O.While((nums, bonus), ("x", "n"), (x_next, n_next), "x", max_iter=3)
    program = BACKEND.generate(workflow(loop))
    assert program.text.count("= aggregate(") == 1
    assert sorted(BACKEND.run(program, RunOptions()).outputs["result"]["v"]) == [19, 20, 21]


# --- UDFs ---------------------------------------------------------------------------------------
UDF_MODULE = '''
def shout(row):
    name = row["name"]
    return {"id": row["id"], "loud": None if name is None else name.upper() + "!", "hired": row["hired"]}

def drop_odd(row):
    return None if row["id"] % 2 else {"id": row["id"], "loud": "x", "hired": None}

class Scale:
    @staticmethod
    def partition(frame):
        frame["pay"] = frame["salary"] * 2  # in place: must not leak into the input relation
        return frame[["id", "pay"]]
'''


def test_udf_row_and_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, people: O.Scan,
                               con: duckdb.DuckDBPyConnection) -> None:
    (tmp_path / "my_udfs.py").write_text(UDF_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    row_schema = Schema.of([("id", INT64), ("loud", STRING), ("hired", DATE)])
    out = result(O.UDF(people, "my_udfs", "shout", "row", row_schema))
    assert_same(out, con, "SELECT id, upper(name) || '!' AS loud, hired FROM people")
    assert len(result(O.UDF(people, "my_udfs", "drop_odd", "row", row_schema))) == 6
    part = O.UDF(people, "my_udfs", "Scale.partition", "partition", Schema.of([("id", INT64), ("pay", FLOAT64)]))
    assert_same(result(part), con, "SELECT id, salary * 2 AS pay FROM people")
    side = Workflow((O.Sink(part, "result"), O.Sink(people, "input")), "udf")
    assert list(run(side).outputs["input"].columns) == list(PEOPLE_TYPES)
    with pytest.raises(Exception, match="cannot import UDF module 'no_such_module'"):
        result(O.UDF(people, "no_such_module", "f", "row", row_schema))


# --- files: reading, errors, sinks --------------------------------------------------------------
def test_csv_scan_matches_parquet(paths: dict[str, Path], con: duckdb.DuckDBPyConnection) -> None:
    types = {k: v for k, v in PEOPLE_TYPES.items() if k != "price"}
    out = result(scan("people", paths["people_csv"], types, fmt="csv", rename={"k": "kk"}))
    assert_same(out, con, "SELECT id, k AS kk, name, dept, salary, qty, hired, active, ts FROM people")


def test_missing_and_unreadable_inputs(tmp_path: Path, paths: dict[str, Path]) -> None:
    missing = tmp_path / "nope.parquet"
    with pytest.raises(DataError, match=f"{missing}: no such file"):
        result(scan("people", missing, PEOPLE_TYPES))
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(DataError, match="junk.parquet: cannot read this parquet file"):
        result(scan("people", junk, PEOPLE_TYPES))
    with pytest.raises(DataError, match="no column 'nosuch'"):
        result(scan("people", paths["people"], {"nosuch": INT64}))
    with pytest.raises(DataError, match="column 'name' holds string values, expected int64"):
        result(scan("people", paths["people"], {"name": INT64}))
    odd = tmp_path / "people.data"
    odd.write_bytes(Path(paths["people"]).read_bytes())
    assert len(result(scan("people", odd, PEOPLE_TYPES, fmt="PARQUET"))) == 12  # format from the Scan
    with pytest.raises(DataError, match="cannot tell the format of"):
        result(scan("people", odd, PEOPLE_TYPES, fmt="orc"))
    with pytest.raises(DataError, match="no input table named 'peeple'"):
        result(scan("people", paths["people"], PEOPLE_TYPES), tables={"peeple": "x"})


def _bad_csv(directory: Path) -> Path:
    path = directory / "bad.csv"
    path.write_text("a,b\n1,x\n2,y\n,z\nabc,w\n5,v\n")
    return path


def test_bad_csv_row_names_file_line_and_column(tmp_path: Path) -> None:
    bad = _bad_csv(tmp_path)
    with pytest.raises(DataError) as info:
        result(scan("t", bad, {"a": INT64, "b": STRING}, fmt="csv"))
    assert str(info.value) == f"{bad}:5: column 'a': expected int64, got 'abc'"


def test_sink_with_path_is_written_atomically(tmp_path: Path, people: O.Scan,
                                              con: duckdb.DuckDBPyConnection) -> None:
    csv_out, pq_out = tmp_path / "out.csv", tmp_path / "out.parquet"
    rel = keep(O.Filter(people, E.IsNull(C("dept"), True)), "id", "dept", "hired")
    wf = Workflow((O.Sink(rel, "result", str(csv_out)), O.Sink(rel, "copy", str(pq_out))), "sinks")
    out = run(wf)
    assert set(out.outputs) == {"result", "copy"}
    sql = "SELECT id, dept, hired FROM people WHERE dept IS NOT NULL"
    assert_same(out.outputs["copy"], con, sql)
    assert_same(pq.read_table(pq_out).to_pandas(types_mapper=pd.ArrowDtype), con, sql)
    assert_same(read_csv(csv_out), con, sql)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.parquet"]  # no temp files left
    odd = tmp_path / "parquet.csv"  # an explicit format beats the extension
    run(Workflow((O.Sink(rel, "result", str(odd), "parquet"),), "odd"))
    assert_same(pq.read_table(odd).to_pandas(types_mapper=pd.ArrowDtype), con, sql)


# --- the standalone program ---------------------------------------------------------------------
def read_csv(path: Path) -> pd.DataFrame:
    """A CSV the program wrote, with empty fields read back as NULL."""
    options = pacsv.ConvertOptions(strings_can_be_null=True)
    return pacsv.read_csv(path, convert_options=options).to_pandas(types_mapper=pd.ArrowDtype)


def _standalone(tmp_path: Path, paths: dict[str, Path]) -> Path:
    types = {k: v for k, v in PEOPLE_TYPES.items() if k != "price"}
    people = scan("people", paths["people_csv"], types, fmt="csv")
    j = O.Join(people, scan("depts", paths["depts"], DEPTS_TYPES), "left", ("dept",), ("d_dept",))
    agg = O.Aggregate(j, ("dept",), (("n", E.AggCall("count_star")), ("budget", E.AggCall("sum", "budget"))))
    q = tmp_path / "q.py"
    q.write_text(BACKEND.generate(workflow(O.Sort(agg, (O.SortKey("dept"),)), "standalone")).text)
    return q


def test_standalone_program(tmp_path: Path, paths: dict[str, Path], con: duckdb.DuckDBPyConnection) -> None:
    q = _standalone(tmp_path, paths)
    sql = ("SELECT dept, count(*) AS n, sum(budget) AS budget FROM read_csv('{people}') p LEFT JOIN depts d "
           "ON p.dept = d.d_dept GROUP BY dept ORDER BY dept NULLS LAST")
    done = subprocess.run([PY, str(q), "--output", "out.csv"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ours = read_csv(tmp_path / "out.csv")
    assert_same(ours, con, sql.format(people=paths["people_csv"]), ordered=True)
    printed = subprocess.run([PY, str(q)], cwd=tmp_path, capture_output=True, text=True)
    assert printed.returncode == 0 and "budget" in printed.stdout and "NULL" in printed.stdout
    # --table rebinds an input; here to a CSV holding only the first four people
    few = arrow_table(PEOPLE, PEOPLE_TYPES).drop_columns(["price"]).slice(0, 4)
    pacsv.write_csv(few, tmp_path / "few.csv")
    again = subprocess.run([PY, str(q), "--table", "people=few.csv", "--output", "few.parquet"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    # eng: 2 people x 1 dept row, ops: 1 person x 2 dept rows, NULL dept: 1 person, no partner
    assert pq.read_table(tmp_path / "few.parquet")["n"].to_pylist() == [2, 2, 1]


def test_standalone_program_rejects_bad_csv(tmp_path: Path, paths: dict[str, Path]) -> None:
    q = _standalone(tmp_path, paths)
    bad = tmp_path / "people_bad.csv"
    lines = Path(paths["people_csv"]).read_text().splitlines()
    lines[3] = "oops" + lines[3][lines[3].index(","):]  # line 4: id is not an integer
    bad.write_text("\n".join(lines) + "\n")
    done = subprocess.run([PY, str(q), "--table", f"people={bad}", "--output", "out.csv"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {bad}:4: column 'id': expected int64, got 'oops'"
    assert not (tmp_path / "out.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".musketeer")]


# --- user text can never become code ---------------------------------------------------------
def test_injection_attempts_stay_data(tmp_path: Path) -> None:
    case = injection_case(tmp_path, "we'ird\"dir", "x'\n__import__('os').system('touch PWNED')\n'", "\u2028x\x00")
    text = BACKEND.generate(case.workflow).text
    assert_text_stays_data(text)
    os.chdir(tmp_path)
    assert_injection_result(case, BACKEND.run(BACKEND.generate(case.workflow), RunOptions()).outputs["result"])
    case.sink_path.unlink()
    (tmp_path / "q.py").write_text(text)
    done = subprocess.run([PY, "q.py"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert case.sink_path.exists() and not any(p.exists() for p in case.canaries)


def test_lopsided_joins_prefilter_the_big_side(tmp_path: Path) -> None:
    """Above 100k rows the big side is pre-filtered on the small side's keys; results must not change."""
    import numpy as np

    rng = np.random.default_rng(7)
    n = 150_000
    keys = rng.integers(0, 50, n)
    big_path, small_path = tmp_path / "big.parquet", tmp_path / "small.parquet"
    pq.write_table(pa.table({"b_id": np.arange(n), "bk": pa.array(keys, mask=keys == 0),
                             "bv": rng.integers(0, 10, n)}), big_path)
    pq.write_table(pa.table({"sk": pa.array([1, 2, 2, None, 99], pa.int64()), "sv": [5, 6, 7, 8, 9]}), small_path)
    big = scan("big", big_path, {"b_id": INT64, "bk": INT64, "bv": INT64})
    small = scan("small", small_path, {"sk": INT64, "sv": INT64})
    con = duckdb.connect()
    con.sql(f"CREATE VIEW big AS SELECT * FROM read_parquet('{big_path}')")
    con.sql(f"CREATE VIEW small AS SELECT * FROM read_parquet('{small_path}')")
    residual = E.Compare("<", C("bv"), C("sv"))
    for kind in ("inner", "left", "right"):
        for left, right, lk, rk, sql in ((big, small, "bk", "sk", "big b {} small s ON b.bk = s.sk"),
                                         (small, big, "sk", "bk", "small s {} big b ON s.sk = b.bk")):
            out = result(O.Aggregate(O.Join(left, right, kind, (lk,), (rk,)), (),
                                     (("n", E.AggCall("count_star")), ("ids", E.AggCall("sum", "b_id")),
                                      ("sv", E.AggCall("sum", "sv")))))
            assert_same(out, con, f"SELECT count(*) AS n, sum(b_id) AS ids, sum(sv) AS sv FROM "
                                  f"{sql.format(JOIN_SQL[kind])}")
    for kind in ("semi", "anti"):
        out = result(O.Aggregate(O.Join(small, big, kind, ("sk",), ("bk",), residual), (),
                                 (("n", E.AggCall("count_star")), ("sv", E.AggCall("sum", "sv")))))
        assert_same(out, con, f"SELECT count(*) AS n, sum(sv) AS sv FROM small s WHERE "
                              f"{'NOT ' if kind == 'anti' else ''}EXISTS (SELECT 1 FROM big b WHERE b.bk = s.sk "
                              f"AND b.bv < s.sv)")


def test_nested_while_loops(tmp_path: Path) -> None:
    """An inner loop inside an outer loop's body: scoping, per-run metrics."""
    start = [1, 3]
    nums = scan("nums", _write_nums(tmp_path / "n.parquet", start), NUMS)
    outer_var = O.LoopVar("ox", nums.schema)
    inner_var = O.LoopVar("ix", nums.schema)
    doubled = project(inner_var, id=C("id"), v=E.Arith("*", C("v"), L(2)))
    done = project(O.Aggregate(doubled, (), (("m", E.AggCall("min", "v")),)), done=E.Compare(">", C("m"), L(100)))
    inner = O.While((outer_var,), ("ix",), (doubled,), "ix", max_iter=50, stop=done)
    outer = O.While((nums,), ("ox",), (project(inner, id=C("id"), v=E.Arith("+", C("v"), L(1))),), "ox", max_iter=3)
    out = run(outer)
    values, inner_iterations = list(start), 0  # the same computation in plain Python
    for _ in range(3):
        while True:
            values = [v * 2 for v in values]
            inner_iterations += 1
            if min(values) > 100:
                break
        values = [v + 1 for v in values]
    assert sorted(out.outputs["result"]["v"]) == sorted(values)
    assert out.metrics["iterations"] == inner_iterations + 3
    runs = sorted(m["runs"] for m in out.metrics["loops"].values())
    assert runs == [1, 3]


def test_substring_bounds_agree_between_codegen_and_program(people: O.Scan) -> None:
    """Constant SUBSTRING bounds are computed at generation time, per-row ones
    inside the program: the two implementations must agree."""
    from musketeer.backends.common.arrow_exprs import slice_bounds
    from musketeer.backends.local.runner import load_program

    program = BACKEND.generate(workflow(project(people, s=E.Func("substring", (C("name"), C("k"), C("qty"))))))
    in_program = load_program(program)._slice_bounds
    for start in range(-8, 9):
        for length in [None, *range(-8, 9)]:
            assert in_program(start, length) == slice_bounds(start, length), (start, length)


def test_csv_empty_fields_are_null_like_duckdb(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('a,b,c\n1,"",\n2,,2020-01-02\n3,x,\n')
    types = {"a": INT64, "b": STRING, "c": DATE}
    con = duckdb.connect()
    assert_same(result(scan("q", path, types, fmt="csv")), con,
                f"SELECT * FROM read_csv('{path}', header=true, columns={{'a': 'BIGINT', 'b': 'VARCHAR', 'c': 'DATE'}})")


def test_a_file_scanned_twice_is_read_once(paths: dict[str, Path], con: duckdb.DuckDBPyConnection) -> None:
    a = scan("people", paths["people"], PEOPLE_TYPES, columns=["id", "k", "dept"])
    b = O.Scan("people", str(paths["people"]), "parquet",
               (O.ScanColumn("id", "b_id", INT64), O.ScanColumn("k", "b_k", INT64), O.ScanColumn("k", "b_k2", INT64)))
    j = keep(O.Join(a, b, "inner", ("k",), ("b_k",)), "id", "dept", "b_id", "b_k2")
    text = BACKEND.generate(workflow(j)).text
    assert text.count("= read_table(") == 1 and "_file = read_table(" in text
    assert_same(result(j), con, "SELECT a.id, a.dept, b.id AS b_id, b.k AS b_k2 FROM people a JOIN people b "
                                "ON a.k = b.k")


@pytest.mark.parametrize("kind", ["inner", "left", "right", "full", "semi", "anti"])
def test_joins_with_an_empty_side(kind: str, people: O.Scan, depts: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    none_p, none_d = "(SELECT * FROM people WHERE false)", "(SELECT * FROM depts WHERE false)"
    for left, right, lsql, rsql in ((O.Filter(people, L(False)), depts, none_p, "depts"),
                                    (people, O.Filter(depts, L(False)), "people", none_d)):
        for residual in (None, RESIDUAL):
            extra = " AND p.qty < d.floor_no" if residual is not None else ""
            j = O.Join(left, right, kind, ("k",), ("k2",), residual)
            if kind in ("semi", "anti"):
                sql = (f"SELECT id FROM {lsql} p WHERE {'NOT ' if kind == 'anti' else ''}EXISTS "
                       f"(SELECT 1 FROM {rsql} d WHERE p.k = d.k2{extra})")
                assert_same(result(keep(j, "id")), con, sql)
            else:
                sql = f"SELECT id, d_dept FROM {lsql} p {JOIN_SQL[kind]} {rsql} d ON p.k = d.k2{extra}"
                assert_same(result(keep(j, "id", "d_dept")), con, sql)


def test_set_operations_with_an_empty_side(people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    empty, full = keep(O.Filter(people, L(False)), "dept", "k"), keep(people, "dept", "k")
    for cls, sql_op in ((O.Union, "UNION"), (O.Intersect, "INTERSECT"), (O.Except, "EXCEPT")):
        for distinct in (True, False):
            for a, b, asql, bsql in ((empty, full, "WHERE false", ""), (full, empty, "", "WHERE false")):
                assert_same(result(cls(a, b, distinct)), con,
                            f"SELECT dept, k FROM people {asql} {sql_op}{'' if distinct else ' ALL'} "
                            f"SELECT dept, k FROM people {bsql}")


@pytest.mark.parametrize("right_filter,sql_filter", [
    (None, ""),
    (E.IsNull(C("k2"), True), "WHERE k2 IS NOT NULL"),
    (E.And((E.IsNull(C("k2"), True), E.IsNull(C("d_dept"), True))), "WHERE k2 IS NOT NULL AND d_dept IS NOT NULL"),
], ids=["nulls-in-both-keys", "nulls-in-one-key", "no-nulls"])
def test_null_aware_anti_join_on_two_keys(right_filter: E.Expr | None, sql_filter: str, people: O.Scan,
                                          depts: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    right = depts if right_filter is None else O.Filter(depts, right_filter)
    j = O.Join(people, right, "anti", ("k", "dept"), ("k2", "d_dept"), null_aware=True)
    assert_same(result(keep(j, "id")), con,
                f"SELECT id FROM people WHERE (k, dept) NOT IN (SELECT k2, d_dept FROM depts {sql_filter})")
    # (DuckDB has no correlated multi-column IN, so the residual case is only checked for one key above)
