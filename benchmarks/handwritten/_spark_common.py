"""What the hand-written PySpark TPC-H queries share: how they read a table.

The way an experienced PySpark user reads TPC-H parquet: `spark.read.parquet`
and only the needed columns, with the decimal columns cast to double -- the
same numbers the generated programs compute with (Spark's DecimalType
arithmetic widens to decimal(38, s) in sums and products, which is several
times slower and not what we compare here).
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def read(spark: SparkSession, data_dir: str | Path, table: str, columns: list[str],
         decimals: tuple[str, ...] = ()) -> DataFrame:
    """`columns` of TPC-H `table`, with the `decimals` among them as doubles."""
    frame = spark.read.parquet(str(Path(data_dir) / f"{table}.parquet"))
    return frame.select([F.col(c).cast("double").alias(c) if c in decimals else F.col(c) for c in columns])
