"""Window functions (`f(...) OVER (PARTITION BY ... ORDER BY ... frame)`) and QUALIFY.

Windows are computed after WHERE / GROUP BY / HAVING and before the SELECT
list, DISTINCT, ORDER BY and LIMIT (SQL's order). Each window's arguments,
partition and order expressions are lowered like the SELECT list (so
`RANK() OVER (ORDER BY SUM(x))` ranks groups), projected to columns, and
the calls sharing one PARTITION BY / ORDER BY become one `ir` Window
operator; different windows chain. SQL's default frames are made explicit:
with ORDER BY, RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW; without,
the whole partition. QUALIFY is then a Filter over the window columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from sqlglot import exp

from musketeer.frontends.sql.scope import Rel, fresh_name
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir import window as W
from musketeer.ir.types import IRError, UnsupportedError

if TYPE_CHECKING:
    from musketeer.frontends.sql.select import QueryLowerer

#: sqlglot function node -> IR window function (aggregates handled apart).
_FUNCS: dict[type[exp.Expression], str] = {
    exp.RowNumber: "row_number", exp.Rank: "rank", exp.DenseRank: "dense_rank",
    exp.PercentRank: "percent_rank", exp.CumeDist: "cume_dist", exp.Ntile: "ntile",
    exp.Lag: "lag", exp.Lead: "lead", exp.FirstValue: "first_value", exp.LastValue: "last_value",
    exp.NthValue: "nth_value",
    exp.Sum: "sum", exp.Avg: "avg", exp.Count: "count", exp.Min: "min", exp.Max: "max",
}


def windows_in(node: exp.Expression) -> list[exp.Window]:
    """Window calls in `node`, outermost first, not looking inside subqueries."""
    out: list[exp.Window] = []

    def visit(n: exp.Expression) -> None:
        if isinstance(n, (exp.Subquery, exp.Exists, exp.Select)):
            return
        if isinstance(n, exp.Window):
            out.append(n)
        for c in n.iter_expressions():
            visit(c)

    visit(node)
    return out


class WindowLookup:
    """Maps each window call (by its SQL text) to the IR column holding it;
    set as `ExprEnv.window` while the SELECT list, QUALIFY and ORDER BY lower."""

    def __init__(self, lowerer: "QueryLowerer") -> None:
        self.lowerer = lowerer
        self.columns: dict[str, str] = {}
        self.computing = False

    def __call__(self, node: exp.Window) -> E.Expr:
        name = self.columns.get(node.sql())
        if name is None:
            what = "nested inside another window function" if self.computing else "here"
            raise IRError(f"window function {self.lowerer.text(node)} is not allowed {what}",
                          self.lowerer.src.loc_of(node))
        return E.Col(name)


class WindowMixin:
    def lower_windows(self: "QueryLowerer", sel: exp.Select, ref: list[Rel],
                      lower: Callable[[exp.Expression], E.Expr], lookup: WindowLookup) -> None:
        """Add a Window operator per distinct (PARTITION BY, ORDER BY) to ref[0]."""
        targets = list(sel.expressions)
        if sel.args.get("qualify") is not None:
            targets.append(sel.args["qualify"].this)
        if sel.args.get("order") is not None:
            targets += [o.this for o in sel.args["order"].expressions]
        nodes: dict[str, exp.Window] = {}
        for t in targets:
            for w in windows_in(t):
                nodes.setdefault(w.sql(), w)
        if not nodes:
            if sel.args.get("qualify") is not None:
                raise self.fail("QUALIFY needs a window function in the query", sel.args["qualify"])
            return
        rel = ref[0]
        pre = [(n, E.Col(n)) for n in rel.op.schema.names]
        taken = set(rel.op.schema.names)

        def column(e: E.Expr, hint: str) -> str:
            if isinstance(e, E.Col):
                return e.name
            for n, x in pre:
                if x == e:
                    return n
            name = fresh_name(hint, taken)
            taken.add(name)
            pre.append((name, e))
            return name

        lookup.computing = True
        groups: dict[tuple, list[tuple[str, W.WindowCall, exp.Window]]] = {}
        aliases = {item.this.sql(): item.alias for item in sel.expressions if isinstance(item, exp.Alias)}
        for text, node in nodes.items():
            partition = tuple(column(lower(p), "part") for p in node.args.get("partition_by") or [])
            order = []
            for o in (node.args["order"].expressions if node.args.get("order") is not None else []):
                order.append(W_SortKey(column(lower(o.this), "ord"), not o.args.get("desc"),
                                       bool(o.args.get("nulls_first"))))
            call = self._window_call(node, lower, column, bool(order))
            name = fresh_name(aliases.get(text) or call.func.replace("count_star", "count"), taken)
            taken.add(name)
            lookup.columns[text] = name
            groups.setdefault((partition, tuple(order)), []).append((name, call, node))
        lookup.computing = False
        op = rel.op
        if len(pre) > len(rel.op.schema):
            op = self.build(sel, lambda: O.Project(rel.op, tuple(pre)))
        for (partition, order), calls in groups.items():
            first = calls[0][2]
            source = op
            op = self.build(first, lambda: O.Window(source, partition, order,
                                                    tuple((n, c) for n, c, _ in calls)))
        ref[0] = Rel(op, dict(rel.cols), list(rel.names))

    def _window_call(self: "QueryLowerer", node: exp.Window, lower: Callable[[exp.Expression], E.Expr],
                     column: Callable[[E.Expr, str], str], ordered: bool) -> W.WindowCall:
        fn = node.this
        func = _FUNCS.get(type(fn))
        if func is None:
            raise UnsupportedError(f"window function {self.text(node)}", self.src.loc_of(node))
        arg: str | None = None
        params: tuple = ()
        distinct = False
        if func in W.AGGREGATE:
            a = fn.this
            if isinstance(a, exp.Distinct):
                if len(a.expressions) != 1:
                    raise UnsupportedError(f"{func.upper()}(DISTINCT ...) over several columns", self.src.loc_of(fn))
                distinct, a = True, a.expressions[0]
            if func == "count" and (a is None or isinstance(a, exp.Star)):
                func = "count_star"
            elif a is None:
                raise self.fail(f"{func.upper()} needs an argument", fn)
            else:
                arg = column(lower(a), f"{func}_arg")
        elif func in ("lag", "lead", "first_value", "last_value", "nth_value"):
            arg = column(lower(fn.this), f"{func}_arg")
            if func in ("lag", "lead"):
                offset = self._window_int(fn.args.get("offset"), f"{func.upper()} offset", 0) \
                    if fn.args.get("offset") is not None else 1
                default = fn.args.get("default")
                params = (offset, self._window_constant(default) if default is not None else None)
            elif func == "nth_value":
                params = (self._window_int(fn.args.get("offset"), "NTH_VALUE position", 1),)
        elif func == "ntile":
            params = (self._window_int(fn.this, "NTILE bucket count", 1),)
        frame = None
        if func in W.AGGREGATE or func in W.VALUE:
            spec = node.args.get("spec")
            frame = self._frame(spec) if spec is not None else (W.RUNNING if ordered else W.WHOLE)
        return W.WindowCall(func, arg, params, frame, distinct)

    def _window_int(self: "QueryLowerer", node: exp.Expression | None, what: str, minimum: int) -> int:
        value = node
        negative = False
        if isinstance(value, exp.Neg):
            negative, value = True, value.this
        if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
            n = -int(value.this) if negative else int(value.this)
            if n >= minimum:
                return n
            raise self.fail(f"{what} must be at least {minimum}, not {n}", node)
        raise UnsupportedError(f"{what} that is not a whole-number constant ({self.text(node) if node else ''})",
                               self.src.loc_of(node))

    def _window_constant(self: "QueryLowerer", node: exp.Expression) -> object:
        from musketeer.frontends.sql.exprs import ExprEnv, lower_expr

        def no_columns(col: exp.Column) -> E.Expr:
            raise UnsupportedError(f"a LAG/LEAD default that reads a column ({self.text(col)})", self.src.loc_of(col))

        e = lower_expr(node, ExprEnv(self.src, no_columns, where="a LAG/LEAD default"))
        if not isinstance(e, E.Lit):
            raise UnsupportedError(f"a LAG/LEAD default that is not a constant ({self.text(node)})",
                                   self.src.loc_of(node))
        return e.value

    def _frame(self: "QueryLowerer", spec: exp.WindowSpec) -> W.Frame:
        kind = str(spec.args.get("kind") or "rows").lower()

        def bound(value: object, side: object, is_start: bool) -> W.FrameBound:
            side_text = str(side or "").lower()
            if value is None:
                return W.FrameBound("current_row")
            if isinstance(value, str):
                text = value.upper()
                if text == "CURRENT ROW":
                    return W.FrameBound("current_row")
                if text == "UNBOUNDED":
                    return W.FrameBound(f"unbounded_{side_text or ('preceding' if is_start else 'following')}")
            if isinstance(value, exp.Interval) and kind == "range":
                interval = self._interval_days(value, spec)
                return W.FrameBound(side_text or "preceding", interval)
            if isinstance(value, exp.Literal) and not value.is_string:
                number = float(value.this) if "." in value.this else int(value.this)
                if kind != "range" and not isinstance(number, int):
                    raise self.fail(f"a {kind.upper()} frame offset must be a whole number", value)
                return W.FrameBound(side_text or "preceding", number)
            node = value if isinstance(value, exp.Expression) else spec
            raise UnsupportedError(f"frame bound {self.text(node)} (use UNBOUNDED, CURRENT ROW or a constant)",
                                   self.src.loc_of(node))

        start = bound(spec.args.get("start"), spec.args.get("start_side"), True)
        end = bound(spec.args.get("end"), spec.args.get("end_side"), False) if spec.args.get("end") is not None \
            else W.FrameBound("current_row")
        try:
            return W.Frame(kind, start, end)
        except IRError as err:
            err.loc = err.loc or self.src.loc_of(spec)
            raise

    def _interval_days(self: "QueryLowerer", node: exp.Interval, spec: exp.WindowSpec) -> int:
        from musketeer.frontends.sql.exprs import parse_interval

        iv = parse_interval(node, self.src)
        if iv.months:
            window = spec.parent if spec.parent is not None else spec
            raise UnsupportedError(f"a RANGE frame offset in months ({self.text(node)})",
                                   self.src.loc_of(node) or self.src.loc_of(window))
        return iv.days


W_SortKey = O.SortKey
