"""TPC-H Q18 by hand with dask.dataframe, following Musketeer's plan instead
of the shortcut in dask_q18.py: customer, orders and lineitem are joined
first and the large orders picked afterwards (a semi join). It separates
what the plan costs from what the generated code costs."""

from __future__ import annotations

import pandas as pd

from benchmarks.handwritten._dask_common import read


def query(data_dir: str) -> pd.DataFrame:
    lineitem = read(data_dir, "lineitem", ["l_orderkey", "l_quantity"], decimals=("l_quantity",)).persist()
    customer = read(data_dir, "customer", ["c_custkey", "c_name"])
    orders = read(data_dir, "orders", ["o_orderkey", "o_custkey", "o_orderdate", "o_totalprice"],
                  decimals=("o_totalprice",))
    joined = (customer.merge(orders, left_on="c_custkey", right_on="o_custkey")
              .merge(lineitem, left_on="o_orderkey", right_on="l_orderkey"))
    per_order = lineitem.groupby("l_orderkey").l_quantity.sum()
    large = per_order[per_order > 300].index.compute()
    joined = joined[joined.o_orderkey.isin(list(large))]
    keys = ["c_name", "c_custkey", "o_orderkey", "o_orderdate", "o_totalprice"]
    totals = joined.groupby(keys).l_quantity.sum().rename("sum").reset_index()
    top = totals.nlargest(100, "o_totalprice").compute()
    return top.sort_values(["o_totalprice", "o_orderdate"], ascending=[False, True], ignore_index=True)
