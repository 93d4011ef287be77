"""TPC-H Q1 (pricing summary report), written by hand with dask.dataframe."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from benchmarks.handwritten._dask_common import read


def query(data_dir: str) -> pd.DataFrame:
    li = read(data_dir, "lineitem",
              ["l_returnflag", "l_linestatus", "l_quantity", "l_extendedprice", "l_discount", "l_tax", "l_shipdate"],
              decimals=("l_quantity", "l_extendedprice", "l_discount", "l_tax"))
    li = li[li.l_shipdate <= dt.date(1998, 9, 2)]
    li = li.assign(disc_price=li.l_extendedprice * (1 - li.l_discount))
    li = li.assign(charge=li.disc_price * (1 + li.l_tax))
    out = li.groupby(["l_returnflag", "l_linestatus"]).agg(
        sum_qty=("l_quantity", "sum"),
        sum_base_price=("l_extendedprice", "sum"),
        sum_disc_price=("disc_price", "sum"),
        sum_charge=("charge", "sum"),
        avg_qty=("l_quantity", "mean"),
        avg_price=("l_extendedprice", "mean"),
        avg_disc=("l_discount", "mean"),
        count_order=("l_quantity", "size"),
    ).compute()
    return out.reset_index().sort_values(["l_returnflag", "l_linestatus"], ignore_index=True)
