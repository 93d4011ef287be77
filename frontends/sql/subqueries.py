"""Decorrelation: subqueries become joins, so every engine runs plain operators.

- `[NOT] EXISTS (q)` and `x [NOT] IN (q)` in WHERE -> semi / anti joins. The
  subquery's WHERE conjuncts that read outer columns become the join's
  equi-keys (for `inner = outer`) or its residual predicate.
- `x NOT IN (uncorrelated q)` -> null-aware anti join (SQL's NOT IN, where a
  NULL in q rejects everything).
- scalar `(q)` uncorrelated -> a cross join with q's single row.
- scalar `(q)` correlated by equalities -> q grouped by its correlation
  columns, left-joined on them (Kim's rewrite); COUNT maps a missing group to 0.
  The grouped side aggregates every key; `ir/passes/magic_sets.py` then cuts
  its input to the keys the (filtered) outer query can look up, and
  `ir/passes/semi_join_pushdown.py` moves the semi/anti joins made here below
  the outer query's joins. Both are IR passes, so LINQ workflows get them too.

sqlglot's own unnesting emits ARRAY_AGG/ARRAY_ANY for non-equality
correlation (TPC-H Q21), which no engine here should have to run; this
rewrite uses the Join's residual instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from musketeer.frontends.sql.exprs import ExprEnv, lower_expr
from musketeer.frontends.sql.predicates import factor_or, free_qualifiers, select_aliases, split_conjuncts
from musketeer.frontends.sql.scope import Rel, fresh_name, make_disjoint
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import IRError, UnsupportedError

if TYPE_CHECKING:
    from musketeer.frontends.sql.select import QueryLowerer


def _as_select(node: exp.Expression) -> exp.Expression:
    while isinstance(node, (exp.Subquery, exp.Paren)):
        node = node.this
    return node


class SubqueryMixin:
    def _split_correlated(self: "QueryLowerer", sel: exp.Select) -> tuple[list[exp.Expression], list[exp.Expression]]:
        where = sel.args.get("where")
        conjuncts = split_conjuncts(factor_or(where.this)) if where is not None else []
        own = frozenset(select_aliases(sel))
        local, correlated = [], []
        for c in conjuncts:
            (correlated if free_qualifiers(c, own) else local).append(c)
        for part in ("expressions", "group", "having", "order"):
            value = sel.args.get(part)
            nodes = value if isinstance(value, list) else ([value] if value is not None else [])
            for n in nodes:
                if free_qualifiers(n, own):
                    raise UnsupportedError("a correlated reference outside the subquery's WHERE clause",
                                           self.src.loc_of(n))
        return local, correlated

    def _correlated_env(self: "QueryLowerer", outer: Rel, inner: Rel, inner_quals: set[str],
                        schema) -> ExprEnv:  # type: ignore[no-untyped-def]
        def column(node: exp.Column) -> E.Expr:
            q = node.table.lower() if node.table else ""
            ir = inner.lookup(node.table, node.name) if (not q or q in inner_quals) else None
            if ir is None:
                ir = outer.lookup(node.table, node.name)
            if ir is None:
                raise UnsupportedError(f"reference to {self.text(node)} from a subquery nested two levels deep",
                                       self.src.loc_of(node))
            return E.Col(ir)

        return ExprEnv(self.src, column, schema=schema, where="a subquery condition")

    def _key_pairs(self: "QueryLowerer", outer: Rel, inner: Rel, inner_quals: set[str],
                   conds: list[exp.Expression]) -> tuple[list[str], list[str], list[exp.Expression]]:
        lkeys, rkeys, rest = [], [], []
        for c in conds:
            if isinstance(c, exp.EQ) and isinstance(c.this, exp.Column) and isinstance(c.expression, exp.Column):
                sides = []
                for col in (c.this, c.expression):
                    q = col.table.lower() if col.table else ""
                    sides.append(q in inner_quals)
                if sides[0] != sides[1]:
                    icol, ocol = (c.this, c.expression) if sides[0] else (c.expression, c.this)
                    i_ir, o_ir = inner.lookup(icol.table, icol.name), outer.lookup(ocol.table, ocol.name)
                    if i_ir is not None and o_ir is not None:
                        lkeys.append(o_ir)
                        rkeys.append(i_ir)
                        continue
            rest.append(c)
        return lkeys, rkeys, rest

    def semi_join(self: "QueryLowerer", rel: Rel, query: exp.Expression, negated: bool,
                  in_lhs: exp.Expression | None, node: exp.Expression) -> Rel:
        sel = _as_select(query)
        kind = "anti" if negated else "semi"
        if not isinstance(sel, exp.Select):
            if in_lhs is None:
                raise UnsupportedError("EXISTS over a set operation", self.src.loc_of(node))
            local: list[exp.Expression] = []
            correlated: list[exp.Expression] = []
        else:
            local, correlated = self._split_correlated(sel)
        if not correlated:
            inner = self.lower_query(sel)
            if in_lhs is None:  # uncorrelated EXISTS: keep all rows iff q is non-empty
                inner = make_disjoint(rel, inner)
                op = self.build(node, lambda: O.Join(rel.op, inner.op, kind))
                return Rel(op, dict(rel.cols), list(rel.names))
            if len(inner.op.schema) != 1:
                raise IRError(f"IN (subquery) needs one column, the subquery has {len(inner.op.schema)}",
                              self.src.loc_of(node))
            rel, lcol = self._outer_column(rel, in_lhs)
            op = self.build(node, lambda: O.Join(rel.op, inner.op, kind, (lcol,), (inner.op.schema.names[0],),
                                                 null_aware=negated))
            return Rel(op, dict(rel.cols), list(rel.names))
        if any(sel.args.get(k) for k in ("group", "having", "limit", "distinct")) or any(
                _has_agg(e) for e in sel.expressions):
            raise UnsupportedError("a correlated EXISTS/IN subquery with GROUP BY, aggregates, DISTINCT or LIMIT",
                                   self.src.loc_of(node))
        if negated and in_lhs is not None:
            raise UnsupportedError("a correlated NOT IN subquery (write NOT EXISTS)", self.src.loc_of(node))
        inner = self.from_where(sel, local)
        if in_lhs is not None:
            if len(sel.expressions) != 1:
                raise IRError("IN (subquery) needs one column", self.src.loc_of(node))
            value = self.lower_in(sel.expressions[0].unalias(), inner, "IN (subquery)")
            name = "in_value"
            inner = Rel(O.Project(inner.op, tuple((n, E.Col(n)) for n in inner.op.schema.names)
                                  + ((name, value),)), dict(inner.cols))
            rel, lcol = self._outer_column(rel, in_lhs)
            inner = make_disjoint(rel, inner)
            in_col = inner.op.schema.names[-1]
        inner = make_disjoint(rel, inner)
        inner_quals = select_aliases(sel)
        lkeys, rkeys, rest = self._key_pairs(rel, inner, inner_quals, correlated)
        if in_lhs is not None:
            lkeys.append(lcol)
            rkeys.append(in_col)
        both = rel.op.schema.concat(inner.op.schema)
        env = self._correlated_env(rel, inner, inner_quals, lambda: both)
        residual = E.conjoin([lower_expr(c, env) for c in rest])
        op = self.build(node, lambda: O.Join(rel.op, inner.op, kind, tuple(lkeys), tuple(rkeys), residual))
        return Rel(op, dict(rel.cols), list(rel.names))

    def _outer_column(self: "QueryLowerer", rel: Rel, node: exp.Expression) -> tuple[Rel, str]:
        """The outer side of `x IN (...)` as a column (projected if an expression)."""
        e = self.lower_in(node, rel, "IN")
        if isinstance(e, E.Col):
            return rel, e.name
        name = "in_key"
        names = rel.op.schema.names
        while name in names:
            name += "_"
        op = O.Project(rel.op, tuple((n, E.Col(n)) for n in names) + ((name, e),))
        return Rel(op, dict(rel.cols), list(rel.names)), name

    def scalar_or_predicate_subquery(self: "QueryLowerer", node: exp.Expression, ref: list[Rel]) -> E.Expr:
        if isinstance(node, exp.Subquery):
            return self.scalar_subquery(node, ref)
        return self.mark_subquery(node, ref)  # EXISTS / IN inside OR, CASE, NOT, the SELECT list

    def scalar_subquery(self: "QueryLowerer", node: exp.Expression, ref: list[Rel]) -> E.Expr:
        """Attach a scalar subquery's value to ref[0] as a column; return it."""
        if not isinstance(node, exp.Subquery):
            return self.scalar_or_predicate_subquery(node, ref)
        rel = ref[0]
        sel = _as_select(node)
        if not isinstance(sel, exp.Select):
            raise UnsupportedError("a scalar subquery over a set operation", self.src.loc_of(node))
        if len(sel.expressions) != 1:
            raise IRError(f"a scalar subquery must return one column, not {len(sel.expressions)}", self.src.loc_of(node))
        local, correlated = self._split_correlated(sel)
        single_row = sel.args.get("group") is None and _has_agg(sel.expressions[0])
        if not correlated:
            if not single_row and not _limit_one(sel):
                return self._checked_single_row(node, sel, ref)
            inner = make_disjoint(rel, self.lower_query(sel))
            kind = "cross" if single_row else "left"
            op = self.build(node, lambda: O.Join(rel.op, inner.op, kind))
            ref[0] = Rel(op, {**rel.cols, **{k: v for k, v in inner.cols.items() if k[0]}})
            return E.Col(inner.op.schema.names[0])
        several = not single_row  # may return several rows per outer row: checked at run time
        if sel.args.get("having") or sel.args.get("limit") or (several and sel.args.get("group")):
            raise UnsupportedError("a correlated scalar subquery with GROUP BY, HAVING or LIMIT "
                                   f"({self.text(node)})", self.src.loc_of(node))
        inner_quals = select_aliases(sel)
        pairs = []
        for c in correlated:
            ok = isinstance(c, exp.EQ) and isinstance(c.this, exp.Column) and isinstance(c.expression, exp.Column)
            if ok:
                sides = [(col.table.lower() if col.table else "") in inner_quals for col in (c.this, c.expression)]
                ok = sides[0] != sides[1]
            if not ok:
                raise UnsupportedError("a correlated scalar subquery whose correlation is not `inner = outer`",
                                       self.src.loc_of(c))
            icol, ocol = (c.this, c.expression) if sides[0] else (c.expression, c.this)
            pairs.append((icol, ocol))
        # Rewrite: SELECT icol AS corr_i..., value FROM ... WHERE local GROUP BY icol...
        grouped = sel.copy()
        grouped.set("where", exp.Where(this=exp.and_(*local)) if local else None)
        grouped.set("group", exp.Group(expressions=[i.copy() for i, _ in pairs]))
        value_node = sel.expressions[0].unalias()
        counted = []
        if several:  # one row per key: how many rows the subquery has for it, and (at most one) value
            rows = exp.Count(this=exp.Distinct(expressions=[value_node.copy()])) if sel.args.get("distinct") \
                else exp.Count(this=exp.Star())
            counted = [exp.alias_(rows, "rows")]
            grouped.set("distinct", None)
            value_node = exp.Max(this=value_node.copy())
        grouped.set("expressions", [exp.alias_(i.copy(), f"corr_{n}") for n, (i, _) in enumerate(pairs)]
                    + counted + [exp.alias_(value_node.copy(), "value")])
        inner = make_disjoint(rel, self.lower_query(grouped))
        outer_keys = []
        for _, ocol in pairs:
            o_ir = rel.lookup(ocol.table, ocol.name)
            if o_ir is None:
                raise UnsupportedError(f"reference to {self.text(ocol)} from a subquery nested two levels deep",
                                       self.src.loc_of(ocol))
            outer_keys.append(o_ir)
        inner_keys = list(inner.op.schema.names[: len(pairs)])
        op = self.build(node, lambda: O.Join(rel.op, inner.op, "left", tuple(outer_keys), tuple(inner_keys)))
        ref[0] = Rel(op, dict(rel.cols))
        value = E.Col(inner.op.schema.names[-1])
        if several:
            return E.Func("single_value", (E.Col(inner.op.schema.names[-2]), value))
        if isinstance(value_node, exp.Count):
            return E.Func("coalesce", (value, E.Lit.of(0)))
        if any(isinstance(n, exp.Count) for n in value_node.walk()):
            raise UnsupportedError("COUNT inside a larger expression in a correlated scalar subquery",
                                   self.src.loc_of(node))
        return value


    def _checked_single_row(self: "QueryLowerer", node: exp.Expression, sel: exp.Select, ref: list[Rel]) -> E.Expr:
        """An uncorrelated scalar subquery that may return several rows: its
        row count and (at most one) value, one row cross-joined; the value
        is `single_value(rows, value)`, a run-time error for several rows."""
        rel = ref[0]
        inner = self.lower_query(sel)
        taken = set(rel.op.schema.names) | set(inner.op.schema.names)
        rows, value = fresh_name("subquery_rows", taken), fresh_name("subquery_value", taken | {"subquery_rows"})
        column = inner.op.schema.names[0]
        agg = self.build(node, lambda: O.Aggregate(inner.op, (), ((rows, E.AggCall("count_star")),
                                                                  (value, E.AggCall("max", column)))))
        ref[0] = Rel(O.Join(rel.op, agg, "cross"), dict(rel.cols), list(rel.names))
        return E.Func("single_value", (E.Col(rows), E.Col(value)))


def _has_agg(node: exp.Expression) -> bool:
    from musketeer.frontends.sql.select import _aggregates_in

    return bool(_aggregates_in(node))


def _limit_one(sel: exp.Select) -> bool:
    limit = sel.args.get("limit")
    if limit is None:
        return False
    value = limit.expression if limit.expression is not None else limit.this
    return isinstance(value, exp.Literal) and value.this == "1"
