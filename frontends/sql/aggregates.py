"""Aggregate calls in SQL -> IR aggregates (plus the expression over them).

Most aggregates are one `ir.expr.AggCall`. Some are rewritten here so every
engine runs them with the aggregates it already has:

- `agg(x) FILTER (WHERE c)` aggregates `CASE WHEN c THEN x END` (COUNT(*)
  FILTER counts `CASE WHEN c THEN 1 END`): rows failing `c` add nothing;
- `VAR_SAMP/VAR_POP/STDDEV_SAMP/STDDEV_POP(x)` (VARIANCE, STDDEV are the
  sample forms) from SUM(x), SUM(x*x) and COUNT(x) in double precision:
  (SUM(x*x) - SUM(x)^2/n) / (n - 1) (or / n), NULL below two values (one
  for the population forms), clamped at 0 against rounding. The textbook
  formula loses precision when the mean is large against the spread
  (|mean| / stddev beyond ~1e6); DuckDB's Welford method does not;
- `COUNT(DISTINCT a, b)` counts distinct non-NULL tuples (a row with a
  NULL in any argument does not count, as MySQL defines it): one
  length-prefixed string per tuple, so different tuples never collide.

MEDIAN, QUANTILE_CONT/QUANTILE_DISC (PERCENTILE_CONT/DISC ... WITHIN GROUP)
and STRING_AGG (with its ORDER BY) are AggCalls with parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from sqlglot import exp

from musketeer.frontends.sql.exprs import ExprEnv, lower_expr
from musketeer.frontends.sql.strict import refuse_node
from musketeer.ir import expr as E
from musketeer.ir.types import FLOAT64, INT64, STRING, IRError, UnsupportedError

if TYPE_CHECKING:
    from musketeer.frontends.sql.select import QueryLowerer

_SIMPLE = {exp.Sum: "sum", exp.Count: "count", exp.Avg: "avg", exp.Min: "min", exp.Max: "max"}
_VARIANCE = {exp.Variance: ("var", True), exp.VariancePop: ("var", False), exp.Stddev: ("std", True),
             exp.StddevSamp: ("std", True), exp.StddevPop: ("std", False)}

PreColumn = Callable[[E.Expr, str], str]
AddAgg = Callable[[E.AggCall], E.Col]


def is_aggregate(node: exp.Expression) -> bool:
    """An aggregate call as lowering sees it (FILTER wraps its aggregate)."""
    if isinstance(node, exp.Filter):
        return isinstance(node.this, exp.AggFunc)
    if isinstance(node, exp.WithinGroup):
        return True
    return isinstance(node, exp.AggFunc) and not isinstance(node, exp.Grouping)


class AggregateMixin:
    def aggregate_expr(self: "QueryLowerer", node: exp.Expression, env: ExprEnv, pre_column: PreColumn,
                       add: AddAgg) -> E.Expr:
        """The IR expression (over aggregate output columns made with `add`) for one aggregate call."""
        cond: E.Expr | None = None
        if isinstance(node, exp.Filter):
            where = node.expression
            cond = lower_expr(where.this if isinstance(where, exp.Where) else where, env)
            node = node.this

        def value(e: E.Expr) -> E.Expr:
            return e if cond is None else E.Case(((cond, e),), None)

        def arg_of(n: exp.Expression, func: str) -> E.Expr:
            from musketeer.frontends.sql.select import _aggregates_in

            if _aggregates_in(n):
                raise IRError("aggregate calls cannot be nested", self.src.loc_of(n))
            return lower_expr(n, env)

        if type(node) in _VARIANCE:
            kind, sample = _VARIANCE[type(node)]
            x = E.Cast(arg_of(node.this, kind), FLOAT64)
            col = pre_column(value(x), "var_arg")
            sq = pre_column(value(E.Arith("*", x, x)), "var_sq")
            s, s2, n = add(E.AggCall("sum", col)), add(E.AggCall("sum", sq)), add(E.AggCall("count", col))
            nf = E.Cast(n, FLOAT64)
            spread = E.Arith("-", s2, E.Arith("/", E.Arith("*", s, s), nf))
            var = E.Arith("/", spread, E.Arith("-", nf, E.Lit(1.0, FLOAT64)) if sample else nf)
            clamped = E.Case(((E.Compare("<", var, E.Lit(0.0, FLOAT64)), E.Lit(0.0, FLOAT64)),), var)
            result = clamped if kind == "var" else E.Func("sqrt", (clamped,))
            return E.Case(((E.Compare(">", n, E.Lit(1 if sample else 0, INT64)), result),), None)
        if isinstance(node, exp.WithinGroup):
            return self._within_group(node, env, pre_column, add, value)
        if isinstance(node, (exp.Median, exp.PercentileCont, exp.PercentileDisc, exp.Quantile)):
            func = "quantile_disc" if isinstance(node, exp.PercentileDisc) else "quantile_cont"
            q = 0.5 if isinstance(node, exp.Median) else self._fraction(
                node.args.get("expression") if not isinstance(node, exp.Quantile) else node.args.get("quantile"))
            col = pre_column(value(arg_of(node.this, func)), f"{func}_arg")
            return add(E.AggCall(func, col, params=(q,)))
        if isinstance(node, exp.GroupConcat):
            return self._string_agg(node, env, pre_column, add, value, arg_of)
        func = _SIMPLE.get(type(node))
        if func is None:
            raise refuse_node(node, self.src)
        arg = node.this
        distinct = False
        if isinstance(arg, exp.Distinct):
            distinct = True
            if len(arg.expressions) != 1:
                if func != "count":
                    raise UnsupportedError(f"{func.upper()}(DISTINCT ...) over several columns", self.src.loc_of(node))
                return add(E.AggCall("count", pre_column(value(self._tuple_key(arg.expressions, env)), "tuple"),
                                     True))
            arg = arg.expressions[0]
        if func == "count" and (arg is None or isinstance(arg, exp.Star)):
            if cond is None:
                return add(E.AggCall("count_star"))
            return add(E.AggCall("count", pre_column(value(E.Lit(1, INT64)), "count_arg")))
        if arg is None:
            raise IRError(f"{func.upper()} needs an argument", self.src.loc_of(node))
        col = pre_column(value(arg_of(arg, func)), f"{func}_arg")
        return add(E.AggCall(func, col, distinct))

    def _tuple_key(self: "QueryLowerer", args: list[exp.Expression], env: ExprEnv) -> E.Expr:
        """One string per tuple of non-NULL values (NULL when any is NULL),
        each part prefixed by its length so that no two tuples collide."""
        parts: list[E.Expr] = []
        nulls: list[E.Expr] = []
        for a in args:
            v = E.Cast(lower_expr(a, env), STRING)
            nulls.append(E.IsNull(v))
            parts += [E.Cast(E.Func("length", (v,)), STRING), E.Lit(":", STRING), v]
        return E.Case(((E.Or(tuple(nulls)), E.Cast(E.Lit.of(None), STRING)),), E.Func("concat", tuple(parts)))

    def _fraction(self: "QueryLowerer", node: exp.Expression | None) -> float:
        if isinstance(node, exp.Literal) and not node.is_string:
            q = float(node.this)
            if 0.0 <= q <= 1.0:
                return q
            raise self.fail(f"a quantile must be between 0 and 1, not {node.this}", node)
        raise UnsupportedError(f"a quantile that is not one constant number ({self.text(node) if node else ''})",
                               self.src.loc_of(node))

    def _within_group(self: "QueryLowerer", node: exp.WithinGroup, env: ExprEnv, pre_column: PreColumn,
                      add: AddAgg, value: Callable[[E.Expr], E.Expr]) -> E.Expr:
        """PERCENTILE_CONT/DISC(q) WITHIN GROUP (ORDER BY x [DESC])."""
        fn = node.this
        order = node.expression
        if not isinstance(fn, (exp.PercentileCont, exp.PercentileDisc)) or not isinstance(order, exp.Order) \
                or len(order.expressions) != 1:
            raise refuse_node(node, self.src)
        q = self._fraction(fn.this)
        key = order.expressions[0]
        if key.args.get("desc"):
            q = 1.0 - q
        func = "quantile_disc" if isinstance(fn, exp.PercentileDisc) else "quantile_cont"
        col = pre_column(value(lower_expr(key.this, env)), f"{func}_arg")
        return add(E.AggCall(func, col, params=(q,)))

    def _string_agg(self: "QueryLowerer", node: exp.GroupConcat, env: ExprEnv, pre_column: PreColumn, add: AddAgg,
                    value: Callable[[E.Expr], E.Expr], arg_of: Callable[[exp.Expression, str], E.Expr]) -> E.Expr:
        """STRING_AGG(x [, sep] [ORDER BY ...]): non-NULL values joined by sep
        (',' by default), in the ORDER BY order (else unspecified)."""
        arg = node.this
        order: list[tuple[str, bool, bool]] = []
        if isinstance(arg, exp.Order):
            for o in arg.expressions:
                col = pre_column(lower_expr(o.this, env), "string_agg_order")
                order.append((col, not o.args.get("desc"), bool(o.args.get("nulls_first"))))
            arg = arg.this
        distinct = False
        if isinstance(arg, exp.Distinct):
            if len(arg.expressions) != 1 or order:
                raise UnsupportedError(f"STRING_AGG(DISTINCT ...) with ORDER BY or several arguments "
                                       f"({self.text(node)})", self.src.loc_of(node))
            distinct, arg = True, arg.expressions[0]
        sep_node = node.args.get("separator")
        sep = ","
        if sep_node is not None:
            if not (isinstance(sep_node, exp.Literal) and sep_node.is_string):
                raise UnsupportedError(f"a STRING_AGG separator that is not a string constant "
                                       f"({self.text(sep_node)})", self.src.loc_of(sep_node))
            sep = sep_node.this
        x = E.Cast(arg_of(arg, "string_agg"), STRING)
        col = pre_column(value(x), "string_agg_arg")
        return add(E.AggCall("string_agg", col, distinct, params=(sep,), order=tuple(order)))
