"""Projection pruning: read and carry only the columns someone uses.

Why: TPC-H's lineitem has 16 columns and most queries use 4-7 of them; a
parquet reader that is asked for fewer columns skips their bytes entirely,
and every join and shuffle above moves narrower rows.

Top-down from the Sinks, each operator learns which of its output columns its
consumers need (the union over all consumers of a shared node), and from that
which input columns it needs itself. Then the DAG is rebuilt bottom-up:

- Scan reads only needed columns; Project drops unneeded expressions;
  Aggregate drops unneeded aggregates (its keys always stay: they define the
  groups);
- Filter additionally needs its predicate's columns, Sort its keys, Join its
  keys and residual's columns; Window drops the calls nobody reads (and
  itself when none is read) and needs its partition and order keys and the
  arguments of the calls it keeps;
- Sink, Distinct, Union/Intersect/Except, While and UDF need every input
  column (their output depends on all of them, or is positional, or is
  opaque);
- a relation never shrinks to zero columns: `count(*)` still needs the
  number of rows, so one column is kept (preferring a narrow non-string one).

A rebuilt operator may still output a few columns nobody needs (a Filter's
predicate columns pass through); consumers select by name, so that is
harmless, and operators that care about exact columns demand all of them.

Example:

    before:
      %0 = Scan(lineitem [l_orderkey, l_quantity, l_comment]) -> (...)
      %1 = Aggregate(%0, by [l_orderkey], [q := sum(l_quantity), n := count(*)])
      %2 = Project(%1, [l_orderkey, q])
    after:
      %0 = Scan(lineitem [l_orderkey, l_quantity])
      %1 = Aggregate(%0, by [l_orderkey], [q := sum(l_quantity)])
      %2 = Project(%1, [l_orderkey, q])
"""

from __future__ import annotations

from musketeer.ir import operators as O
from musketeer.ir.expr import AggCall, Col, Expr
from musketeer.ir.passes.rewrite import rebuild_with
from musketeer.ir.schema import Schema
from musketeer.ir.window import WindowCall
from musketeer.ir.workflow import Workflow


def projection_pruning(workflow: Workflow) -> Workflow:
    """Drop columns no consumer reads, from the Scans up."""
    needed = _needed_columns(workflow)
    return rebuild_with(workflow, lambda op, inputs: _prune(op, inputs, needed.get(id(op), set())))


def _needed_columns(workflow: Workflow) -> dict[int, set[str]]:
    """id(op) -> names of op's output columns that its consumers read."""
    needed: dict[int, set[str]] = {}
    for op in reversed(workflow.ops()):  # users before their inputs
        out = needed.setdefault(id(op), set())
        if isinstance(op, O.Sink):
            out.update(op.schema.names)
        for inp, cols in zip(op.inputs, _input_needs(op, out)):
            needed.setdefault(id(inp), set()).update(cols)
    return needed


def _input_needs(op: O.Op, out: set[str]) -> list[set[str]]:
    """Columns of each input that `op` reads when `out` of its output is needed."""
    if isinstance(op, O.Filter):
        return [out | op.predicate.columns()]
    if isinstance(op, O.Limit):
        return [set(out)]
    if isinstance(op, O.Sort):
        return [out | {k.column for k in op.keys}]
    if isinstance(op, O.Project):
        kept = _kept_exprs(op, out)
        return [set().union(*(e.columns() for _, e in kept))]
    if isinstance(op, O.Aggregate):
        kept_aggs = _kept_aggs(op, out)
        args = {c.arg for _, c in kept_aggs if c.arg is not None}
        args |= {column for _, c in kept_aggs for column, _, _ in c.order}
        return [set(op.keys) | args]
    if isinstance(op, O.Window):
        kept_calls = _kept_calls(op, out)
        args = {c.arg for _, c in kept_calls if c.arg is not None}
        passthrough = out & set(op.input.schema.names)
        if not kept_calls:
            return [passthrough]  # the Window is dropped: only what passes through
        return [passthrough | set(op.partition_by) | {k.column for k in op.order_by} | args]
    if isinstance(op, O.Join):
        residual = op.residual.columns() if op.residual is not None else set()
        left = set(op.left.schema.names)
        right = set(op.right.schema.names)
        return [
            (out & left) | set(op.left_keys) | (residual & left),
            (set() if op.kind in ("semi", "anti") else out & right)
            | set(op.right_keys) | (residual & right),
        ]
    # Sink, Distinct, set operations, While, UDF (and anything new): all columns.
    return [set(i.schema.names) for i in op.inputs]


def _kept_exprs(op: O.Project, out: set[str]) -> tuple[tuple[str, Expr], ...]:
    kept = tuple((n, e) for n, e in op.exprs if n in out)
    if kept:
        return kept
    # Keep one column so the row count survives; a plain column is cheapest.
    plain: list[tuple[str, Expr]] = [(n, e) for n, e in op.exprs if isinstance(e, Col)]
    return ((plain or list(op.exprs))[0],)


def _kept_aggs(op: O.Aggregate, out: set[str]) -> tuple[tuple[str, AggCall], ...]:
    kept = tuple((n, c) for n, c in op.aggs if n in out)
    if kept or op.keys or not op.aggs:
        return kept
    return (op.aggs[0],)  # a global aggregate still yields one row: keep a column


def _kept_calls(op: O.Window, out: set[str]) -> tuple[tuple[str, WindowCall], ...]:
    return tuple((n, c) for n, c in op.calls if n in out)


def _prune(op: O.Op, inputs: tuple[O.Op, ...], out: set[str]) -> O.Op:
    """Rebuild one operator over its pruned `inputs` for output needs `out`."""
    if isinstance(op, O.Scan):
        cols = tuple(c for c in op.columns if c.name in out)
        if not cols:
            cols = (_narrowest(op.schema, op.columns),)
        return op if len(cols) == len(op.columns) else op.replace(columns=cols)
    if isinstance(op, O.Project):
        kept = _kept_exprs(op, out)
        if len(kept) == len(op.exprs) and inputs[0] is op.input:
            return op
        return op.replace(input=inputs[0], exprs=kept)
    if isinstance(op, O.Aggregate):
        aggs = _kept_aggs(op, out)
        if len(aggs) == len(op.aggs) and inputs[0] is op.input:
            return op
        return op.replace(input=inputs[0], aggs=aggs)
    if isinstance(op, O.Window):
        calls = _kept_calls(op, out)
        if not calls:
            return inputs[0]  # no window column is read: the rows pass through unchanged
        if len(calls) == len(op.calls) and inputs[0] is op.input:
            return op
        return op.replace(input=inputs[0], calls=calls)
    return op.with_inputs(*inputs)


_WIDTH = {"bool": 0, "int64": 1, "date": 1, "float64": 1, "decimal": 1, "timestamp": 1}


def _narrowest(schema: Schema, columns: tuple[O.ScanColumn, ...]) -> O.ScanColumn:
    return min(columns, key=lambda c: _WIDTH.get(schema.dtype(c.name).kind, 2))
