"""What the CLI prints and writes, tested without running workflows:
error reports (musketeer.report), result tables (musketeer.render) and
all-or-nothing files (musketeer.outputs)."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musketeer.ir import DataError, IRError, SourceLoc
from musketeer.errors import UsageError
from musketeer.outputs import OutputTarget, commit_files, output_target, write_frame_atomic
from musketeer.render import format_metrics, format_table, format_value
from musketeer.report import format_error, format_internal, format_os_error, read_line


# --------------------------------------------------------------------------- report

def test_error_without_location_is_one_line() -> None:
    assert format_error(DataError("data directory x does not exist")) == \
        "musketeer: error: data directory x does not exist"
    assert format_error(IRError("two\n   lines")) == "musketeer: error: two lines"


def test_error_with_location_shows_line_and_caret(tmp_path: Path) -> None:
    f = tmp_path / "q.sql"
    f.write_text("SELECT a\nFROM t\nWHERE bogus > 1\n")
    text = format_error(IRError("unknown column 'bogus'", SourceLoc(str(f), 3, 7)))
    assert text.split("\n") == [
        f"{f}:3:7: error: unknown column 'bogus'",
        " 3 | WHERE bogus > 1",
        "   |       ^",
    ]


def test_caret_keeps_tabs_so_it_lines_up(tmp_path: Path) -> None:
    f = tmp_path / "q.sql"
    f.write_text("SELECT\n\tx,\tbad\n")
    lines = format_error(IRError("m", SourceLoc(str(f), 2, 5))).split("\n")
    assert lines[1] == " 2 | \tx,\tbad"
    assert lines[2] == "   | \t  \t^"


def test_long_source_lines_are_cropped_around_the_caret(tmp_path: Path) -> None:
    f = tmp_path / "q.sql"
    line = "SELECT " + ", ".join(f"c{i}" for i in range(200)) + ", bad FROM t"
    f.write_text(line + "\n")
    col = line.index("bad") + 1
    src, caret = format_error(IRError("m", SourceLoc(str(f), 1, col))).split("\n")[1:]
    shown = src.split(" | ", 1)[1]
    assert len(shown) <= 106 and shown.startswith("...")
    assert shown[caret.index("^") - len(" 1 | ")] == "b"


def test_location_in_an_unreadable_file_still_reports(tmp_path: Path) -> None:
    err = IRError("m", SourceLoc(str(tmp_path / "gone.sql"), 4, 2))
    assert format_error(err) == f"{tmp_path / 'gone.sql'}:4:2: error: m"
    f = tmp_path / "short.sql"
    f.write_text("one line\n")
    assert format_error(IRError("m", SourceLoc(str(f), 9, 1))) == f"{f}:9:1: error: m"


def test_read_line_is_lazy_and_exact(tmp_path: Path) -> None:
    f = tmp_path / "big.csv"
    f.write_text("".join(f"row{i}\r\n" for i in range(1000)))
    assert read_line(str(f), 1) == "row0"
    assert read_line(str(f), 1000) == "row999"
    assert read_line(str(f), 1001) is None and read_line(str(f), 0) is None


def test_os_and_internal_errors() -> None:
    assert format_os_error(PermissionError(13, "Permission denied", "out.csv")) == \
        "musketeer: error: out.csv: Permission denied"
    assert format_internal(KeyError("x")) == \
        "musketeer: internal error: KeyError: 'x' (re-run with --debug for the traceback)"


# --------------------------------------------------------------------------- render

def arrow_frame(**columns: pa.Array) -> pd.DataFrame:
    return pa.table(columns).to_pandas(types_mapper=pd.ArrowDtype)


def test_table_is_aligned_with_nulls_and_a_row_count() -> None:
    df = arrow_frame(
        region=pa.array(["ASIA", None]), revenue=pa.array([1234.5, None]),
        n=pa.array([7, None], pa.int64()), day=pa.array([dt.date(2024, 1, 2), None]),
    )
    assert format_table(df) == (
        "region | revenue |    n | day\n"
        "-------+---------+------+-----------\n"
        "ASIA   |  1234.5 |    7 | 2024-01-02\n"
        "NULL   |    NULL | NULL | NULL\n"
        "(2 rows)\n"
    )


def test_long_results_are_cut_with_a_note() -> None:
    df = pd.DataFrame({"i": range(1234)})
    lines = format_table(df, max_rows=100).splitlines()
    assert len(lines) == 2 + 100 + 1
    assert lines[-1] == "(1,234 rows, showing first 100; use --max-rows to see more)"
    assert format_table(df, max_rows=None).splitlines()[-1] == "(1,234 rows)"
    assert format_table(df.head(1)).splitlines()[-1] == "(1 row)"


def test_value_formatting() -> None:
    assert format_value(0.1 + 0.2) == "0.3"
    assert format_value(22045.0) == "22045.0" and format_value(-3.0) == "-3.0"
    assert format_value(1e20) == "1e+20" and format_value(float("inf")) == "inf"
    assert format_value(float("nan")) == "NaN"  # a real NaN in an Arrow column
    assert format_value(float("nan"), nan_is_null=True) == "NULL"
    assert format_value(decimal.Decimal("1.50")) == "1.50"
    assert format_value(True) == "true"
    assert format_value(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05"
    assert format_value(pd.Timestamp("2024-01-02 03:04:05")) == "2024-01-02 03:04:05"
    assert format_value("a\nb") == "a\\nb"
    assert len(format_value("x" * 500)) == 60


def test_numpy_backed_missing_values_print_as_null() -> None:
    df = pd.DataFrame({"x": [1.5, float("nan")], "s": ["a", None]})
    assert format_table(df).splitlines()[3] == "NULL | NULL"


def test_metrics_are_flattened_with_millisecond_seconds() -> None:
    text = format_metrics({"parse_seconds": 0.01234, "rows": 5, "loop": {"iterations": 3}, "warnings": ["w"]})
    assert text == ("metrics:\n  parse_seconds: 0.012        (parse: workflow file -> IR)\n"
                    "  rows: 5\n  loop.iterations: 3\n")
    # the phases in the order they happen, each labelled, whatever order they were recorded in
    text = format_metrics({"seconds": 0.5, "run_seconds": 0.6, "backend": "local", "generate_seconds": 0.1,
                           "parse_seconds": 0.2})
    keys = [line.split(":")[0].strip() for line in text.splitlines()[1:]]
    assert keys == ["parse_seconds", "generate_seconds", "run_seconds", "seconds", "backend"]
    assert all("(" in line for line in text.splitlines()[1:-1])


# --------------------------------------------------------------------------- outputs

def test_output_target_validation(tmp_path: Path) -> None:
    assert output_target("result", str(tmp_path / "r.CSV")).format == "csv"
    assert output_target("c", str(tmp_path / "r.out"), "parquet").format == "parquet"
    with pytest.raises(UsageError, match=r"unknown output format \(the file name must end in \.csv or \.parquet\)"):
        output_target("result", str(tmp_path / "r.json"))
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        output_target("result", str(tmp_path / "d.csv"))


def test_frames_are_written_atomically_with_normal_permissions(tmp_path: Path) -> None:
    df = arrow_frame(a=pa.array([1, None], pa.int64()), s=pa.array(["x", "y"]))
    targets = [OutputTarget("result", str(tmp_path / "r.parquet"), "parquet"),
               OutputTarget("copy", str(tmp_path / "r.csv"), "csv")]
    for t in targets:
        write_frame_atomic(t, df)
    assert pq.read_table(tmp_path / "r.parquet").column("a").to_pylist() == [1, None]
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == '"a","s"'
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "r.csv").stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.parquet"]


def test_commit_files_is_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("old")

    def good(tmp: str) -> None:
        Path(tmp).write_text("new")

    def bad(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        commit_files([(str(tmp_path / "keep.txt"), good), (str(tmp_path / "b.txt"), bad)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert (tmp_path / "keep.txt").read_text() == "old"


@pytest.mark.parametrize("backend", ["auto", "local"])
def test_metrics_include_every_phase_labelled(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`run --metrics` shows parse, optimize, generate and run, each with what it measures."""
    from musketeer import cli

    examples = Path(__file__).resolve().parent.parent / "examples"
    code = cli.main(["run", str(examples / "revenue_by_region.sql"), "--data-dir", str(examples / "data"),
                     "--backend", backend, "--metrics"])
    err = capsys.readouterr().err
    assert code == 0, err
    for phase in ("parse", "optimize", "generate", "run"):
        line = next(ln for ln in err.splitlines() if ln.strip().startswith(f"{phase}_seconds: "))
        assert re.search(rf"{phase}_seconds: \d+\.\d{{3}} +\({phase}: ", line), line
