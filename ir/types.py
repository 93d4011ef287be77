"""Logical data types of the IR.

Backends map these onto their own physical types; the IR only needs enough
to type-check expressions at lowering time, so that a bad workflow fails
before any engine starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class MusketeerError(Exception):
    """Base of every error meant for the user rather than for a traceback.

    The CLI prints `file:line:col: message` (plus the source line and a caret
    when `loc` is known) and exits with code 2.
    """

    def __init__(self, message: str, loc: "SourceLoc | None" = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc

    def __str__(self) -> str:
        return self.message


class IRError(MusketeerError):
    """A workflow the IR rejects. `loc` is filled in by the frontend when known."""


class UnsupportedError(MusketeerError):
    """A construct we recognise but do not handle yet; the message starts
    with 'not supported yet:' so users know it is us, not them."""

    def __init__(self, construct: str, loc: "SourceLoc | None" = None) -> None:
        super().__init__(f"not supported yet: {construct}", loc)


class DataError(MusketeerError):
    """Input data that is missing, unreadable or does not fit its schema."""


class IRTypeError(IRError):
    """An expression whose operand types do not fit its operator."""


@dataclass(frozen=True)
class SourceLoc:
    """Where a construct came from in the user's workflow file."""

    file: str
    line: int
    col: int


@dataclass(frozen=True)
class DataType:
    """`kind` is one of KINDS; precision/scale are only used by decimals."""

    kind: str
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.kind == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.kind

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("int64", "float64", "decimal")

    @property
    def is_temporal(self) -> bool:
        return self.kind in ("date", "timestamp")


KINDS = ("int64", "float64", "decimal", "bool", "string", "date", "timestamp", "interval", "null")

INT64 = DataType("int64")
FLOAT64 = DataType("float64")
BOOL = DataType("bool")
STRING = DataType("string")
DATE = DataType("date")
TIMESTAMP = DataType("timestamp")
INTERVAL = DataType("interval")
NULL = DataType("null")  # the type of an untyped NULL literal; fits anywhere


def decimal(precision: int, scale: int) -> DataType:
    return DataType("decimal", precision, scale)


_DECIMAL_RE = re.compile(r"decimal\((\d+),\s*(\d+)\)")


def parse_type(text: str) -> DataType:
    """Inverse of `str(DataType)`, used by JSON and schema files."""
    text = text.strip().lower()
    m = _DECIMAL_RE.fullmatch(text)
    if m:
        return decimal(int(m.group(1)), int(m.group(2)))
    if text in KINDS and text != "decimal":
        return DataType(text)
    raise IRError(f"unknown type {text!r}")


def common_type(a: DataType, b: DataType) -> DataType | None:
    """The type both operands are promoted to, or None if they do not mix."""
    if a == b:
        return a
    if a.kind == "null":
        return b
    if b.kind == "null":
        return a
    if a.is_numeric and b.is_numeric:
        if "float64" in (a.kind, b.kind):
            return FLOAT64
        if a.kind == "decimal" and b.kind == "decimal":
            scale = max(a.scale or 0, b.scale or 0)
            return decimal(max(a.precision or 18, b.precision or 18), scale)
        return a if a.kind == "decimal" else b
    if a.is_temporal and b.is_temporal:
        return TIMESTAMP
    return None
