"""EXISTS and IN (subquery) anywhere in an expression: mark joins as joins.

A WHERE conjunct `[NOT] EXISTS (q)` / `x [NOT] IN (q)` becomes a semi/anti
join (subqueries.py). Inside OR, CASE, NOT or the SELECT list the predicate
needs a value per outer row instead: TRUE, FALSE or (for IN) NULL. That is
a *mark join*; here it is built from operators every engine has, without
duplicating outer rows:

- EXISTS (q) uncorrelated: a cross join with `COUNT(*)` of q; the mark is
  `count > 0`;
- EXISTS (q) correlated by equalities `inner.k = outer.k`: a left join with
  the DISTINCT correlation keys of q, carrying a TRUE column; the mark is
  that column IS NOT NULL;
- x IN (q): a left join with the DISTINCT (keys, value) pairs of q carrying
  TRUE, plus the per-key (or global) counts of q's rows and non-NULL values;
  the mark follows SQL's three-valued IN:
  TRUE if matched; FALSE if q has no rows (for this key); NULL if x is NULL
  or q holds a NULL; FALSE otherwise.

Correlation other than equalities between an inner and an outer column is
refused (with its location) in these positions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from musketeer.frontends.sql.scope import Rel, fresh_name, make_disjoint
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import BOOL, INT64, IRError, UnsupportedError

if TYPE_CHECKING:
    from musketeer.frontends.sql.select import QueryLowerer

TRUE = E.Lit(True, BOOL)
FALSE = E.Lit(False, BOOL)


def _as_select(node: exp.Expression) -> exp.Expression:
    while isinstance(node, (exp.Subquery, exp.Paren)):
        node = node.this
    return node


class MarkMixin:
    def mark_subquery(self: "QueryLowerer", node: exp.Expression, ref: list[Rel]) -> E.Expr:
        """The boolean value of EXISTS (q) / x IN (q) for each row of ref[0]
        (which gains the columns the mark is computed from)."""
        query = node.this if isinstance(node, exp.Exists) else node.args["query"]
        sel = _as_select(query)
        local: list[exp.Expression] = []
        correlated: list[exp.Expression] = []
        if isinstance(sel, exp.Select):
            local, correlated = self._split_correlated(sel)
        rel = ref[0]
        pairs = self._equality_pairs(correlated, sel, rel, node) if correlated else []
        if correlated and isinstance(sel, exp.Select) and any(
                sel.args.get(k) for k in ("group", "having", "limit", "distinct")):
            raise UnsupportedError("a correlated EXISTS/IN subquery with GROUP BY, HAVING, DISTINCT or LIMIT "
                                   f"inside a larger expression ({self.text(node)})", self.src.loc_of(node))
        taken = set(rel.op.schema.names)
        if isinstance(node, exp.Exists):
            if not pairs:
                inner = self.lower_query(sel)
                name = fresh_name("exists_n", taken)
                count = self.build(node, lambda: O.Aggregate(inner.op, (), ((name, E.AggCall("count_star")),)))
                ref[0] = Rel(O.Join(rel.op, count, "cross"), dict(rel.cols), list(rel.names))
                return E.Compare(">", E.Col(name), E.Lit(0, INT64))
            inner = self.from_where(sel, local)
            keys = [self._inner_key(inner, icol) for icol, _ in pairs]
            mark = fresh_name("exists_mark", taken | set(inner.op.schema.names))
            marked = O.Project(O.Distinct(O.Project(inner.op, tuple((k, E.Col(k)) for k in keys))),
                               tuple((k, E.Col(k)) for k in keys) + ((mark, TRUE),))
            ref[0] = self._left_join(rel, marked, [o for _, o in pairs], keys, node)
            return E.IsNull(E.Col(mark), negated=True)
        # x IN (q)
        if isinstance(sel, exp.Select):
            if len(sel.expressions) != 1:
                raise IRError("IN (subquery) needs one column", self.src.loc_of(node))
            inner = self.from_where(sel, local) if pairs else self.lower_query(sel)
        else:
            inner = self.lower_query(sel)
        if len(inner.op.schema) != 1 and not pairs:
            raise IRError(f"IN (subquery) needs one column, the subquery has {len(inner.op.schema)}",
                          self.src.loc_of(node))
        keys = [self._inner_key(inner, icol) for icol, _ in pairs]
        if pairs:
            value = self.lower_in(sel.expressions[0].unalias(), inner, "IN (subquery)")
        else:
            value = E.Col(inner.op.schema.names[0])
        names = set(inner.op.schema.names) | taken
        vname = fresh_name("in_value", names)
        names.add(vname)
        mark, n, nn = (fresh_name(b, names) for b in ("in_mark", "in_rows", "in_values"))
        base = self.build(node, lambda: O.Project(inner.op, tuple((k, E.Col(k)) for k in keys) + ((vname, value),)))
        rel, lhs = self._outer_column(rel, node.this)
        matched = O.Project(O.Distinct(base), tuple((k, E.Col(k)) for k in keys) + ((vname, E.Col(vname)),
                                                                                     (mark, TRUE)))
        stats = O.Aggregate(base, tuple(keys), ((n, E.AggCall("count_star")), (nn, E.AggCall("count", vname))))
        outer_keys = [o for _, o in pairs]
        joined = self._left_join(rel, matched, outer_keys + [lhs], keys + [vname], node)
        if keys:
            joined = self._left_join(joined, stats, outer_keys, keys, node)
        else:
            joined = Rel(O.Join(joined.op, make_disjoint(joined, Rel(stats)).op, "cross"), joined.cols, joined.names)
        ref[0] = joined
        m, rows, values = E.Col(mark), E.Col(n), E.Col(nn)
        no_rows = E.IsNull(rows) if keys else E.Compare("=", rows, E.Lit(0, INT64))
        unknown = E.Or((E.IsNull(E.Col(lhs)), E.Compare("<", values, rows)))
        return E.Case(((E.IsNull(m, negated=True), TRUE), (no_rows, FALSE), (unknown, E.Lit.of(None))), FALSE)

    def _equality_pairs(self: "QueryLowerer", correlated: list[exp.Expression], sel: exp.Expression, rel: Rel,
                        node: exp.Expression) -> list[tuple[exp.Column, str]]:
        """(inner column, outer IR column) per `inner = outer` correlation; anything else is refused."""
        from musketeer.frontends.sql.predicates import select_aliases

        inner_quals = select_aliases(sel)
        out = []
        for c in correlated:
            if isinstance(c, exp.EQ) and isinstance(c.this, exp.Column) and isinstance(c.expression, exp.Column):
                sides = [(col.table.lower() if col.table else "") in inner_quals for col in (c.this, c.expression)]
                if sides[0] != sides[1]:
                    icol, ocol = (c.this, c.expression) if sides[0] else (c.expression, c.this)
                    o_ir = rel.lookup(ocol.table, ocol.name)
                    if o_ir is not None:
                        out.append((icol, o_ir))
                        continue
            raise UnsupportedError(f"a correlation other than `inner column = outer column` ({self.text(c)}) in "
                                   f"EXISTS/IN inside a larger expression ({self.text(node)})", self.src.loc_of(c))
        return out

    def _inner_key(self: "QueryLowerer", inner: Rel, icol: exp.Column) -> str:
        ir = inner.lookup(icol.table, icol.name)
        if ir is None:
            raise IRError(f"unknown column {self.text(icol)!r}", self.src.loc_of(icol))
        return ir

    def _left_join(self: "QueryLowerer", rel: Rel, right: O.Op, left_keys: list[str], right_keys: list[str],
                   node: exp.Expression) -> Rel:
        """rel LEFT JOIN right on the key pairs (right's clashing names renamed)."""
        r = make_disjoint(rel, Rel(right, {("", n): n for n in right.schema.names}))
        rk = [r.cols[("", k)] for k in right_keys]
        op = self.build(node, lambda: O.Join(rel.op, r.op, "left", tuple(left_keys), tuple(rk)))
        return Rel(op, dict(rel.cols), list(rel.names))
