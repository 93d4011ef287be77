"""IR workflow -> standalone Python program that runs DuckDB SQL.

Every input table becomes a view over `read_parquet`/`read_csv` with the
columns and types the IR expects. The operators between a view (or a
materialized table) and an output become one SQL statement: one CTE per
operator, the last operator as the main query, built with sqlglot's
expression builders (relations.py, sqlexprs.py) and pretty-printed. A
relation that several statements read is materialized once as a temporary
table; so are loop variables, which a driver loop in Python replaces each
iteration; user functions run in Python over the fetched rows.

Only generated names (`t<N>_<kind>`, slugs) and sqlglot-printed SQL reach
the program; user text enters it as quoted SQL identifiers and literals,
and in Python only through repr() or comment().
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.optimizer import eliminate_ctes, merge_subqueries, qualify

from musketeer.backends.common.codetext import comment, indent, output_format
from musketeer.backends.common.naming import RelationNames
from musketeer.backends.common.rendering import engine_header, render_program, template_environment
from musketeer.backends.common.tables import TableBindings
from musketeer.backends.common.walk import emit_order
from musketeer.backends.duckdb.relations import UNIT_COLUMN, RelationBuilder, star_from, table
from musketeer.backends.duckdb.sqlexprs import ENGINE, SqlExprCompiler, sql_name, sql_type
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.schema import Schema
from musketeer.ir.text import expr_text
from musketeer.ir.types import DataType, UnsupportedError
from musketeer.ir.workflow import Workflow

TEMPLATES = Path(__file__).parent / "templates"
COMMON_TEMPLATES = Path(__file__).parent.parent / "common" / "templates"

#: IR type kind -> the pyarrow type of a result column, as program text (decimals are doubles).
ARROW_TYPES = {"int64": "pa.int64()", "float64": "pa.float64()", "decimal": "pa.float64()",
               "bool": "pa.bool_()", "string": "pa.string()", "date": "pa.date32()",
               "timestamp": 'pa.timestamp("us")', "null": "pa.null()"}


def sql_text(query: exp.Expression) -> str:
    return query.sql(dialect="duckdb", pretty=True)


def python_string(text: str, level: int) -> list[str]:
    """Program lines for the string `text`: a triple-quoted block when that
    reads the same (no backslashes, quotes or line breaks inside SQL
    literals), else one repr() per line."""
    literal_lines = any(ch in text for ch in "\\\r") or '"""' in text
    if not literal_lines:
        pad = "    " * level
        return ['"""'] + [pad + line if line else line for line in text.split("\n")] + [pad + '"""']
    parts = text.splitlines(keepends=True)
    return ["("] + ["    " * level + repr(part) for part in parts] + ["    " * level + ")"]


def _has_line_break_inside_quotes(query: exp.Expression) -> bool:
    return any(("\n" in node.name or "\r" in node.name)
               for node in query.find_all(exp.Literal, exp.Identifier) if isinstance(node.name, str))


def describe(op: O.Op) -> str:
    """One line saying what an operator does, for comments."""
    if isinstance(op, O.Filter):
        return f"Filter: {expr_text(op.predicate)}"
    if isinstance(op, O.Project):
        return "Project: " + ", ".join(n if isinstance(e, E.Col) and e.name == n else f"{n} := {expr_text(e)}"
                                        for n, e in op.exprs)
    if isinstance(op, O.Join):
        cond = [f"{a} = {b}" for a, b in zip(op.left_keys, op.right_keys)]
        if op.residual is not None:
            cond.append(expr_text(op.residual))
        return f"Join {op.kind}{' (NOT IN)' if op.null_aware else ''}: {' AND '.join(cond) or 'every pair'}"
    if isinstance(op, O.Aggregate):
        keys = f"by [{', '.join(op.keys)}]" if op.keys else "(one group)"
        return f"Aggregate {keys}: " + ", ".join(f"{n} := {c}" for n, c in op.aggs)
    if isinstance(op, O.Sort):
        return "Sort: " + ", ".join(str(k) for k in op.keys)
    if isinstance(op, O.Window):
        over = ([f"partition [{', '.join(op.partition_by)}]"] if op.partition_by else []) + \
               ([f"order [{', '.join(str(k) for k in op.order_by)}]"] if op.order_by else [])
        return f"Window {' '.join(over) or '(one partition)'}: " + ", ".join(f"{n} := {c}" for n, c in op.calls)
    if isinstance(op, O.Limit):
        return f"Limit {op.count}" + (f" OFFSET {op.offset}" if op.offset else "")
    if isinstance(op, O.SetOp):
        return f"{op.opname} {'DISTINCT' if op.distinct else 'ALL'}"
    return op.opname


class ProgramGenerator(RelationBuilder):
    #: Aggregates sqlexprs.aggregate translates (every IR aggregate).
    AGGREGATES = frozenset(E.AGG_FUNCS)
    #: Window functions op_Window translates (DuckDB has each, with SQL's meaning).
    WINDOW_FUNCTIONS = ("row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
                        "first_value", "last_value", "nth_value", "sum", "avg", "count", "count_star", "min", "max")

    """Generates the program text for one workflow; use `generate()` once.

    The `op_<Operator>` methods of relational operators (RelationBuilder)
    return a query; those of Scan, While and UDF return program lines."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.bindings = TableBindings()
        self.names = RelationNames()
        self._name_of: dict[int, str] = {}
        self.helpers: set[str] = set()
        self.uses = _consumer_counts(workflow.sinks)
        #: Views and tables by name -> their columns (name in SQL -> type), for sqlglot's qualify.
        self.relations: dict[str, dict[str, str]] = {}

    # --- entry point ----------------------------------------------------------
    def generate(self) -> str:
        env: dict[int, str] = {}
        lines: list[str] = []
        for op in self.workflow.ops():
            if isinstance(op, O.Scan):
                lines += self.op_Scan(op, env) + [""]
        lines += self._block(list(self.workflow.sinks), env)
        lines += ["", "return outputs"]
        env_ = template_environment(TEMPLATES, COMMON_TEMPLATES)
        return render_program(env_, "program.py.j2", self.bindings, frozenset(self.helpers),
                              body="\n".join(indent(lines, 2)), **engine_header(self.workflow.name, ENGINE))

    def name(self, op: O.Op) -> str:
        """The generated name of `op`'s relation (view, table or CTE)."""
        if id(op) not in self._name_of:
            kind = op.table if isinstance(op, O.Scan) else op.opname.lower()
            self._name_of[id(op)] = self.names.new(kind)
        return self._name_of[id(op)]

    # --- inputs ---------------------------------------------------------------
    def op_Scan(self, op: O.Scan, env: dict[int, str]) -> list[str]:
        key = self.bindings.key(op)
        view = self.name(op)
        env[id(op)] = view
        self._relation(view, op.schema)
        cols = ", ".join(c.name if c.name == c.source else f"{c.source} AS {c.name}" for c in op.columns)
        lines = [f"# Scan {comment(op.table)} ({comment(op.format)}): {comment(cols)}",
                 f"bind_table(con, {view!r}, paths[{key!r}], FORMATS[{key!r}], ["]
        lines += [f"    ({c.source!r}, {c.name!r}, {_view_type(c.dtype)!r})," for c in op.columns]
        return lines + ["])"]

    # --- statements -------------------------------------------------------------
    def _block(self, roots: list[O.Op], env: dict[int, str], targets: dict[int, str] | None = None,
               flag: O.Op | None = None) -> list[str]:
        """Statements computing `roots` (sinks: fetched; others: materialized
        as tables, named by `targets` where given) and `flag` (a stop
        relation, read into the Python variable `stop`), given the relations
        already named in `env`, which gains every table made here."""
        targets = targets or {}
        all_roots = roots + ([flag] if flag is not None else [])
        order = emit_order(all_roots, env)
        consumers: dict[int, list[O.Op]] = {}
        for op in order:
            for inp in {id(i): i for i in op.inputs}.values():
                consumers.setdefault(id(inp), []).append(op)
        forced = {id(r) for r in all_roots}
        for op in order:
            if isinstance(op, O.While):  # the body reads its invariant inputs every iteration
                forced.update(id(i) for i in op.free_inputs)
        materialized: set[int] = set()
        statements: dict[int, set[int]] = {}
        for op in reversed(order):
            if id(op) in env:
                continue
            reached: set[int] = set()
            for c in consumers.get(id(op), []):
                reached |= {id(c)} if id(c) in materialized else statements.get(id(c), set())
            if (id(op) in forced or isinstance(op, (O.While, O.UDF, O.Sink, O.Scan, O.LoopVar))
                    or len(reached) > 1):
                materialized.add(id(op))
            statements[id(op)] = {id(op)} if id(op) in materialized else reached
        lines: list[str] = []
        for op in order:
            if id(op) in env or id(op) not in materialized:
                continue
            if lines:
                lines.append("")
            if isinstance(op, O.Sink):
                lines += self._sink(op, env)
            elif op is flag:
                lines += self._flag(op, env)
            elif isinstance(op, O.While):
                lines += self.op_While(op, env)
            elif isinstance(op, O.UDF):
                lines += self.op_UDF(op, env)
            elif isinstance(op, (O.Scan, O.LoopVar)):
                raise UnsupportedError(f"{op.opname} {getattr(op, 'table', getattr(op, 'name', ''))!r} "
                                       f"outside the workflow's inputs in the {ENGINE}")
            else:
                name = targets.get(id(op)) or self.name(op)
                lines += self._materialize(op, name, env)
                env[id(op)] = name
                self._relation(name, op.schema)
        if flag is not None and id(flag) in env:  # the stop relation was made for another reason
            lines += self._flag(flag, env)
        return lines

    def query(self, op: O.Op, env: dict[int, str]) -> exp.Query:
        """One query computing `op` from the relations named in `env`: a CTE
        per operator in between, `op` itself as the main query."""
        if id(op) in env:
            return star_from(table(env[id(op)]))

        def ref(x: O.Op) -> exp.Expression:
            return table(env.get(id(x)) or self.name(x))

        ctes: list[O.Op] = []
        for a in O.walk(op, stop_at=set(env)):
            if id(a) in env or a is op or self._absorbed(a, env):
                continue
            ctes.append(a)
            self.name(a)  # numbered in the order the query reads them
        self.name(op)
        main = self._select(op, ref, env)
        for a in ctes:
            main = main.with_(self.name(a), as_=self._select(a, ref, env), copy=False)
        return self.flatten(main)

    def _relation(self, name: str, schema: Schema) -> None:
        self.relations[name] = {sql_name(f.name): _view_type(f.dtype) if f.dtype.kind != "null" else "INTEGER"
                                for f in schema} or {UNIT_COLUMN: "INTEGER"}

    def flatten(self, query: exp.Query) -> exp.Query:
        """The statement with its CTEs merged into one SELECT where that keeps
        its meaning (sqlglot's qualify + merge_subqueries, as in its
        optimizer): the joins of a query then sit in one FROM clause, where
        DuckDB's optimizer orders them as it does for hand-written SQL (a
        CTE per operator hides the join graph from it: TPC-H Q7 ran 1.8x
        slower). A statement sqlglot cannot qualify stays as it is, and so
        does one with an outer join: merging a derived table that computes a
        constant (a mark join's `TRUE AS mark`) into the NULL-extended side of
        a LEFT JOIN would turn its NULLs into TRUE. Nor is one with a semi or
        anti join ([NOT] EXISTS, NOT IN): merged, its subquery is correlated
        with the whole join instead of one input, and DuckDB's decorrelation
        then works on the large joined relation (TPC-H Q18: 3x slower)."""
        if any(join.side for join in query.find_all(exp.Join)) or \
                any(True for _ in query.find_all(exp.Exists)) or any(i.args.get("query") for i in query.find_all(exp.In)):
            return query
        try:
            # from the printed text: exactly what DuckDB would run, in the node shapes sqlglot's parser makes
            tree = sqlglot.parse_one(query.sql(dialect="duckdb"), read="duckdb")
            tree = qualify.qualify(tree, schema=self.relations, dialect="duckdb", quote_identifiers=True,
                                   expand_stars=True, validate_qualify_columns=True)
            tree = merge_subqueries.merge_subqueries(tree)
            return eliminate_ctes.eliminate_ctes(tree)
        except Exception:  # noqa: BLE001 - only an optimization: the unmerged statement means the same
            return query

    def _select(self, op: O.Op, ref, env: dict[int, str]) -> exp.Query:
        if isinstance(op, O.Limit) and self._absorbed(op.input, env):
            return self.op_Limit(op, ref, sort=op.input)  # type: ignore[arg-type]
        return self.select(op, ref)

    def _absorbed(self, op: O.Op, env: dict[int, str]) -> bool:
        """A Sort read only by a Limit: both become one ORDER BY ... LIMIT query."""
        return isinstance(op, O.Sort) and id(op) not in env and self.uses.get(id(op)) == 1 \
            and self._limit_over.get(id(op), False)

    @property
    def _limit_over(self) -> dict[int, bool]:
        if not hasattr(self, "_limits"):
            self._limits = {id(op.input): True for op in _all_ops(self.workflow.sinks) if isinstance(op, O.Limit)}
        return self._limits

    def _statement_comment(self, op: O.Op, env: dict[int, str]) -> list[str]:
        ops = [a for a in O.walk(op, stop_at=set(env)) if id(a) not in env]
        return [f"#   {self.name(a) if not isinstance(a, O.Sink) else 'output'}: {comment(describe(a))}"
                for a in ops if not isinstance(a, O.Sink)]

    def _sql(self, query: exp.Expression, var: str = "sql") -> list[str]:
        """`var = <the query's SQL>` as program lines."""
        text = sql_text(query)
        if _has_line_break_inside_quotes(query):
            parts = text.splitlines(keepends=True)
            return [f"{var} = ("] + ["    " + repr(p) for p in parts] + [")"]
        lines = python_string(text, 1)
        return [f"{var} = {lines[0]}"] + lines[1:]

    def _materialize(self, op: O.Op, name: str, env: dict[int, str]) -> list[str]:
        create = exp.Create(this=table(name), kind="TABLE", expression=self.query(op, env), replace=True,
                            properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
        return ([f"# {name}: {comment(describe(op))} (kept as a table)"]
                + self._statement_comment(op, env)[:-1] + self._sql(create) + ["con.execute(sql)"])

    def _sink(self, op: O.Sink, env: dict[int, str]) -> list[str]:
        query = self.query(op.input, env)
        schema = ", ".join(f"({f.name!r}, {_arrow_type(f.dtype)})" for f in op.schema)
        where = f"also written to {comment(op.path)}" if op.path else "returned by run()"
        lines = [f"# Output {comment(op.name)} ({where})", *self._statement_comment(op.input, env),
                 *self._sql(query), f"outputs[{op.name!r}] = fetch(con, sql, [{schema}])"]
        if op.path is not None:
            fmt = op.format or output_format(op.path)
            if fmt is None or fmt.lower() not in ("csv", "parquet"):
                raise UnsupportedError(f"output file {op.path!r}: only .csv and .parquet files can be written")
            lines.append(f"write_table(outputs[{op.name!r}], {op.path!r}, {fmt.lower()!r})")
        return lines

    def _flag(self, op: O.Op, env: dict[int, str]) -> list[str]:
        return ["# the stop relation: one boolean", *self._sql(self.query(op, env)), "stop = stop_flag(con, sql)"]

    # --- loops and user functions -----------------------------------------------
    def op_While(self, op: O.While, env: dict[int, str]) -> list[str]:
        self.helpers.add("loop")
        base = self.name(op)
        number = base.split("_")[0][1:]
        label = f"loop {number} ({op.result})"
        state = {n: f"{base}_{i}" for i, n in enumerate(op.names)}
        nexts = {n: f"{base}_{i}_next" for i, n in enumerate(op.names)}
        rules = ([f"max_iter {op.max_iter}"] if op.max_iter is not None else []) + \
                (["stop relation"] if op.stop is not None else []) + (["fixpoint"] if op.fixpoint else [])
        lines = [f"# While ({comment(', '.join(op.names))}): {', '.join(rules)}; result {comment(op.result)}"]
        for n, first in zip(op.names, op.init):
            create = exp.Create(this=table(state[n]), kind="TABLE", expression=self.query(first, env), replace=True,
                                properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
            lines += [f"# loop variable {comment(n)}: its initial value", *self._sql(create), "con.execute(sql)"]
        inner = dict(env)
        roots = list(op.body) + ([op.stop] if op.stop is not None else [])
        free = {id(f) for f in op.free_inputs}
        for root in roots:
            for x in O.walk(root, stop_at=free):
                if isinstance(x, O.LoopVar):
                    inner[id(x)] = state[x.name]
                    self._relation(state[x.name], x.schema)
        targets: dict[int, str] = {}
        for n, b in zip(op.names, op.body):
            if id(b) not in inner:
                targets.setdefault(id(b), nexts[n])
        body = self._block([b for b in dict.fromkeys(op.body)], inner, targets, op.stop)
        for n, b in zip(op.names, op.body):
            if inner[id(b)] != nexts[n]:  # the same relation as another variable, or an outer one
                create = exp.Create(this=table(nexts[n]), kind="TABLE", expression=star_from(table(inner[id(b)])),
                                    replace=True, properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
                body += [f"con.execute({sql_text(create)!r})"]
        step = f"{base}_step"
        lines += ["", f"def {step}() -> bool:",
                  '    """One pass of the loop body: the next value of every loop variable into its'
                  ' `_next` table; True when the stop relation holds."""']
        if op.stop is None:
            body += ["stop = False"]
        lines += indent(body, 1) + ["    return stop", ""]
        pairs = ", ".join(f"({state[n]!r}, {nexts[n]!r})" for n in op.names)
        lines.append(f"run_loop(con, {label!r}, [{pairs}], {step}, max_iter={op.max_iter!r}, "
                     f"stop_rule={op.stop is not None}, fixpoint={op.fixpoint})")
        env[id(op)] = state[op.result]
        for n, first in zip(op.names, op.init):
            self._relation(state[n], first.schema)
        return lines

    def op_UDF(self, op: O.UDF, env: dict[int, str]) -> list[str]:
        self.helpers.add("udf")
        name = self.name(op)
        sql = self._sql(self.query(op.input, env))
        in_schema = ", ".join(f"({f.name!r}, {_arrow_type(f.dtype)})" for f in op.input.schema)
        out_schema = ", ".join(f"({f.name!r}, {_arrow_type(f.dtype)})" for f in op.out_schema)
        label = f"{op.module}:{op.qualname}"
        env[id(op)] = name
        self._relation(name, op.out_schema)
        return [f"# {name}: UDF ({comment(op.mode)}) {comment(label)}, run in Python over the fetched rows",
                *sql, f"{name}_input = fetch(con, sql, [{in_schema}])",
                f"register(con, {name!r}, apply_udf({name}_input, load_udf({op.module!r}, {op.qualname!r}), "
                f"{op.mode!r}, pa.schema([{out_schema}]), {label!r}))",
                f"del {name}_input"]


    def op_LoopVar(self, op: O.LoopVar, env: dict[int, str]) -> list[str]:
        """A loop variable is its While's state table, named in `env` by op_While."""
        raise UnsupportedError(f"loop variable {op.name!r} outside its loop")

    def _compiler(self, schema: Schema) -> SqlExprCompiler:
        """The expression compiler (what `capabilities` probes)."""
        return SqlExprCompiler(schema)


def _view_type(t: DataType) -> str:
    """The type a view gives a column: the IR's, except that a decimal column
    stored as DECIMAL stays one (bind_table: exact and fast sums and
    comparisons, as DuckDB runs the original query); other decimals are DOUBLE."""
    return f"DECIMAL({t.precision},{t.scale})" if t.kind == "decimal" else sql_type(t)


def _arrow_type(t: DataType) -> str:
    if t.kind not in ARROW_TYPES:
        raise UnsupportedError(f"{t} values as a column in the {ENGINE}")
    return ARROW_TYPES[t.kind]


def _all_ops(roots: Iterable[O.Op]) -> list[O.Op]:
    """Every operator, loop bodies and stop relations included."""
    seen: dict[int, O.Op] = {}
    pending = list(roots)
    while pending:
        for op in O.walk(pending.pop()):
            if id(op) not in seen:
                seen[id(op)] = op
                if isinstance(op, O.While):
                    pending.extend(op.body)
                    if op.stop is not None:
                        pending.append(op.stop)
    return list(seen.values())


def _consumer_counts(roots: Iterable[O.Op]) -> dict[int, int]:
    """How many operators read each operator (each reader once)."""
    counts: dict[int, int] = {}
    for op in _all_ops(roots):
        for inp in {id(i): i for i in op.inputs}.values():
            counts[id(inp)] = counts.get(id(inp), 0) + 1
    return counts


def generate_program(workflow: Workflow) -> str:
    """The complete program text for `workflow`."""
    return ProgramGenerator(workflow).generate()
