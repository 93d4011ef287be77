"""Bind table names to files and read their schemas, cheaply and lazily.

The frontend type-checks a workflow against the catalog before any engine
starts, so every table it reads needs a schema up front. Three sources feed
one `FileCatalog`:

- `--data-dir DIR`: table `t` is `DIR/t.parquet` or `DIR/t.csv` (parquet
  wins when both exist). The directory is listed on the first lookup, and a
  file's schema is read only when the workflow asks for that table, so a
  directory of a hundred big tables costs one `scandir` and one footer read
  per table used.
- `--table NAME=PATH`: explicit bindings, which win over the directory.
- paths written in the workflow (`FROM 'data/orders.parquet'`), resolved by
  `catalog.loader` against the workflow file's directory, then the cwd.

Schemas come from parquet metadata (footer only; the row count too) or from
pyarrow's CSV type inference over the file's first block. A CSV row further
down that does not fit the inferred types is reported by the backend that
reads the whole file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from musketeer.ir import Catalog, DataError, Field, IRError, Schema, Table
from musketeer.ir.schema import suggest
from musketeer.ir.types import BOOL, DATE, FLOAT64, INT64, NULL, STRING, TIMESTAMP, DataType, decimal

#: File suffix (lower case) -> Table.format. Order matters: earlier wins when
#: a data directory holds the same table in two formats.
FORMATS: dict[str, str] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}

#: How much of a CSV file pyarrow looks at to infer column types.
CSV_INFERENCE_BYTES = 1 << 20


def format_of(path: str) -> str:
    """The table format implied by a file name; DataError for anything else."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise DataError(f"cannot read table file {path}: unknown file type (expected one of {known})")
    return fmt


def arrow_to_ir(dtype: pa.DataType) -> DataType | None:
    """The IR type for an Arrow column type, or None when the IR has none.

    Unsigned integers become int64 (values above 2**63 would not fit, but
    real tables hold keys and counts); dictionary-encoded columns (pandas
    categoricals written to parquet) take their value type.
    """
    t = pa.types
    if t.is_dictionary(dtype):
        return arrow_to_ir(dtype.value_type)
    if t.is_integer(dtype):
        return INT64
    if t.is_floating(dtype):
        return FLOAT64
    if t.is_decimal(dtype):
        return decimal(dtype.precision, dtype.scale)
    if t.is_boolean(dtype):
        return BOOL
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_string_view(dtype):
        return STRING
    if t.is_date(dtype):
        return DATE
    if t.is_timestamp(dtype):
        return TIMESTAMP
    if t.is_null(dtype):
        return NULL  # a CSV column empty in every sampled row
    return None


def schema_from_arrow(arrow_schema: pa.Schema, display_path: str) -> Schema:
    """Convert a file's Arrow schema, naming the file and column on failure."""
    fields = []
    for f in arrow_schema:
        dtype = arrow_to_ir(f.type)
        if dtype is None:
            raise DataError(
                f"{display_path}: column {f.name!r} has type {f.type}, which Musketeer does not "
                "support (use int, float, decimal, bool, string, date or timestamp columns)"
            )
        fields.append(Field(f.name, dtype, f.nullable))
    try:
        return Schema(tuple(fields))
    except IRError as e:
        raise DataError(f"{display_path}: {e}") from None


def read_table(name: str, path: str, display_path: str | None = None) -> Table:
    """A Table for one file, reading only what the schema needs.

    `display_path` is the path as the user wrote it, for error messages;
    `Table.path` is absolute so generated programs run from any directory.
    """
    shown = display_path or path
    fmt = format_of(shown)
    if not os.path.exists(path):
        raise DataError(f"table file {shown} does not exist")
    if os.path.isdir(path):
        raise DataError(f"table path {shown} is a directory, not a .parquet or .csv file")
    if not os.access(path, os.R_OK):
        raise DataError(f"table file {shown} is not readable (permission denied)")
    if fmt == "parquet":
        arrow_schema, rows = _parquet_schema(path, shown)
    else:
        arrow_schema, rows = _csv_schema(path, shown), None
    return Table(name, os.path.abspath(path), fmt, schema_from_arrow(arrow_schema, shown), rows)


def _parquet_schema(path: str, shown: str) -> tuple[pa.Schema, int]:
    try:
        meta = pq.read_metadata(path)
        return meta.schema.to_arrow_schema(), meta.num_rows
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"cannot read parquet file {shown}: {_one_line(e)}") from None


def _csv_schema(path: str, shown: str) -> pa.Schema:
    try:
        with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=CSV_INFERENCE_BYTES)) as r:
            schema = r.schema
    except pa.ArrowInvalid as e:
        raise DataError(_csv_parse_error(path, shown, e)) from None
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"cannot read CSV file {shown}: {_one_line(e)}") from None
    names = schema.names
    if any(not n.strip() for n in names) or all(_looks_numeric(n) for n in names):
        raise DataError(f"CSV file {shown} needs a header row naming its columns (first line: {','.join(names)})")
    return schema


_CSV_ROW = re.compile(r"Row #(\d+): (.*)", re.S)


def _csv_parse_error(path: str, shown: str, error: BaseException) -> str:
    """`FILE:LINE: what is wrong` for a malformed row (a ragged row, an
    unterminated quote) in the block type inference read. pyarrow's block
    reader does not say which line; its serial reader does, so the same
    block is parsed again serially, in memory, to find it. The line number
    counts the header as line 1, as the engines' run-time errors do."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(CSV_INFERENCE_BYTES)
        if len(data) == CSV_INFERENCE_BYTES and b"\n" in data:
            data = data[: data.rindex(b"\n") + 1]  # whole lines only
        pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(use_threads=False))
    except pa.ArrowInvalid as again:
        found = _CSV_ROW.search(str(again))
        if found:
            return f"{shown}:{found.group(1)}: {_one_line(found.group(2))}"
    except OSError:
        pass
    message = _one_line(error).removeprefix("CSV parse error: ")
    return f"cannot read CSV file {shown}: {message}"


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _one_line(e: BaseException | str) -> str:
    return " ".join(str(e).split())


class _LazyTables(MutableMapping[str, Table]):
    """Table name -> Table, reading a schema on first access.

    `bindings` maps every known name to (path, display path) without
    touching the files; `loaded` caches read tables. Tables added with
    `Catalog.add` go straight into `loaded`.
    """

    def __init__(self, bindings: Callable[[], dict[str, tuple[str, str]]]) -> None:
        self._bindings = bindings
        self.loaded: dict[str, Table] = {}

    def _names(self) -> dict[str, None]:
        return dict.fromkeys([*self.loaded, *self._bindings()])

    def __getitem__(self, name: str) -> Table:
        if name not in self.loaded:
            binding = self._bindings().get(name)
            if binding is None:
                raise KeyError(name)
            path, shown = binding
            self.loaded[name] = read_table(name, path, shown)
        return self.loaded[name]

    def __setitem__(self, name: str, table: Table) -> None:
        self.loaded[name] = table

    def __delitem__(self, name: str) -> None:
        raise TypeError("tables cannot be removed from a catalog")

    def __contains__(self, name: object) -> bool:
        return name in self.loaded or name in self._bindings()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


class FileCatalog(Catalog):
    """An `ir.Catalog` backed by files; see the module docstring for sources.

    Only existence is checked eagerly (a missing --data-dir or --table file
    should fail before parsing, naming the path); listing and schema reading
    wait until the frontend asks.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        tables: dict[str, str] | None = None,
        base_dir: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.overrides = dict(tables or {})
        self.base_dir = base_dir
        self._listing: dict[str, tuple[str, str]] | None = None
        self._by_path: dict[str, Table] = {}
        if data_dir is not None and not os.path.isdir(data_dir):
            what = "is not a directory" if os.path.exists(data_dir) else "does not exist"
            raise DataError(f"data directory {data_dir} {what}")
        for name, path in self.overrides.items():
            if not os.path.isfile(path):
                what = "is not a file" if os.path.exists(path) else "does not exist"
                raise DataError(f"table file {path} (for --table {name}={path}) {what}")
            format_of(path)
        super().__init__(tables=_LazyTables(self._bindings), loader=self.load_path)  # type: ignore[arg-type]

    # --- name -> file ----------------------------------------------------
    def _bindings(self) -> dict[str, tuple[str, str]]:
        out = dict(self._list_data_dir())
        out.update({name: (path, path) for name, path in self.overrides.items()})
        return out

    def _list_data_dir(self) -> dict[str, tuple[str, str]]:
        if self._listing is None:
            self._listing = {}
            if self.data_dir is not None:
                rank = {suffix: n for n, suffix in enumerate(FORMATS)}
                best: dict[str, tuple[int, str]] = {}
                try:
                    entries = list(os.scandir(self.data_dir))
                except OSError as e:
                    raise DataError(f"cannot list data directory {self.data_dir}: {e.strerror}") from None
                for entry in entries:
                    stem, suffix = os.path.splitext(entry.name)
                    r = rank.get(suffix.lower())
                    if r is None or not stem or not entry.is_file():
                        continue
                    if stem not in best or r < best[stem][0]:
                        best[stem] = (r, entry.path)
                self._listing = {stem: (path, path) for stem, (_, path) in sorted(best.items())}
        return self._listing

    def get(self, name: str) -> Table:
        """Exact name first, then a case-insensitive match, as `Catalog.get`,
        but without reading every table's schema to compare names."""
        tables = self.tables
        if name in tables:
            return tables[name]
        for key in tables:
            if key.lower() == name.lower():
                return tables[key]
        known = ", ".join(sorted(tables)) or "none"
        where = f" in data directory {self.data_dir}" if self.data_dir is not None else ""
        hint = "" if self.data_dir is not None or self.overrides else " (pass --data-dir DIR or --table NAME=PATH)"
        raise IRError(f"unknown table {name!r}{where}{suggest(name, list(tables))} (known tables: {known}){hint}")

    # --- paths written in the workflow ---------------------------------------
    def load_path(self, path: str) -> Table:
        """`catalog.loader`: resolve a path written in the workflow against the
        workflow's directory, then the cwd; the table is named by the path as
        written, so `--table 'data/x.csv'=other.csv` can rebind it."""
        if path in self.overrides:
            return self.tables[path]
        # the workflow's directory, then the cwd: once each (often the same place)
        candidates = [path] if os.path.isabs(path) else list({
            os.path.abspath(os.path.join(d, path)): os.path.join(d, path) for d in [self.base_dir or ".", "."]
        }.values())
        for candidate in candidates:
            if os.path.exists(candidate):
                key = os.path.abspath(candidate)
                if key not in self._by_path:
                    self._by_path[key] = read_table(path, candidate, path)
                return self._by_path[key]
        if os.path.isabs(path):
            raise DataError(f"table file {path} does not exist")
        if len(candidates) == 1:
            raise DataError(f"table file {path} does not exist (looked for {os.path.abspath(candidates[0])})")
        near, cwd = (os.path.abspath(c) for c in candidates)
        raise DataError(f"table file {path} does not exist (looked for {near} next to the workflow, "
                        f"then {cwd} in the current directory)")


def parse_table_binding(text: str) -> tuple[str, str]:
    """`NAME=PATH` from the command line -> (name, path)."""
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise ValueError(f"expected NAME=PATH, got {text!r}")
    return name.strip(), path.strip()
