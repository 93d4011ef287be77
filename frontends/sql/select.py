"""Lower one qualified query (SELECT, set operations, CTEs) to IR operators.

Order of work for a SELECT: FROM items -> joins (comma/inner joins are
ordered greedily so each join has an equi-condition where one exists) ->
WHERE filters -> subquery predicates (semi/anti/left joins) -> GROUP BY /
aggregates -> HAVING -> SELECT list -> DISTINCT -> ORDER BY -> LIMIT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from sqlglot import exp

from musketeer.frontends.sql.aggregates import AggregateMixin, is_aggregate
from musketeer.frontends.sql.exprs import ExprEnv, lower_expr
from musketeer.frontends.sql.grouping import expand_group, grouping_sets_op
from musketeer.frontends.sql.marks import MarkMixin
from musketeer.frontends.sql.recursive import RecursiveMixin
from musketeer.frontends.sql.predicates import factor_or, free_qualifiers, split_conjuncts
from musketeer.frontends.sql.scope import Rel, fresh_name, make_disjoint
from musketeer.frontends.sql.source import SourceText
from musketeer.frontends.sql.strict import refuse_node, user_text
from musketeer.frontends.sql.subqueries import SubqueryMixin
from musketeer.frontends.sql.windows import WindowLookup, WindowMixin
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.catalog import Catalog
from musketeer.ir.schema import Schema, suggest
from musketeer.ir.types import BOOL, IRError, MusketeerError, UnsupportedError, common_type


@dataclass
class Named:
    """A relation named by CREATE TABLE ... AS or WITH: lowered once, shared."""

    rel: Rel


def _has_subquery(node: exp.Expression) -> bool:
    return any(isinstance(n, (exp.Subquery, exp.Exists)) or (isinstance(n, exp.In) and n.args.get("query"))
               for n in node.walk())


class QueryLowerer(SubqueryMixin, MarkMixin, WindowMixin, AggregateMixin, RecursiveMixin):
    def __init__(self, catalog: Catalog, src: SourceText, env: dict[str, Named]) -> None:
        self.catalog = catalog
        self.src = src
        self.env = env

    # --- errors ------------------------------------------------------------
    def fail(self, message: str, node: exp.Expression | None) -> IRError:
        """A user error located at `node`."""
        return IRError(message, self.src.loc_of(node))

    def unsupported(self, construct: str, node: exp.Expression | None) -> UnsupportedError:
        """A located refusal; `construct` should quote the user's text (`self.text`)."""
        return UnsupportedError(construct, self.src.loc_of(node))

    def text(self, node: exp.Expression) -> str:
        """The user's own SQL for `node` (not sqlglot's rewritten rendering)."""
        return user_text(node, self.src)

    def build(self, node: exp.Expression | None, make):  # type: ignore[no-untyped-def]
        """Construct an IR operator, blaming `node` for type errors."""
        try:
            return make()
        except MusketeerError as err:
            if err.loc is None:
                err.loc = self.src.loc_of(node)
            raise

    # --- queries -------------------------------------------------------------
    def lower_query(self, node: exp.Expression, outer: Rel | None = None) -> Rel:
        if isinstance(node, exp.Subquery):
            return self.lower_query(node.this, outer)
        saved = dict(self.env)
        try:
            self._lower_ctes(node)
            if isinstance(node, exp.Select):
                return self.lower_select(node)
            if isinstance(node, exp.Values):
                return self.values(node)
            if isinstance(node, (exp.Union, exp.Intersect, exp.Except)):
                return self.lower_setop(node)
        finally:
            self.env = saved
        raise UnsupportedError(f"{node.key.upper()} as a query", self.src.loc_of(node))

    def _lower_ctes(self, node: exp.Expression) -> None:
        with_ = node.args.get("with_") or node.args.get("with")
        if not with_:
            return
        for cte in with_.expressions:
            if with_.args.get("recursive"):
                self.env[cte.alias_or_name.lower()] = self.recursive_cte(cte)
                continue
            rel = self.lower_query(cte.this)
            self.env[cte.alias_or_name.lower()] = Named(rel)

    def lower_setop(self, node: exp.Expression) -> Rel:
        left = self.lower_query(node.this)
        right = self.lower_query(node.expression)
        cls = {exp.Union: O.Union, exp.Intersect: O.Intersect, exp.Except: O.Except}[type(node)]
        distinct = node.args.get("distinct", True) is not False
        op = self.build(node, lambda: cls(left.op, right.op, distinct))
        rel = Rel(op, {("", n): ir for n, ir in zip(left.names, op.schema.names)}, list(left.names))
        return self.order_limit(node, rel, {}, None)

    # --- FROM ----------------------------------------------------------------
    def from_item(self, item: exp.Expression) -> Rel:
        alias = item.alias_or_name
        if isinstance(item, exp.Table):
            if item.args.get("db") or item.args.get("catalog"):
                raise self.unsupported(f"qualified table name {self.text(item)}", item)
            name = item.name
            named = self.env.get(name.lower())
            if named is not None:
                return self._named_ref(named.rel, alias)
            table = self.build(item, lambda: self.catalog.get(name))
            cols = tuple(O.ScanColumn(f.name, f.name, f.dtype) for f in table.schema)
            op = O.Scan(table.name, table.path, table.format, cols)
            return Rel(op, {(alias, f.name): f.name for f in table.schema}, list(table.schema.names))
        if isinstance(item, exp.Values):
            return self.values(item)
        if isinstance(item, exp.Subquery):
            inner = self.lower_query(item.this)
            names = inner.names
            col_aliases = [c.name for c in (item.args.get("alias").columns if item.args.get("alias") else [])]
            if col_aliases:
                names = col_aliases + names[len(col_aliases):]
            return Rel(inner.op, {(alias, n): ir for n, ir in zip(names, inner.op.schema.names)}, list(names))
        raise UnsupportedError(f"{item.key.upper()} in FROM", self.src.loc_of(item))

    def values(self, node: exp.Values) -> Rel:
        """VALUES (...), (...) [AS alias(columns)]: constant rows, each column
        typed by the common type of its values (DuckDB names them col0, ...)."""
        from musketeer.frontends.sql.exprs import ExprEnv

        def no_columns(col: exp.Column) -> E.Expr:
            raise UnsupportedError(f"a column reference in VALUES ({self.text(col)})", self.src.loc_of(col))

        env = ExprEnv(self.src, no_columns, where="VALUES")
        rows: list[list[E.Lit]] = []
        for tup in node.expressions:
            cells = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
            row = []
            for cell in cells:
                e = lower_expr(cell, env)
                if not isinstance(e, E.Lit):
                    raise UnsupportedError(f"a VALUES entry that is not a constant ({self.text(cell)})",
                                           self.src.loc_of(cell))
                row.append(e)
            if rows and len(row) != len(rows[0]):
                raise self.fail(f"VALUES rows must all have {len(rows[0])} values, this one has {len(row)}", tup)
            rows.append(row)
        alias = node.args.get("alias")
        width = len(rows[0])
        names = [c.name for c in (alias.columns if alias is not None else [])]
        names = (names + [f"col{i}" for i in range(len(names), width)])[:width]
        types = []
        for i in range(width):
            t = rows[0][i].dtype
            for row in rows[1:]:
                t2 = common_type(t, row[i].dtype)
                if t2 is None:
                    raise self.fail(f"VALUES column {names[i]!r} mixes {t} and {row[i].dtype}", node)
                t = t2
            types.append(t)
        values = tuple(tuple(_as_type(row[i].value, types[i]) for i in range(width)) for row in rows)
        op = O.Values(Schema.of(list(zip(names, types))), values)
        qualifier = alias.name if alias is not None and alias.name else ""
        cols = {(qualifier, n): n for n in names}
        if qualifier:
            cols.update({("", n): n for n in names})
        return Rel(op, cols, names)

    @staticmethod
    def _named_ref(rel: Rel, alias: str) -> Rel:
        return Rel(rel.op, {(alias, n): ir for n, ir in zip(rel.names, rel.op.schema.names)}, list(rel.names))

    def column_env(self, rel_ref: list[Rel], where: str, outer: Rel | None = None) -> ExprEnv:
        """An ExprEnv resolving columns in `rel_ref[0]` (a one-element list so
        subquery joins made while lowering are seen by later columns)."""

        def column(node: exp.Column) -> E.Expr:
            ir = rel_ref[0].lookup(node.table, node.name)
            if ir is None and outer is not None:
                ir = outer.lookup(node.table, node.name)
            if ir is None:
                known = rel_ref[0].known_names()
                what = f"{node.table}.{node.name}" if node.table else node.name
                raise IRError(f"unknown column {what!r}{suggest(node.name, known)}", self.src.loc_of(node))
            return E.Col(ir)

        return ExprEnv(self.src, column, schema=lambda: rel_ref[0].op.schema, where=where)

    def lower_in(self, node: exp.Expression, rel: Rel, where: str) -> E.Expr:
        return lower_expr(node, self.column_env([rel], where))

    def join_items(self, sel: exp.Select, where_conjuncts: list[exp.Expression]) -> tuple[Rel, list[exp.Expression]]:
        """FROM + JOINs + the WHERE conjuncts usable as join conditions.

        Returns the joined relation and the conjuncts left for later (those
        with subqueries, and those applied above outer joins)."""
        from_ = sel.args.get("from_") or sel.args.get("from")
        joins = sel.args.get("joins") or []
        if from_ is None:  # SELECT without FROM: one row
            op = O.Values(Schema.of([("__one_row", BOOL)]), ((True,),))
            return self.filter(Rel(op, {}, []), where_conjuncts), []
        items = [from_.this] + [j.this for j in joins]
        rels = [self.from_item(i) for i in items]
        plain = [c for c in where_conjuncts if not _has_subquery(c)]
        later = [c for c in where_conjuncts if _has_subquery(c)]
        simple = all((j.side or "") == "" and (j.kind or "").upper() in ("", "INNER", "CROSS") and not j.args.get("using")
                     for j in joins)
        if simple:
            conds = list(plain)
            for j in joins:
                if j.args.get("on") is not None:
                    conds.extend(split_conjuncts(factor_or(j.args["on"])))
            return self._pool_join(rels, conds), later
        acc = rels[0]
        for j, right in zip(joins, rels[1:]):
            acc = self._sequential_join(acc, right, j)
        return acc, plain + later

    def _item_index(self, rels: list[Rel], cond: exp.Expression) -> set[int]:
        quals = {q.lower() for q in free_qualifiers(cond, frozenset())}
        found = set()
        for q in quals:
            for i, r in enumerate(rels):
                if q in r.qualifiers():
                    found.add(i)
                    break
        for col in cond.find_all(exp.Column):  # unqualified column: find its owner
            if not col.table:
                owners = [i for i, r in enumerate(rels) if r.lookup("", col.name) is not None]
                found.update(owners[:1])
        return found

    def _pool_join(self, rels: list[Rel], conds: list[exp.Expression]) -> Rel:
        multi: list[tuple[exp.Expression, set[int]]] = []
        top: list[exp.Expression] = []
        for c in conds:
            idx = self._item_index(rels, c)
            if len(idx) == 1:
                i = idx.pop()
                rels[i] = self.filter(rels[i], [c])
            elif not idx:
                top.append(c)
            else:
                multi.append((c, idx))
        acc, members = rels[0], {0}
        remaining = list(range(1, len(rels)))
        def usable(j: int, pending: list[tuple[exp.Expression, set[int]]]) -> list[exp.Expression]:
            """Conditions that joining item j now would make evaluable."""
            return [c for c, idx in pending if j in idx and idx <= members | {j}]

        while remaining:
            pick = next((j for j in remaining if any(isinstance(c, exp.EQ) for c in usable(j, multi))), None)
            if pick is None:
                pick = next((j for j in remaining if usable(j, multi)), remaining[0])
            conds_here = usable(pick, multi)
            multi = [(c, idx) for c, idx in multi if not any(c is u for u in conds_here)]
            acc = self.join(acc, rels[pick], "inner", conds_here, rels_right_quals=rels[pick].qualifiers())
            members.add(pick)
            remaining.remove(pick)
        leftover = [c for c, _ in multi] + top
        return self.filter(acc, leftover) if leftover else acc

    def _sequential_join(self, acc: Rel, right: Rel, j: exp.Join) -> Rel:
        side = (j.side or "").lower()
        kind = side or (j.kind or "inner").lower()
        if kind not in ("inner", "cross", "left", "right", "full", "semi", "anti"):
            raise UnsupportedError(f"{kind.upper()} JOIN", self.src.loc_of(j))
        conds: list[exp.Expression] = []
        if j.args.get("on") is not None:
            conds = split_conjuncts(factor_or(j.args["on"]))
        for ident in j.args.get("using") or []:
            name = ident.name
            lq = next((q for (q, n) in acc.cols if n.lower() == name.lower()), "")
            rq = next((q for (q, n) in right.cols if n.lower() == name.lower()), "")
            conds.append(exp.EQ(this=exp.column(name, table=lq), expression=exp.column(name, table=rq)))
        if kind == "cross" or (kind == "inner" and not conds):
            return self.join(acc, right, "cross" if not conds else "inner", conds, right.qualifiers())
        return self.join(acc, right, kind, conds, right.qualifiers())

    def join(self, left: Rel, right: Rel, kind: str, conds: list[exp.Expression],
             rels_right_quals: set[str]) -> Rel:
        """Join with conditions split into equi-keys, one-sided filters and a residual."""
        right_only, left_only, cross = [], [], []
        for c in conds:
            quals = {q.lower() for q in free_qualifiers(c, frozenset())}
            if quals and quals <= rels_right_quals:
                right_only.append(c)
            elif quals and not (quals & rels_right_quals):
                left_only.append(c)
            else:
                cross.append(c)
        if kind in ("inner", "left", "semi", "anti") and right_only:
            right = self.filter(right, right_only)
            right_only = []
        if kind in ("inner", "right") and left_only:
            left = self.filter(left, left_only)
            left_only = []
        right = make_disjoint(left, right)
        lkeys, rkeys, residual = [], [], []
        for c in cross:
            pair = self._equi_pair(c, left, right)
            if pair:
                lkeys.append(pair[0])
                rkeys.append(pair[1])
            else:
                residual.append(c)
        residual += left_only + right_only
        both_schema = left.op.schema.concat(right.op.schema)
        res_ir = [lower_expr(c, ExprEnv(self.src, self._both_column(left, right), schema=lambda: both_schema,
                                        where="a join condition")) for c in residual]
        if kind == "cross" and (lkeys or res_ir):
            kind = "inner"
        if kind == "inner" and not lkeys and not res_ir:
            kind = "cross"
        residual_expr = E.conjoin(res_ir)
        op = self.build(conds[0] if conds else None, lambda: O.Join(
            left.op, right.op, kind, tuple(lkeys), tuple(rkeys), residual_expr))
        if kind in ("semi", "anti"):
            return Rel(op, dict(left.cols), list(left.names))
        return Rel(op, {**left.cols, **right.cols})

    def _both_column(self, left: Rel, right: Rel):  # type: ignore[no-untyped-def]
        def column(node: exp.Column) -> E.Expr:
            ir = right.lookup(node.table, node.name) if node.table and node.table.lower() in right.qualifiers() else None
            if ir is None:
                ir = left.lookup(node.table, node.name) or right.lookup(node.table, node.name)
            if ir is None:
                raise self.fail(f"unknown column {self.text(node)!r}", node)
            return E.Col(ir)
        return column

    def _equi_pair(self, c: exp.Expression, left: Rel, right: Rel) -> tuple[str, str] | None:
        if not isinstance(c, exp.EQ):
            return None
        a, b = c.this, c.expression
        if not (isinstance(a, exp.Column) and isinstance(b, exp.Column)):
            return None
        rq = right.qualifiers()
        a_right = a.table.lower() in rq if a.table else right.lookup("", a.name) is not None
        b_right = b.table.lower() in rq if b.table else right.lookup("", b.name) is not None
        if a_right == b_right:
            return None
        lcol, rcol = (b, a) if a_right else (a, b)
        li, ri = left.lookup(lcol.table, lcol.name), right.lookup(rcol.table, rcol.name)
        if li is None or ri is None:
            return None
        lt, rt = left.op.schema.dtype(li), right.op.schema.dtype(ri)
        if common_type(lt, rt) is None:
            raise self.fail(f"cannot join {self.text(lcol)} ({lt}) with {self.text(rcol)} ({rt})", c)
        return li, ri

    def filter(self, rel: Rel, conds: Iterable[exp.Expression]) -> Rel:
        conds = list(conds)
        if not conds:
            return rel
        ref = [rel]
        env = self.column_env(ref, "WHERE")
        env.subquery = lambda n: self.scalar_or_predicate_subquery(n, ref)
        parts = []
        for c in conds:
            parts.append(lower_expr(c, env))
        pred = E.conjoin(parts)
        assert pred is not None
        op = self.build(conds[0], lambda: O.Filter(ref[0].op, pred))
        return Rel(op, dict(ref[0].cols), list(ref[0].names))

    # --- SELECT ----------------------------------------------------------------
    def from_where(self, sel: exp.Select, conjuncts: list[exp.Expression]) -> Rel:
        rel, later = self.join_items(sel, conjuncts)
        for c in later:
            rel = self.apply_predicate(rel, c)
        return rel

    def apply_predicate(self, rel: Rel, c: exp.Expression) -> Rel:
        """A WHERE conjunct; EXISTS / IN (subquery) become semi or anti joins."""
        negated, node = False, c
        while isinstance(node, exp.Not):
            negated, node = not negated, node.this
        if isinstance(node, exp.Paren):
            return self.apply_predicate(rel, exp.Not(this=node.this) if negated else node.this)
        if isinstance(node, exp.Exists):
            return self.semi_join(rel, node.this, negated, None, node)
        if isinstance(node, exp.In) and node.args.get("query") is not None:
            return self.semi_join(rel, node.args["query"], negated, node.this, node)
        return self.filter(rel, [c])

    def lower_select(self, sel: exp.Select) -> Rel:
        where = sel.args.get("where")
        conjuncts = split_conjuncts(factor_or(where.this)) if where is not None else []
        rel = self.from_where(sel, conjuncts)
        items = sel.expressions
        has_aggs = (any(_aggregates_in(i) for i in items) or sel.args.get("group") is not None
                    or sel.args.get("having") is not None)
        windows = WindowLookup(self)
        if has_aggs:
            ref, lower_post = self.aggregate(sel, rel, windows)
        else:
            ref = [rel]
            env = self.column_env(ref, "the SELECT list")
            env.subquery = lambda n: self.scalar_subquery(n, ref)
            env.window = windows
            lower_post = lambda node: lower_expr(node, env)  # noqa: E731
        self.lower_windows(sel, ref, lower_post, windows)
        qualify = sel.args.get("qualify")
        if qualify is not None:
            pred = lower_post(qualify.this)
            ref[0] = Rel(self.build(qualify, lambda: O.Filter(ref[0].op, pred)), ref[0].cols, ref[0].names)
        out: list[tuple[str, E.Expr]] = []
        names: list[str] = []
        taken: set[str] = set()
        for item in items:
            name = item.alias_or_name or "col"
            e = lower_post(item.this if isinstance(item, exp.Alias) else item)
            ir_name = fresh_name(name, taken)
            taken.add(ir_name)
            out.append((ir_name, e))
            names.append(name)
        cur = ref[0]
        op = self.build(sel, lambda: O.Project(cur.op, tuple(out)))
        result = Rel(op, {("", n): ir for n, (ir, _) in zip(names, out)}, names)
        return self.order_limit(sel, result, dict(out), lower_post)

    def order_limit(self, node: exp.Expression, rel: Rel, out_exprs: dict[str, E.Expr],
                    lower_pre: Callable[[exp.Expression], E.Expr] | None) -> Rel:
        """DISTINCT, ORDER BY (by output name, or by an expression over the
        pre-projection relation, carried as a hidden column) and LIMIT."""
        distinct = node.args.get("distinct") if isinstance(node, exp.Select) else None  # set ops: a bool
        if distinct:
            if distinct.args.get("on"):
                raise UnsupportedError("DISTINCT ON", self.src.loc_of(node))
            rel = Rel(O.Distinct(rel.op), rel.cols, rel.names)
        order = node.args.get("order")
        if order is not None:
            keys: list[O.SortKey] = []
            hidden: list[tuple[str, E.Expr]] = []
            for o in order.expressions:
                target = o.this
                ir_name = None
                if isinstance(target, exp.Column) and not target.table:
                    ir_name = rel.lookup("", target.name)
                if ir_name is None and isinstance(target, exp.Literal) and not target.is_string:
                    pos = int(target.this)
                    if not 1 <= pos <= len(rel.op.schema):
                        raise IRError(f"ORDER BY position {pos} is not in the select list", self.src.loc_of(target))
                    ir_name = rel.op.schema.names[pos - 1]
                if ir_name is None:
                    if lower_pre is None:
                        raise self.fail(f"ORDER BY {self.text(target)} must name an output column", target)
                    e = lower_pre(target)
                    ir_name = next((n for n, x in out_exprs.items() if x == e), None)
                    if ir_name is None:
                        if distinct:
                            raise IRError("with SELECT DISTINCT, ORDER BY expressions must appear in the select list",
                                          self.src.loc_of(target))
                        ir_name = fresh_name(f"order_{len(hidden)}", set(rel.op.schema.names) | set(out_exprs))
                        hidden.append((ir_name, e))
                desc = bool(o.args.get("desc"))
                nulls_first = bool(o.args.get("nulls_first"))
                keys.append(O.SortKey(ir_name, not desc, nulls_first))
            visible = rel.op.schema.names
            op = rel.op
            if hidden:
                assert isinstance(op, O.Project)
                op = O.Project(op.input, op.exprs + tuple(hidden))
            op = O.Sort(op, tuple(keys))
            if hidden:
                op = O.Project(op, tuple((n, E.Col(n)) for n in visible))
            rel = Rel(op, rel.cols, rel.names)
        limit, offset = node.args.get("limit"), node.args.get("offset")
        if limit is not None or offset is not None:
            count = self._int_clause(limit, "LIMIT") if limit is not None else None
            skip = self._int_clause(offset, "OFFSET") if offset is not None else 0
            rel = Rel(self.build(limit or offset, lambda: O.Limit(rel.op, count, skip)), rel.cols, rel.names)
        return rel

    def _int_clause(self, clause: exp.Expression, what: str) -> int:
        value = clause.expression if clause.expression is not None else clause.this
        if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
            return int(value.this)
        raise UnsupportedError(f"{what} that is not a whole-number constant", self.src.loc_of(clause))

    # --- GROUP BY ----------------------------------------------------------
    def aggregate(self, sel: exp.Select, rel: Rel,
                  windows: WindowLookup) -> tuple[list[Rel], Callable[[exp.Expression], E.Expr]]:
        group = sel.args.get("group")
        group_nodes, grouping_sets = expand_group(group)
        pre_names = set(rel.op.schema.names)
        pre_exprs: list[tuple[str, E.Expr]] = [(n, E.Col(n)) for n in rel.op.schema.names]
        taken = set(pre_names)

        def pre_column(e: E.Expr, hint: str) -> str:
            if isinstance(e, E.Col):
                return e.name
            for n, x in pre_exprs:
                if x == e:
                    return n
            name = fresh_name(hint, taken)
            taken.add(name)
            pre_exprs.append((name, e))
            return name

        key_env = self.column_env([rel], "GROUP BY")
        key_map: dict[E.Expr, str] = {}
        keys: list[str] = []
        node_keys: list[str] = []  # the key column of each of group_nodes
        for g in group_nodes:
            e = lower_expr(g, key_env)
            k = pre_column(e, g.alias_or_name if isinstance(g, exp.Column) else "key")
            if k not in keys:
                keys.append(k)
            node_keys.append(k)
            key_map[e] = k

        aggs: list[tuple[str, E.AggCall]] = []
        agg_names: dict[str, str] = {}  # sqlglot sql text -> output name
        alias_of = {}
        for item in sel.expressions:
            if isinstance(item, exp.Alias) and is_aggregate(item.this):
                alias_of[item.this.sql()] = item.alias
        arg_env = self.column_env([rel], "an aggregate argument")

        agg_exprs: dict[str, E.Expr] = {}  # sqlglot sql text -> its IR expression

        def aggregate_call(node: exp.Expression) -> E.Expr:
            text = node.sql()
            if text not in agg_exprs:
                hint = alias_of.get(text)

                def add(call: E.AggCall) -> E.Col:
                    nonlocal hint
                    for n, c in aggs:
                        if c == call:
                            return E.Col(n)
                    base = hint or call.func.replace("count_star", "count")
                    hint = None
                    name = fresh_name(base, taken | set(agg_names.values()))
                    taken.add(name)
                    agg_names[f"{text}#{len(aggs)}"] = name
                    aggs.append((name, call))
                    return E.Col(name)

                agg_exprs[text] = self.aggregate_expr(node, arg_env, pre_column, add)
            return agg_exprs[text]

        # Find every aggregate (SELECT, HAVING, ORDER BY) first, so the Aggregate node is complete.
        targets = list(sel.expressions) + ([sel.args["having"].this] if sel.args.get("having") else [])
        if sel.args.get("qualify"):
            targets.append(sel.args["qualify"].this)
        if sel.args.get("order"):
            targets += [o.this for o in sel.args["order"].expressions]
        for t in targets:
            for a in _aggregates_in(t):
                aggregate_call(a)
        # GROUPING(...) calls: one constant column per distinct call and grouping set
        groupings: list[tuple[str, list[str]]] = []
        grouping_names: dict[str, str] = {}
        for t in targets:
            for g in (n for n in t.find_all(exp.Grouping) if not _in_subquery(n, t)):
                if g.sql() in grouping_names:
                    continue
                args = []
                for a in g.expressions:
                    e = lower_expr(a, key_env)
                    if e not in key_map:
                        raise self.fail(f"GROUPING() arguments must be GROUP BY keys, not {self.text(a)}", a)
                    args.append(key_map[e])
                name = fresh_name("grouping", taken | set(agg_names.values()))
                taken.add(name)
                grouping_names[g.sql()] = name
                groupings.append((name, args))
        pre_op = rel.op
        if len(pre_exprs) > len(rel.op.schema):
            pre_op = self.build(sel, lambda: O.Project(rel.op, tuple(pre_exprs)))
        if grouping_sets is None:
            sets = [list(range(len(group_nodes)))]
        else:
            sets = grouping_sets
        if grouping_sets is None and not groupings:
            agg_op = self.build(sel, lambda: O.Aggregate(pre_op, tuple(keys), tuple(aggs)))
        else:
            set_keys = [[node_keys[i] for i in s] for s in sets]
            agg_op = self.build(group, lambda: grouping_sets_op(
                pre_op, keys, [[keys.index(k) for k in ks] for ks in set_keys], tuple(aggs), groupings))
        ref = [Rel(agg_op, {q_n: ir for q_n, ir in rel.cols.items() if ir in keys})]

        # Post-aggregation expressions resolve columns against the pre-aggregation
        # relation; `finish` then maps group-key subexpressions onto key columns and
        # rejects any other column (it is neither grouped nor aggregated).
        env = self.column_env([rel], "the SELECT list")
        env.aggregate = aggregate_call
        env.window = windows
        env.grouping = lambda node: E.Col(grouping_names[node.sql()])
        env.subquery = lambda n: self.scalar_subquery(n, ref)
        env.schema = lambda: None

        def to_keys(x: E.Expr) -> E.Expr:
            return E.Col(key_map[x]) if x in key_map else x.map_children(to_keys)

        def lower_post(node: exp.Expression) -> E.Expr:
            e = to_keys(lower_expr(node, env))
            allowed = set(ref[0].op.schema.names)
            for c in sorted(e.columns()):
                if c not in allowed:
                    bad = next((col for col in node.find_all(exp.Column) if rel.lookup(col.table, col.name) == c), node)
                    raise self.fail(f"column {self.text(bad)!r} must appear in GROUP BY or be used in an aggregate function",
                                    bad)
            try:
                e.type_in(ref[0].op.schema)
            except MusketeerError as err:
                err.loc = err.loc or self.src.loc_of(node)
                raise
            return e

        having = sel.args.get("having")
        if having is not None:
            pred = lower_post(having.this)
            ref[0] = Rel(self.build(having, lambda: O.Filter(ref[0].op, pred)), ref[0].cols)
        return ref, lower_post


def _as_type(value: object, t: object) -> object:
    """A VALUES constant in its column's type (ints in a float column become floats)."""
    if value is None:
        return None
    kind = getattr(t, "kind", "")
    if kind in ("float64", "decimal") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _in_subquery(node: exp.Expression, root: exp.Expression) -> bool:
    """Whether `node` sits inside a subquery of `root`."""
    p = node.parent
    while p is not None and p is not root:
        if isinstance(p, (exp.Subquery, exp.Select, exp.Exists)):
            return True
        p = p.parent
    return False


def _aggregates_in(node: exp.Expression) -> list[exp.Expression]:
    """Aggregate calls in `node`, not looking inside subqueries."""
    out: list[exp.Expression] = []

    def visit(n: exp.Expression) -> None:
        if isinstance(n, (exp.Subquery, exp.Exists, exp.Select)):
            return
        if isinstance(n, exp.Window):  # the window's own function is not a group aggregate; its arguments may be
            for c in list(n.this.iter_expressions()) + list(n.args.get("partition_by") or []):
                visit(c)
            if n.args.get("order") is not None:
                visit(n.args["order"])
            return
        if isinstance(n, exp.Grouping):  # GROUPING() is a property of the group, not an aggregate
            return
        if is_aggregate(n):
            out.append(n)
            return
        for c in n.iter_expressions():
            visit(c)

    visit(node)
    return out
