"""`musketeer compare` when an engine fails or engines disagree: every other
engine still runs, the report is written anyway (the failed engine a failed
row with its one-line error; differing rows sampled), the Markdown summary
says what happened, and the exit code follows the CLI's rule (1: engines
disagree or one failed on its own; 2: usage error or the same user error
everywhere). The engines that misbehave are test doubles wrapping the real
local backend, put in place of a registered name; the right answer is
DuckDB's on the query text."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musketeer import api, cli
from musketeer.backends.base import RunResult
from musketeer.backends.local import BACKEND as LOCAL
from musketeer.ir import MusketeerError

SQL = "SELECT name, SUM(v) AS total FROM t GROUP BY name"


class Lost(MusketeerError):
    """Like ciel's WorkersLost: the run failed, not the workflow."""

    exit_code = 1


class Double:
    """The local engine under another name, its run replaced by `run_with`."""

    capabilities = LOCAL.capabilities

    def __init__(self, name: str, run_with: Callable[[RunResult], RunResult]) -> None:
        self.name, self.run_with, self.calls = name, run_with, 0

    def available(self, options=None):
        return True, ""

    def generate(self, wf):
        return LOCAL.generate(wf)

    def run(self, program, options):
        self.calls += 1
        return self.run_with(LOCAL.run(program, options))


@pytest.fixture()
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"name": ["a", "b", "a", None, "c"], "v": [1.5, 2.0, None, 4.0, 5.25]}), path)
    (tmp_path / "q.sql").write_text(SQL + ";\n")
    monkeypatch.chdir(tmp_path)
    return path


def _expected(path: Path) -> list[tuple]:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}')")
    return sorted(con.execute(SQL).fetchall(), key=repr)


def _install(monkeypatch: pytest.MonkeyPatch, doubles: dict[str, Double]) -> None:
    real = api.get_backend
    monkeypatch.setattr(api, "get_backend",
                        lambda name="auto", options=None: doubles[name] if name in doubles else real(name, options))


def _crash(result: RunResult) -> RunResult:
    raise RuntimeError("engine fell over\nwith a second line")


def _lost(result: RunResult) -> RunResult:
    raise Lost("every worker died")


@pytest.mark.parametrize("run_with, message", [
    (_crash, "internal error: RuntimeError: engine fell over with a second line"),
    (_lost, "every worker died"),
])
def test_a_failing_engine_is_a_failed_row_and_the_others_still_run(
        table: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        run_with: Callable[[RunResult], RunResult], message: str) -> None:
    broken = Double("dask", run_with)
    _install(monkeypatch, {"dask": broken})
    code = cli.main(["compare", "q.sql", "--table", f"t={table}", "--backends", "dask,local,duckdb",
                     "--report", "r.html"])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert broken.calls == 1
    assert err.splitlines()[-1] == f"musketeer: error: backend dask failed: {message}"
    rows = len(_expected(table))
    assert "| dask | " in out and f"failed: {message} |" in out
    assert "| local | " in out and "| duckdb | " in out and out.count(f" | {rows} |") == 2  # both answered
    assert "1 of 3 backend(s) failed (dask); the other 2 agree." in out
    report = Path("r.html").read_text()
    assert '<tr class="failed"><td>dask</td>' in report
    assert html.escape(f"failed: {message}") in report
    assert "1 of 3 backend(s) failed" in report and 'id="code-local"' in report and 'id="code-duckdb"' in report


def test_engines_that_disagree_write_the_report_with_the_differing_rows(
        table: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    expected = _expected(table)
    changed = next(r for r in expected if r[0] == "b")

    def wrong(result: RunResult) -> RunResult:  # b's total off by 100
        frame = next(iter(result.outputs.values())).copy()
        frame.loc[frame["name"] == "b", "total"] += 100
        return RunResult({k: frame for k in result.outputs}, result.metrics)

    _install(monkeypatch, {"dask": Double("dask", wrong)})
    code = cli.main(["compare", "q.sql", "--table", f"t={table}", "--backends", "local,dask,duckdb",
                     "--report", "r.html"])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert err.splitlines()[-1].startswith("musketeer: error: results differ: backend dask disagrees with local")
    wrong_row = (changed[0], changed[1] + 100)
    assert f"  - only in local: ('b', {changed[1]})" in out
    assert f"  - only in dask: ('b', {wrong_row[1]})" in out
    assert "duckdb vs" not in out  # duckdb agrees with local
    report = Path("r.html").read_text()
    assert "Results DIFFER: results differ: backend dask disagrees with local" in html.unescape(report)
    section = report[report.index('id="differences"'):report.index('id="chart"')]
    assert "<b>dask</b> disagrees with <b>local</b>" in section
    assert f"<tr><td>local</td><td>b</td><td>{changed[1]}</td></tr>" in section
    assert f"<tr><td>dask</td><td>b</td><td>{wrong_row[1]}</td></tr>" in section
    assert "<td>a</td>" not in section and "<td>c</td>" not in section  # rows that agree are not shown


def test_a_bad_report_path_is_refused_before_anything_runs(
        table: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    double = Double("dask", lambda r: r)
    _install(monkeypatch, {"dask": double})
    before = sorted(p.name for p in Path(".").iterdir())
    code = cli.main(["compare", "q.sql", "--table", f"t={table}", "--backends", "dask",
                     "--report", "missing/r.html"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "missing" in err and "Traceback" not in err
    assert double.calls == 0
    assert sorted(p.name for p in Path(".").iterdir()) == before  # no report, no temporary file


def test_a_user_error_on_one_engine_only_is_a_disagreement(
        table: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(result: RunResult) -> RunResult:  # a data error (exit 2 on its own)
        raise MusketeerError("column 'v': cannot cast 'x' to int64")

    _install(monkeypatch, {"dask": Double("dask", refuse)})
    code = cli.main(["compare", "q.sql", "--table", f"t={table}", "--backends", "local,dask", "--report", "r.html"])
    out, err = capsys.readouterr()
    assert code == 1
    assert ("results differ: backend dask failed: column 'v': cannot cast 'x' to int64, "
            f"backend local returned {len(_expected(table))} rows") in err
    assert "Results DIFFER" in out and Path("r.html").exists()
