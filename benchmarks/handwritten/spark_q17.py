"""TPC-H Q17 (small-quantity-order revenue), hand-written PySpark.

The correlated subquery (0.2 * the part's average quantity) becomes a
per-part aggregate joined back, as PySpark users usually write it.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.handwritten._spark_common import read


def query(spark: SparkSession, data_dir: str | Path) -> DataFrame:
    part = read(spark, data_dir, "part", ["p_partkey", "p_brand", "p_container"]) \
        .where((F.col("p_brand") == "Brand#23") & (F.col("p_container") == "MED BOX"))
    lineitem = read(spark, data_dir, "lineitem", ["l_partkey", "l_quantity", "l_extendedprice"],
                    decimals=("l_quantity", "l_extendedprice"))
    threshold = (lineitem.groupBy("l_partkey")
                 .agg((0.2 * F.avg("l_quantity")).alias("max_quantity"))
                 .withColumnRenamed("l_partkey", "partkey"))
    return (
        lineitem.join(part, F.col("l_partkey") == F.col("p_partkey"))
        .join(threshold, F.col("p_partkey") == F.col("partkey"))
        .where(F.col("l_quantity") < F.col("max_quantity"))
        .agg((F.sum("l_extendedprice") / 7.0).alias("avg_yearly"))
    )
