"""TPC-H Q1 (pricing summary report), hand-written PySpark."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from benchmarks.handwritten._spark_common import read


def query(spark: SparkSession, data_dir: str | Path) -> DataFrame:
    lineitem = read(spark, data_dir, "lineitem",
                    ["l_returnflag", "l_linestatus", "l_quantity", "l_extendedprice", "l_discount", "l_tax",
                     "l_shipdate"],
                    decimals=("l_quantity", "l_extendedprice", "l_discount", "l_tax"))
    disc_price = F.col("l_extendedprice") * (1 - F.col("l_discount"))
    return (
        lineitem
        .where(F.col("l_shipdate") <= dt.date(1998, 12, 1) - dt.timedelta(days=90))
        .groupBy("l_returnflag", "l_linestatus")
        .agg(
            F.sum("l_quantity").alias("sum_qty"),
            F.sum("l_extendedprice").alias("sum_base_price"),
            F.sum(disc_price).alias("sum_disc_price"),
            F.sum(disc_price * (1 + F.col("l_tax"))).alias("sum_charge"),
            F.avg("l_quantity").alias("avg_qty"),
            F.avg("l_extendedprice").alias("avg_price"),
            F.avg("l_discount").alias("avg_disc"),
            F.count("*").alias("count_order"),
        )
        .orderBy("l_returnflag", "l_linestatus")
    )
