"""TPC-H Q18 (large volume customer), hand-written PySpark."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.handwritten._spark_common import read


def query(spark: SparkSession, data_dir: str | Path) -> DataFrame:
    customer = read(spark, data_dir, "customer", ["c_custkey", "c_name"])
    orders = read(spark, data_dir, "orders", ["o_orderkey", "o_custkey", "o_totalprice", "o_orderdate"],
                  decimals=("o_totalprice",))
    lineitem = read(spark, data_dir, "lineitem", ["l_orderkey", "l_quantity"], decimals=("l_quantity",))
    large = (lineitem.groupBy("l_orderkey").agg(F.sum("l_quantity").alias("total"))
             .where(F.col("total") > 300).select(F.col("l_orderkey").alias("large_orderkey")))
    return (
        customer.join(orders, F.col("c_custkey") == F.col("o_custkey"))
        .join(large, F.col("o_orderkey") == F.col("large_orderkey"), "left_semi")
        .join(lineitem, F.col("o_orderkey") == F.col("l_orderkey"))
        .groupBy("c_name", "c_custkey", "o_orderkey", "o_orderdate", "o_totalprice")
        .agg(F.sum("l_quantity").alias("sum_qty"))
        .orderBy(F.col("o_totalprice").desc(), F.col("o_orderdate"))
        .limit(100)
    )
