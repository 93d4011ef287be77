"""Statement-level sugar rewritten on sqlglot's tree before qualification.

- `GROUP BY ALL`: group by every SELECT item without an aggregate or window;
- `ORDER BY ALL [DESC]`: order by every SELECT item, left to right;
- `FETCH FIRST|NEXT n ROWS ONLY`: LIMIT n (WITH TIES and PERCENT are refused);
- `SELECT DISTINCT ON (k...) ... ORDER BY o...`: the first row of each k
  group in o order, i.e. `QUALIFY row_number() OVER (PARTITION BY k ORDER BY
  o) = 1` (ORDER BY positions and output names are resolved to the SELECT
  items first), as DuckDB and PostgreSQL define it.
"""

from __future__ import annotations

from sqlglot import exp

from musketeer.frontends.sql.source import SourceText
from musketeer.ir.types import UnsupportedError


def rewrite_sugar(root: exp.Expression, src: SourceText) -> exp.Expression:
    for sel in list(root.find_all(exp.Select)):
        _group_by_all(sel)
        _order_by_all(sel)
        _fetch(sel, src)
        _distinct_on(sel)
    return root


def _plain_items(sel: exp.Select) -> list[exp.Expression]:
    return [item.unalias() for item in sel.expressions]


def _has_aggregate(node: exp.Expression) -> bool:
    return any(isinstance(n, (exp.AggFunc, exp.Window)) for n in node.walk()
               if not isinstance(n, exp.Grouping))


def _group_by_all(sel: exp.Select) -> None:
    group = sel.args.get("group")
    if group is None or not group.args.get("all"):
        return
    keys = [i.copy() for i in _plain_items(sel) if not _has_aggregate(i)]
    sel.set("group", exp.Group(expressions=keys) if keys else None)


def _order_by_all(sel: exp.Expression) -> None:
    order = sel.args.get("order")
    if order is None or len(order.expressions) != 1:
        return
    o = order.expressions[0]
    if not (isinstance(o.this, (exp.Var, exp.Column)) and o.this.name.upper() == "ALL" and not
            (isinstance(o.this, exp.Column) and o.this.table)):
        return
    if not isinstance(sel, exp.Select):
        return
    count = len(sel.expressions)
    order.set("expressions", [exp.Ordered(this=exp.Literal.number(i + 1), desc=o.args.get("desc"),
                                          nulls_first=o.args.get("nulls_first")) for i in range(count)])


def _fetch(sel: exp.Select, src: SourceText) -> None:
    fetch = sel.args.get("limit")
    if not isinstance(fetch, exp.Fetch):
        return
    options = fetch.args.get("limit_options")
    if options is not None and (options.args.get("with_ties") or options.args.get("percent")):
        raise UnsupportedError("FETCH ... WITH TIES / PERCENT", src.loc_of(fetch) or src.loc_of(sel))
    count = fetch.args.get("count")
    sel.set("limit", exp.Limit(expression=count.copy() if count is not None else exp.Literal.number(1)))


def _distinct_on(sel: exp.Select) -> None:
    distinct = sel.args.get("distinct")
    if distinct is None or distinct.args.get("on") is None:
        return
    on = distinct.args["on"]
    keys = on.expressions if isinstance(on, exp.Tuple) else [on]
    items = sel.expressions
    aliases = {i.alias.lower(): i.this for i in items if isinstance(i, exp.Alias)}

    def resolve(e: exp.Expression) -> exp.Expression:
        if isinstance(e, exp.Literal) and not e.is_string and e.this.isdigit() and 1 <= int(e.this) <= len(items):
            return items[int(e.this) - 1].unalias().copy()
        if isinstance(e, exp.Column) and not e.table and e.name.lower() in aliases:
            return aliases[e.name.lower()].copy()
        return e.copy()

    order = sel.args.get("order")
    ordered = [exp.Ordered(this=resolve(o.this), desc=o.args.get("desc"), nulls_first=o.args.get("nulls_first"))
               for o in (order.expressions if order is not None else [])]
    window = exp.Window(this=exp.RowNumber(), partition_by=[resolve(k) for k in keys],
                        order=exp.Order(expressions=ordered) if ordered else None, over="OVER")
    first = exp.EQ(this=window, expression=exp.Literal.number(1))
    qualify = sel.args.get("qualify")
    sel.set("qualify", exp.Qualify(this=exp.and_(qualify.this, first) if qualify is not None else first))
    sel.set("distinct", None)
