"""Relational operators: one class per operator, each knowing its output schema.

Operators are immutable and compared by identity: a workflow is a DAG, and a
node used by two consumers (a CTE, a loop-invariant relation) is one object.
Schemas are checked when a node is built, so an ill-typed plan cannot exist.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Iterator, Literal, get_args

from musketeer.ir.expr import AggCall, Expr
from musketeer.ir.schema import Field, Schema, suggest
from musketeer.ir.types import BOOL, IRError, IRTypeError, SourceLoc, common_type
from musketeer.ir.window import WindowCall, window_schema


#: The file formats a Scan reads (a Table's format in the catalog too).
TableFormat = Literal["parquet", "csv"]
#: A UDF runs per row (dict -> dict) or per partition (DataFrame -> DataFrame).
UDFMode = Literal["row", "partition"]


@dataclass(frozen=True, eq=False)
class Op:
    """Base class. `inputs` lists the operator's relation inputs in order."""

    INPUTS: ClassVar[tuple[str, ...]] = ()

    @property
    def inputs(self) -> tuple["Op", ...]:
        out: list[Op] = []
        for name in type(self).INPUTS:
            v = getattr(self, name)
            out.extend(v if isinstance(v, tuple) else (v,))
        return tuple(out)

    @cached_property
    def schema(self) -> Schema:
        return self._infer_schema()

    def _infer_schema(self) -> Schema:  # pragma: no cover - abstract
        raise NotImplementedError

    def with_inputs(self, *inputs: "Op") -> "Op":
        """The same operator over new inputs (used by rewrites)."""
        if all(a is b for a, b in zip(inputs, self.inputs)) and len(inputs) == len(self.inputs):
            return self
        return dataclasses.replace(self, **dict(zip(type(self).INPUTS, inputs)))  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> "Op":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        self.schema  # noqa: B018 - validate eagerly

    @property
    def opname(self) -> str:
        return type(self).__name__


def _check_expr_bool(pred: Expr, schema: Schema, where: str) -> None:
    t = pred.type_in(schema)
    if t.kind not in ("bool", "null"):
        raise IRTypeError(f"{where} must be a boolean, got {t}: {pred}")


@dataclass(frozen=True)
class ScanColumn:
    source: str  # column name in the file
    name: str  # name in the IR
    dtype: Any  # DataType


@dataclass(frozen=True, eq=False)
class Scan(Op):
    """Read a table. `path`/`format` are the binding known at lowering time;
    generated programs let the user rebind them at run time."""

    table: str
    path: str
    format: TableFormat
    columns: tuple[ScanColumn, ...]
    INPUTS = ()

    def _infer_schema(self) -> Schema:
        return Schema(tuple(Field(c.name, c.dtype) for c in self.columns))


@dataclass(frozen=True, eq=False)
class Values(Op):
    """Constant rows (SQL's VALUES, and the one row of a SELECT without
    FROM): `rows` of plain Python values (None for NULL) in the columns of
    `values_schema`."""

    values_schema: Schema
    rows: tuple[tuple[Any, ...], ...]
    INPUTS = ()

    def _infer_schema(self) -> Schema:
        width = len(self.values_schema)
        if width == 0:
            raise IRError("a Values operator needs at least one column")
        for row in self.rows:
            if len(row) != width:
                raise IRError(f"VALUES rows must all have {width} values, one has {len(row)}")
        return self.values_schema


@dataclass(frozen=True, eq=False)
class Filter(Op):
    input: Op
    predicate: Expr
    INPUTS = ("input",)

    def _infer_schema(self) -> Schema:
        _check_expr_bool(self.predicate, self.input.schema, "WHERE condition")
        return self.input.schema


@dataclass(frozen=True, eq=False)
class Project(Op):
    """Compute, rename, reorder and drop columns in one step."""

    input: Op
    exprs: tuple[tuple[str, Expr], ...]
    INPUTS = ("input",)

    def _infer_schema(self) -> Schema:
        s = self.input.schema
        return Schema(tuple(Field(name, e.type_in(s)) for name, e in self.exprs))


JoinKind = Literal["inner", "left", "right", "full", "semi", "anti", "cross"]
JOIN_KINDS: tuple[JoinKind, ...] = get_args(JoinKind)


@dataclass(frozen=True, eq=False)
class Join(Op):
    """Equi-join on key pairs plus an optional residual predicate over both sides.

    semi/anti output only the left columns. `null_aware` (anti only) gives
    NOT IN semantics: a NULL among the right keys rejects every left row.
    """

    left: Op
    right: Op
    kind: JoinKind
    left_keys: tuple[str, ...] = ()
    right_keys: tuple[str, ...] = ()
    residual: Expr | None = None
    null_aware: bool = False
    INPUTS = ("left", "right")

    def _infer_schema(self) -> Schema:
        if self.kind not in JOIN_KINDS:
            raise IRError(f"unknown join kind {self.kind!r}")
        if len(self.left_keys) != len(self.right_keys):
            raise IRError("join key lists differ in length")
        if self.kind == "cross" and (self.left_keys or self.residual is not None):
            raise IRError("a cross join has no condition")
        ls, rs = self.left.schema, self.right.schema
        for lk, rk in zip(self.left_keys, self.right_keys):
            lt, rt = ls.dtype(lk), rs.dtype(rk)
            if common_type(lt, rt) is None:
                raise IRTypeError(f"join keys {lk} ({lt}) and {rk} ({rt}) have incompatible types")
        if self.kind in ("semi", "anti") and self.residual is None:
            return ls  # right columns are never visible: names may overlap
        both = ls.concat(rs)  # raises on a name clash
        if self.residual is not None:
            _check_expr_bool(self.residual, both, "join condition")
        if self.kind in ("semi", "anti"):
            return ls
        nullable_left = self.kind in ("right", "full")
        nullable_right = self.kind in ("left", "full")
        return Schema(
            tuple(Field(f.name, f.dtype, f.nullable or nullable_left) for f in ls)
            + tuple(Field(f.name, f.dtype, f.nullable or nullable_right) for f in rs)
        )


@dataclass(frozen=True, eq=False)
class Aggregate(Op):
    """Group by key columns and compute aggregates. With no keys it yields
    exactly one row, even over empty input (SQL's global aggregate)."""

    input: Op
    keys: tuple[str, ...]
    aggs: tuple[tuple[str, AggCall], ...]
    INPUTS = ("input",)

    def _infer_schema(self) -> Schema:
        s = self.input.schema
        fields = [s.field(k) for k in self.keys]
        fields += [Field(name, call.result_type(s)) for name, call in self.aggs]
        return Schema(tuple(fields))


@dataclass(frozen=True, eq=False)
class Distinct(Op):
    input: Op
    INPUTS = ("input",)

    def _infer_schema(self) -> Schema:
        return self.input.schema


@dataclass(frozen=True, eq=False)
class SetOp(Op):
    """Base of Union/Intersect/Except: positional columns, named after the
    left side's (as in SQL). `distinct` False means the ALL (bag) variant."""

    left: Op
    right: Op
    distinct: bool = True
    INPUTS = ("left", "right")

    def _infer_schema(self) -> Schema:
        ls, rs = self.left.schema, self.right.schema
        if len(ls) != len(rs):
            raise IRError(f"{self.opname.upper()} inputs have {len(ls)} and {len(rs)} columns")
        fields = []
        for a, b in zip(ls, rs):
            t = common_type(a.dtype, b.dtype)
            if t is None:
                raise IRTypeError(f"{self.opname.upper()} column {a.name!r}: {a.dtype} does not match {b.dtype}")
            fields.append(Field(a.name, t))
        return Schema(tuple(fields))


@dataclass(frozen=True, eq=False)
class Union(SetOp):
    pass


@dataclass(frozen=True, eq=False)
class Intersect(SetOp):
    pass


@dataclass(frozen=True, eq=False)
class Except(SetOp):
    pass


@dataclass(frozen=True)
class SortKey:
    column: str
    ascending: bool = True
    nulls_first: bool = False

    def __str__(self) -> str:
        return f"{self.column} {'ASC' if self.ascending else 'DESC'} NULLS {'FIRST' if self.nulls_first else 'LAST'}"


@dataclass(frozen=True, eq=False)
class Sort(Op):
    input: Op
    keys: tuple[SortKey, ...]
    INPUTS = ("input",)

    def _infer_schema(self) -> Schema:
        s = self.input.schema
        for k in self.keys:
            s.field(k.column)
        return s


@dataclass(frozen=True, eq=False)
class Limit(Op):
    input: Op
    count: int | None
    offset: int = 0
    INPUTS = ("input",)

    def _infer_schema(self) -> Schema:
        if (self.count is not None and self.count < 0) or self.offset < 0:
            raise IRError("LIMIT and OFFSET must not be negative")
        return self.input.schema


@dataclass(frozen=True, eq=False)
class Window(Op):
    """Window functions (see ir/window.py): the input's rows and columns,
    plus one column per call, computed over the rows of the same partition
    (equal `partition_by` values; NULLs form one partition) in `order_by`
    order. No partition keys: the whole input is one partition. Row order of
    the output is unspecified (a Sort above orders it)."""

    input: Op
    partition_by: tuple[str, ...]
    order_by: tuple[SortKey, ...]
    calls: tuple[tuple[str, WindowCall], ...]
    INPUTS = ("input",)

    def _infer_schema(self) -> Schema:
        if not self.calls:
            raise IRError("a Window operator needs at least one window function")
        return window_schema(self.input.schema, self.partition_by, tuple(k.column for k in self.order_by),
                             self.calls)


@dataclass(frozen=True, eq=False)
class LoopVar(Op):
    """Placeholder for a loop-carried relation inside a While body: the
    previous iteration's value (the initial value on the first pass)."""

    name: str
    var_schema: Schema
    INPUTS = ()

    def _infer_schema(self) -> Schema:
        return self.var_schema


@dataclass(frozen=True, eq=False)
class While(Op):
    """Iterate a body until a stop rule holds.

    `init[i]` is the initial value of loop variable `names[i]`; `body[i]` its
    next value, a DAG over LoopVar placeholders (and any outer relation, which
    is then loop-invariant). The loop stops after `max_iter` iterations, when
    `stop` (a relation of one row and one boolean column, computed over the
    old LoopVars and/or the new body values) is true, or, with `fixpoint`,
    when no loop variable changed. The output is the variable `result`.
    """

    init: tuple[Op, ...]
    names: tuple[str, ...]
    body: tuple[Op, ...]
    result: str
    max_iter: int | None = None
    stop: Op | None = None
    fixpoint: bool = False
    INPUTS = ("init",)

    @property
    def inputs(self) -> tuple[Op, ...]:
        return self.init + self.free_inputs

    @cached_property
    def free_inputs(self) -> tuple[Op, ...]:
        """Outer relations the body reads: the loop's invariant inputs."""
        roots = list(self.body) + ([self.stop] if self.stop is not None else [])
        found: dict[int, Op] = {}
        memo: dict[int, bool] = {}

        def depends_on_loop(op: Op) -> bool:
            if id(op) not in memo:
                memo[id(op)] = isinstance(op, LoopVar) or any(
                    [depends_on_loop(i) for i in op.inputs]
                )
            return memo[id(op)]

        def visit(op: Op) -> None:
            if depends_on_loop(op):
                for i in op.inputs:
                    visit(i)
            else:
                found.setdefault(id(op), op)

        for r in roots:
            visit(r)
        return tuple(found.values())

    def loop_vars(self) -> dict[str, LoopVar]:
        out: dict[str, LoopVar] = {}
        for root in list(self.body) + ([self.stop] if self.stop is not None else []):
            for op in walk(root, stop_at=set(map(id, self.free_inputs))):
                if isinstance(op, LoopVar):
                    out[op.name] = op
        return out

    def with_inputs(self, *inputs: Op) -> Op:
        """New initial values and invariant inputs; the body is rebuilt to
        read the new invariant nodes in place of the old ones."""
        if len(inputs) != len(self.inputs):
            raise IRError("While.with_inputs needs every initial and invariant input")
        if all(a is b for a, b in zip(inputs, self.inputs)):
            return self
        n = len(self.init)
        swap = {id(old): new for old, new in zip(self.free_inputs, inputs[n:]) if old is not new}
        body, stop = self.body, self.stop
        if swap:
            memo: dict[int, Op] = {}
            body = tuple(replace_nodes(b, swap, memo) for b in body)
            stop = replace_nodes(stop, swap, memo) if stop is not None else None
        return dataclasses.replace(self, init=tuple(inputs[:n]), body=body, stop=stop)

    def _infer_schema(self) -> Schema:
        if not (len(self.init) == len(self.names) == len(self.body)):
            raise IRError("While needs one initial value and one body output per loop variable")
        if self.result not in self.names:
            raise IRError(f"While result {self.result!r} is not a loop variable{suggest(self.result, self.names)}")
        if self.max_iter is None and self.stop is None and not self.fixpoint:
            raise IRError("a While loop needs max_iter, a stop relation or fixpoint")
        for name, first, nxt in zip(self.names, self.init, self.body):
            a, b = first.schema, nxt.schema
            if a.names != b.names or [f.dtype for f in a] != [f.dtype for f in b]:
                raise IRTypeError(f"loop variable {name!r}: body yields {b}, initial value is {a}")
        for name, var in self.loop_vars().items():
            if name not in self.names:
                raise IRError(f"loop body reads unknown loop variable {name!r}")
            if var.var_schema.names != self.init[self.names.index(name)].schema.names:
                raise IRTypeError(f"loop variable {name!r} placeholder schema differs from its initial value")
        if self.stop is not None:
            s = self.stop.schema
            if len(s) != 1 or s.fields[0].dtype != BOOL:
                raise IRTypeError(f"a While stop relation needs one boolean column, got {s}")
        return self.init[self.names.index(self.result)].schema


@dataclass(frozen=True, eq=False)
class UDF(Op):
    """An opaque Python function, importable as `module:qualname`, applied per
    row (dict -> dict) or per partition (pandas.DataFrame -> DataFrame)."""

    input: Op
    module: str
    qualname: str
    mode: UDFMode
    out_schema: Schema
    INPUTS = ("input",)

    def _infer_schema(self) -> Schema:
        if self.mode not in get_args(UDFMode):
            raise IRError(f"UDF mode must be 'row' or 'partition', not {self.mode!r}")
        return self.out_schema


@dataclass(frozen=True, eq=False)
class Sink(Op):
    """A workflow output. `path` None means 'the result' (printed, or written
    where the user asks at run time)."""

    input: Op
    name: str
    path: str | None = None
    format: str | None = None  # by extension when None
    loc: SourceLoc | None = None
    INPUTS = ("input",)

    def _infer_schema(self) -> Schema:
        return self.input.schema


def walk(root: Op, stop_at: set[int] | None = None) -> Iterator[Op]:
    """Every operator reachable from root, each once, inputs before users."""
    seen: set[int] = set()
    stop_at = stop_at or set()
    order: list[Op] = []
    stack: list[tuple[Op, bool]] = [(root, False)]
    while stack:
        op, expanded = stack.pop()
        if expanded:
            order.append(op)
            continue
        if id(op) in seen:
            continue
        seen.add(id(op))
        stack.append((op, True))
        if id(op) not in stop_at:
            for i in reversed(op.inputs):
                if id(i) not in seen:
                    stack.append((i, False))
    return iter(order)


def replace_nodes(root: Op, swap: dict[int, Op], memo: dict[int, Op] | None = None) -> Op:
    """Rebuild `root` with the nodes whose id is in `swap` replaced, keeping
    sharing: a node reached twice is rebuilt once."""
    memo = {} if memo is None else memo
    for op in walk(root):
        if id(op) in swap:
            memo[id(op)] = swap[id(op)]
        elif id(op) not in memo:
            memo[id(op)] = op.with_inputs(*(memo[id(i)] for i in op.inputs))
    return memo[id(root)]


OPERATORS: dict[str, type[Op]] = {
    cls.__name__: cls
    for cls in (Scan, Values, Filter, Project, Join, Aggregate, Distinct, Union, Intersect,
                Except, Sort, Limit, Window, LoopVar, While, UDF, Sink)
}
