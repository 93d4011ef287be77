"""IR workflow -> standalone PySpark (DataFrame API) program.

The program is straight-line code in `run()`: one commented step per IR
operator, written as DataFrame method chains. Consecutive Filter/Project
steps over a relation nobody else reads continue that relation's chain
(`read_table(...).where(...).select(...)`); Spark's optimizer fuses and
pushes them down anyway, so the chain is for the reader. A relation read by
several steps (a shared DAG node) gets its own variable and `.cache()`,
except plain scans (re-reading parquet with per-consumer pushdown is as
cheap as a cache). Loop bodies become a step function run by `run_loop`,
which materialises the loop state with `localCheckpoint()` each iteration.

Templates in templates/ hold the fixed runtime text; this module emits the
per-operator lines. Relations live in variables named `t<N>_<kind>`; user
text (column and table names, literals, paths) only ever enters the program
through `repr()` or `comment()`, so it cannot change the code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from musketeer.backends.common.codetext import comment, docstring_text, indent, output_format
from musketeer.backends.common.naming import RelationNames
from musketeer.backends.common.rendering import render_program, runtime_text, template_environment
from musketeer.backends.common.sortkeys import sort_key_specs
from musketeer.backends.common.tables import TableBindings
from musketeer.backends.common.values import physical_kind
from musketeer.backends.common.walk import emit_order
from musketeer.backends.spark.exprs import ExprCompiler, cast_type, col_ref, schema_type
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.schema import Schema
from musketeer.ir.text import expr_text
from musketeer.ir.types import BOOL, UnsupportedError
from musketeer.ir.workflow import Workflow

TEMPLATES = Path(__file__).parent / "templates"
SHARED_TEMPLATES = Path(__file__).parent.parent / "common" / "templates"
RUNTIME_TEMPLATES = ("session.py.j2", "io.py.j2", "scalars.py.j2", "loops.py.j2", "udf.py.j2")

# Operators that continue their input's method chain when they are its only reader.
_CHAINABLE = (O.Filter, O.Project)


@dataclass
class Chain:
    """A relation not yet assigned to a variable: a DataFrame expression
    (`lines`, comments interleaved) that later steps may extend."""

    lines: list[str]
    kind: str  # names the variable: t<N>_<kind>
    setup: list[str] = field(default_factory=list)  # statements that must precede it (a loop's step function)
    name: str | None = None  # the variable to write it to, when chosen in advance

    named_by_head: bool = False  # a chain from a Scan is named after the table, others after their last step

    def extend(self, comment_line: str, step: list[str], kind: str) -> None:
        """Continue the chain with one more step."""
        self.lines += [comment_line, *step]
        if not self.named_by_head:
            self.kind = kind


@dataclass
class Scope:
    """One block of statements: run()'s body, or a loop's step function.

    `names` maps operator ids to the variables that hold them (outer scopes'
    relations are visible); `pending` holds chains not written yet; `uses`
    counts each relation's readers in this block; `materialize` lists the
    relations to compute once (`cache()` at top level, `checkpoint()` in a
    loop body, where the state must not grow a lineage).
    """

    names: dict[int, str]
    uses: Counter
    materialize: set[int]
    in_loop: bool
    pending: dict[int, Chain] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def _is_scan_chain(op: O.Op) -> bool:
    """A Scan with only Filter/Project on top: cheaper to re-read than to cache."""
    while isinstance(op, _CHAINABLE):
        op = op.input
    return isinstance(op, O.Scan)


class ProgramGenerator:
    """Generates the program text for one workflow; use `generate()` once."""

    #: Aggregates `_aggregate` writes and window functions `_window_function` writes.
    AGGREGATES = frozenset(E.AGG_FUNCS)
    WINDOW_FUNCTIONS = frozenset(E.WINDOW_FUNCS)

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.helpers: set[str] = set()
        self.bindings = TableBindings()
        self.relations = RelationNames()
        self._collected: dict[int, str] = {}  # sink input -> variable holding its collected rows

    # --- entry point ----------------------------------------------------------
    def generate(self) -> str:
        sinks = list(self.workflow.sinks)
        scope = self._scope(sinks, {}, in_loop=False)
        for sink in sinks:
            self._add(sink, scope)
        outputs = ", ".join(f"{s.name!r}: {scope.names[id(s)]}" for s in sinks)
        body = [*scope.lines, "", f"return {{{outputs}}}"]
        return self._render(body)

    def need(self, helper: str) -> None:
        self.helpers.add(helper)

    def _render(self, body: list[str]) -> str:
        env = template_environment(TEMPLATES, SHARED_TEMPLATES)
        helpers = frozenset(self.helpers)
        wf = self.workflow.name
        return render_program(
            env, "program.py.j2", self.bindings, helpers,
            title=f"Workflow {docstring_text(wf)}, compiled by Musketeer for Apache Spark.",
            workflow_name=docstring_text(repr(wf)),
            app_name=repr(f"musketeer: {comment(wf)}"),
            description=repr(f"Run workflow {comment(wf)!r} on Spark (generated by Musketeer)."),
            runtime=runtime_text(env, RUNTIME_TEMPLATES, helpers),
            body="\n".join(indent(body, 2)).lstrip(),
        )

    # --- blocks of operators --------------------------------------------------
    def _scope(self, roots: list[O.Op], names: dict[int, str], in_loop: bool) -> Scope:
        """A new block computing `roots` given the relations already in `names`."""
        uses: Counter = Counter()
        materialize: set[int] = set()
        for op in emit_order(roots, names):
            for inp in op.inputs:
                uses[id(inp)] += 1
            if isinstance(op, O.While):
                materialize.update(id(i) for i in op.free_inputs)  # read on every iteration
        for root in roots:
            uses[id(root)] += 1
        for op in emit_order(roots, names):
            shared = uses[id(op)] > 1 and not isinstance(op, (O.LoopVar, O.Sink))
            if shared and (in_loop or not _is_scan_chain(op)):
                materialize.add(id(op))
        return Scope(dict(names), uses, materialize, in_loop)

    def _add(self, root: O.Op, scope: Scope) -> None:
        """Emit whatever `root` needs that is not in `scope` yet, then `root`."""
        for op in emit_order([root], scope.names | {k: "" for k in scope.pending}):
            self._visit(op, scope)

    def _visit(self, op: O.Op, scope: Scope) -> None:
        if isinstance(op, _CHAINABLE) and id(op.input) in scope.pending and scope.uses[id(op.input)] == 1 \
                and id(op.input) not in scope.materialize:
            chain = scope.pending.pop(id(op.input))
            chain.extend(*self._step(op))
            scope.pending[id(op)] = chain
            return
        for inp in op.inputs:
            self.flush(inp, scope)
        if isinstance(op, O.Sink):
            self._sink(op, scope)
            return
        scope.pending[id(op)] = self._emit(op, scope)

    def flush(self, op: O.Op, scope: Scope) -> str:
        """The variable holding `op`, writing its pending chain first if needed."""
        if id(op) in scope.names:
            return scope.names[id(op)]
        chain = scope.pending.pop(id(op))
        var = chain.name or self.relations.new(chain.kind)
        lines = list(chain.lines)
        first = _first_code(lines)
        one_statement = not any(line.startswith(("#", ".")) for line in lines[first + 1:])
        if id(op) in scope.materialize:
            if scope.in_loop:
                note, call = "# computed once per iteration (localCheckpoint)", ".localCheckpoint()"
            else:
                note, call = f"# computed once and cached: {_readers(scope.uses[id(op)])} read it", ".cache()"
            if one_statement:  # the note goes with the other comments, the call on the statement
                lines.insert(first, note)
                lines[-1] += call
                first += 1
            else:
                lines += [note, call]
        if scope.lines:
            scope.lines.append("")
        scope.lines += chain.setup
        if one_statement:  # comments, then one statement (further lines are inside its brackets)
            scope.lines += lines[:first] + [f"{var} = {lines[first]}"] + lines[first + 1:]
        else:  # a method chain with a comment per step
            scope.lines += [f"{var} = ("] + indent(lines, 1) + [")"]
        if id(op) in scope.materialize and not scope.in_loop:
            scope.lines.append(f"cached.append({var})")
        scope.names[id(op)] = var
        return var

    def _emit(self, op: O.Op, scope: Scope) -> Chain:
        method: Callable[[O.Op, Scope], Chain] | None = getattr(self, "op_" + op.opname, None)
        if method is None:
            raise UnsupportedError(f"operator {op.opname} in the Spark engine")
        return method(op, scope)

    def _compiler(self, schema: Schema) -> ExprCompiler:
        return ExprCompiler(schema, self.need)

    # --- map-like steps (they extend chains) ----------------------------------
    def _step(self, op: O.Op) -> tuple[str, list[str], str]:
        """(comment, method-call lines, kind) for a Filter or Project applied to a chain."""
        if isinstance(op, O.Filter):
            compiler = self._compiler(op.input.schema)
            note = f"# Filter: {comment(expr_text(op.predicate))}"
            pred = compiler.compile(op.predicate, None)
            if len(pred) <= 90 or not isinstance(op.predicate, E.And):
                return note, [f".where({pred})"], "filter"
            parts = [compiler.operand(compiler.column(compiler.code(a, BOOL))) for a in op.predicate.args]
            return note, [".where(", f"    {parts[0]}", *(f"    & {p}" for p in parts[1:]), ")"], "filter"
        assert isinstance(op, O.Project)
        compiler = self._compiler(op.input.schema)
        items = ", ".join(n if isinstance(e, E.Col) and e.name == n else f"{n} := {expr_text(e)}"
                          for n, e in op.exprs)
        lines = [".select("]
        for (name, e), out in zip(op.exprs, op.schema):
            code = compiler.code(e, out.dtype)
            if isinstance(e, E.Col) and e.name == name:
                lines.append(f"    {code.text},")
            else:
                lines.append(f"    {compiler.operand(compiler.column(code))}.alias({name!r}),")
        lines.append(")")
        return f"# Project: {comment(items)}", lines, "project"

    def op_Filter(self, op: O.Filter, scope: Scope) -> Chain:
        return self._chain_on(op, scope)

    def op_Project(self, op: O.Project, scope: Scope) -> Chain:
        return self._chain_on(op, scope)

    def _chain_on(self, op: O.Filter | O.Project, scope: Scope) -> Chain:
        """A Filter/Project whose input is a variable (shared, or a loop variable)."""
        note, step, kind = self._step(op)
        return Chain([scope.names[id(op.input)], note, *step], kind)

    # --- one method per operator ---------------------------------------------
    def op_Scan(self, op: O.Scan, scope: Scope) -> Chain:
        key = self.bindings.key(op)
        cols = ", ".join(c.name if c.name == c.source else f"{c.source} AS {c.name}" for c in op.columns)
        lines = [f"# Scan {comment(op.table)} ({comment(op.format)}): {comment(cols)}",
                 f"read_table(spark, paths[{key!r}], FORMATS[{key!r}], ["]
        lines += [f"    ({c.source!r}, {c.name!r}, {schema_type(c.dtype)})," for c in op.columns]
        lines.append("])")
        return Chain(lines, op.table, named_by_head=True)

    def op_Join(self, op: O.Join, scope: Scope) -> Chain:
        left, right = scope.names[id(op.left)], scope.names[id(op.right)]
        cond = [f"{a} = {b}" for a, b in zip(op.left_keys, op.right_keys)]
        if op.residual is not None:
            cond.append(expr_text(op.residual))
        note = " (NOT IN: NULL-aware)" if op.null_aware else ""
        head = f"# Join {op.kind}{note}: {comment(' AND '.join(cond)) or 'every pair'}"
        if op.kind == "cross":
            return Chain([head, f"{left}.crossJoin({right})"], "join")
        lines = [head]
        right_keys = list(op.right_keys)
        clash = op.residual is None and set(right_keys) & set(op.left.schema.names)
        if op.kind in ("semi", "anti") and clash:
            # Only the keys of the right side matter; renamed, they cannot clash with the left's columns.
            taken = set(op.left.schema.names)
            private = []
            for i in range(len(right_keys)):
                name = f"right_key{i}"
                while name in taken:
                    name = "_" + name
                private.append(name)
            picks = ", ".join(f"{col_ref(k)}.alias({p!r})" for k, p in zip(right_keys, private))
            right = f"{right}.select({picks})"
            right_keys = private
        condition = self._join_condition(op, right_keys)
        how = {"semi": "left_semi", "anti": "left_anti"}.get(op.kind, op.kind)
        call = f"{left}.join({right}, {condition}, {how!r})"
        if len(call) <= 100:
            lines.append(call)
        else:  # one argument per line
            lines += [f"{left}.join(", f"    {right},", f"    {condition},", f"    {how!r},", ")"]
        return Chain(lines, "join")

    def _join_condition(self, op: O.Join, right_keys: list[str]) -> str:
        """Equality on the keys (`==`, so NULL keys never match) AND the residual."""
        pairs = [(col_ref(a), col_ref(b)) for a, b in zip(op.left_keys, right_keys)]
        residual = None
        if op.residual is not None:
            residual = self._compiler(op.left.schema.concat(op.right.schema)).code(op.residual)
        if op.null_aware:
            return self._null_aware_condition(pairs, residual)
        tests = [f"{a} == {b}" for a, b in pairs]
        if residual is None and len(tests) <= 1:
            return tests[0] if tests else "F.lit(True)"
        if not tests:
            return ExprCompiler.column(residual).text  # type: ignore[arg-type]
        items = [f"({t})" for t in tests]
        if residual is not None:
            items.append(ExprCompiler.operand(ExprCompiler.column(residual)))
        return " & ".join(items)

    @staticmethod
    def _null_aware_condition(pairs: list[tuple[str, str]], residual: object) -> str:
        """NOT IN: a left row goes when some right row matches it or compares
        NULL with it (DuckDB: a NULL in any key of either row is unknown).
        With one key and no residual this is exactly the shape Spark plans
        as a null-aware anti join (a hash join, not a nested loop)."""
        if len(pairs) == 1 and residual is None:
            a, b = pairs[0]
            return f"({a} == {b}) | ({a} == {b}).isNull()"
        equal = " & ".join(f"({a} == {b})" for a, b in pairs)
        unknown = " | ".join(f"{c}.isNull()" for pair in pairs for c in pair)
        test = f"({equal}) | {unknown}" if len(pairs) > 1 else f"{equal} | {unknown}"
        if residual is None:
            return test
        return f"{ExprCompiler.operand(ExprCompiler.column(residual))} & ({test})"  # type: ignore[arg-type]

    def op_Aggregate(self, op: O.Aggregate, scope: Scope) -> Chain:
        src = scope.names[id(op.input)]
        aggs = ", ".join(f"{n} := {c}" for n, c in op.aggs)
        keys = f"by [{', '.join(op.keys)}]" if op.keys else "(one group)"
        lines = [f"# Aggregate {comment(keys)}: {comment(aggs) or 'no aggregates'}"]
        key_refs = ", ".join(col_ref(k) for k in op.keys)
        if not op.aggs:
            if not op.keys:
                return Chain([*lines, "spark.range(1).select()"], "aggregate")
            return Chain([*lines, f"{src}.select({key_refs}).distinct()"], "aggregate")
        grouped = f"{src}.groupBy({key_refs})" if op.keys else src
        lines.append(f"{grouped}.agg(")
        lines += [f"    {_aggregate(call)}.alias({name!r})," for name, call in op.aggs]
        lines.append(")")
        return Chain(lines, "aggregate")

    def op_Distinct(self, op: O.Distinct, scope: Scope) -> Chain:
        return Chain(["# Distinct", f"{scope.names[id(op.input)]}.distinct()"], "distinct")

    def _setop(self, op: O.Union | O.Intersect | O.Except, scope: Scope, distinct: str, all_rows: str) -> Chain:
        """Set operations match columns by position (as SQL); a side whose
        column types differ from the result's is cast first."""
        label = "DISTINCT" if op.distinct else "ALL"

        def side(child: O.Op) -> str:
            var = scope.names[id(child)]
            if all(physical_kind(a.dtype) == physical_kind(b.dtype) for a, b in zip(child.schema, op.schema)):
                return var
            picks = ", ".join(
                col_ref(a.name) if physical_kind(a.dtype) == physical_kind(b.dtype)
                else f"{col_ref(a.name)}.cast({cast_type(b.dtype)!r})"
                for a, b in zip(child.schema, op.schema))
            return f"{var}.select({picks})"

        call = distinct if op.distinct else all_rows
        return Chain([f"# {op.opname} {label}", f"{side(op.left)}.{call}({side(op.right)})"
                      + (".distinct()" if op.distinct and isinstance(op, O.Union) else "")], op.opname.lower())

    def op_Union(self, op: O.Union, scope: Scope) -> Chain:
        return self._setop(op, scope, "union", "union")

    def op_Intersect(self, op: O.Intersect, scope: Scope) -> Chain:
        return self._setop(op, scope, "intersect", "intersectAll")

    def op_Except(self, op: O.Except, scope: Scope) -> Chain:
        return self._setop(op, scope, "subtract", "exceptAll")

    def op_Sort(self, op: O.Sort, scope: Scope) -> Chain:
        keys = [f"{col_ref(column)}.{'desc' if order == 'descending' else 'asc'}_nulls_{nulls}()"
                for column, order, nulls in sort_key_specs(op.keys)]
        head = f"# Sort: {comment(', '.join(str(k) for k in op.keys))}"
        src = scope.names[id(op.input)]
        call = f"{src}.orderBy({', '.join(keys)})"
        if len(call) <= 100:
            return Chain([head, call], "sort")
        return Chain([head, f"{src}.orderBy(", *(f"    {k}," for k in keys), ")"], "sort")

    def op_Limit(self, op: O.Limit, scope: Scope) -> Chain:
        text = f"{op.count}" + (f" OFFSET {op.offset}" if op.offset else "")
        code = scope.names[id(op.input)]
        if op.offset:
            code += f".offset({op.offset})"
        if op.count is not None:
            code += f".limit({op.count})"
        return Chain([f"# Limit {text}", code], "limit")

    def op_Values(self, op: O.Values, scope: Scope) -> Chain:
        fields = ", ".join(f"T.StructField({f.name!r}, {schema_type(f.dtype)}, True)" for f in op.schema)
        rows = [tuple(row) for row in op.rows]
        return Chain([f"# Values: {len(op.rows)} constant rows",
                      f"spark.createDataFrame({rows!r}, T.StructType([{fields}]))"], "values")

    def op_Window(self, op: O.Window, scope: Scope) -> Chain:
        """pyspark.sql.Window specs. Spark has no GROUPS frames: a GROUPS
        frame is a RANGE frame over the row's peer-group number (DENSE_RANK
        in the window's order), computed first as a hidden column; a RANGE
        offset over a date or timestamp key ranges over its day number."""
        self.need("window")
        src = scope.names[id(op.input)]
        part = ", ".join(col_ref(k) for k in op.partition_by)
        order = [f"{col_ref(column)}.{'desc' if o == 'descending' else 'asc'}_nulls_{nulls}()"
                 for column, o, nulls in sort_key_specs(op.order_by)]
        base = "Window" + (f".partitionBy({part})" if part else "")
        ordered = base + f".orderBy({', '.join(order) or 'F.lit(1)'})"
        head = [f"# Window {comment(', '.join(op.partition_by) or 'one partition')}"
                f"{': order by ' + comment(', '.join(str(k) for k in op.order_by)) if op.order_by else ''}"]
        hidden: list[str] = []
        needs_groups = any(c.frame is not None and c.frame.kind == "groups" for _, c in op.calls)
        if needs_groups:
            hidden.append(f"F.dense_rank().over({ordered}).alias('__musketeer_peer_group__')")
        needs_days = any(c.frame is not None and c.frame.kind == "range" and
                         (c.frame.start.offset is not None or c.frame.end.offset is not None) for _, c in op.calls) \
            and op.order_by and op.input.schema.dtype(op.order_by[0].column).kind in ("date", "timestamp")
        if needs_days:
            key = op.order_by[0]
            days = f"(F.unix_timestamp({col_ref(key.column)}.cast('timestamp')) / 86400.0)"
            hidden.append(f"{days}.alias('__musketeer_order_days__')")
        lines = [*head]
        source = src
        if hidden:
            lines += [f"{src}.select('*', {', '.join(hidden)})"]
            source = ""
        items = []
        for name, call in op.calls:
            items.append(f"{self._window_function(op, call, base, ordered)}.alias({name!r})")
        kept = ", ".join(col_ref(n) for n in op.schema.names)
        select = f".select('*', {', '.join(items)})"
        if source:
            lines.append(f"{source}{select}")
        else:
            lines.append(select)
        if hidden:
            lines.append(f".select({kept})")
        return Chain(lines, "window")

    def _window_function(self, op: O.Window, call: object, base: str, ordered: str) -> str:
        from musketeer.ir.window import WindowCall

        assert isinstance(call, WindowCall)
        f, arg = call.func, col_ref(call.arg) if call.arg else None
        if f in ("row_number", "rank", "dense_rank", "percent_rank", "cume_dist"):
            return f"F.{f}().over({ordered})"
        if f == "ntile":
            return f"F.ntile({call.params[0]!r}).over({ordered})"
        if f in ("lag", "lead"):
            default = f", {call.params[1]!r}" if len(call.params) > 1 and call.params[1] is not None else ""
            return f"F.{f}({arg}, {call.params[0]!r}{default}).over({ordered})"
        spec = self._frame_spec(op, call, base, ordered)
        if f == "first_value":
            return f"F.first({arg}).over({spec})"
        if f == "last_value":
            return f"F.last({arg}).over({spec})"
        if f == "nth_value":
            return f"F.nth_value({arg}, {call.params[0]!r}).over({spec})"
        if f == "count_star":
            return f"F.count(F.lit(1)).over({spec})"
        if call.distinct:
            if f == "count":
                return f"F.size(F.collect_set({arg}).over({spec}))"
            if f in ("min", "max"):
                return f"F.{f}({arg}).over({spec})"
            raise UnsupportedError(f"{f.upper()}(DISTINCT ...) OVER (...) in the Spark engine")
        return f"F.{f}({arg}).over({spec})"

    @staticmethod
    def _frame_spec(op: O.Window, call: object, base: str, ordered: str) -> str:
        frame = call.frame  # type: ignore[attr-defined]

        def bound(b: object) -> str:
            kind, offset = b.kind, b.offset  # type: ignore[attr-defined]
            if kind == "unbounded_preceding":
                return "Window.unboundedPreceding"
            if kind == "unbounded_following":
                return "Window.unboundedFollowing"
            if kind == "current_row":
                return "Window.currentRow"
            return repr(-offset if kind == "preceding" else offset)

        if frame.is_whole_partition:
            return f"{base}.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)"
        start, end = bound(frame.start), bound(frame.end)
        if frame.kind == "rows":
            return f"{ordered}.rowsBetween({start}, {end})"
        if frame.kind == "groups":
            spec = base + ".orderBy(F.col('__musketeer_peer_group__'))"
            return f"{spec}.rangeBetween({start}, {end})"
        offsets = frame.start.offset is not None or frame.end.offset is not None
        if offsets and op.input.schema.dtype(op.order_by[0].column).kind in ("date", "timestamp"):
            key = op.order_by[0]
            direction = "asc" if key.ascending else "desc"
            nulls = "first" if key.nulls_first else "last"
            spec = base + f".orderBy(F.col('__musketeer_order_days__').{direction}_nulls_{nulls}())"
            return f"{spec}.rangeBetween({start}, {end})"
        return f"{ordered}.rangeBetween({start}, {end})"

    def op_LoopVar(self, op: O.LoopVar, scope: Scope) -> Chain:
        return Chain([f"# LoopVar {comment(op.name)}: this iteration's value", f"state[{op.name!r}]"], "loopvar")

    def op_While(self, op: O.While, scope: Scope) -> Chain:
        self.need("loop")
        number = self.relations.new("while")
        step = f"{number}_step"
        label = f"loop {number.split('_')[0][1:]} ({op.result})"
        rules = ([f"max_iter {op.max_iter}"] if op.max_iter is not None else []) + \
                (["stop relation"] if op.stop is not None else []) + (["fixpoint"] if op.fixpoint else [])
        roots = list(op.body) + ([op.stop] if op.stop is not None else [])
        inner = self._scope(roots, scope.names, in_loop=True)
        for body in op.body:  # the next state is checkpointed: no lineage growth, no recomputation
            if not isinstance(body, O.LoopVar):
                inner.materialize.add(id(body))
        for r in roots:
            self._add(r, inner)
        for r in roots:
            self.flush(r, inner)
        nexts = ", ".join(f"{n!r}: {inner.names[id(b)]}" for n, b in zip(op.names, op.body))
        stop = inner.names[id(op.stop)] if op.stop is not None else "None"
        init = ", ".join(f"{n!r}: {scope.names[id(i)]}" for n, i in zip(op.names, op.init))
        setup = [f"# While ({comment(', '.join(op.names))}): {', '.join(rules)}; result {comment(op.result)}",
                 f"def {step}(state: dict[str, DataFrame]) -> tuple[dict[str, DataFrame], DataFrame | None]:",
                 '    """One pass of the loop body: the next value of every loop variable, and the stop relation."""']
        setup += indent(inner.lines, 1)
        setup += ["", f"    return {{{nexts}}}, {stop}", ""]
        call = (f"run_loop({label!r}, {{{init}}}, {step}, max_iter={op.max_iter!r}, "
                f"stop_rule={op.stop is not None}, fixpoint={op.fixpoint})[{op.result!r}]")
        return Chain([call], "while", setup=setup, name=number)

    def op_UDF(self, op: O.UDF, scope: Scope) -> Chain:
        self.need("udf")
        fields = ", ".join(f"T.StructField({f.name!r}, {schema_type(f.dtype)})" for f in op.out_schema)
        label = f"{op.module}:{op.qualname}"
        return Chain([f"# UDF ({comment(op.mode)}): {comment(label)}",
                      f"apply_udf({scope.names[id(op.input)]}, {op.module!r}, {op.qualname!r}, {op.mode!r},",
                      f"          T.StructType([{fields}]))"], "udf")

    def _sink(self, op: O.Sink, scope: Scope) -> None:
        """Collect the sink's relation to the driver (once, if several sinks
        share it) and write it when the sink names a file."""
        src = scope.names[id(op.input)]
        where = "" if op.path is None else f", also written to {comment(op.path)}"
        lines = [f"# Sink {comment(op.name)}: collected to the driver as a pandas DataFrame{where}"]
        var = self._collected.get(id(op.input))
        if var is None:
            var = self._collected[id(op.input)] = f"{src}_rows"
            fields = [f"({f.name!r}, {cast_type(f.dtype)!r})" for f in op.schema]
            one_line = f"{var} = collect({src}, [{', '.join(fields)}])"
            if len(one_line) <= 100:
                lines.append(one_line)
            else:
                lines += [f"{var} = collect({src}, [", *(f"    {f}," for f in fields), "])"]
        if op.path is not None:
            fmt = (op.format or output_format(op.path) or "").lower()
            if fmt not in ("csv", "parquet"):
                raise UnsupportedError(f"output file {op.path!r}: the Spark engine writes .csv or .parquet files")
            lines.append(f"write_table({var}, {op.path!r}, {fmt!r})")
        if scope.lines:
            scope.lines.append("")
        scope.lines += lines
        scope.names[id(op)] = var


def _first_code(lines: list[str]) -> int:
    """Index of the first line that is code rather than a comment."""
    return next(i for i, line in enumerate(lines) if not line.startswith("#"))


def _readers(n: int) -> str:
    return "a loop on every iteration" if n <= 1 else f"{n} later steps"


def _aggregate(call: E.AggCall) -> str:
    """The Spark aggregate for one AggCall (Spark's NULL rules are SQL's:
    NULLs are skipped, SUM of no values is NULL, COUNT is 0)."""
    if call.func == "count_star":
        return "F.count(F.lit(1))"
    arg = col_ref(call.arg or "")
    if call.func in ("median", "quantile_cont", "quantile_disc", "string_agg"):
        return _holistic(call, arg)
    if call.distinct:
        if call.func == "count":
            return f"F.count_distinct({arg})"
        if call.func == "sum":
            return f"F.sum_distinct({arg})"
        if call.func == "avg":
            return f"(F.sum_distinct({arg}) / F.count_distinct({arg}))"
    return f"F.{call.func}({arg})"


def _sql_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _holistic(call: E.AggCall, arg: str) -> str:
    """MEDIAN / QUANTILE_CONT: Spark's exact `percentile` (linear
    interpolation, as SQL's); QUANTILE_DISC: the ceil(q * n)-th of the sorted
    non-NULL values; STRING_AGG: `listagg`, ordered WITHIN GROUP."""
    values = f"F.collect_list({arg})"
    if call.distinct:
        values = f"F.collect_set({arg})"
    if call.func in ("median", "quantile_cont"):
        q = call.params[0] if call.params else 0.5
        return f"F.percentile({arg}, {float(q)!r})"
    if call.func == "quantile_disc":
        q = float(call.params[0])
        ordered = f"F.sort_array({values})"
        index = f"F.greatest(F.ceil(F.lit({q!r}) * F.size({ordered})).cast('int'), F.lit(1))"
        return f"F.when(F.size({values}) > 0, F.element_at({ordered}, {index}))"
    sep = call.params[0]
    literal = "'" + sep.replace("\\", "\\\\").replace("'", "\\'") + "'"
    distinct = "DISTINCT " if call.distinct else ""
    sql = f"listagg({distinct}{_sql_name(call.arg or '')}, {literal})"
    if call.order:
        keys = ", ".join(f"{_sql_name(c)} {'ASC' if a else 'DESC'} NULLS {'FIRST' if nf else 'LAST'}"
                         for c, a, nf in call.order)
        sql += f" WITHIN GROUP (ORDER BY {keys})"
    return f"F.expr({sql!r})"


def generate_program(workflow: Workflow) -> str:
    """The complete program text for `workflow`."""
    return ProgramGenerator(workflow).generate()
