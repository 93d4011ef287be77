"""ORDER BY keys as the runtime sort helpers of the pandas/pyarrow engines take them."""

from __future__ import annotations

from musketeer.ir import operators as O


def sort_key_specs(keys: tuple[O.SortKey, ...]) -> list[tuple[str, str, str]]:
    """(column, 'ascending'|'descending', 'first'|'last' for NULLs) per key.

    Every key carries its own NULL placement: SQL allows `a NULLS FIRST, b
    NULLS LAST`, while pandas and pyarrow take one placement for all keys,
    so the runtime sorts on a NULL flag per key (see `sort_rows`).
    """
    return [(k.column, "ascending" if k.ascending else "descending", "first" if k.nulls_first else "last")
            for k in keys]
