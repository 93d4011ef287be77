"""Lower sqlglot scalar expressions to IR expressions.

Columns, aggregates and subqueries depend on where the expression sits (a
WHERE clause, a grouped SELECT list, ...), so the caller supplies them via an
`ExprEnv`; everything else is a fixed mapping from sqlglot nodes to IR nodes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from typing import Callable

from sqlglot import exp

from musketeer.frontends.sql.source import SourceText
from musketeer.frontends.sql.strict import refuse_node, user_text
from musketeer.ir import expr as E
from musketeer.ir.schema import Schema
from musketeer.ir.types import (
    BOOL, DATE, FLOAT64, INT64, STRING, TIMESTAMP, DataType, IRError, MusketeerError,
    UnsupportedError, decimal,
)


@dataclass
class ExprEnv:
    src: SourceText
    column: Callable[[exp.Column], E.Expr]
    aggregate: Callable[[exp.AggFunc], E.Expr] | None = None
    subquery: Callable[[exp.Expression], E.Expr] | None = None
    window: Callable[[exp.Window], E.Expr] | None = None  # the column holding a computed window call
    grouping: Callable[[exp.Grouping], E.Expr] | None = None  # the column holding a GROUPING(...) value
    schema: Callable[[], Schema | None] = lambda: None  # for eager type checks
    where: str = "expression"  # for "aggregates are not allowed in WHERE"


_ARITH = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.Mod: "%"}
_COMPARE = {exp.EQ: "=", exp.NEQ: "<>", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_SIMPLE_FUNCS: dict[type, str] = {
    exp.Upper: "upper", exp.Lower: "lower", exp.Length: "length", exp.Abs: "abs",
    exp.Sqrt: "sqrt", exp.Ln: "ln", exp.Exp: "exp", exp.Floor: "floor", exp.Ceil: "ceil",
}
_INTERVAL_UNITS = {
    "day": (0, 1), "days": (0, 1), "week": (0, 7), "weeks": (0, 7),
    "month": (1, 0), "months": (1, 0), "quarter": (3, 0), "quarters": (3, 0),
    "year": (12, 0), "years": (12, 0),
}
_EXTRACT_PARTS = {
    "year": "year", "quarter": "quarter", "month": "month", "day": "day", "dow": "dow",
    "dayofweek": "dow", "doy": "doy", "dayofyear": "doy", "hour": "hour", "minute": "minute",
    "second": "second",
}
_DATE_PART_FUNCS: dict[type, str] = {exp.Year: "year", exp.Month: "month", exp.Day: "day"}


def sql_type(dtype: exp.DataType, src: SourceText) -> DataType:
    t = dtype.this
    T = exp.DataType.Type
    if t in (T.BIGINT, T.INT, T.SMALLINT, T.TINYINT, T.UBIGINT, T.UINT, T.USMALLINT, T.UTINYINT, T.INT128):
        return INT64
    if t in (T.DOUBLE, T.FLOAT):
        return FLOAT64
    if t == T.DECIMAL:
        params = [int(p.this.this) for p in dtype.expressions if isinstance(p.this, exp.Literal)]
        precision, scale = (params + [18, 3])[:2] if params else (18, 3)
        return decimal(precision, scale if len(params) > 1 else (0 if params else 3))
    if t in (T.VARCHAR, T.TEXT, T.CHAR, T.NVARCHAR, T.NCHAR):
        return STRING
    if t == T.DATE:
        return DATE
    if t in (T.TIMESTAMP, T.DATETIME, T.TIMESTAMPNTZ):
        return TIMESTAMP
    if t == T.BOOLEAN:
        return BOOL
    raise UnsupportedError(f"type {user_text(dtype, src)}", src.loc_of(dtype))


def parse_interval(node: exp.Interval, src: SourceText) -> E.Interval:
    text = node.this.name if node.this is not None else ""
    unit = node.args.get("unit")
    unit_text = unit.name if unit is not None else ""
    m = re.fullmatch(r"\s*(-?\d+)\s*([A-Za-z]*)\s*", text)
    if not m:
        raise UnsupportedError(f"interval {user_text(node, src)}", src.loc_of(node))
    n = int(m.group(1))
    unit_name = (unit_text or m.group(2) or "").lower()
    if unit_name not in _INTERVAL_UNITS:
        raise UnsupportedError(f"interval unit {unit_name or '(none)'!r}", src.loc_of(node))
    months, days = _INTERVAL_UNITS[unit_name]
    return E.Interval(months * n, days * n)


def literal_as(value: str, target: DataType, node: exp.Expression, src: SourceText) -> E.Lit:
    """A string literal read as a date/timestamp/number (CAST or comparison)."""
    try:
        if target == DATE:
            return E.Lit(dt.date.fromisoformat(value.strip()), DATE)
        if target == TIMESTAMP:
            return E.Lit(dt.datetime.fromisoformat(value.strip()), TIMESTAMP)
        if target == INT64:
            return E.Lit(int(value), INT64)
        if target.kind in ("float64", "decimal"):
            return E.Lit(float(value), FLOAT64)
    except ValueError:
        raise IRError(f"cannot read {value!r} as {target}", src.loc_of(node)) from None
    return E.Lit(value, STRING)


def lower_expr(node: exp.Expression, env: ExprEnv) -> E.Expr:
    try:
        result = _lower(node, env)
    except MusketeerError as err:
        if err.loc is None:
            err.loc = env.src.loc_of(node)
        raise
    return result


def _check(e: E.Expr, node: exp.Expression, env: ExprEnv) -> E.Expr:
    schema = env.schema()
    if schema is not None:
        try:
            e.type_in(schema)
        except MusketeerError as err:
            if err.loc is None:
                err.loc = env.src.loc_of(node)
            raise
    return e


def _coerce_pair(a: E.Expr, b: E.Expr, a_node: exp.Expression, b_node: exp.Expression,
                 env: ExprEnv) -> tuple[E.Expr, E.Expr]:
    """Comparing a temporal column with a string literal reads the literal as
    a date (what SQL engines do), so backends never compare mixed types."""
    schema = env.schema()
    if schema is None:
        return a, b

    def t(e: E.Expr) -> DataType | None:
        try:
            return e.type_in(schema)
        except MusketeerError:
            return None

    ta, tb = t(a), t(b)
    if ta is not None and ta.is_temporal and isinstance(b, E.Lit) and b.dtype == STRING:
        b = literal_as(b.value, ta, b_node, env.src)
    if tb is not None and tb.is_temporal and isinstance(a, E.Lit) and a.dtype == STRING:
        a = literal_as(a.value, tb, a_node, env.src)
    return a, b


def _lower(node: exp.Expression, env: ExprEnv) -> E.Expr:  # noqa: C901 - one dispatch table
    low = lambda n: lower_expr(n, env)  # noqa: E731
    if isinstance(node, exp.Paren):
        return low(node.this)
    function = _lower_function(node, env, low)  # first: ConcatWs is a kind of sqlglot Concat
    if function is not None:
        return _check(function, node, env)
    if isinstance(node, exp.Column):
        return env.column(node)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return E.Lit(node.this, STRING)
        text = node.this
        if re.fullmatch(r"-?\d+", text):
            return E.Lit(int(text), INT64)
        return E.Lit(float(text), FLOAT64)
    if isinstance(node, exp.Null):
        return E.Lit.of(None)
    if isinstance(node, exp.Boolean):
        return E.Lit(bool(node.this), BOOL)
    if isinstance(node, exp.Interval):
        return E.Lit.of(parse_interval(node, env.src))
    if type(node) in _ARITH:
        left, right = low(node.this), low(node.expression)
        shifted = _date_plus_days(type(node), left, right, env)
        return _check(shifted or E.Arith(_ARITH[type(node)], left, right), node, env)
    if type(node) in _COMPARE:
        a, b = _coerce_pair(low(node.this), low(node.expression), node.this, node.expression, env)
        return _check(E.Compare(_COMPARE[type(node)], a, b), node, env)
    if isinstance(node, exp.And):
        return _check(E.And(tuple(low(a) for a in node.flatten())), node, env)
    if isinstance(node, exp.Or):
        return _check(E.Or(tuple(low(a) for a in node.flatten())), node, env)
    if isinstance(node, exp.Not):
        inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
        lowered = low(inner)
        if isinstance(lowered, (E.IsNull, E.InList, E.Like)):
            return dataclasses.replace(lowered, negated=not lowered.negated)
        return _check(E.Not(lowered), node, env)
    if isinstance(node, exp.Neg):
        inner = low(node.this)
        if isinstance(inner, E.Lit) and isinstance(inner.value, (int, float)) and not isinstance(inner.value, bool):
            return E.Lit(-inner.value, inner.dtype)
        return _check(E.Neg(inner), node, env)
    if isinstance(node, exp.Is):
        if not isinstance(node.expression, exp.Null):
            raise UnsupportedError(f"IS {user_text(node.expression, env.src)}", env.src.loc_of(node))
        return E.IsNull(low(node.this))
    if isinstance(node, exp.Between):
        arg = low(node.this)
        lo, hi = low(node.args["low"]), low(node.args["high"])
        arg, lo = _coerce_pair(arg, lo, node.this, node.args["low"], env)
        arg, hi = _coerce_pair(arg, hi, node.this, node.args["high"], env)
        return _check(E.And((E.Compare(">=", arg, lo), E.Compare("<=", arg, hi))), node, env)
    if isinstance(node, exp.In):
        if node.args.get("query") is not None:
            if env.subquery is None:
                raise UnsupportedError(f"IN (subquery) in {env.where}", env.src.loc_of(node))
            return env.subquery(node)
        arg = low(node.this)
        values = []
        for v in node.expressions:
            _, lv = _coerce_pair(arg, low(v), node.this, v, env)
            values.append(lv)
        return _check(E.InList(arg, tuple(values)), node, env)
    if isinstance(node, (exp.Like, exp.ILike)):
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise UnsupportedError("LIKE with a non-constant pattern", env.src.loc_of(pattern))
        if node.args.get("escape") is not None:
            raise UnsupportedError("LIKE ... ESCAPE", env.src.loc_of(node))
        negated = bool(node.args.get("negate"))  # sqlglot spells `x NOT LIKE p` as Like(negate=True)
        return _check(E.Like(low(node.this), pattern.this, negated, isinstance(node, exp.ILike)), node, env)
    if isinstance(node, exp.Case):
        subject = node.this
        whens = []
        for w in node.args.get("ifs") or []:
            cond = low(w.this)
            if subject is not None:
                cond = E.Compare("=", low(subject), cond)
            whens.append((cond, low(w.args["true"])))
        default = node.args.get("default")
        return _check(E.Case(tuple(whens), low(default) if default is not None else None), node, env)
    if isinstance(node, exp.If):
        false = node.args.get("false")
        return _check(E.Case(((low(node.this), low(node.args["true"])),),
                             low(false) if false is not None else None), node, env)
    if isinstance(node, (exp.Cast, exp.TryCast)):
        to = sql_type(node.to, env.src)
        arg = low(node.this)
        if isinstance(arg, E.Lit) and arg.dtype == STRING and to.kind in ("date", "timestamp"):
            return literal_as(arg.value, to, node, env.src)
        return _check(E.Cast(arg, to), node, env)
    if isinstance(node, exp.Extract):
        part = node.this.name.lower()
        if part not in _EXTRACT_PARTS:
            raise UnsupportedError(f"EXTRACT({part.upper()} ...)", env.src.loc_of(node))
        return _check(E.Extract(_EXTRACT_PARTS[part], low(node.expression)), node, env)
    if type(node) in _DATE_PART_FUNCS:
        return _check(E.Extract(_DATE_PART_FUNCS[type(node)], low(node.this)), node, env)
    if isinstance(node, exp.Substring):
        args = [low(node.this), low(node.args["start"])]
        if node.args.get("length") is not None:
            args.append(low(node.args["length"]))
        return _check(E.Func("substring", tuple(args)), node, env)
    if isinstance(node, exp.Trim):
        position = (node.args.get("position") or "").upper()
        if node.expression is not None:
            raise UnsupportedError("TRIM of specific characters", env.src.loc_of(node))
        name = {"LEADING": "ltrim", "TRAILING": "rtrim"}.get(position, "trim")
        return _check(E.Func(name, (low(node.this),)), node, env)
    if type(node) in _SIMPLE_FUNCS:
        return _check(E.Func(_SIMPLE_FUNCS[type(node)], (low(node.this),)), node, env)
    if isinstance(node, exp.Round):
        args = [low(node.this)] + ([low(node.args["decimals"])] if node.args.get("decimals") else [])
        return _check(E.Func("round", tuple(args)), node, env)
    if isinstance(node, exp.Coalesce):
        args = [low(node.this)] + [low(a) for a in node.expressions]
        return _check(E.Func("coalesce", tuple(args)), node, env)
    if isinstance(node, exp.Concat):
        # concat() skips NULL arguments (DuckDB, Postgres); the IR's concat is
        # SQL's `||`, which is NULL when any argument is: wrap each in coalesce.
        args = tuple(E.Func("coalesce", (low(a), E.Lit("", STRING))) for a in node.expressions)
        return _check(E.Func("concat", args), node, env)
    if isinstance(node, exp.DPipe):
        return _check(E.Func("concat", (low(node.this), low(node.expression))), node, env)
    if isinstance(node, (exp.DateAdd, exp.DateSub)):
        unit = node.args.get("unit")
        amount = node.expression
        interval = exp.Interval(this=exp.Literal.string(amount.name), unit=unit)
        op = "+" if isinstance(node, exp.DateAdd) else "-"
        return _check(E.Arith(op, low(node.this), E.Lit.of(parse_interval(interval, env.src))), node, env)
    if isinstance(node, exp.Grouping):
        if env.grouping is None:
            raise IRError(f"{user_text(node, env.src)} is only allowed in a grouped SELECT list, HAVING or ORDER BY",
                          env.src.loc_of(node))
        return env.grouping(node)
    if isinstance(node, exp.Window):
        if env.window is None:
            raise IRError(f"window function {user_text(node, env.src)} is not allowed in {env.where}",
                          env.src.loc_of(node))
        return env.window(node)
    if isinstance(node, exp.AggFunc) or (isinstance(node, exp.Filter) and isinstance(node.this, exp.AggFunc)) \
            or isinstance(node, exp.WithinGroup):
        if env.aggregate is None:
            raise IRError(f"aggregate {user_text(node, env.src)} is not allowed in {env.where}", env.src.loc_of(node))
        return env.aggregate(node)
    if isinstance(node, (exp.Subquery, exp.Exists)):
        if env.subquery is None:
            raise UnsupportedError(f"subquery in {env.where}", env.src.loc_of(node))
        return env.subquery(node)
    if isinstance(node, exp.Star):
        raise UnsupportedError("* here", env.src.loc_of(node))
    raise refuse_node(node, env.src)


def _date_plus_days(kind: type, left: E.Expr, right: E.Expr, env: ExprEnv) -> E.Expr | None:
    """`date + n` / `n + date` / `date - n` with an integer constant n: n days
    (as DuckDB); None when this is not such an expression."""
    schema = env.schema()
    if schema is None or kind not in (exp.Add, exp.Sub):
        return None

    def t(e: E.Expr) -> DataType | None:
        try:
            return e.type_in(schema)
        except MusketeerError:
            return None

    lt, rt = t(left), t(right)
    if lt is not None and lt.kind == "date" and rt is not None and rt.kind == "int64":
        date, days = left, right
    elif kind is exp.Add and rt is not None and rt.kind == "date" and lt is not None and lt.kind == "int64":
        date, days = right, left
    else:
        return None
    if not (isinstance(days, E.Lit) and isinstance(days.value, int)):
        raise UnsupportedError("date + a non-constant number of days (write date + INTERVAL (n) DAY "
                               "with a constant, or join a calendar)", None)
    op = "+" if kind is exp.Add else "-"
    return E.Arith(op, date, E.Lit.of(E.Interval(0, days.value)))


_REGEXP_FLAGS = {"": "first", "g": "all"}


def _literal_text(node: exp.Expression | None, what: str, env: ExprEnv) -> str:
    if isinstance(node, exp.Literal) and node.is_string:
        return node.this
    if isinstance(node, exp.Var):
        return node.name
    raise UnsupportedError(f"{what} that is not a string constant ({user_text(node, env.src) if node else ''})",
                           env.src.loc_of(node))


def _lower_function(node: exp.Expression, env: ExprEnv, low: Callable[[exp.Expression], E.Expr]) -> E.Expr | None:
    """NULLIF, GREATEST/LEAST, DATE_TRUNC, date_part, string and regexp
    functions; None for other nodes."""
    if isinstance(node, exp.Nullif):
        a, b = _coerce_pair(low(node.this), low(node.expression), node.this, node.expression, env)
        return E.Case(((E.Compare("=", a, b), E.Lit.of(None)),), a)
    if isinstance(node, (exp.Greatest, exp.Least)):
        args = [low(node.this)] + [low(a) for a in node.expressions]
        op = ">=" if isinstance(node, exp.Greatest) else "<="
        skip_nulls = node.args.get("ignore_nulls") is not False
        result = args[0]
        for arg in args[1:]:
            a, b = result, arg
            pick = E.Case(((E.Compare(op, a, b), a),), b)
            if skip_nulls:  # DuckDB: NULLs are ignored; NULL only when every argument is
                result = E.Case(((E.IsNull(a), b), (E.IsNull(b), a)), pick)
            else:
                result = E.Case(((E.Or((E.IsNull(a), E.IsNull(b))), E.Lit.of(None)),), pick)
        return result
    if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
        unit = _literal_text(node.args.get("unit"), "a DATE_TRUNC unit", env).lower()
        if unit not in E.DATE_TRUNC_UNITS:
            raise UnsupportedError(f"DATE_TRUNC to {unit!r} (units: {', '.join(E.DATE_TRUNC_UNITS)})",
                                   env.src.loc_of(node))
        return E.Func(f"date_trunc_{unit}", (low(node.this),))
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("date_part", "datepart") \
            and len(node.expressions) == 2:
        part = _literal_text(node.expressions[0], "a date_part part", env).lower()
        if part not in _EXTRACT_PARTS:
            raise UnsupportedError(f"date_part({part!r}, ...)", env.src.loc_of(node))
        return E.Extract(_EXTRACT_PARTS[part], low(node.expressions[1]))
    if isinstance(node, exp.SplitPart):
        return E.Func("split_part", (low(node.this), low(node.args["delimiter"]), low(node.args["part_index"])))
    if isinstance(node, exp.RegexpLike):
        if node.args.get("flag") is not None:
            raise UnsupportedError(f"REGEXP_MATCHES options ({user_text(node.args['flag'], env.src)})",
                                   env.src.loc_of(node.args["flag"]))
        return E.Func("regexp_matches", (low(node.this), low(node.expression)))
    if isinstance(node, exp.RegexpReplace):
        flags = _literal_text(node.args["modifiers"], "REGEXP_REPLACE options", env) \
            if node.args.get("modifiers") is not None else ""
        if flags not in _REGEXP_FLAGS:
            raise UnsupportedError(f"REGEXP_REPLACE options {flags!r} (only 'g')", env.src.loc_of(node))
        name = "regexp_replace_all" if flags == "g" else "regexp_replace"
        return E.Func(name, (low(node.this), low(node.expression), low(node.args["replacement"])))
    if isinstance(node, exp.RegexpExtract):
        group = low(node.args["group"]) if node.args.get("group") is not None else E.Lit(0, INT64)
        return E.Func("regexp_extract", (low(node.this), low(node.expression), group))
    if isinstance(node, exp.Pad):
        fill = low(node.args["fill_pattern"]) if node.args.get("fill_pattern") is not None else E.Lit(" ", STRING)
        name = "lpad" if node.args.get("is_left") else "rpad"
        return E.Func(name, (low(node.this), low(node.expression), fill))
    if isinstance(node, exp.StartsWith):  # substring(s, 1, length(p)) = p: every engine has these
        s, p = low(node.this), low(node.expression)
        return E.Compare("=", E.Func("substring", (s, E.Lit(1, INT64), E.Func("length", (p,)))), p)
    if isinstance(node, exp.ConcatWs):
        args = [low(a) for a in node.expressions]
        return E.Func("concat_ws", tuple(a if _is_string(a, env) else E.Cast(a, STRING) for a in args))
    return None


def _is_string(e: E.Expr, env: ExprEnv) -> bool:
    schema = env.schema()
    try:
        return schema is not None and e.type_in(schema).kind in ("string", "null")
    except MusketeerError:
        return False
