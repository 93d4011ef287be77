"""Random schema-aware SQL queries (SQLsmith-style generation).

A query is kept as a `Query` (clauses as SQL fragments) rather than only as
text, so the shrinker can drop clauses one at a time. Expressions are typed
(int, float, dec, str, date, bool) and built over the tables and aliases in
scope: joins of every kind, correlated and uncorrelated subqueries (EXISTS,
IN, NOT IN, scalar), aggregates with and without GROUP BY, HAVING,
DISTINCT, set operations, ORDER BY over every output column (so LIMIT picks
a defined set of rows), CASE, COALESCE, casts, LIKE, BETWEEN, string and
date functions.

The SQL is DuckDB's dialect, which Musketeer's SQL frontend reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from tests.fuzz.tables import STRINGS, TYPES, Database

#: Features a run can turn off (Generator(avoid=...), --avoid): name -> what.
FEATURES = {
    "string_casts": "CAST of a string to a number, date or bool (may be a data error)",
    "decimal_casts": "CAST of an integer to DECIMAL(12,2) (may overflow)",
    "uncorrelated_exists": "EXISTS / NOT EXISTS over a subquery that does not reference the outer query",
}

NUMERIC = ("int", "float", "dec")
ORDERED = ("int", "float", "dec", "str", "date")


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class Scope:
    """Columns visible to an expression: (alias, column, type)."""

    columns: list[tuple[str, str, str]]
    outer: list[tuple[str, str, str]] = field(default_factory=list)

    def of(self, kind: str, outer: bool = False) -> list[str]:
        cols = self.outer if outer else self.columns
        return [f"{a}.{c}" for a, c, t in cols if t == kind]


@dataclass
class Query:
    """One SELECT (maybe with a set operation); each clause a SQL fragment."""

    items: list[tuple[str, str]]  # (expression, type); output names are c0, c1, ...
    source: str  # "t0 AS a"
    joins: list[str] = field(default_factory=list)
    where: str | None = None
    group_by: list[str] = field(default_factory=list)
    having: str | None = None
    distinct: bool = False
    order: list[str] | None = None  # per output column: "ASC NULLS FIRST", ...
    limit: int | None = None
    setop: tuple[str, "Query"] | None = None

    @property
    def types(self) -> list[str]:
        return [t for _, t in self.items]

    def core(self) -> str:
        select = "SELECT DISTINCT " if self.distinct else "SELECT "
        text = select + ", ".join(f"{e} AS c{n}" for n, (e, _) in enumerate(self.items))
        text += f" FROM {self.source}" + "".join(f" {j}" for j in self.joins)
        if self.where:
            text += f" WHERE {self.where}"
        if self.group_by:
            text += " GROUP BY " + ", ".join(self.group_by)
        if self.having:
            text += f" HAVING {self.having}"
        return text

    def sql(self) -> str:
        text = self.core()
        if self.setop is not None:
            op, other = self.setop
            text = f"{text} {op} {other.core()}"
        if self.order is not None:
            text += " ORDER BY " + ", ".join(f"{n + 1} {d}" for n, d in enumerate(self.order))
            if self.limit is not None:
                text += f" LIMIT {self.limit}"
        return text

    def without(self, **changes) -> "Query":
        return replace(self, **changes)


class Generator:
    """Random queries over one database, from one random.Random."""

    def __init__(self, rng: random.Random, db: Database, *, subqueries: bool = True,
                 avoid: frozenset[str] = frozenset()) -> None:
        """`avoid` turns off features (see FEATURES) whose open bugs would
        drown everything else in a run."""
        unknown = set(avoid) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)} (known: {', '.join(FEATURES)})")
        self.rng = rng
        self.db = db
        self.subqueries = subqueries
        self.avoid = avoid
        self.aliases = iter(f"x{n}" for n in range(10**6))

    # ------------------------------------------------------------------ helpers

    def _scope_of(self, table: str, alias: str) -> list[tuple[str, str, str]]:
        return [(alias, c, t) for c, t in self.db.tables[table].columns.items()]

    def _table(self) -> str:
        return self.rng.choice(sorted(self.db.tables))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # ------------------------------------------------------------------ expressions

    def literal(self, kind: str) -> str:
        r = self.rng
        if kind == "int":
            return str(r.choice((0, 1, 2, 3, -1, 5, 10, 42, 100, -7, 2**31)))
        if kind == "float":
            return r.choice(("0.5", "1.5", "-2.25", "100.0", "0.0", "1e3", "CAST(3 AS DOUBLE)"))
        if kind == "dec":
            return r.choice(("CAST(1.50 AS DECIMAL(12,2))", "CAST(0 AS DECIMAL(12,2))",
                             "CAST(-2.25 AS DECIMAL(12,2))", "CAST(99.99 AS DECIMAL(12,2))"))
        if kind == "str":
            return quote(r.choice(STRINGS))
        if kind == "date":
            return r.choice(("DATE '2020-02-29'", "DATE '1970-01-01'", "DATE '2023-06-15'", "DATE '2099-12-31'"))
        if kind == "bool":
            return r.choice(("TRUE", "FALSE"))
        raise ValueError(kind)

    def expr(self, kind: str, scope: Scope, depth: int = 0) -> str:
        """An expression of type `kind` over `scope`."""
        r = self.rng
        cols = scope.of(kind) + (scope.of(kind, outer=True) if scope.outer and self.chance(0.3) else [])
        if depth >= 2 or self.chance(0.35):
            if cols and self.chance(0.8):
                return r.choice(cols)
            return self.literal(kind) if kind != "bool" else self.predicate(scope, depth + 1)
        if kind == "bool":
            return self.predicate(scope, depth)
        d = depth + 1
        choice = r.random()
        if choice < 0.15:
            return (f"CASE WHEN {self.predicate(scope, d)} THEN {self.expr(kind, scope, d)} "
                    f"ELSE {self.expr(kind, scope, d)} END")
        if choice < 0.25:
            return f"COALESCE({self.expr(kind, scope, d)}, {self.expr(kind, scope, d)})"
        if choice < 0.35:
            return self.cast_to(kind, scope, d)
        if kind == "int":
            return r.choice((
                lambda: f"({self.expr('int', scope, d)} + {self.expr('int', scope, d)})",
                lambda: f"({self.expr('int', scope, d)} - {self.expr('int', scope, d)})",
                lambda: f"({self.expr('int', scope, d)} * {r.choice((2, 3, -1, 10))})",
                lambda: f"({self.expr('int', scope, d)} % {r.choice((2, 3, 7, -4))})",
                lambda: f"abs({self.expr('int', scope, d)})",
                lambda: f"(-({self.expr('int', scope, d)}))",
                lambda: f"length({self.expr('str', scope, d)})",
                lambda: f"EXTRACT({r.choice(('year', 'month', 'day'))} FROM {self.expr('date', scope, d)})",
            ))()
        if kind == "float":
            return r.choice((
                lambda: f"({self.expr('float', scope, d)} + {self.expr('float', scope, d)})",
                lambda: f"({self.expr('float', scope, d)} * {self.expr('float', scope, d)})",
                lambda: f"({self.expr('int', scope, d)} / {r.choice(('2', '4.0', '-3'))})",
                lambda: f"round({self.expr('float', scope, d)}, {r.choice((0, 1, 2))})",
                lambda: f"abs({self.expr('float', scope, d)})",
            ))()
        if kind == "dec":
            return r.choice((
                lambda: f"({self.expr('dec', scope, d)} + {self.expr('dec', scope, d)})",
                lambda: f"({self.expr('dec', scope, d)} - {self.expr('dec', scope, d)})",
                lambda: f"abs({self.expr('dec', scope, d)})",
            ))()
        if kind == "str":
            return r.choice((
                lambda: f"upper({self.expr('str', scope, d)})",
                lambda: f"lower({self.expr('str', scope, d)})",
                lambda: f"({self.expr('str', scope, d)} || {self.expr('str', scope, d)})",
                lambda: f"substring({self.expr('str', scope, d)}, {r.choice((1, 2))}, {r.choice((1, 3))})",
            ))()
        if kind == "date":
            return f"({self.expr('date', scope, d)} + INTERVAL '{r.choice((1, 30, 365, -1))}' DAY)"
        raise ValueError(kind)

    def cast_to(self, kind: str, scope: Scope, depth: int) -> str:
        """CAST(x AS kind) from a type that converts without data errors,
        and sometimes (strings to numbers/dates) one that may not."""
        r = self.rng
        sources = {"int": ("float", "dec", "bool"), "float": ("int", "dec"), "dec": ("int",),
                   "str": ("int", "float", "bool"), "date": (), "bool": ()}[kind]
        if kind == "int" and "string_casts" in self.avoid:
            sources = ("float", "dec", "bool")
        if kind == "dec" and "decimal_casts" in self.avoid:
            sources = ()
        if kind in ("int", "float", "date") and self.chance(0.15) and "string_casts" not in self.avoid:
            sources = ("str",)  # may be a data error: DuckDB's answer says which
        if kind == "str" and scope.of("date") and self.chance(0.2):
            # a date column, not an expression: DuckDB types date + INTERVAL as a timestamp, Musketeer
            # as a date (documented), which only shows when the value is printed as text
            return f"CAST({r.choice(scope.of('date'))} AS VARCHAR)"
        if not sources:
            return self.expr(kind, scope, depth + 1)
        return f"CAST({self.expr(r.choice(sources), scope, depth)} AS {TYPES[kind][1]})"

    def predicate(self, scope: Scope, depth: int = 0) -> str:
        r = self.rng
        d = depth + 1
        if depth >= 2:
            kind = r.choice(ORDERED)
            return f"{self.expr(kind, scope, 2)} {r.choice(('=', '<>', '<', '<=', '>', '>='))} {self.expr(kind, scope, 2)}"
        choice = r.random()
        kind = r.choice(ORDERED)
        if choice < 0.3:
            return f"({self.expr(kind, scope, d)} {r.choice(('=', '<>', '<', '<=', '>', '>='))} {self.expr(kind, scope, d)})"
        if choice < 0.42:
            return f"({self.predicate(scope, d)} {r.choice(('AND', 'OR'))} {self.predicate(scope, d)})"
        if choice < 0.48:
            return f"(NOT {self.predicate(scope, d)})"
        if choice < 0.55:
            return f"({self.expr(kind, scope, d)} IS {r.choice(('', 'NOT '))}NULL)"
        if choice < 0.6:
            return f"({self.expr(kind, scope, d)} {r.choice(('', 'NOT '))}BETWEEN {self.expr(kind, scope, d)} AND " \
                   f"{self.expr(kind, scope, d)})"
        if choice < 0.66:
            items = ", ".join(self.literal(kind) for _ in range(r.randint(1, 3)))
            return f"({self.expr(kind, scope, d)} {r.choice(('', 'NOT '))}IN ({items}))"
        if choice < 0.7:
            pattern = r.choice(("'a%'", "'%a%'", "'_'", "'%b'", "'%''%'", "'A_C'", "'%'", "''"))
            return f"({self.expr('str', scope, d)} {r.choice(('', 'NOT '))}LIKE {pattern})"
        bools = scope.of("bool")
        if choice < 0.75 and bools:
            return r.choice(bools)
        if self.subqueries and choice < 0.9 and depth == 0:
            return self.subquery_predicate(scope)
        return f"({self.expr(kind, scope, d)} {r.choice(('=', '<', '>='))} {self.expr(kind, scope, d)})"

    def subquery_predicate(self, scope: Scope) -> str:
        """EXISTS / IN / NOT IN / a scalar comparison; correlated or not."""
        r = self.rng
        table = self._table()
        alias = next(self.aliases)
        inner_cols = self._scope_of(table, alias)
        correlated = bool(scope.of("int")) and (self.chance(0.5) or "uncorrelated_exists" in self.avoid)
        inner = Scope(inner_cols, outer=scope.columns if correlated else [])
        conds = []
        if correlated:
            conds.append(f"{alias}.k = {r.choice(scope.of('int'))}")
        if self.chance(0.4):
            conds.append(self.predicate(Scope(inner_cols), 2))
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        choice = r.random()
        exists_ok = correlated or "uncorrelated_exists" not in self.avoid
        if choice < 0.35 and exists_ok:
            return f"({r.choice(('', 'NOT '))}EXISTS (SELECT 1 FROM {table} AS {alias}{where}))"
        kinds = [t for t in ORDERED if any(ct == t for _, _, ct in inner_cols) and scope.of(t)]
        if not kinds:
            return f"(EXISTS (SELECT 1 FROM {table} AS {alias}{where}))" if exists_ok else "(1 = 1)"
        kind = r.choice(kinds)
        inner_col = r.choice([f"{alias}.{c}" for _, c, t in inner_cols if t == kind])
        outer_expr = self.expr(kind, Scope(scope.columns), 2)
        if choice < 0.7:
            return f"({outer_expr} {r.choice(('', 'NOT '))}IN (SELECT {inner_col} FROM {table} AS {alias}{where}))"
        agg = r.choice(("max", "min")) if kind not in NUMERIC or self.chance(0.5) else r.choice(("sum", "avg", "count"))
        if agg == "count" or (agg == "avg" and kind not in ("float", "int")):
            agg, kind, outer_expr = "count", "int", self.expr("int", Scope(scope.columns), 2)
        op = r.choice(("=", "<", ">=", "<>"))
        return f"({outer_expr} {op} (SELECT {agg}({inner_col}) FROM {table} AS {alias}{where}))"

    def aggregate(self, scope: Scope) -> tuple[str, str]:
        r = self.rng
        choice = r.random()
        if choice < 0.15:
            return "count(*)", "int"
        kind = r.choice(("int", "float", "dec", "str", "date", "bool"))
        arg = self.expr(kind, scope, 1)
        if choice < 0.3:
            return f"count({r.choice(('', 'DISTINCT '))}{arg})", "int"
        if kind in NUMERIC and choice < 0.6:
            fn = r.choice(("sum", "avg"))
            if fn == "avg" and kind == "dec":
                return f"avg({arg})", "float_or_dec"
            if fn == "avg":
                return f"avg({arg})", "float"
            return f"sum({r.choice(('', 'DISTINCT '))}{arg})", "sum_" + kind
        if kind == "bool":
            return f"count({arg})", "int"
        return f"{r.choice(('min', 'max'))}({arg})", kind

    # ------------------------------------------------------------------ queries

    def from_clause(self) -> tuple[str, list[str], Scope]:
        r = self.rng
        table = self._table()
        source = f"{table} AS a"
        columns = self._scope_of(table, "a")
        joins = []
        for n in range(r.choice((0, 0, 1, 1, 2))):
            other = self._table()
            alias = "bc"[n]
            kind = r.choice(("JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN", "CROSS JOIN", "JOIN", "LEFT JOIN"))
            new = self._scope_of(other, alias)
            if kind == "CROSS JOIN":
                joins.append(f"CROSS JOIN {other} AS {alias}")
            else:
                left = r.choice([f"{a}.{c}" for a, c, t in columns if t == "int"])
                cond = f"{left} = {alias}.k"
                if self.chance(0.3):
                    cond += f" AND {self.predicate(Scope(columns + new), 2)}"
                joins.append(f"{kind} {other} AS {alias} ON {cond}")
            columns = columns + new
        return source, joins, Scope(columns)

    def query(self, types: list[str] | None = None, allow_setop: bool = True) -> Query:
        r = self.rng
        source, joins, scope = self.from_clause()
        where = self.predicate(scope) if self.chance(0.6) else None
        mode = r.random() if types is None else 0.0
        if mode < 0.55:  # plain projection
            kinds = types or [r.choice(("int", "float", "dec", "str", "date", "bool", "int", "str"))
                              for _ in range(r.randint(1, 4))]
            items = [(self.expr(k, scope), k) for k in kinds]
            q = Query(items, source, joins, where, distinct=self.chance(0.25))
            if allow_setop and types is None and self.chance(0.3):
                op = r.choice(("UNION", "UNION ALL", "INTERSECT", "EXCEPT", "INTERSECT ALL", "EXCEPT ALL"))
                q.setop = (op, self.query(kinds, allow_setop=False))
        elif mode < 0.85:  # GROUP BY
            keys = [self.group_key(scope) for _ in range(r.randint(1, 2))]
            key_items = [(k, "any") for k in keys]
            aggs = [self.aggregate(scope) for _ in range(r.randint(1, 3))]
            having = None
            if self.chance(0.3):
                having = f"count(*) {r.choice(('>', '>=', '<'))} {r.choice((0, 1, 2))}"
            q = Query(key_items + aggs, source, joins, where, group_by=keys, having=having)
        else:  # global aggregate
            q = Query([self.aggregate(scope) for _ in range(r.randint(1, 3))], source, joins, where)
        if types is None and self.chance(0.4):
            q.order = [f"{r.choice(('ASC', 'DESC'))} NULLS {r.choice(('FIRST', 'LAST'))}" for _ in q.items]
            q.limit = r.choice((None, 0, 1, 3, 10))
        return q

    def group_key(self, scope: Scope) -> str:
        kind = self.rng.choice(("int", "str", "date", "bool", "int"))
        key = self.expr(kind, scope, 1)
        if key.lstrip("-").isdigit():  # GROUP BY 2 would mean the second select item
            return "a.k"
        return key

    def tlp_base(self) -> tuple[Query, str]:
        """A plain projection (no aggregate, LIMIT or set operation) and a
        predicate p for ternary logic partitioning."""
        source, joins, scope = self.from_clause()
        kinds = [self.rng.choice(("int", "float", "str", "date", "bool", "dec")) for _ in range(self.rng.randint(1, 3))]
        q = Query([(self.expr(k, scope), k) for k in kinds], source, joins,
                  self.predicate(scope) if self.chance(0.3) else None, distinct=self.chance(0.2))
        return q, self.predicate(scope)


def tlp_queries(q: Query, p: str) -> tuple[str, str]:
    """(Q, the union of Q WHERE p, Q WHERE NOT p, Q WHERE p IS NULL): the
    same rows as multisets (sets under DISTINCT) on a correct engine."""
    parts = []
    for cond in (f"({p})", f"(NOT ({p}))", f"(({p}) IS NULL)"):
        where = f"({q.where}) AND {cond}" if q.where else cond
        parts.append(q.without(where=where, distinct=q.distinct).core())
    glue = " UNION " if q.distinct else " UNION ALL "
    return q.sql(), glue.join(parts)
