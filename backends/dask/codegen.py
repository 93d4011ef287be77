"""IR workflow -> standalone dask.dataframe program.

The program reads like the local engine's: straight-line code in
`workflow()`, one short commented block per IR operator, over a runtime
library inlined at the top. Relations are dask DataFrames whose partitions
are pandas DataFrames of pyarrow-backed columns, so:

* row-wise operators (Filter, Project, UDF) become a small function over one
  partition, compiled from the expression exactly as the local engine
  compiles it (backends/common/arrow_exprs.py), applied with map_partitions;
* operators that move rows between partitions call dask: `merge` (hash or
  broadcast join), `groupby().agg` (`split_out` for many groups; into one
  partition, each partition's totals combined instead), `shuffle` (co-partitioned joins and set operations),
  `drop_duplicates`, `head`;
* small results (a global aggregate, an ordered or limited result) are
  computed to pandas, and the local engine's helpers finish them;
* a relation several operators read is `persist()`ed: computed once, kept
  in memory; a While loop runs on the driver and persists each iteration.

The runtime library is the shared pandas + pyarrow one the local engine runs
(backends/common/arrow_runtime.py: the helpers with SQL semantics) plus
templates/dask_*.j2, rendered through one jinja2 loader over both folders. User text only enters the program
through `repr()` or `comment()`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from pathlib import Path

from musketeer.backends.common import arrow_runtime
from musketeer.backends.common.arrow_exprs import python_literal
from musketeer.backends.common.codetext import comment, indent
from musketeer.backends.common.generator import ArrowProgramGenerator, limit_text
from musketeer.backends.common.sortkeys import sort_key_specs
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.text import expr_text
from musketeer.ir.types import DataType
from musketeer.ir.workflow import Workflow

TEMPLATES = Path(__file__).parent / "templates"
#: Runtime library, in order: the shared pandas + pyarrow helpers, then dask's.
RUNTIME_TEMPLATES = (*arrow_runtime.RUNTIME_TEMPLATES,
                     "dask_runtime.py.j2", "dask_relational.py.j2", "dask_loops.py.j2")


def readers_of(workflow: Workflow) -> dict[int, list[O.Op]]:
    """For each relation (by id), the operators that read it, loop bodies
    included; a While reads its initial values, its loop-invariant inputs
    and the roots of its body and stop relation."""
    readers: dict[int, list[O.Op]] = {}
    seen: set[int] = set()
    stack: list[O.Op] = list(workflow.sinks)
    while stack:
        op = stack.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        parts = list(op.inputs)
        if isinstance(op, O.While):
            parts += [*op.body, *([op.stop] if op.stop is not None else [])]
        for part in dict.fromkeys(parts):
            readers.setdefault(id(part), []).append(op)
            stack.append(part)
    return readers


class DaskProgramGenerator(ArrowProgramGenerator):
    """Generates the program text for one workflow; use `generate()` once."""

    ENGINE = "dask engine"
    HELPER_DEPS = {
        **arrow_runtime.HELPER_DEPS,
        "dask_joins": {"joins"},
        "dask_aggregate": {"aggregate", "dask_distinct"},
        "dask_distinct": {"distinct"},
        "dask_setops": {"setops", "dask_distinct"},
        "dask_order": {"sort"},
        "dask_loop": {"loop_checks", "dask_setops"},
        "dask_window": {"window"},
    }
    CALLS = {
        **ArrowProgramGenerator.CALLS,
        "read": ("scan_table", None),
        "join": ("join", "dask_joins"),
        "semi_join": ("exists_join", "dask_joins"),
        "aggregate": ("group_aggregate", "dask_aggregate"),
        "distinct": ("unique_rows", "dask_distinct"),
        "union": ("set_union", "dask_setops"),
        "intersect": ("set_intersect", "dask_setops"),
        "except": ("set_except", "dask_setops"),
        "conform": ("conform_relation", "dask_setops"),
        "sort": ("ordered", "dask_order"),
        "loop": ("run_loop", "dask_loop"),
        "udf": ("udf_partitions", "udf"),
        "window": ("window_partitions", "dask_window"),
    }
    RELATION = "Relation"
    STOP = "Relation | None"
    STOP_DOC = "the stop relation"

    def __init__(self, workflow: Workflow) -> None:
        super().__init__(workflow)
        self._readers: dict[int, list[O.Op]] = {}
        self._writes: list[tuple[str, str, str]] = []  # (sink name, path, format)
        self._filters: list[tuple[str, str, str, str]] = []  # for the Scan being emitted

    TEMPLATE_DIRS = (TEMPLATES, arrow_runtime.TEMPLATES)
    RUNTIME_TEMPLATES = RUNTIME_TEMPLATES
    PROGRAM_TEMPLATE = "dask_program.py.j2"

    # --- entry point ----------------------------------------------------------
    def generate(self) -> str:
        self._readers = readers_of(self.workflow)
        return super().generate()

    def _finish(self, outputs: str) -> list[str]:
        body = ["", "# Compute the outputs together: work they share is done once.",
                f"outputs = gather({{{outputs}}})"]
        body += [f"write_table(outputs[{name!r}], {path!r}, {fmt!r})" for name, path, fmt in self._writes]
        body.append("return outputs")
        return body

    # --- reading: simple conditions go to the parquet reader ---------------------------
    def op_Scan(self, op: O.Scan, names: dict[int, str]) -> list[str]:
        self._filters = self._pushed_filters(op)
        try:
            lines = super().op_Scan(op, names)
        finally:
            filters, self._filters = self._filters, []
        if filters:
            conditions = " AND ".join(text for _, _, _, text in filters)
            lines.insert(1, f"# (the reader skips rows failing {comment(conditions)}; the Filter below checks all)")
        return lines

    def _read(self, var: str, key: str, columns: list[tuple[str, str, DataType]]) -> list[str]:
        lines = super()._read(var, key, columns)
        if self._filters:
            lines[-1] = "], filters=["
            lines += [f"    ({c!r}, {o!r}, {v})," for c, o, v, _ in self._filters] + ["])"]
        return lines

    def _pushed_filters(self, op: O.Scan) -> list[tuple[str, str, str, str]]:
        """(file column, operator, value as program text, condition) for the conjuncts of
        the Filter that alone reads this Scan which the parquet reader can
        apply itself (dd.read_parquet `filters`: row groups whose statistics
        rule them out are skipped, other rows dropped before they become
        pandas). Only column-vs-constant tests whose types match exactly: a
        decimal column is compared as float64 here, which pyarrow would not do."""
        readers = self._readers.get(id(op), [])
        if op.format.lower() != "parquet" or (op.table, op.path) in self._shared or len(readers) != 1 \
                or not isinstance(readers[0], O.Filter):
            return []
        source = {c.name: c for c in op.columns}
        pushed = []
        for cond in E.conjuncts(readers[0].predicate):
            test = _column_test(cond)
            if test is None or test[0] not in source:
                continue
            name, operator, values = test
            if operator == "in" and source[name].dtype.kind == "float64":
                continue  # the reader's IN hashes bits: -0.0 would miss 0.0 (the Filter itself still runs)
            texts = [_filter_value(source[name].dtype, v) for v in values]
            if None not in texts:
                text = texts[0] if operator != "in" else f"[{', '.join(texts)}]"  # type: ignore[arg-type]
                pushed.append((source[name].source, operator, text, expr_text(cond)))
        return pushed

    # --- relations read more than once ----------------------------------------------
    def _after_emit(self, op: O.Op, names: dict[int, str]) -> list[str]:
        readers = len(self._readers.get(id(op), ()))
        if readers < 2 or isinstance(op, (O.Sink, O.LoopVar, O.While)):
            return []  # loop variables are persisted by run_loop
        if isinstance(op, O.Scan) and (op.table, op.path) in self._shared:
            return []  # a column selection from a file read that is persisted already
        var = names[id(op)]
        return [f"{var} = persist({var})  # read by {readers} steps: compute once, keep in memory"]

    def _after_shared_read(self, var: str) -> list[str]:
        return [f"{var} = persist({var})  # several scans take their columns from it"]

    def _pick(self, frame: str, sources: list[str], names: list[str]) -> str:
        return f"pick_columns({frame}, {sources!r}, {names!r})"

    def _loop_stop(self, stop: str | None) -> str:
        return stop if stop is not None else "None"

    # --- row-wise operators: one function per partition ------------------------------
    def _row_frame(self, src: str) -> str:
        return "part"

    def _row_step(self, var: str, src: str, value: list[str]) -> list[str]:
        """`def <var>_rows(part)` returning `value`, applied to every partition of `src`."""
        return [f"def {var}_rows(part: pd.DataFrame) -> pd.DataFrame:",
                *indent([f"return {value[0]}", *value[1:]], 1),
                f"{var} = per_partition({src}, {var}_rows)"]

    # --- ORDER BY / LIMIT ----------------------------------------------------------
    def _sort_feeds_limit(self, op: O.Sort) -> bool:
        """A Sort read only by a LIMIT with a count: the two become one top-rows step."""
        readers = self._readers.get(id(op), [])
        return len(readers) == 1 and isinstance(readers[0], O.Limit) and readers[0].count is not None

    def op_Sort(self, op: O.Sort, names: dict[int, str]) -> list[str]:
        if not self._sort_feeds_limit(op):
            return super().op_Sort(op, names)
        src = names[id(op.input)]
        var = self._var(op, names, "sort")
        return [f"# Sort: {comment(', '.join(str(k) for k in op.keys))} (done with the LIMIT below)",
                f"{var} = {src}"]

    def op_Limit(self, op: O.Limit, names: dict[int, str]) -> list[str]:
        self.need("dask_order")
        src = names[id(op.input)]
        var = self._var(op, names, "limit")
        text = limit_text(op)
        if isinstance(op.input, O.Sort) and self._sort_feeds_limit(op.input):
            keys = sort_key_specs(op.input.keys)
            return [f"# Limit {text}: the top rows of each partition, then of those",
                    f"{var} = top_rows({src}, {keys!r}, {op.count!r}, {op.offset!r})"]
        return [f"# Limit {text}", f"{var} = limit_rows({src}, {op.count!r}, {op.offset!r})"]

    # --- window functions ------------------------------------------------------------
    def op_Window(self, op: O.Window, names: dict[int, str]) -> list[str]:
        lines = super().op_Window(op, names)
        if op.partition_by:
            lines.insert(1, "# (rows are hash-partitioned on the PARTITION BY keys; each dask partition is computed alone)")
        else:
            lines.insert(1, "# (no PARTITION BY keys: the window spans every row, so they are gathered into ONE partition)")
        return lines

    # --- outputs -----------------------------------------------------------------------
    def _write(self, op: O.Sink, src: str, fmt: str) -> list[str]:
        self._writes.append((op.name, op.path, fmt))
        return [f"# Sink {comment(op.name)}: returned by run(), and written to {comment(op.path)} once computed"]


_PARQUET_OPS = {"=": "==", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}


def _column_test(cond: E.Expr) -> tuple[str, str, list[object]] | None:
    """(column, parquet filter operator, constants) for `column op constant`,
    `constant op column` and `column IN (constants)`; None for anything else."""
    if isinstance(cond, E.Compare):
        left, right, op = cond.left, cond.right, cond.op
        if isinstance(left, E.Lit) and isinstance(right, E.Col):
            left, right, op = right, left, _MIRRORED[op]
        if isinstance(left, E.Col) and isinstance(right, E.Lit) and right.value is not None:
            return left.name, _PARQUET_OPS[op], [right.value]
    if isinstance(cond, E.InList) and not cond.negated and isinstance(cond.arg, E.Col) and cond.values \
            and all(isinstance(v, E.Lit) and v.value is not None for v in cond.values):
        return cond.arg.name, "in", [v.value for v in cond.values]  # type: ignore[union-attr]
    return None


def _filter_value(dtype: DataType, value: object) -> str | None:
    """`value` as program text for a parquet filter on a column of IR type
    `dtype`, when pyarrow compares them exactly as the program does; else None.

    Decimal columns run as float64 in the program, so a constant is pushed
    as a decimal only when it is exactly a decimal of the column's scale with
    at most 15 digits: then float64 and decimal comparisons agree.
    """
    kind = dtype.kind
    if kind == "decimal" and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value):
        exact = decimal.Decimal(repr(value))
        sign, digits, exponent = exact.as_tuple()
        if isinstance(exponent, int) and -exponent <= (dtype.scale or 0) and len(digits) <= 15:
            return f"decimal.Decimal({str(exact)!r})"
        return None
    fits = {
        "int64": isinstance(value, int) and not isinstance(value, bool),
        "float64": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "date": type(value) is dt.date,
        "timestamp": isinstance(value, dt.datetime),
        "string": isinstance(value, str),
        "bool": isinstance(value, bool),
    }
    return python_literal(value) if fits.get(kind, False) else None


def generate_program(workflow: Workflow) -> str:
    """The complete program text for `workflow`."""
    return DaskProgramGenerator(workflow).generate()
