"""IR optimisation passes: golden rewrites plus property checks.

Workflows are built by hand (Scan paths are fake: nothing runs). Goldens are
the IR text form without schemas, so each expectation reads like a plan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.expr import AggCall, Col, Interval, Lit
from musketeer.ir.passes import (
    PASSES,
    constant_folding,
    magic_sets,
    merge_projects,
    optimize,
    predicate_pushdown,
    projection_pruning,
    remove_redundant,
    reorder_joins,
    semi_join_pushdown,
)
from musketeer.ir.passes.fold import fold_expr
from musketeer.ir.schema import Schema
from musketeer.ir.types import BOOL, DATE, FLOAT64, INT64, NULL, STRING, DataType, parse_type
from musketeer.ir.workflow import Workflow

# --- helpers -----------------------------------------------------------------


def scan(table: str, *cols: str) -> O.Scan:
    """scan("t", "a:int64", "b:string")"""
    columns = []
    for c in cols:
        name, _, t = c.partition(":")
        columns.append(O.ScanColumn(name, name, parse_type(t or "int64")))
    return O.Scan(table, f"/fake/{table}.parquet", "parquet", tuple(columns))


def wf(*ops: O.Op) -> Workflow:
    """Each op becomes a sink: the first is 'result', others 'out1', 'out2'..."""
    sinks = [op if isinstance(op, O.Sink) else O.Sink(op, "result" if n == 0 else f"out{n}")
             for n, op in enumerate(ops)]
    return Workflow(tuple(sinks))


def text(w: Workflow) -> str:
    return w.to_text(with_schema=False)


def lines(*ls: str) -> str:
    return "\n".join(ls) + "\n"


def c(name: str) -> Col:
    return Col(name)


def lit(v: object) -> Lit:
    return Lit.of(v)


def eq(a: E.Expr, b: E.Expr) -> E.Compare:
    return E.Compare("=", a, b)


def cmp(op: str, a: E.Expr, b: E.Expr) -> E.Compare:
    return E.Compare(op, a, b)


def and_(*args: E.Expr) -> E.And:
    return E.And(tuple(args))


def or_(*args: E.Expr) -> E.Or:
    return E.Or(tuple(args))


def project(op: O.Op, *items: str | tuple[str, E.Expr]) -> O.Project:
    exprs = tuple((i, Col(i)) if isinstance(i, str) else i for i in items)
    return O.Project(op, exprs)


# --- constant folding --------------------------------------------------------

SCHEMA = Schema.of([("x", INT64), ("y", INT64), ("b", BOOL), ("d", DATE), ("f", FLOAT64),
                    ("s", STRING)])


def fold(e: E.Expr) -> str:
    folded = fold_expr(e, SCHEMA)
    assert folded.type_in(SCHEMA) == e.type_in(SCHEMA), "folding must keep the type"
    return str(folded)


@pytest.mark.parametrize("expr, expected", [
    (E.Arith("-", lit(dt.date(1998, 12, 1)), lit(Interval(days=90))), "DATE '1998-09-02'"),
    (E.Arith("+", lit(dt.date(1994, 1, 1)), lit(Interval(months=12))), "DATE '1995-01-01'"),
    (E.Arith("+", lit(dt.date(1994, 1, 31)), lit(Interval(months=1))), "DATE '1994-02-28'"),
    (E.Arith("+", lit(dt.date(1996, 1, 31)), lit(Interval(months=1))), "DATE '1996-02-29'"),
    (E.Arith("-", lit(dt.date(1995, 3, 31)), lit(Interval(months=1))), "DATE '1995-02-28'"),
    (E.Arith("-", lit(dt.date(1995, 1, 15)), lit(Interval(months=3))), "DATE '1994-10-15'"),
    (E.Arith("+", lit(Interval(months=1, days=1)), lit(dt.date(1995, 1, 31))), "DATE '1995-03-01'"),
    (E.Arith("+", lit(dt.datetime(1995, 1, 31, 12, 30)), lit(Interval(months=1))),
     "TIMESTAMP '1995-02-28 12:30:00'"),
    (E.Arith("-", lit(dt.date(1995, 3, 1)), lit(dt.date(1995, 2, 1))), "28"),
])
def test_fold_date_arithmetic_uses_calendar_months(expr: E.Expr, expected: str) -> None:
    assert fold(expr) == expected


@pytest.mark.parametrize("expr, expected, dtype", [
    (E.Arith("-", lit(0.06), lit(0.01)), "0.05", FLOAT64),
    (E.Arith("+", lit(0.06), lit(0.01)), "0.07", FLOAT64),
    (E.Arith("*", lit(1.1), lit(1.1)), "1.21", FLOAT64),
    (E.Arith("+", lit(0.1), lit(0.2)), "0.3", FLOAT64),
    (E.Arith("+", lit(1), lit(2)), "3", INT64),
    (E.Arith("*", lit(2), lit(0.5)), "1.0", FLOAT64),
    (E.Arith("/", lit(7), lit(2)), "3.5", FLOAT64),
    (E.Arith("%", lit(-7), lit(2)), "-1", INT64),
    (E.Neg(lit(5)), "-5", INT64),
    (E.Arith("+", c("x"), E.Arith("*", lit(2), lit(3))), "x + 6", INT64),
])
def test_fold_numbers_like_sql_decimals(expr: E.Expr, expected: str, dtype: DataType) -> None:
    folded = fold_expr(expr, SCHEMA)
    assert str(folded) == expected
    assert folded.type_in(SCHEMA) == dtype


def test_fold_decimal_typed_literals_keep_their_type() -> None:
    dec = parse_type("decimal(15,2)")
    e = E.Arith("-", Lit(1.0, dec), Lit(0.07, dec))
    folded = fold_expr(e, SCHEMA)
    assert folded == Lit(0.93, dec)


@pytest.mark.parametrize("expr", [
    E.Arith("/", lit(1), lit(0)),  # NULL in some engines, an error in others
    E.Arith("%", lit(1), lit(0)),
    E.Arith("*", lit(2**62), lit(4)),  # int64 overflow
    E.Cast(lit(2.5), INT64),  # rounding differs between engines
    E.Cast(lit("not a date"), DATE),
    E.Arith("+", lit(dt.date(9999, 12, 1)), lit(Interval(months=1))),
])
def test_fold_leaves_uncertain_results_to_the_engine(expr: E.Expr) -> None:
    assert fold_expr(expr, SCHEMA) == expr


@pytest.mark.parametrize("expr, expected", [
    (eq(lit(1), lit(1)), "TRUE"),
    (cmp("<", lit("a"), lit("b")), "TRUE"),
    (cmp(">=", lit(dt.date(1995, 1, 1)), lit(dt.date(1995, 1, 2))), "FALSE"),
    (and_(c("b"), lit(True)), "b"),
    (and_(c("b"), lit(False)), "FALSE"),
    (or_(c("b"), lit(True)), "TRUE"),
    (or_(c("b"), lit(False)), "b"),
    (E.Not(E.Not(c("b"))), "b"),
    (E.Not(lit(True)), "FALSE"),
    (E.Not(cmp("<", c("x"), c("y"))), "x >= y"),
    (E.Not(E.IsNull(c("x"))), "x IS NOT NULL"),
    (and_(c("b"), and_(c("b"), cmp(">", c("x"), lit(1)))), "b AND x > 1"),
    (and_(lit(True), lit(True)), "TRUE"),
    (E.IsNull(lit(3)), "FALSE"),
    (E.InList(lit(3), (lit(1), lit(3))), "TRUE"),
    (E.InList(lit(3), (lit(1), lit(None))), "NULL"),
    (E.Extract("year", lit(dt.date(1995, 6, 30))), "1995"),
    (E.Case(((lit(False), lit(1)), (lit(True), lit(2))), lit(3)), "2"),
])
def test_fold_boolean_logic_and_comparisons(expr: E.Expr, expected: str) -> None:
    assert fold(expr) == expected


@pytest.mark.parametrize("expr, expected", [
    (E.Arith("+", c("x"), lit(None)), "NULL"),
    (eq(c("s"), lit(None)), "NULL"),
    (E.Func("upper", (lit(None),)), "NULL"),
    (E.Not(lit(None)), "NULL"),
    (and_(lit(None), c("b")), "NULL AND b"),  # FALSE AND NULL is FALSE: not certainly NULL
    (or_(lit(None), c("b")), "NULL OR b"),
    (E.Func("coalesce", (lit(None), c("x"))), "coalesce(NULL, x)"),
])
def test_fold_propagates_null_only_where_certain(expr: E.Expr, expected: str) -> None:
    assert fold(expr) == expected


def test_fold_null_keeps_the_expression_type() -> None:
    folded = fold_expr(E.Arith("+", c("x"), lit(None)), SCHEMA)
    assert folded == Lit(None, INT64)
    assert fold_expr(eq(c("s"), lit(None)), SCHEMA) == Lit(None, BOOL)
    assert fold_expr(E.Cast(lit(None), DATE), SCHEMA) == Lit(None, DATE)


@pytest.mark.parametrize("expr, expected", [
    (E.Cast(lit("1995-01-01"), DATE), "DATE '1995-01-01'"),
    (E.Cast(lit("1995-01-01 10:00:00"), parse_type("timestamp")), "TIMESTAMP '1995-01-01 10:00:00'"),
    (E.Cast(lit("42"), INT64), "42"),
    (E.Cast(lit(3), FLOAT64), "3.0"),
    (E.Cast(lit(0.125), parse_type("decimal(10,2)")), "0.13"),
    (E.Cast(lit(7), STRING), "'7'"),
    (E.Cast(c("x"), INT64), "x"),
    (cmp("<", c("d"), lit("1995-03-15")), "d < DATE '1995-03-15'"),
    (cmp("<", lit("1995-03-15"), c("d")), "d > DATE '1995-03-15'"),
])
def test_fold_casts_of_literals(expr: E.Expr, expected: str) -> None:
    assert fold(expr) == expected


def test_fold_factors_conjuncts_shared_by_every_or_branch() -> None:
    # TPC-H Q19 shape: the join condition repeated in each branch.
    key = eq(c("x"), c("y"))
    e = or_(and_(key, cmp(">", c("f"), lit(1.0))), and_(key, c("b")), and_(c("b"), key))
    assert fold(e) == "x = y AND (f > 1.0 OR b)"
    assert fold(or_(key, and_(key, c("b")))) == "x = y"  # absorption


def test_constant_folding_pass_rewrites_filter_project_and_join() -> None:
    li = scan("lineitem", "l_orderkey", "l_shipdate:date", "l_tax:float64")
    o = scan("orders", "o_orderkey", "o_flag:bool")
    f = O.Filter(li, and_(
        cmp("<=", c("l_shipdate"), E.Arith("-", lit(dt.date(1998, 12, 1)), lit(Interval(days=90)))),
        lit(True)))
    p = project(f, "l_orderkey", ("t", E.Arith("+", c("l_tax"), E.Arith("-", lit(0.06), lit(0.01)))))
    j = O.Join(p, o, "inner", ("l_orderkey",), ("o_orderkey",), and_(c("o_flag"), eq(lit(1), lit(1))))
    got = constant_folding(wf(j))
    assert text(got) == lines(
        "%0 = Scan(lineitem [l_orderkey, l_shipdate, l_tax])",
        "%1 = Filter(%0, l_shipdate <= DATE '1998-09-02')",
        "%2 = Project(%1, [l_orderkey, t := l_tax + 0.05])",
        "%3 = Scan(orders [o_orderkey, o_flag])",
        "%4 = Join(inner, %2, %3, on l_orderkey = o_orderkey AND o_flag)",
        "%5 = Sink(%4, result)",
    )


def test_constant_folding_removes_true_filters_and_true_residuals() -> None:
    t = scan("t", "a", "b")
    u = scan("u", "k")
    f = O.Filter(t, and_(eq(lit(1), lit(1)), E.Not(lit(False))))
    j = O.Join(f, u, "left", ("a",), ("k",), or_(lit(True), cmp(">", c("b"), lit(0))))
    assert text(constant_folding(wf(j))) == lines(
        "%0 = Scan(t [a, b])",
        "%1 = Scan(u [k])",
        "%2 = Join(left, %0, %1, on a = k)",
        "%3 = Sink(%2, result)",
    )


# --- predicate pushdown ------------------------------------------------------


def test_pushdown_merges_stacked_filters_into_one_over_the_scan() -> None:
    t = scan("t", "a", "b")
    w = wf(O.Filter(O.Filter(t, cmp(">", c("a"), lit(1))), eq(c("b"), lit(2))))
    assert text(predicate_pushdown(w)) == lines(
        "%0 = Scan(t [a, b])",
        "%1 = Filter(%0, a > 1 AND b = 2)",
        "%2 = Sink(%1, result)",
    )


def test_pushdown_through_project_substitutes_cheap_expressions() -> None:
    t = scan("t", "a", "b", "s:string")
    p = project(t, "a", ("c", E.Arith("+", c("b"), lit(1))), ("u", E.Func("upper", (c("s"),))),
                ("k", lit(5)))
    f = O.Filter(p, and_(cmp(">", c("c"), lit(5)), eq(c("u"), lit("X")), eq(c("a"), c("k"))))
    assert text(predicate_pushdown(wf(f))) == lines(
        "%0 = Scan(t [a, b, s])",
        "%1 = Filter(%0, b + 1 > 5 AND a = 5)",
        "%2 = Project(%1, [a, c := b + 1, u := upper(s), k := 5])",
        "%3 = Filter(%2, u = 'X')",  # upper() is not cheap enough to compute twice
        "%4 = Sink(%3, result)",
    )


def test_pushdown_through_sort_and_distinct() -> None:
    t = scan("t", "a", "b")
    s = O.Sort(O.Distinct(t), (O.SortKey("a"),))
    w = wf(O.Filter(s, cmp("<", c("b"), lit(3))))
    assert text(predicate_pushdown(w)) == lines(
        "%0 = Scan(t [a, b])",
        "%1 = Filter(%0, b < 3)",
        "%2 = Distinct(%1)",
        "%3 = Sort(%2, [a ASC NULLS LAST])",
        "%4 = Sink(%3, result)",
    )


def test_pushdown_into_aggregate_only_for_group_keys() -> None:
    t = scan("t", "k", "v")
    agg = O.Aggregate(t, ("k",), (("total", AggCall("sum", "v")),))
    w = wf(O.Filter(agg, and_(eq(c("k"), lit(7)), cmp(">", c("total"), lit(100)))))
    assert text(predicate_pushdown(w)) == lines(
        "%0 = Scan(t [k, v])",
        "%1 = Filter(%0, k = 7)",
        "%2 = Aggregate(%1, by [k], [total := sum(v)])",
        "%3 = Filter(%2, total > 100)",
        "%4 = Sink(%3, result)",
    )


def test_pushdown_never_below_a_global_aggregate() -> None:
    # A global aggregate yields one row even over no input: FALSE above gives
    # no rows, FALSE below would give one row.
    t = scan("t", "v")
    agg = O.Aggregate(t, (), (("n", AggCall("count_star")),))
    w = wf(O.Filter(agg, lit(False)))
    assert text(predicate_pushdown(w)) == text(w)


def test_pushdown_into_both_sides_of_union_renaming_the_right() -> None:
    a = scan("a", "x", "y")
    b = scan("b", "p", "q")
    w = wf(O.Filter(O.Union(a, b, distinct=False), and_(cmp(">", c("x"), lit(1)), eq(c("y"), c("x")))))
    assert text(predicate_pushdown(w)) == lines(
        "%0 = Scan(a [x, y])",
        "%1 = Filter(%0, x > 1 AND y = x)",
        "%2 = Scan(b [p, q])",
        "%3 = Filter(%2, p > 1 AND q = p)",
        "%4 = Union(%1, %3, all)",
        "%5 = Sink(%4, result)",
    )


def tpch_q3_like() -> Workflow:
    """SELECT ... FROM customer, orders, lineitem WHERE <joins and filters>."""
    cu = scan("customer", "c_custkey", "c_name:string", "c_mktsegment:string")
    od = scan("orders", "o_orderkey", "o_custkey", "o_orderdate:date", "o_comment:string")
    li = scan("lineitem", "l_orderkey", "l_extendedprice:float64", "l_discount:float64",
              "l_shipdate:date", "l_comment:string")
    j = O.Join(O.Join(cu, od, "cross"), li, "cross")
    f = O.Filter(j, and_(
        eq(c("c_mktsegment"), lit("BUILDING")),
        eq(c("c_custkey"), c("o_custkey")),
        eq(c("l_orderkey"), c("o_orderkey")),
        cmp("<", c("o_orderdate"), E.Cast(lit("1995-03-15"), DATE)),
        cmp(">", c("l_shipdate"), E.Arith("-", lit(dt.date(1995, 3, 20)), lit(Interval(days=5)))),
    ))
    rev = E.Arith("*", c("l_extendedprice"), E.Arith("-", lit(1), c("l_discount")))
    p = project(f, "l_orderkey", ("rev", rev), "o_orderdate")
    agg = O.Aggregate(p, ("l_orderkey", "o_orderdate"), (("revenue", AggCall("sum", "rev")),))
    return wf(O.Limit(O.Sort(agg, (O.SortKey("revenue", ascending=False),)), 10))


def test_pushdown_turns_filtered_cross_joins_into_inner_equi_joins() -> None:
    got = predicate_pushdown(constant_folding(tpch_q3_like()))
    assert text(got) == lines(
        "%0 = Scan(customer [c_custkey, c_name, c_mktsegment])",
        "%1 = Filter(%0, c_mktsegment = 'BUILDING')",
        "%2 = Scan(orders [o_orderkey, o_custkey, o_orderdate, o_comment])",
        "%3 = Filter(%2, o_orderdate < DATE '1995-03-15')",
        "%4 = Join(inner, %1, %3, on c_custkey = o_custkey)",
        "%5 = Scan(lineitem [l_orderkey, l_extendedprice, l_discount, l_shipdate, l_comment])",
        "%6 = Filter(%5, l_shipdate > DATE '1995-03-15')",
        "%7 = Join(inner, %4, %6, on o_orderkey = l_orderkey)",
        "%8 = Project(%7, [l_orderkey, rev := l_extendedprice * (1 - l_discount), o_orderdate])",
        "%9 = Aggregate(%8, by [l_orderkey, o_orderdate], [revenue := sum(rev)])",
        "%10 = Sort(%9, [revenue DESC NULLS LAST])",
        "%11 = Limit(%10, 10)",
        "%12 = Sink(%11, result)",
    )


def test_optimize_tpch_q3_like_end_to_end() -> None:
    got = optimize(tpch_q3_like())
    assert text(got) == lines(
        "%0 = Scan(customer [c_custkey, c_mktsegment])",
        "%1 = Filter(%0, c_mktsegment = 'BUILDING')",
        "%2 = Scan(orders [o_orderkey, o_custkey, o_orderdate])",
        "%3 = Filter(%2, o_orderdate < DATE '1995-03-15')",
        "%4 = Join(inner, %1, %3, on c_custkey = o_custkey)",
        "%5 = Scan(lineitem [l_orderkey, l_extendedprice, l_discount, l_shipdate])",
        "%6 = Filter(%5, l_shipdate > DATE '1995-03-15')",
        "%7 = Join(inner, %4, %6, on o_orderkey = l_orderkey)",
        "%8 = Project(%7, [l_orderkey, rev := l_extendedprice * (1 - l_discount), o_orderdate])",
        "%9 = Aggregate(%8, by [l_orderkey, o_orderdate], [revenue := sum(rev)])",
        "%10 = Sort(%9, [revenue DESC NULLS LAST])",
        "%11 = Limit(%10, 10)",
        "%12 = Sink(%11, result)",
    )


def test_pushdown_cross_side_non_equalities_become_the_residual() -> None:
    a = scan("a", "x", "d:date")
    b = scan("b", "y", "e:date", "z:float64")
    w = wf(O.Filter(O.Join(a, b, "cross"), and_(cmp("<", c("d"), c("e")), eq(c("x"), c("z")))))
    # x = z compares int64 with float64: kept as residual, not a hash key.
    assert text(predicate_pushdown(w)) == lines(
        "%0 = Scan(a [x, d])",
        "%1 = Scan(b [y, e, z])",
        "%2 = Join(inner, %0, %1, on d < e AND x = z)",
        "%3 = Sink(%2, result)",
    )


def test_pushdown_moves_inner_join_residual_conjuncts_to_their_side() -> None:
    a = scan("a", "x", "p")
    b = scan("b", "y", "q")
    j = O.Join(a, b, "inner", residual=and_(eq(c("x"), c("y")), cmp(">", c("p"), lit(1)),
                                            cmp("<", c("q"), lit(2))))
    assert text(predicate_pushdown(wf(j))) == lines(
        "%0 = Scan(a [x, p])",
        "%1 = Filter(%0, p > 1)",
        "%2 = Scan(b [y, q])",
        "%3 = Filter(%2, q < 2)",
        "%4 = Join(inner, %1, %3, on x = y)",
        "%5 = Sink(%4, result)",
    )


def test_pushdown_derives_single_side_filters_from_a_cross_side_or() -> None:
    # TPC-H Q7 shape: (n1 = F AND n2 = G) OR (n1 = G AND n2 = F).
    a = scan("a", "n1:string")
    b = scan("b", "n2:string")
    f = O.Filter(O.Join(a, b, "cross"), or_(
        and_(eq(c("n1"), lit("F")), eq(c("n2"), lit("G"))),
        and_(eq(c("n1"), lit("G")), eq(c("n2"), lit("F")))))
    assert text(predicate_pushdown(wf(f))) == lines(
        "%0 = Scan(a [n1])",
        "%1 = Filter(%0, n1 = 'F' OR n1 = 'G')",
        "%2 = Scan(b [n2])",
        "%3 = Filter(%2, n2 = 'G' OR n2 = 'F')",
        "%4 = Join(inner, %1, %3, on n1 = 'F' AND n2 = 'G' OR n1 = 'G' AND n2 = 'F')",
        "%5 = Sink(%4, result)",
    )


def test_pushdown_tpch_q19_shape_finds_the_join_key() -> None:
    li = scan("lineitem", "l_partkey", "l_quantity:float64", "l_shipmode:string")
    pa = scan("part", "p_partkey", "p_brand:string", "p_size")
    key = eq(c("p_partkey"), c("l_partkey"))
    air = eq(c("l_shipmode"), lit("AIR"))

    def branch(brand: str, qty: float, size: int) -> E.Expr:
        return and_(key, eq(c("p_brand"), lit(brand)), cmp(">=", c("l_quantity"), lit(qty)),
                    cmp("<=", c("p_size"), lit(size)), air)

    f = O.Filter(O.Join(li, pa, "cross"), or_(branch("B12", 1.0, 5), branch("B23", 10.0, 10)))
    got = optimize(wf(f))
    assert text(got) == lines(
        "%0 = Scan(lineitem [l_partkey, l_quantity, l_shipmode])",
        "%1 = Filter(%0, l_shipmode = 'AIR' AND (l_quantity >= 1.0 OR l_quantity >= 10.0))",
        "%2 = Scan(part [p_partkey, p_brand, p_size])",
        "%3 = Filter(%2, p_brand = 'B12' AND p_size <= 5 OR p_brand = 'B23' AND p_size <= 10)",
        "%4 = Join(inner, %1, %3, on l_partkey = p_partkey AND (p_brand = 'B12' AND l_quantity >= 1.0"
        " AND p_size <= 5 OR p_brand = 'B23' AND l_quantity >= 10.0 AND p_size <= 10))",
        "%5 = Sink(%4, result)",
    )


def test_pushdown_left_join_only_into_the_preserved_side() -> None:
    a = scan("a", "x", "p")
    b = scan("b", "y", "q")
    j = O.Join(a, b, "left", ("x",), ("y",), and_(cmp(">", c("q"), lit(0)), cmp(">", c("p"), lit(0))))
    f = O.Filter(j, and_(eq(c("p"), lit(1)), E.IsNull(c("q")), lit(False)))
    assert text(predicate_pushdown(wf(f))) == lines(
        "%0 = Scan(a [x, p])",
        "%1 = Filter(%0, p = 1 AND FALSE)",
        "%2 = Scan(b [y, q])",
        "%3 = Filter(%2, q > 0)",  # ON-clause filter of the null-supplying side
        "%4 = Join(left, %1, %3, on x = y AND p > 0)",  # left-only ON stays: keeps unmatched rows
        "%5 = Filter(%4, q IS NULL)",
        "%6 = Sink(%5, result)",
    )


def test_pushdown_right_join_is_symmetric() -> None:
    a = scan("a", "x", "p")
    b = scan("b", "y", "q")
    j = O.Join(a, b, "right", ("x",), ("y",), and_(cmp(">", c("q"), lit(0)), cmp(">", c("p"), lit(0))))
    f = O.Filter(j, and_(E.IsNull(c("p")), eq(c("q"), lit(2))))
    assert text(predicate_pushdown(wf(f))) == lines(
        "%0 = Scan(a [x, p])",
        "%1 = Filter(%0, p > 0)",
        "%2 = Scan(b [y, q])",
        "%3 = Filter(%2, q = 2)",
        "%4 = Join(right, %1, %3, on x = y AND q > 0)",
        "%5 = Filter(%4, p IS NULL)",
        "%6 = Sink(%5, result)",
    )


def test_pushdown_full_join_moves_nothing_but_finds_keys() -> None:
    a = scan("a", "x", "p")
    b = scan("b", "y", "q")
    j = O.Join(a, b, "full", residual=and_(eq(c("x"), c("y")), cmp(">", c("q"), lit(0))))
    f = O.Filter(j, and_(or_(eq(c("p"), lit(1)), E.IsNull(c("p"))),
                         eq(E.Func("coalesce", (c("q"), lit(0))), lit(2))))
    assert text(predicate_pushdown(wf(f))) == lines(
        "%0 = Scan(a [x, p])",
        "%1 = Scan(b [y, q])",
        "%2 = Join(full, %0, %1, on x = y AND q > 0)",
        "%3 = Filter(%2, (p = 1 OR p IS NULL) AND coalesce(q, 0) = 2)",
        "%4 = Sink(%3, result)",
    )


@pytest.mark.parametrize("kind, pred, expected", [
    ("left", cmp("<", c("q"), lit(5)), "inner"),  # NULL q fails q < 5
    ("left", cmp("<", E.Arith("+", c("q"), c("p")), lit(5)), "inner"),
    ("left", E.IsNull(c("q"), negated=True), "inner"),
    ("left", or_(eq(c("q"), lit(1)), E.Like(c("s"), "a%")), "inner"),
    ("left", or_(eq(c("q"), lit(1)), eq(c("p"), lit(1))), "left"),  # p = 1 keeps padded rows
    ("left", E.IsNull(c("q")), "left"),
    ("left", eq(E.Func("coalesce", (c("q"), lit(0))), lit(0)), "left"),
    ("left", eq(c("p"), lit(1)), "left"),
    ("right", eq(c("p"), lit(1)), "inner"),
    ("full", eq(c("p"), lit(1)), "left"),  # rows padded on the left side are gone
    ("full", eq(c("q"), lit(1)), "right"),
    ("full", and_(eq(c("p"), lit(1)), eq(c("q"), lit(1))), "inner"),
])
def test_pushdown_null_rejecting_filters_make_outer_joins_less_outer(
        kind: str, pred: E.Expr, expected: str) -> None:
    a = scan("a", "x", "p")
    b = scan("b", "y", "q", "s:string")
    got = predicate_pushdown(wf(O.Filter(O.Join(a, b, kind, ("x",), ("y",)), pred)))
    joins = [op for op in got.ops() if isinstance(op, O.Join)]
    assert [j.kind for j in joins] == [expected]


def test_pushdown_tpch_q17_shape_left_join_to_scalar_subquery_becomes_inner() -> None:
    li = scan("lineitem", "l_partkey", "l_quantity:float64")
    avg = O.Aggregate(scan("lineitem2", "l2_partkey", "l2_quantity:float64"), ("l2_partkey",),
                      (("avg_q", AggCall("avg", "l2_quantity")),))
    sub = project(avg, ("corr_0", c("l2_partkey")), ("value", E.Arith("*", lit(0.2), c("avg_q"))))
    f = O.Filter(O.Join(li, sub, "left", ("l_partkey",), ("corr_0",)),
                 cmp("<", c("l_quantity"), c("value")))
    assert text(predicate_pushdown(wf(f))) == lines(
        "%0 = Scan(lineitem [l_partkey, l_quantity])",
        "%1 = Scan(lineitem2 [l2_partkey, l2_quantity])",
        "%2 = Aggregate(%1, by [l2_partkey], [avg_q := avg(l2_quantity)])",
        "%3 = Project(%2, [corr_0 := l2_partkey, value := 0.2 * avg_q])",
        "%4 = Join(inner, %0, %3, on l_partkey = corr_0 AND l_quantity < value)",
        "%5 = Sink(%4, result)",
    )


def test_pushdown_semi_and_anti_joins() -> None:
    a = scan("a", "x", "p")
    b = scan("b", "y", "q")
    on = and_(eq(c("x"), c("y")), cmp(">", c("q"), lit(0)), cmp(">", c("p"), lit(5)))
    semi = O.Filter(O.Join(a, b, "semi", residual=on), eq(c("p"), lit(1)))
    anti = O.Filter(O.Join(a, b, "anti", residual=on), eq(c("p"), lit(1)))
    assert text(predicate_pushdown(wf(semi, anti))) == lines(
        "%0 = Scan(a [x, p])",
        "%1 = Filter(%0, p = 1 AND p > 5)",
        "%2 = Scan(b [y, q])",
        "%3 = Filter(%2, q > 0)",
        "%4 = Join(semi, %1, %3, on x = y)",
        "%5 = Sink(%4, result)",
        "%6 = Filter(%0, p = 1)",
        "%7 = Filter(%2, q > 0)",  # scans a and b are shared: one Filter per consumer
        "%8 = Join(anti, %6, %7, on x = y AND p > 5)",  # a failing left row is kept by anti
        "%9 = Sink(%8, out1)",
    )


def test_pushdown_leaves_null_aware_anti_join_condition_alone() -> None:
    a = scan("a", "x", "p")
    b = scan("b", "y", "q")
    j = O.Join(a, b, "anti", ("x",), ("y",), cmp(">", c("q"), lit(0)), null_aware=True)
    f = O.Filter(j, eq(c("p"), lit(1)))
    assert text(predicate_pushdown(wf(f))) == lines(
        "%0 = Scan(a [x, p])",
        "%1 = Filter(%0, p = 1)",
        "%2 = Scan(b [y, q])",
        "%3 = Join(anti, %1, %2, on x = y AND q > 0, null_aware)",
        "%4 = Sink(%3, result)",
    )


def test_pushdown_into_intersect_and_except() -> None:
    a = scan("a", "x")
    b = scan("b", "y")
    w = wf(O.Filter(O.Intersect(a, b), cmp(">", c("x"), lit(1))),
           O.Filter(O.Except(scan("a2", "x"), scan("b2", "y")), cmp(">", c("x"), lit(2))))
    assert text(predicate_pushdown(w)) == lines(
        "%0 = Scan(a [x])",
        "%1 = Filter(%0, x > 1)",
        "%2 = Scan(b [y])",
        "%3 = Filter(%2, y > 1)",
        "%4 = Intersect(%1, %3)",
        "%5 = Sink(%4, result)",
        "%6 = Scan(a2 [x])",
        "%7 = Filter(%6, x > 2)",
        "%8 = Scan(b2 [y])",
        "%9 = Filter(%8, y > 2)",
        "%10 = Except(%7, %9)",
        "%11 = Sink(%10, out1)",
    )


def test_pushdown_constant_conjuncts_go_to_the_preserved_side_only() -> None:
    def join(kind: str) -> O.Op:
        return O.Filter(O.Join(scan("a", "x"), scan("b", "y"), kind, ("x",), ("y",)), lit(False))

    got = predicate_pushdown(wf(join("right"), join("full")))
    assert text(got) == lines(
        "%0 = Scan(a [x])",
        "%1 = Scan(b [y])",
        "%2 = Filter(%1, FALSE)",
        "%3 = Join(right, %0, %2, on x = y)",
        "%4 = Sink(%3, result)",
        "%5 = Scan(a [x])",
        "%6 = Scan(b [y])",
        "%7 = Join(full, %5, %6, on x = y)",
        "%8 = Filter(%7, FALSE)",
        "%9 = Sink(%8, out1)",
    )


def test_pushdown_inner_join_without_condition_left_becomes_cross() -> None:
    j = O.Join(scan("a", "x"), scan("b", "y"), "inner", residual=cmp(">", c("x"), lit(1)))
    assert text(predicate_pushdown(wf(j))) == lines(
        "%0 = Scan(a [x])",
        "%1 = Filter(%0, x > 1)",
        "%2 = Scan(b [y])",
        "%3 = Join(cross, %1, %2)",
        "%4 = Sink(%3, result)",
    )


def test_passes_handle_deep_plans_without_recursion_errors() -> None:
    op: O.Op = scan("t", "a", "b")
    for i in range(400):  # well past Python's default recursion limit of 1000 frames
        op = O.Filter(O.Sort(op, (O.SortKey("a"),)), cmp(">", c("a"), lit(i)))
        op = project(op, "a", ("b", E.Arith("+", c("b"), lit(1))))
    got = optimize(wf(op))
    assert isinstance(got.sinks[0].input, O.Project)
    assert sink_schemas(got) == sink_schemas(wf(op))


def test_pushdown_stops_at_limit_and_udf() -> None:
    t = scan("t", "a")
    lim = O.Filter(O.Limit(t, 5), eq(c("a"), lit(1)))
    udf = O.Filter(O.UDF(t, "m", "f", "row", t.schema), eq(c("a"), lit(2)))
    w = wf(lim, udf)
    assert text(predicate_pushdown(w)) == text(w)


def test_pushdown_keeps_filters_above_shared_nodes() -> None:
    t = scan("t", "a", "b")
    shared = project(t, "a", ("c", E.Arith("*", c("b"), lit(2))))
    one = O.Filter(shared, cmp(">", c("a"), lit(1)))
    two = O.Filter(shared, cmp("<", c("c"), lit(9)))
    got = predicate_pushdown(wf(one, two))
    assert text(got) == lines(
        "%0 = Scan(t [a, b])",
        "%1 = Project(%0, [a, c := b * 2])",
        "%2 = Filter(%1, a > 1)",
        "%3 = Sink(%2, result)",
        "%4 = Filter(%1, c < 9)",
        "%5 = Sink(%4, out1)",
    )
    first, second = got.sinks
    assert first.input.input is second.input.input  # type: ignore[attr-defined]


def test_pushdown_self_join_of_one_node_counts_as_shared() -> None:
    t = scan("t", "a")
    r = project(scan("t", "a"), ("b", c("a")))
    j = O.Filter(O.Join(t, r, "cross"), and_(eq(c("a"), c("b")), cmp(">", c("a"), lit(1))))
    j2 = O.Join(t, project(t, ("b", c("a"))), "cross")
    got = predicate_pushdown(wf(j, j2))
    assert text(got) == lines(
        "%0 = Scan(t [a])",
        "%1 = Filter(%0, a > 1)",
        "%2 = Scan(t [a])",
        "%3 = Project(%2, [b := a])",
        "%4 = Join(inner, %1, %3, on a = b)",
        "%5 = Sink(%4, result)",
        "%6 = Project(%0, [b := a])",
        "%7 = Join(cross, %0, %6)",
        "%8 = Sink(%7, out1)",
    )


def loop_workflow() -> Workflow:
    """Reachability: r := r UNION (edges joined with r), to a fixpoint."""
    start = scan("start", "node", "junk:string")
    edges = scan("edges", "src", "dst", "w:float64")
    init = project(O.Filter(start, and_(eq(lit(1), lit(1)), cmp(">", c("node"), lit(0)))), "node")
    free = O.Filter(edges, cmp(">", c("w"), E.Arith("+", lit(0.1), lit(0.2))))
    var = O.LoopVar("r", init.schema)
    step = project(O.Join(var, free, "inner", ("node",), ("src",)), ("node", c("dst")))
    body = O.Union(var, step)
    loop = O.While((init,), ("r",), (body,), "r", fixpoint=True)
    return wf(O.Filter(loop, cmp("<", c("node"), lit(100))))


def test_passes_treat_while_bodies_as_opaque_but_rewrite_their_inputs() -> None:
    got = optimize(loop_workflow())
    assert text(got) == lines(
        "%0 = Scan(start [node])",
        "%1 = Filter(%0, node > 0)",
        "%2 = Scan(edges [src, dst, w])",  # a While needs all columns of its inputs
        "%3 = Filter(%2, w > 0.3)",
        "%4 = While(r := %1)",
        "  loop %4 (fixpoint), result r:",
        "    %5 = LoopVar(r)",
        "    %6 = Join(inner, %5, %3, on node = src)",
        "    %7 = Project(%6, [node := dst])",
        "    %8 = Union(%5, %7)",
        "    next r = %8",
        "%9 = Filter(%4, node < 100)",
        "%10 = Sink(%9, result)",
    )


# --- join reordering ---------------------------------------------------------


def q9_like_workflow() -> Workflow:
    """FROM part, supplier, lineitem, partsupp: part x supplier share no key."""
    pa = scan("part", "p_partkey", "p_name:string")
    su = scan("supplier", "s_suppkey", "s_nationkey")
    li = scan("lineitem", "l_partkey", "l_suppkey", "l_amount:float64")
    ps = scan("partsupp", "ps_partkey", "ps_suppkey", "ps_cost:float64")
    j = O.Join(O.Join(O.Join(pa, su, "cross"), li, "cross"), ps, "cross")
    f = O.Filter(j, and_(eq(c("s_suppkey"), c("l_suppkey")), eq(c("ps_suppkey"), c("l_suppkey")),
                         eq(c("ps_partkey"), c("l_partkey")), eq(c("p_partkey"), c("l_partkey")),
                         E.Like(c("p_name"), "%green%")))
    p = project(f, "s_nationkey", ("profit", E.Arith("-", c("l_amount"), c("ps_cost"))))
    return wf(O.Aggregate(p, ("s_nationkey",), (("sum_profit", AggCall("sum", "profit")),)))


def test_reorder_joins_avoids_a_cross_product_the_written_order_has() -> None:
    assert text(reorder_joins(q9_like_workflow())) == lines(
        "%0 = Scan(part [p_partkey, p_name])",
        "%1 = Scan(lineitem [l_partkey, l_suppkey, l_amount])",
        "%2 = Join(cross, %0, %1)",
        "%3 = Scan(supplier [s_suppkey, s_nationkey])",
        "%4 = Join(cross, %2, %3)",
        "%5 = Scan(partsupp [ps_partkey, ps_suppkey, ps_cost])",
        "%6 = Join(cross, %4, %5)",
        "%7 = Filter(%6, s_suppkey = l_suppkey AND ps_suppkey = l_suppkey AND ps_partkey = l_partkey"
        " AND p_partkey = l_partkey AND p_name LIKE '%green%')",
        "%8 = Project(%7, [p_partkey, p_name, s_suppkey, s_nationkey, l_partkey, l_suppkey, l_amount,"
        " ps_partkey, ps_suppkey, ps_cost])",
        "%9 = Project(%8, [s_nationkey, profit := l_amount - ps_cost])",
        "%10 = Aggregate(%9, by [s_nationkey], [sum_profit := sum(profit)])",
        "%11 = Sink(%10, result)",
    )


def test_optimize_q9_like_joins_without_cross_products() -> None:
    assert text(optimize(q9_like_workflow())) == lines(
        "%0 = Scan(part [p_partkey, p_name])",
        "%1 = Filter(%0, p_name LIKE '%green%')",
        "%2 = Scan(lineitem [l_partkey, l_suppkey, l_amount])",
        "%3 = Join(inner, %1, %2, on p_partkey = l_partkey)",
        "%4 = Scan(supplier [s_suppkey, s_nationkey])",
        "%5 = Join(inner, %3, %4, on l_suppkey = s_suppkey)",
        "%6 = Scan(partsupp [ps_partkey, ps_suppkey, ps_cost])",
        "%7 = Join(inner, %5, %6, on l_suppkey = ps_suppkey AND l_partkey = ps_partkey)",
        "%8 = Project(%7, [s_nationkey, profit := l_amount - ps_cost])",
        "%9 = Aggregate(%8, by [s_nationkey], [sum_profit := sum(profit)])",
        "%10 = Sink(%9, result)",
    )


def test_reorder_joins_leaves_connected_or_unavoidable_orders_alone() -> None:
    w = tpch_q3_like()  # every join in FROM order has a key
    assert reorder_joins(w) is w
    # a x b share nothing and nothing else connects them: the cross product stays
    j = O.Filter(O.Join(O.Join(scan("a", "x"), scan("b", "y"), "cross"), scan("c", "z"), "cross"),
                 eq(c("x"), c("z")))
    w2 = wf(j)
    assert reorder_joins(w2) is w2


def test_reorder_joins_treats_shared_joins_and_outer_joins_as_leaves() -> None:
    a, b, cc = scan("a", "x"), scan("b", "y"), scan("c", "z", "x2")
    shared = O.Join(a, b, "cross")  # used twice: reordering through it would copy it
    top = O.Filter(O.Join(shared, cc, "cross"), and_(eq(c("x"), c("x2")), eq(c("y"), c("z"))))
    w = wf(top, shared)
    assert reorder_joins(w) is w
    left = O.Join(scan("p", "px"), scan("q", "qx"), "left", ("px",), ("qx",))
    w2 = wf(O.Filter(O.Join(left, scan("r", "rx"), "cross"), eq(c("px"), c("rx"))))
    assert reorder_joins(w2) is w2


# --- projection pruning ------------------------------------------------------


def test_pruning_scans_read_only_used_columns() -> None:
    t = scan("lineitem", "l_orderkey", "l_quantity:float64", "l_comment:string", "l_tax:float64")
    agg = O.Aggregate(t, ("l_orderkey",), (("q", AggCall("sum", "l_quantity")),
                                          ("n", AggCall("count_star")),
                                          ("m", AggCall("max", "l_tax"))))
    w = wf(project(agg, "l_orderkey", "q"))
    assert text(projection_pruning(w)) == lines(
        "%0 = Scan(lineitem [l_orderkey, l_quantity])",
        "%1 = Aggregate(%0, by [l_orderkey], [q := sum(l_quantity)])",
        "%2 = Project(%1, [l_orderkey, q])",
        "%3 = Sink(%2, result)",
    )


def test_pruning_keeps_join_keys_residual_sort_and_filter_columns() -> None:
    a = scan("a", "x", "p", "junk_a:string")
    b = scan("b", "y", "q", "r", "junk_b:string")
    j = O.Join(O.Filter(a, cmp(">", c("p"), lit(0))), b, "inner", ("x",), ("y",),
               cmp("<", c("p"), c("q")))
    s = O.Sort(j, (O.SortKey("r"),))
    w = wf(project(s, ("out", c("x"))))
    assert text(projection_pruning(w)) == lines(
        "%0 = Scan(a [x, p])",
        "%1 = Filter(%0, p > 0)",
        "%2 = Scan(b [y, q, r])",
        "%3 = Join(inner, %1, %2, on x = y AND p < q)",
        "%4 = Sort(%3, [r ASC NULLS LAST])",
        "%5 = Project(%4, [out := x])",
        "%6 = Sink(%5, result)",
    )


def test_pruning_semi_join_needs_only_keys_of_the_right() -> None:
    a = scan("a", "x", "p")
    b = scan("b", "y", "q", "junk:string")
    w = wf(project(O.Join(a, b, "semi", ("x",), ("y",)), "p"))
    assert text(projection_pruning(w)) == lines(
        "%0 = Scan(a [x, p])",
        "%1 = Scan(b [y])",
        "%2 = Join(semi, %0, %1, on x = y)",
        "%3 = Project(%2, [p])",
        "%4 = Sink(%3, result)",
    )


def test_pruning_count_star_keeps_one_narrow_column() -> None:
    t = scan("t", "s:string", "d:date", "x")
    a = scan("a", "k")
    n = O.Aggregate(O.Join(t, a, "cross"), (), (("n", AggCall("count_star")),))
    assert text(projection_pruning(wf(n))) == lines(
        "%0 = Scan(t [d])",
        "%1 = Scan(a [k])",
        "%2 = Join(cross, %0, %1)",
        "%3 = Aggregate(%2, by [], [n := count(*)])",
        "%4 = Sink(%3, result)",
    )


def test_pruning_keeps_one_aggregate_of_a_global_aggregate_and_one_project_column() -> None:
    t = scan("t", "x", "y")
    g = O.Aggregate(t, (), (("a", AggCall("sum", "x")), ("b", AggCall("max", "y"))))
    p = project(t, ("u", E.Arith("+", c("x"), c("y"))), ("v", c("y")))
    cross = O.Join(g, p, "cross")
    n = O.Aggregate(cross, (), (("n", AggCall("count_star")),))
    assert text(projection_pruning(wf(n))) == lines(
        "%0 = Scan(t [x, y])",
        "%1 = Aggregate(%0, by [], [a := sum(x)])",
        "%2 = Project(%0, [v := y])",
        "%3 = Join(cross, %1, %2)",
        "%4 = Aggregate(%3, by [], [n := count(*)])",
        "%5 = Sink(%4, result)",
    )


def test_pruning_shared_scan_reads_the_union_of_its_consumers_needs() -> None:
    t = scan("t", "a", "b", "c", "d")
    w = wf(project(t, "a"), project(t, "c"))
    got = projection_pruning(w)
    assert text(got) == lines(
        "%0 = Scan(t [a, c])",
        "%1 = Project(%0, [a])",
        "%2 = Sink(%1, result)",
        "%3 = Project(%0, [c])",
        "%4 = Sink(%3, out1)",
    )


def test_pruning_distinct_and_set_operations_need_every_column() -> None:
    a = scan("a", "x", "y")
    b = scan("b", "p", "q", "unused")
    d = O.Distinct(a)
    u = O.Union(project(b, "p", "q"), d, distinct=False)
    w = wf(project(u, "p"))
    assert text(projection_pruning(w)) == lines(
        "%0 = Scan(b [p, q])",
        "%1 = Project(%0, [p, q])",
        "%2 = Scan(a [x, y])",
        "%3 = Distinct(%2)",
        "%4 = Union(%1, %3, all)",
        "%5 = Project(%4, [p])",
        "%6 = Sink(%5, result)",
    )


def test_pruning_udf_needs_every_column() -> None:
    t = scan("t", "a", "b")
    u = O.UDF(t, "m", "f", "partition", Schema.of([("z", INT64), ("k", INT64)]))
    w = wf(project(u, "z"))
    assert text(projection_pruning(w)) == lines(
        "%0 = Scan(t [a, b])",
        "%1 = UDF(%0, m:f, partition)",
        "%2 = Project(%1, [z])",
        "%3 = Sink(%2, result)",
    )


# --- merge_projects / remove_redundant ----------------------------------------


def test_merge_projects_substitutes_inner_expressions() -> None:
    t = scan("t", "a", "b")
    inner = project(t, "a", ("t2", E.Arith("*", c("b"), lit(2))), ("k", lit(1)))
    outer = project(inner, "a", ("u", E.Arith("+", c("t2"), c("k"))))
    assert text(merge_projects(wf(outer))) == lines(
        "%0 = Scan(t [a, b])",
        "%1 = Project(%0, [a, u := b * 2 + 1])",
        "%2 = Sink(%1, result)",
    )


def test_merge_projects_does_not_duplicate_work_or_break_sharing() -> None:
    t = scan("t", "a", "b")
    inner = project(t, "a", ("t2", E.Arith("*", c("b"), lit(2))))
    twice = project(inner, ("u", E.Arith("+", c("t2"), c("t2"))))
    assert text(merge_projects(wf(twice))) == text(wf(twice))
    shared = project(t, ("v", E.Arith("+", c("a"), c("b"))))
    w = wf(project(shared, ("w", c("v"))), project(shared, ("x", c("v"))))
    assert text(merge_projects(w)) == text(w)


def test_remove_redundant_drops_identity_projects() -> None:
    t = scan("t", "a", "b")
    ident = project(t, "a", "b")
    rename = project(t, ("b", c("a")), ("a", c("b")))
    w = wf(ident, rename)
    assert text(remove_redundant(w)) == lines(
        "%0 = Scan(t [a, b])",
        "%1 = Sink(%0, result)",
        "%2 = Project(%0, [b := a, a := b])",
        "%3 = Sink(%2, out1)",
    )


# --- semi join pushdown --------------------------------------------------------


def tpch_q18_like() -> Workflow:
    """IN (grouped subquery) over customer x orders x lineitem, as lowered."""
    cu = scan("customer", "c_custkey", "c_name:string")
    od = scan("orders", "o_orderkey", "o_custkey", "o_totalprice:float64")
    li = scan("lineitem", "l_orderkey", "l_quantity:float64")
    li2 = scan("lineitem", "l2_orderkey", "l2_quantity:float64")
    big = project(O.Filter(O.Aggregate(li2, ("l2_orderkey",), (("total", AggCall("sum", "l2_quantity")),)),
                           cmp(">", c("total"), lit(300))), "l2_orderkey")
    joined = O.Join(O.Join(cu, od, "inner", ("c_custkey",), ("o_custkey",)), li, "inner",
                    ("o_orderkey",), ("l_orderkey",))
    semi = O.Join(joined, big, "semi", ("o_orderkey",), ("l2_orderkey",))
    return wf(O.Aggregate(semi, ("c_name", "o_orderkey"), (("qty", AggCall("sum", "l_quantity")),)))


def test_semi_join_pushdown_tpch_q18_shape_filters_orders_before_the_joins() -> None:
    assert text(semi_join_pushdown(tpch_q18_like())) == lines(
        "%0 = Scan(customer [c_custkey, c_name])",
        "%1 = Scan(orders [o_orderkey, o_custkey, o_totalprice])",
        "%2 = Scan(lineitem [l2_orderkey, l2_quantity])",
        "%3 = Aggregate(%2, by [l2_orderkey], [total := sum(l2_quantity)])",
        "%4 = Filter(%3, total > 300)",
        "%5 = Project(%4, [l2_orderkey])",
        "%6 = Join(semi, %1, %5, on o_orderkey = l2_orderkey)",
        "%7 = Join(inner, %0, %6, on c_custkey = o_custkey)",
        "%8 = Scan(lineitem [l_orderkey, l_quantity])",
        "%9 = Join(inner, %7, %8, on o_orderkey = l_orderkey)",
        "%10 = Aggregate(%9, by [c_name, o_orderkey], [qty := sum(l_quantity)])",
        "%11 = Sink(%10, result)",
    )


@pytest.mark.parametrize("kind, null_aware", [("semi", False), ("anti", False), ("anti", True)])
def test_semi_join_pushdown_moves_semi_and_anti_joins_to_the_preserved_side(kind: str, null_aware: bool) -> None:
    a, b = scan("a", "x", "p"), scan("b", "y", "q")
    keys = project(O.Filter(scan("k", "k"), cmp(">", c("k"), lit(0))), "k")
    for join_kind, expected_side in (("inner", 0), ("left", 0), ("cross", 0)):
        on = (("x",), ("y",)) if join_kind != "cross" else ((), ())
        j = O.Join(a, b, join_kind, *on)
        got = semi_join_pushdown(wf(O.Join(j, keys, kind, ("x",), ("k",), null_aware=null_aware)))
        top = got.sinks[0].input
        assert isinstance(top, O.Join) and top.kind == join_kind
        moved = top.inputs[expected_side]
        assert isinstance(moved, O.Join) and (moved.kind, moved.null_aware) == (kind, null_aware)
        assert moved.left is a and moved.right is keys
    # Keys from the NULL-padded side of an outer join, or a full join: stays above
    # (the semi join must also drop the padded rows, whose key is NULL).
    for join_kind, key in (("left", "y"), ("full", "x"), ("right", "x")):
        j = O.Join(a, b, join_kind, ("x",), ("y",))
        w = wf(O.Join(j, keys, kind, (key,), ("k",), null_aware=null_aware))
        assert text(semi_join_pushdown(w)) == text(w)


def test_semi_join_pushdown_needs_every_left_column_on_one_side() -> None:
    a, b = scan("a", "x", "p"), scan("b", "y", "q")
    keys = project(O.Filter(scan("k", "k", "v"), cmp(">", c("k"), lit(0))), "k", "v")
    j = O.Join(a, b, "inner", ("x",), ("y",))
    both = O.Join(j, keys, "semi", ("x",), ("k",), cmp("<", c("q"), c("v")))  # residual reads b's q
    w = wf(both)
    assert text(semi_join_pushdown(w)) == text(w)
    own = O.Join(j, keys, "semi", ("x",), ("k",), cmp("<", c("p"), c("v")))
    got = semi_join_pushdown(wf(own)).sinks[0].input
    assert isinstance(got, O.Join) and got.kind == "inner"
    assert isinstance(got.left, O.Join) and got.left.kind == "semi" and got.left.residual == own.residual


def test_semi_join_pushdown_keeps_an_expensive_semi_join_above_a_reducing_join() -> None:
    """TPC-H Q21 shape: a semi join with a residual against a whole table
    stays above a join with a filtered table (which drops most rows first)."""
    li = scan("lineitem", "l_orderkey", "l_suppkey")
    od = O.Filter(scan("orders", "o_orderkey", "o_status:string"), eq(c("o_status"), lit("F")))
    li2 = project(scan("lineitem", "l_orderkey", "l_suppkey"), ("l2_orderkey", c("l_orderkey")),
                  ("l2_suppkey", c("l_suppkey")))
    j = O.Join(li, od, "inner", ("l_orderkey",), ("o_orderkey",))
    semi = O.Join(j, li2, "semi", ("l_orderkey",), ("l2_orderkey",), cmp("<>", c("l2_suppkey"), c("l_suppkey")))
    w = wf(semi)
    assert text(semi_join_pushdown(w)) == text(w)
    # ... but goes below a join with a whole table, which cannot drop rows.
    whole = O.Join(li, scan("orders", "o_orderkey"), "inner", ("l_orderkey",), ("o_orderkey",))
    got = semi_join_pushdown(wf(semi.with_inputs(whole, li2))).sinks[0].input
    assert isinstance(got, O.Join) and got.kind == "inner" and got.left.kind == "semi"  # type: ignore[attr-defined]


def test_semi_join_pushdown_never_into_a_shared_join() -> None:
    a, b = scan("a", "x"), scan("b", "y")
    keys = project(O.Filter(scan("k", "k"), cmp(">", c("k"), lit(0))), "k")
    j = O.Join(a, b, "inner", ("x",), ("y",))
    w = wf(O.Join(j, keys, "semi", ("x",), ("k",)), j)
    assert text(semi_join_pushdown(w)) == text(w)


# --- magic sets ------------------------------------------------------------------


def tpch_q17_like(outer_filter: bool = True, kind: str = "left") -> Workflow:
    """A correlated AVG subquery decorrelated by the SQL frontend (Kim's rewrite)."""
    li = scan("lineitem", "l_partkey", "l_quantity:float64", "l_price:float64")
    pa_ = scan("part", "p_partkey", "p_brand:string")
    part = O.Filter(pa_, eq(c("p_brand"), lit("Brand#23"))) if outer_filter else pa_
    outer = O.Join(li, part, "inner", ("l_partkey",), ("p_partkey",))
    avg = O.Aggregate(scan("lineitem", "l2_partkey", "l2_quantity:float64"), ("l2_partkey",),
                      (("avg_q", AggCall("avg", "l2_quantity")),))
    sub = project(avg, ("corr_0", c("l2_partkey")), ("value", E.Arith("*", lit(0.2), c("avg_q"))))
    j = O.Join(outer, sub, kind, ("p_partkey",), ("corr_0",))
    f = O.Filter(j, cmp("<", c("l_quantity"), c("value")))
    return wf(O.Aggregate(f, (), (("total", AggCall("sum", "l_price")),)))


def test_magic_sets_tpch_q17_shape_averages_only_the_wanted_parts() -> None:
    got = magic_sets(tpch_q17_like())
    assert text(got) == lines(
        "%0 = Scan(lineitem [l_partkey, l_quantity, l_price])",
        "%1 = Scan(part [p_partkey, p_brand])",
        "%2 = Filter(%1, p_brand = 'Brand#23')",
        "%3 = Join(inner, %0, %2, on l_partkey = p_partkey)",
        "%4 = Scan(lineitem [l2_partkey, l2_quantity])",
        "%5 = Join(semi, %4, %2, on l2_partkey = p_partkey)",  # the filtered parts, shared
        "%6 = Aggregate(%5, by [l2_partkey], [avg_q := avg(l2_quantity)])",
        "%7 = Project(%6, [corr_0 := l2_partkey, value := 0.2 * avg_q])",
        "%8 = Join(left, %3, %7, on p_partkey = corr_0)",
        "%9 = Filter(%8, l_quantity < value)",
        "%10 = Aggregate(%9, by [], [total := sum(l_price)])",
        "%11 = Sink(%10, result)",
    )
    scans = [op for op in got.ops() if isinstance(op, O.Scan)]
    assert len(scans) == 3  # the part filter is read twice, not copied


def test_magic_sets_full_pipeline_on_q17_shape_is_idempotent() -> None:
    once = optimize(tpch_q17_like())
    assert "Join(semi" in text(once)
    assert text(optimize(once)) == text(once)


def test_magic_sets_needs_a_reduced_outer_side() -> None:
    w = tpch_q17_like(outer_filter=False)  # every part: restricting gains nothing
    assert text(magic_sets(w)) == text(w)


@pytest.mark.parametrize("kind, applies", [
    ("left", True), ("inner", True), ("semi", True), ("anti", True),
    ("right", False),  # keeps groups no outer row looks up
    ("full", False),
])
def test_magic_sets_only_where_unmatched_groups_are_dropped(kind: str, applies: bool) -> None:
    part = O.Filter(scan("part", "p_partkey", "p_brand:string"), eq(c("p_brand"), lit("B")))
    cnt = O.Aggregate(scan("sales", "s_partkey", "s_qty"), ("s_partkey",), (("n", AggCall("count_star")),))
    having = O.Filter(cnt, cmp(">", c("n"), lit(1)))  # a HAVING between: whole groups in or out
    j = O.Join(part, having, kind, ("p_partkey",), ("s_partkey",))
    got = magic_sets(wf(j))
    assert ("Join(semi, %" in text(got).split("Aggregate")[0]) is applies
    null_aware = O.Join(part, project(having, "s_partkey"), "anti", ("p_partkey",), ("s_partkey",), null_aware=True)
    w = wf(null_aware)
    assert text(magic_sets(w)) == text(w)  # NOT IN: a NULL group key must still reject every row


def test_magic_sets_leaves_shared_aggregates_and_non_key_joins_alone() -> None:
    part = O.Filter(scan("part", "p_partkey", "p_brand:string"), eq(c("p_brand"), lit("B")))
    cnt = O.Aggregate(scan("sales", "s_partkey", "s_qty"), ("s_partkey",), (("n", AggCall("count_star")),))
    shared = wf(O.Join(part, cnt, "inner", ("p_partkey",), ("s_partkey",)), O.Aggregate(cnt, (), (("m", AggCall("max", "n")),)))
    assert text(magic_sets(shared)) == text(shared)  # the other reader needs every group
    by_value = wf(O.Join(part, cnt, "inner", ("p_partkey",), ("n",)))  # n is an aggregate, not a group key
    assert text(magic_sets(by_value)) == text(by_value)


def test_magic_sets_multi_key_groups_follow_renames_through_joins() -> None:
    """TPC-H Q20 shape: two correlation keys, the outer side reduced by a semi join."""
    ps = scan("partsupp", "ps_partkey", "ps_suppkey", "ps_qty")
    forest = project(O.Filter(scan("part", "p_partkey", "p_name:string"), E.Like(c("p_name"), "forest%")), "p_partkey")
    outer = O.Join(ps, forest, "semi", ("ps_partkey",), ("p_partkey",))
    renamed = project(outer, ("pk", c("ps_partkey")), ("sk", c("ps_suppkey")), "ps_qty")
    li = scan("lineitem", "l_partkey", "l_suppkey", "l_qty")
    agg = O.Aggregate(li, ("l_partkey", "l_suppkey"), (("s", AggCall("sum", "l_qty")),))
    j = O.Join(renamed, agg, "inner", ("pk", "sk"), ("l_partkey", "l_suppkey"))
    got = magic_sets(wf(j)).sinks[0].input
    restricted = got.right.input  # type: ignore[attr-defined]
    assert isinstance(restricted, O.Join) and restricted.kind == "semi"
    assert restricted.right is outer
    assert (restricted.left_keys, restricted.right_keys) == (("l_partkey", "l_suppkey"), ("ps_partkey", "ps_suppkey"))


def test_magic_sets_never_restricts_by_a_relation_built_from_the_groups() -> None:
    cnt = O.Aggregate(scan("sales", "s_partkey", "s_qty"), ("s_partkey",), (("n", AggCall("count_star")),))
    top = O.Filter(cnt, cmp(">", c("n"), lit(1)))
    # The outer side is computed from the aggregate itself (a self-join of a CTE).
    other = project(top, ("k", c("s_partkey")))
    w = wf(O.Join(other, cnt, "inner", ("k",), ("s_partkey",)))
    assert text(magic_sets(w)) == text(w)


# --- properties over a small zoo of workflows ---------------------------------


def shared_cte_workflow() -> Workflow:
    """TPC-H Q15 shape: a per-key aggregate used twice (max, then join)."""
    li = scan("lineitem", "l_suppkey", "l_price:float64", "l_shipdate:date", "l_comment:string")
    f = O.Filter(li, cmp(">=", c("l_shipdate"), E.Cast(lit("1996-01-01"), DATE)))
    rev = O.Aggregate(project(f, "l_suppkey", "l_price"), ("l_suppkey",),
                      (("total", AggCall("sum", "l_price")), ("n", AggCall("count_star"))))
    mx = O.Aggregate(rev, (), (("max_total", AggCall("max", "total")),))
    su = scan("supplier", "s_suppkey", "s_name:string", "s_phone:string")
    j = O.Join(O.Join(su, rev, "cross"), mx, "cross")
    f2 = O.Filter(j, and_(eq(c("s_suppkey"), c("l_suppkey")), eq(c("total"), c("max_total"))))
    return wf(O.Sort(project(f2, "s_suppkey", "s_name", "total"), (O.SortKey("s_suppkey"),)))


def outer_join_workflow() -> Workflow:
    """TPC-H Q13 shape: left join with an ON filter, counts per customer."""
    cu = scan("customer", "c_custkey", "c_name:string")
    od = scan("orders", "o_orderkey", "o_custkey", "o_comment:string")
    j = O.Join(cu, od, "left", ("c_custkey",), ("o_custkey",),
               E.Like(c("o_comment"), "%special%requests%", negated=True))
    cnt = O.Aggregate(j, ("c_custkey",), (("c_count", AggCall("count", "o_orderkey")),))
    dist = O.Aggregate(cnt, ("c_count",), (("custdist", AggCall("count_star")),))
    return wf(O.Filter(dist, cmp(">", c("c_count"), E.Arith("-", lit(2), lit(1)))))


def semi_union_workflow() -> Workflow:
    a = scan("a", "x", "y:string")
    b = scan("b", "x2", "y2:string")
    u = O.Union(a, b)
    s = O.Join(u, scan("keys", "k", "label:string"), "semi", ("x",), ("k",))
    p = project(s, ("y_up", E.Func("upper", (c("y"),))), "x")
    return wf(O.Filter(p, and_(eq(c("y_up"), lit("A")), cmp(">", c("x"), lit(3)))))


def q7_like_workflow() -> Workflow:
    n1 = scan("nation1", "n1_key", "n1_name:string")
    n2 = scan("nation2", "n2_key", "n2_name:string")
    su = scan("supplier", "s_suppkey", "s_nationkey")
    cu = scan("customer", "c_custkey", "c_nationkey")
    j = O.Join(O.Join(O.Join(su, cu, "cross"), n1, "cross"), n2, "cross")
    f = O.Filter(j, and_(
        eq(c("s_nationkey"), c("n1_key")), eq(c("c_nationkey"), c("n2_key")),
        or_(and_(eq(c("n1_name"), lit("FRANCE")), eq(c("n2_name"), lit("GERMANY"))),
            and_(eq(c("n1_name"), lit("GERMANY")), eq(c("n2_name"), lit("FRANCE"))))))
    return wf(project(f, "n1_name", "n2_name"))


def self_join_workflow() -> Workflow:
    t = scan("t", "a", "b", "junk:string")
    r = project(t, ("a2", c("a")), ("b2", c("b")))
    j = O.Join(t, r, "cross")
    return wf(O.Filter(j, and_(eq(c("a"), c("a2")), cmp(">", c("b"), lit(1)),
                               cmp("<", c("b2"), lit(5)))))


WORKFLOWS: dict[str, Callable[[], Workflow]] = {
    "q9": q9_like_workflow,
    "q7": q7_like_workflow,
    "self_join": self_join_workflow,
    "q3": tpch_q3_like,
    "shared_cte": shared_cte_workflow,
    "outer_join": outer_join_workflow,
    "semi_union": semi_union_workflow,
    "loop": loop_workflow,
    "q17": tpch_q17_like,
    "q18": tpch_q18_like,
}

ALL_PASSES = {p.__name__: p for p in PASSES}


def sink_schemas(w: Workflow) -> dict[str, Schema]:
    return {s.name: s.schema for s in w.sinks}


def shared_nodes(w: Workflow) -> int:
    return sum(1 for users in w.consumers().values() if len(users) > 1)


@pytest.mark.parametrize("make", WORKFLOWS.values(), ids=list(WORKFLOWS))
@pytest.mark.parametrize("name", list(ALL_PASSES))
def test_every_pass_keeps_sink_schemas_and_is_idempotent(make: Callable[[], Workflow],
                                                          name: str) -> None:
    p = ALL_PASSES[name]
    w = make()
    once = p(w)
    assert sink_schemas(once) == sink_schemas(w)
    assert text(p(once)) == text(once)


@pytest.mark.parametrize("make", WORKFLOWS.values(), ids=list(WORKFLOWS))
def test_optimize_is_idempotent_and_round_trips_through_json(make: Callable[[], Workflow]) -> None:
    w = make()
    got = optimize(w)
    assert sink_schemas(got) == sink_schemas(w)
    assert got.to_text() == optimize(got).to_text()
    assert Workflow.from_json(got.to_json()).to_text() == got.to_text()


@pytest.mark.parametrize("make", WORKFLOWS.values(), ids=list(WORKFLOWS))
def test_optimize_preserves_sharing(make: Callable[[], Workflow]) -> None:
    w = make()
    got = optimize(w)
    scans = lambda wf_: sum(isinstance(op, O.Scan) for op in wf_.ops())
    assert scans(got) == scans(w)  # a shared subtree was not copied
    assert shared_nodes(got) >= min(shared_nodes(w), 1)


def test_optimize_shared_cte_golden() -> None:
    got = optimize(shared_cte_workflow())
    assert text(got) == lines(
        "%0 = Scan(supplier [s_suppkey, s_name])",
        "%1 = Scan(lineitem [l_suppkey, l_price, l_shipdate])",
        "%2 = Filter(%1, l_shipdate >= DATE '1996-01-01')",
        "%3 = Project(%2, [l_suppkey, l_price])",
        "%4 = Aggregate(%3, by [l_suppkey], [total := sum(l_price)])",
        "%5 = Join(inner, %0, %4, on s_suppkey = l_suppkey)",
        "%6 = Aggregate(%4, by [], [max_total := max(total)])",
        "%7 = Join(inner, %5, %6, on total = max_total)",
        "%8 = Project(%7, [s_suppkey, s_name, total])",
        "%9 = Sort(%8, [s_suppkey ASC NULLS LAST])",
        "%10 = Sink(%9, result)",
    )
    agg = got.sinks[0].input.input.input.left.right  # type: ignore[attr-defined]
    assert agg is got.sinks[0].input.input.input.right.input  # type: ignore[attr-defined]


def test_optimize_outer_join_golden() -> None:
    got = optimize(outer_join_workflow())
    assert text(got) == lines(
        "%0 = Scan(customer [c_custkey])",
        "%1 = Scan(orders [o_orderkey, o_custkey, o_comment])",
        "%2 = Filter(%1, o_comment NOT LIKE '%special%requests%')",
        "%3 = Join(left, %0, %2, on c_custkey = o_custkey)",
        "%4 = Aggregate(%3, by [c_custkey], [c_count := count(o_orderkey)])",
        "%5 = Filter(%4, c_count > 1)",  # a group key of the aggregate above
        "%6 = Aggregate(%5, by [c_count], [custdist := count(*)])",
        "%7 = Sink(%6, result)",
    )


def test_optimize_semi_union_golden() -> None:
    got = optimize(semi_union_workflow())
    assert text(got) == lines(
        "%0 = Scan(a [x, y])",
        "%1 = Filter(%0, x > 3)",
        "%2 = Scan(b [x2, y2])",
        "%3 = Filter(%2, x2 > 3)",
        "%4 = Union(%1, %3)",
        "%5 = Scan(keys [k])",
        "%6 = Join(semi, %4, %5, on x = k)",
        "%7 = Project(%6, [y_up := upper(y), x])",
        "%8 = Filter(%7, y_up = 'A')",
        "%9 = Sink(%8, result)",
    )


def test_json_round_trip_keeps_folded_literal_types() -> None:
    t = scan("t", "d:date", "x")
    p = project(t, ("n", E.Arith("+", c("x"), lit(None))),
                ("d2", E.Arith("+", lit(dt.date(1994, 1, 1)), lit(Interval(months=12)))))
    got = optimize(wf(p))
    back = Workflow.from_json(got.to_json())
    assert back.to_text() == got.to_text()
    assert back.sinks[0].schema == got.sinks[0].schema == p.schema


def test_optimize_accepts_a_custom_pass_list() -> None:
    w = tpch_q3_like()
    assert text(optimize(w, passes=())) == text(w)
    assert text(optimize(w, passes=[constant_folding])) == text(constant_folding(w))


def test_null_typed_columns_never_become_join_keys() -> None:
    a = project(scan("a", "x"), "x", ("n", Lit(None, NULL)))
    b = project(scan("b", "y"), "y", ("m", Lit(None, NULL)))
    f = O.Filter(O.Join(a, b, "cross"), eq(c("n"), c("m")))
    got = predicate_pushdown(wf(f))
    join = got.sinks[0].input
    assert isinstance(join, O.Join) and join.left_keys == ()
