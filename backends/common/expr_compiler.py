"""What every engine's expression compiler does the same way.

The engines differ in the text they emit (pyarrow.compute calls, PySpark
Column expressions) but not in how they read the IR: an expression typed
NULL is a typed NULL, a wanted type is reached by a cast, constant casts and
constant date arithmetic are worked out at generation time, and SQL compares
a string with a date (or a date with a timestamp) in the temporal type.
Subclasses supply the text: `null`, `_constant`, `_convert`, `_shift` and
one `_<expression class>` method per IR expression.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Generic, SupportsFloat, TypeVar, cast

from musketeer.backends.common.sql_semantics import add_months
from musketeer.backends.common.values import NO_FOLD, fold_cast, interval_value, physical_kind
from musketeer.ir import expr as E
from musketeer.ir.schema import Schema
from musketeer.ir.types import NULL, STRING, TIMESTAMP, DataType, UnsupportedError, common_type

Code = TypeVar("Code")


class BaseExprCompiler(Generic[Code]):
    """Compiles expressions over one relation with schema `schema` into `Code`
    (program text, or an engine's wrapper of it).

    `need(name)` records which runtime helpers the compiled text calls, so
    the program includes only those.
    """

    #: Engine name for "not supported" errors.
    ENGINE = "engine"

    def __init__(self, schema: Schema, need: Callable[[str], None]) -> None:
        self.schema = schema
        self.need = need

    # --- entry points ---------------------------------------------------------
    def code(self, e: E.Expr, want: DataType | None = None) -> Code:
        """Code for `e`; `want` asks for a value of that type (casting if needed)."""
        t = e.type_in(self.schema)
        if t.kind == "null":  # an expression typed NULL is NULL on every row
            return self.null(want or NULL)
        code = self._compile(e, t)
        if want is not None and want.kind != "null" and physical_kind(want) != physical_kind(t):
            code = self.cast(code, t, want, e)
        return code

    def type_of(self, e: E.Expr) -> DataType:
        return e.type_in(self.schema)

    # --- what subclasses emit -------------------------------------------------
    def null(self, t: DataType) -> Code:
        """A NULL of IR type `t`."""
        raise NotImplementedError

    def _constant(self, value: object, kind: str, t: DataType) -> Code:
        """A non-NULL constant already in the Python type of physical `kind`."""
        raise NotImplementedError

    def _convert(self, code: Code, src: DataType, dst: DataType) -> Code:
        """A run-time cast of a non-constant `code` (NULL and constants are done)."""
        raise NotImplementedError

    def _shift(self, base: E.Expr, bt: DataType, months: int, days: int) -> Code:
        """`base` (a non-constant date or timestamp) plus `months` then `days`."""
        raise NotImplementedError

    # --- shared emitters ------------------------------------------------------
    def literal(self, value: object, t: DataType) -> Code:
        """A constant of IR type `t`: date strings become dates and numbers
        doubles here, so no program parses or converts them per row."""
        if value is None:
            return self.null(t)
        kind = physical_kind(t)
        if kind == "interval":
            raise UnsupportedError("an INTERVAL value outside date arithmetic")
        if isinstance(value, str) and kind in ("date", "timestamp"):
            value = fold_cast(value, "string", t)
        if kind == "float64" and not isinstance(value, bool):
            value = float(cast(SupportsFloat, value))  # ints and Decimals
        return self._constant(value, kind, t)

    def cast(self, code: Code, src: DataType, dst: DataType, e: E.Expr | None = None) -> Code:
        """`code` (of type `src`; the expression `e` when known) as type `dst`:
        NULL stays NULL, a constant is cast now, anything else at run time."""
        s = physical_kind(src)
        if s == "null":
            return self.null(dst)
        if isinstance(e, E.Lit) and e.value is not None:
            folded = fold_cast(e.value, s, dst)
            if folded is not NO_FOLD:
                return self.literal(folded, dst)
        if s == "string" and physical_kind(dst) != "string":
            converted = self._parse(code, dst, cast_label(e))
        else:
            converted = self._convert(code, src, dst)
        if dst.kind == "decimal" and dst.precision is not None and src.kind != "decimal":
            return self._fits(converted, dst, cast_label(e))
        return converted

    def _fits(self, code: Code, dst: DataType, label: str) -> Code:
        """`code` (already cast to decimal `dst`), checked against its
        precision: engines that can override this to raise one data error
        naming `label` and the value, as DuckDB does."""
        return code

    def _parse(self, code: Code, dst: DataType, label: str) -> Code:
        """A run-time cast of strings to `dst`, where a value may not convert:
        engines that can override this to raise one data error naming
        `label` and the value (what DuckDB reports), the same on every engine."""
        return self._convert(code, STRING, dst)

    # --- dispatch -------------------------------------------------------------
    def _compile(self, e: E.Expr, t: DataType) -> Code:
        method = getattr(self, "_" + type(e).__name__.lower(), None)
        if method is None:
            raise UnsupportedError(f"{type(e).__name__} expressions in the {self.ENGINE}")
        return method(e, t)

    def _lit(self, e: E.Lit, t: DataType) -> Code:
        return self.literal(e.value, t)

    def _cast(self, e: E.Cast, t: DataType) -> Code:
        return self.cast(self.code(e.arg), self.type_of(e.arg), e.to, e.arg)

    def _interval_arith(self, e: E.Arith, lt: DataType, rt: DataType) -> Code:
        """date/timestamp +- INTERVAL (either order): constant intervals only;
        a constant date is shifted now."""
        if lt.kind == "interval":  # INTERVAL + date
            iv, base, bt = interval_value(e.left), e.right, rt
        else:
            iv, base, bt = interval_value(e.right), e.left, lt
        if iv is None:
            raise UnsupportedError(f"interval arithmetic with a non-constant interval: {e}")
        months, days = (iv.months, iv.days) if e.op == "+" else (-iv.months, -iv.days)
        if isinstance(base, E.Lit) and isinstance(base.value, dt.date):
            value = add_months(base.value, months) + dt.timedelta(days=days)
            return self.literal(value, bt)
        return self._shift(base, bt, months, days)

    def _comparable(self, a: E.Expr, b: E.Expr) -> tuple[Code, Code]:
        """Both operands, cast to one type where SQL compares across types
        (a string with a date, a date with a timestamp)."""
        at, bt = self.type_of(a), self.type_of(b)
        if at.kind == "null" or bt.kind == "null":
            target = bt if at.kind == "null" else at
            return self.code(a, target), self.code(b, target)
        if at.kind != bt.kind and (at.is_temporal or bt.is_temporal):
            target = TIMESTAMP if at.is_temporal and bt.is_temporal else (at if at.is_temporal else bt)
            return self.code(a, target), self.code(b, target)
        return self.code(a), self.code(b)

    def _in_type(self, arg_type: DataType, values: Sequence[E.Expr]) -> DataType:
        """The type `x IN (values)` compares in: the common type, except that
        strings compared with a date or timestamp are read as one."""
        target = arg_type
        for v in values:
            vt = self.type_of(v)
            if not (arg_type.is_temporal and vt.kind == "string"):
                target = common_type(target, vt) or target
        return target


def round_digits(e: E.Func) -> int:
    """The digits of ROUND(x[, digits]): a constant integer, 0 when absent."""
    if len(e.args) < 2:
        return 0
    d = e.args[1]
    if not (isinstance(d, E.Lit) and isinstance(d.value, int)):
        raise UnsupportedError(f"ROUND with non-constant digits: {e}")
    return d.value


def constant_bounds(e: E.Func) -> tuple[int, int | None] | None:
    """SUBSTRING's (start, length or None) when they are integer constants, else None."""
    bounds = [b.value for b in e.args[1:] if isinstance(b, E.Lit) and isinstance(b.value, int)]
    if len(bounds) != len(e.args) - 1:
        return None
    return bounds[0], bounds[1] if len(bounds) > 1 else None


def cast_label(e: E.Expr | None) -> str:
    """How a data error names the value being cast: its column, else the expression."""
    if isinstance(e, E.Col):
        return f"column {e.name!r}"
    return "CAST" if e is None else f"CAST({e})"
