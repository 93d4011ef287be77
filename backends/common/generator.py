"""The generator skeleton shared by the pandas + pyarrow engines (local, dask).

Both emit straight-line Python: one short block of statements per IR
operator (methods `op_<Operator>` on the subclass), in dependency order,
with each relation freed (`del`) after its last use. This base class holds
that machinery plus what both engines decide the same way at generation
time: which input files several Scans share (read once), the TABLES key of
each input, and the common type of join keys whose types differ.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

from ir import operators as O
from ir.schema import Schema
from ir.types import DataType, UnsupportedError, common_type
from ir.workflow import Workflow

from backends.common.arrow_exprs import ExprCompiler, arrow_type


@dataclass
class SharedRead:
    """One read of a file that several Scans take their columns from."""

    columns: dict[str, DataType]  # source column -> type, the union over the scans
    remaining: int  # scans not yet emitted; the shared frame is freed after the last
    var: str | None = None


class ArrowProgramGenerator:
    """Generates the program text for one workflow; subclasses add `op_*`
    methods, `generate()` and the rendering."""

    #: Engine name for error messages ("not supported yet: ... in the local engine").
    ENGINE = "pandas/pyarrow"
    #: Optional runtime helper groups that call other groups.
    HELPER_DEPS: dict[str, set[str]] = {}

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.helpers: set[str] = set()
        self.tables: dict[str, tuple[str, str]] = {}  # key in TABLES -> (path, format)
        self._table_keys: dict[tuple[str, str], str] = {}
        self._shared: dict[tuple[str, str], SharedRead] = {}
        self._counter = itertools.count()

    def need(self, helper: str) -> None:
        """Record that the program calls runtime helper group `helper` (and what it calls)."""
        pending = [helper]
        while pending:
            h = pending.pop()
            if h not in self.helpers:
                self.helpers.add(h)
                pending.extend(self.HELPER_DEPS.get(h, ()))

    def _plan_shared_reads(self) -> None:
        """A file scanned more than once is read once, with every column its
        scans need (TPC-H reads lineitem up to three times in one query).

        Scans never sit inside loop bodies (nothing in them depends on a loop
        variable, so they are loop-invariant inputs), so all of them are in
        `workflow.ops()` and are emitted at the top level of run().
        """
        groups: dict[tuple[str, str], list[O.Scan]] = {}
        for op in self.workflow.ops():
            if isinstance(op, O.Scan):
                groups.setdefault((op.table, op.path), []).append(op)
        for binding, scans in groups.items():
            columns: dict[str, DataType] = {}
            consistent = all(columns.setdefault(c.source, c.dtype) == c.dtype for s in scans for c in s.columns)
            if len(scans) > 1 and consistent:
                self._shared[binding] = SharedRead(columns, remaining=len(scans))

    # --- blocks of operators --------------------------------------------------
    def _block(self, roots: list[O.Op], names: dict[int, str], keep: set[int]) -> list[str]:
        """Statements computing `roots` given the relations already in `names`
        (outer scopes), freeing each new relation after its last use."""
        available = set(names)
        seen = set(names)
        order: list[O.Op] = []
        for root in roots:
            for op in O.walk(root, stop_at=available):
                if id(op) not in seen:
                    seen.add(id(op))
                    order.append(op)
        last_use: dict[int, int] = {}
        for i, op in enumerate(order):
            for inp in op.inputs:
                last_use[id(inp)] = i
        local = {id(op) for op in order if not isinstance(op, O.Sink)}
        lines: list[str] = []
        for i, op in enumerate(order):
            if lines:
                lines.append("")
            lines.extend(self._emit(op, names))
            dead = []
            for inp in dict.fromkeys(op.inputs):
                if last_use.get(id(inp)) == i and id(inp) in local and id(inp) not in keep:
                    dead.append(names[id(inp)])
            if dead:
                lines.append(f"del {', '.join(dict.fromkeys(dead))}")
        return lines

    def _emit(self, op: O.Op, names: dict[int, str]) -> list[str]:
        method: Callable[[O.Op, dict[int, str]], list[str]] | None = getattr(self, "op_" + op.opname, None)
        if method is None:
            raise UnsupportedError(f"operator {op.opname} in the {self.ENGINE}")
        return method(op, names)

    def _var(self, op: O.Op, names: dict[int, str], kind: str) -> str:
        var = f"t{next(self._counter)}_{kind}"
        names[id(op)] = var
        return var

    def _compiler(self, frame: str, schema: Schema) -> ExprCompiler:
        return ExprCompiler(frame, schema, self.need)

    # --- decisions both engines make the same way ------------------------------
    def _table_key(self, op: O.Scan) -> str:
        """TABLES key for a scan: the table name, made unique if one name is bound to two files."""
        binding = (op.table, op.path)
        if binding not in self._table_keys:
            key, n = op.table, 2
            while key in self.tables:
                key, n = f"{op.table}#{n}", n + 1
            self._table_keys[binding] = key
            self.tables[key] = (op.path, op.format.lower())
        return self._table_keys[binding]

    def _key_types(self, op: O.Join) -> str | None:
        """Common key types where the two sides' arrow types differ, as program text."""
        casts, any_cast = [], False
        for lk, rk in zip(op.left_keys, op.right_keys):
            lt, rt = op.left.schema.dtype(lk), op.right.schema.dtype(rk)
            if arrow_type(lt) != arrow_type(rt):
                common = common_type(lt, rt)
                if common is None or common.kind == "null":
                    raise UnsupportedError(f"join keys {lk} ({lt}) and {rk} ({rt})")
                casts.append(arrow_type(common))
                any_cast = True
            else:
                casts.append("None")
        return f"[{', '.join(casts)}]" if any_cast else None
