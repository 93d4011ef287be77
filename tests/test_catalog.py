"""musketeer.catalog: table files -> ir.Table, lazily and with clear errors."""

from __future__ import annotations

import datetime as dt
import decimal
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musketeer.ir import DataError, IRError
from musketeer.ir.types import BOOL, DATE, FLOAT64, INT64, NULL, STRING, TIMESTAMP, decimal as dec
from musketeer import catalog as C
from musketeer.catalog import FileCatalog, parse_table_binding, read_table


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    write_csv(d / "orders.csv", "order_id,customer_id,amount,status,day\n1,10,5.5,shipped,2024-01-02\n2,,7.25,,2024-02-03\n")
    write_csv(d / "customers.csv", "customer_id,name\n10,Ada\n")
    pq.write_table(pa.table({"customer_id": pa.array([10, 11], pa.int32()), "name": ["Ada", None]}),
                   d / "customers.parquet")
    (d / "notes.txt").write_text("not a table")
    return d


def test_data_dir_tables_by_stem_with_parquet_preferred(data_dir: Path) -> None:
    cat = FileCatalog(str(data_dir))
    assert sorted(cat.tables) == ["customers", "orders"]
    customers = cat.get("customers")
    assert customers.format == "parquet"
    assert customers.path == str(data_dir / "customers.parquet")
    assert customers.rows == 2  # from parquet metadata
    assert [(f.name, f.dtype) for f in customers.schema] == [("customer_id", INT64), ("name", STRING)]


def test_csv_schema_is_inferred_and_rows_unknown(data_dir: Path) -> None:
    orders = FileCatalog(str(data_dir)).get("orders")
    assert orders.format == "csv" and orders.rows is None
    assert [(f.name, f.dtype) for f in orders.schema] == [
        ("order_id", INT64), ("customer_id", INT64), ("amount", FLOAT64), ("status", STRING), ("day", DATE)]
    assert all(f.nullable for f in orders.schema)


def test_lookup_is_case_insensitive_and_unknown_names_get_a_suggestion(data_dir: Path) -> None:
    cat = FileCatalog(str(data_dir))
    assert cat.get("ORDERS").name == "orders"
    assert "Orders" in cat
    with pytest.raises(IRError) as err:
        cat.get("order")
    msg = str(err.value)
    assert "unknown table 'order'" in msg and "did you mean 'orders'?" in msg
    assert "known tables: customers, orders" in msg


def test_schemas_are_read_only_for_tables_used(data_dir: Path) -> None:
    (data_dir / "broken.parquet").write_bytes(b"not parquet at all")
    cat = FileCatalog(str(data_dir))
    assert "broken" in cat.tables
    assert cat.get("orders").name == "orders"  # the broken file is never opened
    with pytest.raises(DataError, match=r"cannot read parquet file .*broken\.parquet"):
        cat.get("broken")


def test_directory_is_listed_on_first_lookup_not_at_construction(data_dir: Path) -> None:
    cat = FileCatalog(str(data_dir))
    write_csv(data_dir / "late.csv", "x\n1\n")
    assert cat.get("late").schema.names == ("x",)


def test_parquet_schema_comes_from_the_footer_only(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_data_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("schema reading must not read the table's data")

    monkeypatch.setattr(pq, "read_table", no_data_reads)
    monkeypatch.setattr(pq.ParquetFile, "read", no_data_reads)
    assert FileCatalog(str(data_dir)).get("customers").rows == 2


def test_missing_or_wrong_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^data directory .*nope does not exist$"):
        FileCatalog(str(tmp_path / "nope"))
    f = write_csv(tmp_path / "f.csv", "a\n1\n")
    with pytest.raises(DataError, match=r"^data directory .*f\.csv is not a directory$"):
        FileCatalog(str(f))


def test_table_overrides_win_and_are_checked_eagerly(data_dir: Path, tmp_path: Path) -> None:
    other = write_csv(tmp_path / "other_orders.csv", "id\n1\n")
    cat = FileCatalog(str(data_dir), {"orders": str(other), "extra": str(other)})
    assert cat.get("orders").schema.names == ("id",)
    assert cat.get("extra").path == str(other)
    with pytest.raises(DataError, match=r"table file .*missing\.csv \(for --table t=.*\) does not exist"):
        FileCatalog(None, {"t": str(tmp_path / "missing.csv")})
    with pytest.raises(DataError, match=r"unknown file type"):
        FileCatalog(None, {"t": str(write_csv(tmp_path / "t.txt", "a\n1\n"))})


def test_unknown_table_without_any_binding_says_how_to_bind(tmp_path: Path) -> None:
    with pytest.raises(IRError, match=r"known tables: none\) \(pass --data-dir DIR or --table NAME=PATH\)"):
        FileCatalog().get("orders")


def test_arrow_types_map_to_ir_types(tmp_path: Path) -> None:
    table = pa.table({
        "i8": pa.array([1], pa.int8()), "u32": pa.array([1], pa.uint32()), "u64": pa.array([1], pa.uint64()),
        "f32": pa.array([1.5], pa.float32()), "d": pa.array([decimal.Decimal("1.25")], pa.decimal128(12, 2)),
        "b": [True], "s": pa.array(["x"], pa.large_string()), "day": pa.array([dt.date(2024, 1, 1)]),
        "ts": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("ms", tz="UTC")),
        "cat": pa.array(["a"]).dictionary_encode(), "n": pa.array([None], pa.null()),
    })
    path = tmp_path / "types.parquet"
    pq.write_table(table, path)
    got = {f.name: f.dtype for f in read_table("types", str(path)).schema}
    assert got == {"i8": INT64, "u32": INT64, "u64": INT64, "f32": FLOAT64, "d": dec(12, 2), "b": BOOL,
                   "s": STRING, "day": DATE, "ts": TIMESTAMP, "cat": STRING, "n": NULL}


@pytest.mark.parametrize("column", [
    pa.array([dt.time(1, 2)], pa.time64("us")),
    pa.array([[1, 2]]),
    pa.array([b"x"], pa.binary()),
], ids=["time", "list", "binary"])
def test_unsupported_column_type_names_file_and_column(tmp_path: Path, column: pa.Array) -> None:
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"ok": [1], "weird": column}), path)
    with pytest.raises(DataError) as err:
        read_table("odd", str(path), "data/odd.parquet")
    msg = str(err.value)
    assert msg.startswith("data/odd.parquet: column 'weird' has type ")
    assert "does not support" in msg


def test_corrupt_parquet_and_bad_csv_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 truncated")
    with pytest.raises(DataError, match=r"^cannot read parquet file .*bad\.parquet: "):
        read_table("bad", str(bad))
    empty = write_csv(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match=r"^cannot read CSV file .*empty\.csv: .*[Ee]mpty"):
        read_table("empty", str(empty))


def test_csv_without_header_row_is_rejected(tmp_path: Path) -> None:
    headless = write_csv(tmp_path / "headless.csv", "1,2.5,3\n4,5.5,6\n")
    with pytest.raises(DataError, match=r"CSV file .*headless\.csv needs a header row .*first line: 1,2\.5,3"):
        read_table("h", str(headless))


def test_duplicate_column_names_in_a_file(tmp_path: Path) -> None:
    dup = write_csv(tmp_path / "dup.csv", "a,a\n1,2\n")
    with pytest.raises(DataError, match=r"dup\.csv: duplicate column name 'a'"):
        read_table("dup", str(dup))


def test_missing_and_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^table file .*gone\.csv does not exist$"):
        read_table("gone", str(tmp_path / "gone.csv"))
    (tmp_path / "dir.parquet").mkdir()
    with pytest.raises(DataError, match=r"is a directory"):
        read_table("d", str(tmp_path / "dir.parquet"))


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    f = write_csv(tmp_path / "secret.csv", "a\n1\n")
    f.chmod(0)
    with pytest.raises(DataError, match="not readable"):
        read_table("s", str(f))


def test_loader_resolves_workflow_dir_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wf_dir, cwd = tmp_path / "wf", tmp_path / "cwd"
    (wf_dir / "data").mkdir(parents=True)
    (cwd / "data").mkdir(parents=True)
    write_csv(wf_dir / "data" / "a.csv", "from_wf\n1\n")
    write_csv(cwd / "data" / "a.csv", "from_cwd\n1\n")
    write_csv(cwd / "data" / "b.csv", "only_cwd\n1\n")
    monkeypatch.chdir(cwd)
    cat = FileCatalog(base_dir=str(wf_dir))
    assert cat.from_path("data/a.csv").schema.names == ("from_wf",)
    assert cat.from_path("data/b.csv").schema.names == ("only_cwd",)
    assert cat.from_path("data/a.csv") is cat.from_path(str(wf_dir / "data" / "a.csv"))  # read once
    with pytest.raises(DataError, match=r"^table file data/c\.csv does not exist \(looked for \S*/wf/data/c\.csv "
                                         r"next to the workflow, then \S*/cwd/data/c\.csv in the current directory\)$"):
        cat.from_path("data/c.csv")


def test_missing_file_names_each_place_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workflow's directory is the cwd: one place, said once."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        FileCatalog(base_dir=str(tmp_path)).from_path("c.csv")
    assert str(err.value) == f"table file c.csv does not exist (looked for {tmp_path / 'c.csv'})"


@pytest.mark.parametrize("rows, line", [("1,2\n3,4\n5,6,7\n8,9\n", 4), ("1\n", 2)])
def test_ragged_csv_row_names_file_and_line(tmp_path: Path, rows: str, line: int) -> None:
    """A row with more (or fewer) fields than the header, inside the block
    that type inference reads: one line naming the file and the line (the
    header is line 1), as the engines say it for rows further down."""
    path = tmp_path / "r.csv"
    path.write_text("a,b\n" + rows)
    with pytest.raises(DataError) as err:
        FileCatalog(base_dir=str(tmp_path)).from_path("r.csv")
    message = str(err.value)
    assert message.startswith(f"r.csv:{line}: Expected 2 columns, got ") and "\n" not in message
    bad = rows.splitlines()[line - 2]
    assert message.endswith(": " + bad)


def test_table_path_is_absolute_so_programs_run_anywhere(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(data_dir.parent)
    assert FileCatalog("data").get("orders").path == str(data_dir / "orders.csv")


def test_parse_table_binding() -> None:
    assert parse_table_binding("orders=data/o.csv") == ("orders", "data/o.csv")
    assert parse_table_binding("t=a=b.csv") == ("t", "a=b.csv")
    for bad in ("orders", "=x.csv", "t="):
        with pytest.raises(ValueError, match="expected NAME=PATH"):
            parse_table_binding(bad)


def test_format_of() -> None:
    assert C.format_of("x/Y.PARQUET") == "parquet"
    assert C.format_of("y.csv") == "csv"
    with pytest.raises(DataError, match=r"y\.json: unknown file type"):
        C.format_of("y.json")
