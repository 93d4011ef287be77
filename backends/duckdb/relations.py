"""One SQL query per IR operator, built with sqlglot's expression builders.

`RelationBuilder.select(op, ref)` is the visitor: one `op_<Operator>` method
per relational operator, each returning a query over its inputs, which
`ref(input)` names (a view, a temporary table or a CTE). Every query lists
its output columns by name in the IR's order, so `SELECT *` over a named
relation always means exactly the IR's columns. A relation with no columns
(`SELECT COUNT(*)` after projection pruning) carries one NULL placeholder
column, since SQL has no empty select list.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from musketeer.backends.duckdb.sqlexprs import (
    ENGINE,
    SqlExprCompiler,
    aggregate,
    cast,
    column,
    data_type,
    ident,
    condition,
)
from musketeer.ir import operators as O
from musketeer.ir.expr import AggCall
from musketeer.ir.schema import Schema
from musketeer.ir.types import BOOL, DataType, UnsupportedError
from musketeer.ir.window import Frame, FrameBound, WindowCall

#: The placeholder column of a relation whose IR schema has no columns.
UNIT_COLUMN = "__musketeer_unit"
LEFT, RIGHT = "l", "r"

Ref = Callable[[O.Op], exp.Expression]


def table(name: str, alias: str | None = None) -> exp.Table:
    """A reference to a named relation (a view, table or CTE), optionally aliased."""
    node = exp.Table(this=exp.to_identifier(name))  # generated names: [a-z0-9_], quoted only if needed
    return node.as_(alias, quoted=False) if alias else node


def star_from(source: exp.Expression) -> exp.Select:
    return exp.select(exp.Star()).from_(source, copy=False)


def output_columns(schema: Schema, table_alias: str | None = None) -> list[exp.Expression]:
    """The relation's columns by name (the placeholder if it has none)."""
    if not len(schema):
        return [exp.alias_(exp.Null(), UNIT_COLUMN, quoted=True)]
    return [column(f.name, table_alias) for f in schema]


class RelationBuilder:
    """Builds the query of one operator at a time (see module docstring)."""

    def select(self, op: O.Op, ref: Ref) -> exp.Query:
        method = getattr(self, "op_" + op.opname, None)
        if method is None:
            raise UnsupportedError(f"operator {op.opname} in the {ENGINE}")
        return method(op, ref)

    # --- constants --------------------------------------------------------------
    def op_Values(self, op: O.Values, ref: Ref) -> exp.Query:
        """Constant rows: `SELECT * FROM (VALUES (...), ...) AS v(columns)`, each
        value a typed constant; no rows: a typed NULL row filtered away."""
        compiler = SqlExprCompiler(op.schema)
        names = [ident(f.name) for f in op.schema]
        if not op.rows:
            items = [exp.alias_(compiler.null(f.dtype), ident(f.name)) for f in op.schema]
            return exp.select(*items).where(exp.false(), copy=False)
        rows = [exp.Tuple(expressions=[compiler.literal(v, f.dtype) for v, f in zip(row, op.schema)])
                for row in op.rows]
        values = exp.Values(expressions=rows, alias=exp.TableAlias(this=exp.to_identifier("v"), columns=names))
        return star_from(values)

    # --- row-wise ---------------------------------------------------------------
    def op_Filter(self, op: O.Filter, ref: Ref) -> exp.Query:
        predicate = SqlExprCompiler(op.input.schema).compile(op.predicate, BOOL)
        return star_from(ref(op.input)).where(predicate, copy=False)

    def op_Project(self, op: O.Project, ref: Ref) -> exp.Query:
        compiler = SqlExprCompiler(op.input.schema)
        items: list[exp.Expression] = []
        for (name, e), field in zip(op.exprs, op.schema):
            code = compiler.compile(e, field.dtype)
            if isinstance(code, exp.Column) and code.name == name:
                items.append(code)
            else:
                items.append(exp.alias_(code, ident(name)))
        if not items:
            items = output_columns(op.schema)
        return exp.select(*items).from_(ref(op.input), copy=False)

    # --- joins ------------------------------------------------------------------
    def op_Join(self, op: O.Join, ref: Ref) -> exp.Query:
        if op.kind in ("semi", "anti"):
            return self._semi_join(op, ref)
        left, right = op.left.schema, op.right.schema
        side = {name: LEFT for name in left.names} | {name: RIGHT for name in right.names}
        items = [column(name, side[name]) for name in left.names + right.names] or output_columns(op.schema)
        query = exp.select(*items).from_(ref_as(ref, op.left, LEFT), copy=False)
        if op.kind == "cross":
            return query.join(ref_as(ref, op.right, RIGHT), join_type="cross", copy=False)
        on = self._condition(op, side)
        kind = {"inner": "inner", "left": "left", "right": "right", "full": "full"}[op.kind]
        return query.join(ref_as(ref, op.right, RIGHT), on=on if on is not None else exp.true(),
                          join_type=kind, copy=False)

    def _condition(self, op: O.Join, side: dict[str, str]) -> exp.Expression | None:
        """Key equalities AND the residual, every column read through its side's alias."""
        parts: list[exp.Expression] = [
            exp.EQ(this=column(lk, LEFT), expression=column(rk, RIGHT))
            for lk, rk in zip(op.left_keys, op.right_keys)
        ]
        if op.residual is not None:
            both = op.left.schema.concat(op.right.schema)
            parts.append(condition(SqlExprCompiler(both, side.get).compile(op.residual, BOOL)))
        if not parts:
            return None
        on = parts[0]
        for part in parts[1:]:
            on = exp.And(this=on, expression=part)
        return on

    def _semi_join(self, op: O.Join, ref: Ref) -> exp.Query:
        """Left rows with (semi) or without (anti) a match, as [NOT] EXISTS,
        which DuckDB plans as a semi or anti hash join. NOT IN (null_aware):
        a NULL key comparison counts as a match, so one NULL right key
        rejects every row and a NULL left key is rejected unless the right
        side is empty (one key: DuckDB's own NOT IN does exactly that)."""
        side = {name: RIGHT for name in op.right.schema.names}
        if op.residual is not None:  # names are unique across the sides then
            side |= {name: LEFT for name in op.left.schema.names}
        inner = star_from(ref_as(ref, op.right, RIGHT))
        keys = list(zip(op.left_keys, op.right_keys))
        residual = None
        if op.residual is not None:
            both = op.left.schema.concat(op.right.schema)
            residual = SqlExprCompiler(both, lambda name: side.get(name, LEFT)).compile(op.residual, BOOL)
        outer = star_from(ref_as(ref, op.left, LEFT))
        if op.kind == "anti" and op.null_aware and (len(keys) == 1 or residual is None):
            # DuckDB's own NOT IN; with several keys a NULL in any key of either row makes the test unknown
            lefts = [column(lk, LEFT) for lk, _ in keys]
            sub = exp.select(*(column(rk, RIGHT) for _, rk in keys)).from_(ref_as(ref, op.right, RIGHT), copy=False)
            if residual is not None:
                sub = sub.where(residual, copy=False)
            probe = lefts[0] if len(lefts) == 1 else exp.Tuple(expressions=lefts)
            test = exp.In(this=probe, query=exp.Subquery(this=sub))
            return outer.where(exp.Not(this=exp.Paren(this=test)), copy=False)
        equalities = [exp.EQ(this=column(lk, LEFT), expression=column(rk, RIGHT)) for lk, rk in keys]
        match: exp.Expression | None = None
        for eq in equalities:
            match = eq if match is None else exp.And(this=match, expression=eq)
        if match is not None and op.kind == "anti" and op.null_aware:
            # several keys and a residual (no correlated row IN in DuckDB): a NULL key on either side counts as a match
            unknown = [exp.Is(this=column(k, side_), expression=exp.Null())
                       for lk, rk in keys for k, side_ in ((lk, LEFT), (rk, RIGHT))]
            match = exp.Paren(this=match)
            for test_ in unknown:
                match = exp.Or(this=match, expression=test_)
        conditions = [c for c in (match, residual) if c is not None]
        sub = exp.select(exp.Literal.number(1)).from_(ref_as(ref, op.right, RIGHT), copy=False)
        for c in conditions:
            sub = sub.where(condition(c), copy=False)
        test = exp.Exists(this=sub)
        return outer.where(exp.Not(this=test) if op.kind == "anti" else test, copy=False)

    # --- grouping and sets ------------------------------------------------------
    def op_Aggregate(self, op: O.Aggregate, ref: Ref) -> exp.Query:
        schema = op.input.schema
        items: list[exp.Expression] = [column(k) for k in op.keys]
        items += [exp.alias_(aggregate(call, schema), ident(name)) for name, call in op.aggs]
        if not op.keys and not op.aggs:
            return self._one_row(op, ref)
        query = exp.select(*items).from_(ref(op.input), copy=False)
        if op.keys:
            query = query.group_by(*(column(k) for k in op.keys), copy=False)
        return query

    def _one_row(self, op: O.Aggregate, ref: Ref) -> exp.Query:
        """A global aggregate with nothing to compute: one row, even over empty input."""
        return exp.select(exp.alias_(exp.Null(), UNIT_COLUMN, quoted=True)).from_(
            exp.select(exp.Count(this=exp.Star())).from_(ref(op.input)).subquery("c"), copy=False)

    def op_Distinct(self, op: O.Distinct, ref: Ref) -> exp.Query:
        return star_from(ref(op.input)).distinct(copy=False)

    def _setop(self, op: O.SetOp, ref: Ref, kind: type[exp.SetOperation]) -> exp.Query:
        """Columns by position, named and typed as the IR says (the left side's names)."""

        def side(child: O.Op) -> exp.Select:
            if not len(op.schema):
                return star_from(ref(child))
            items = []
            for theirs, ours in zip(child.schema, op.schema):
                code: exp.Expression = column(theirs.name)
                if data_type(theirs.dtype) != data_type(ours.dtype):
                    code = exp.Cast(this=code, to=data_type(ours.dtype))
                items.append(code if theirs.name == ours.name and not isinstance(code, exp.Cast)
                             else exp.alias_(code, ident(ours.name)))
            return exp.select(*items).from_(ref(child), copy=False)

        return kind(this=side(op.left), expression=side(op.right), distinct=op.distinct)

    def op_Union(self, op: O.Union, ref: Ref) -> exp.Query:
        return self._setop(op, ref, exp.Union)

    def op_Intersect(self, op: O.Intersect, ref: Ref) -> exp.Query:
        return self._setop(op, ref, exp.Intersect)

    def op_Except(self, op: O.Except, ref: Ref) -> exp.Query:
        return self._setop(op, ref, exp.Except)

    # --- order ------------------------------------------------------------------
    def op_Sort(self, op: O.Sort, ref: Ref) -> exp.Query:
        return star_from(ref(op.input)).order_by(*self._order(op), copy=False)

    @staticmethod
    def _order(op: O.Sort) -> list[exp.Ordered]:
        return order_keys(op.keys)

    # --- windows ----------------------------------------------------------------
    def op_Window(self, op: O.Window, ref: Ref) -> exp.Query:
        """The input's columns and one `f(...) OVER (PARTITION BY ... ORDER BY ... frame)` per call."""
        schema = op.input.schema
        order_type = schema.dtype(op.order_by[0].column) if len(op.order_by) == 1 else None
        items: list[exp.Expression] = [column(f.name) for f in schema]
        for name, call in op.calls:
            function, bigint = window_function(call, schema)
            window = exp.Window(
                this=function,
                partition_by=[column(k) for k in op.partition_by] or None,
                order=exp.Order(expressions=order_keys(op.order_by)) if op.order_by else None,
                spec=frame_spec(call.frame, order_type) if call.frame is not None else None,
                over="OVER")
            items.append(exp.alias_(cast(window, "BIGINT") if bigint else window, ident(name)))
        return exp.select(*items).from_(ref(op.input), copy=False)

    def op_Limit(self, op: O.Limit, ref: Ref, sort: O.Sort | None = None) -> exp.Query:
        query = star_from(ref(op.input if sort is None else sort.input))
        if sort is not None:  # ORDER BY ... LIMIT in one query: a top-N
            query = query.order_by(*self._order(sort), copy=False)
        if op.count is not None:
            query = query.limit(exp.Literal.number(op.count), copy=False)
        if op.offset:
            query = query.offset(exp.Literal.number(op.offset), copy=False)
        return query


def order_keys(keys: tuple[O.SortKey, ...]) -> list[exp.Ordered]:
    return [exp.Ordered(this=column(k.column), desc=not k.ascending, nulls_first=k.nulls_first) for k in keys]


_NO_ARGUMENT = {"row_number": "ROW_NUMBER", "rank": "RANK", "dense_rank": "DENSE_RANK",
                "percent_rank": "PERCENT_RANK", "cume_dist": "CUME_DIST"}
_VALUE = {"first_value": "FIRST_VALUE", "last_value": "LAST_VALUE", "nth_value": "NTH_VALUE",
          "lag": "LAG", "lead": "LEAD", "ntile": "NTILE"}


def window_function(call: WindowCall, schema: Schema) -> tuple[exp.Expression, bool]:
    """The function of one window call, and whether its result is cast to
    BIGINT (a SUM of integers, as for Aggregate)."""
    if call.func in _NO_ARGUMENT:
        return exp.Anonymous(this=_NO_ARGUMENT[call.func], expressions=[]), False
    if call.func == "ntile":
        return exp.Anonymous(this="NTILE", expressions=[exp.Literal.number(call.params[0])]), False
    if call.func in _VALUE:
        assert call.arg is not None
        args: list[exp.Expression] = [column(call.arg)]
        if call.func in ("lag", "lead"):
            args.append(exp.Literal.number(call.params[0]))
            if len(call.params) > 1 and call.params[1] is not None:
                t = schema.dtype(call.arg)
                args.append(SqlExprCompiler(schema).literal(call.params[1], t))
        elif call.func == "nth_value":
            args.append(exp.Literal.number(call.params[0]))
        return exp.Anonymous(this=_VALUE[call.func], expressions=args), False
    if call.func in ("sum", "avg", "count", "count_star", "min", "max"):
        agg = aggregate(AggCall(call.func, call.arg, call.distinct), schema)
        if isinstance(agg, exp.Cast):  # SUM of integers: cast the windowed value
            return agg.this, True
        return agg, False
    raise UnsupportedError(f"window function {call.func} in the {ENGINE}")


def frame_spec(frame: Frame, order_type: DataType | None) -> exp.WindowSpec:
    """ROWS / RANGE / GROUPS BETWEEN ... AND ...; a RANGE offset over a date
    or timestamp key is a number of days."""

    def bound(b: FrameBound) -> tuple[exp.Expression | str, str | None]:
        if b.kind == "unbounded_preceding":
            return "UNBOUNDED", "PRECEDING"
        if b.kind == "unbounded_following":
            return "UNBOUNDED", "FOLLOWING"
        if b.kind == "current_row":
            return "CURRENT ROW", None
        offset: exp.Expression = exp.Literal.number(repr(b.offset) if isinstance(b.offset, float) else b.offset)
        if frame.kind == "range" and order_type is not None and order_type.is_temporal:
            offset = exp.Interval(this=exp.Literal.string(str(b.offset)), unit=exp.var("DAY"))
        return offset, b.kind.upper()

    start, start_side = bound(frame.start)
    end, end_side = bound(frame.end)
    return exp.WindowSpec(kind=frame.kind.upper(), start=start, start_side=start_side, end=end, end_side=end_side)


def ref_as(ref: Ref, op: O.Op, alias: str) -> exp.Expression:
    """`ref(op)` under a table alias."""
    node = ref(op)
    return node.as_(alias, quoted=False) if isinstance(node, exp.Table) else node
