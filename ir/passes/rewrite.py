"""Shared plumbing for passes: DAG-preserving rebuilds and small helpers.

A workflow is a DAG: a node read by two consumers (a CTE used twice, a
loop-invariant relation) is one object, compared by identity. A rewrite must
rebuild such a node once and hand the *same* new object to every consumer,
or the backend would compute it twice (and the text form would grow). The
helpers here keep that invariant so each pass only says what to do with one
operator at a time.

While bodies are opaque to passes: `Workflow.ops()` and `walk` stop at a
While's inputs (initial values and loop-invariant free inputs), and
`While.with_inputs` re-points the body at rebuilt invariant nodes.
"""

from __future__ import annotations

from typing import Callable, Iterable

from musketeer.ir import operators as O
from musketeer.ir.expr import Expr, conjoin
from musketeer.ir.workflow import Workflow


def rebuild(workflow: Workflow, fn: Callable[[O.Op], O.Op]) -> Workflow:
    """Bottom-up rewrite of every top-level operator, sharing preserved.

    `fn` receives each operator already rebuilt over its rewritten inputs
    (inputs before users, each node exactly once) and returns its
    replacement; for a Sink it must return a Sink.
    """
    return rebuild_with(workflow, lambda op, inputs: fn(op.with_inputs(*inputs)))


def rebuild_with(workflow: Workflow, fn: Callable[[O.Op, tuple[O.Op, ...]], O.Op]) -> Workflow:
    """Like `rebuild`, but `fn(op, new_inputs)` gets the original operator and
    its rewritten inputs, for rewrites whose new inputs no longer fit the old
    operator (projection pruning narrows an input before its user)."""
    memo: dict[int, O.Op] = {}
    for op in workflow.ops():
        memo[id(op)] = fn(op, tuple(memo[id(i)] for i in op.inputs))
    sinks = []
    for s in workflow.sinks:
        new_sink = memo[id(s)]
        assert isinstance(new_sink, O.Sink), "a pass must rebuild a Sink as a Sink"
        sinks.append(new_sink)
    return Workflow(tuple(sinks), workflow.name)


def consumer_counts(workflow: Workflow) -> dict[int, int]:
    """id(op) -> number of input edges pointing at it (a self-join counts 2).

    A node with more than one consumer is shared: rewriting it for the
    benefit of one consumer would change what the others see.
    """
    counts: dict[int, int] = {}
    for op in workflow.ops():
        counts.setdefault(id(op), 0)
        for i in op.inputs:
            counts[id(i)] = counts.get(id(i), 0) + 1
    return counts


def unique(items: Iterable[Expr]) -> list[Expr]:
    """Drop repeated expressions (structural equality), keeping first order."""
    out: list[Expr] = []
    seen: set[Expr] = set()
    for e in items:
        try:
            if e in seen:
                continue
            seen.add(e)
        except TypeError:  # an unhashable literal value: compare the slow way
            if e in out:
                continue
        out.append(e)
    return out


def with_filter(op: O.Op, preds: list[Expr]) -> O.Op:
    """`op` under a Filter of the conjunction of `preds` (op itself if none)."""
    pred = conjoin(unique(preds))
    return op if pred is None else O.Filter(op, pred)
