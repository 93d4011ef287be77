"""TPC-H Q18 (large volume customer), written by hand with dask.dataframe."""

from __future__ import annotations

import pandas as pd

from benchmarks.handwritten._dask_common import read


def query(data_dir: str) -> pd.DataFrame:
    lineitem = read(data_dir, "lineitem", ["l_orderkey", "l_quantity"], decimals=("l_quantity",))
    lineitem = lineitem.persist()  # read twice below
    per_order = lineitem.groupby("l_orderkey").l_quantity.sum()
    large = per_order[per_order > 300].reset_index()[["l_orderkey"]]
    orders = read(data_dir, "orders", ["o_orderkey", "o_custkey", "o_orderdate", "o_totalprice"],
                  decimals=("o_totalprice",))
    orders = orders.merge(large, left_on="o_orderkey", right_on="l_orderkey").drop(columns="l_orderkey")
    customer = read(data_dir, "customer", ["c_custkey", "c_name"])
    joined = (orders.merge(customer, left_on="o_custkey", right_on="c_custkey")
              .merge(lineitem, left_on="o_orderkey", right_on="l_orderkey"))
    keys = ["c_name", "c_custkey", "o_orderkey", "o_orderdate", "o_totalprice"]
    totals = joined.groupby(keys).l_quantity.sum().rename("sum").reset_index()
    top = totals.nlargest(100, "o_totalprice").compute()
    return top.sort_values(["o_totalprice", "o_orderdate"], ascending=[False, True], ignore_index=True)
