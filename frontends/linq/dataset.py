"""`Dataset`: a lazy, immutable relation that builds IR as methods are chained.

Every method returns a new Dataset wrapping a new `ir.operators` node; the
IR checks schemas and types as each node is built, so a mistake fails at the
line that made it (see `errors.located`), long before any engine runs.
Column names of a Dataset are its IR column names: there are no hidden
qualifiers, and a join with clashing names must say how to rename them.

Columns are reached as attributes (`orders.total`), by item
(`orders["total"]`, needed when a column is named like a method), through a
lambda's row proxy (`where(lambda o: o.total > 100)`), or by `col("total")`.
"""

from __future__ import annotations

import linecache
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence, TypeVar

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.catalog import Table
from musketeer.ir.schema import Schema, suggest
from musketeer.ir.types import MusketeerError
from musketeer.ir.workflow import Workflow

from musketeer.frontends.linq.columns import (
    Column, Ref, SortOrder, coerce_literals, col, display, has_aggregate, to_column, to_schema,
)
from musketeer.frontends.linq.windows import has_window, lift_windows
from musketeer.frontends.linq.errors import LinqError, UnknownColumnError, located

if TYPE_CHECKING:
    from musketeer.frontends.linq.grouping import GroupBy

D = TypeVar("D", bound="Dataset")

#: id(ancestor operator) -> {ancestor column name: this dataset's column name};
#: None when the ancestor is reached twice under different names (a self-join).
Lineage = dict[int, "dict[str, str] | None"]


class Row:
    """What a lambda receives: columns as attributes or items, and nothing
    else, so a column named `count` or `join` is still reachable."""

    __slots__ = ("_schema", "_origin", "_keep")

    def __init__(self, schema: Schema, origin: int, keep: tuple[O.Op, ...]) -> None:
        self._schema = schema
        self._origin = origin
        self._keep = keep

    def __getattr__(self, name: str) -> Column:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Column:
        if name not in self._schema:
            raise LinqError(f"unknown column {name!r}{suggest(name, self._schema.names)} "
                            f"(columns: {', '.join(self._schema.names)})")
        return Column(Ref(name, self._origin), None, self._keep)

    def __repr__(self) -> str:
        return f"Row{self._schema}"


def source_text(fn: Callable[..., Any], limit: int = 80) -> str:
    """A short quote of a lambda's source for error messages (found through
    its code positions, so two lambdas on one line are told apart); the
    function's name when there is no source."""
    name = getattr(fn, "__qualname__", None) or repr(fn)
    code = getattr(fn, "__code__", None)
    if code is None or getattr(fn, "__name__", "") != "<lambda>":
        return name
    line = linecache.getline(code.co_filename, code.co_firstlineno)
    cols = [c for ln, _, c, ec in code.co_positions()  # (0, 0) marks bookkeeping instructions
            if ln == code.co_firstlineno and c is not None and ec is not None and ec > c]
    start = line.rfind("lambda", 0, min(cols)) if cols else -1
    if start < 0:
        return name
    depth, end = 0, len(line)
    for i in range(start, len(line)):  # up to the `,` or `)` that ends the lambda in the call
        if line[i] in "([{":
            depth += 1
        elif depth == 0 and line[i] in ",)]}":
            end = i
            break
        elif line[i] in ")]}":
            depth -= 1
    text = " ".join(line[start:end].split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def call_user(fn: Callable[..., Any], args: Sequence[Any], what: str) -> Any:
    """Call a user's lambda with row proxies; a Python error inside it means
    it does something that has no column-expression form."""
    try:
        return fn(*args)
    except MusketeerError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot lower"
        raise LinqError(
            f"{what}: cannot lower `{source_text(fn)}` to a column expression ({type(exc).__name__}: {exc}); "
            "only operators and Column methods can be lowered; use Dataset.apply() for arbitrary Python"
        ) from None


class Dataset:
    """A lazy relation; see the module docstring. Subclasses (the glue's
    Dataset, which adds collect/run/explain) are preserved by every method."""

    def __init__(self, op: O.Op, lineage: Lineage | None = None) -> None:
        self._op = op
        self._lineage: Lineage = {**(lineage or {}), id(op): {n: n for n in op.schema.names}}

    # --- basics -------------------------------------------------------------
    @property
    def op(self) -> O.Op:
        """The IR operator computing this dataset."""
        return self._op

    @property
    def schema(self) -> Schema:
        return self._op.schema

    @property
    def columns(self) -> tuple[str, ...]:
        return self._op.schema.names

    def _new(self: D, op: O.Op, lineage: Lineage | None = None) -> D:
        return type(self)(op, lineage)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.schema}>"

    def __iter__(self) -> Any:
        raise TypeError("a Dataset is lazy and has no rows to iterate; collect() it first")

    def __getattr__(self, name: str) -> Column:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._op.schema:
            return self[name]
        raise UnknownColumnError(f"{type(self).__name__} has no method or column {name!r}"
                                 f"{suggest(name, self._op.schema.names)} (columns: {', '.join(self.columns)})")

    def __getitem__(self, name: str) -> Column:
        return self.row()[name]

    def row(self) -> Row:
        """The row proxy lambdas receive."""
        return Row(self._op.schema, id(self._op), (self._op,))

    def to_workflow(self, name: str = "workflow") -> Workflow:
        """The IR workflow whose 'result' output is this dataset."""
        return Workflow((O.Sink(self._op, "result"),), name)

    # --- expressions --------------------------------------------------------
    def _bind(self, n: E.Expr) -> E.Expr:
        if not isinstance(n, Ref):
            return n
        if n.origin not in self._lineage:
            raise LinqError(f"column {n.name!r} belongs to a dataset that is not an input of this one; "
                            f"use col({n.name!r}) to refer to a column by name")
        mapping = self._lineage[n.origin]
        if mapping is None:
            raise LinqError(f"column {n.name!r} is ambiguous: its dataset was joined with itself; "
                            f"use col() with the joined names ({', '.join(self.columns)})")
        if n.name not in mapping:
            raise LinqError(f"column {n.name!r} did not survive to this dataset (dropped, renamed or "
                            f"aggregated away); its columns are {', '.join(self.columns)}")
        return E.Col(mapping[n.name])

    def expr(self, value: Any, where: str, allow_aggregates: bool = False) -> E.Expr:
        """A ColumnLike (or a lambda returning one) as an IR expression over
        this dataset's columns, type-checked."""
        if callable(value) and not isinstance(value, Column):
            value = call_user(value, [self.row()], where)
            if not isinstance(value, (Column, int, float, str, bool)) and value is not None:
                raise LinqError(f"{where}: the function returned {type(value).__name__}, "
                                "not a column expression")
        if isinstance(value, SortOrder):
            raise LinqError(f"{where}: {value!r} is a sort order; use it in order_by()")
        e = E.transform(to_column(value).expr, self._bind)
        for n in e.walk():
            if isinstance(n, E.Col) and n.name not in self._op.schema:
                raise LinqError(f"{where}: unknown column {n.name!r}{suggest(n.name, self.columns)} "
                                f"(columns: {', '.join(self.columns)})")
        if has_window(e) and where not in ("select()", "with_columns()"):
            raise LinqError(f"{where}: a window function ({display(e)}) is computed by select() or "
                            "with_columns(); add it as a column there and use that column here")
        if not allow_aggregates and has_aggregate(e):
            raise LinqError(f"{where}: aggregate ({display(e)}) outside agg(); use "
                            "group_by(...).agg(...) or agg(...)")
        e = coerce_literals(e, self._op.schema)
        if not allow_aggregates:
            e.type_in(self._op.schema)
        return e

    def _named(self, items: Iterable[Any], named: Mapping[str, Any], where: str) -> list[tuple[str, E.Expr]]:
        """Output (name, expression) pairs of select-like calls."""
        out: list[tuple[str, E.Expr]] = []
        for item in items:
            if isinstance(item, str):
                out.append((item, self.expr(col(item), where)))
                continue
            if callable(item) and not isinstance(item, Column):
                item = call_user(item, [self.row()], where)
            if not isinstance(item, Column):
                raise LinqError(f"{where}: expected a column name or a column expression, got {item!r}")
            name = item.output_name
            if name is None:
                raise LinqError(f"{where}: the expression ({display(item.expr)}) needs a name: "
                                f"use .alias('name') or a keyword argument name=...")
            out.append((name, self.expr(item, where)))
        for name, value in named.items():
            out.append((name, self.expr(value, where)))
        seen: set[str] = set()
        for name, _ in out:
            if name in seen:
                raise LinqError(f"{where}: column {name!r} is produced twice")
            seen.add(name)
        return out

    def _project(self: D, exprs: list[tuple[str, E.Expr]]) -> D:
        if any(has_window(e) for _, e in exprs):  # Window operators first, then the projection over them
            op, exprs = lift_windows(self._op, exprs)
            rename: dict[str, str] = {}
            for name, e in exprs:
                if isinstance(e, E.Col):
                    rename.setdefault(e.name, name)
            return self._new(O.Project(op, tuple(exprs)), self.lineage_through(rename))
        if [n for n, _ in exprs] == list(self.columns) and all(
                isinstance(e, E.Col) and e.name == n for n, e in exprs):
            return self
        rename = {}
        for name, e in exprs:
            if isinstance(e, E.Col):
                rename.setdefault(e.name, name)
        return self._new(O.Project(self._op, tuple(exprs)), self.lineage_through(rename))

    def lineage_through(self, rename: Mapping[str, str]) -> Lineage:
        """This dataset's lineage after its columns are renamed (or dropped,
        when absent from `rename`)."""
        out: Lineage = {}
        for origin, mapping in self._lineage.items():
            out[origin] = None if mapping is None else {a: rename[p] for a, p in mapping.items() if p in rename}
        return out

    # --- row operations -------------------------------------------------------
    @located
    def where(self: D, *predicates: Any) -> D:
        """Rows for which every predicate is TRUE (NULL counts as false)."""
        if not predicates:
            raise LinqError("where() needs a predicate")
        parts = [self.expr(p, "where()") for p in predicates]
        pred = E.conjoin(parts)
        assert pred is not None
        return self._new(O.Filter(self._op, pred), self._lineage)

    filter = where

    @located
    def select(self: D, *columns: Any, **named: Any) -> D:
        """Exactly these columns, in this order: names, named expressions
        (`.alias()` or keywords), or lambdas returning them."""
        exprs = self._named(columns, named, "select()")
        if not exprs:
            raise LinqError("select() needs at least one column")
        return self._project(exprs)

    @located
    def with_columns(self: D, *columns: Any, **named: Any) -> D:
        """All columns, with these added (at the end) or replaced (in place)."""
        new = dict(self._named(columns, named, "with_columns()"))
        exprs = [(n, new.pop(n, E.Col(n))) for n in self.columns]
        return self._project(exprs + list(new.items()))

    @located
    def rename(self: D, mapping: Mapping[str, str] | None = None, **names: str) -> D:
        """Rename columns: rename({'old': 'new'}) or rename(old='new')."""
        changes = {**(mapping or {}), **names}
        for old in changes:
            if old not in self.schema:
                raise LinqError(f"rename(): unknown column {old!r}{suggest(old, self.columns)}")
        return self._project([(changes.get(n, n), E.Col(n)) for n in self.columns])

    @located
    def drop(self: D, *names: str) -> D:
        for n in names:
            if n not in self.schema:
                raise LinqError(f"drop(): unknown column {n!r}{suggest(n, self.columns)}")
        kept = [(n, E.Col(n)) for n in self.columns if n not in names]
        if not kept:
            raise LinqError("drop(): that would drop every column")
        return self._project(kept)

    @located
    def order_by(self: D, *keys: Any) -> D:
        """Sort by names, column expressions or `col.desc()` orders (NULLs last)."""
        if not keys:
            raise LinqError("order_by() needs at least one key")
        sort_keys: list[O.SortKey] = []
        hidden: list[tuple[str, E.Expr]] = []
        for key in keys:
            if callable(key) and not isinstance(key, (Column, SortOrder)):
                key = call_user(key, [self.row()], "order_by()")
            order = key if isinstance(key, SortOrder) else SortOrder(col_of(key))
            e = self.expr(order.column, "order_by()")
            if isinstance(e, E.Col):
                name = e.name
            else:
                name = fresh_name(f"__order_{len(hidden)}", set(self.columns))
                hidden.append((name, e))
            sort_keys.append(O.SortKey(name, order.ascending, order.nulls_first))
        op: O.Op = self._op
        if hidden:
            op = O.Project(op, tuple((n, E.Col(n)) for n in self.columns) + tuple(hidden))
        op = O.Sort(op, tuple(sort_keys))
        if hidden:
            op = O.Project(op, tuple((n, E.Col(n)) for n in self.columns))
        return self._new(op, self._lineage)

    sort = order_by

    @located
    def limit(self: D, n: int, offset: int = 0) -> D:
        for what, v in (("limit", n), ("offset", offset)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise LinqError(f"{what} must be a whole number >= 0, got {v!r}")
        return self._new(O.Limit(self._op, n, offset), self._lineage)

    @located
    def distinct(self: D) -> D:
        return self._new(O.Distinct(self._op), self._lineage)

    # --- set operations ---------------------------------------------------------
    def _conform(self, other: "Dataset", what: str) -> O.Op:
        """`other`'s operator with its columns in this dataset's order (set
        operations match columns by name, not by position)."""
        if not isinstance(other, Dataset):
            raise LinqError(f"{what}() needs a Dataset, got {type(other).__name__}")
        mine, theirs = list(self.columns), list(other.columns)
        if set(mine) != set(theirs) or len(mine) != len(theirs):
            only_me = [n for n in mine if n not in theirs]
            only_them = [n for n in theirs if n not in mine]
            raise LinqError(f"{what}(): the datasets have different columns (only left: {only_me or '-'}; "
                            f"only right: {only_them or '-'}); select/rename them to match")
        if mine == theirs:
            return other.op
        return O.Project(other.op, tuple((n, E.Col(n)) for n in mine))

    @located
    def union(self: D, *others: "Dataset", all: bool = False) -> D:  # noqa: A002 - SQL's UNION ALL
        """Rows of both (columns matched by name); duplicates removed unless all=True."""
        op = self._op
        for other in others:
            op = O.Union(op, self._conform(other, "union"), distinct=not all)
        return self._new(op)

    @located
    def intersect(self: D, other: "Dataset") -> D:
        return self._new(O.Intersect(self._op, self._conform(other, "intersect")))

    @located
    def except_(self: D, other: "Dataset") -> D:
        return self._new(O.Except(self._op, self._conform(other, "except_")))

    # --- joins and aggregation (see joins.py, grouping.py) -------------------------
    @located
    def join(self: D, other: "Dataset", on: Any = None, *, how: str = "inner",
             left_on: Any = None, right_on: Any = None,
             suffixes: tuple[str, str] | None = None) -> D:
        """Join with `other`.

        `on`: a column name or list of names present on both sides (one
        output column each, as SQL USING), (left, right) name pairs, a
        predicate over both datasets' columns, or `lambda l, r: ...`.
        `how`: inner, left, right, full, semi, anti or cross. Other columns
        named alike on both sides need `suffixes=('', '_r')` (or a rename).
        """
        from musketeer.frontends.linq.joins import lower_join

        op, lineage = lower_join(self, other, on, how, left_on, right_on, suffixes)
        return self._new(op, lineage)

    @located
    def group_by(self, *keys: Any, **named_keys: Any) -> "GroupBy":
        """Groups by key columns or named key expressions; finish with .agg()."""
        from musketeer.frontends.linq.grouping import GroupBy

        return GroupBy(self, self._named(keys, named_keys, "group_by()"))

    @located
    def agg(self: D, *aggregates: Any, **named: Any) -> D:
        """One row of aggregates over the whole dataset."""
        from musketeer.frontends.linq.grouping import GroupBy

        return GroupBy(self, []).agg(*aggregates, **named)

    # --- iteration and user code ------------------------------------------------------
    @located
    def iterate(self: D, body: Callable[..., Any], *, until: Any = None, max_iter: int | None = None,
                fixpoint: bool = False, carry: Sequence["Dataset"] = (), name: str = "loop") -> D:
        """Repeat `body` (Dataset -> Dataset) on this dataset until a stop rule holds.

        `until(old, new)` returns a boolean dataset (stop when all its rows
        are TRUE) or a boolean column expression over one dataset (e.g.
        `new.delta.max() < 1e-6`); `until="fixpoint"` or `fixpoint=True`
        stops when nothing changed; `max_iter` caps the iterations (a loop
        that hits it without its rule holding warns and reports
        `converged: False` in the run's metrics). With `carry`, the body
        takes and returns a tuple (this dataset first, then the carried
        ones) and `until` receives tuples; the result is this dataset's value.
        `name` labels the loop in plans and in the run's metrics.
        """
        from musketeer.frontends.linq.loops import lower_iterate

        return self._new(lower_iterate(self, body, until, max_iter, fixpoint, tuple(carry), name))

    @located
    def apply(self: D, fn: Callable[..., Any], schema: Any = None, mode: str = "row") -> D:
        """Run an opaque Python function: per row (dict -> dict, or None to
        drop the row) or per partition (pandas DataFrame -> DataFrame).

        `fn` must be a module-level function: the generated program imports
        it by `module:qualname`. `schema` ({name: type}) is its output's
        schema; None means "same as the input".
        """
        if mode not in ("row", "partition"):
            raise LinqError(f"apply(): mode must be 'row' or 'partition', not {mode!r}")
        module, qualname = udf_target(fn)
        out_schema = self.schema if schema is None else to_schema(schema)
        return self._new(O.UDF(self._op, module, qualname, mode, out_schema))


def col_of(value: Any) -> Column:
    """A name as a column (order_by("x")); anything else as a column expression."""
    return col(value) if isinstance(value, str) else to_column(value)


def fresh_name(base: str, taken: set[str]) -> str:
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def udf_target(fn: Callable[..., Any]) -> tuple[str, str]:
    """(module, qualname) under which the generated program can import `fn`,
    or a LinqError saying why it cannot."""
    import sys

    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not callable(fn) or module is None or qualname is None:
        raise LinqError(f"apply() needs a function, got {type(fn).__name__}")
    if "<lambda>" in qualname or "<locals>" in qualname:
        kind = "a lambda" if "<lambda>" in qualname else "a function defined inside another function"
        raise LinqError(f"apply() needs a module-level function (def at the top level of a module), not {kind} "
                        f"({qualname}): the generated program imports it as module:qualname")
    target: Any = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if target is not fn:
        raise LinqError(f"apply(): {module}:{qualname} does not name this function (define it at module level "
                        "under its own name so the generated program can import it)")
    return module, qualname


def from_table(table: Table, cls: type[D] = Dataset) -> D:  # type: ignore[assignment]
    """A dataset (of class `cls`) reading every column of a catalog table."""
    cols = tuple(O.ScanColumn(f.name, f.name, f.dtype) for f in table.schema)
    return cls(O.Scan(table.name, table.path, table.format, cols))


@located
def read(path: str, *, loader: Callable[[str], Table] | None = None,
         cls: type[D] = Dataset) -> D:  # type: ignore[assignment]
    """A dataset reading a parquet or CSV file. `loader` reads the file's
    schema (file I/O is the glue's business: `musketeer.read` passes one)."""
    if loader is None:
        raise LinqError("musketeer.frontends.linq.read() needs a loader(path) -> ir.Table; use musketeer.read(path)")
    return from_table(loader(path), cls)
