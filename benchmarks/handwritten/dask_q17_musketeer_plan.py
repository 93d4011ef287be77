"""TPC-H Q17 by hand with dask.dataframe, following Musketeer's plan instead
of dask_q17.py's: the wanted parts are picked first and used twice, to join
with lineitem and, as an IN list, to restrict the lineitem rows whose
average quantity is taken (the magic-set restriction of the decorrelated
subquery); then the averages are joined back. It separates what the plan
costs from what the generated code costs."""

from __future__ import annotations

import pandas as pd

from benchmarks.handwritten._dask_common import read


def query(data_dir: str) -> pd.DataFrame:
    lineitem = read(data_dir, "lineitem", ["l_partkey", "l_quantity", "l_extendedprice"],
                    decimals=("l_quantity", "l_extendedprice")).persist()
    part = read(data_dir, "part", ["p_partkey", "p_brand", "p_container"])
    part = part[(part.p_brand == "Brand#23") & (part.p_container == "MED BOX")][["p_partkey"]].compute()
    items = lineitem.merge(part, left_on="l_partkey", right_on="p_partkey")
    wanted = lineitem[lineitem.l_partkey.isin(part.p_partkey.dropna().unique().tolist())]
    threshold = (wanted.groupby("l_partkey").l_quantity.mean() * 0.2).rename("value").reset_index()
    items = items.merge(threshold, left_on="p_partkey", right_on="l_partkey", suffixes=("", "_avg"))
    total = items[items.l_quantity < items.value].l_extendedprice.sum().compute()
    return pd.DataFrame({"avg_yearly": [total / 7.0]})
