"""IR workflow -> standalone Python program for the local (pandas + pyarrow) engine.

The program is straight-line code in `run()`, one short block per operator
with a comment naming the IR operator, calling a small runtime library that
is inlined at the top (only the helpers this program uses). Templates in
templates/ hold the fixed text; this module emits the per-operator lines.

Relations live in variables named `t<N>_<kind>` that the generator makes up;
user text (column and table names, literals, paths) only ever enters the
program through `repr()` or `comment()`, so it cannot change the code.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jinja2

from ir import expr as E
from ir import operators as O
from ir.schema import Schema
from ir.text import expr_text
from ir.types import DataType, UnsupportedError, common_type
from ir.workflow import Workflow

from backends.local.exprs import ExprCompiler, arrow_type

TEMPLATES = Path(__file__).parent / "templates"
RUNTIME_TEMPLATES = ("core.py.j2", "io.py.j2", "scalars.py.j2", "relational.py.j2", "loops.py.j2")

# Optional helper groups that call other groups (core and io are always included).
HELPER_DEPS: dict[str, set[str]] = {"setops": {"distinct"}}

_COMMENT_LIMIT = 150


def comment(text: str) -> str:
    """User text made safe and short for a `#` comment: no line breaks or other control characters."""
    cleaned = "".join(
        " " if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in text
    )
    cleaned = re.sub(r" {2,}", " ", cleaned).strip()
    return cleaned if len(cleaned) <= _COMMENT_LIMIT else cleaned[: _COMMENT_LIMIT - 3] + "..."


def docstring_text(text: str) -> str:
    """User text for inside a triple-quoted docstring: one line, quotes and backslashes escaped."""
    return comment(text).replace("\\", "\\\\").replace('"', '\\"')


def _slug(text: str) -> str:
    """A fragment of a generated variable name: [a-z0-9_] only, so never code."""
    slug = re.sub(r"[^a-z0-9_]", "", text.lower().replace(" ", "_"))[:24].strip("_")
    return slug or "table"


def _indent(lines: list[str], level: int) -> list[str]:
    pad = "    " * level
    return [pad + line if line else line for line in lines]


class ProgramGenerator:
    """Generates the program text for one workflow; use `generate()` once."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.helpers: set[str] = set()
        self.tables: dict[str, tuple[str, str]] = {}  # key in TABLES -> (path, format)
        self._table_keys: dict[tuple[str, str], str] = {}
        self._shared: dict[tuple[str, str], _SharedRead] = {}
        self._counter = itertools.count()

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
                self._shared[binding] = _SharedRead(columns, remaining=len(scans))

    # --- entry point ----------------------------------------------------------
    def generate(self) -> str:
        self._plan_shared_reads()
        names: dict[int, str] = {}
        sinks = self.workflow.sinks
        keep = {id(s.input) for s in sinks}
        body = self._block(list(sinks), names, keep)
        outputs = ", ".join(f"{s.name!r}: {names[id(s)]}" for s in sinks)
        body += ["", f"return {{{outputs}}}"]
        return self._render(_indent(body, 1))

    def need(self, helper: str) -> None:
        pending = [helper]
        while pending:
            h = pending.pop()
            if h not in self.helpers:
                self.helpers.add(h)
                pending.extend(HELPER_DEPS.get(h, ()))

    def _render(self, body: list[str]) -> str:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined, autoescape=False,
        )
        helpers = frozenset(self.helpers)
        runtime = "\n\n".join(env.get_template(name).render(helpers=helpers).strip("\n")
                              for name in RUNTIME_TEMPLATES)
        wf = self.workflow.name
        text = env.get_template("program.py.j2").render(
            title=f"Workflow {docstring_text(wf)}, compiled by Musketeer for the local engine.",
            workflow_name=docstring_text(repr(wf)),
            description=repr(f"Run workflow {comment(wf)!r} (generated by Musketeer, local engine)."),
            tables=[(repr(k), repr(p)) for k, (p, _) in self.tables.items()],
            formats=[(repr(k), repr(f)) for k, (_, f) in self.tables.items()],
            runtime=runtime,
            body="\n".join(body),
            helpers=helpers,
        )
        text = re.sub(r"\n{4,}", "\n\n\n", text)  # conditional helpers leave extra blank lines
        return text.rstrip("\n") + "\n"

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
            raise UnsupportedError(f"operator {op.opname} in the local engine")
        return method(op, names)

    def _var(self, op: O.Op, names: dict[int, str], kind: str) -> str:
        var = f"t{next(self._counter)}_{kind}"
        names[id(op)] = var
        return var

    def _compiler(self, frame: str, schema: Schema) -> ExprCompiler:
        return ExprCompiler(frame, schema, self.need)

    # --- one method per operator ---------------------------------------------
    def op_Scan(self, op: O.Scan, names: dict[int, str]) -> list[str]:
        key = self._table_key(op)
        cols = ", ".join(c.name if c.name == c.source else f"{c.source} AS {c.name}" for c in op.columns)
        lines = [f"# Scan {comment(op.table)} ({comment(op.format)}): {comment(cols)}"]
        shared = self._shared.get((op.table, op.path))
        if shared is None:
            var = self._var(op, names, _slug(op.table))
            return lines + self._read(var, key, [(c.source, c.name, c.dtype) for c in op.columns])
        if shared.var is None:  # the first scan of this file reads what all of them need
            shared.var = f"t{next(self._counter)}_{_slug(op.table)}_file"
            lines[0] += " (the file is read once for all its scans)"
            lines += self._read(shared.var, key, [(src, src, t) for src, t in shared.columns.items()])
        var = self._var(op, names, _slug(op.table))
        sources = [c.source for c in op.columns]
        pick = f"{shared.var}[{sources!r}]"
        if [c.name for c in op.columns] != sources:
            pick += f".set_axis({[c.name for c in op.columns]!r}, axis=1)"
        lines.append(f"{var} = {pick}")
        shared.remaining -= 1
        if shared.remaining == 0:
            lines.append(f"del {shared.var}")
        return lines

    def _read(self, var: str, key: str, columns: list[tuple[str, str, DataType]]) -> list[str]:
        lines = [f"{var} = read_table(paths[{key!r}], FORMATS[{key!r}], ["]
        lines += [f"    ({source!r}, {name!r}, {arrow_type(t)})," for source, name, t in columns]
        return lines + ["])"]

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

    def op_Filter(self, op: O.Filter, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "filter")
        mask = self._compiler(src, op.input.schema).compile(op.predicate)
        return [f"# Filter: {comment(expr_text(op.predicate))}",
                f"{var} = keep_rows({src}, {mask})"]

    def op_Project(self, op: O.Project, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "project")
        compiler = self._compiler(src, op.input.schema)
        items = ", ".join(n if isinstance(e, E.Col) and e.name == n else f"{n} := {expr_text(e)}"
                          for n, e in op.exprs)
        lines = [f"# Project: {comment(items)}", f"{var} = make_frame(len({src}), ["]
        for (name, e), field in zip(op.exprs, op.schema):
            lines.append(f"    ({name!r}, {arrow_type(field.dtype)}, {compiler.compile(e, field.dtype)}),")
        lines.append("])")
        return lines

    def op_Join(self, op: O.Join, names: dict[int, str]) -> list[str]:
        self.need("joins")
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
            lines.append(f"{var} = semi_join({', '.join(args)})")
        else:
            args.insert(2, repr(op.kind))
            lines.append(f"{var} = join_frames({', '.join(args)})")
        return lines

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

    def op_Aggregate(self, op: O.Aggregate, names: dict[int, str]) -> list[str]:
        self.need("aggregate")
        src = names[id(op.input)]
        var = self._var(op, names, "aggregate")
        aggs = ", ".join(f"{n} := {c}" for n, c in op.aggs)
        keys = f"by [{', '.join(op.keys)}]" if op.keys else "(one group)"
        lines = [f"# Aggregate {comment(keys)}: {comment(aggs)}",
                 f"{var} = aggregate({src}, {list(op.keys)!r}, ["]
        for name, call in op.aggs:
            lines.append(f"    ({name!r}, {call.func!r}, {call.arg!r}, {call.distinct!r}),")
        lines.append("])")
        return lines

    def op_Distinct(self, op: O.Distinct, names: dict[int, str]) -> list[str]:
        self.need("distinct")
        src = names[id(op.input)]
        var = self._var(op, names, "distinct")
        return ["# Distinct", f"{var} = distinct_rows({src})"]

    def _setop(self, op: O.Union | O.Intersect | O.Except, names: dict[int, str], func: str) -> list[str]:
        self.need("setops")
        kind = op.opname.lower()
        var = self._var(op, names, kind)
        out_names = repr(list(op.schema.names))
        out_types = "[" + ", ".join(arrow_type(f.dtype) for f in op.schema) + "]"

        def side(child: O.Op) -> str:
            same = child.schema.names == op.schema.names and all(
                arrow_type(a.dtype) == arrow_type(b.dtype) for a, b in zip(child.schema, op.schema))
            return names[id(child)] if same else f"conform({names[id(child)]}, {out_names}, {out_types})"

        label = "DISTINCT" if op.distinct else "ALL"
        return [f"# {op.opname} {label}",
                f"{var} = {func}({side(op.left)}, {side(op.right)}, distinct={op.distinct})"]

    def op_Union(self, op: O.Union, names: dict[int, str]) -> list[str]:
        return self._setop(op, names, "union_rows")

    def op_Intersect(self, op: O.Intersect, names: dict[int, str]) -> list[str]:
        return self._setop(op, names, "intersect_rows")

    def op_Except(self, op: O.Except, names: dict[int, str]) -> list[str]:
        return self._setop(op, names, "except_rows")

    def op_Sort(self, op: O.Sort, names: dict[int, str]) -> list[str]:
        self.need("sort")
        src = names[id(op.input)]
        var = self._var(op, names, "sort")
        keys = ", ".join(
            f"({k.column!r}, {'ascending' if k.ascending else 'descending'!r}, "
            f"{'first' if k.nulls_first else 'last'!r})" for k in op.keys)
        return [f"# Sort: {comment(', '.join(str(k) for k in op.keys))}",
                f"{var} = sort_rows({src}, [{keys}])"]

    def op_Limit(self, op: O.Limit, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "limit")
        stop = "" if op.count is None else str(op.offset + op.count)
        start = str(op.offset) if op.offset else ""
        text = f"{op.count}" + (f" OFFSET {op.offset}" if op.offset else "")
        return [f"# Limit {text}", f"{var} = {src}.iloc[{start}:{stop}].reset_index(drop=True)"]

    def op_LoopVar(self, op: O.LoopVar, names: dict[int, str]) -> list[str]:
        var = self._var(op, names, "loopvar")
        return [f"# LoopVar {comment(op.name)}: this iteration's value", f"{var} = state[{op.name!r}]"]

    def op_While(self, op: O.While, names: dict[int, str]) -> list[str]:
        self.need("loop")
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
        stop = f"stop_flag({inner[id(op.stop)]})" if op.stop is not None else "False"
        init = ", ".join(f"{n!r}: {names[id(i)]}" for n, i in zip(op.names, op.init))
        lines = [f"# While ({comment(', '.join(op.names))}): {', '.join(rules)}; result {comment(op.result)}",
                 f"def {step}(state: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], bool]:",
                 '    """One pass of the loop body: the next value of every loop variable, and the stop flag."""']
        lines += _indent(body, 1)
        lines += ["", f"    return {{{nexts}}}, {stop}", ""]
        lines.append(
            f"{var} = run_loop({label!r}, {{{init}}}, {step}, max_iter={op.max_iter!r}, "
            f"stop_rule={op.stop is not None}, fixpoint={op.fixpoint})[{op.result!r}]")
        return lines

    def op_UDF(self, op: O.UDF, names: dict[int, str]) -> list[str]:
        self.need("udf")
        src = names[id(op.input)]
        var = self._var(op, names, "udf")
        fields = ", ".join(f"({f.name!r}, {arrow_type(f.dtype)})" for f in op.out_schema)
        label = f"{op.module}:{op.qualname}"
        return [f"# UDF ({comment(op.mode)}): {comment(label)}",
                f"{var} = apply_udf({src}, load_udf({op.module!r}, {op.qualname!r}), {op.mode!r},",
                f"    pa.schema([{fields}]), {label!r})"]

    def op_Sink(self, op: O.Sink, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        names[id(op)] = src
        if op.path is None:
            return [f"# Sink {comment(op.name)}: returned by run()"]
        fmt = (op.format or _format_of(op.path)).lower()
        if fmt not in ("csv", "parquet"):
            raise UnsupportedError(f"output format {op.format!r}: the local engine writes csv or parquet")
        return [f"# Sink {comment(op.name)}: also written to {comment(op.path)}",
                f"write_table({src}, {op.path!r}, {fmt!r})"]


@dataclass
class _SharedRead:
    """One read of a file that several Scans take their columns from."""

    columns: dict[str, DataType]  # source column -> type, the union over the scans
    remaining: int  # scans not yet emitted; the shared frame is freed after the last
    var: str | None = None


def _format_of(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    raise UnsupportedError(f"output file {path!r}: only .csv and .parquet files can be written")


def generate_program(workflow: Workflow) -> str:
    """The complete program text for `workflow`."""
    return ProgramGenerator(workflow).generate()
