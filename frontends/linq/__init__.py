"""LINQ-style Python frontend: build a workflow by chaining Dataset methods.

    from musketeer.frontends.linq import col, count
    big = orders.where(lambda o: o.total > 100).group_by("region").agg(n=count())

Nothing runs here: a `Dataset` wraps the IR operator that computes it
(`.op`, `.to_workflow()`), and the glue (`musketeer.Dataset`) adds
`collect()`, `run()`, `explain()` and `compile()`. This package imports only
`ir`; reading a file's schema is delegated to a loader the glue passes in.
"""

from musketeer.frontends.linq.columns import Column, SortOrder, coalesce, col, count, lit, to_schema, to_type, when
from musketeer.frontends.linq.dataset import Dataset, Row, from_table, read
from musketeer.frontends.linq.errors import LinqError
from musketeer.frontends.linq.grouping import GroupBy
from musketeer.frontends.linq.windows import cume_dist, dense_rank, ntile, percent_rank, rank, row_number

__all__ = [
    "Column", "Dataset", "GroupBy", "LinqError", "Row", "SortOrder", "coalesce", "col", "count", "from_table",
    "lit", "read", "to_schema", "to_type", "when", "row_number", "rank", "dense_rank", "percent_rank",
    "cume_dist", "ntile",
]
