# ruff: noqa: F401, F811 - fixtures and tests imported from the local engine's suite, used by name
"""The DuckDB engine (backends/duckdb): generated programs give DuckDB's
answers on the original SQL, every NULL corner included.

Every IR-level test of the local engine's suite (expressions, joins, NULL
placement, loops, UDFs, injection attempts, ...) runs here again with the
DuckDB engine in its place, against the same oracle; the few that inspect
the local engine's program text are replaced by DuckDB-specific ones below.
The conformance workflows and the 22 TPC-H queries run through this engine
in tests/conformance (it is a registered backend), compared with DuckDB on
the original query text.
"""

from __future__ import annotations

import ast
import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlglot

from musketeer import api
from musketeer.backends.base import RunOptions
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import DataError, INT64, STRING
from musketeer.ir.workflow import Workflow
from tests import local_helpers, tpch
from tests import test_local_backend as local_suite
from tests.local_helpers import C, L, con, duck, keep, paths, project, result, scan, workflow
from tests.test_local_backend import *  # noqa: F403

from musketeer.backends.duckdb import BACKEND as DUCKDB, DuckDBBackend  # after the star import (local's BACKEND)

PY = sys.executable

# Tests of the local suite that read the local engine's program text or helpers; replaced below.
for _name in ("test_backend_descriptor", "test_program_is_readable", "test_while_with_two_variables_and_invariant_input",
              "test_substring_bounds_agree_between_codegen_and_program", "test_a_file_scanned_twice_is_read_once",
              "test_standalone_program_rejects_bad_csv"):
    del globals()[_name]


@pytest.fixture(autouse=True)
def _on_duckdb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_helpers, "BACKEND", DUCKDB)
    monkeypatch.setattr(local_suite, "BACKEND", DUCKDB)


# --- the backend contract and the program's shape ----------------------------------------
def test_duckdb_descriptor() -> None:
    assert DUCKDB.name == "duckdb" and isinstance(DUCKDB, DuckDBBackend)
    assert set(O.OPERATORS) <= DUCKDB.capabilities.operators
    assert DUCKDB.available() == (True, "")


def test_program_is_sql_built_by_sqlglot(people: O.Scan) -> None:
    f = O.Filter(people, E.Compare(">", C("salary"), L(50.5)))
    agg = O.Aggregate(f, ("dept",), (("n", E.AggCall("count_star")), ("total", E.AggCall("sum", "qty"))))
    prog = DUCKDB.generate(workflow(O.Sort(agg, (O.SortKey("total", ascending=False),)), name="q1"))
    text = prog.text
    tree = ast.parse(text)
    assert prog.backend == "duckdb" and '"""Workflow q1' in text and "def main(argv" in text
    assert "import duckdb" in text and "import numpy" not in text
    # the query is a pretty-printed string constant DuckDB's own parser reads
    sql = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
           and "GROUP BY" in n.value][0]
    assert '"salary" > 50.5' in sql and re.search(r'CAST\(SUM\(("\w+"\.)?"qty"\) AS BIGINT\) AS "total"', sql)
    assert sql.strip().endswith('"total" DESC')
    sqlglot.parse_one(sql, read="duckdb")
    assert "run_loop" not in text and "apply_udf" not in text  # only the helpers this program needs


def test_while_invariant_input_is_a_table_made_once(tmp_path: Path) -> None:
    nums = scan("nums", local_suite._write_nums(tmp_path / "n.parquet", [1, 2, 3]), local_suite.NUMS)
    bonus = O.Aggregate(nums, (), (("b", E.AggCall("sum", "v")),))  # loop-invariant: computed once
    x, n = O.LoopVar("x", nums.schema), O.LoopVar("n", bonus.schema)
    x_next = project(O.Join(x, bonus, "cross"), id=C("id"), v=E.Arith("+", C("v"), C("b")))
    n_next = project(n, b=E.Arith("+", C("b"), L(1)))
    loop = O.While((nums, bonus), ("x", "n"), (x_next, n_next), "x", max_iter=3)
    program = DUCKDB.generate(workflow(loop))
    before_loop = program.text[program.text.index("def run("):program.text.index("_step() -> bool")]
    sums = re.compile(r'SUM\(("\w+"\.)?"v"\)')
    assert len(sums.findall(program.text)) == 1 and sums.search(before_loop)
    run = DUCKDB.run(program, RunOptions())
    assert sorted(run.outputs["result"]["v"]) == [19, 20, 21]
    assert list(run.metrics["loops"].values()) == [{"iterations": 3, "converged": False, "runs": 1}]


def test_nul_characters_in_names_and_literals(tmp_path: Path) -> None:
    """DuckDB's parser ends names and strings at NUL; the SQL spells them otherwise."""
    path = tmp_path / "t.parquet"
    pq.write_table(__import__("pyarrow").table({"a": ["x\x00y", "z"]}), path)
    t = O.Scan("t", str(path), "parquet", (O.ScanColumn("a", "a\x00b", STRING),))
    out = result(project(O.Filter(t, E.Compare("=", C("a\x00b"), L("x\x00y"))), **{"c\x00": C("a\x00b")}))
    assert list(out.columns) == ["c\x00"] and out["c\x00"].tolist() == ["x\x00y"]


# --- inputs and errors -----------------------------------------------------------------------
def test_bad_csv_value_in_a_column_the_query_reads(tmp_path: Path, paths: dict[str, Path]) -> None:
    """A standalone program exits 2 with the file, line and column; no output file.
    (A bad value in a column no step reads goes unnoticed: DuckDB never converts it.)"""
    bad = tmp_path / "people_bad.csv"
    with open(paths["people_csv"], newline="") as f:
        rows = list(csv.reader(f))
    rows[3][rows[0].index("qty")] = "oops"
    with open(bad, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    people = scan("people", bad, {"dept": STRING, "qty": INT64}, fmt="csv")
    q = tmp_path / "q.py"
    q.write_text(DUCKDB.generate(workflow(O.Aggregate(people, ("dept",), (("s", E.AggCall("sum", "qty")),)))).text)
    done = subprocess.run([PY, str(q), "--output", "out.csv"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {bad}:4: column 'qty': expected int64, got 'oops'"
    assert not (tmp_path / "out.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".musketeer")]


def test_parquet_column_of_another_type(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(__import__("pyarrow").table({"a": ["1", "x"]}), path)
    with pytest.raises(DataError, match=r"t.parquet: column 'a' holds string values, expected int64"):
        result(scan("t", path, {"a": INT64}))


def test_data_errors_are_one_line(people: O.Scan) -> None:
    with pytest.raises(DataError, match="square root of a negative number"):
        result(project(people, r=E.Func("sqrt", (C("qty"),))))


def test_threads_and_memory_limit(people: O.Scan, tmp_path: Path) -> None:
    prog = DUCKDB.generate(workflow(keep(people, "id")))
    run = DUCKDB.run(prog, RunOptions(extra={"duckdb_threads": 1, "duckdb_memory_limit": "200MB"}))
    assert len(run.outputs["result"]) == 12
    with pytest.raises(Exception, match="bad DuckDB setting"):
        DUCKDB.run(prog, RunOptions(extra={"duckdb_memory_limit": "lots"}))
    q = tmp_path / "q.py"
    q.write_text(prog.text)
    done = subprocess.run([PY, str(q), "--threads", "1", "--memory-limit", "100MB"], capture_output=True, text=True)
    assert done.returncode == 0 and "id" in done.stdout, done.stderr


def test_inner_joins_become_one_from_clause(people: O.Scan, depts: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    """Operators between joins are merged (sqlglot's merge_subqueries), so
    DuckDB orders the joins as for hand-written SQL."""
    renamed = project(depts, dd=C("d_dept"), b=C("budget"))
    j = O.Join(O.Filter(people, E.Compare(">", C("salary"), L(50.0))), renamed, "inner", ("dept",), ("dd",))
    j2 = O.Join(j, project(depts, d2=C("d_dept")), "inner", ("dd",), ("d2",))
    prog = DUCKDB.generate(workflow(keep(j2, "id", "b")))
    assert " AS (" not in prog.text and prog.text.count("INNER JOIN") == 2
    local_helpers.assert_same(result(keep(j2, "id", "b")), con,
                              "SELECT p.id, d.budget AS b FROM people p JOIN depts d ON p.dept = d.d_dept "
                              "JOIN depts d2 ON d.d_dept = d2.d_dept WHERE p.salary > 50")


def test_constant_columns_on_the_outer_side_stay_null(people: O.Scan, depts: O.Scan,
                                                      con: duckdb.DuckDBPyConnection) -> None:
    """A mark join's `TRUE AS mark` on the NULL-extended side of a LEFT JOIN is
    NULL for unmatched rows (statements with outer joins are not merged)."""
    marks = project(O.Distinct(project(depts, dd=C("d_dept"))), dd=C("dd"), mark=L(True))
    j = O.Join(people, marks, "left", ("dept",), ("dd",))
    local_helpers.assert_same(result(keep(j, "id", "mark")), con,
                              "SELECT id, m.mark FROM people LEFT JOIN (SELECT DISTINCT d_dept AS dd, TRUE AS mark "
                              "FROM depts) m ON dept = m.dd")
