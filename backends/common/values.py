"""IR constants and types as every engine holds them at run time.

All engines agree on the physical representation of IR types (decimals run
as float64, so results match DuckDB within 1e-6 relative) and on which
literal casts are worked out at generation time, so a generated program
never has to parse a date string once per row. These helpers are used by
the code generators only; generated programs never import them.
"""

from __future__ import annotations

import datetime as dt
import decimal as pydecimal
import math

from musketeer.ir import expr as E
from musketeer.ir.types import DataType, IRTypeError, UnsupportedError


def physical_kind(t: DataType) -> str:
    """The kind a value of IR type `t` has at run time: decimals are doubles."""
    return "float64" if t.kind == "decimal" else t.kind


def engine_type(t: DataType, types: dict[str, str], engine: str) -> str:
    """`types[kind]` (program text for the engine's type of `t`), or a one-line UnsupportedError."""
    try:
        return types[t.kind]
    except KeyError:
        raise UnsupportedError(f"{t} values as a column in the {engine}") from None


def python_literal(value: object) -> str:
    """Python source for a literal value (strings via repr(), so never code)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, pydecimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else 'float("-inf")'
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dt.datetime):
        parts = [value.year, value.month, value.day, value.hour, value.minute, value.second]
        if value.microsecond:
            parts.append(value.microsecond)
        return f"datetime.datetime({', '.join(map(str, parts))})"
    if isinstance(value, dt.date):
        return f"datetime.date({value.year}, {value.month}, {value.day})"
    raise UnsupportedError(f"literal {value!r}")


#: `fold_cast` result meaning "not foldable here: cast at run time".
NO_FOLD = object()


def fold_cast(value: object, src_kind: str, dst: DataType) -> object:
    """`value` (of physical kind `src_kind`) cast to `dst` at generation time,
    where that is exact and simple; NO_FOLD otherwise."""
    d = physical_kind(dst)
    if src_kind == d:
        return value
    if src_kind == "string" and d == "date" and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise IRTypeError(f"cannot read {value!r} as a date") from None
    if src_kind == "string" and d == "timestamp" and isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise IRTypeError(f"cannot read {value!r} as a timestamp") from None
    if src_kind == "date" and d == "timestamp" and isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if src_kind == "int64" and d == "float64" and isinstance(value, int):
        return float(value)
    return NO_FOLD


def interval_value(e: E.Expr) -> E.Interval | None:
    """The constant interval `e` denotes (a literal, possibly negated), else None."""
    if isinstance(e, E.Lit) and isinstance(e.value, E.Interval):
        return e.value
    if isinstance(e, E.Neg):
        inner = interval_value(e.arg)
        return E.Interval(-inner.months, -inner.days) if inner else None
    return None
