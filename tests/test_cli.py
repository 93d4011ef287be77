"""The `musketeer` CLI end to end: every command, every class of bad input.

Most tests run `main([...])` in process (fast, capsys captures output); one
runs the real console entry point in a subprocess. Bad input must give one
line `FILE:LINE:COL: error: ...` (plus source line and caret) or
`musketeer: error: ...`, exit code 2, no traceback and no output file.
Results are checked against DuckDB running the same SQL over the same files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from musketeer.backends.base import Program, RunResult
from musketeer.backends.capabilities import Capabilities
from musketeer.ir import DataError, Workflow
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import INT64
from musketeer import __version__, api
from musketeer.cli import main
from tests import tpch

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DATA = EXAMPLES / "data"
DEMO = EXAMPLES / "revenue_by_region.sql"


# --------------------------------------------------------------------------- helpers

def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, first_line: str, *, caret_col: int | None = None,
                      source: str | None = None) -> None:
    """Exit 2, the exact first line, no traceback; with a location, the
    source line and a caret under column `caret_col`."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.rstrip("\n").split("\n")
    assert lines[0] == first_line, f"stderr was:\n{err}"
    if caret_col is None:
        assert len(lines) == 1, f"expected one line, stderr was:\n{err}"
        return
    assert len(lines) == 3, f"expected message + source + caret, stderr was:\n{err}"
    gutter, _, text = lines[1].partition(" | ")
    assert source is None or text == source
    caret = lines[2]
    assert caret.index("^") == len(gutter) + len(" | ") + caret_col - 1, f"caret misplaced:\n{err}"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def duckdb_over_examples(sql: str) -> pd.DataFrame:
    """The oracle: DuckDB with one view per example CSV, running `sql`
    (several statements allowed; the last one's rows are returned)."""
    con = duckdb.connect()
    try:
        for f in DATA.glob("*.csv"):
            con.execute(f"CREATE VIEW {f.stem} AS SELECT * FROM read_csv('{f}', header=true)")
        statements = [s for s in sql.split(";") if s.strip() and not all(
            line.strip().startswith("--") or not line.strip() for line in s.splitlines())]
        for s in statements[:-1]:
            con.execute(s)
        return tpch.arrow_to_pandas(con.execute(statements[-1]).to_arrow_table())
    finally:
        con.close()


def no_files_but(directory: Path, *keep: str) -> None:
    left = sorted(p.name for p in directory.iterdir() if p.name not in keep)
    assert left == [], f"left behind: {left}"


class FakeBackend:
    """Stands in for an engine where a test is about the glue, not about
    query results: returns `frame` for every output of the workflow."""

    name = "fake"
    capabilities = Capabilities.everything()

    def __init__(self, frame: pd.DataFrame | None = None, metrics: dict[str, Any] | None = None,
                 frames: dict[str, pd.DataFrame] | None = None, error: Exception | None = None) -> None:
        self.frame = frame if frame is not None else pd.DataFrame({"x": [1, 2]})
        self.frames = frames or {}
        self.metrics = metrics or {}
        self.error = error
        self.warn: str | None = None
        self.ran = False

    def available(self, options: Any = None) -> tuple[bool, str]:
        return True, ""

    def generate(self, workflow: Any) -> Program:
        return Program("fake", "# fake program\n", workflow)

    def run(self, program: Program, options: Any) -> RunResult:
        self.ran = True
        if self.warn is not None:
            warnings.warn(self.warn, RuntimeWarning, stacklevel=1)
        if self.error is not None:
            raise self.error
        outputs = {s.name: self.frames.get(s.name, self.frame) for s in program.workflow.sinks}
        for s in program.workflow.sinks:  # generated programs write their COPY targets
            if s.path is not None:
                outputs[s.name].to_csv(s.path, index=False)
        return RunResult(outputs, dict(self.metrics))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    backend = FakeBackend()
    monkeypatch.setattr(api, "get_backend", lambda name="auto", options=None: backend)
    return backend


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cwd, so stray files (COPY targets, temporaries) show up."""
    d = tmp_path / "work"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


# --------------------------------------------------------------------------- basics

def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--version")
    assert (code, out.strip()) == (0, f"musketeer {__version__}")
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and "compile" in out and "run" in out and "explain" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys)
    assert code == 2 and "required: COMMAND" in err
    code, _, err = cli(capsys, "frobnicate", "x.sql")
    assert code == 2 and "invalid choice: 'frobnicate'" in err
    code, _, err = cli(capsys, "run", str(DEMO), "--table", "orders")
    assert code == 2 and "argument --table: expected NAME=PATH, got 'orders'" in err
    code, _, err = cli(capsys, "run", str(DEMO), "--max-rows", "many")
    assert code == 2 and "--max-rows: expected a row count" in err


# --------------------------------------------------------------------------- the demo and examples (real engine)

def test_demo_runs_end_to_end_and_matches_duckdb(capsys: pytest.CaptureFixture[str], work: Path) -> None:
    """`make demo`: the README's first command."""
    code, out, err = cli(capsys, "run", DEMO, "--data-dir", DATA)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["region", "|", "orders", "|", "customers", "|", "revenue", "|", "avg_order"]
    expected = duckdb_over_examples(DEMO.read_text())
    assert lines[-1] == f"({len(expected)} rows)"
    for (_, row), line in zip(expected.iterrows(), lines[2:-1]):
        assert line.split(" | ")[0].strip() == row["region"]  # ORDER BY revenue DESC
    no_files_but(work)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_run_output_file_matches_duckdb(work: Path, capsys: pytest.CaptureFixture[str], suffix: str) -> None:
    out = work / f"revenue{suffix}"
    code, stdout, err = cli(capsys, "run", DEMO, "--data-dir", DATA, "--output", out)
    assert code == 0, err
    assert stdout == ""
    assert err.strip().startswith("musketeer: wrote ") and str(out) in err
    actual = pq.read_table(out) if suffix == ".parquet" else pacsv.read_csv(out)
    tpch.assert_query_result(actual, duckdb_over_examples(DEMO.read_text()), DEMO.read_text())
    no_files_but(work, out.name)


def test_multi_statement_example_matches_duckdb(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = EXAMPLES / "big_spenders.sql"
    code, _, err = cli(capsys, "run", wf, "--data-dir", DATA, "--output", work / "out.parquet")
    assert code == 0, err
    expected = duckdb_over_examples(wf.read_text())
    assert len(expected) > 0
    tpch.assert_same_rows(pq.read_table(work / "out.parquet"), expected, [(4, False), (0, True)])


def test_copy_example_writes_its_file_relative_to_cwd(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = EXAMPLES / "monthly_export.sql"
    code, out, err = cli(capsys, "run", wf)  # no --data-dir: the SQL names its file
    assert code == 0, err
    assert out == ""  # the only output went to a file
    assert err.strip() == "musketeer: wrote 12 rows to monthly_revenue.csv"
    query = wf.read_text().split("COPY (", 1)[1].rsplit(") TO", 1)[0].replace("'data/orders.csv'", "orders")
    tpch.assert_same_rows(pacsv.read_csv(work / "monthly_revenue.csv"), duckdb_over_examples(query), [(0, True)])
    no_files_but(work, "monthly_revenue.csv")


def test_compile_writes_a_standalone_program(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = work / "revenue.py"
    code, out, err = cli(capsys, "compile", DEMO, "--data-dir", DATA, "-o", prog)
    assert (code, out) == (0, ""), err
    text = prog.read_text()
    compile(text, str(prog), "exec")  # valid Python
    result = subprocess.run([sys.executable, str(prog), "--output", str(work / "r.csv")],
                            cwd=work, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    tpch.assert_query_result(pacsv.read_csv(work / "r.csv"), duckdb_over_examples(DEMO.read_text()),
                             DEMO.read_text())
    code, out, err = cli(capsys, "compile", DEMO, "--data-dir", DATA)  # stdout
    assert code == 0 and out == text


def test_run_prints_metrics_and_truncates_long_results(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(work / "all.sql", "SELECT order_id, amount FROM orders ORDER BY order_id;\n")
    code, out, err = cli(capsys, "run", wf, "--data-dir", DATA, "--max-rows", "5", "--metrics")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 + 5 + 1
    assert lines[2].split() == ["1001", "|", "435.46"]
    assert lines[-1] == "(400 rows, showing first 5; use --max-rows to see more)"
    assert "metrics:" in err and "parse_seconds:" in err and "run_seconds:" in err
    code, out, _ = cli(capsys, "run", wf, "--data-dir", DATA, "--max-rows", "0")
    assert out.splitlines()[-1] == "(400 rows)"


# --------------------------------------------------------------------------- explain and JSON workflows

def test_explain_writes_dot_and_json_and_json_runs_again(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = cli(capsys, "explain", DEMO, "--data-dir", DATA, "--dot", "plan.dot", "--json", "plan.json")
    assert code == 0, err
    assert "Scan(orders" in text and "Sink(" in text
    assert Path("plan.dot").read_text().startswith('digraph "')
    assert json.loads(Path("plan.json").read_text())["musketeer_ir"] == 1
    code, again, err = cli(capsys, "explain", "plan.json", "--no-passes")
    assert (code, again) == (0, text), err
    code, raw, _ = cli(capsys, "explain", DEMO, "--data-dir", DATA, "--no-passes")
    assert code == 0 and raw != text  # passes changed the plan (pruned scans)


def test_json_workflow_runs_and_rebinds_tables(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "explain", DEMO, "--data-dir", DATA, "--json", "plan.json")[0] == 0
    code, out, err = cli(capsys, "run", "plan.json")
    assert code == 0, err
    code, out2, err = cli(capsys, "run", DEMO, "--data-dir", DATA)
    assert out == out2
    # Rebinding to a copy of the data with fewer orders changes the answer.
    few = work / "few"
    shutil.copytree(DATA, few)
    lines = (DATA / "orders.csv").read_text().splitlines()
    (few / "orders.csv").write_text("\n".join(lines[:50]) + "\n")
    code, out3, err = cli(capsys, "run", "plan.json", "--data-dir", few)
    assert code == 0, err
    assert out3 != out


def test_json_rebinding_checks_the_new_files_columns(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "explain", DEMO, "--data-dir", DATA, "--json", "plan.json")[0] == 0
    bad = write(work / "orders.csv", "order_id,customer_id\n1,2\n")
    code, _, err = cli(capsys, "explain", "plan.json", "--table", f"orders={bad}")
    assert_user_error(code, err, f"musketeer: error: table orders ({bad}) has no column 'status'")


def test_invalid_json_workflow_points_at_the_spot(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(work / "bad.json", '{"musketeer_ir": 1,\n  "nodes": [,]}\n')
    code, _, err = cli(capsys, "explain", "bad.json")
    assert_user_error(code, err, "bad.json:2:13: error: invalid JSON: Expecting value",
                      caret_col=13, source='  "nodes": [,]}')
    write(work / "other.json", '{"musketeer_ir": 1, "nodes": [{"id": 0}], "sinks": [0]}')
    code, _, err = cli(capsys, "explain", "other.json")
    assert code == 2 and err.startswith("musketeer: error: unknown operator None in workflow JSON")


# --------------------------------------------------------------------------- bad input: files and data

def test_missing_data_dir(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", DEMO, "--data-dir", "nowhere", "--output", "out.csv")
    assert_user_error(code, err, "musketeer: error: data directory nowhere does not exist")
    no_files_but(work)


def test_missing_table_file_given_with_table(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", DEMO, "--data-dir", DATA, "--table", "orders=gone.parquet",
                       "--output", "out.csv")
    assert_user_error(code, err, "musketeer: error: table file gone.parquet (for --table orders=gone.parquet) "
                                 "does not exist")
    no_files_but(work)


def test_missing_table_file_named_in_sql(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(work / "q.sql", "SELECT *\nFROM   'data/gone.parquet';\n")
    code, _, err = cli(capsys, "run", wf, "--output", "out.csv")
    assert_user_error(code, err, f"{wf}:2:8: error: table file {work / 'data' / 'gone.parquet'} does not exist",
                      caret_col=8, source="FROM   'data/gone.parquet';")
    no_files_but(work, "q.sql")


def test_corrupt_parquet(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = work / "orders.parquet"
    bad.write_bytes(b"PAR1 this is not really parquet")
    code, _, err = cli(capsys, "run", DEMO, "--data-dir", DATA, "--table", f"orders={bad}", "--output", "out.csv")
    assert code == 2
    assert err.startswith(f"musketeer: error: cannot read parquet file {bad}: ")
    assert_user_error(code, err, err.rstrip("\n"))
    no_files_but(work, "orders.parquet")


def test_csv_row_that_does_not_fit_its_column(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The schema comes from the file's first block; a bad value further down
    is found by the engine when it reads the whole file, and reported as a
    user error naming the file."""
    good = "".join(f"{i},{i % 7}.25\n" for i in range(150_000))  # > the 1 MiB inference block
    bad = write(work / "t.csv", "id,amount\n" + good + "150000,twelve\n")
    wf = write(work / "q.sql", "SELECT SUM(amount) AS total FROM t;\n")
    code, _, err = cli(capsys, "run", wf, "--table", f"t={bad}", "--output", "out.parquet")
    assert code == 2, err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert "t.csv" in first and "error:" in first
    assert "twelve" in err or "amount" in err
    no_files_but(work, "t.csv", "q.sql")


def test_engine_data_error_leaves_no_output(fake: FakeBackend, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.error = DataError("t.csv: row 3: column 'amount' expects float64, got 'abc'")
    code, _, err = cli(capsys, "run", DEMO, "--data-dir", DATA, "--output", "out.csv")
    assert_user_error(code, err, "musketeer: error: t.csv: row 3: column 'amount' expects float64, got 'abc'")
    no_files_but(work)


# --------------------------------------------------------------------------- bad input: command line

def test_unknown_backend(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", DEMO, "--data-dir", DATA, "--backend", "sparc", "--output", "o.csv")
    assert_user_error(code, err, "musketeer: error: unknown backend 'sparc'; did you mean 'spark'? "
                                 "(known backends: auto, local, duckdb, dask, spark, ciel)")
    no_files_but(work)


def test_ciel_backend_compiles(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "compile", DEMO, "--data-dir", DATA, "--backend", "ciel")
    assert code == 0 and "def job(paths" in out


def test_bad_output_extension_fails_before_running(fake: FakeBackend, work: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", DEMO, "--data-dir", DATA, "--output", "result.xlsx")
    assert_user_error(code, err, "musketeer: error: --output result.xlsx: unknown output format "
                                 "(the file name must end in .csv or .parquet)")
    assert not fake.ran
    no_files_but(work)


def test_output_directory_must_exist(fake: FakeBackend, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", DEMO, "--data-dir", DATA, "--output", "no/such/dir/r.csv")
    assert_user_error(code, err, "musketeer: error: --output no/such/dir/r.csv: directory no/such/dir does not exist")
    assert not fake.ran
    code, _, err = cli(capsys, "compile", DEMO, "--data-dir", DATA, "-o", "nodir/p.py")
    assert_user_error(code, err, "musketeer: error: --output nodir/p.py: directory nodir does not exist")


def test_workflow_file_problems(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "explain", "missing.sql")
    assert_user_error(code, err, "musketeer: error: workflow file missing.sql does not exist")
    write(work / "w.txt", "SELECT 1")
    code, _, err = cli(capsys, "explain", "w.txt")
    assert_user_error(code, err, "musketeer: error: cannot tell the workflow language of w.txt: "
                                 "expected a .sql, .py or .json file")
    (work / "bin.sql").write_bytes(b"SELECT \xff\xfe")
    code, _, err = cli(capsys, "explain", "bin.sql")
    assert code == 2 and err.startswith("musketeer: error: workflow file bin.sql is not UTF-8 text")


# --------------------------------------------------------------------------- bad input: SQL (frontend errors)

SQL_ERRORS = [
    pytest.param(
        "SELECT r.region_name\nFROM orders o\nJOIN regoins r ON o.order_id = r.region_code;\n",
        3, 6, "unknown table 'regoins'; did you mean 'regions'?", id="unknown-table"),
    pytest.param(
        "SELECT custmer_id, amount\nFROM orders;\n",
        1, 8, "unknown column 'custmer_id'; did you mean 'customer_id'?", id="unknown-column"),
    pytest.param(
        "SELECT *\nFROM orders\nWHERE amount > ;\n",
        3, 14, "syntax error", id="syntax-error"),
    pytest.param(
        "SELECT order_id\nFROM orders\nWHERE status + 1 > 2;\n",
        3, 7, "cannot apply '+' to string and int64", id="type-error"),
    pytest.param(
        "SELECT order_id,\n       APPROX_COUNT_DISTINCT(status) AS s\nFROM orders;\n",
        2, 8, "not supported yet: aggregate APPROX_COUNT_DISTINCT", id="unsupported"),
]


@pytest.mark.parametrize("sql,line,col,message", SQL_ERRORS)
def test_sql_errors_point_at_the_culprit(work: Path, capsys: pytest.CaptureFixture[str],
                                         sql: str, line: int, col: int, message: str) -> None:
    wf = write(work / "bad.sql", sql)
    for command in (["run", "--output", "out.csv"], ["explain"], ["compile", "-o", "p.py"]):
        code, out, err = cli(capsys, command[0], wf, "--data-dir", DATA, *command[1:])
        assert out == ""
        first = err.splitlines()[0]
        prefix = f"{wf}:{line}:{col}: error: "
        assert first.startswith(prefix) and message in first, err
        assert_user_error(code, err, first, caret_col=col, source=sql.splitlines()[line - 1])
        no_files_but(work, "bad.sql")


def test_unknown_table_lists_the_known_ones(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(work / "q.sql", "SELECT * FROM order;\n")
    code, _, err = cli(capsys, "explain", wf, "--data-dir", DATA)
    assert code == 2
    assert "unknown table 'order'; did you mean 'orders'?" in err
    known = err.split("(known: ", 1)[1].split(";", 1)[0].split(", ")
    assert {"customers", "orders", "regions"} <= set(known) and known == sorted(known)


# --------------------------------------------------------------------------- run-output plumbing (fake engine)

def loop_workflow(data: Path, step: int) -> str:
    """IR JSON for `v := t; repeat v := SELECT x + step FROM v` until nothing
    changes, at most 3 times: with step 0 it converges, otherwise it does not."""
    scan = O.Scan("t", str(data), "csv", (O.ScanColumn("x", "x", INT64),))
    body = O.Project(O.LoopVar("v", scan.schema), (("x", E.Arith("+", E.Col("x"), E.Lit.of(step))),))
    loop = O.While(init=(scan,), names=("v",), body=(body,), result="v", max_iter=3, fixpoint=True)
    return Workflow((O.Sink(loop, "result"),), "loop").to_json()


def test_run_reports_a_loop_that_did_not_converge(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(work / "t.csv", "x\n1\n5\n")
    write(work / "loop.json", loop_workflow(data, step=2))
    code, out, err = cli(capsys, "run", "loop.json", "--metrics")
    assert code == 0, err
    warning = [line for line in err.splitlines() if line.startswith("musketeer: warning: ")]
    assert len(warning) == 1 and "did not converge after 3 iterations" in warning[0], err
    assert [line.split() for line in out.splitlines()[2:-1]] == [["7"], ["11"]]  # 1+3*2, 5+3*2
    assert "iterations: 3" in err
    write(work / "still.json", loop_workflow(data, step=0))
    code, out, err = cli(capsys, "run", "still.json")
    assert code == 0 and "warning" not in err
    assert [line.split() for line in out.splitlines()[2:-1]] == [["1"], ["5"]]


def test_run_prints_loop_warnings(fake: FakeBackend, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.metrics = {"warnings": ["loop %3 stopped after max_iter 10 before its stop condition held"]}
    fake.warn = "engine says:\n  careful"
    code, out, err = cli(capsys, "run", DEMO, "--data-dir", DATA)
    assert code == 0
    assert err.splitlines() == ["musketeer: warning: loop %3 stopped after max_iter 10 before its stop condition held",
                                "musketeer: warning: engine says: careful"]
    assert out.splitlines()[-1] == "(2 rows)"


def test_failed_write_leaves_no_file_at_all(fake: FakeBackend, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.frame = pd.DataFrame({"x": [1, object()]})  # pyarrow cannot write this
    code, _, err = cli(capsys, "run", DEMO, "--data-dir", DATA, "--output", "result.parquet")
    assert code == 1 and err.startswith("musketeer: internal error: ")
    assert err.rstrip().endswith("(re-run with --debug for the traceback)")
    no_files_but(work)


def test_copy_targets_are_checked_before_running_and_reported(fake: FakeBackend, work: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(work / "two.sql", "COPY (SELECT order_id FROM orders) TO 'sub/copy.csv';\n"
                                 "SELECT order_id FROM orders;\n")
    code, _, err = cli(capsys, "run", wf, "--data-dir", DATA)
    assert_user_error(code, err, "musketeer: error: COPY TO sub/copy.csv: directory sub does not exist")
    assert not fake.ran
    (work / "sub").mkdir()
    code, out, err = cli(capsys, "run", wf, "--data-dir", DATA, "--output", "r.csv")
    assert code == 0, err
    assert out == ""
    assert err.splitlines() == ["musketeer: wrote 2 rows to sub/copy.csv", "musketeer: wrote 2 rows to r.csv"]
    code, out, err = cli(capsys, "run", wf, "--data-dir", DATA)
    assert out.splitlines()[-1] == "(2 rows)" and not out.startswith("--")  # the result alone: no heading


def test_existing_output_survives_a_failed_run(fake: FakeBackend, work: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    write(work / "out.csv", "old\n")
    fake.error = DataError("boom")
    code, _, _ = cli(capsys, "run", DEMO, "--data-dir", DATA, "--output", "out.csv")
    assert code == 2 and (work / "out.csv").read_text() == "old\n"
    no_files_but(work, "out.csv")


def test_output_without_a_result(fake: FakeBackend, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = write(work / "c.sql", "COPY (SELECT order_id FROM orders) TO 'c.csv';\n")
    code, _, err = cli(capsys, "run", wf, "--data-dir", DATA, "--output", "r.csv")
    assert_user_error(code, err, "musketeer: error: --output r.csv: the workflow has no 'result' output "
                                 "(its outputs: copy_1)")
    assert not fake.ran
    no_files_but(work, "c.sql")


def test_internal_errors_exit_1_and_debug_shows_the_traceback(fake: FakeBackend, work: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    fake.error = ZeroDivisionError("division by zero")
    code, _, err = cli(capsys, "run", DEMO, "--data-dir", DATA)
    assert code == 1
    assert err.strip() == ("musketeer: internal error: ZeroDivisionError: division by zero "
                           "(re-run with --debug for the traceback)")
    for args in (["--debug", "run", DEMO], ["run", DEMO, "--debug"]):
        code, _, err = cli(capsys, *args, "--data-dir", DATA)
        assert code == 1 and "Traceback (most recent call last)" in err and "ZeroDivisionError" in err
    fake.error = DataError("bad data")
    code, _, err = cli(capsys, "--debug", "run", DEMO, "--data-dir", DATA)
    assert code == 2 and "Traceback" in err and err.rstrip().endswith("musketeer: error: bad data")


def test_os_errors_on_user_files_are_user_errors(fake: FakeBackend, work: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", "out.csv")

    monkeypatch.setattr("musketeer.outputs._write_frame", denied)
    code, _, err = cli(capsys, "run", DEMO, "--data-dir", DATA, "--output", "out.csv")
    assert_user_error(code, err, "musketeer: error: out.csv: Permission denied")
    no_files_but(work)


# --------------------------------------------------------------------------- the real entry point

def test_subprocess_entry_point(work: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "musketeer", "explain", str(DEMO), "--data-dir", str(DATA)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "Scan(orders" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "musketeer", "run", str(DEMO), "--data-dir", "nowhere"],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2
    assert bad.stderr == "musketeer: error: data directory nowhere does not exist\n"
    script = Path(sys.executable).parent / "musketeer"
    if script.exists():  # the console script pip installs
        v = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
        assert v.stdout.strip() == f"musketeer {__version__}"


def test_unrelated_broken_file_in_data_dir_does_not_matter(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write(data / "t.csv", "a,b\n1,x\n2,y\n")
    (data / "broken.parquet").write_bytes(b"not a parquet file")
    wf = write(tmp_path / "w.sql", "SELECT a FROM t WHERE b = 'y'")
    code, out, err = cli(capsys, "run", str(wf), "--data-dir", str(data))
    assert code == 0, err
    assert "2" in out
    code, _, err = cli(capsys, "run", str(write(tmp_path / "v.sql", "SELECT * FROM broken")), "--data-dir", str(data))
    assert code == 2 and "broken.parquet" in err
