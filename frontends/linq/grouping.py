"""Lowering `group_by(...).agg(...)` to Project -> Aggregate -> Project.

The IR's Aggregate only groups by columns and aggregates columns, so key
and argument expressions (`o.date.year()`, `l.price * (1 - l.disc)`) are
computed by a Project first; outputs that combine aggregates
(`x.sum() / y.count()`) by a Project after. Identical aggregates are
computed once.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from musketeer.ir import expr as E
from musketeer.ir import operators as O

from musketeer.frontends.linq.columns import AggMarker, Column, display, has_aggregate
from musketeer.frontends.linq.dataset import Dataset, call_user, fresh_name
from musketeer.frontends.linq.errors import LinqError, located

D = TypeVar("D", bound=Dataset)


class GroupBy(Generic[D]):
    """A dataset with grouping keys, waiting for `.agg(...)`."""

    def __init__(self, data: D, keys: list[tuple[str, E.Expr]]) -> None:
        self.data = data
        self.keys = keys

    def __repr__(self) -> str:
        return f"<GroupBy {', '.join(n for n, _ in self.keys)} of {self.data!r}>"

    @located
    def agg(self, *aggregates: Any, **named: Any) -> D:
        """One row per group: the keys, then each aggregate output in order.

        Outputs are named by keyword or `.alias()`; an unnamed aggregate of
        a plain column is called `<func>_<column>` (`count()` is `count`).
        """
        data = self.data
        outputs: list[tuple[str, E.Expr]] = []
        for item in aggregates:
            if callable(item) and not isinstance(item, Column):
                item = call_user(item, [data.row()], "agg()")
            if not isinstance(item, Column):
                raise LinqError(f"agg(): expected an aggregate expression such as x.sum() or count(), got {item!r}")
            e = data.expr(item, "agg()", allow_aggregates=True)
            outputs.append((item.name or _default_name(e), e))
        for name, value in named.items():
            outputs.append((name, data.expr(value, "agg()", allow_aggregates=True)))
        if not outputs and not self.keys:
            raise LinqError("agg() needs at least one aggregate")
        names = [n for n, _ in self.keys] + [n for n, _ in outputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise LinqError(f"agg(): output column{'s' if len(dupes) > 1 else ''} {dupes} produced twice; "
                            "name the outputs with keywords")
        return _lower(data, self.keys, outputs)


def _default_name(e: E.Expr) -> str:
    if not has_aggregate(e):
        raise LinqError(f"agg(): ({display(e)}) is not an aggregate; use e.g. .sum(), .max() or count() "
                        "(group keys go in group_by())")
    if isinstance(e, AggMarker):
        if e.func == "count_star":
            return "count"
        if isinstance(e.arg, E.Col):
            return f"{'count_distinct' if e.distinct else e.func}_{e.arg.name}"
    raise LinqError(f"agg(): the expression ({display(e)}) needs a name: use .alias('name') or name=...")


def _lower(data: D, keys: list[tuple[str, E.Expr]], outputs: list[tuple[str, E.Expr]]) -> D:
    schema = data.schema
    taken = set(schema.names) | {n for n, _ in keys} | {n for n, _ in outputs}
    pre: dict[str, E.Expr] = {}  # pre-projection column -> expression

    def pre_column(e: E.Expr, hint: str) -> str:
        for name, x in pre.items():
            if x == e:
                return name
        reuse = isinstance(e, E.Col) and e.name == hint and hint not in pre  # a plain column keeps its name
        name = hint if reuse else fresh_name(hint, taken | set(pre))
        pre[name] = e
        taken.add(name)
        return name

    key_names = []
    for name, e in keys:
        if has_aggregate(e):
            raise LinqError(f"group_by(): aggregate in a key ({display(e)})")
        if name in pre:
            raise LinqError(f"group_by(): key {name!r} given twice")
        pre[name] = e
        key_names.append(name)

    aggs: dict[tuple[str, str | None, bool], str] = {}  # (func, arg column, distinct) -> output
    agg_list: list[tuple[str, E.AggCall]] = []

    def lift(marker: AggMarker, prefer: str | None) -> str:
        arg = None
        if marker.arg is not None:
            if has_aggregate(marker.arg):
                raise LinqError(f"agg(): aggregates cannot be nested: {display(marker)}")
            hint = marker.arg.name if isinstance(marker.arg, E.Col) else f"__{marker.func}_arg"
            arg = pre_column(marker.arg, hint)
        key = (marker.func, arg, marker.distinct)
        if key not in aggs:
            out = prefer if prefer is not None and prefer not in {n for n, _ in agg_list} else \
                fresh_name(f"__agg{len(agg_list)}", taken)
            taken.add(out)
            aggs[key] = out
            agg_list.append((out, E.AggCall(marker.func, arg, marker.distinct)))
        return aggs[key]

    post: list[tuple[str, E.Expr]] = [(k, E.Col(k)) for k in key_names]
    for name, e in outputs:
        if isinstance(e, AggMarker):
            post.append((name, E.Col(lift(e, name))))
            continue
        key_of = {x: k for k, x in keys}

        def to_post(n: E.Expr) -> E.Expr:
            if isinstance(n, AggMarker):
                return E.Col(lift(n, None))
            if n in key_of:
                return E.Col(key_of[n])
            if isinstance(n, E.Col):
                raise LinqError(f"agg(): column {n.name!r} in ({display(e)}) is neither a group_by key nor "
                                "inside an aggregate")
            return n.map_children(to_post)

        post.append((name, to_post(e)))

    # Every column the pre-projection reads must exist; plain key columns need no projection.
    for name, x in pre.items():
        x.type_in(schema)
    identity = all(isinstance(x, E.Col) and x.name == n for n, x in pre.items())
    source: O.Op = data.op if identity else O.Project(data.op, tuple(pre.items()))
    agg_op = O.Aggregate(source, tuple(key_names), tuple(agg_list))
    rename = {k: k for k in key_names if isinstance(pre[k], E.Col)}
    lineage = data.lineage_through({pre[k].name: k for k in rename})  # type: ignore[attr-defined]
    out = data._new(agg_op, lineage)
    if [n for n, _ in post] == list(agg_op.schema.names) and all(
            isinstance(x, E.Col) and x.name == n for n, x in post):
        return out
    return out._new(O.Project(agg_op, tuple(post)), out.lineage_through({k: k for k in key_names}))
