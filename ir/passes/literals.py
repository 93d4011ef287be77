"""Evaluate SQL operators on literal Python values, the way SQL engines do.

Used by constant folding. Every function raises `CannotFold` when the result
is not certain to match what the engines would compute (division by zero,
int64 overflow, engine-specific casts, ...): the expression then stays as
written and the engine evaluates it.

Numbers: decimal literals arrive as Python floats (the IR keeps decimals of
literals as float64), but SQL evaluates `0.06 + 0.01` in exact decimal
arithmetic. So `+ - *` go through `decimal.Decimal(repr(x))` - the shortest
repr of a float is the literal as written - and `0.06 + 0.01` folds to
`0.07`, not `0.06999999999999999`. Division yields a double in the engines,
so it is done in float64 like they do.

Dates: `date + INTERVAL` adds months first (clamping the day to the end of
the month, so Jan 31 + 1 month = Feb 28/29), then days.
"""

from __future__ import annotations

import calendar
import datetime as dt
import decimal
import math
import re
from typing import Any

from musketeer.ir.expr import Interval
from musketeer.ir.types import DataType

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class CannotFold(Exception):
    """The operation is left for the engine to evaluate."""


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _dec(v: int | float) -> decimal.Decimal:
    if isinstance(v, float) and not math.isfinite(v):
        raise CannotFold
    return decimal.Decimal(repr(v)) if isinstance(v, float) else decimal.Decimal(v)


def _checked_int(v: int) -> int:
    if not INT64_MIN <= v <= INT64_MAX:
        raise CannotFold  # the engine raises (or wraps); do not guess
    return v


def _checked_float(v: float) -> float:
    if not math.isfinite(v):
        raise CannotFold
    return v


def add_months(d: dt.date, months: int) -> dt.date:
    """Calendar month arithmetic, clamping the day to the month's end."""
    years, month0 = divmod(d.month - 1 + months, 12)
    year = d.year + years
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise CannotFold
    day = min(d.day, calendar.monthrange(year, month0 + 1)[1])
    return d.replace(year=year, month=month0 + 1, day=day)


def add_interval(d: dt.date, iv: Interval, sign: int = 1) -> dt.date:
    """`d + iv` (sign 1) or `d - iv` (sign -1); works for dates and datetimes."""
    try:
        return add_months(d, sign * iv.months) + dt.timedelta(days=sign * iv.days)
    except OverflowError as exc:
        raise CannotFold from exc


def arith(op: str, a: Any, b: Any, result: DataType) -> Any:
    """Value of `a op b` for non-NULL literals, as a value of type `result`."""
    if isinstance(a, dt.date) and isinstance(b, Interval) and op in ("+", "-"):
        return add_interval(a, b, 1 if op == "+" else -1)
    if isinstance(a, Interval) and isinstance(b, dt.date) and op == "+":
        return add_interval(b, a)
    if op == "-" and type(a) is dt.date and type(b) is dt.date:
        return (a - b).days
    if not (is_number(a) and is_number(b)):
        raise CannotFold
    if op == "/":
        if b == 0:
            raise CannotFold  # NULL in some engines, an error in others
        return _checked_float(float(a) / float(b))
    if op == "%":
        if b == 0:
            raise CannotFold
        if isinstance(a, int) and isinstance(b, int):
            r = abs(a) % abs(b)  # SQL: the result takes the dividend's sign
            return _as(-r if a < 0 else r, result)
        return _as(_checked_float(math.fmod(a, b)), result)
    if isinstance(a, int) and isinstance(b, int):
        v = {"+": a + b, "-": a - b, "*": a * b}[op]
        return _as(_checked_int(v), result)
    x, y = _dec(a), _dec(b)
    with decimal.localcontext() as ctx:
        ctx.prec = 34
        d = {"+": x + y, "-": x - y, "*": x * y}[op]
    return _as(_checked_float(float(d)), result)


def _as(v: int | float, t: DataType) -> int | float:
    """Represent a numeric result the way literals of type `t` are stored."""
    if t.kind == "int64":
        if isinstance(v, float):
            raise CannotFold
        return v
    return float(v)


def compare(op: str, a: Any, b: Any) -> bool:
    """`a op b` for non-NULL literals of comparable kinds."""
    if is_number(a) and is_number(b):
        pass
    elif isinstance(a, bool) and isinstance(b, bool):
        pass
    elif isinstance(a, str) and isinstance(b, str):
        pass  # engines compare strings by code point (binary collation)
    elif isinstance(a, dt.date) and isinstance(b, dt.date):
        a, b = _as_datetime(a), _as_datetime(b)
    else:
        raise CannotFold
    if op == "=":
        return bool(a == b)
    if op == "<>":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    if op == ">=":
        return bool(a >= b)
    raise CannotFold


def _as_datetime(d: dt.date) -> dt.datetime:
    return d if isinstance(d, dt.datetime) else dt.datetime(d.year, d.month, d.day)


_DATE_RE = re.compile(r"\s*(\d{4}-\d{2}-\d{2})\s*")
_TIMESTAMP_RE = re.compile(r"\s*(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?))?\s*")
_INT_RE = re.compile(r"\s*[+-]?\d+\s*")
_NUM_RE = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def parse_date(s: str) -> dt.date:
    m = _DATE_RE.fullmatch(s)
    if not m:
        raise CannotFold
    try:
        return dt.date.fromisoformat(m.group(1))
    except ValueError as exc:
        raise CannotFold from exc


def parse_timestamp(s: str) -> dt.datetime:
    m = _TIMESTAMP_RE.fullmatch(s)
    if not m:
        raise CannotFold
    try:
        return dt.datetime.fromisoformat(m.group(1) + (" " + m.group(2) if m.group(2) else ""))
    except ValueError as exc:
        raise CannotFold from exc


def cast(v: Any, to: DataType) -> Any:
    """CAST of a non-NULL literal, only where every engine agrees."""
    k = to.kind
    if k == "date":
        if isinstance(v, str):
            return parse_date(v)
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, dt.date):
            return v
    elif k == "timestamp":
        if isinstance(v, str):
            return parse_timestamp(v)
        if isinstance(v, dt.date):
            return _as_datetime(v)
    elif k == "int64":
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, int):
            return v
        if isinstance(v, str) and _INT_RE.fullmatch(v):
            return _checked_int(int(v))
        # float -> int rounds differently across engines: leave it
    elif k == "float64":
        if is_number(v):
            return float(v)
        if isinstance(v, str) and _NUM_RE.fullmatch(v):
            return _checked_float(float(v))
    elif k == "decimal":
        if isinstance(v, str) and _NUM_RE.fullmatch(v):
            v = float(v)
        if is_number(v):
            return _to_decimal(v, to)
    elif k == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true"
    elif k == "string":
        if isinstance(v, str):
            return v
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if type(v) is dt.date:
            return v.isoformat()
    raise CannotFold


def _to_decimal(v: int | float, to: DataType) -> float:
    scale = to.scale or 0
    precision = to.precision or 18
    q = _dec(v).quantize(decimal.Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP)
    if len(q.as_tuple().digits) > precision:
        raise CannotFold  # the engine reports an overflow
    return float(q)


def extract(part: str, v: dt.date) -> int:
    if part == "year":
        return v.year
    if part == "quarter":
        return (v.month - 1) // 3 + 1
    if part == "month":
        return v.month
    if part == "day":
        return v.day
    if part == "dow":
        return v.isoweekday() % 7  # Sunday = 0, as in PostgreSQL and DuckDB
    if part == "doy":
        return v.timetuple().tm_yday
    if isinstance(v, dt.datetime) and part in ("hour", "minute"):
        return v.hour if part == "hour" else v.minute
    raise CannotFold
