"""The Window operator: IR checks, passes, serialisation, SQL lowering.

Results against DuckDB on every engine are the conformance workflows
tests/workflows/windows_*.sql; here, what only the IR and frontend know.
"""

from __future__ import annotations

import pytest

from musketeer.frontends.sql import parse_workflow
from musketeer.ir import Catalog, IRError, MusketeerError, Schema, Table
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.passes import predicate_pushdown, projection_pruning
from musketeer.ir.types import DATE, FLOAT64, INT64, STRING, IRTypeError
from musketeer.ir.window import RUNNING, WHOLE, Frame, FrameBound, WindowCall
from musketeer.ir.workflow import Workflow


def scan() -> O.Scan:
    return O.Scan("t", "/fake/t.parquet", "parquet", (
        O.ScanColumn("k", "k", INT64), O.ScanColumn("v", "v", FLOAT64), O.ScanColumn("d", "d", DATE),
        O.ScanColumn("s", "s", STRING)))


def window(*calls: tuple[str, WindowCall], partition: tuple[str, ...] = ("k",)) -> O.Window:
    return O.Window(scan(), partition, (O.SortKey("d"),), tuple(calls))


ROWS_1 = Frame("rows", FrameBound("preceding", 1), FrameBound("current_row"))


def test_schema_appends_typed_columns() -> None:
    op = window(("rn", WindowCall("row_number")), ("total", WindowCall("sum", "v", frame=ROWS_1)),
                ("p", WindowCall("percent_rank")), ("l", WindowCall("lag", "s", (1, None))),
                ("n", WindowCall("count_star", frame=WHOLE)))
    assert [(f.name, str(f.dtype), f.nullable) for f in op.schema.fields[4:]] == [
        ("rn", "int64", False), ("total", "float64", True), ("p", "float64", False), ("l", "string", True),
        ("n", "int64", False)]


@pytest.mark.parametrize("call,message", [
    (WindowCall("sum", "s", frame=WHOLE), "SUM needs a number"),
    (WindowCall("sum", "v"), "needs a frame"),
    (WindowCall("rank", frame=WHOLE), "takes no frame"),
    (WindowCall("ntile", params=(0,)), "NTILE needs a positive"),
    (WindowCall("lag", "v", (1, "x")), "does not match"),
    (WindowCall("median", "v", frame=WHOLE), "unknown window function"),
])
def test_bad_calls_are_refused_when_built(call: WindowCall, message: str) -> None:
    with pytest.raises(IRError, match=message):
        window(("x", call))


def test_range_offset_needs_one_numeric_or_date_key() -> None:
    frame = Frame("range", FrameBound("preceding", 2), FrameBound("current_row"))
    with pytest.raises(IRTypeError, match="numeric or date ORDER BY key"):
        O.Window(scan(), (), (O.SortKey("s"),), (("x", WindowCall("sum", "v", frame=frame)),))
    with pytest.raises(IRError, match="exactly one ORDER BY key"):
        O.Window(scan(), (), (O.SortKey("d"), O.SortKey("k")), (("x", WindowCall("sum", "v", frame=frame)),))
    with pytest.raises(IRError, match="cannot start at UNBOUNDED FOLLOWING"):
        Frame("rows", FrameBound("unbounded_following"), FrameBound("unbounded_following"))


def test_json_round_trip_and_text() -> None:
    op = window(("rn", WindowCall("row_number")), ("total", WindowCall("sum", "v", frame=ROWS_1)),
                ("l", WindowCall("lead", "d", (2, None))))
    wf = Workflow((O.Sink(op, "result"),))
    back = Workflow.from_json(wf.to_json())
    assert back.to_text() == wf.to_text()
    assert ("Window(%0, partition [k], order [d ASC NULLS LAST], [rn := row_number(), "
            "total := sum(v) ROWS BETWEEN 1 PRECEDING AND CURRENT ROW, l := lead(d, 2, None)])") in wf.to_text()
    assert "Window" in wf.to_dot()


def test_pruning_drops_unread_calls_and_unread_windows() -> None:
    op = window(("rn", WindowCall("row_number")), ("total", WindowCall("sum", "v", frame=RUNNING)))
    only_rn = O.Project(op, (("k", E.Col("k")), ("rn", E.Col("rn"))))
    pruned = projection_pruning(Workflow((O.Sink(only_rn, "result"),)))
    (w,) = [o for o in pruned.ops() if isinstance(o, O.Window)]
    assert [n for n, _ in w.calls] == ["rn"]
    (s,) = [o for o in pruned.ops() if isinstance(o, O.Scan)]
    assert [c.name for c in s.columns] == ["k", "d"]  # v is no longer read, d still orders
    none = projection_pruning(Workflow((O.Sink(O.Project(op, (("s2", E.Col("total")),)), "result"),)))
    assert len([o for o in none.ops() if isinstance(o, O.Window)]) == 1
    gone = projection_pruning(Workflow((O.Sink(O.Project(op, (("k", E.Col("k")),)), "result"),)))
    assert not [o for o in gone.ops() if isinstance(o, O.Window)]


def test_pushdown_passes_only_partition_key_conjuncts() -> None:
    op = window(("rn", WindowCall("row_number")))
    pred = E.And((E.Compare("=", E.Col("k"), E.Lit(1, INT64)), E.Compare(">", E.Col("v"), E.Lit(0.0, FLOAT64)),
                  E.Compare("=", E.Col("rn"), E.Lit(1, INT64))))
    out = predicate_pushdown(Workflow((O.Sink(O.Filter(op, pred), "result"),)))
    (w,) = [o for o in out.ops() if isinstance(o, O.Window)]
    assert isinstance(w.input, O.Filter) and str(w.input.predicate) == "k = 1"
    above = [o for o in out.ops() if isinstance(o, O.Filter) and o.input is w]
    assert len(above) == 1 and str(above[0].predicate) == "v > 0.0 AND rn = 1"
    no_keys = window(("rn", WindowCall("row_number")), partition=())
    out = predicate_pushdown(Workflow((O.Sink(O.Filter(no_keys, pred), "result"),)))
    (w,) = [o for o in out.ops() if isinstance(o, O.Window)]
    assert isinstance(w.input, O.Scan)


# --- SQL lowering ---------------------------------------------------------------------

@pytest.fixture()
def catalog() -> Catalog:
    cat = Catalog()
    cat.add(Table("t", "/d/t.parquet", "parquet", Schema.of([("k", INT64), ("v", FLOAT64), ("d", DATE)])))
    return cat


def windows_of(sql: str, catalog: Catalog) -> list[O.Window]:
    return [o for o in parse_workflow(sql, catalog, "w.sql").ops() if isinstance(o, O.Window)]


def test_sql_default_frames_are_explicit(catalog: Catalog) -> None:
    ops = windows_of("SELECT sum(v) OVER (PARTITION BY k ORDER BY d) AS r, sum(v) OVER (PARTITION BY k) AS w, "
                        "first_value(v) OVER (ORDER BY d) AS f FROM t", catalog)
    calls = {n: c for op in ops for n, c in op.calls}
    assert calls["r"].frame == RUNNING and calls["w"].frame == WHOLE and calls["f"].frame == RUNNING


def test_sql_windows_sharing_partition_and_order_share_one_operator(catalog: Catalog) -> None:
    ops = windows_of("SELECT row_number() OVER (PARTITION BY k ORDER BY d) AS a, "
                     "rank() OVER (PARTITION BY k ORDER BY d) AS b, lag(v) OVER (ORDER BY d) AS c FROM t", catalog)
    assert sorted(len(o.calls) for o in ops) == [1, 2]


def test_sql_window_over_aggregate(catalog: Catalog) -> None:
    (w,) = windows_of("SELECT k, rank() OVER (ORDER BY sum(v) DESC) AS r FROM t GROUP BY k", catalog)
    assert isinstance(w.input, O.Aggregate) and not w.order_by[0].ascending


@pytest.mark.parametrize("sql,message", [
    ("SELECT k FROM t WHERE row_number() OVER (ORDER BY d) = 1", "is not allowed in WHERE"),
    ("SELECT k FROM t GROUP BY k HAVING rank() OVER (ORDER BY k) = 1", "is not allowed"),
    ("SELECT sum(row_number() OVER (ORDER BY d)) OVER () FROM t", "nested inside another window function"),
    ("SELECT ntile(0) OVER (ORDER BY d) FROM t", "NTILE bucket count must be at least 1"),
    ("SELECT ntile(k) OVER (ORDER BY d) FROM t", "NTILE bucket count that is not a whole-number constant"),
    ("SELECT lag(v, 1, k) OVER (ORDER BY d) FROM t", "LAG/LEAD default that reads a column"),
    ("SELECT sum(v) OVER (ORDER BY k, d RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t",
     "exactly one ORDER BY key"),
    ("SELECT sum(v) OVER (ORDER BY d ROWS BETWEEN 1.5 PRECEDING AND CURRENT ROW) FROM t", "whole number"),
    ("SELECT sum(v) OVER (ORDER BY d ROWS BETWEEN k PRECEDING AND CURRENT ROW) FROM t", "frame bound k"),
])
def test_sql_window_errors_are_located(catalog: Catalog, sql: str, message: str) -> None:
    with pytest.raises(MusketeerError) as info:
        parse_workflow(sql, catalog, "w.sql")
    assert message in info.value.message, info.value.message
    assert info.value.loc is not None and info.value.loc.line == 1


def test_cost_model_prices_a_window_by_rows_and_calls() -> None:
    """A Window costs a sort plus a pass per call: more calls, more rows, more seconds."""
    from musketeer.cost_model.cardinality import Cardinality
    from musketeer.cost_model.costs import default_profiles, op_seconds

    one = window(("rn", WindowCall("row_number")))
    three = window(("rn", WindowCall("row_number")), ("r", WindowCall("rank")), ("c", WindowCall("cume_dist")))
    bp = default_profiles()["local"]
    card = Cardinality(Workflow((O.Sink(one, "a"), O.Sink(three, "b"))))
    assert card.rows(one) == card.rows(one.input)
    assert op_seconds(bp, three, card) > op_seconds(bp, one, card) > bp.op_overhead


# --- the Python API -------------------------------------------------------------------

from tests.local_helpers import assert_same, con, paths  # noqa: E402,F401 - module-scoped fixtures


def test_linq_windows_match_duckdb(paths, con) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import musketeer as m
    from musketeer import col

    p = m.read(paths["people"])
    q = p.with_columns(
        rn=m.row_number().over(partition_by="dept", order_by=[col("salary").desc(), "id"]),
        rk=m.rank().over(order_by=p.k),
        nt=m.ntile(4).over(order_by="id"),
        run=p.salary.sum().over(partition_by=p.dept, order_by="id"),
        mov=col("qty").mean().over(order_by="id", rows=(-1, 1)),
        n=m.count().over("dept"),
        prev=p.name.lag(1, default="-").over(order_by="id"),
        first=p.salary.first_value().over(partition_by="dept", order_by="id", rows=(None, None)),
        near=p.qty.count().over(order_by="qty", range=(-2, 2)),
        grp=m.count().over(order_by="k", groups=(-1, 0)),
    ).select("id", "rn", "rk", "nt", "run", "mov", "n", "prev", "first", "near", "grp")
    assert_same(q.collect(), con, """
        SELECT id,
               row_number() OVER (PARTITION BY dept ORDER BY salary DESC, id) AS rn,
               rank() OVER (ORDER BY k) AS rk,
               ntile(4) OVER (ORDER BY id) AS nt,
               sum(salary) OVER (PARTITION BY dept ORDER BY id) AS run,
               avg(qty) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS mov,
               count(*) OVER (PARTITION BY dept) AS n,
               lag(name, 1, '-') OVER (ORDER BY id) AS prev,
               first_value(salary) OVER (PARTITION BY dept ORDER BY id
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS first,
               count(qty) OVER (ORDER BY qty RANGE BETWEEN 2 PRECEDING AND 2 FOLLOWING) AS near,
               count(*) OVER (ORDER BY k GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW) AS grp
        FROM people""")


def test_linq_window_errors(paths) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import musketeer as m
    from musketeer import col
    from musketeer.frontends.linq import LinqError

    p = m.read(paths["people"])
    with pytest.raises(LinqError, match="computed by select\\(\\) or with_columns\\(\\)"):
        p.where(m.row_number().over(order_by="id") == 1)
    with pytest.raises(LinqError, match="needs .over"):
        p.select(r=m.rank())
    with pytest.raises(LinqError, match="takes no frame"):
        m.row_number().over(order_by="id", rows=(-1, 0))
    with pytest.raises(LinqError, match="applies to an aggregate"):
        (col("a") + 1).over(order_by="id")
    with pytest.raises(LinqError, match="one of rows=, range=, groups="):
        col("a").sum().over(rows=(-1, 0), range=(-1, 0))
    with pytest.raises(LinqError, match="positive whole number of buckets"):
        m.ntile(0)
