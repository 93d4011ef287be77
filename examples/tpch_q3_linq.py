"""TPC-H Q3 (shipping priority) written with the LINQ API.

    python -c "from tests import tpch; tpch.generate(0.01, 'tpch-data')"   # needs the dev extras
    musketeer run examples/tpch_q3_linq.py --data-dir tpch-data

The same query as the standard SQL text:

    SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue,
           o_orderdate, o_shippriority
    FROM customer, orders, lineitem
    WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey
      AND l_orderkey = o_orderkey AND o_orderdate < DATE '1995-03-15'
      AND l_shipdate > DATE '1995-03-15'
    GROUP BY l_orderkey, o_orderdate, o_shippriority
    ORDER BY revenue DESC, o_orderdate
    LIMIT 10;
"""

from __future__ import annotations

import datetime as dt

from musketeer import Dataset, col, table


def q3(customer: Dataset, orders: Dataset, lineitem: Dataset, segment: str = "BUILDING",
       day: dt.date = dt.date(1995, 3, 15)) -> Dataset:
    buyers = customer.where(customer.c_mktsegment == segment)
    early = orders.where(orders.o_orderdate < day)
    late = lineitem.where(lineitem.l_shipdate > day)
    return (buyers.join(early, left_on="c_custkey", right_on="o_custkey")
            .join(late, left_on="o_orderkey", right_on="l_orderkey")
            .group_by("l_orderkey", "o_orderdate", "o_shippriority")
            .agg(revenue=(late.l_extendedprice * (1 - late.l_discount)).sum())
            .select("l_orderkey", "revenue", "o_orderdate", "o_shippriority")
            .order_by(col("revenue").desc(), "o_orderdate")
            .limit(10))


workflow = q3(table("customer"), table("orders"), table("lineitem"))
