"""Window functions in the Python API.

    orders.with_columns(
        rn=row_number().over(partition_by="customer_id", order_by=col("amount").desc()),
        moving=col("amount").sum().over(order_by="order_id", rows=(-2, 0)),
        prev=col("amount").lag(1, default=0.0).over(order_by="order_id"),
    )

An aggregate (`.sum()`, `.mean()`, `.count()`, `count()`, ...) or a window
function (`row_number()`, `.lag()`, ...) followed by `.over(...)` is a
`WindowMarker`, a frontend-only expression node; `select()` and
`with_columns()` lift every marker into an `ir` Window operator (one per
distinct partition + order) and put a column reference in its place, as
`agg()` does with aggregates. Frames: `rows=`, `range=` or `groups=` a pair
`(start, end)` of offsets from the current row (negative: preceding, 0:
current row, positive: following, None: unbounded); SQL's defaults apply
without one (with order_by: up to the current row's last peer; without:
the whole partition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir import window as W
from musketeer.ir.schema import Schema
from musketeer.ir.types import DataType

from musketeer.frontends.linq.columns import AggMarker, Column, SortOrder, col, display
from musketeer.frontends.linq.errors import LinqError

_NO_ARG = ("row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile")


@dataclass(frozen=True)
class WindowMarker(E.Expr):
    """A window function call; `bound` once `.over()` gave its window."""

    func: str
    arg: E.Expr | None = None
    params: tuple[Any, ...] = ()
    distinct: bool = False
    partition: tuple[E.Expr, ...] = ()
    order: tuple[E.Expr, ...] = ()
    ascending: tuple[bool, ...] = ()
    nulls_first: tuple[bool, ...] = ()
    frame: W.Frame | None = None
    bound: bool = False

    def call(self, arg: str | None) -> W.WindowCall:
        return W.WindowCall(self.func, arg, self.params, self.frame, self.distinct)

    def type_in(self, schema: Schema) -> DataType:
        if not self.bound:
            raise LinqError(f"{self.func}() needs .over(...): the window it is computed over")
        if self.arg is None:
            return self.call(None).result_type(schema)
        t = self.arg.type_in(schema)
        return self.call("__arg").result_type(Schema.of([("__arg", t)]))


def _pending(func: str, arg: Column | None = None, params: tuple[Any, ...] = ()) -> Column:
    expr = WindowMarker(func, arg.expr if arg is not None else None, params)
    return Column(expr, None, arg.origins if arg is not None else ())


def row_number() -> Column:
    """ROW_NUMBER() (call .over(order_by=...))."""
    return _pending("row_number")


def rank() -> Column:
    return _pending("rank")


def dense_rank() -> Column:
    return _pending("dense_rank")


def percent_rank() -> Column:
    return _pending("percent_rank")


def cume_dist() -> Column:
    return _pending("cume_dist")


def ntile(buckets: int) -> Column:
    if not isinstance(buckets, int) or isinstance(buckets, bool) or buckets < 1:
        raise LinqError(f"ntile() needs a positive whole number of buckets, got {buckets!r}")
    return _pending("ntile", None, (buckets,))


def offset_function(column: Column, func: str, offset: int, default: Any) -> Column:
    """`column.lag(offset, default)` / `.lead(...)`."""
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise LinqError(f"{func}() needs a non-negative whole-number offset, got {offset!r}")
    if isinstance(default, Column):
        raise LinqError(f"{func}() default must be a constant, not a column expression")
    return _pending(func, column, (offset, default))


def value_function(column: Column, func: str, n: int | None = None) -> Column:
    """`column.first_value()`, `.last_value()`, `.nth_value(n)`."""
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise LinqError(f"nth_value() needs a positive whole-number position, got {n!r}")
    return _pending(func, column, (n,) if n is not None else ())


def _bound(value: Any, is_start: bool, what: str) -> W.FrameBound:
    if value is None:
        return W.FrameBound("unbounded_preceding" if is_start else "unbounded_following")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LinqError(f"{what}: a frame bound is an offset (negative: preceding, 0: current row, positive: "
                        f"following) or None (unbounded), not {value!r}")
    if value == 0:
        return W.FrameBound("current_row")
    return W.FrameBound("preceding" if value < 0 else "following", abs(value))


def over(column: Column, partition_by: Any = (), order_by: Any = (), rows: Any = None, range: Any = None,
         groups: Any = None) -> Column:
    """The window a window function or aggregate is computed over."""
    e = column.expr
    if isinstance(e, AggMarker):
        func = e.func
        marker = WindowMarker(func, e.arg, (), e.distinct)
    elif isinstance(e, WindowMarker) and not e.bound:
        marker = e
    else:
        raise LinqError(f".over() applies to an aggregate (.sum(), count(), ...) or a window function "
                        f"(row_number(), .lag(), ...), not to ({display(e)})")
    specs = [(k, v) for k, v in (("rows", rows), ("range", range), ("groups", groups)) if v is not None]
    if len(specs) > 1:
        raise LinqError(".over() takes one of rows=, range=, groups=")
    parts = [partition_by] if isinstance(partition_by, (str, Column)) else list(partition_by)
    orders = [order_by] if isinstance(order_by, (str, Column, SortOrder)) else list(order_by)
    partition = tuple(col(p).expr if isinstance(p, str) else _column(p, "partition_by").expr for p in parts)
    order_exprs, asc, nulls = [], [], []
    for o in orders:
        so = o if isinstance(o, SortOrder) else SortOrder(col(o) if isinstance(o, str) else _column(o, "order_by"))
        order_exprs.append(so.column.expr)
        asc.append(so.ascending)
        nulls.append(so.nulls_first)
    frame = None
    if marker.func in W.AGGREGATE or marker.func in W.VALUE:
        if specs:
            kind, pair = specs[0]
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise LinqError(f"{kind}= takes a pair (start, end), e.g. {kind}=(-2, 0)")
            frame = W.Frame(kind, _bound(pair[0], True, kind + "="), _bound(pair[1], False, kind + "="))
        else:
            frame = W.RUNNING if order_exprs else W.WHOLE
    elif specs:
        raise LinqError(f"{marker.func}() takes no frame (rows=/range=/groups=)")
    bound = WindowMarker(marker.func, marker.arg, marker.params, marker.distinct, partition, tuple(order_exprs),
                         tuple(asc), tuple(nulls), frame, True)
    origins = column.origins
    for c in [*parts, *orders]:
        inner = c.column if isinstance(c, SortOrder) else c
        if isinstance(inner, Column):
            origins = origins + tuple(o for o in inner.origins if o not in origins)
    return Column(bound, column.name, origins)


def _column(value: Any, what: str) -> Column:
    if not isinstance(value, Column):
        raise LinqError(f"over({what}=...): expected column names or column expressions, got {value!r}")
    return value


def has_window(e: E.Expr) -> bool:
    return any(isinstance(n, WindowMarker) for n in e.walk())


def lift_windows(op: O.Op, exprs: list[tuple[str, E.Expr]]) -> tuple[O.Op, list[tuple[str, E.Expr]]]:
    """Compute every window marker in `exprs` (over `op`'s columns) with
    Window operators over `op`; return the new input and the expressions
    with column references in place of the markers."""
    names = set(op.schema.names) | {n for n, _ in exprs}
    pre: list[tuple[str, E.Expr]] = [(n, E.Col(n)) for n in op.schema.names]

    def fresh(base: str) -> str:
        k, name = 1, base
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.add(name)
        return name

    def column(e: E.Expr, hint: str) -> str:
        if isinstance(e, E.Col):
            return e.name
        for n, x in pre:
            if x == e:
                return n
        name = fresh(f"__{hint}")
        pre.append((name, e))
        return name

    groups: dict[tuple, list[tuple[str, W.WindowCall]]] = {}
    replaced: dict[WindowMarker, E.Col] = {}

    def lift(n: E.Expr) -> E.Expr:
        if not isinstance(n, WindowMarker):
            return n
        if n in replaced:
            return replaced[n]
        if any(has_window(x) for x in (*n.partition, *n.order, *([n.arg] if n.arg is not None else []))):
            raise LinqError(f"window functions cannot be nested: {display(n)}")
        part = tuple(column(p, "part") for p in n.partition)
        order = tuple(O.SortKey(column(o, "ord"), a, nf) for o, a, nf in zip(n.order, n.ascending, n.nulls_first))
        arg = column(n.arg, "arg") if n.arg is not None else None
        name = fresh(f"__{n.func.replace('count_star', 'count')}")
        groups.setdefault((part, order), []).append((name, n.call(arg)))
        replaced[n] = E.Col(name)
        return replaced[n]

    out = [(name, E.transform(e, lift)) for name, e in exprs]
    if not groups:
        return op, exprs
    if len(pre) > len(op.schema):
        op = O.Project(op, tuple(pre))
    for (part, order), calls in groups.items():
        op = O.Window(op, part, order, tuple(calls))
    return op, out


__all__ = ["WindowMarker", "cume_dist", "dense_rank", "ntile", "percent_rank", "rank", "row_number"]
