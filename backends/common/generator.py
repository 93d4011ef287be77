"""The generator skeleton shared by the pandas + pyarrow engines (local, dask, ciel).

They emit straight-line Python: one short block of statements per IR
operator (methods `op_<Operator>` on the subclass), in dependency order,
with each relation freed (`del`) after its last use. This base class holds
that machinery plus what both engines decide the same way at generation
time: which input files several Scans share (read once), the TABLES key of
each input, and the common type of join keys whose types differ.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from musketeer.backends.common import arrow_runtime
from musketeer.backends.common.arrow_exprs import ExprCompiler, arrow_type
from musketeer.backends.common.codetext import comment, indent, output_format, slug
from musketeer.backends.common.rendering import (
    engine_header,
    render_program,
    runtime_text,
    template_environment,
)
from musketeer.backends.common.sortkeys import sort_key_specs
from musketeer.backends.common.tables import TableBindings
from musketeer.backends.common.walk import emit_order
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.schema import Schema
from musketeer.ir.text import expr_text
from musketeer.ir.types import DataType, UnsupportedError, common_type
from musketeer.ir.workflow import Workflow


def limit_text(op: O.Limit) -> str:
    """`count [OFFSET offset]` for a Limit's comment."""
    return f"{op.count}" + (f" OFFSET {op.offset}" if op.offset else "")


@dataclass
class SharedRead:
    """One read of a file that several Scans take their columns from."""

    columns: dict[str, DataType]  # source column -> type, the union over the scans
    remaining: int  # scans not yet emitted; the shared frame is freed after the last
    var: str | None = None


class ArrowProgramGenerator:
    """Generates the program text for one workflow (`generate()`, once);
    subclasses add `op_*` methods and name their templates."""

    #: Engine name for error messages ("not supported yet: ... in the local engine") and the program's header.
    ENGINE = "pandas/pyarrow"
    #: Template folders (searched in order), the runtime library's templates in order, the program's template.
    #: An engine puts its own folder first and keeps the shared runtime's (backends/common/arrow_runtime.py).
    TEMPLATE_DIRS: tuple[Path, ...] = (arrow_runtime.TEMPLATES,)
    RUNTIME_TEMPLATES: tuple[str, ...] = arrow_runtime.RUNTIME_TEMPLATES
    PROGRAM_TEMPLATE = "program.py.j2"
    #: Optional runtime helper groups that call other groups.
    HELPER_DEPS: dict[str, set[str]] = arrow_runtime.HELPER_DEPS
    #: The runtime function each shared operator method calls, and the helper
    #: group (template block) that defines it; engines override entries.
    CALLS: dict[str, tuple[str, str | None]] = {
        "read": ("read_table", None),
        "join": ("join_frames", "joins"),
        "semi_join": ("semi_join", "joins"),
        "aggregate": ("aggregate", "aggregate"),
        "distinct": ("distinct_rows", "distinct"),
        "union": ("union_rows", "setops"),
        "intersect": ("intersect_rows", "setops"),
        "except": ("except_rows", "setops"),
        "conform": ("conform", "setops"),
        "sort": ("sort_rows", "sort"),
        "window": ("window_rows", "window"),
        "loop": ("run_loop", "loop"),
        "udf": ("apply_udf", "udf"),
    }
    #: Aggregates and window functions the shared runtime computes (arrow_relational / arrow_window).
    AGGREGATES = frozenset(E.AGG_FUNCS)
    WINDOW_FUNCTIONS = frozenset(E.WINDOW_FUNCS)
    #: Type annotations in generated While steps: a relation, and what a step returns to stop.
    RELATION = "pd.DataFrame"
    STOP = "bool"
    STOP_DOC = "the stop flag"

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.helpers: set[str] = set()
        self._bindings = TableBindings()
        self.tables: dict[str, tuple[str, str]] = self._bindings.tables  # key in TABLES -> (path, format)
        self._shared: dict[tuple[str, str], SharedRead] = {}
        self._counter = itertools.count()

    # --- entry point ----------------------------------------------------------
    def generate(self) -> str:
        self._plan_shared_reads()
        names: dict[int, str] = {}
        sinks = self.workflow.sinks
        keep = {id(s.input) for s in sinks}
        body = self._block(list(sinks), names, keep)
        outputs = ", ".join(f"{s.name!r}: {names[id(s)]}" for s in sinks)
        body += self._finish(outputs)
        return self._render(indent(body, 1))

    def _finish(self, outputs: str) -> list[str]:
        """The last statements of run(), given the outputs dict's items as program text."""
        return ["", f"return {{{outputs}}}"]

    def _render(self, body: list[str]) -> str:
        env = template_environment(*self.TEMPLATE_DIRS)
        helpers = frozenset(self.helpers)
        return render_program(env, self.PROGRAM_TEMPLATE, self._bindings, helpers,
                              runtime=runtime_text(env, self.RUNTIME_TEMPLATES, helpers), body="\n".join(body),
                              **engine_header(self.workflow.name, self.ENGINE))

    def _call(self, what: str) -> str:
        """The runtime function for `what`, recording that the program needs it."""
        name, helper = self.CALLS[what]
        if helper is not None:
            self.need(helper)
        return name

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
        order = emit_order(roots, names)
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
            lines.extend(self._after_emit(op, names))
            dead = []
            for inp in dict.fromkeys(op.inputs):
                if last_use.get(id(inp)) == i and id(inp) in local and id(inp) not in keep:
                    dead.append(names[id(inp)])
            if dead:
                lines.append(f"del {', '.join(dict.fromkeys(dead))}")
        return lines

    def _after_emit(self, op: O.Op, names: dict[int, str]) -> list[str]:
        """Statements to add once `op`'s relation exists (none here; dask persists shared ones)."""
        return []

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
        return self._bindings.key(op)

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

    # --- operators whose code is the same in every pandas/pyarrow engine --------
    def op_Scan(self, op: O.Scan, names: dict[int, str]) -> list[str]:
        key = self._table_key(op)
        cols = ", ".join(c.name if c.name == c.source else f"{c.source} AS {c.name}" for c in op.columns)
        lines = [f"# Scan {comment(op.table)} ({comment(op.format)}): {comment(cols)}"]
        shared = self._shared.get((op.table, op.path))
        if shared is None:
            var = self._var(op, names, slug(op.table))
            return lines + self._read(var, key, [(c.source, c.name, c.dtype) for c in op.columns])
        if shared.var is None:  # the first scan of this file reads what all of them need
            shared.var = f"t{next(self._counter)}_{slug(op.table)}_file"
            lines[0] += " (the file is read once for all its scans)"
            lines += self._read(shared.var, key, [(src, src, t) for src, t in shared.columns.items()])
            lines += self._after_shared_read(shared.var)
        var = self._var(op, names, slug(op.table))
        sources = [c.source for c in op.columns]
        lines.append(f"{var} = {self._pick(shared.var, sources, [c.name for c in op.columns])}")
        shared.remaining -= 1
        if shared.remaining == 0:
            lines.append(f"del {shared.var}")
        return lines

    def _read(self, var: str, key: str, columns: list[tuple[str, str, DataType]]) -> list[str]:
        lines = [f"{var} = {self._call('read')}(paths[{key!r}], FORMATS[{key!r}], ["]
        lines += [f"    ({source!r}, {name!r}, {arrow_type(t)})," for source, name, t in columns]
        return lines + ["])"]

    def _after_shared_read(self, var: str) -> list[str]:
        """Statements after reading a file that several Scans share (none here)."""
        return []

    def _pick(self, frame: str, sources: list[str], names: list[str]) -> str:
        """Program text selecting columns `sources` of a shared read, renamed to `names`."""
        pick = f"{frame}[{sources!r}]"
        return pick if names == sources else pick + f".set_axis({names!r}, axis=1)"

    # --- row-wise operators: `_row_step` says where the rows are (a frame, or each partition)
    def _row_frame(self, src: str) -> str:
        """The variable a row-wise step's expressions read: here the input relation itself."""
        return src

    def _row_step(self, var: str, src: str, value: list[str]) -> list[str]:
        """Statements setting `var` to `value` (program text lines computing
        the step's rows from `_row_frame(src)`)."""
        return [f"{var} = {value[0]}", *value[1:]]

    def op_Filter(self, op: O.Filter, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "filter")
        frame = self._row_frame(src)
        mask = self._compiler(frame, op.input.schema).compile(op.predicate)
        return [f"# Filter: {comment(expr_text(op.predicate))}",
                *self._row_step(var, src, [f"keep_rows({frame}, {mask})"])]

    def op_Project(self, op: O.Project, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "project")
        frame = self._row_frame(src)
        compiler = self._compiler(frame, op.input.schema)
        items = ", ".join(n if isinstance(e, E.Col) and e.name == n else f"{n} := {expr_text(e)}"
                          for n, e in op.exprs)
        value = [f"make_frame(len({frame}), ["]
        for (name, e), field in zip(op.exprs, op.schema):
            value.append(f"    ({name!r}, {arrow_type(field.dtype)}, {compiler.compile(e, field.dtype)}),")
        value.append("])")
        return [f"# Project: {comment(items)}", *self._row_step(var, src, value)]

    def op_Join(self, op: O.Join, names: dict[int, str]) -> list[str]:
        left, right = names[id(op.left)], names[id(op.right)]
        var = self._var(op, names, "join")
        cond = [f"{a} = {b}" for a, b in zip(op.left_keys, op.right_keys)]
        if op.residual is not None:
            cond.append(expr_text(op.residual))
        note = " (NOT IN: NULL-aware)" if op.null_aware else ""
        lines = [f"# Join {op.kind}{note}: {comment(' AND '.join(cond)) or 'every pair'}"]
        args = [left, right]
        if op.kind != "cross":
            args += [repr(list(op.left_keys)), repr(list(op.right_keys))]
        if op.residual is not None:
            on = f"{var}_on"
            pred = self._compiler("pairs", op.left.schema.concat(op.right.schema)).compile(op.residual)
            lines += [f"def {on}(pairs: pd.DataFrame) -> object:",
                      '    """The residual join condition, over paired rows."""',
                      f"    return {pred}", ""]
            args.append(f"on={on}")
        key_types = self._key_types(op)
        if key_types is not None:
            args.append(f"key_types={key_types}")
        if op.kind in ("semi", "anti"):
            if op.kind == "anti":
                args.append("anti=True")
            if op.null_aware:
                args.append("null_aware=True")
            if op.residual is not None:
                used = [c for c in op.left.schema.names + op.right.schema.names if c in op.residual.columns()]
                args.append(f"on_columns={used!r}")
            lines.append(f"{var} = {self._call('semi_join')}({', '.join(args)})")
        else:
            args.insert(2, repr(op.kind))
            lines.append(f"{var} = {self._call('join')}({', '.join(args)})")
        return lines

    def op_Aggregate(self, op: O.Aggregate, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "aggregate")
        aggs = ", ".join(f"{n} := {c}" for n, c in op.aggs)
        keys = f"by [{', '.join(op.keys)}]" if op.keys else "(one group)"
        lines = [f"# Aggregate {comment(keys)}: {comment(aggs)}",
                 f"{var} = {self._call('aggregate')}({src}, {list(op.keys)!r}, ["]
        for name, call in op.aggs:
            extra = f", {call.params!r}, {call.order!r}" if call.params or call.order else ""
            lines.append(f"    ({name!r}, {call.func!r}, {call.arg!r}, {call.distinct!r}{extra}),")
        lines.append("])")
        return lines

    def op_Distinct(self, op: O.Distinct, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "distinct")
        return ["# Distinct", f"{var} = {self._call('distinct')}({src})"]

    def _setop(self, op: O.Union | O.Intersect | O.Except, names: dict[int, str]) -> list[str]:
        func = self._call(op.opname.lower())
        kind = op.opname.lower()
        var = self._var(op, names, kind)
        out_names = repr(list(op.schema.names))
        out_types = "[" + ", ".join(arrow_type(f.dtype) for f in op.schema) + "]"

        def side(child: O.Op) -> str:
            same = child.schema.names == op.schema.names and all(
                arrow_type(a.dtype) == arrow_type(b.dtype) for a, b in zip(child.schema, op.schema))
            return names[id(child)] if same else f"{self._call('conform')}({names[id(child)]}, {out_names}, {out_types})"

        label = "DISTINCT" if op.distinct else "ALL"
        return [f"# {op.opname} {label}",
                f"{var} = {func}({side(op.left)}, {side(op.right)}, distinct={op.distinct})"]

    def op_Union(self, op: O.Union, names: dict[int, str]) -> list[str]:
        return self._setop(op, names)

    def op_Intersect(self, op: O.Intersect, names: dict[int, str]) -> list[str]:
        return self._setop(op, names)

    def op_Except(self, op: O.Except, names: dict[int, str]) -> list[str]:
        return self._setop(op, names)

    def op_Sort(self, op: O.Sort, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "sort")
        return [f"# Sort: {comment(', '.join(str(k) for k in op.keys))}",
                f"{var} = {self._call('sort')}({src}, {sort_key_specs(op.keys)!r})"]

    def op_Values(self, op: O.Values, names: dict[int, str]) -> list[str]:
        var = self._var(op, names, "values")
        lines = [f"# Values: {len(op.rows)} constant rows", f"{var} = make_frame({len(op.rows)}, ["]
        for i, field in enumerate(op.schema):
            column = [row[i] for row in op.rows]
            lines.append(f"    ({field.name!r}, {arrow_type(field.dtype)}, pa.array({column!r}, {arrow_type(field.dtype)})),")
        return lines + ["])"]

    def op_Window(self, op: O.Window, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "window")
        return self._window_lines(op, var, src)

    def _window_lines(self, op: O.Window, var: str, src: str) -> list[str]:
        """`var = window_rows(src, ...)`: the runtime call computing op's window columns over `src`."""
        part = f"partition by [{', '.join(op.partition_by)}]" if op.partition_by else "one partition"
        order = f", order by [{', '.join(str(k) for k in op.order_by)}]" if op.order_by else ""
        lines = [f"# Window {comment(part + order)}",
                 f"{var} = {self._call('window')}({src}, {list(op.partition_by)!r}, {sort_key_specs(op.order_by)!r}, ["]
        for (name, call), field in zip(op.calls, op.schema.fields[len(op.input.schema):]):
            frame = None if call.frame is None else (
                call.frame.kind, (call.frame.start.kind, call.frame.start.offset),
                (call.frame.end.kind, call.frame.end.offset))
            lines.append(f"    ({name!r}, {call.func!r}, {call.arg!r}, {call.params!r}, {frame!r}, "
                         f"{call.distinct!r}, {arrow_type(field.dtype)}),  # {comment(str(call))}")
        lines.append("])")
        return lines

    def op_Limit(self, op: O.Limit, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "limit")
        stop = "" if op.count is None else str(op.offset + op.count)
        start = str(op.offset) if op.offset else ""
        return [f"# Limit {limit_text(op)}", f"{var} = {src}.iloc[{start}:{stop}].reset_index(drop=True)"]

    def op_LoopVar(self, op: O.LoopVar, names: dict[int, str]) -> list[str]:
        var = self._var(op, names, "loopvar")
        return [f"# LoopVar {comment(op.name)}: this iteration's value", f"{var} = state[{op.name!r}]"]

    def op_While(self, op: O.While, names: dict[int, str]) -> list[str]:
        run_loop = self._call("loop")
        var = self._var(op, names, "while")
        label = f"loop {var.split('_')[0][1:]} ({op.result})"
        step = f"{var}_step"
        rules = ([f"max_iter {op.max_iter}"] if op.max_iter is not None else []) + \
                (["stop relation"] if op.stop is not None else []) + (["fixpoint"] if op.fixpoint else [])
        inner = dict(names)  # the body sees outer relations (its invariant inputs) by closure
        roots = list(op.body) + ([op.stop] if op.stop is not None else [])
        keep = {id(r) for r in roots}
        body = self._block(roots, inner, keep)
        nexts = ", ".join(f"{n!r}: {inner[id(b)]}" for n, b in zip(op.names, op.body))
        stop = self._loop_stop(inner[id(op.stop)] if op.stop is not None else None)
        init = ", ".join(f"{n!r}: {names[id(i)]}" for n, i in zip(op.names, op.init))
        lines = [f"# While ({comment(', '.join(op.names))}): {', '.join(rules)}; result {comment(op.result)}",
                 f"def {step}(state: dict[str, {self.RELATION}]) -> tuple[dict[str, {self.RELATION}], {self.STOP}]:",
                 f'    """One pass of the loop body: the next value of every loop variable, and {self.STOP_DOC}."""']
        lines += indent(body, 1)
        lines += ["", f"    return {{{nexts}}}, {stop}", ""]
        lines.append(
            f"{var} = {run_loop}({label!r}, {{{init}}}, {step}, max_iter={op.max_iter!r}, "
            f"stop_rule={op.stop is not None}, fixpoint={op.fixpoint})[{op.result!r}]")
        return lines

    def op_UDF(self, op: O.UDF, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "udf")
        fields = ", ".join(f"({f.name!r}, {arrow_type(f.dtype)})" for f in op.out_schema)
        label = f"{op.module}:{op.qualname}"
        return [f"# UDF ({comment(op.mode)}): {comment(label)}",
                f"{var} = {self._call('udf')}({src}, load_udf({op.module!r}, {op.qualname!r}), {op.mode!r},",
                f"    pa.schema([{fields}]), {label!r})"]

    def op_Sink(self, op: O.Sink, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        names[id(op)] = src
        if op.path is None:
            return [f"# Sink {comment(op.name)}: returned by run()"]
        return self._write(op, src, self._sink_format(op))

    def _write(self, op: O.Sink, src: str, fmt: str) -> list[str]:
        """Statements writing relation `src` to the file Sink `op` names, as `fmt`."""
        assert op.path is not None  # only file sinks are written
        return [f"# Sink {comment(op.name)}: also written to {comment(op.path)}",
                f"write_table({src}, {op.path!r}, {fmt!r})"]

    def _loop_stop(self, stop: str | None) -> str:
        """What a While step returns besides the new values: here the stop flag."""
        return f"stop_flag({stop})" if stop is not None else "False"

    def _sink_format(self, op: O.Sink) -> str:
        """csv or parquet for a Sink that names a file (explicit format, else by extension)."""
        assert op.path is not None
        fmt = op.format or output_format(op.path)
        if fmt is None:
            raise UnsupportedError(f"output file {op.path!r}: only .csv and .parquet files can be written")
        if fmt.lower() not in ("csv", "parquet"):
            raise UnsupportedError(f"output format {op.format!r}: the {self.ENGINE} writes csv or parquet")
        return fmt.lower()
