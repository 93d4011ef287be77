"""WITH RECURSIVE name(cols) AS (base UNION [ALL] step) as an ir While loop.

- UNION ALL: loop variables `acc` (every row so far) and the working table
  (the rows the last pass added), both starting as `base`; each pass runs
  `step` over the working table, appends its rows to `acc` and makes them
  the next working table; the loop stops when a pass adds no row (a one-row
  stop relation: COUNT(*) = 0 over the new rows);
- UNION: a fixpoint: `acc` starts as DISTINCT base and becomes DISTINCT
  (acc UNION step(acc)) until it no longer changes.

Either way the loop runs at most MAX_ITERATIONS passes (a guard against
recursion that never ends: the run then warns that the loop did not
converge, as any While does, and `--metrics` shows its iterations).
`step` may read other relations (loop-invariant inputs); its columns are
cast to the base's types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from musketeer.frontends.sql.scope import Rel
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import INT64, IRError, UnsupportedError, common_type

if TYPE_CHECKING:
    from musketeer.frontends.sql.select import Named, QueryLowerer

#: Most passes a recursive CTE's loop runs.
MAX_ITERATIONS = 1000


def references(node: exp.Expression, name: str) -> bool:
    return any(t.name.lower() == name for t in node.find_all(exp.Table))


class RecursiveMixin:
    def recursive_cte(self: "QueryLowerer", cte: exp.CTE) -> "Named":
        from musketeer.frontends.sql.select import Named

        name = cte.alias_or_name.lower()
        body = cte.this
        if not references(body, name):
            return Named(self.lower_query(body))
        if not isinstance(body, exp.Union) or references(body.this, name):
            raise UnsupportedError(f"a recursive CTE that is not `base UNION [ALL] step` with the base not "
                                   f"reading {cte.alias_or_name}", self.src.loc_of(cte))
        base = self.lower_query(body.this)
        alias = cte.args.get("alias")
        names = [c.name for c in (alias.columns if alias is not None else [])] or list(base.names)
        if len(names) != len(base.op.schema):
            raise IRError(f"{cte.alias_or_name} names {len(names)} columns, its base query has "
                          f"{len(base.op.schema)}", self.src.loc_of(cte))
        if len(set(n.lower() for n in names)) != len(names):
            raise IRError(f"{cte.alias_or_name} has two columns of the same name", self.src.loc_of(cte))
        init = O.Project(base.op, tuple((n, E.Col(ir)) for n, ir in zip(names, base.op.schema.names)))
        distinct = body.args.get("distinct") is not False
        var = O.LoopVar(name if distinct else f"{name}_new", init.schema)
        saved = self.env.get(name)
        self.env[name] = Named(Rel(var, {("", n): n for n in names}, list(names)))
        try:
            step = self.lower_query(body.expression)
        finally:
            if saved is None:
                self.env.pop(name, None)
            else:
                self.env[name] = saved
        if len(step.op.schema) != len(names):
            raise IRError(f"the recursive part of {cte.alias_or_name} has {len(step.op.schema)} columns, "
                          f"the base {len(names)}", self.src.loc_of(body.expression))
        exprs = []
        for n, field, out in zip(names, init.schema, step.op.schema):
            if common_type(field.dtype, out.dtype) is None:
                raise IRError(f"column {n!r} of {cte.alias_or_name}: the recursive part gives {out.dtype}, "
                              f"the base {field.dtype}", self.src.loc_of(body.expression))
            value = E.Col(out.name)
            exprs.append((n, value if out.dtype == field.dtype else E.Cast(value, field.dtype)))
        new = O.Project(step.op, tuple(exprs))
        if distinct:
            loop = O.While((O.Distinct(init),), (name,), (O.Distinct(O.Union(var, new, distinct=False)),), name,
                           max_iter=MAX_ITERATIONS, fixpoint=True)
        else:
            acc = O.LoopVar(name, init.schema)
            count = O.Aggregate(new, (), (("rows", E.AggCall("count_star")),))
            stop = O.Project(count, (("done", E.Compare("=", E.Col("rows"), E.Lit(0, INT64))),))
            loop = O.While((init, init), (name, var.name), (O.Union(acc, new, distinct=False), new), name,
                           max_iter=MAX_ITERATIONS, stop=stop)
        return Named(Rel(loop, {("", n): n for n in names}, list(names)))
