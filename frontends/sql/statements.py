"""A SQL workflow file: statements in order, lowered into one IR workflow.

- `CREATE TABLE|VIEW name AS query` names an intermediate relation that
  later statements read (it is computed once and shared in the DAG);
- `COPY (query) TO 'path'` (or `COPY name TO 'path'`) writes an output;
- the final `SELECT` is the workflow's result.
"""

from __future__ import annotations

import os
import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.qualify import qualify

from musketeer.frontends.sql.scope import Rel
from musketeer.frontends.sql.select import Named, QueryLowerer
from musketeer.frontends.sql.source import SourceText
from musketeer.frontends.sql.rewrites import rewrite_sugar
from musketeer.frontends.sql.strict import check_tree, user_text
from musketeer.ir import operators as O
from musketeer.ir.catalog import Catalog, Table
from musketeer.ir.schema import suggest
from musketeer.ir.types import IRError, MusketeerError, UnsupportedError
from musketeer.ir.workflow import Workflow

DIALECT = "duckdb"
_PATH_RE = re.compile(r".*\.(parquet|csv)$|.*[/\\].*", re.IGNORECASE)


def parse_statements(src: SourceText) -> list[exp.Expression]:
    try:
        stmts = sqlglot.parse(src.text, read=DIALECT)
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        line, col = first.get("line") or 1, first.get("col") or 1
        highlight = first.get("highlight") or ""
        col = max(1, col - len(highlight) + 1) if highlight else col
        message = first.get("description") or str(err)
        near = f" near {highlight!r}" if highlight else ""
        raise IRError(f"syntax error: {message}{near}", src.loc_line_col(line, col)) from None
    except TokenError as err:
        text = str(err)
        m = re.search(r"Error tokenizing '(.*)'$", text, re.DOTALL)
        offset = 0
        if m:
            ctx = m.group(1)
            found = src.text.find(ctx)
            offset = found + len(ctx) - 1 if found >= 0 else 0
            quote = src.text.rfind("'", 0, offset + 1)
            offset = quote if quote >= 0 else offset
        raise IRError("syntax error: unterminated string or bad token", src.loc_at(max(0, offset))) from None
    return [s for s in stmts if s is not None]


class WorkflowBuilder:
    def __init__(self, catalog: Catalog, src: SourceText) -> None:
        self.catalog = catalog
        self.src = src
        self.env: dict[str, Named] = {}
        self.sinks: list[O.Sink] = []
        self.path_tables: dict[str, Table] = {}

    # --- tables --------------------------------------------------------------
    def _bind_tables(self, stmt: exp.Expression) -> None:
        """Check every table name now (with a location), and read tables
        written as file paths into the catalog under a synthetic name."""
        cte_names = {c.alias_or_name.lower() for w in stmt.find_all(exp.With) for c in w.expressions}
        for table in stmt.find_all(exp.Table):
            if isinstance(table.parent, (exp.Create, exp.Copy)) and table.arg_key == "this":
                continue
            name = table.name
            if not name or name.lower() in cte_names or name.lower() in self.env:
                continue
            if name in self.catalog:
                continue
            if _PATH_RE.fullmatch(name):
                key = self._path_table(name, table)
                alias = table.alias or key
                table.set("this", exp.to_identifier(key))
                table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
                continue
            known = sorted(set(self.catalog.tables) | set(self.env) | cte_names)
            raise IRError(f"unknown table {name!r}{suggest(name, known)}"
                          f" (known: {', '.join(known) or 'none'}; bind tables with --data-dir or --table)",
                          self.src.loc_of(table))

    def _path_table(self, path: str, node: exp.Expression) -> str:
        if path in self.path_tables:
            return self.path_tables[path].name
        base = os.path.dirname(os.path.abspath(self.src.filename)) if not self.src.filename.startswith("<") else os.getcwd()
        candidate = path if os.path.isabs(path) else os.path.join(base, path)
        if not os.path.exists(candidate) and os.path.exists(path):
            candidate = os.path.abspath(path)
        try:
            table = self.catalog.from_path(candidate)
        except MusketeerError as err:
            err.loc = err.loc or self.src.loc_of(node)
            raise
        stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0]) or "t"
        key = stem
        k = 2
        while key in self.catalog or key.lower() in self.env:
            key = f"{stem}_{k}"
            k += 1
        table = Table(key, table.path, table.format, table.schema, table.rows)
        self.catalog.add(table)
        self.path_tables[path] = table
        return key

    def _schema_for_qualify(self, query: exp.Expression) -> dict[str, dict[str, str]]:
        """Column names of the tables this query reads, and no others: an
        unrelated broken file in the data directory must not matter."""
        schema: dict[str, dict[str, str]] = {}
        for node in query.find_all(exp.Table):
            name = node.name
            if name and name.lower() not in self.env and name in self.catalog:
                t = self.catalog.get(name)
                schema[t.name] = {f.name: "INT" for f in t.schema}
        for name, named in self.env.items():
            schema[name] = {n: "INT" for n in named.rel.names}
        return schema

    def _qualify(self, query: exp.Expression) -> exp.Expression:
        try:
            return qualify(query, schema=self._schema_for_qualify(query), dialect=DIALECT,
                           validate_qualify_columns=True, quote_identifiers=False, identify=False)
        except OptimizeError as err:
            raise self._qualify_error(query, str(err)) from None

    def _qualify_error(self, query: exp.Expression, message: str) -> MusketeerError:
        m = re.match(r"Column '([^']+)' could not be resolved", message)
        if m:
            name = m.group(1).split(".")[-1].strip('"')
            read = self._schema_for_qualify(query)
            known = sorted({c for cols in read.values() for c in cols}
                           | {n for v in self.env.values() for n in v.rel.names})
            node = next((c for c in query.find_all(exp.Column) if c.name == name), None)
            return IRError(f"unknown column {name!r}{suggest(name, known)}", self.src.loc_of(node))
        m = re.match(r"Ambiguous column '([^']+)'", message)
        if m:
            node = next((c for c in query.find_all(exp.Column) if c.name == m.group(1)), None)
            return IRError(f"ambiguous column {m.group(1)!r}: qualify it with a table name", self.src.loc_of(node))
        message = re.sub(r"\. Line: \d+, Col: \d+.*$", "", message, flags=re.DOTALL)
        return IRError(message, self.src.loc_of(query))

    # --- statements --------------------------------------------------------
    def lower_query(self, query: exp.Expression) -> Rel:
        self._bind_tables(query)
        query = rewrite_sugar(query, self.src)
        qualified = self._qualify(query)
        check_tree(qualified, self.src)
        return QueryLowerer(self.catalog, self.src, dict(self.env)).lower_query(qualified)

    def _check_statement(self, stmt: exp.Expression, accepted: set[str]) -> None:
        """Refuse statement options we would otherwise drop (IF NOT EXISTS,
        OR REPLACE, COPY options other than FORMAT, ...)."""
        for key, value in stmt.args.items():
            if key in accepted or value in (None, False, "", []):
                continue
            if isinstance(value, exp.Expression) and not any(v for v in value.args.values()):
                continue  # an empty node sqlglot adds by default (Credentials())
            if key == "properties" and all(isinstance(p, exp.TemporaryProperty) for p in value.expressions):
                continue  # CREATE TEMP TABLE: every relation here is temporary
            if key == "params":
                bad = [p for p in value if p.name.upper() != "FORMAT"]
                if not bad:
                    continue
                value = bad[0]
            at = value if isinstance(value, exp.Expression) else stmt
            what = {"replace": "CREATE OR REPLACE", "exists": "IF NOT EXISTS", "params": "a COPY option",
                    "properties": "table properties"}.get(key, f"{stmt.key.upper()} {key.upper()}")
            raise UnsupportedError(f"{what} ({user_text(at, self.src)})", self.src.loc_of(at) or self.src.loc_of(stmt))

    def statement(self, stmt: exp.Expression, is_last: bool) -> None:
        if isinstance(stmt, exp.Create):
            self._check_statement(stmt, {"this", "kind", "expression"})
            kind = (stmt.args.get("kind") or "").upper()
            query = stmt.expression
            if kind not in ("TABLE", "VIEW") or query is None or not isinstance(query, exp.Query):
                raise UnsupportedError("CREATE other than CREATE TABLE|VIEW name AS query", self.src.loc_of(stmt))
            name = stmt.this.name if isinstance(stmt.this, exp.Table) else stmt.this.this.name
            if name.lower() in self.env:
                raise IRError(f"relation {name!r} is defined twice", self.src.loc_of(stmt.this))
            self.env[name.lower()] = Named(self.lower_query(query))
            return
        if isinstance(stmt, exp.Copy):
            self._check_statement(stmt, {"this", "kind", "files"})
            self._copy(stmt)
            return
        if isinstance(stmt, (exp.Query, exp.Values)):
            if not is_last:
                raise IRError("only the last statement may be a bare SELECT; name earlier results "
                              "with CREATE TABLE name AS ... or write them with COPY", self.src.loc_of(stmt))
            rel = self.lower_query(stmt)
            self.sinks.append(self._sink(rel, "result", None, None))
            return
        raise UnsupportedError(f"{stmt.key.upper()} statement", self.src.loc_of(stmt))

    def _copy(self, stmt: exp.Copy) -> None:
        if stmt.args.get("kind") is True:
            raise UnsupportedError("COPY ... FROM (load data with --table or FROM 'path')", self.src.loc_of(stmt))
        files = stmt.args.get("files") or []
        if len(files) != 1 or not (isinstance(files[0], exp.Literal) and files[0].is_string):
            raise IRError("COPY needs TO 'path'", self.src.loc_of(stmt))
        path = files[0].this
        fmt = None
        for p in stmt.args.get("params") or []:
            if p.name.upper() == "FORMAT" and p.args.get("expression") is not None:
                fmt = p.args["expression"].name.lower()
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        fmt = fmt or ext
        if fmt not in ("csv", "parquet"):
            raise IRError(f"COPY TO {path!r}: use a .csv or .parquet file (or FORMAT csv|parquet)",
                          self.src.loc_of(files[0]))
        source = stmt.this
        if isinstance(source, exp.Table):
            query: exp.Expression = exp.select("*").from_(source.copy())
        else:
            query = source.this if isinstance(source, exp.Subquery) else source
        rel = self.lower_query(query)
        self.sinks.append(self._sink(rel, f"copy_{len(self.sinks) + 1}", path, fmt))

    def _sink(self, rel: Rel, name: str, path: str | None, fmt: str | None) -> O.Sink:
        op = rel.op
        if list(op.schema.names) != list(rel.names):
            from musketeer.ir.expr import Col

            outs, taken = [], set()
            for sql_name, ir_name in zip(rel.names, op.schema.names):
                out = sql_name
                k = 2
                while out in taken:
                    out = f"{sql_name}_{k}"
                    k += 1
                taken.add(out)
                outs.append((out, Col(ir_name)))
            op = O.Project(op, tuple(outs))
        return O.Sink(op, name, path, fmt)

    def workflow(self, name: str) -> Workflow:
        if not self.sinks:
            raise IRError("the workflow has no output: end it with a SELECT or add COPY (...) TO 'path'",
                          self.src.loc_at(max(0, len(self.src.text.rstrip()) - 1)))
        return Workflow(tuple(self.sinks), name)


def parse_workflow(text: str, catalog: Catalog, filename: str = "<sql>") -> Workflow:
    """Lower a SQL workflow file to the IR (before optimisation passes)."""
    src = SourceText(text, filename)
    stmts = parse_statements(src)
    if not stmts:
        raise IRError("the workflow is empty", src.loc_at(0))
    builder = WorkflowBuilder(catalog, src)
    for i, stmt in enumerate(stmts):
        builder.statement(stmt, i == len(stmts) - 1)
    name = os.path.splitext(os.path.basename(filename))[0] if not filename.startswith("<") else "workflow"
    return builder.workflow(name)
