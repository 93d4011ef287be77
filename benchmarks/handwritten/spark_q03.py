"""TPC-H Q3 (shipping priority), hand-written PySpark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.handwritten._spark_common import read


def query(spark: SparkSession, data_dir: str | Path) -> DataFrame:
    day = dt.date(1995, 3, 15)
    customer = read(spark, data_dir, "customer", ["c_custkey", "c_mktsegment"]) \
        .where(F.col("c_mktsegment") == "BUILDING")
    orders = read(spark, data_dir, "orders", ["o_orderkey", "o_custkey", "o_orderdate", "o_shippriority"]) \
        .where(F.col("o_orderdate") < day)
    lineitem = read(spark, data_dir, "lineitem", ["l_orderkey", "l_extendedprice", "l_discount", "l_shipdate"],
                    decimals=("l_extendedprice", "l_discount")) \
        .where(F.col("l_shipdate") > day)
    return (
        customer.join(orders, F.col("c_custkey") == F.col("o_custkey"))
        .join(lineitem, F.col("o_orderkey") == F.col("l_orderkey"))
        .groupBy("l_orderkey", "o_orderdate", "o_shippriority")
        .agg(F.sum(F.col("l_extendedprice") * (1 - F.col("l_discount"))).alias("revenue"))
        .select("l_orderkey", "revenue", "o_orderdate", "o_shippriority")
        .orderBy(F.col("revenue").desc(), F.col("o_orderdate"))
        .limit(10)
    )
