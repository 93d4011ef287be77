"""SQL frontend: lowering shapes and bad-input errors (message + location).

Result correctness is checked against DuckDB in test_tpch.py and the CLI
tests; here we check what only the frontend knows: which IR it builds and
where it points when the input is wrong.
"""

from __future__ import annotations

import pytest

from musketeer.frontends.sql import parse_workflow
from musketeer.ir import Catalog, IRError, MusketeerError, Schema, Table, UnsupportedError
from musketeer.ir import operators as O
from musketeer.ir.types import DATE, INT64, STRING, decimal


@pytest.fixture()
def catalog() -> Catalog:
    cat = Catalog()
    cat.add(Table("orders", "/d/orders.parquet", "parquet", Schema.of([
        ("o_orderkey", INT64), ("o_custkey", INT64), ("o_total", decimal(15, 2)),
        ("o_date", DATE), ("o_status", STRING)])))
    cat.add(Table("customer", "/d/customer.parquet", "parquet", Schema.of([
        ("c_custkey", INT64), ("c_name", STRING), ("c_nation", INT64)])))
    cat.add(Table("lineitem", "/d/lineitem.parquet", "parquet", Schema.of([
        ("l_orderkey", INT64), ("l_suppkey", INT64), ("l_qty", decimal(15, 2))])))
    return cat


def ops_of(wf, cls):  # type: ignore[no-untyped-def]
    return [op for op in wf.ops() if isinstance(op, cls)]


def lower(sql: str, catalog: Catalog):  # type: ignore[no-untyped-def]
    return parse_workflow(sql, catalog, "w.sql")


def test_comma_join_becomes_equi_join(catalog: Catalog) -> None:
    wf = lower("SELECT c_name, o_total FROM orders, customer WHERE o_custkey = c_custkey AND o_status = 'F'", catalog)
    joins = ops_of(wf, O.Join)
    assert [(j.kind, j.left_keys, j.right_keys) for j in joins] == [("inner", ("o_custkey",), ("c_custkey",))]
    filters = ops_of(wf, O.Filter)
    assert len(filters) == 1 and isinstance(filters[0].input, O.Scan)  # pushed to the orders side


def test_greedy_join_order_avoids_cross_product(catalog: Catalog) -> None:
    wf = lower("SELECT c_name FROM customer, lineitem, orders "
               "WHERE l_orderkey = o_orderkey AND o_custkey = c_custkey", catalog)
    assert all(j.kind == "inner" and j.left_keys for j in ops_of(wf, O.Join))


def test_exists_with_non_equality_correlation_is_semi_join_with_residual(catalog: Catalog) -> None:
    wf = lower("""SELECT l1.l_orderkey FROM lineitem l1 WHERE EXISTS (
                    SELECT * FROM lineitem l2 WHERE l2.l_orderkey = l1.l_orderkey
                    AND l2.l_suppkey <> l1.l_suppkey)""", catalog)
    (j,) = ops_of(wf, O.Join)
    assert j.kind == "semi" and len(j.left_keys) == 1 and j.residual is not None


def test_not_in_is_null_aware_anti_join(catalog: Catalog) -> None:
    wf = lower("SELECT o_orderkey FROM orders WHERE o_custkey NOT IN (SELECT c_custkey FROM customer)", catalog)
    (j,) = ops_of(wf, O.Join)
    assert j.kind == "anti" and j.null_aware


def test_correlated_scalar_subquery_becomes_grouped_left_join(catalog: Catalog) -> None:
    wf = lower("""SELECT o_orderkey FROM orders WHERE o_total > (
                    SELECT avg(l_qty) FROM lineitem WHERE l_orderkey = o_orderkey)""", catalog)
    (j,) = ops_of(wf, O.Join)
    assert j.kind == "left" and isinstance(j.right, O.Project)
    (agg,) = ops_of(wf, O.Aggregate)
    assert agg.keys == ("l_orderkey",)


def test_cte_used_twice_is_one_shared_node(catalog: Catalog) -> None:
    wf = lower("""WITH t AS (SELECT o_custkey, sum(o_total) AS s FROM orders GROUP BY o_custkey)
                  SELECT o_custkey FROM t WHERE s = (SELECT max(s) FROM t)""", catalog)
    assert len(ops_of(wf, O.Aggregate)) == 2  # the CTE's and max(): the CTE itself once
    assert len(ops_of(wf, O.Scan)) == 1


def test_multi_statement_workflow(catalog: Catalog, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wf = lower("""CREATE TABLE big AS SELECT o_custkey, o_total FROM orders WHERE o_total > 100;
                  COPY (SELECT count(*) AS n FROM big) TO 'n.csv';
                  SELECT c_name, o_total FROM big JOIN customer ON o_custkey = c_custkey;""", catalog)
    assert [s.name for s in wf.sinks] == ["copy_1", "result"]
    assert wf.sinks[0].path == "n.csv"
    assert len(ops_of(wf, O.Scan)) == 2  # `big` is shared, not recomputed


def test_or_factoring_keeps_join_condition(catalog: Catalog) -> None:
    wf = lower("""SELECT o_orderkey FROM orders, customer WHERE
                  (o_custkey = c_custkey AND c_nation = 1) OR (o_custkey = c_custkey AND c_nation = 2)""", catalog)
    (j,) = ops_of(wf, O.Join)
    assert j.left_keys == ("o_custkey",)


def test_json_round_trip_of_lowered_workflow(catalog: Catalog) -> None:
    from musketeer.ir import Workflow

    wf = lower("SELECT o_status, count(DISTINCT o_custkey) AS n FROM orders "
               "WHERE o_date >= DATE '1995-01-01' + INTERVAL '1' MONTH GROUP BY o_status ORDER BY n DESC LIMIT 3",
               catalog)
    assert Workflow.from_json(wf.to_json()).to_text() == wf.to_text()


# --- bad input: message and location -----------------------------------------

def error_of(sql: str, catalog: Catalog) -> MusketeerError:
    with pytest.raises(MusketeerError) as info:
        lower(sql, catalog)
    return info.value


def test_syntax_error_location(catalog: Catalog) -> None:
    err = error_of("SELECT o_orderkey\nFROM orders\nWHERE (o_total > 1", catalog)
    assert "syntax error" in err.message
    assert err.loc is not None and err.loc.line == 3


def test_unknown_table_suggests(catalog: Catalog) -> None:
    err = error_of("SELECT 1 AS x FROM\n  ordrs", catalog)
    assert "unknown table 'ordrs'" in err.message and "did you mean 'orders'" in err.message
    assert (err.loc.line, err.loc.col) == (2, 3)


def test_unknown_column_suggests(catalog: Catalog) -> None:
    err = error_of("SELECT o_totl FROM orders", catalog)
    assert "unknown column 'o_totl'" in err.message and "'o_total'" in err.message
    assert (err.loc.line, err.loc.col) == (1, 8)


def test_type_error_located(catalog: Catalog) -> None:
    err = error_of("SELECT o_orderkey FROM orders\nWHERE o_status + 1 > 2", catalog)
    assert isinstance(err, IRError) and "cannot apply '+'" in err.message
    assert err.loc.line == 2 and err.loc.col == 7


def test_sum_over_string_is_a_type_error(catalog: Catalog) -> None:
    err = error_of("SELECT sum(o_status) FROM orders", catalog)
    assert "SUM needs a number" in err.message and err.loc is not None


def test_unsupported_construct(catalog: Catalog) -> None:
    err = error_of("SELECT o_orderkey, row_number() OVER w FROM orders WINDOW w AS (ORDER BY o_total)", catalog)
    assert isinstance(err, UnsupportedError) and err.message.startswith("not supported yet:")
    assert err.loc is not None and err.loc.line == 1


def test_ungrouped_column(catalog: Catalog) -> None:
    err = error_of("SELECT o_status, o_total FROM orders GROUP BY o_status", catalog)
    assert "must appear in GROUP BY" in err.message and err.loc.col == 18


def test_bare_select_before_last_statement(catalog: Catalog) -> None:
    err = error_of("SELECT 1 AS a FROM orders;\nSELECT 2 AS b FROM orders", catalog)
    assert "only the last statement" in err.message and err.loc.line == 1


def test_not_like_keeps_its_negation(catalog: Catalog) -> None:
    wf = lower("SELECT o_orderkey FROM orders WHERE o_status NOT LIKE 'F%' AND o_status NOT ILIKE 'x%'", catalog)
    texts = [str(f.predicate) for f in ops_of(wf, O.Filter)]
    assert texts == ["o_status NOT LIKE 'F%'", "o_status NOT ILIKE 'x%'"]


# --- strictness: nothing the user wrote is silently dropped ------------------

def test_every_sqlglot_argument_is_consumed_or_refused() -> None:
    """Each argument key sqlglot defines for a node type the frontend accepts
    is either read by lowering or refused with a located error."""
    from musketeer.frontends.sql.strict import ACCEPTED, REFUSED

    missing = {}
    for node_type, accepted in ACCEPTED.items():
        refused = set(REFUSED.get(node_type, {}))
        keys = set(node_type.arg_types)
        assert accepted <= keys, f"{node_type.__name__}: accepts unknown keys {accepted - keys}"
        assert not (accepted & refused), f"{node_type.__name__}: both accepted and refused {accepted & refused}"
        left = keys - accepted - refused
        if left:
            missing[node_type.__name__] = sorted(left)
    assert not missing, f"sqlglot arguments neither consumed nor refused: {missing}"


def test_lowering_reads_only_accepted_node_types(catalog: Catalog) -> None:
    """Every node type in the lowered tree of a broad query is in ACCEPTED
    (so the walk that refuses unknown types cannot refuse working SQL)."""
    wf = lower("""WITH big AS (SELECT o_custkey, sum(o_total) AS t FROM orders GROUP BY o_custkey HAVING count(*) > 1)
                  SELECT c_name, upper(trim(c_name)) || 'x', CAST(t AS DOUBLE), CASE WHEN t > 1 THEN 1 ELSE 0 END,
                         coalesce(t, 0), round(t, 2), abs(-t), substring(c_name, 1, 2), extract(year FROM DATE '2020-01-01')
                  FROM customer c JOIN big b ON c.c_custkey = b.o_custkey
                  WHERE c_name LIKE 'a%' AND c_nation IN (1, 2) AND c_nation BETWEEN 0 AND 9 AND c_name IS NOT NULL
                  ORDER BY 1 DESC NULLS FIRST LIMIT 5 OFFSET 1""", catalog)
    assert ops_of(wf, O.Limit)


@pytest.mark.parametrize("sql,message,col", [
    ("SELECT o_custkey, sum(o_total) OVER (ORDER BY o_date RANGE BETWEEN INTERVAL 1 MONTH PRECEDING AND "
     "CURRENT ROW) FROM orders", "RANGE frame offset in months (INTERVAL", None),
    ("SELECT o_custkey, sum(o_total) OVER (ORDER BY o_date ROWS BETWEEN 1 PRECEDING AND CURRENT ROW "
     "EXCLUDE TIES) FROM orders", "EXCLUDE in a window frame", None),
    ("SELECT o_custkey FROM orders TABLESAMPLE (10 ROWS)", "not supported yet: TABLESAMPLE", 43),
    ("SELECT o_custkey FROM orders USING SAMPLE 10%", "not supported yet: USING SAMPLE", 43),
    ("SELECT approx_count_distinct(o_status) FROM orders",
     "aggregate APPROX_COUNT_DISTINCT in approx_count_distinct(o_status)", 8),
    ("SELECT date_trunc('decade', o_date) FROM orders", "DATE_TRUNC to 'decade'", 8),
    ("SELECT levenshtein(o_status, 'x') FROM orders", "function LEVENSHTEIN in levenshtein(o_status, 'x')", 8),
    ("SELECT o_custkey FROM orders ORDER BY o_custkey WITH FILL", "WITH FILL", None),
    ("SELECT o_custkey FROM orders WHERE o_custkey IS NOT DISTINCT FROM 1", "IS NOT DISTINCT FROM", None),
    ("COPY (SELECT o_custkey FROM orders) TO 'x.csv' (HEADER false)", "a COPY option", None),
    ("CREATE OR REPLACE TABLE t AS SELECT o_custkey FROM orders; SELECT * FROM t", "CREATE OR REPLACE", None),
])
def test_refusals_quote_the_users_text(catalog: Catalog, sql: str, message: str, col: int | None) -> None:
    err = error_of(sql, catalog)
    assert isinstance(err, UnsupportedError), err
    assert message in err.message, err.message
    assert "APPROX_DISTINCT" not in err.message and "TIMESTAMP_TRUNC" not in err.message
    assert err.loc is not None and err.loc.line == 1
    if col is not None:
        assert err.loc.col == col, err.loc


def test_window_errors_quote_the_whole_window(catalog: Catalog) -> None:
    err = error_of("SELECT o_custkey FROM orders WHERE max(o_total) OVER (PARTITION BY o_custkey ORDER BY o_date "
                   "RANGE BETWEEN INTERVAL 1 DAY PRECEDING AND CURRENT ROW) > 1", catalog)
    assert "max(o_total) OVER (PARTITION BY o_custkey ORDER BY o_date RANGE BETWEEN INTERVAL 1 DAY PRECEDING AND " \
        "CURRENT ROW) is not allowed in WHERE" in err.message, err.message
    assert (err.loc.line, err.loc.col) == (1, 36)


def test_qualify_without_a_window_is_an_error(catalog: Catalog) -> None:
    err = error_of("SELECT o_custkey FROM orders QUALIFY o_custkey = 1", catalog)
    assert "QUALIFY needs a window function" in err.message and err.loc is not None
