"""The Spark engine (backends/spark): generated PySpark programs must give
DuckDB's answers on the same files, including every NULL corner.

The semantic cases are the local engine's (tests/test_local_backend.py),
run here against Spark: `reuse()` wraps a local test function unchanged and
an autouse fixture points that module's `result`/`run`/`BACKEND` at the
Spark backend for the duration of each test. One SparkSession (one JVM)
serves the whole test session; the expression cases share one Spark job.
The standalone-cluster test is marked slow.
"""

from __future__ import annotations

import ast
import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

import tests.test_local_backend as local_tests
from musketeer.backends.base import RunOptions, RunResult
from musketeer.backends.common.loader import load_program
from musketeer.backends.spark import BACKEND, SparkBackend, environment
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import INT64, STRING, DataError, MusketeerError
from musketeer.ir.workflow import Workflow
from musketeer import api
from tests import tpch
from tests.local_helpers import (
    PEOPLE_TYPES,
    C,
    L,
    assert_injection_result,
    assert_same,
    assert_text_stays_data,
    injection_case,
    keep,
    project,
    scan,
    workflow,
)
from tests.test_local_backend import EXPRESSIONS

# The local engine's module-scoped fixtures (data files, DuckDB views, scans), shared here.
paths, con, people, depts = local_tests.paths, local_tests.con, local_tests.people, local_tests.depts

AVAILABLE, WHY_NOT = BACKEND.available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"spark backend unavailable: {WHY_NOT}")
PY = sys.executable


def spark_run(op: O.Op | Workflow, tables: dict[str, str] | None = None) -> RunResult:
    wf = op if isinstance(op, Workflow) else workflow(op)
    return BACKEND.run(BACKEND.generate(wf), RunOptions(tables=tables or {}))


def spark_result(op: O.Op | Workflow, tables: dict[str, str] | None = None) -> Any:
    return spark_run(op, tables).outputs["result"]


@pytest.fixture(scope="session")
def spark_session() -> Any:
    """The test session's SparkSession: started once (the JVM takes seconds),
    reused by every generated program (they call getActiveSession), stopped at the end."""
    if not AVAILABLE:
        pytest.skip(WHY_NOT)
    from pyspark.sql import SparkSession

    module = load_program(BACKEND.generate(_tiny_workflow()))
    session = module.spark_session("local[2]", {})
    yield session
    if SparkSession.getActiveSession() is not None:
        SparkSession.getActiveSession().stop()


def _tiny_workflow() -> Workflow:
    """A workflow to generate a program from (its file is never read)."""
    return workflow(O.Scan("t", "/nonexistent/t.parquet", "parquet", (O.ScanColumn("a", "a", INT64),)))


@pytest.fixture(autouse=True)
def on_spark(monkeypatch: pytest.MonkeyPatch, spark_session: Any) -> None:
    """Local engine test bodies, reused below, run their workflows on Spark."""
    monkeypatch.setattr(local_tests, "result", spark_result)
    monkeypatch.setattr(local_tests, "run", spark_run)
    monkeypatch.setattr(local_tests, "BACKEND", BACKEND)


def reuse(name: str, skip: str | None = None) -> Callable[..., None]:
    """The local engine's test `name`, with its parameters and fixtures, run on Spark."""
    original = getattr(local_tests, name)

    @functools.wraps(original)
    def test(*args: Any, **kwargs: Any) -> None:
        if skip:
            pytest.skip(skip)
        original(*args, **kwargs)

    return test


# --- the local engine's semantic cases, on Spark -------------------------------------------------
test_filter_keeps_only_true_rows = reuse("test_filter_keeps_only_true_rows")
test_constant_filters_and_literal_columns = reuse("test_constant_filters_and_literal_columns")
test_join = reuse("test_join")
test_join_on_residual_only_and_two_keys = reuse("test_join_on_residual_only_and_two_keys")
test_join_keys_of_different_types = reuse("test_join_keys_of_different_types")
test_cross_join = reuse("test_cross_join")
test_semi_and_anti_join = reuse("test_semi_and_anti_join")
test_semi_join_with_shared_column_names = reuse("test_semi_join_with_shared_column_names")
test_null_aware_anti_join = reuse("test_null_aware_anti_join")
test_null_aware_anti_join_correlated = reuse("test_null_aware_anti_join_correlated")
test_null_aware_anti_join_on_two_keys = reuse("test_null_aware_anti_join_on_two_keys")
test_joins_with_an_empty_side = reuse("test_joins_with_an_empty_side")
test_aggregate = reuse("test_aggregate")
test_aggregate_over_empty_input = reuse("test_aggregate_over_empty_input")
test_group_keys_only_and_distinct = reuse("test_group_keys_only_and_distinct")
test_set_operations = reuse("test_set_operations")
test_set_operations_with_an_empty_side = reuse("test_set_operations_with_an_empty_side")
test_union_promotes_types_and_takes_left_names = reuse("test_union_promotes_types_and_takes_left_names")
test_sort_with_per_key_null_placement = reuse("test_sort_with_per_key_null_placement")
test_limit_offset = reuse("test_limit_offset")
test_while_with_data_dependent_stop = reuse("test_while_with_data_dependent_stop")
test_while_fixpoint_transitive_closure = reuse("test_while_fixpoint_transitive_closure")
test_while_warns_when_max_iter_stops_it = reuse("test_while_warns_when_max_iter_stops_it")
test_nested_while_loops = reuse("test_nested_while_loops")
test_udf_row_and_partition = reuse("test_udf_row_and_partition")
test_csv_scan_matches_parquet = reuse("test_csv_scan_matches_parquet")
test_csv_empty_fields_are_null_like_duckdb = reuse("test_csv_empty_fields_are_null_like_duckdb")
test_missing_and_unreadable_inputs = reuse("test_missing_and_unreadable_inputs")
test_bad_csv_row_names_file_line_and_column = reuse("test_bad_csv_row_names_file_line_and_column")
test_sink_with_path_is_written_atomically = reuse("test_sink_with_path_is_written_atomically")


# --- expressions: every local case, as the columns of one Spark job ------------------------------
@pytest.fixture(scope="module")
def expression_frame(people: O.Scan) -> Any:
    """All EXPRESSIONS as columns of one Project (one Spark job instead of ~100),
    or the exception if that batch fails (each case then runs alone)."""
    exprs = {"id": C("id"), **{f"v{i}": e for i, (_, e, _) in enumerate(EXPRESSIONS)}}
    try:
        return spark_result(project(people, **exprs))
    except Exception as exc:  # noqa: BLE001 - reported per case below
        return exc


@pytest.mark.parametrize("index", range(len(EXPRESSIONS)), ids=[name for name, _, _ in EXPRESSIONS])
def test_expression(index: int, expression_frame: Any, people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    _, expr, sql = EXPRESSIONS[index]
    if isinstance(expression_frame, Exception):
        out = spark_result(project(people, id=C("id"), v=expr))
    else:
        out = expression_frame[["id", f"v{index}"]].rename(columns={f"v{index}": "v"})
    assert_same(out, con, f"SELECT id, {sql} AS v FROM people")


def test_substring_matches_duckdb_for_every_bound(tmp_path: Path) -> None:
    """SUBSTRING with constant bounds (worked out at generation time) and
    per-row bounds (the program's substring() helper) against DuckDB, for
    starts and lengths around zero and past both ends."""
    import pyarrow as pa

    words = ["", "abc", "héllo wörld", None]
    starts, lengths = [*range(-7, 8), None], [*range(-7, 8), None]
    rows = [(w, st, ln) for w in words for st in starts for ln in lengths]
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"w": [r[0] for r in rows], "st": pa.array([r[1] for r in rows], pa.int64()),
                             "ln": pa.array([r[2] for r in rows], pa.int64())}), path)
    t = scan("t", path, {"w": STRING, "st": INT64, "ln": INT64})
    con = duckdb.connect()
    con.sql(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}')")
    per_row = project(t, w=C("w"), st=C("st"), ln=C("ln"), a=E.Func("substring", (C("w"), C("st"), C("ln"))),
                      b=E.Func("substring", (C("w"), C("st"))))
    assert_same(spark_result(per_row), con, "SELECT w, st, ln, substring(w, st, ln) AS a, substring(w, st) AS b FROM t")
    bounds = [(st, ln) for st in range(-4, 5) for ln in (None, *range(-3, 4))]
    const = {f"c{i}": E.Func("substring", (C("w"), L(st)) + ((L(ln),) if ln is not None else ()))
             for i, (st, ln) in enumerate(bounds)}
    sql = ", ".join(f"substring(w, {st}{'' if ln is None else f', {ln}'}) AS c{i}" for i, (st, ln) in enumerate(bounds))
    words_only = O.Distinct(keep(t, "w"))
    assert_same(spark_result(project(words_only, w=C("w"), **const)), con, f"SELECT DISTINCT w, {sql} FROM t")


# --- the generated program --------------------------------------------------------------------
def test_backend_descriptor() -> None:
    assert BACKEND.name == "spark" and isinstance(BACKEND, SparkBackend)
    assert set(O.OPERATORS) <= BACKEND.capabilities.operators
    assert BACKEND.available() == (True, "")
    assert api.get_backend("spark") is BACKEND


def test_program_is_readable_and_fuses_map_chains(people: O.Scan, depts: O.Scan) -> None:
    f = O.Filter(people, E.Compare(">", C("salary"), L(50.0)))
    p = project(f, id=C("id"), k=C("k"), twice=E.Arith("*", C("qty"), L(2)))
    shared = O.Aggregate(p, ("k",), (("n", E.AggCall("count_star")),))  # read twice: cached
    j = O.Join(shared, project(shared, k_other=C("k"), m=C("n")), "inner", ("k",), ("k_other",))
    text = BACKEND.generate(workflow(j, name="q1")).text
    tree = ast.parse(text)
    assert '"""Workflow q1, compiled by Musketeer for Apache Spark.' in text
    assert "def run(tables" in text and "def main(argv" in text and "--spark-master" in text
    # Scan -> Filter -> Project is one method chain, one comment per step
    assert "# Scan people (parquet)" in text and "# Filter: salary > 50.0" in text
    assert ".where(F.col('salary') > 50.0)" in text and "(F.col('qty') * 2).alias('twice')" in text
    assert text.count(" = read_table(") + text.count("    read_table(") == 1
    assert text.count(".cache()") == 1 and "cached.append(" in text
    assert not any(word in text for word in ("F.udf", "pandas_udf", "mapInArrow(", ".rdd"))  # no Python per row
    calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert {"where", "select", "groupBy", "agg", "join", "cache"} <= calls


def test_self_join_of_a_shared_relation_and_case_sensitive_names(people: O.Scan,
                                                                 con: duckdb.DuckDBPyConnection) -> None:
    """One cached relation on both sides of a join (Spark must tell the two
    sides' columns apart), and columns whose names differ only in case."""
    shared = O.Aggregate(people, ("k",), (("n", E.AggCall("count_star")),))
    j = O.Join(shared, project(shared, K=C("k"), N=C("n")), "inner", ("k",), ("K",),
               E.Compare("<=", C("n"), C("N")))
    sql = ("WITH a AS (SELECT k, count(*) AS n FROM people GROUP BY k) "
           "SELECT x.k, x.n, y.k AS \"K\", y.n AS \"N\" FROM a x JOIN a y ON x.k = y.k AND x.n <= y.n")
    out = spark_result(j)
    assert list(out.columns) == ["k", "n", "K", "N"]
    assert_same(out, con, sql, check_names=False)


def test_plan_is_what_spark_optimises(people: O.Scan) -> None:
    """The fused chain reaches Spark's optimizer as one scan with the filter
    pushed into the parquet reader and only the needed columns read."""
    pred = E.And((E.Compare(">", C("salary"), L(50.0)), E.Like(C("name"), "A%")))
    wf = workflow(keep(O.Filter(people, pred), "id"))
    module = load_program(BACKEND.generate(wf))
    spark = module.spark_session(None, module.input_paths(None))
    frame = module.read_table(spark, module.TABLES["people"], "parquet",
                              [("id", "id", module.T.LongType()), ("salary", "salary", module.T.DoubleType()),
                               ("name", "name", module.T.StringType())])
    plan = frame.where(module.F.col("salary") > 50.0).select("id")._jdf.queryExecution().executedPlan().toString()
    assert "PushedFilters: [IsNotNull(salary), GreaterThan(salary,50.0)]" in plan
    assert "ReadSchema: struct<id:bigint,salary:double>" in plan or "ReadSchema: struct<id:bigint,salary:double" in plan


def test_shared_relations_are_cached_and_released(people: O.Scan, con: duckdb.DuckDBPyConnection) -> None:
    from pyspark.sql import SparkSession

    agg = O.Aggregate(people, ("dept",), (("n", E.AggCall("count_star")),))
    both = O.Union(agg, project(agg, dept=C("dept"), n=E.Arith("+", C("n"), L(100))), distinct=False)
    program = BACKEND.generate(workflow(both))
    assert program.text.count(".cache()") == 1
    spark = SparkSession.getActiveSession()
    cache = spark._jsparkSession.sharedState().cacheManager()
    assert cache.isEmpty()
    out = BACKEND.run(program, RunOptions()).outputs["result"]
    assert_same(out, con, "WITH a AS (SELECT dept, count(*) AS n FROM people GROUP BY dept) "
                          "SELECT * FROM a UNION ALL SELECT dept, n + 100 FROM a")
    assert cache.isEmpty()  # released when run() returned


def test_loop_state_is_checkpointed(tmp_path: Path) -> None:
    nums = scan("nums", local_tests._write_nums(tmp_path / "n.parquet", [1, 2]), local_tests.NUMS)
    text = BACKEND.generate(workflow(local_tests._doubling_loop(nums))).text
    assert ".localCheckpoint()" in text and "def t" in text and "run_loop(" in text


def test_run_in_process_main_prints_and_writes(tmp_path: Path, paths: dict[str, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rel = keep(O.Sort(O.Filter(scan("people", paths["people"], PEOPLE_TYPES), E.IsNull(C("dept"))),
                      (O.SortKey("id"),)), "id", "dept")
    module = load_program(BACKEND.generate(workflow(rel)))
    assert module.main([]) == 0
    printed = capsys.readouterr().out
    assert "NULL" in printed and printed.split()[:2] == ["id", "dept"]
    out = tmp_path / "o.parquet"
    assert module.main(["--output", str(out)]) == 0
    assert pq.read_table(out).column("id").to_pylist() == [3, 8]
    assert module.main(["--table", "nosuch=x.parquet"]) == 2
    assert "no input table named 'nosuch'" in capsys.readouterr().err


def test_standalone_program(tmp_path: Path, paths: dict[str, Path], con: duckdb.DuckDBPyConnection) -> None:
    """`python q.py` with a plain interpreter, its own JVM, --spark-master and --table."""
    types = {k: v for k, v in PEOPLE_TYPES.items() if k != "price"}
    people_csv = scan("people", paths["people_csv"], types, fmt="csv")
    j = O.Join(people_csv, scan("depts", paths["depts"], local_tests.DEPTS_TYPES), "left", ("dept",), ("d_dept",))
    agg = O.Aggregate(j, ("dept",), (("n", E.AggCall("count_star")), ("budget", E.AggCall("sum", "budget"))))
    q = tmp_path / "q.py"
    q.write_text(BACKEND.generate(workflow(O.Sort(agg, (O.SortKey("dept"),)), "standalone")).text)
    done = subprocess.run([PY, str(q), "--spark-master", "local[1]", "--output", "out.csv"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    sql = ("SELECT dept, count(*) AS n, sum(budget) AS budget FROM read_csv('{people}') p LEFT JOIN depts d "
           "ON p.dept = d.d_dept GROUP BY dept ORDER BY dept NULLS LAST")
    assert_same(local_tests.read_csv(tmp_path / "out.csv"), con, sql.format(people=paths["people_csv"]),
                ordered=True)


def test_bad_csv_fails_the_run_with_file_line_and_column(tmp_path: Path, paths: dict[str, Path]) -> None:
    bad = tmp_path / "people_bad.csv"
    lines = Path(paths["people_csv"]).read_text().splitlines()
    lines[3] = "oops" + lines[3][lines[3].index(","):]  # line 4: id is not an integer
    bad.write_text("\n".join(lines) + "\n")
    types = {k: v for k, v in PEOPLE_TYPES.items() if k != "price"}
    module = load_program(BACKEND.generate(workflow(scan("people", bad, types, fmt="csv"))))
    out = tmp_path / "out.csv"
    with pytest.raises(module.InputDataError, match=rf"^{bad}:4: column 'id': expected int64, got 'oops'$"):
        module.run()
    assert module.main(["--output", str(out)]) == 2 and not out.exists()


# --- user text can never become code ---------------------------------------------------------
def test_injection_attempts_stay_data(tmp_path: Path) -> None:
    case = injection_case(tmp_path, "we'ird\"dir`", "x'`.b\\ __import__('os').system('touch PWNED') '", "\u2028x`y")
    assert_text_stays_data(BACKEND.generate(case.workflow).text)
    os.chdir(tmp_path)
    assert_injection_result(case, BACKEND.run(BACKEND.generate(case.workflow), RunOptions()).outputs["result"])


# --- availability -------------------------------------------------------------------------------
def test_available_explains_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert environment.parse_java_version('openjdk version "17.0.15" 2025-04-15') == 17
    assert environment.parse_java_version('java version "1.8.0_292"') == 8
    old_java = tmp_path / "java"
    old_java.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    old_java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nojava"))
    environment.java_problem.cache_clear()
    try:
        ok, why = BACKEND.available()
        assert not ok and "Java 17 or newer" in why and "JAVA_HOME" in why and "\n" not in why
        (tmp_path / "jdk" / "bin").mkdir(parents=True)
        (tmp_path / "jdk" / "bin" / "java").symlink_to(old_java)
        monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
        environment.java_problem.cache_clear()
        ok, why = BACKEND.available()
        assert not ok and "found Java 11" in why and "openjdk-17" in why
    finally:
        monkeypatch.undo()
        environment.java_problem.cache_clear()
    assert BACKEND.available() == (True, "")
    monkeypatch.setattr(environment.importlib.util, "find_spec", lambda name: None)
    assert BACKEND.available() == (False, "pyspark is not installed: pip install 'musketeer[spark]'")


def test_unreachable_or_malformed_master_is_one_line(unused_tcp_port: int) -> None:
    ok, why = BACKEND.available(RunOptions(extra={"spark_master": f"spark://127.0.0.1:{unused_tcp_port}"}))
    assert not ok and why.startswith(f"no Spark master answers at spark://127.0.0.1:{unused_tcp_port}")
    ok, why = BACKEND.available(RunOptions(extra={"spark_master": "sparc://x:1"}))
    assert not ok and "is not a Spark master URL" in why
    assert BACKEND.available(RunOptions(extra={"spark_master": "local[2]"})) == (True, "")
    with pytest.raises(MusketeerError, match="no Spark master answers"):
        BACKEND.run(BACKEND.generate(_tiny_workflow()),
                    RunOptions(extra={"spark_master": f"spark://127.0.0.1:{unused_tcp_port}"}))


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- TPC-H through the API ------------------------------------------------------------------------
QUERIES = list(range(1, 23))


@pytest.mark.parametrize("n", QUERIES, ids=[f"q{n:02d}" for n in QUERIES])
def test_tpch_query_spark(n: int, tpch_queries: dict[int, str], tpch_data_dir: Path, tpch_query_file: Any,
                          tpch_expected: Any) -> None:
    result = api.run_workflow(tpch_query_file(n), backend="spark", data_dir=str(tpch_data_dir))
    try:
        tpch.assert_query_result(result.outputs["result"], tpch_expected(n), tpch_queries[n])
    except AssertionError as failure:
        pytest.fail(str(failure), pytrace=False)


def test_data_errors_are_one_line_through_the_runner(tmp_path: Path) -> None:
    """A value that does not parse, late in a CSV (the catalog infers types
    from the first rows): the runner raises DataError naming file, line, column."""
    from musketeer.api import open_catalog, plan_workflow

    (tmp_path / "good.csv").write_text("a,b\n1,x\n")
    (tmp_path / "bad.csv").write_text("a,b\n1,x\nnope,y\n")
    (tmp_path / "q.sql").write_text("SELECT a, b FROM t WHERE a > 0")
    catalog = open_catalog(tmp_path / "q.sql", tables={"t": str(tmp_path / "good.csv")})
    program = BACKEND.generate(plan_workflow(tmp_path / "q.sql", catalog))
    with pytest.raises(DataError, match=r"bad\.csv:3: column 'a': expected int64, got 'nope'"):
        BACKEND.run(program, RunOptions(tables={"t": str(tmp_path / "bad.csv")}))


# --- a real standalone cluster (slow) --------------------------------------------------------------
CLUSTER_QUERIES = [1, 3, 6, 13, 16, 18]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, test: Callable[[], bool], procs: list[subprocess.Popen], timeout: float = 180) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{what}: a cluster process exited with {dead[0].returncode}")
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not ready after {timeout:g} s")


def _alive_workers(webui: int) -> int:
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=2) as reply:
            return int(json.load(reply).get("aliveworkers", 0))
    except OSError:
        return 0


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A Spark standalone master and one worker (1 core, 2 GiB) on 127.0.0.1,
    started from the scripts inside the pyspark wheel; every process they
    started is killed afterwards, whatever happened."""
    import signal

    import pyspark

    home = Path(pyspark.__file__).parent
    logs = tmp_path_factory.mktemp("spark_cluster")
    port, webui, worker_webui = _free_port(), _free_port(), _free_port()
    env = {**os.environ, "SPARK_HOME": str(home), "PYSPARK_PYTHON": PY, "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_WORKER_DIR": str(logs / "work")}
    spark_class = str(home / "bin" / "spark-class")
    commands = {
        "master": [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                   "--port", str(port), "--webui-port", str(webui)],
        "worker": [spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
                   "--host", "127.0.0.1", "--cores", "1", "--memory", "2g", "--webui-port", str(worker_webui)],
    }
    procs: list[subprocess.Popen] = []
    try:
        for name, command in commands.items():
            log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True))  # its own process group: killed as one
            if name == "master":
                _wait("master", lambda: environment.master_problem(f"spark://127.0.0.1:{port}") is None, procs)
        _wait("worker registration", lambda: _alive_workers(webui) >= 1, procs)
        yield f"spark://127.0.0.1:{port}"
    finally:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None and session.sparkContext.master.startswith("spark://"):
            session.stop()  # later tests start a local session again
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            for group_member_left in _group_members(proc.pid):
                os.kill(group_member_left, signal.SIGKILL)


def _group_members(pgid: int) -> list[int]:
    """Processes still in process group `pgid` (executors the worker started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_tpch_on_a_standalone_cluster(standalone_cluster: str, monkeypatch: pytest.MonkeyPatch,
                                      tpch_queries: dict[int, str], tpch_data_dir: Path, tpch_query_file: Any,
                                      tpch_expected: Any) -> None:
    monkeypatch.setenv("PYSPARK_PYTHON", PY)  # the executors' Python must be the driver's
    for n in CLUSTER_QUERIES:
        result = api.run_workflow(tpch_query_file(n), backend="spark", data_dir=str(tpch_data_dir),
                                  options={"spark_master": standalone_cluster})
        tpch.assert_query_result(result.outputs["result"], tpch_expected(n), tpch_queries[n])
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    assert session is not None and session.sparkContext.master == standalone_cluster
    executors = session.sparkContext._jsc.sc().getExecutorMemoryStatus().size()
    assert executors >= 2  # the driver and the worker's executor: the queries ran on the cluster
