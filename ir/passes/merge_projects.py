"""Merge a Project over a Project into one, by substitution.

Why: lowering and pruning leave chains of Projects (select list over
computed columns over renames); each is a full pass over the rows in an
eager engine such as pandas. Substituting the inner expressions into the
outer ones computes the same values in one step.

It is done only when it does not duplicate work: an inner expression that is
more than a column or a literal may be used at most once by the outer
Project, and the inner Project must have no other consumer (it would then be
computed anyway). Merged expressions deeper than MAX_DEPTH are not built:
a chain of hundreds of `x := x + 1` Projects stays a chain.

Example:

    before:
      %1 = Project(%0, [a, t := b * 2])
      %2 = Project(%1, [a, u := t + 1])
    after:
      %2 = Project(%0, [a, u := b * 2 + 1])
"""

from __future__ import annotations

from collections import Counter

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.passes.fold import fold_expr
from musketeer.ir.passes.rewrite import consumer_counts, rebuild_with
from musketeer.ir.workflow import Workflow


def merge_projects(workflow: Workflow) -> Workflow:
    """Collapse Project(Project(x)) into Project(x) when that is not costlier."""
    counts = consumer_counts(workflow)
    return rebuild_with(workflow, lambda op, inputs: _merge(op, inputs, counts))


def _merge(op: O.Op, inputs: tuple[O.Op, ...], counts: dict[int, int]) -> O.Op:
    new = op.with_inputs(*inputs)
    if not (isinstance(new, O.Project) and isinstance(new.input, O.Project)):
        return new
    inner = new.input
    # The rebuilt inner node stands for op.input: its sharing is op.input's.
    if counts.get(id(op.inputs[0]), 0) > 1:
        return new
    mapping = dict(inner.exprs)
    uses = Counter(
        n.name for _, e in new.exprs for n in e.walk() if isinstance(n, E.Col)
    )
    for name, count in uses.items():
        if count > 1 and not isinstance(mapping[name], (E.Col, E.Lit)):
            return new
    schema = inner.input.schema
    exprs = tuple((name, fold_expr(E.substitute(e, mapping), schema)) for name, e in new.exprs)
    if any(_depth(e) > MAX_DEPTH for _, e in exprs):
        return new  # expressions are walked recursively everywhere: keep them shallow
    return O.Project(inner.input, exprs)


MAX_DEPTH = 64


def _depth(e: E.Expr) -> int:
    """Nesting depth of an expression, computed without recursion."""
    deepest, stack = 0, [(e, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((ch, d + 1) for ch in node.children())
    return deepest
