"""Conclave push-down: move work that distributes over a union of the
parties' inputs below that union, so each party does it in the clear on its
own rows and MPC only combines.

- Filter / Project over UNION ALL -> per branch;
- Aggregate over UNION ALL -> local pre-aggregation per branch + a combining
  Aggregate (SUM of sums, SUM of counts, MIN of mins, MAX of maxes; AVG as
  SUM / COUNT in a Project above). DISTINCT aggregates do not split.

Pure `Workflow -> Workflow`; shared nodes stay shared.
"""

from __future__ import annotations

from musketeer.ir import operators as O
from musketeer.ir.expr import AggCall, Arith, Cast, Col
from musketeer.ir.types import FLOAT64
from musketeer.ir.workflow import Workflow

SPLITTABLE = {"sum", "count", "count_star", "min", "max", "avg"}


def _branches(op: O.Op) -> list[O.Op]:
    """Flatten a tree of UNION ALL into its branches, each renamed to the
    union's column names (positional, as SQL does)."""
    if isinstance(op, O.Union) and not op.distinct:
        out = _branches(op.left) + _branches(op.right)
        names = op.schema.names
        return [b if b.schema.names == names else
                O.Project(b, tuple((n, Col(o)) for n, o in zip(names, b.schema.names))) for b in out]
    return [op]


def _union(branches: list[O.Op]) -> O.Op:
    out = branches[0]
    for b in branches[1:]:
        out = O.Union(out, b, distinct=False)
    return out


def _is_union_all(op: O.Op) -> bool:
    return isinstance(op, O.Union) and not op.distinct


def _split_aggregate(op: O.Aggregate) -> O.Op:
    parts = _branches(op.input)
    partial: list[tuple[str, AggCall]] = []
    combine: list[tuple[str, AggCall]] = []
    final: list[tuple[str, object]] = [(k, Col(k)) for k in op.keys]
    for name, call in op.aggs:
        if call.func in ("sum", "min", "max"):
            partial.append((f"{name}__p", call))
            combine.append((name, AggCall(call.func, f"{name}__p")))
            final.append((name, Col(name)))
        elif call.func in ("count", "count_star"):
            partial.append((f"{name}__p", call))
            combine.append((name, AggCall("sum", f"{name}__p")))
            final.append((name, Col(name)))
        else:  # avg
            partial += [(f"{name}__s", AggCall("sum", call.arg)), (f"{name}__c", AggCall("count", call.arg))]
            combine += [(f"{name}__s", AggCall("sum", f"{name}__s")), (f"{name}__c", AggCall("sum", f"{name}__c"))]
            final.append((name, Arith("/", Cast(Col(f"{name}__s"), FLOAT64), Col(f"{name}__c"))))
    pre = [O.Aggregate(b, op.keys, tuple(partial)) for b in parts]
    comb = O.Aggregate(_union(pre), op.keys, tuple(combine))
    if all(isinstance(e, Col) and e.name == n for n, e in final):
        return comb
    return O.Project(comb, tuple(final))  # type: ignore[arg-type]


def _rewrite(op: O.Op) -> O.Op:
    if isinstance(op, (O.Filter, O.Project)) and _is_union_all(op.input):
        return _union([_rewrite(op.with_inputs(b)) for b in _branches(op.input)])
    if (isinstance(op, O.Aggregate) and _is_union_all(op.input)
            and all(c.func in SPLITTABLE and not c.distinct for _, c in op.aggs)):
        return _split_aggregate(op)
    return op


def push_down(workflow: Workflow) -> Workflow:
    """Rewrite bottom-up until nothing moves (each step moves work strictly
    lower, so this terminates)."""
    memo: dict[int, O.Op] = {}
    for op in workflow.ops():
        new = op.with_inputs(*(memo[id(i)] for i in op.inputs))
        memo[id(op)] = _rewrite(new)
    sinks = [memo[id(s)] for s in workflow.sinks]
    return workflow.replace_sinks(sinks)  # type: ignore[arg-type]
