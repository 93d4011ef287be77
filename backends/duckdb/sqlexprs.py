"""Compile IR scalar expressions into sqlglot expression trees for DuckDB.

The tree is built with sqlglot's node classes (never by pasting text), so a
column name becomes a quoted identifier and a string a quoted literal
whatever they contain; sqlglot prints the tree as DuckDB SQL. One method per
IR expression class (`_arith`, `_case`, ...) and a table of the functions
whose DuckDB spelling and meaning are the IR's.

The IR's semantics are DuckDB's almost everywhere (IEEE division, NULL
propagation, Kleene logic, LIKE without an escape character, SUBSTRING's
bounds). Where a DuckDB default differs, the compiled SQL says so: decimals
run as DOUBLE (as in every Musketeer engine), float literals are typed
DOUBLE (DuckDB would read `1.5` as DECIMAL), DATE + INTERVAL stays a DATE,
SUM of integers stays BIGINT, and casts of decimals to integers round half
away from zero.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

from sqlglot import exp

from musketeer.backends.common.expr_compiler import BaseExprCompiler, round_digits
from musketeer.backends.common.values import engine_type, physical_kind
from musketeer.ir import expr as E
from musketeer.ir.expr import AggCall
from musketeer.ir.schema import Schema
from musketeer.ir.types import BOOL, STRING, DataType, UnsupportedError

ENGINE = "DuckDB engine"

#: IR type kind -> DuckDB type name. Decimals run as doubles, as in every engine.
SQL_TYPES = {
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "decimal": "DOUBLE",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "null": "INTEGER",  # a column of NULLs only (DuckDB's NULL literal becomes an INTEGER)
}

_COMPARE = {"=": exp.EQ, "<>": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
_ARITH = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "%": exp.Mod}
_EXTRACT = {"year": "YEAR", "quarter": "QUARTER", "month": "MONTH", "day": "DAY", "dow": "DAYOFWEEK",
            "doy": "DAYOFYEAR", "hour": "HOUR", "minute": "MINUTE", "second": "SECOND"}
#: Functions whose DuckDB meaning is the IR's: IR name -> DuckDB name. DuckDB's
#: TRIM strips spaces only, LENGTH counts characters, SQRT/LN raise on bad input.
SIMPLE_FUNCTIONS = {
    "upper": "UPPER", "lower": "LOWER", "trim": "TRIM", "ltrim": "LTRIM", "rtrim": "RTRIM",
    "length": "LENGTH", "abs": "ABS", "sqrt": "SQRT", "ln": "LN", "exp": "EXP", "substring": "SUBSTRING",
    # DuckDB's regular expressions are RE2; REGEXP_EXTRACT gives '' without a match, SPLIT_PART counts
    # from 1 (negative: from the end), LPAD/RPAD pad or truncate, as the IR defines them.
    "regexp_matches": "REGEXP_MATCHES", "regexp_replace": "REGEXP_REPLACE", "regexp_extract": "REGEXP_EXTRACT",
    "split_part": "SPLIT_PART", "lpad": "LPAD", "rpad": "RPAD",
}
#: Aggregate functions: IR name -> DuckDB name (count_star is COUNT(*)).
AGGREGATES = {"sum": "SUM", "count": "COUNT", "avg": "AVG", "min": "MIN", "max": "MAX", "median": "MEDIAN",
              "quantile_cont": "QUANTILE_CONT", "quantile_disc": "QUANTILE_DISC", "string_agg": "STRING_AGG"}

#: Node types made of operators, which need parentheses as an operand (in
#: sqlglot, AND and OR are also Funcs, so the test is on these, not on atoms).
_COMPOUND = (exp.Binary, exp.Connector, exp.Not, exp.Neg, exp.In, exp.Is, exp.Like, exp.ILike, exp.Between,
             exp.Exists)


def sql_type(t: DataType) -> str:
    """DuckDB's name for the type that holds IR type `t`."""
    return engine_type(t, SQL_TYPES, ENGINE)


def data_type(t: DataType) -> exp.DataType:
    return exp.DataType.build(sql_type(t), dialect="duckdb")


def sql_name(name: str) -> str:
    """The name a column has inside DuckDB: the IR's, except that DuckDB's
    parser ends a name at a NUL character, which is spelled \\0 instead
    (results are fetched by position and get their IR names back)."""
    return name if "\x00" not in name else name.replace("\\", "\\\\").replace("\x00", "\\0")


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: user text can never end it early."""
    return exp.to_identifier(sql_name(name), quoted=True)


def string(text: str) -> exp.Expression:
    """A string literal; NUL characters (which end a literal in DuckDB's
    parser) are joined in as CHR(0)."""
    if "\x00" not in text:
        return exp.Literal.string(text)
    parts = text.split("\x00")
    code: exp.Expression = exp.Literal.string(parts[0])
    for part in parts[1:]:
        code = exp.DPipe(this=exp.DPipe(this=code, expression=call("CHR", exp.Literal.number(0)), safe=True),
                         expression=exp.Literal.string(part), safe=True)
    return exp.Paren(this=code)


def column(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def operand(node: exp.Expression) -> exp.Expression:
    """`node` in parentheses unless it prints as one operand."""
    if isinstance(node, exp.Neg) and isinstance(node.this, (exp.Literal, exp.Cast)):
        return node  # a negative number
    return exp.Paren(this=node) if isinstance(node, _COMPOUND) else node


def condition(node: exp.Expression) -> exp.Expression:
    """`node` as an operand of AND, OR or NOT: comparisons and other tests
    bind tighter than those, so only an AND/OR needs parentheses."""
    return exp.Paren(this=node) if isinstance(node, exp.Connector) else node


def cast(node: exp.Expression, type_name: str) -> exp.Cast:
    return exp.Cast(this=node, to=exp.DataType.build(type_name, dialect="duckdb"))


def call(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def number(value: int | float) -> exp.Expression:
    """A BIGINT or DOUBLE constant (DuckDB would type `1.5` as a DECIMAL)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    if isinstance(value, int):  # DuckDB would type a small one as INTEGER
        literal = cast(exp.Literal.number(abs(value)), "BIGINT")
        return exp.Neg(this=literal) if value < 0 else literal
    if math.isnan(value) or math.isinf(value):
        return cast(exp.Literal.string("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")), "DOUBLE")
    literal = cast(exp.Literal.number(repr(abs(value))), "DOUBLE")
    return exp.Neg(this=literal) if math.copysign(1.0, value) < 0 else literal


class SqlExprCompiler(BaseExprCompiler[exp.Expression]):
    """Compiles expressions over one relation with schema `schema`;
    `qualify(name)` gives the table alias a column is read through (None:
    unqualified), for join conditions over two sides."""

    ENGINE = ENGINE

    def __init__(self, schema: Schema, qualify: Callable[[str], str | None] = lambda name: None) -> None:
        super().__init__(schema, lambda helper: None)
        self.qualify = qualify

    def compile(self, e: E.Expr, want: DataType | None = None) -> exp.Expression:
        return self.code(e, want)

    # --- small emitters -------------------------------------------------------
    def null(self, t: DataType) -> exp.Expression:
        return exp.Null() if t.kind == "null" else exp.Cast(this=exp.Null(), to=data_type(t))

    def _constant(self, value: object, kind: str, t: DataType) -> exp.Expression:
        if kind == "bool":
            return exp.Boolean(this=bool(value))
        if kind in ("int64", "float64"):
            return number(value)  # type: ignore[arg-type]
        if kind == "string":
            return string(str(value))
        if kind == "date" and isinstance(value, dt.date):
            return cast(exp.Literal.string(value.isoformat()), "DATE")
        if kind == "timestamp" and isinstance(value, dt.date):
            if not isinstance(value, dt.datetime):
                value = dt.datetime(value.year, value.month, value.day)
            return cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
        raise UnsupportedError(f"{t} literal {value!r} in the {ENGINE}")

    def _convert(self, code: exp.Expression, src: DataType, dst: DataType) -> exp.Expression:
        """A run-time cast with the rules every engine follows."""
        s, d = physical_kind(src), physical_kind(dst)
        if d == "int64" and s == "float64" and src.kind == "decimal":
            # decimals round half away from zero (DuckDB's CAST of a DOUBLE rounds half to even)
            return cast(call("ROUND", code), "BIGINT")
        if dst.kind == "decimal":  # a decimal is a double rounded to its scale
            inner = code if s == "float64" else cast(code, "DOUBLE")
            return call("ROUND", inner, exp.Literal.number(dst.scale or 0))
        if s == d:
            return code
        return exp.Cast(this=code, to=data_type(dst))

    def _shift(self, base: E.Expr, bt: DataType, months: int, days: int) -> exp.Expression:
        code = self.code(base)
        if bt.kind == "date":  # months first (clamped to the month's end), then days; stays a DATE
            if months:
                code = cast(exp.Add(this=operand(code), expression=_interval(months, "MONTH")), "DATE")
            if days:
                code = exp.Add(this=operand(code), expression=exp.Literal.number(days))  # DATE + INTEGER is a DATE
            return code
        for n, unit in ((months, "MONTH"), (days, "DAY")):
            if n:
                code = exp.Add(this=operand(code), expression=_interval(n, unit))
        return code

    # --- one method per expression class -------------------------------------
    def _col(self, e: E.Col, t: DataType) -> exp.Expression:
        return column(e.name, self.qualify(e.name))

    def _arith(self, e: E.Arith, t: DataType) -> exp.Expression:
        lt, rt = self.type_of(e.left), self.type_of(e.right)
        if lt.kind == "interval" or rt.kind == "interval":
            return self._interval_arith(e, lt, rt)
        if e.op == "-" and lt.kind == "date" and rt.kind == "date":  # days between, a BIGINT in DuckDB
            return exp.Sub(this=operand(self.code(e.left)), expression=operand(self.code(e.right)))
        left, right = self._operands(e.left, e.right, lt, rt)
        if e.op == "/":
            # true division, IEEE for doubles (x / 0 = inf), as the IR defines it
            if physical_kind(lt) != "float64" and physical_kind(rt) != "float64":
                left = cast(left, "DOUBLE")
            return exp.Div(this=left, expression=right, typed=False, safe=False)
        if e.op == "%" and "decimal" in (lt.kind, rt.kind):  # a double's rule (x % 0 is NaN), not a DECIMAL's
            left = cast(left, "DOUBLE")
        return _ARITH[e.op](this=left, expression=right)

    def _operands(self, a: E.Expr, b: E.Expr, at: DataType, bt: DataType) -> tuple[exp.Expression, exp.Expression]:
        """Both operands of arithmetic; a number next to a column of the same
        or a wider kind is written bare (`x + 1`, `price * 0.9`), since DuckDB
        then computes in the column's type, which is the IR's."""
        left, right = self.code(a), self.code(b)
        if isinstance(b, E.Lit) and not isinstance(a, E.Lit) and _widens(at, bt):
            right = bare(right)
        if isinstance(a, E.Lit) and not isinstance(b, E.Lit) and _widens(bt, at):
            left = bare(left)
        return operand(left), operand(right)

    def _compare(self, e: E.Compare, t: DataType) -> exp.Expression:
        left, right = self._comparable(e.left, e.right)
        # a number compared with anything needs no type of its own (DuckDB compares in the wider type)
        return _COMPARE[e.op](this=operand(bare(left)), expression=operand(bare(right)))

    def _and(self, e: E.And, t: DataType) -> exp.Expression:
        return self._connect(exp.And, e.args)

    def _or(self, e: E.Or, t: DataType) -> exp.Expression:
        return self._connect(exp.Or, e.args)

    def _connect(self, kind: type[exp.Connector], args: tuple[E.Expr, ...]) -> exp.Expression:
        code = condition(self.code(args[0], BOOL))
        for a in args[1:]:
            code = kind(this=code, expression=condition(self.code(a, BOOL)))
        return code

    def _not(self, e: E.Not, t: DataType) -> exp.Expression:
        return exp.Not(this=condition(self.code(e.arg, BOOL)))

    def _neg(self, e: E.Neg, t: DataType) -> exp.Expression:
        return exp.Neg(this=operand(self.code(e.arg)))

    def _isnull(self, e: E.IsNull, t: DataType) -> exp.Expression:
        if self.type_of(e.arg).kind == "null":
            return exp.Boolean(this=not e.negated)
        test = exp.Is(this=operand(self.code(e.arg)), expression=exp.Null())
        return exp.Not(this=test) if e.negated else test

    def _inlist(self, e: E.InList, t: DataType) -> exp.Expression:
        at = self.type_of(e.arg)
        if at.kind == "null":
            return self.null(BOOL)
        target = self._in_type(at, e.values)
        values = [exp.Null() if isinstance(v, E.Lit) and v.value is None else bare(self.code(v, target))
                  for v in e.values]
        test = exp.In(this=operand(self.code(e.arg, target)), expressions=values)
        return exp.Not(this=test) if e.negated else test

    def _like(self, e: E.Like, t: DataType) -> exp.Expression:
        kind = exp.ILike if e.case_insensitive else exp.Like
        test = kind(this=operand(self.code(e.arg)), expression=string(e.pattern))
        return exp.Not(this=test) if e.negated else test

    def _case(self, e: E.Case, t: DataType) -> exp.Expression:
        ifs = [exp.If(this=self.code(c, BOOL), true=self.code(v, t)) for c, v in e.whens]
        default = self.code(e.default, t) if e.default is not None else self.null(t)
        return exp.Case(ifs=ifs, default=default)

    def _extract(self, e: E.Extract, t: DataType) -> exp.Expression:
        if e.part not in _EXTRACT:
            raise UnsupportedError(f"EXTRACT({e.part.upper()} ...) in the {ENGINE}")
        return exp.Extract(this=exp.var(_EXTRACT[e.part]), expression=self.code(e.arg))

    def _func(self, e: E.Func, t: DataType) -> exp.Expression:
        types = [self.type_of(a) for a in e.args]
        if e.name == "coalesce":
            args = [self.code(a, t) for a, at in zip(e.args, types) if at.kind != "null"]
            return args[0] if len(args) == 1 else exp.Coalesce(this=args[0], expressions=args[1:])
        if e.name == "concat_ws":  # skips NULL arguments; NULL when the separator is
            if types[0].kind == "null":
                return self.null(t)
            return call("CONCAT_WS", *(self.code(a, STRING) for a, at in zip(e.args, types) if at.kind != "null"))
        if e.name == "single_value":  # a scalar subquery's value: several rows are an error
            if types[1].kind == "null":
                return self.null(t)
            too_many = exp.GT(this=operand(self.code(e.args[0])), expression=exp.Literal.number(1))
            fail = call("ERROR", exp.Literal.string("more than one row returned by a subquery used as an expression"))
            return exp.Case(ifs=[exp.If(this=too_many, true=exp.Cast(this=fail, to=data_type(t)))],
                            default=self.code(e.args[1], t))
        if any(at.kind == "null" for at in types):
            return self.null(t)  # every other function is NULL on a NULL argument (concat is SQL's ||)
        if e.name == "concat":
            parts = [operand(self.code(a, STRING)) for a in e.args]
            code = parts[0]
            for part in parts[1:]:
                code = exp.DPipe(this=code, expression=part, safe=True)
            return code
        args = [self.code(a) for a in e.args]
        if e.name in ("regexp_extract", "split_part", "lpad", "rpad"):  # their counts are INTEGERs in DuckDB
            args = [bare(a) if isinstance(arg, E.Lit) else (cast(a, "INTEGER") if at.kind == "int64" else a)
                    for a, arg, at in zip(args, e.args, types)]
        if e.name in SIMPLE_FUNCTIONS:
            return call(SIMPLE_FUNCTIONS[e.name], *args)
        if e.name == "regexp_replace_all":
            return call("REGEXP_REPLACE", *args, exp.Literal.string("g"))
        if e.name.startswith("date_trunc_"):  # a TIMESTAMP, whatever DuckDB gives for a DATE
            unit = e.name[len("date_trunc_"):]
            return cast(call("DATE_TRUNC", exp.Literal.string(unit), args[0]), "TIMESTAMP")
        if e.name == "round":  # DuckDB rounds half away from zero; integers stay integers
            code = call("ROUND", args[0], exp.Literal.number(round_digits(e)))
            return code if physical_kind(types[0]) == "float64" else cast(code, "BIGINT")
        if e.name in ("floor", "ceil"):  # of an integer: the integer (DuckDB would return a DOUBLE)
            return call(e.name.upper(), args[0]) if physical_kind(types[0]) == "float64" else args[0]
        raise UnsupportedError(f"function {e.name}() in the {ENGINE}")


def _widens(column: DataType, literal: DataType) -> bool:
    """Whether DuckDB computes `column op literal` in the column's kind."""
    c, n = physical_kind(column), physical_kind(literal)
    return (c == "float64" and n in ("float64", "int64")) or (c == "int64" and n == "int64")


def bare(node: exp.Expression) -> exp.Expression:
    """A numeric constant without its CAST (where the context types it)."""
    if isinstance(node, exp.Neg):
        inner = bare(node.this)
        return node if inner is node.this else exp.Neg(this=inner)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and not node.this.is_string \
            and node.to.this in (exp.DataType.Type.BIGINT, exp.DataType.Type.DOUBLE):
        return node.this
    return node


def _interval(n: int, unit: str) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(str(n)), unit=exp.var(unit))


def aggregate(call_: AggCall, schema: Schema) -> exp.Expression:
    """An aggregate over a column of `schema`: SUM of integers stays BIGINT
    (DuckDB's is a HUGEINT); AVG is a DOUBLE; COUNT is never NULL."""
    if call_.func == "count_star":
        return exp.Count(this=exp.Star())
    if call_.func not in AGGREGATES or call_.arg is None:
        raise UnsupportedError(f"aggregate {call_} in the {ENGINE}")
    arg: exp.Expression = column(call_.arg)
    if call_.distinct:
        arg = exp.Distinct(expressions=[arg])
    if call_.func in ("median", "quantile_cont", "quantile_disc"):
        q = call_.params[0] if call_.params else 0.5
        code = call("QUANTILE_DISC" if call_.func == "quantile_disc" else "QUANTILE_CONT", arg, number(float(q)))
        if call_.func != "quantile_disc" and physical_kind(schema.dtype(call_.arg)) != "float64":
            code = cast(code, "DOUBLE")
        return code
    if call_.func == "string_agg":  # STRING_AGG(x, sep ORDER BY ...)
        separator: exp.Expression = string(str(call_.params[0]))
        if call_.order:
            separator = exp.Order(this=separator, expressions=[
                exp.Ordered(this=column(c), desc=not ascending, nulls_first=nulls_first)
                for c, ascending, nulls_first in call_.order])
        return call("STRING_AGG", arg, separator)
    code: exp.Expression = call(AGGREGATES[call_.func], arg)
    if call_.func == "sum" and physical_kind(schema.dtype(call_.arg)) == "int64":
        code = cast(code, "BIGINT")
    return code
