"""In-memory frames as tables: `musketeer.read(pandas.DataFrame)`, etc.

Every engine reads tables from files, and a compiled program is a
standalone script that reads its inputs by path, so a frame becomes a file:
it is converted to Arrow (pandas through `pyarrow.Table.from_pandas`,
polars through `to_arrow`), its column types are checked the way a file's
are (an unsupported type names the column), and it is written once as
Parquet into a temporary directory owned by this process, removed at exit.
The file name is a hash of the content, so reading the same frame twice
writes it once.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from musketeer.catalog import read_table, schema_from_arrow
from musketeer.ir import DataError, IRError, Table

_DIR: str | None = None


def _directory() -> str:
    global _DIR
    if _DIR is None or not os.path.isdir(_DIR):
        _DIR = tempfile.mkdtemp(prefix="musketeer-frames-")
        atexit.register(shutil.rmtree, _DIR, True)
    return _DIR


def to_arrow(frame: Any) -> pa.Table:
    """A pyarrow Table from a pandas/polars frame or an Arrow table/batch;
    IRError (a user error) for anything else."""
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    module = type(frame).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(frame, pd.Series):
            frame = frame.to_frame()
        if isinstance(frame, pd.DataFrame):
            try:
                return pa.Table.from_pandas(frame, preserve_index=None)
            except (pa.ArrowException, TypeError, ValueError) as e:
                raise DataError(f"cannot convert the pandas DataFrame to Arrow: {' '.join(str(e).split())}") from None
    if module == "polars":
        if hasattr(frame, "collect") and not hasattr(frame, "to_arrow"):  # a LazyFrame
            frame = frame.collect()
        if hasattr(frame, "to_arrow"):
            return frame.to_arrow()
    raise IRError(f"read() takes a path to a .csv or .parquet file, a pandas DataFrame, a pyarrow Table or a "
                  f"polars DataFrame; got {type(frame).__module__}.{type(frame).__qualname__}")


def frame_table(frame: Any, name: str | None = None) -> Table:
    """The catalog Table of an in-memory frame (written as Parquet once)."""
    table = to_arrow(frame)
    for field in table.schema:
        if not isinstance(field.name, str) or not field.name:
            raise DataError(f"read(): column names must be non-empty strings, got {field.name!r}")
    schema_from_arrow(table.schema, "read() frame")  # unsupported column types: one line naming the column
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue()
    digest = hashlib.sha256(data.to_pybytes()).hexdigest()[:16]
    table_name = name or f"frame_{digest[:8]}"
    if not table_name.isidentifier():
        raise IRError(f"read(name=...): a table name must be an identifier, got {table_name!r}")
    path = os.path.join(_directory(), f"{table_name}_{digest}.parquet")
    if not os.path.exists(path):
        partial = path + ".partial"
        with open(partial, "wb") as handle:
            handle.write(data.to_pybytes())
        os.replace(partial, path)
    return read_table(table_name, path, f"<frame {table_name}>.parquet")
