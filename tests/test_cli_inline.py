"""`musketeer run -c SQL`, SQL on stdin (`-`), and -v / -q. The oracle for
results is DuckDB on the same SQL text over the same CSV files."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from musketeer import cli, logs
from tests.tpch import assert_same_rows

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DATA = EXAMPLES / "data"
SQL = ("SELECT c.region_code, COUNT(*) AS n, SUM(o.amount) AS total FROM orders o "
       "JOIN customers c ON o.customer_id = c.customer_id WHERE o.status <> 'cancelled' "
       "GROUP BY c.region_code ORDER BY c.region_code")


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    logs.configure(logs.NORMAL)


def _duckdb() -> pd.DataFrame:
    con = duckdb.connect()
    for name in ("orders", "customers"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_csv_auto('{DATA / (name + '.csv')}')")
    return con.sql(SQL).df()


def _check(out: Path) -> None:
    assert_same_rows(pd.read_parquet(out), _duckdb(), order_by=[(0, True)])


def test_run_c_sql(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.parquet"
    assert cli.main(["run", "-c", SQL, "--data-dir", str(DATA), "--output", str(out)]) == 0, capsys.readouterr().err
    _check(out)


def test_run_sql_from_stdin(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "r.parquet"
    monkeypatch.setattr("sys.stdin", io.StringIO(SQL + ";\n"))
    assert cli.main(["run", "-", "--data-dir", str(DATA), "--output", str(out)]) == 0, capsys.readouterr().err
    _check(out)


def test_inline_sql_errors_point_into_the_text(capsys) -> None:
    assert cli.main(["run", "-c", "SELECT nope FROM orders", "--data-dir", str(DATA)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("<command line>:1:8: error: unknown column 'nope'")
    assert err[1:] == [" 1 | SELECT nope FROM orders", "   |        ^"]


@pytest.mark.parametrize("argv, message", [
    (["run", "--data-dir", str(DATA)], "give a WORKFLOW file, '-' for SQL on standard input, or -c SQL"),
    (["run", "x.sql", "-c", "SELECT 1"], "give either a WORKFLOW file or -c SQL, not both"),
    (["run", "-c", "  "], "no SQL given on the command line"),
])
def test_workflow_argument_errors(argv: list[str], message: str, capsys) -> None:
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == f"musketeer: error: {message}\n"


def test_stdin_on_a_terminal_is_refused(monkeypatch, capsys) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    assert cli.main(["run", "-", "--data-dir", str(DATA)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("musketeer: error: workflow '-' reads SQL from standard input, which is a terminal")


CHATTY = """\
import os
from musketeer import read


def chatter(row):
    os.write(2, b"WARN Engine: something an engine says on stderr\\n")
    return row


workflow = read({path!r}).apply(chatter)
"""


@pytest.mark.parametrize("flags, shown", [([], False), (["-v"], True), (["-q"], False)])
def test_engine_chatter_goes_to_the_log(tmp_path: Path, flags: list[str], shown: bool, capfd) -> None:
    """What an engine writes to descriptor 2 while it runs is logged: shown
    with -v (before or after the subcommand), hidden otherwise; -q also
    hides notes such as 'wrote N rows'."""
    wf = tmp_path / "chatty.py"
    wf.write_text(CHATTY.format(path=str(DATA / "regions.csv")))
    out = tmp_path / "r.csv"
    assert cli.main([*flags, "run", str(wf), "--backend", "local", "--output", str(out)]) == 0
    err = capfd.readouterr().err
    assert ("musketeer: local: WARN Engine: something an engine says on stderr" in err) == shown
    assert "WARN Engine" not in err.replace("musketeer: local: WARN Engine", "")
    assert ("wrote 5 rows" in err) == (flags != ["-q"])
    if flags:
        assert cli.main(["run", str(wf), "--backend", "local", "--output", str(out), *flags]) == 0
        assert capfd.readouterr().err == err
