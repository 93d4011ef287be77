"""Remove operators that do nothing.

Why: after pruning and merging, a Project may list exactly its input's
columns in order (`SELECT *` over a subquery, a rename that pruning made
moot). It costs a copy in eager engines and a line in `explain`; dropping it
changes no schema, since it is removed only when its output schema equals its
input's (names, types and nullability). A `Filter(TRUE)` is removed by
constant folding.

Example:

    before:
      %0 = Scan(t [a, b]) -> (a: int64, b: int64)
      %1 = Project(%0, [a, b]) -> (a: int64, b: int64)
      %2 = Sink(%1, result)
    after:
      %0 = Scan(t [a, b]) -> (a: int64, b: int64)
      %1 = Sink(%0, result)
"""

from __future__ import annotations

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.passes.rewrite import rebuild
from musketeer.ir.workflow import Workflow


def remove_redundant(workflow: Workflow) -> Workflow:
    """Drop identity Projects."""
    return rebuild(workflow, _drop_identity)


def _drop_identity(op: O.Op) -> O.Op:
    if isinstance(op, O.Project) and _is_identity(op):
        return op.input
    return op


def _is_identity(op: O.Project) -> bool:
    names = op.input.schema.names
    if tuple(n for n, _ in op.exprs) != names:
        return False
    if not all(isinstance(e, E.Col) and e.name == n for n, e in op.exprs):
        return False
    return op.schema == op.input.schema
