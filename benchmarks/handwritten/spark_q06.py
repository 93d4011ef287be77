"""TPC-H Q6 (forecasting revenue change), hand-written PySpark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.handwritten._spark_common import read


def query(spark: SparkSession, data_dir: str | Path) -> DataFrame:
    lineitem = read(spark, data_dir, "lineitem", ["l_extendedprice", "l_discount", "l_quantity", "l_shipdate"],
                    decimals=("l_extendedprice", "l_discount", "l_quantity"))
    return (
        lineitem
        .where((F.col("l_shipdate") >= dt.date(1994, 1, 1)) & (F.col("l_shipdate") < dt.date(1995, 1, 1))
               & F.col("l_discount").between(0.05, 0.07) & (F.col("l_quantity") < 24))
        .agg(F.sum(F.col("l_extendedprice") * F.col("l_discount")).alias("revenue"))
    )
