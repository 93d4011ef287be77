"""Window functions: values computed over a row's neighbours, keeping every row.

A `Window` operator appends one column per `WindowCall` to its input. All
calls of one operator share the partition keys and the ordering (SQL's
`PARTITION BY ... ORDER BY ...`); a query with several different windows is
lowered to a chain of Window operators. Each call that reads a frame carries
its own `Frame`, always explicit in the IR (frontends fill in SQL's
defaults), so engines never need to know SQL's default-frame rules.

Frames follow SQL: `ROWS` counts rows, `GROUPS` counts peer groups (rows
with equal order keys), `RANGE` compares order-key values (an offset needs
exactly one numeric or date order key; for a date key the offset is days).
A bound is `FrameBound(kind, offset)` with kind one of
`unbounded_preceding`, `preceding`, `current_row`, `following`,
`unbounded_following`.

Example (`SUM(x) OVER (PARTITION BY k ORDER BY t ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)`):

    Window(%0, partition [k], order [t ASC NULLS LAST],
           [s := sum(x) ROWS BETWEEN 1 PRECEDING AND CURRENT ROW])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from musketeer.ir.expr import WINDOW_FUNCS, AggCall
from musketeer.ir.schema import Field, Schema
from musketeer.ir.types import FLOAT64, INT64, DataType, IRError, IRTypeError, common_type

BOUND_KINDS = ("unbounded_preceding", "preceding", "current_row", "following", "unbounded_following")
FRAME_KINDS = ("rows", "range", "groups")

#: Window function name -> what it needs: `arg` (reads a column), `frame` (reads its frame).
RANKING = ("row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile")
OFFSET = ("lag", "lead")
VALUE = ("first_value", "last_value", "nth_value")
AGGREGATE = ("sum", "avg", "count", "count_star", "min", "max")
assert set(WINDOW_FUNCS) == set(RANKING + OFFSET + VALUE + AGGREGATE)


@dataclass(frozen=True)
class FrameBound:
    kind: str
    offset: int | float | None = None  # for preceding / following only; >= 0

    def __post_init__(self) -> None:
        if self.kind not in BOUND_KINDS:
            raise IRError(f"unknown frame bound {self.kind!r}")
        if (self.kind in ("preceding", "following")) != (self.offset is not None):
            raise IRError(f"frame bound {self.kind} {'needs' if self.offset is None else 'takes no'} offset")
        if self.offset is not None and self.offset < 0:
            raise IRError("a frame offset must not be negative")

    def __str__(self) -> str:
        if self.offset is not None:
            return f"{self.offset} {self.kind.upper()}"
        return self.kind.replace("_", " ").upper()

    @property
    def position(self) -> float:
        """Signed offset from the current row (for ordering bounds)."""
        return {"unbounded_preceding": float("-inf"), "current_row": 0.0, "unbounded_following": float("inf"),
                "preceding": -float(self.offset or 0), "following": float(self.offset or 0)}[self.kind]


@dataclass(frozen=True)
class Frame:
    kind: str  # rows | range | groups
    start: FrameBound
    end: FrameBound

    def __post_init__(self) -> None:
        if self.kind not in FRAME_KINDS:
            raise IRError(f"unknown frame kind {self.kind!r}")
        if self.start.kind == "unbounded_following" or self.end.kind == "unbounded_preceding":
            raise IRError("a frame cannot start at UNBOUNDED FOLLOWING or end at UNBOUNDED PRECEDING")

    def __str__(self) -> str:
        return f"{self.kind.upper()} BETWEEN {self.start} AND {self.end}"

    @property
    def is_whole_partition(self) -> bool:
        return self.start.kind == "unbounded_preceding" and self.end.kind == "unbounded_following"


#: SQL's default frame with ORDER BY: the partition up to the current row's last peer.
RUNNING = Frame("range", FrameBound("unbounded_preceding"), FrameBound("current_row"))
WHOLE = Frame("rows", FrameBound("unbounded_preceding"), FrameBound("unbounded_following"))


@dataclass(frozen=True)
class WindowCall:
    """One window function. `arg` is an input column (lowering projects
    argument expressions first, as for AggCall); `params` are constants:
    NTILE's bucket count, LAG/LEAD's offset and default, NTH_VALUE's n."""

    func: str
    arg: str | None = None
    params: tuple[Any, ...] = ()
    frame: Frame | None = None
    distinct: bool = False

    def result_type(self, schema: Schema) -> DataType:
        f = self.func
        if f not in WINDOW_FUNCS:
            raise IRError(f"unknown window function {f!r}")
        if f in AGGREGATE or f in VALUE:
            if self.frame is None:
                raise IRError(f"window function {f} needs a frame")
        elif self.frame is not None:
            raise IRError(f"window function {f} takes no frame")
        if self.distinct and f not in ("count", "sum", "avg", "min", "max"):
            raise IRError(f"DISTINCT is not allowed in {f.upper()}")
        if f in ("row_number", "rank", "dense_rank"):
            return INT64
        if f in ("percent_rank", "cume_dist"):
            return FLOAT64
        if f == "ntile":
            if len(self.params) != 1 or not isinstance(self.params[0], int) or self.params[0] <= 0:
                raise IRTypeError("NTILE needs a positive whole-number bucket count")
            return INT64
        if f in AGGREGATE:
            return AggCall(f, self.arg, self.distinct).result_type(schema)
        if self.arg is None:
            raise IRTypeError(f"{f.upper()} needs an argument")
        t = schema.dtype(self.arg)
        if f in OFFSET:
            if not (1 <= len(self.params) <= 2) or not isinstance(self.params[0], int) or self.params[0] < 0:
                raise IRTypeError(f"{f.upper()} needs a non-negative whole-number offset")
            if len(self.params) == 2 and self.params[1] is not None:
                from musketeer.ir.expr import Lit

                dt = Lit.of(self.params[1]).dtype
                if common_type(t, dt) is None:
                    raise IRTypeError(f"{f.upper()} default {self.params[1]!r} does not match {t}")
        if f == "nth_value" and (len(self.params) != 1 or not isinstance(self.params[0], int) or self.params[0] <= 0):
            raise IRTypeError("NTH_VALUE needs a positive whole-number position")
        return t

    @property
    def nullable(self) -> bool:
        return self.func not in ("row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
                                 "count", "count_star")

    def __str__(self) -> str:  # noqa: D105
        arg = "*" if self.func == "count_star" else (("DISTINCT " if self.distinct else "") + (self.arg or ""))
        params = "".join(f", {p!r}" for p in self.params)
        name = "count" if self.func == "count_star" else self.func
        frame = f" {self.frame}" if self.frame is not None else ""
        return f"{name}({arg}{params}){frame}"


def window_schema(input_schema: Schema, partition_by: tuple[str, ...], order_columns: tuple[str, ...],
                  calls: tuple[tuple[str, WindowCall], ...]) -> Schema:
    """The input's columns followed by one column per call (checked)."""
    for k in partition_by + order_columns:
        input_schema.field(k)
    fields = list(input_schema.fields)
    for name, call in calls:
        for frame in [call.frame] if call.frame is not None else []:
            if frame.kind == "range" and (frame.start.offset is not None or frame.end.offset is not None):
                if len(order_columns) != 1:
                    raise IRError("a RANGE frame with an offset needs exactly one ORDER BY key")
                t = input_schema.dtype(order_columns[0])
                if not (t.is_numeric or t.kind in ("date", "timestamp")):
                    raise IRTypeError(f"a RANGE frame with an offset needs a numeric or date ORDER BY key, not {t}")
            if frame.kind == "groups" and not order_columns:
                raise IRError("a GROUPS frame needs ORDER BY")
        t = call.result_type(input_schema)
        fields.append(Field(name, t, call.nullable))
    return Schema(tuple(fields))
