"""TPC-H Q6 (forecasting revenue change), written by hand with dask.dataframe."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from benchmarks.handwritten._dask_common import read


def query(data_dir: str) -> pd.DataFrame:
    li = read(data_dir, "lineitem", ["l_shipdate", "l_discount", "l_quantity", "l_extendedprice"],
              decimals=("l_discount", "l_quantity", "l_extendedprice"))
    li = li[(li.l_shipdate >= dt.date(1994, 1, 1)) & (li.l_shipdate < dt.date(1995, 1, 1))
            & (li.l_discount >= 0.05) & (li.l_discount <= 0.07) & (li.l_quantity < 24)]
    revenue = (li.l_extendedprice * li.l_discount).sum().compute()
    return pd.DataFrame({"revenue": [revenue]})
