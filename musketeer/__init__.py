"""Musketeer: write a data workflow once, run it on the engine that suits it.

The Python API (`from musketeer import read, col, pagerank`) is imported
lazily, so the CLI does not pay for it when it runs a SQL file.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["Dataset", "read", "table", "catalog_scope"], "musketeer.dataset"),
    **dict.fromkeys(["col", "lit", "count", "when", "coalesce", "Column", "GroupBy", "LinqError", "row_number",
                     "rank", "dense_rank", "percent_rank", "cume_dist", "ntile"],
                    "musketeer.frontends.linq"),
    **dict.fromkeys(["vertex_program", "pagerank", "sssp", "connected_components"], "musketeer.frontends.graph"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'musketeer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
