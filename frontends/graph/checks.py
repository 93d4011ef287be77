"""Run-time checks of edge lists, applied as pass-through partition UDFs.

A schema says a weight column is numeric; only the data says whether a
weight is negative or an endpoint is missing. These functions run inside
the generated program (imported as `frontends.graph.checks:<name>`, so any
backend that runs partition UDFs runs them), see each partition of the
normalised edge relation (columns src, dst[, weight]) and raise
`ir.DataError` naming the first offending edge. They return their input
unchanged.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from musketeer.ir.types import DataError


def _first(frame: pd.DataFrame, mask: Any) -> str:
    """'3 -> 7 (weight -2.5)' for the first row where mask holds."""
    mask = pd.Series(mask, index=frame.index).fillna(False).astype(bool)
    first = {name: frame[name][mask].iloc[0] for name in frame.columns}  # per column: keeps each type

    def show(value: Any) -> str:
        missing = value is None or value is pd.NA or (isinstance(value, float) and value != value)
        return "NULL" if missing else str(value)

    text = f"{show(first['src'])} -> {show(first['dst'])}"
    return text + (f" (weight {show(first['weight'])})" if "weight" in first else "")


def _count(mask: Any) -> int:
    return int(pd.Series(mask).fillna(False).astype(bool).sum())


def check_edges(frame: pd.DataFrame) -> pd.DataFrame:
    """Every edge has both endpoints and (when weighted) a weight."""
    for column, what in (("src", "source"), ("dst", "destination")):
        missing = frame[column].isna()
        if missing.any():
            raise DataError(f"edge list: {_count(missing)} edge(s) have no {what} vertex (NULL {column}), "
                            f"e.g. {_first(frame, missing)}")
    if "weight" in frame.columns:
        missing = frame["weight"].isna()
        if missing.any():
            raise DataError(f"edge list: {_count(missing)} edge(s) have no weight, e.g. {_first(frame, missing)}")
    return frame


def check_nonnegative_edges(frame: pd.DataFrame) -> pd.DataFrame:
    """`check_edges`, and no weight is negative (shortest paths and
    PageRank are not defined for them here)."""
    check_edges(frame)
    if "weight" in frame.columns:
        negative = frame["weight"] < 0
        if negative.fillna(False).any():
            raise DataError(f"edge list: {_count(negative)} edge(s) have a negative weight, e.g. "
                            f"{_first(frame, negative)}; this algorithm needs weights >= 0")
    return frame


def check_source_vertex(frame: pd.DataFrame) -> pd.DataFrame:
    """The one-row (__found, __source) relation a program with a required
    vertex (sssp's source) builds: fail when the vertex set held no such
    vertex, instead of answering with an empty result."""
    for found, source in zip(frame["__found"], frame["__source"]):
        if found is None or found is pd.NA or found != found or int(found) == 0:
            raise DataError(f"sssp: source vertex {source!r} is not in the graph (no edge starts or ends there)")
    return frame
