"""TPC-H Q17 (small-quantity-order revenue), written by hand with dask.dataframe."""

from __future__ import annotations

import pandas as pd

from benchmarks.handwritten._dask_common import read


def query(data_dir: str) -> pd.DataFrame:
    part = read(data_dir, "part", ["p_partkey", "p_brand", "p_container"])
    part = part[(part.p_brand == "Brand#23") & (part.p_container == "MED BOX")][["p_partkey"]]
    lineitem = read(data_dir, "lineitem", ["l_partkey", "l_quantity", "l_extendedprice"],
                    decimals=("l_quantity", "l_extendedprice"))
    # The selected parts are few: merging with them first leaves only their line items.
    items = lineitem.merge(part, left_on="l_partkey", right_on="p_partkey")
    average = items.groupby("l_partkey").l_quantity.mean().rename("avg_quantity").reset_index()
    items = items.merge(average, on="l_partkey")
    small = items[items.l_quantity < 0.2 * items.avg_quantity]
    total = small.l_extendedprice.sum().compute()
    return pd.DataFrame({"avg_yearly": [total / 7.0]})
