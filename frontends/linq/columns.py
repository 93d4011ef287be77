"""Column expressions built by operator overloading.

`orders.total > 100` does not compare anything: `orders.total` is a
`Column`, a thin wrapper around an `ir.expr` tree, and every operator builds
a bigger tree. Nothing is inspected from bytecode, so what can be written is
exactly what has an IR form, and anything else fails loudly:

- `and`, `or`, `not`, `if col:` and chained comparisons (`a < x < b`) call
  `bool()` on a Column, which raises and says to use `&`, `|`, `~`;
- calling arbitrary Python (`math.sqrt(col)`, `numpy` ufuncs, string
  methods) raises and points at `Dataset.apply()` for opaque Python.

A column taken from a dataset (`orders.total`, or `o.total` in a lambda)
remembers which dataset it came from (`Ref`), so a predicate over a join
can use either input's columns even after clashing names were renamed.
`col("x")` is a plain name, resolved wherever it is used.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Union

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.schema import Schema
from musketeer.ir.text import expr_text
from musketeer.ir.types import (
    BOOL, DATE, FLOAT64, INT64, NULL, STRING, TIMESTAMP, DataType, IRTypeError, MusketeerError, parse_type,
)

from musketeer.frontends.linq.errors import LinqError

Scalar = Union[None, bool, int, float, str, dt.date, dt.datetime, decimal.Decimal]
ColumnLike = Union["Column", Scalar]


@dataclass(frozen=True)
class Ref(E.Expr):
    """Column `name` of the dataset whose operator has id `origin`.

    Only lives inside the frontend: lowering replaces every Ref with the
    `ir.expr.Col` it names in the dataset being built.
    """

    name: str
    origin: int

    def type_in(self, schema: Schema) -> DataType:
        return schema.dtype(self.name)


@dataclass(frozen=True)
class AggMarker(E.Expr):
    """An aggregate call inside a column expression (`x.sum() / y.count()`).

    `Dataset.agg` lifts each marker into an `ir.operators.Aggregate` and
    puts a column reference in its place; anywhere else a marker is an error.
    """

    func: str  # sum, count, count_star, avg, min, max
    arg: E.Expr | None
    distinct: bool = False

    def type_in(self, schema: Schema) -> DataType:
        if self.arg is None:
            return INT64
        t = self.arg.type_in(schema)
        return E.AggCall(self.func, "__arg", self.distinct).result_type(Schema.of([("__arg", t)]))


def display(e: E.Expr) -> str:
    """An expression as SQL-like text, frontend-only nodes included."""

    def plain(n: E.Expr) -> E.Expr:
        if isinstance(n, Ref):
            return E.Col(n.name)
        if isinstance(n, AggMarker):
            if n.arg is None:
                return E.Func("count", (E.Col("*"),))
            return E.Func(n.func + ("_distinct" if n.distinct else ""), (n.arg,))
        if type(n).__name__ == "WindowMarker":  # frontends/linq/windows.py
            arg = getattr(n, "arg", None)
            return E.Func(getattr(n, "func") + "_over", (arg,) if arg is not None else ())
        return n

    try:
        return expr_text(E.transform(e, plain))
    except TypeError:  # pragma: no cover - a node type without text
        return repr(e)


def literal(value: Scalar) -> E.Lit:
    """A Python constant as a typed IR literal."""
    if isinstance(value, decimal.Decimal):
        return E.Lit(float(value), FLOAT64)  # as the SQL frontend: exact decimals are not literals
    try:
        return E.Lit.of(value)
    except IRTypeError:
        raise LinqError(
            f"cannot use {type(value).__name__} value {value!r} in a column expression: only None, bool, "
            "int, float, str, datetime.date and datetime.datetime constants have an IR form"
        ) from None


def to_column(value: Any) -> "Column":
    if isinstance(value, Column):
        return value
    if isinstance(value, SortOrder):
        raise LinqError(f"{value!r} is a sort order, usable only in order_by()")
    return Column(literal(value))


def _merge(*groups: tuple[O.Op, ...]) -> tuple[O.Op, ...]:
    out: dict[int, O.Op] = {}
    for g in groups:
        for op in g:
            out.setdefault(id(op), op)
    return tuple(out.values())


def _bool_error(c: "Column") -> LinqError:
    return LinqError(
        f"the column expression ({display(c.expr)}) was used as a Python truth value: `and`, `or`, `not`, "
        "`if` and chained comparisons (a < x < b) cannot be lowered; combine conditions with & | ~ "
        "(parenthesised: (a > 1) & (b < 2)), or use Dataset.apply() for arbitrary Python"
    )


class Column:
    """A lazily built column expression; see the module docstring.

    `origins` keeps alive the operators that `Ref`s in `expr` point at, so
    their ids stay unique while the Column exists.
    """

    __slots__ = ("expr", "name", "origins")
    __hash__ = None  # type: ignore[assignment]  # == builds an expression

    def __init__(self, expr: E.Expr, name: str | None = None, origins: tuple[O.Op, ...] = ()) -> None:
        self.expr = expr
        self.name = name
        self.origins = origins

    # --- naming -------------------------------------------------------------
    def alias(self, name: str) -> "Column":
        """The same expression under an output name."""
        if not isinstance(name, str) or not name:
            raise LinqError(f"alias() needs a non-empty column name, got {name!r}")
        return Column(self.expr, name, self.origins)

    @property
    def output_name(self) -> str | None:
        """The alias, or the column name of a bare column reference."""
        if self.name is not None:
            return self.name
        if isinstance(self.expr, (Ref, E.Col)):
            return self.expr.name
        return None

    def _derive(self, expr: E.Expr, *others: "Column") -> "Column":
        return Column(expr, None, _merge(self.origins, *(o.origins for o in others)))

    def __repr__(self) -> str:
        alias = f" AS {self.name}" if self.name else ""
        return f"Column({display(self.expr)}{alias})"

    # --- arithmetic ---------------------------------------------------------
    def _arith(self, op: str, other: Any, reflected: bool = False) -> "Column":
        o = to_column(other)
        left, right = (o, self) if reflected else (self, o)
        return self._derive(E.Arith(op, left.expr, right.expr), o)

    def __add__(self, other: Any) -> "Column":
        return self._arith("+", other)

    def __radd__(self, other: Any) -> "Column":
        return self._arith("+", other, True)

    def __sub__(self, other: Any) -> "Column":
        return self._arith("-", other)

    def __rsub__(self, other: Any) -> "Column":
        return self._arith("-", other, True)

    def __mul__(self, other: Any) -> "Column":
        return self._arith("*", other)

    def __rmul__(self, other: Any) -> "Column":
        return self._arith("*", other, True)

    def __truediv__(self, other: Any) -> "Column":
        return self._arith("/", other)

    def __rtruediv__(self, other: Any) -> "Column":
        return self._arith("/", other, True)

    def __mod__(self, other: Any) -> "Column":
        return self._arith("%", other)

    def __rmod__(self, other: Any) -> "Column":
        return self._arith("%", other, True)

    def __floordiv__(self, other: Any) -> "Column":
        raise LinqError(f"// on a column ({display(self.expr)}): write (a / b).floor()")

    __rfloordiv__ = __floordiv__

    def __pow__(self, exponent: Any) -> "Column":
        """Small whole powers multiply out (x ** 2 is x * x); others need exp/ln."""
        if isinstance(exponent, int) and not isinstance(exponent, bool) and 1 <= exponent <= 4:
            out = self
            for _ in range(exponent - 1):
                out = out * self
            return out
        raise LinqError(f"({display(self.expr)}) ** {exponent!r}: only whole powers 1 to 4 are supported; "
                        "write (e * x.ln()).exp() for others")

    def __neg__(self) -> "Column":
        return self._derive(E.Neg(self.expr))

    def __pos__(self) -> "Column":
        return self

    def __abs__(self) -> "Column":
        return self.abs()

    # --- comparisons --------------------------------------------------------
    def _compare(self, op: str, other: Any) -> "Column":
        if other is None:
            method = "is_null()" if op == "=" else "is_not_null()"
            raise LinqError(f"comparing ({display(self.expr)}) with None is never true in SQL; use .{method}")
        o = to_column(other)
        return self._derive(E.Compare(op, self.expr, o.expr), o)

    def __eq__(self, other: Any) -> "Column":  # type: ignore[override]
        return self._compare("=", other)

    def __ne__(self, other: Any) -> "Column":  # type: ignore[override]
        return self._compare("<>", other)

    def __lt__(self, other: Any) -> "Column":
        return self._compare("<", other)

    def __le__(self, other: Any) -> "Column":
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> "Column":
        return self._compare(">", other)

    def __ge__(self, other: Any) -> "Column":
        return self._compare(">=", other)

    def between(self, low: Any, high: Any) -> "Column":
        """low <= self <= high (inclusive, as SQL BETWEEN)."""
        return (self >= low) & (self <= high)

    # --- logic --------------------------------------------------------------
    def _logic(self, cls: type, other: Any, reflected: bool = False) -> "Column":
        o = to_column(other)
        left, right = (o, self) if reflected else (self, o)
        args: list[E.Expr] = []
        for part in (left.expr, right.expr):
            args.extend(part.args if isinstance(part, cls) else (part,))  # type: ignore[attr-defined]
        return self._derive(cls(tuple(args)), o)

    def __and__(self, other: Any) -> "Column":
        return self._logic(E.And, other)

    def __rand__(self, other: Any) -> "Column":
        return self._logic(E.And, other, True)

    def __or__(self, other: Any) -> "Column":
        return self._logic(E.Or, other)

    def __ror__(self, other: Any) -> "Column":
        return self._logic(E.Or, other, True)

    def __invert__(self) -> "Column":
        return self._derive(E.Not(self.expr))

    # --- what cannot be lowered ---------------------------------------------
    def __bool__(self) -> bool:
        raise _bool_error(self)

    def __iter__(self) -> Any:
        raise LinqError(f"a column expression ({display(self.expr)}) cannot be iterated: it has no values "
                        "until the workflow runs; collect() the dataset, or use Dataset.apply()")

    def __contains__(self, item: Any) -> bool:
        raise LinqError(f"`in` on a column ({display(self.expr)}): use .isin([...]) or .like('%text%')")

    def _no_python(self, what: str) -> LinqError:
        return LinqError(f"{what} of a column expression ({display(self.expr)}) cannot be lowered to the IR; "
                         "use the Column methods (abs, sqrt, round, cast, ...) or Dataset.apply() for "
                         "arbitrary Python")

    def __float__(self) -> float:
        raise self._no_python("float()")

    def __int__(self) -> int:
        raise self._no_python("int()")

    def __index__(self) -> int:
        raise self._no_python("using as an index")

    def __len__(self) -> int:
        raise self._no_python("len()")

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        raise self._no_python(f"the numpy function {getattr(ufunc, '__name__', ufunc)}")

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_python("converting to a numpy array")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        methods = [m for m in dir(Column) if not m.startswith("_")]
        close = difflib.get_close_matches(name, methods, n=1, cutoff=0.6)
        hint = f"; did you mean .{close[0]}()?" if close else ""
        raise LinqError(f"column expressions have no method {name!r}{hint} (for arbitrary Python, "
                        "use Dataset.apply())")

    # --- predicates ---------------------------------------------------------
    def isin(self, values: Iterable[Any]) -> "Column":
        """SQL IN over constants or columns."""
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise LinqError(f"isin() needs a list of values, got {values!r}")
        cols = [to_column(v) for v in values]
        if not cols:
            return Column(E.Lit(False, BOOL))
        return self._derive(E.InList(self.expr, tuple(c.expr for c in cols)), *cols)

    def like(self, pattern: str) -> "Column":
        """SQL LIKE: '%' any run of characters, '_' one character."""
        if not isinstance(pattern, str):
            raise LinqError(f"like() needs a constant pattern string, got {pattern!r}")
        return self._derive(E.Like(self.expr, pattern))

    def ilike(self, pattern: str) -> "Column":
        if not isinstance(pattern, str):
            raise LinqError(f"ilike() needs a constant pattern string, got {pattern!r}")
        return self._derive(E.Like(self.expr, pattern, case_insensitive=True))

    def is_null(self) -> "Column":
        return self._derive(E.IsNull(self.expr))

    def is_not_null(self) -> "Column":
        return self._derive(E.IsNull(self.expr, negated=True))

    # --- conversions and functions -------------------------------------------
    def cast(self, to: "DataType | str | type") -> "Column":
        return self._derive(E.Cast(self.expr, to_type(to)))

    def _extract(self, part: str) -> "Column":
        return self._derive(E.Extract(part, self.expr))

    def year(self) -> "Column":
        return self._extract("year")

    def quarter(self) -> "Column":
        return self._extract("quarter")

    def month(self) -> "Column":
        return self._extract("month")

    def day(self) -> "Column":
        return self._extract("day")

    def _func(self, name: str, *args: Any) -> "Column":
        cols = [to_column(a) for a in args]
        return self._derive(E.Func(name, (self.expr, *(c.expr for c in cols))), *cols)

    def abs(self) -> "Column":
        return self._func("abs")

    def sqrt(self) -> "Column":
        return self._func("sqrt")

    def exp(self) -> "Column":
        return self._func("exp")

    def ln(self) -> "Column":
        return self._func("ln")

    def floor(self) -> "Column":
        return self._func("floor")

    def ceil(self) -> "Column":
        return self._func("ceil")

    def round(self, digits: int = 0) -> "Column":
        return self._func("round", digits) if digits else self._func("round")

    def upper(self) -> "Column":
        return self._func("upper")

    def lower(self) -> "Column":
        return self._func("lower")

    def trim(self) -> "Column":
        return self._func("trim")

    def length(self) -> "Column":
        return self._func("length")

    def substring(self, start: int, length: int | None = None) -> "Column":
        """1-based, as SQL."""
        return self._func("substring", start) if length is None else self._func("substring", start, length)

    def fill_null(self, *defaults: Any) -> "Column":
        """COALESCE(self, defaults...)."""
        return self._func("coalesce", *defaults)

    # --- aggregates (valid inside agg() and iterate(until=...)) --------------
    def _agg(self, func: str, distinct: bool = False) -> "Column":
        if any(isinstance(n, AggMarker) for n in self.expr.walk()):
            raise LinqError(f"aggregates cannot be nested: {func}({display(self.expr)})")
        return self._derive(AggMarker(func, self.expr, distinct))

    def sum(self) -> "Column":
        return self._agg("sum")

    def mean(self) -> "Column":
        return self._agg("avg")

    avg = mean

    def min(self) -> "Column":
        return self._agg("min")

    def max(self) -> "Column":
        return self._agg("max")

    def count(self) -> "Column":
        """Non-NULL values; `count()` (the function) counts rows."""
        return self._agg("count")

    def count_distinct(self) -> "Column":
        return self._agg("count", distinct=True)

    # --- window functions (frontends/linq/windows.py) ------------------------
    def over(self, partition_by: Any = (), order_by: Any = (), *, rows: Any = None, range: Any = None,
             groups: Any = None) -> "Column":
        """This aggregate or window function over a window: `partition_by`
        and `order_by` take names, columns or `.desc()` orders; a frame is
        `rows=`/`range=`/`groups=` `(start, end)` offsets (negative:
        preceding, 0: current row, positive: following, None: unbounded)."""
        from musketeer.frontends.linq.windows import over

        return over(self, partition_by, order_by, rows, range, groups)

    def lag(self, offset: int = 1, default: Any = None) -> "Column":
        """The value `offset` rows before in the window (call .over(...))."""
        from musketeer.frontends.linq.windows import offset_function

        return offset_function(self, "lag", offset, default)

    def lead(self, offset: int = 1, default: Any = None) -> "Column":
        """The value `offset` rows after in the window (call .over(...))."""
        from musketeer.frontends.linq.windows import offset_function

        return offset_function(self, "lead", offset, default)

    def first_value(self) -> "Column":
        from musketeer.frontends.linq.windows import value_function

        return value_function(self, "first_value")

    def last_value(self) -> "Column":
        from musketeer.frontends.linq.windows import value_function

        return value_function(self, "last_value")

    def nth_value(self, n: int) -> "Column":
        from musketeer.frontends.linq.windows import value_function

        return value_function(self, "nth_value", n)

    # --- sort orders ----------------------------------------------------------
    def desc(self, nulls_first: bool = False) -> "SortOrder":
        return SortOrder(self, False, nulls_first)

    def asc(self, nulls_first: bool = False) -> "SortOrder":
        return SortOrder(self, True, nulls_first)


@dataclass(frozen=True)
class SortOrder:
    """One order_by() key: a column and a direction."""

    column: Column
    ascending: bool = True
    nulls_first: bool = False

    def __repr__(self) -> str:
        return f"{display(self.column.expr)} {'ASC' if self.ascending else 'DESC'}"


# --- module-level helpers --------------------------------------------------------

def col(name: str) -> Column:
    """A column by name, resolved in whichever dataset the expression is used."""
    if not isinstance(name, str) or not name:
        raise LinqError(f"col() needs a column name, got {name!r}")
    return Column(E.Col(name))


def lit(value: Scalar) -> Column:
    """A constant column."""
    return Column(literal(value))


def count() -> Column:
    """COUNT(*): the number of rows (in each group)."""
    return Column(AggMarker("count_star", None))


def coalesce(*values: ColumnLike) -> Column:
    """The first non-NULL of `values`."""
    if not values:
        raise LinqError("coalesce() needs at least one value")
    cols = [to_column(v) for v in values]
    return Column(E.Func("coalesce", tuple(c.expr for c in cols)), None, _merge(*(c.origins for c in cols)))


class When:
    """`when(cond, value).when(cond2, value2).otherwise(default)`: SQL CASE."""

    __slots__ = ("_whens",)

    def __init__(self, whens: tuple[tuple[Column, Column], ...]) -> None:
        self._whens = whens

    def when(self, condition: ColumnLike, value: ColumnLike) -> "When":
        return When(self._whens + ((to_column(condition), to_column(value)),))

    def otherwise(self, default: ColumnLike) -> Column:
        return self._build(to_column(default))

    def end(self) -> Column:
        """CASE without ELSE: NULL when no condition holds."""
        return self._build(None)

    def _build(self, default: Column | None) -> Column:
        parts = [c for pair in self._whens for c in pair] + ([default] if default is not None else [])
        expr = E.Case(tuple((c.expr, v.expr) for c, v in self._whens), default.expr if default is not None else None)
        return Column(expr, None, _merge(*(c.origins for c in parts)))


def when(condition: ColumnLike, value: ColumnLike) -> When:
    return When(((to_column(condition), to_column(value)),))


# --- types ----------------------------------------------------------------------------

_TYPE_ALIASES: dict[Any, DataType] = {
    int: INT64, float: FLOAT64, str: STRING, bool: BOOL, dt.date: DATE, dt.datetime: TIMESTAMP,
    "int": INT64, "integer": INT64, "bigint": INT64, "float": FLOAT64, "double": FLOAT64,
    "str": STRING, "varchar": STRING, "text": STRING, "boolean": BOOL,
}


def to_type(spec: "DataType | str | type") -> DataType:
    """A DataType from a DataType, a type name ('int64', 'decimal(12,2)', 'float') or a Python type."""
    if isinstance(spec, DataType):
        return spec
    if isinstance(spec, str) and spec.strip().lower() in _TYPE_ALIASES:
        return _TYPE_ALIASES[spec.strip().lower()]
    if not isinstance(spec, str) and spec in _TYPE_ALIASES:
        return _TYPE_ALIASES[spec]
    if isinstance(spec, str):
        try:
            return parse_type(spec)
        except MusketeerError:
            pass
    raise LinqError(f"unknown column type {spec!r}: use int64, float64, decimal(p,s), bool, string, date, "
                    "timestamp (or int, float, str, bool, datetime.date)")


def to_schema(spec: Any) -> Schema:
    """A Schema from a Schema, a {name: type} mapping or (name, type) pairs."""
    if isinstance(spec, Schema):
        return spec
    pairs = list(spec.items()) if hasattr(spec, "items") else list(spec)
    try:
        return Schema.of((str(n), to_type(t)) for n, t in pairs)
    except (TypeError, ValueError):
        raise LinqError(f"a schema is a {{name: type}} dict or (name, type) pairs, got {spec!r}") from None


# --- lowering helpers -----------------------------------------------------------------

def has_aggregate(e: E.Expr) -> bool:
    return any(isinstance(n, AggMarker) for n in e.walk())


def coerce_literals(e: E.Expr, schema: Schema) -> E.Expr:
    """String constants compared with dates become dates (`o.date < '1995-03-15'`),
    as the SQL frontend does, so every backend compares typed values."""

    def typed(n: E.Expr) -> DataType:
        try:
            return n.type_in(schema)
        except MusketeerError:
            return NULL  # the operator's own check reports it, with its message

    def to_temporal(lit_: E.Expr, target: DataType) -> E.Expr:
        if not (isinstance(lit_, E.Lit) and lit_.dtype == STRING and target.is_temporal):
            return lit_
        try:
            if target == DATE:
                return E.Lit(dt.date.fromisoformat(lit_.value.strip()), DATE)
            return E.Lit(dt.datetime.fromisoformat(lit_.value.strip()), TIMESTAMP)
        except ValueError:
            raise LinqError(f"{lit_.value!r} is not a valid {target} (use YYYY-MM-DD)") from None

    def fix(n: E.Expr) -> E.Expr:
        if isinstance(n, E.Compare):
            lt, rt = typed(n.left), typed(n.right)
            return dataclasses.replace(n, left=to_temporal(n.left, rt),  # type: ignore[arg-type]
                                       right=to_temporal(n.right, lt))
        if isinstance(n, E.InList):
            t = typed(n.arg)
            return dataclasses.replace(n, values=tuple(to_temporal(v, t) for v in n.values))  # type: ignore[arg-type]
        return n

    return E.transform(e, fix)


__all__ = [
    "AggMarker", "Column", "ColumnLike", "Ref", "SortOrder", "When", "coalesce", "col", "count", "display", "lit",
    "literal", "to_column", "to_schema", "to_type", "when",
]
