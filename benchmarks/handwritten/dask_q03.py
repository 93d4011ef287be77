"""TPC-H Q3 (shipping priority), written by hand with dask.dataframe."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from benchmarks.handwritten._dask_common import read

DAY = dt.date(1995, 3, 15)


def query(data_dir: str) -> pd.DataFrame:
    customer = read(data_dir, "customer", ["c_custkey", "c_mktsegment"])
    customer = customer[customer.c_mktsegment == "BUILDING"]
    orders = read(data_dir, "orders", ["o_orderkey", "o_custkey", "o_orderdate", "o_shippriority"])
    orders = orders[orders.o_orderdate < DAY]
    lineitem = read(data_dir, "lineitem", ["l_orderkey", "l_extendedprice", "l_discount", "l_shipdate"],
                    decimals=("l_extendedprice", "l_discount"))
    lineitem = lineitem[lineitem.l_shipdate > DAY]
    joined = (customer.merge(orders, left_on="c_custkey", right_on="o_custkey")
              .merge(lineitem, left_on="o_orderkey", right_on="l_orderkey"))
    joined = joined.assign(revenue=joined.l_extendedprice * (1 - joined.l_discount))
    revenue = joined.groupby(["l_orderkey", "o_orderdate", "o_shippriority"]).revenue.sum().reset_index()
    top = revenue.nlargest(10, "revenue").compute()
    top = top.sort_values(["revenue", "o_orderdate"], ascending=[False, True], ignore_index=True)
    return top[["l_orderkey", "revenue", "o_orderdate", "o_shippriority"]]
