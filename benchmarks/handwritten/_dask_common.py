"""What the hand-written dask TPC-H queries share: how they read a table.

The way an experienced dask user reads TPC-H parquet on a small machine:
only the needed columns, pyarrow-backed dtypes, the decimal columns as
float64 (pandas has no fast decimal arithmetic), and
partitions of a fixed number of parquet row groups (dask's default makes one
partition of a single file, which would leave a core idle).
"""

from __future__ import annotations

from pathlib import Path

import dask.dataframe as dd

#: Parquet row groups per partition (DuckDB writes ~122k rows a group:
#: lineitem at SF 1 becomes 5 partitions, orders 2).
ROW_GROUPS_PER_PARTITION = 12


def read(data_dir: str | Path, table: str, columns: list[str], decimals: tuple[str, ...] = ()) -> dd.DataFrame:
    """`columns` of TPC-H `table`, with the `decimals` among them as float64."""
    frame = dd.read_parquet(Path(data_dir) / f"{table}.parquet", columns=columns, dtype_backend="pyarrow",
                            split_row_groups=ROW_GROUPS_PER_PARTITION)
    return frame.astype({name: "float64[pyarrow]" for name in decimals}) if decimals else frame
