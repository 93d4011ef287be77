"""Immutable scalar expressions evaluated per row of one relation.

Every node knows its result type given the input schema (`type_in`), so type
errors surface when a frontend lowers a workflow, never inside an engine.
Column references name columns of the operator's (single) input schema; joins
see the concatenation of both sides, which lowering keeps name-unique.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from musketeer.ir.schema import Schema
from musketeer.ir.types import (
    BOOL, DATE, FLOAT64, INT64, INTERVAL, NULL, STRING, TIMESTAMP,
    DataType, IRTypeError, common_type, decimal,
)


@dataclass(frozen=True)
class Interval:
    """A calendar interval; months and days stay apart because months vary."""

    months: int = 0
    days: int = 0

    def __str__(self) -> str:
        parts = []
        if self.months:
            parts.append(f"{self.months} month")
        if self.days or not parts:
            parts.append(f"{self.days} day")
        return " ".join(parts)


class Expr:
    """Base class. Subclasses are frozen dataclasses whose Expr-valued fields
    (directly, or inside tuples) are the children."""

    def type_in(self, schema: Schema) -> DataType:  # pragma: no cover - abstract
        raise NotImplementedError

    def children(self) -> Iterator["Expr"]:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            yield from _exprs_in(getattr(self, f.name))

    def map_children(self, fn: Callable[["Expr"], "Expr"]) -> "Expr":
        changes = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            old = getattr(self, f.name)
            new = _map_in(old, fn)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(self, **changes) if changes else self  # type: ignore[type-var]

    def walk(self) -> Iterator["Expr"]:
        yield self
        for c in self.children():
            yield from c.walk()

    def columns(self) -> set[str]:
        return {e.name for e in self.walk() if isinstance(e, Col)}

    def __str__(self) -> str:
        from musketeer.ir.text import expr_text

        return expr_text(self)


def _exprs_in(value: Any) -> Iterator[Expr]:
    if isinstance(value, Expr):
        yield value
    elif isinstance(value, tuple):
        for v in value:
            yield from _exprs_in(v)


def _map_in(value: Any, fn: Callable[[Expr], Expr]) -> Any:
    if isinstance(value, Expr):
        return fn(value)
    if isinstance(value, tuple):
        mapped = tuple(_map_in(v, fn) for v in value)
        return value if all(a is b for a, b in zip(mapped, value)) else mapped
    return value


def transform(expr: Expr, fn: Callable[[Expr], Expr]) -> Expr:
    """Bottom-up rewrite: children first, then `fn` on the rebuilt node."""
    return fn(expr.map_children(lambda c: transform(c, fn)))


@dataclass(frozen=True)
class Col(Expr):
    name: str

    def type_in(self, schema: Schema) -> DataType:
        return schema.dtype(self.name)


@dataclass(frozen=True)
class Lit(Expr):
    """value: None, bool, int, float, str, datetime.date/datetime, Interval."""

    value: Any
    dtype: DataType

    def type_in(self, schema: Schema) -> DataType:
        return self.dtype

    @staticmethod
    def of(value: Any) -> "Lit":
        if value is None:
            return Lit(None, NULL)
        if isinstance(value, bool):
            return Lit(value, BOOL)
        if isinstance(value, int):
            return Lit(value, INT64)
        if isinstance(value, float):
            return Lit(value, FLOAT64)
        if isinstance(value, str):
            return Lit(value, STRING)
        if isinstance(value, dt.datetime):
            return Lit(value, TIMESTAMP)
        if isinstance(value, dt.date):
            return Lit(value, DATE)
        if isinstance(value, Interval):
            return Lit(value, INTERVAL)
        raise IRTypeError(f"unsupported literal {value!r}")


ARITH_OPS = ("+", "-", "*", "/", "%")
COMPARE_OPS = ("=", "<>", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Arith(Expr):
    op: str
    left: Expr
    right: Expr

    def type_in(self, schema: Schema) -> DataType:
        lt, rt = self.left.type_in(schema), self.right.type_in(schema)
        if lt.kind == "null" or rt.kind == "null":
            return rt if lt.kind == "null" else lt
        if self.op in ("+", "-") and lt.is_temporal and rt == INTERVAL:
            return lt
        if self.op == "+" and lt == INTERVAL and rt.is_temporal:
            return rt
        if self.op == "-" and lt == DATE and rt == DATE:
            return INT64
        if not (lt.is_numeric and rt.is_numeric):
            raise IRTypeError(f"cannot apply '{self.op}' to {lt} and {rt} in {self}")
        if self.op == "/":
            return FLOAT64
        t = common_type(lt, rt)
        assert t is not None
        if self.op == "*" and t.kind == "decimal" and lt.kind == rt.kind == "decimal":
            return decimal(38, min(38, (lt.scale or 0) + (rt.scale or 0)))
        return t


@dataclass(frozen=True)
class Compare(Expr):
    op: str
    left: Expr
    right: Expr

    def type_in(self, schema: Schema) -> DataType:
        lt, rt = self.left.type_in(schema), self.right.type_in(schema)
        if common_type(lt, rt) is None and not _string_vs_temporal(lt, rt):
            raise IRTypeError(f"cannot compare {lt} with {rt} in {self}")
        return BOOL


def _string_vs_temporal(a: DataType, b: DataType) -> bool:
    return {a.kind, b.kind} in ({"string", "date"}, {"string", "timestamp"})


def _require_bool(e: Expr, schema: Schema, where: str) -> None:
    t = e.type_in(schema)
    if t.kind not in ("bool", "null"):
        raise IRTypeError(f"{where} needs a boolean, got {t} in {e}")


@dataclass(frozen=True)
class And(Expr):
    args: tuple[Expr, ...]

    def type_in(self, schema: Schema) -> DataType:
        for a in self.args:
            _require_bool(a, schema, "AND")
        return BOOL


@dataclass(frozen=True)
class Or(Expr):
    args: tuple[Expr, ...]

    def type_in(self, schema: Schema) -> DataType:
        for a in self.args:
            _require_bool(a, schema, "OR")
        return BOOL


@dataclass(frozen=True)
class Not(Expr):
    arg: Expr

    def type_in(self, schema: Schema) -> DataType:
        _require_bool(self.arg, schema, "NOT")
        return BOOL


@dataclass(frozen=True)
class Neg(Expr):
    arg: Expr

    def type_in(self, schema: Schema) -> DataType:
        t = self.arg.type_in(schema)
        if not (t.is_numeric or t.kind in ("null", "interval")):
            raise IRTypeError(f"cannot negate {t} in {self}")
        return t


@dataclass(frozen=True)
class IsNull(Expr):
    arg: Expr
    negated: bool = False

    def type_in(self, schema: Schema) -> DataType:
        self.arg.type_in(schema)
        return BOOL


@dataclass(frozen=True)
class InList(Expr):
    arg: Expr
    values: tuple[Expr, ...]
    negated: bool = False

    def type_in(self, schema: Schema) -> DataType:
        t = self.arg.type_in(schema)
        for v in self.values:
            vt = v.type_in(schema)
            if common_type(t, vt) is None and not _string_vs_temporal(t, vt):
                raise IRTypeError(f"IN list value {v} ({vt}) does not match {self.arg} ({t})")
        return BOOL


@dataclass(frozen=True)
class Like(Expr):
    """SQL LIKE with '%' and '_' wildcards; the pattern is a constant string."""

    arg: Expr
    pattern: str
    negated: bool = False
    case_insensitive: bool = False

    def type_in(self, schema: Schema) -> DataType:
        t = self.arg.type_in(schema)
        if t.kind not in ("string", "null"):
            raise IRTypeError(f"LIKE needs a string, got {t} in {self}")
        return BOOL


@dataclass(frozen=True)
class Case(Expr):
    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr | None = None

    def type_in(self, schema: Schema) -> DataType:
        result: DataType = NULL
        branches = [v for _, v in self.whens] + ([self.default] if self.default else [])
        for cond, _ in self.whens:
            _require_bool(cond, schema, "CASE WHEN")
        for v in branches:
            vt = v.type_in(schema)
            t = common_type(result, vt)
            if t is None:
                raise IRTypeError(f"CASE branches mix {result} and {vt} in {self}")
            result = t
        return result


@dataclass(frozen=True)
class Cast(Expr):
    arg: Expr
    to: DataType

    def type_in(self, schema: Schema) -> DataType:
        t = self.arg.type_in(schema)
        ok = (
            t == self.to
            or t.kind == "null"
            or self.to.kind == "string"
            or (t.is_numeric and self.to.is_numeric)
            or (t.kind == "string" and self.to.kind in ("int64", "float64", "decimal", "date", "timestamp", "bool"))
            or (t.is_temporal and self.to.is_temporal)
            or (t.kind == "bool" and self.to.kind == "int64")
        )
        if not ok:
            raise IRTypeError(f"cannot cast {t} to {self.to} in {self}")
        return self.to


EXTRACT_PARTS = ("year", "quarter", "month", "day", "dow", "doy", "hour", "minute", "second")


@dataclass(frozen=True)
class Extract(Expr):
    part: str
    arg: Expr

    def type_in(self, schema: Schema) -> DataType:
        t = self.arg.type_in(schema)
        if not (t.is_temporal or t.kind == "null"):
            raise IRTypeError(f"EXTRACT({self.part.upper()} FROM ...) needs a date or timestamp, got {t}")
        return INT64


# name -> (argument kinds per position ('any', 'numeric', 'string', ...), min args, result rule)
_STRING_FUNCS = {"upper", "lower", "trim", "ltrim", "rtrim"}


@dataclass(frozen=True)
class Func(Expr):
    """A scalar function from a fixed, portable list (see FUNCTIONS)."""

    name: str
    args: tuple[Expr, ...]

    def type_in(self, schema: Schema) -> DataType:
        types = [a.type_in(schema) for a in self.args]
        rule = FUNCTIONS.get(self.name)
        if rule is None:
            raise IRTypeError(f"unknown function {self.name}")
        return rule(self, types)


def _want(cond: bool, f: Func, what: str) -> None:
    if not cond:
        raise IRTypeError(f"{f.name.upper()} {what} in {f}")


def _string_func(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) == 1 and types[0].kind in ("string", "null"), f, "takes one string")
    return STRING


def _substring(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) in (2, 3) and types[0].kind in ("string", "null"), f, "takes a string, a start and an optional length")
    _want(all(t.kind in ("int64", "null") for t in types[1:]), f, "takes integer start and length")
    return STRING


def _length(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) == 1 and types[0].kind in ("string", "null"), f, "takes one string")
    return INT64


def _abs(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) == 1 and (types[0].is_numeric or types[0].kind == "null"), f, "takes one number")
    return types[0]


def _round(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) in (1, 2) and (types[0].is_numeric or types[0].kind == "null"), f, "takes a number and optional digits")
    return types[0]


def _coalesce(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) >= 1, f, "takes at least one argument")
    result: DataType | None = NULL
    for t in types:
        result = common_type(result, t) if result is not None else None
        _want(result is not None, f, "arguments must share a type")
    assert result is not None
    return result


def _concat(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) >= 1, f, "takes at least one argument")
    return STRING


def _single_value(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) == 2 and types[0].kind in ("int64", "null"), f, "takes a row count and a value")
    return types[1]


def _kinds(types: list[DataType], *kinds: tuple[str, ...]) -> bool:
    return len(types) == len(kinds) and all(t.kind in k + ("null",) for t, k in zip(types, kinds))


_S, _I = ("string",), ("int64",)


def _regexp_matches(f: Func, types: list[DataType]) -> DataType:
    _want(_kinds(types, _S, _S), f, "takes a string and a pattern")
    return BOOL


def _regexp_replace(f: Func, types: list[DataType]) -> DataType:
    _want(_kinds(types, _S, _S, _S), f, "takes a string, a pattern and a replacement")
    return STRING


def _string_int_string(f: Func, types: list[DataType]) -> DataType:
    """regexp_extract(s, pattern, group), split_part(s, sep, n), lpad/rpad(s, n, fill)."""
    if f.name in ("lpad", "rpad"):
        _want(_kinds(types, _S, _I, _S), f, "takes a string, a length and a fill string")
    else:
        _want(_kinds(types, _S, _S, _I), f, "takes two strings and a whole number")
    return STRING


def _concat_ws(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) >= 2 and all(t.kind in ("string", "null") for t in types), f,
          "takes a separator and strings")
    return STRING


def _date_trunc(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) == 1 and (types[0].kind in ("date", "timestamp", "null")), f, "takes a date or timestamp")
    return TIMESTAMP


def _float_math(f: Func, types: list[DataType]) -> DataType:
    _want(len(types) == 1 and (types[0].is_numeric or types[0].kind == "null"), f, "takes one number")
    return FLOAT64


#: DATE_TRUNC units: `date_trunc_<unit>(x)` is a timestamp (weeks start on Monday).
DATE_TRUNC_UNITS = ("year", "quarter", "month", "week", "day", "hour", "minute", "second")

#: Scalar functions every backend implements. Each is NULL when any argument
#: is NULL (SQL's rule), except coalesce. `concat` is SQL's `||`; frontends
#: lower NULL-skipping concat() calls by wrapping arguments in coalesce.
FUNCTIONS: dict[str, Callable[[Func, list[DataType]], DataType]] = {
    **{name: _string_func for name in _STRING_FUNCS},
    "substring": _substring,
    "length": _length,
    "abs": _abs,
    "round": _round,
    "coalesce": _coalesce,
    "concat": _concat,
    "sqrt": _float_math,
    "ln": _float_math,
    "exp": _float_math,
    "floor": _abs,
    "ceil": _abs,
    # single_value(rows, value): `value`, or a run-time error when rows > 1 (a
    # scalar subquery that returned several rows); NULL rows is fine.
    "single_value": _single_value,
    # regular expressions (RE2 / Python / Java syntax: the common subset);
    # regexp_replace replaces the first match, regexp_replace_all every one
    "regexp_matches": _regexp_matches,
    "regexp_replace": _regexp_replace,
    "regexp_replace_all": _regexp_replace,
    "regexp_extract": _string_int_string,  # '' when there is no match
    "split_part": _string_int_string,  # 1-based; negative from the end; '' out of range
    "lpad": _string_int_string,  # pad or truncate to n characters
    "rpad": _string_int_string,
    "concat_ws": _concat_ws,  # concat_ws(sep, a, ...): skips NULL arguments; NULL if sep is
    **{f"date_trunc_{unit}": _date_trunc for unit in DATE_TRUNC_UNITS},
}


#: Window functions (ir/window.py defines the calls; listed here with the
#: aggregates so capability tables find every function name in one module).
WINDOW_FUNCS = ("row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
                "first_value", "last_value", "nth_value", "sum", "avg", "count", "count_star", "min", "max")

AGG_FUNCS = ("sum", "count", "count_star", "avg", "min", "max", "median", "quantile_cont", "quantile_disc",
             "string_agg")


@dataclass(frozen=True)
class AggCall:
    """One aggregate over a column of the Aggregate's input.

    Arguments are plain columns: lowering projects any argument expression
    first, so every engine only aggregates columns. `params` are constants:
    the fraction q of quantile_cont / quantile_disc (median is
    quantile_cont 0.5: linear interpolation between the two closest values;
    quantile_disc: the first value whose cumulative share reaches q), the
    separator of string_agg. `order` orders string_agg's values: (column,
    ascending, nulls_first) triples over the input; without it the order
    is unspecified. Every aggregate skips NULLs; over no values all but
    COUNT are NULL.
    """

    func: str
    arg: str | None = None  # None only for count_star
    distinct: bool = False
    params: tuple[Any, ...] = ()
    order: tuple[tuple[str, bool, bool], ...] = ()

    def result_type(self, schema: Schema) -> DataType:
        if self.func not in AGG_FUNCS:
            raise IRTypeError(f"unknown aggregate {self.func!r}")
        if self.func == "count_star":
            return INT64
        if self.arg is None:
            raise IRTypeError(f"{self.func.upper()} needs an argument")
        for column, _, _ in self.order:
            schema.field(column)
        t = schema.dtype(self.arg)
        if self.func == "count":
            return INT64
        if self.func in ("min", "max", "quantile_disc"):
            if self.func == "quantile_disc":
                self._check_fraction()
            return t
        if self.func == "string_agg":
            if t.kind not in ("string", "null") or len(self.params) != 1 or not isinstance(self.params[0], str):
                raise IRTypeError("STRING_AGG needs a string column and a string separator")
            return STRING
        if not (t.is_numeric or t.kind == "null"):
            raise IRTypeError(f"{self.func.upper()} needs a number, got {t} column {self.arg!r}")
        if self.func in ("median", "quantile_cont"):
            self._check_fraction()
            return FLOAT64
        if self.func == "avg":
            return FLOAT64
        if t.kind == "decimal":
            return decimal(38, t.scale or 0)
        return t

    def _check_fraction(self) -> None:
        if len(self.params) != 1 or not isinstance(self.params[0], (int, float)) or not 0 <= self.params[0] <= 1:
            raise IRTypeError(f"{self.func.upper()} needs one fraction between 0 and 1")

    def __str__(self) -> str:
        if self.func == "count_star":
            return "count(*)"
        d = "DISTINCT " if self.distinct else ""
        extra = "".join(f", {p!r}" for p in self.params)
        order = ""
        if self.order:
            order = " ORDER BY " + ", ".join(f"{c} {'ASC' if a else 'DESC'}" + (" NULLS FIRST" if nf else "")
                                             for c, a, nf in self.order)
        return f"{self.func}({d}{self.arg}{extra}{order})"


def conjuncts(e: Expr | None) -> list[Expr]:
    """Split a predicate on top-level ANDs."""
    if e is None:
        return []
    if isinstance(e, And):
        out: list[Expr] = []
        for a in e.args:
            out.extend(conjuncts(a))
        return out
    return [e]


def conjoin(parts: list[Expr]) -> Expr | None:
    """Inverse of `conjuncts`; None for no parts."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return And(tuple(parts))


def rename_columns(e: Expr, mapping: dict[str, str]) -> Expr:
    return transform(e, lambda n: Col(mapping[n.name]) if isinstance(n, Col) and n.name in mapping else n)


def substitute(e: Expr, mapping: dict[str, Expr]) -> Expr:
    """Replace column references by expressions (used to push through Project)."""
    return transform(e, lambda n: mapping[n.name] if isinstance(n, Col) and n.name in mapping else n)
