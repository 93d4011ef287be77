"""Constant folding: evaluate literal-only expressions once, at compile time.

Why: frontends lower SQL as written, so TPC-H's `l_shipdate <= DATE
'1998-12-01' - INTERVAL '90 day'` would make every engine compute the same
date per row, and `x AND TRUE` or `CAST('1995-01-01' AS date)` hide simple
column-vs-literal comparisons from predicate pushdown and from the parquet
readers' row-group filters. Removing `Filter(TRUE)` drops a useless pass over
the data. The rules themselves live in `ir.passes.fold` (expressions) and
`ir.passes.literals` (values); this pass applies them to every expression of
every top-level operator. While bodies are left alone (opaque to passes).

Example:

    before:
      %0 = Scan(lineitem [l_shipdate, l_tax]) -> (l_shipdate: date, l_tax: float64)
      %1 = Filter(%0, l_shipdate <= DATE '1998-12-01' - INTERVAL '90 day' AND TRUE)
      %2 = Project(%1, [t := l_tax + (0.06 - 0.01)])
    after:
      %1 = Filter(%0, l_shipdate <= DATE '1998-09-02')
      %2 = Project(%1, [t := l_tax + 0.05])
"""

from __future__ import annotations

from musketeer.ir import operators as O
from musketeer.ir.passes.fold import fold_expr, fold_predicate
from musketeer.ir.passes.rewrite import rebuild
from musketeer.ir.workflow import Workflow


def constant_folding(workflow: Workflow) -> Workflow:
    """Fold literal arithmetic and boolean logic in Filter, Project and Join."""
    return rebuild(workflow, _fold_op)


def _fold_op(op: O.Op) -> O.Op:
    if isinstance(op, O.Filter):
        pred = fold_predicate(op.predicate, op.input.schema)
        if pred is None:
            return op.input
        return op if pred == op.predicate else O.Filter(op.input, pred)
    if isinstance(op, O.Project):
        schema = op.input.schema
        exprs = tuple((name, fold_expr(e, schema)) for name, e in op.exprs)
        return op if exprs == op.exprs else op.replace(exprs=exprs)
    if isinstance(op, O.Join) and op.residual is not None:
        schema = op.left.schema.concat(op.right.schema)
        residual = fold_predicate(op.residual, schema)
        return op if residual == op.residual else op.replace(residual=residual)
    return op
