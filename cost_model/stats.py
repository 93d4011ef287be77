"""Table and column statistics read cheaply from input files.

The planner needs row counts, row widths and, for joins and group-bys, the
number of distinct values (NDV) of key columns. Reading whole files would
cost as much as running the query, so:

- row counts come from the Parquet footer (exact) or, for CSV, from the file
  size divided by the average line length of the first block;
- column statistics (NDV, min, max, null fraction, average width) come from a
  sample: the first row group of a Parquet file (capped at SAMPLE_ROWS) or the
  first block of a CSV file. NDV is scaled from the sample to the table with
  the GEE estimator (Charikar et al., "Towards estimation error guarantees for
  distinct values", PODS 2000), which is unbiased enough for keys (all values
  unique in the sample -> NDV = rows) and for low-cardinality flags.

Results are cached per (path, size, mtime) and column, so re-planning after
each stage and `explain` over many queries read each footer/sample once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

#: Rows of a sample used for column statistics.
SAMPLE_ROWS = 50_000
#: Bytes of a CSV file read to estimate its line length and column statistics.
CSV_SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class ColumnStats:
    """What a sample says about one column, scaled to the whole table."""

    ndv: float
    null_frac: float
    width: float  # average bytes per value
    min: Any = None
    max: Any = None


@dataclass(frozen=True)
class FileStats:
    rows: int
    bytes_per_row: float  # uncompressed, over all columns


_file_cache: dict[tuple[str, int, int], FileStats] = {}
_column_cache: dict[tuple[str, int, int, str], ColumnStats | None] = {}


def _key(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


def file_stats(path: str, fmt: str) -> FileStats | None:
    """Row count and width of a table file; None if it cannot be read."""
    try:
        key = _key(path)
    except OSError:
        return None
    if key not in _file_cache:
        try:
            _file_cache[key] = _parquet_stats(path) if fmt.lower() == "parquet" else _csv_stats(path)
        except (pa.ArrowException, OSError, ValueError):
            return None
    return _file_cache[key]


def _parquet_stats(path: str) -> FileStats:
    meta = pq.read_metadata(path)
    raw = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    rows = meta.num_rows
    return FileStats(rows, raw / rows if rows else 0.0)


def _csv_sample(path: str) -> pa.Table:
    with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=CSV_SAMPLE_BYTES)) as reader:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return pa.table({n: pa.array([], type=t) for n, t in zip(reader.schema.names, reader.schema.types)})
    return pa.Table.from_batches([batch])


def _csv_stats(path: str) -> FileStats:
    size = os.path.getsize(path)
    sample = _csv_sample(path)
    if sample.num_rows == 0:
        return FileStats(0, 0.0)
    with open(path, "rb") as f:
        head = f.read(CSV_SAMPLE_BYTES)
    lines = max(1, head.count(b"\n") - 1)  # minus the header
    line_bytes = len(head) / (lines + 1)
    rows = sample.num_rows if len(head) >= size else int(size / line_bytes)
    return FileStats(rows, max(1.0, sample.nbytes / sample.num_rows))


def column_stats(path: str, fmt: str, column: str) -> ColumnStats | None:
    """Statistics of one column from a sample, or None when unknown."""
    try:
        key = (*_key(path), column)
    except OSError:
        return None
    if key not in _column_cache:
        try:
            _column_cache[key] = _sample_column(path, fmt, column)
        except (pa.ArrowException, OSError, ValueError, KeyError):
            _column_cache[key] = None
    return _column_cache[key]


def _sample_column(path: str, fmt: str, column: str) -> ColumnStats | None:
    fs = file_stats(path, fmt)
    if fs is None:
        return None
    if fmt.lower() == "parquet":
        pf = pq.ParquetFile(path)
        if pf.metadata.num_row_groups == 0 or column not in pf.schema_arrow.names:
            return None
        # The first batch of the first row group: a cheap, contiguous sample.
        batch = next(pf.iter_batches(batch_size=SAMPLE_ROWS, row_groups=[0], columns=[column]))
        values = batch.column(0)
    else:
        sample = _csv_sample(path)
        if column not in sample.column_names:
            return None
        values = sample.column(column)
    values = values.slice(0, SAMPLE_ROWS)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return summarize(values, fs.rows)


def summarize(values: pa.ChunkedArray | pa.Array, table_rows: int) -> ColumnStats:
    """Scale a sample's statistics to a table of `table_rows` rows."""
    n = len(values)
    if n == 0:
        return ColumnStats(ndv=1.0, null_frac=0.0, width=8.0)
    nulls = values.null_count
    counts = pc.value_counts(pc.drop_null(values)) if nulls < n else None
    ndv = 1.0
    if counts is not None and len(counts):
        freq = counts.field("counts").to_numpy()
        ndv = gee_ndv(int((freq == 1).sum()), len(freq), n - nulls, max(table_rows, n))
    width = values.nbytes / n
    lo = hi = None
    if counts is not None and (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
                               or pa.types.is_temporal(values.type) or pa.types.is_decimal(values.type)):
        mm = pc.min_max(values)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
    return ColumnStats(ndv=ndv, null_frac=nulls / n, width=width, min=lo, max=hi)


def gee_ndv(singletons: int, distinct: int, sample_rows: int, table_rows: int) -> float:
    """GEE: sqrt(N/n) * f1 + (d - f1), clamped to [d, N].

    Values seen once in the sample stand for many unseen ones; values seen
    several times are probably all there is of their kind.
    """
    if sample_rows <= 0:
        return 1.0
    if sample_rows >= table_rows:
        return float(distinct)
    est = math.sqrt(table_rows / sample_rows) * singletons + (distinct - singletons)
    if singletons == distinct:  # every sampled value unique: a key
        est = table_rows * distinct / sample_rows
    return float(min(max(est, distinct), table_rows))


def clear_caches() -> None:
    """Forget cached statistics (tests rewrite files in place)."""
    _file_cache.clear()
    _column_cache.clear()
