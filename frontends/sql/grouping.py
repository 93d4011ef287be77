"""GROUPING SETS, ROLLUP and CUBE, and GROUPING().

A GROUP BY with grouping sets is lowered to one `Aggregate` per set over the
same (shared) input, each projected to every key of the query (NULL for the
keys its set does not group by) plus one constant column per GROUPING(...)
call, and the projections are combined with UNION ALL. Every engine runs
that as it is; nothing new is needed in the IR.

Expansion follows SQL: the GROUP BY items are combined by cross product;
`ROLLUP (a, b)` is the sets (a, b), (a), (); `CUBE (a, b)` every subset;
`GROUPING SETS (...)` lists sets (each a column, a parenthesised list, or a
nested ROLLUP/CUBE); a plain item is in every set. Duplicate sets give
duplicate rows, as in SQL. GROUPING(a, b) is a bit per argument, most
significant first, set when the argument is *not* grouped in that row's set.
"""

from __future__ import annotations

import itertools

from sqlglot import exp

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import INT64

Sets = list[list[exp.Expression]]


def expand_group(group: exp.Group | None) -> tuple[list[exp.Expression], list[list[int]] | None]:
    """The distinct key expressions, and the grouping sets as index lists
    into them (None for a plain GROUP BY)."""
    items = list(group.expressions) if group is not None else []
    if not any(isinstance(i, (exp.Rollup, exp.Cube, exp.GroupingSets)) for i in items):
        return items, None
    combined: Sets = [[]]
    for item in items:
        combined = [a + b for a, b in itertools.product(combined, _sets_of(item))]
    keys: list[exp.Expression] = []
    index: dict[str, int] = {}
    out: list[list[int]] = []
    for s in combined:
        members: list[int] = []
        for node in s:
            text = node.sql()
            if text not in index:
                index[text] = len(keys)
                keys.append(node)
            if index[text] not in members:
                members.append(index[text])
        out.append(members)
    return keys, out


def _sets_of(item: exp.Expression) -> Sets:
    if isinstance(item, exp.Rollup):
        cols = [_flat(e) for e in item.expressions]
        return [sum(cols[:n], []) for n in range(len(cols), -1, -1)]
    if isinstance(item, exp.Cube):
        cols = [_flat(e) for e in item.expressions]
        out: Sets = []
        for mask in range(2 ** len(cols) - 1, -1, -1):  # full set first, () last
            out.append(sum((c for i, c in enumerate(cols) if mask & (1 << (len(cols) - 1 - i))), []))
        return out
    if isinstance(item, exp.GroupingSets):
        sets: Sets = []
        for e in item.expressions:
            if isinstance(e, (exp.Rollup, exp.Cube, exp.GroupingSets)):
                sets.extend(_sets_of(e))
            else:
                sets.append(_flat(e))
        return sets
    return [[item]]


def _flat(e: exp.Expression) -> list[exp.Expression]:
    """A set element: `a`, `(a)`, `(a, b)` or `()`."""
    if isinstance(e, exp.Paren):
        return _flat(e.this)
    if isinstance(e, exp.Tuple):
        return [x for part in e.expressions for x in _flat(part)]
    return [e]


def grouping_bits(args: list[str], grouped: set[str]) -> int:
    """GROUPING(args) for a row of the set that groups by `grouped`."""
    value = 0
    for name in args:
        value = (value << 1) | (0 if name in grouped else 1)
    return value


def grouping_sets_op(pre: O.Op, keys: list[str], sets: list[list[int]], aggs: tuple,
                     groupings: list[tuple[str, list[str]]]) -> O.Op:
    """UNION ALL over the sets of (Aggregate -> Project with NULL keys)."""
    result: O.Op | None = None
    for members in sets:
        grouped = [keys[i] for i in members]
        agg = O.Aggregate(pre, tuple(dict.fromkeys(grouped)), aggs)
        exprs: list[tuple[str, E.Expr]] = []
        for k in keys:
            exprs.append((k, E.Col(k) if k in grouped else E.Cast(E.Lit.of(None), pre.schema.dtype(k))))
        exprs += [(name, E.Col(name)) for name, _ in aggs]
        exprs += [(name, E.Lit(grouping_bits(args, set(grouped)), INT64)) for name, args in groupings]
        part = O.Project(agg, tuple(exprs))
        result = part if result is None else O.Union(result, part, distinct=False)
    assert result is not None
    return result
