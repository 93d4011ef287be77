# ruff: noqa: F811 - paths and con are fixtures from tests/local_helpers.py, requested by name
"""The LINQ-style Python frontend (frontends/linq) through the glue
(musketeer.Dataset): results equal DuckDB's on the same files, loops agree
with NumPy, TPC-H Q3 in LINQ equals the SQL text, and every expression that
cannot be lowered fails with a message that says what to do instead.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import re
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

import musketeer as m
from musketeer.frontends.linq import LinqError
from musketeer.ir import DataError, MusketeerError
from musketeer.ir import operators as O
from musketeer import api
from musketeer.cli import main
from tests import tpch
from tests.linq_helpers import EVERY_BACKEND, EVERY_BACKEND_HEAVY, loop_metrics
from tests.local_helpers import assert_same, con, paths  # noqa: F401 - module-scoped fixtures

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def people(paths: dict[str, Path]) -> m.Dataset:
    return m.read(paths["people"])


@pytest.fixture(scope="module")
def depts(paths: dict[str, Path]) -> m.Dataset:
    return m.read(paths["depts"])


# --------------------------------------------------------------------------- rows, columns, expressions

def test_where_select_with_columns(people: m.Dataset, con: duckdb.DuckDBPyConnection) -> None:
    q = (people.where(lambda p: (p.salary > 50) | p.dept.isin(["ops", "hr"]), people.qty.is_not_null())
         .select("id", "name", pay=people.salary * 2, band=m.when(people.salary >= 100, "high")
                 .when(people.salary >= 50, "mid").otherwise("low")))
    assert q.columns == ("id", "name", "pay", "band")
    assert_same(q.collect(), con, """
        SELECT id, name, salary * 2 AS pay,
               CASE WHEN salary >= 100 THEN 'high' WHEN salary >= 50 THEN 'mid' ELSE 'low' END AS band
        FROM people WHERE (salary > 50 OR dept IN ('ops', 'hr')) AND qty IS NOT NULL""")
    wide = people.with_columns(qty=people.qty.fill_null(0), yr=people.hired.year()).drop("ts", "price")
    assert wide.columns[:6] == ("id", "k", "name", "dept", "salary", "qty") and wide.columns[-1] == "yr"
    assert_same(wide.select("id", "qty", "yr").collect(), con,
                "SELECT id, coalesce(qty, 0) AS qty, year(hired) AS yr FROM people")


def test_expression_methods(people: m.Dataset, con: duckdb.DuckDBPyConnection) -> None:
    p = people
    q = p.where(~p.name.like("%a%") & p.hired.between("2019-01-01", dt.date(2021, 12, 31))).select(
        "id", up=p.name.upper(), len=p.name.length(), neg=-p.qty, a=(p.salary - 100).abs(),
        r=(p.salary / 3).round(2), c=p.qty.cast("float64") / 2, s=p.name.substring(1, 2),
        sq=p.salary.abs().sqrt(), flag=p.active.is_null() | (p.k % 2 == 0), two=m.lit(2) ** 2)
    assert_same(q.collect(), con, """
        SELECT id, upper(name) AS up, length(name) AS len, -qty AS neg, abs(salary - 100) AS a,
               round(salary / 3, 2) AS r, CAST(qty AS DOUBLE) / 2 AS c, substring(name, 1, 2) AS s,
               sqrt(abs(salary)) AS sq, active IS NULL OR k % 2 = 0 AS flag, 4 AS two
        FROM people WHERE NOT name LIKE '%a%' AND hired BETWEEN DATE '2019-01-01' AND DATE '2021-12-31'""")


def test_order_by_limit_distinct_union(people: m.Dataset, depts: m.Dataset,
                                       con: duckdb.DuckDBPyConnection) -> None:
    top = people.order_by(people.salary.desc(), "id").limit(4, offset=1).select("id", "salary")
    assert_same(top.collect(), con, "SELECT id, salary FROM people ORDER BY salary DESC NULLS LAST, id "
                                    "LIMIT 4 OFFSET 1", ordered=True)
    by_expr = people.order_by((people.qty * -1).desc(nulls_first=True), "id").select("id")
    assert_same(by_expr.collect(), con, "SELECT id FROM people ORDER BY qty * -1 DESC NULLS FIRST, id", ordered=True)
    names = people.select(d=people.dept).distinct()
    assert_same(names.collect(), con, "SELECT DISTINCT dept AS d FROM people")
    other = depts.select(d=depts.d_dept)
    assert_same(names.union(other).collect(), con, "SELECT dept AS d FROM people UNION SELECT d_dept FROM depts")
    assert_same(names.union(other, all=True).collect(), con,
                "SELECT DISTINCT dept AS d FROM people UNION ALL SELECT d_dept FROM depts")
    assert_same(names.intersect(other).collect(), con,
                "SELECT dept AS d FROM people INTERSECT SELECT d_dept FROM depts")
    assert_same(names.except_(other).collect(), con, "SELECT dept AS d FROM people EXCEPT SELECT d_dept FROM depts")
    # set operations match columns by name, not position
    swapped = people.select("id", "k").union(people.select("k", "id"), all=True)
    assert swapped.columns == ("id", "k") and len(swapped.collect()) == 24


# --------------------------------------------------------------------------- joins

@pytest.mark.parametrize("how", ["inner", "left", "right", "full", "semi", "anti"])
def test_join_kinds(people: m.Dataset, depts: m.Dataset, con: duckdb.DuckDBPyConnection, how: str) -> None:
    joined = people.select("id", "k", "dept").join(depts.select("k2", "d_dept", "budget"), left_on="k",
                                                   right_on="k2", how=how)
    sql_kind = {"semi": "SEMI", "anti": "ANTI"}.get(how, how.upper())
    cols = "p.id, p.k, p.dept" + ("" if how in ("semi", "anti") else ", d.k2, d.d_dept, d.budget")
    assert_same(joined.collect(), con, f"SELECT {cols} FROM people p {sql_kind} JOIN depts d ON p.k = d.k2")


@pytest.mark.parametrize("how", ["inner", "left", "right", "full"])
def test_join_using_keeps_one_key_column(people: m.Dataset, depts: m.Dataset, con: duckdb.DuckDBPyConnection,
                                         how: str) -> None:
    right = depts.rename(k2="k", d_dept="dept").select("k", "dept", "budget")
    joined = people.select("id", "k", "dept", "qty").join(right, on=["k", "dept"], how=how)
    assert joined.columns == ("id", "k", "dept", "qty", "budget")
    key = {"inner": "p.{0}", "left": "p.{0}", "right": "d.{0}", "full": "coalesce(p.{0}, d.{0})"}[how]
    assert_same(joined.collect(), con, f"""
        SELECT p.id, {key.format('k')} AS k, {key.format('dept')} AS dept, p.qty, d.budget
        FROM people p {how.upper()} JOIN (SELECT k2 AS k, d_dept AS dept, budget FROM depts) d
          ON p.k = d.k AND p.dept = d.dept""")


def test_join_predicates_residuals_and_cross(people: m.Dataset, depts: m.Dataset,
                                             con: duckdb.DuckDBPyConnection) -> None:
    lam = people.join(depts, on=lambda p, d: (p.k == d.k2) & (p.salary > d.budget / 10), how="left")
    assert_same(lam.select("id", "d_dept").collect(), con,
                "SELECT p.id, d.d_dept FROM people p LEFT JOIN depts d ON p.k = d.k2 AND p.salary > d.budget / 10")
    # a predicate over the datasets' own columns works too, and after the join
    # the inputs' columns still resolve (through the renames of the join)
    pred = people.join(depts, on=(people.dept == depts.d_dept) & (depts.budget > 100))
    assert_same(pred.where(depts.floor_no < 3).select("id", "budget").collect(), con,
                "SELECT p.id, d.budget FROM people p JOIN depts d ON p.dept = d.d_dept AND d.budget > 100 "
                "WHERE d.floor_no < 3")
    cross = people.select("id").join(depts.select("k2"), how="cross")
    assert len(cross.collect()) == 12 * 7


def test_join_name_clashes(people: m.Dataset) -> None:
    a, b = people.select("id", "name", "salary"), people.select("id", "name", "qty")
    with pytest.raises(LinqError, match=r"both datasets have columns 'id', 'name'; pass suffixes=\('', '_r'\) "
                                        r"or rename one side first \(e.g. other.rename\(id='id_r'\)\)"):
        a.join(b, on=lambda left, right: left.id == right.qty)
    self_join = a.join(b, on=lambda left, right: left.id == right.qty, suffixes=("", "_r"))
    assert self_join.columns == ("id", "name", "salary", "id_r", "name_r", "qty")
    frame = self_join.collect()
    assert sorted(zip(frame["id"], frame["id_r"])) == [(1, 12), (2, 8), (3, 5), (5, 10), (7, 1), (10, 6)]
    same_key = a.join(b, on="id", suffixes=("_l", "_r"))
    assert same_key.columns == ("id", "name_l", "salary", "name_r", "qty")
    with pytest.raises(LinqError, match="produce clashing names"):
        a.join(b.rename(qty="name_x"), on="id", suffixes=("", "_x"))


# --------------------------------------------------------------------------- aggregation

def test_group_by_agg(people: m.Dataset, con: duckdb.DuckDBPyConnection) -> None:
    p = people
    g = p.group_by("dept", yr=p.hired.year()).agg(
        m.count(), n=p.qty.count(), kinds=p.k.count_distinct(), total=(p.salary * p.qty).sum(),
        mean=p.salary.mean(), lo=p.salary.min(), per=p.salary.sum() / m.count())
    assert g.columns == ("dept", "yr", "count", "n", "kinds", "total", "mean", "lo", "per")
    assert_same(g.collect(), con, """
        SELECT dept, year(hired) AS yr, count(*) AS count, count(qty) AS n, count(DISTINCT k) AS kinds,
               sum(salary * qty) AS total, avg(salary) AS mean, min(salary) AS lo, sum(salary) / count(*) AS per
        FROM people GROUP BY dept, year(hired)""")
    assert_same(p.group_by("dept").agg(p.salary.max()).collect(), con,
                "SELECT dept, max(salary) AS max_salary FROM people GROUP BY dept")
    empty = p.where(p.id < 0).agg(n=m.count(), s=p.salary.sum())
    assert_same(empty.collect(), con, "SELECT count(*) AS n, sum(salary) AS s FROM people WHERE id < 0")


# --------------------------------------------------------------------------- apply (opaque Python)

def double_salary(row: dict[str, Any]) -> dict[str, Any] | None:
    """Row UDF: drops rows without a salary."""
    if row["salary"] is None:
        return None
    return {"id": row["id"], "pay": row["salary"] * 2}


def top_two(frame: pd.DataFrame) -> pd.DataFrame:
    """Partition UDF."""
    return frame.nlargest(2, "salary")[["id", "salary"]]


def test_apply_row_and_partition(people: m.Dataset) -> None:
    rows = people.apply(double_salary, schema={"id": "int64", "pay": float}).collect()
    assert sorted(rows["pay"].tolist()) == sorted(2 * s for s in people.collect()["salary"].dropna().tolist())
    part = people.apply(top_two, schema=[("id", "int64"), ("salary", "float64")], mode="partition")
    assert sorted(part.collect()["id"].tolist()) == [6, 10]
    assert "UDF" in part.explain()


def test_apply_needs_a_module_level_function(people: m.Dataset) -> None:
    def local(row: dict[str, Any]) -> dict[str, Any]:
        return row

    with pytest.raises(LinqError, match=r"module-level function .* not a lambda"):
        people.apply(lambda r: r)
    with pytest.raises(LinqError, match="not a function defined inside another function"):
        people.apply(local)
    with pytest.raises(LinqError, match="mode must be 'row' or 'partition'"):
        people.apply(double_salary, mode="column")


# --------------------------------------------------------------------------- what cannot be lowered

def starts_with_a(text: str) -> bool:
    """Arbitrary Python: fine in apply(), not in where()."""
    return re.match("a", text) is not None


@pytest.mark.parametrize("build,message", [
    pytest.param(lambda p: p.where(lambda r: r.salary > 1 and r.qty < 3), "used as a Python truth value: `and`",
                 id="and"),
    pytest.param(lambda p: p.where(lambda r: 1 < r.salary < 3), "chained comparisons", id="chained"),
    pytest.param(lambda p: p.where(lambda r: r.dept if r.qty else r.name), "truth value", id="if"),
    pytest.param(lambda p: p.where(lambda r: not r.active), "truth value", id="not"),
    pytest.param(lambda p: p.select(x=lambda r: math.sqrt(r.salary)), "float() of a column expression",
                 id="math.sqrt"),
    pytest.param(lambda p: p.select(x=lambda r: np.log(r.salary)), "the numpy function log", id="numpy"),
    pytest.param(lambda p: p.where(lambda r: r.name.startswith("A")), "no method 'startswith'", id="str-method"),
    pytest.param(lambda p: p.where(lambda r: len(r.name) > 3), "len() of a column expression", id="len"),
    pytest.param(lambda p: p.where(lambda r: "a" in r.name), "use .isin", id="in"),
    pytest.param(lambda p: p.where(lambda r: starts_with_a(r.name)),
                 "where(): cannot lower `lambda r: starts_with_a(r.name)` to a column expression (TypeError: ",
                 id="python-function"),
])
def test_unlowerable_expressions_suggest_apply(people: m.Dataset, build: Any, message: str) -> None:
    with pytest.raises(LinqError) as info:
        build(people)
    text = str(info.value)
    assert message in text
    assert "apply()" in text or "isin" in text


def test_construction_errors(people: m.Dataset, depts: m.Dataset) -> None:
    cases = [
        (lambda: people.where(people.salry > 3), "no method or column 'salry'; did you mean 'salary'?"),
        (lambda: people.where(m.col("salry") > 3), "unknown column 'salry'; did you mean 'salary'?"),
        (lambda: people.where(people.name + 1 > 2), "cannot apply '+' to string and int64"),
        (lambda: people.where(people.salary.sum() > 3), "aggregate (sum(salary) > 3) outside agg()"),
        (lambda: people.select(people.salary * 2), "the expression (salary * 2) needs a name"),
        (lambda: people.where(people.salary == None), "use .is_null()"),  # noqa: E711
        (lambda: people.where(depts.budget > 3), "belongs to a dataset that is not an input of this one"),
        (lambda: people.union(depts), "the datasets have different columns"),
        (lambda: people.join(depts), "say how rows match with on="),
        (lambda: people.join(depts, on="k", how="sideways"), "unknown how='sideways'"),
        (lambda: people.group_by("dept").agg(people.salary), "(salary) is not an aggregate; use e.g. .sum()"),
        (lambda: people.group_by("dept").agg(x=people.salary + 1), "column 'salary' in (salary + 1) is neither"),
        (lambda: people.limit(-1), "limit must be a whole number >= 0"),
        (lambda: people.where(lambda p: p.qty.sum().sum() > 1), "aggregates cannot be nested"),
    ]
    for build, message in cases:
        with pytest.raises(MusketeerError) as info:
            build()
        assert message in str(info.value), f"{message!r} not in {info.value}"


def test_errors_point_at_the_users_line(people: m.Dataset) -> None:
    with pytest.raises(MusketeerError) as info:
        people.where(people.name + 1 > 2)  # this line
    loc = info.value.loc
    assert loc is not None and Path(loc.file).name == "test_linq.py"
    line = Path(__file__).read_text().splitlines()[loc.line - 1]
    assert "# this line" in line and line[loc.col - 1:].startswith("people.where")


# --------------------------------------------------------------------------- iterate (on every backend)

def write_numbers(path: Path, values: list[int]) -> Path:
    pd.DataFrame({"id": range(len(values)), "v": values}).to_csv(path, index=False)
    return path


@EVERY_BACKEND
def test_iterate_stops_at_a_data_dependent_iteration(tmp_path: Path, backend: str) -> None:
    """Doubling until every value exceeds 1000: how many iterations that takes depends on the data."""
    runs = []
    for values, expected in (([1, 3], 10), ([300, 600], 2), ([999, 2000], 1)):
        data = m.read(write_numbers(tmp_path / f"n{values[0]}.csv", values))
        loop = data.iterate(lambda d: d.with_columns(v=d.v * 2), until=lambda old, new: new.v.min() > 1000,
                            max_iter=50)
        result = loop.run(backend)
        assert sorted(result.outputs["result"]["v"].tolist()) == [v * 2 ** expected for v in values]
        runs.append(result.metrics)
    for metrics, expected in zip(runs, (10, 2, 1)):
        stats = loop_metrics(metrics, backend)
        assert stats["iterations"] == expected and stats["converged"] is True


@EVERY_BACKEND
def test_iterate_fixpoint_widening_and_carry(tmp_path: Path, backend: str) -> None:
    data = m.read(write_numbers(tmp_path / "n.csv", [40, 7, 1]))
    # integer start, float body: the initial value is widened to float64
    halves = data.iterate(lambda d: d.with_columns(v=(d.v / 2).floor()), until="fixpoint", max_iter=100)
    assert halves.schema.dtype("v").kind == "float64"
    result = halves.run(backend)
    assert sorted(result.outputs["result"]["v"].tolist()) == [0.0, 0.0, 0.0]
    # two loop variables: a running total carried next to the values
    total = data.agg(t=data.v.sum())

    def body(values: m.Dataset, acc: m.Dataset) -> tuple[m.Dataset, m.Dataset]:
        return values.with_columns(v=values.v + 1), acc.join(values.agg(s=values.v.sum()), how="cross") \
            .select(t=m.col("t") + m.col("s"))

    summed = total.iterate(lambda acc, values: body(values, acc)[::-1], carry=[data], max_iter=3)
    assert summed.collect(backend)["t"].tolist() == [48 + 48 + 51 + 54]
    # 40 -> 20 -> 10 -> 5 -> 2 -> 1 -> 0, then one pass that changes nothing
    assert loop_metrics(result.metrics, backend)["iterations"] == 7


@EVERY_BACKEND
def test_iterate_that_hits_max_iter_warns_and_reports(tmp_path: Path, backend: str) -> None:
    data = m.read(write_numbers(tmp_path / "n.csv", [1, 2]))
    loop = data.iterate(lambda d: d.with_columns(v=d.v + 1), until=lambda old, new: new.v.max() > 100, max_iter=5,
                        name="counter")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = loop.run(backend)
    assert sorted(result.outputs["result"]["v"].tolist()) == [6, 7]
    stats = loop_metrics(result.metrics, backend)
    assert stats == {**stats, "iterations": 5, "converged": False}
    assert any("did not converge after 5 iterations" in str(w.message) for w in caught)
    assert any("did not converge" in w for w in result.metrics["warnings"])


def test_iterate_errors(people: m.Dataset) -> None:
    with pytest.raises(LinqError, match="needs a stop rule"):
        people.iterate(lambda d: d)
    with pytest.raises(LinqError, match="the body returns"):
        people.iterate(lambda d: d.select("id"), max_iter=2)
    with pytest.raises(LinqError, match="the body must return a Dataset"):
        people.iterate(lambda d: 3, max_iter=2)
    with pytest.raises(LinqError, match="returned a Python bool"):
        people.iterate(lambda d: d, until=lambda old, new: True)
    with pytest.raises(LinqError, match="join them first"):
        people.iterate(lambda d: d.with_columns(salary=d.salary + 1),
                       until=lambda old, new: new.salary.max() > old.salary.max())
    with pytest.raises(LinqError, match="column 'qty' of loop variable 'loop' starts as int64 but the body makes"):
        people.iterate(lambda d: d.with_columns(qty=d.name), max_iter=2)


# --------------------------------------------------------------------------- k-means vs NumPy

def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def numpy_kmeans(points: np.ndarray, start: np.ndarray, eps: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Lloyd's algorithm; stop when no centroid moved by eps or more."""
    centroids = start.copy()
    for iteration in range(1, max_iter + 1):
        d2 = ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        nearest = d2.argmin(axis=1)
        new = np.array([points[nearest == c].mean(axis=0) for c in range(len(centroids))])
        shift = ((new - centroids) ** 2).sum(axis=1).max()
        centroids = new
        if shift < eps * eps:
            return centroids, iteration
    return centroids, max_iter


@pytest.mark.parametrize("seed", [1, 2])
@EVERY_BACKEND_HEAVY
def test_kmeans_matches_numpy(tmp_path: Path, seed: int, backend: str) -> None:
    kmeans = load_example("kmeans")
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 20, size=(5, 2))
    xy = np.concatenate([c + rng.normal(0, 1.5, size=(80, 2)) for c in centres])
    rng.shuffle(xy)
    path = tmp_path / "points.csv"
    pd.DataFrame({"id": np.arange(1, len(xy) + 1), "x": xy[:, 0], "y": xy[:, 1]}).to_csv(path, index=False)
    start_ids = (1, 2, 3, 4, 5)
    expected, iterations = numpy_kmeans(xy, xy[:5], eps=1e-9, max_iter=100)
    result = kmeans.kmeans(m.read(path), start_ids, eps=1e-9).order_by("cluster").run(backend)
    frame = result.outputs["result"]
    assert frame["cluster"].tolist() == list(start_ids)
    np.testing.assert_allclose(frame[["cx", "cy"]].to_numpy(dtype=float), expected, rtol=0, atol=1e-9)
    assert loop_metrics(result.metrics, backend)["iterations"] == iterations and iterations > 2


def test_kmeans_example_runs_from_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(EXAMPLES / "kmeans.py"), "--backend", "local", "--metrics"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[-1] == "(4 rows)" and "converged: True" in err


# --------------------------------------------------------------------------- TPC-H Q3 in LINQ

def test_tpch_q3_linq_equals_sql(tpch_data_dir: Path, tpch_queries: dict[int, str], tpch_expected: Any) -> None:
    linq = api.execute(EXAMPLES / "tpch_q3_linq.py", data_dir=str(tpch_data_dir)).result.outputs["result"]
    sql = api.execute(_write(tpch_data_dir.parent / "q03.sql", tpch_queries[3]),
                      data_dir=str(tpch_data_dir)).result.outputs["result"]
    shape = tpch.query_shape(tpch_queries[3])
    tpch.assert_same_rows(linq, sql, shape.order_by, limit=shape.limit)
    tpch.assert_same_rows(linq, tpch_expected(3), shape.order_by, limit=shape.limit)
    assert len(linq) == 10


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- .py workflow files via the CLI

PY_ERRORS = [
    pytest.param("from musketeer import read\nworkflow = read('t.csv').where(lambda r: r.x > 1 and r.x < 3)\n",
                 2, 12, "used as a Python truth value", id="and"),
    pytest.param("from musketeer import read\nt = read('t.csv')\nworkflow = t.select(t.y)\n",
                 3, 21, "has no method or column 'y'", id="unknown-column"),
    pytest.param("from musketeer import read\nworkflow = read('missing.csv')\n",
                 2, 12, "table file missing.csv does not exist", id="missing-file"),
    pytest.param("from musketeer import read\nworkflow = read('t.csv').apply(lambda r: r)\n",
                 2, 12, "apply() needs a module-level function", id="lambda-udf"),
    pytest.param("x = 1\n", None, None, "must define a module-level `workflow`", id="no-workflow"),
    pytest.param("workflow = (\n", 1, 12, "syntax error", id="syntax"),
    pytest.param("import musketeer\nworkflow = 1 / 0\n", 2, 12, "ZeroDivisionError: division by zero",
                 id="python-error"),
]


@pytest.mark.parametrize("source,line,col,message", PY_ERRORS)
def test_py_workflow_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str], source: str, line: int | None,
                                   col: int | None, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text("x\n1\n2\n")
    (tmp_path / "wf.py").write_text(source)
    for command in ("run", "explain", "compile"):
        code = main([command, "wf.py"])
        _, err = capsys.readouterr()
        assert code == 2, err
        assert "Traceback" not in err and message in err.splitlines()[0], err
        if line is not None:
            assert err.startswith(f"wf.py:{line}:{col}: error: "), err
            assert len(err.splitlines()) == 3  # message, source line, caret
        else:
            assert err.startswith("musketeer: error: "), err


def test_py_workflow_may_be_an_ir_workflow_and_binds_cli_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("x\n1\n2\n")
    (tmp_path / "b.csv").write_text("x\n10\n20\n30\n")
    (tmp_path / "wf.py").write_text("from musketeer import table, count\n"
                                    "workflow = table('nums').agg(n=count()).to_workflow()\n")
    assert main(["run", "wf.py", "--table", "nums=a.csv"]) == 0
    assert capsys.readouterr().out.split()[2] == "2"
    assert main(["run", "wf.py", "--table", "nums=b.csv"]) == 0
    assert capsys.readouterr().out.split()[2] == "3"
    assert main(["run", "wf.py"]) == 2
    assert "unknown table 'nums' (known tables: none) (pass --data-dir DIR or --table NAME=PATH)" \
        in capsys.readouterr().err


def test_compiled_py_workflow_runs_standalone(tmp_path: Path) -> None:
    import subprocess

    program = tmp_path / "pr.py"
    assert main(["compile", str(EXAMPLES / "connected_components.py"), "-o", str(program)]) == 0
    out = tmp_path / "cc.csv"
    done = subprocess.run([sys.executable, str(program), "--output", str(out)], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert pd.read_csv(out)["people"].tolist() == [37, 24, 12, 6, 3]


def test_dataset_explain_and_compile(people: m.Dataset) -> None:
    q = people.where(people.salary > 10).select("id")
    assert "Filter" in q.explain(passes=False) and "people.parquet [id, salary]" in q.explain()
    program = q.compile()
    assert "def run(" in program.text and isinstance(q.op, O.Project)
    with pytest.raises(DataError, match="table file no/such/file.csv does not exist"):
        m.read("no/such/file.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(q.collect()) == 7
