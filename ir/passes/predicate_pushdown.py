"""Predicate pushdown: filter rows as early as possible.

Why: a condition applied at a Scan shrinks every operator above it (and lets
parquet readers skip row groups); an equality between the two sides of a
cross join turns a quadratic product into a hash join. Frontends lower
`FROM a, b, c WHERE ...` as one Filter over cross joins, so this pass is what
makes TPC-H-style queries run at all.

Filters are split into conjuncts and each conjunct travels down on its own:

- stacked Filters merge; Sort and Distinct let every conjunct through;
- Project: a conjunct goes below when every column it reads is computed by a
  cheap deterministic expression (column, literal, arithmetic, cast), which is
  substituted for the column;
- Aggregate: only conjuncts over group keys, and never below a global
  aggregate (no keys: it yields one row even when its input is empty);
- Window: only conjuncts over partition keys (a filter on anything else
  would change the rows a window function sees);
- Union/Intersect/Except: into both sides, the right side's columns renamed
  positionally;
- Join (inner/cross): left-only conjuncts go left, right-only go right,
  `l = r` across the sides become equi-join keys, anything else the join's
  residual (a cross join with a condition becomes an inner join). Conjuncts
  already in an inner join's residual are treated the same way, and a
  disjunction over both sides also sends each side the disjunction of its own
  single-side parts, an implied (weaker) filter (TPC-H Q7, Q19);
- Join (outer): a conjunct that rejects the NULL-padded rows of a side (say
  `b.x < 5` over `a LEFT JOIN b`) makes the join less outer (here inner)
  first. Then only into the preserved side - left-only conjuncts of a left
  join go left, the rest stay above; right-only residual (ON) conjuncts of a
  left join may filter the right input (unmatched left rows are kept either
  way); symmetric for right joins; nothing for full joins;
- Join (semi/anti): conjuncts from above read only left columns and go left;
  right-only residual conjuncts filter the right input; left-only residual
  conjuncts of a semi join filter the left input. A null-aware anti join
  (NOT IN) keeps its condition untouched.

Never through Limit, UDF or While, and never below a node with several
consumers (that would change what the other consumers see): conjuncts stop
above such nodes.

Example (a cross join of three scans):

    before:
      %3 = Join(cross, %0, %1)      # customer x orders
      %4 = Join(cross, %3, %2)      # ... x lineitem
      %5 = Filter(%4, c_custkey = o_custkey AND l_orderkey = o_orderkey
                      AND c_mktsegment = 'BUILDING')
    after:
      %1 = Filter(%0, c_mktsegment = 'BUILDING')
      %3 = Join(inner, %1, %2, on c_custkey = o_custkey)
      %5 = Join(inner, %3, %4, on o_orderkey = l_orderkey)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.expr import Expr
from musketeer.ir.passes.fold import fold_predicate
from musketeer.ir.passes.join_predicates import JoinPlan
from musketeer.ir.passes.rewrite import consumer_counts, unique, with_filter
from musketeer.ir.schema import Schema
from musketeer.ir.types import IRError
from musketeer.ir.workflow import Workflow


def predicate_pushdown(workflow: Workflow) -> Workflow:
    """Move Filter conjuncts as close to the Scans as is correct.

    Two sweeps, no recursion (plans can be deep): users before inputs, each
    operator decides which of the conjuncts arriving from its (single)
    consumer it keeps above itself and which it sends to each input; then
    inputs before users, the DAG is rebuilt from those decisions. A shared
    node receives nothing: conjuncts meant for it become a Filter on the
    consumer's edge, so each consumer keeps its own rows.
    """
    counts = consumer_counts(workflow)
    shared = lambda op: counts.get(id(op), 0) > 1  # noqa: E731
    ops = workflow.ops()
    arriving: dict[int, list[Expr]] = {}
    steps: dict[int, _Step] = {}
    for op in reversed(ops):  # users before inputs
        step = _step(op, [] if shared(op) else unique(arriving.pop(id(op), [])))
        steps[id(op)] = step
        for inp, preds in zip(op.inputs, step.down):
            if not shared(inp):
                arriving[id(inp)] = preds
    new: dict[int, O.Op] = {}
    for op in ops:  # inputs before users
        step = steps[id(op)]
        inputs = tuple(
            with_filter(new[id(i)], preds) if shared(i) else new[id(i)]
            for i, preds in zip(op.inputs, step.down)
        )
        new[id(op)] = with_filter(step.build(inputs), step.above)
    return Workflow(tuple(new[id(s)] for s in workflow.sinks), workflow.name)  # type: ignore[misc]


_CHEAP = (E.Col, E.Lit, E.Arith, E.Neg, E.Cast)


def _cheap(e: Expr) -> bool:
    """Deterministic and cheap enough to evaluate twice."""
    return all(isinstance(n, _CHEAP) for n in e.walk())


@dataclass
class _Step:
    """One operator's decision: conjuncts kept `above` it, conjuncts sent to
    each input (`down`, one list per input), and how to rebuild it over its
    rewritten inputs."""

    above: list[Expr]
    down: list[list[Expr]]
    build: Callable[[tuple[O.Op, ...]], O.Op]


def _step(op: O.Op, preds: list[Expr]) -> _Step:
    """Where the conjuncts `preds` (over op's output) go, for one operator."""
    if isinstance(op, O.Filter):
        return _Step([], [E.conjuncts(op.predicate) + preds], lambda ins: ins[0])
    if isinstance(op, (O.Sort, O.Distinct)):
        return _Step([], [preds], lambda ins: op.with_inputs(*ins))
    if isinstance(op, O.Project):
        return _project(op, preds)
    if isinstance(op, O.Aggregate):
        return _aggregate(op, preds)
    if isinstance(op, (O.Union, O.Intersect, O.Except)):
        return _set_op(op, preds)
    if isinstance(op, O.Join):
        return _join(op, preds)
    if isinstance(op, O.Window):
        return _window(op, preds)
    # Scan, Limit, UDF, While, Sink, LoopVar: a barrier.
    return _Step(preds, [[] for _ in op.inputs], lambda ins: op.with_inputs(*ins))


def _project(op: O.Project, preds: list[Expr]) -> _Step:
    mapping = dict(op.exprs)
    down, up = [], []
    for p in preds:
        cols = p.columns()
        if all(mapping[c] == E.Col(c) for c in cols):
            down.append(p)  # only pass-through columns: nothing to substitute
        elif all(_cheap(mapping[c]) for c in cols):
            q = fold_predicate(E.substitute(p, mapping), op.input.schema)
            if q is not None:
                down.append(q)
        else:
            up.append(p)
    return _Step(up, [down], lambda ins: op.with_inputs(*ins))


def _aggregate(op: O.Aggregate, preds: list[Expr]) -> _Step:
    keys = set(op.keys)
    if keys:
        down = [p for p in preds if p.columns() <= keys]
    else:
        down = []  # a global aggregate yields one row even over no input
    up = [p for p in preds if p not in down]
    return _Step(up, [down], lambda ins: op.with_inputs(*ins))


def _window(op: O.Window, preds: list[Expr]) -> _Step:
    """Only conjuncts over partition keys: they keep or drop whole
    partitions, so every remaining row sees the same neighbours."""
    keys = set(op.partition_by)
    down = [p for p in preds if keys and p.columns() <= keys]
    up = [p for p in preds if not any(p is d for d in down)]
    return _Step(up, [down], lambda ins: op.with_inputs(*ins))


def _set_op(op: O.Op, preds: list[Expr]) -> _Step:
    left, right = op.inputs
    rename = dict(zip(op.schema.names, right.schema.names))
    down, up = [], []
    for p in preds:
        q = E.rename_columns(p, rename)
        if _types_ok(p, left.schema) and _types_ok(q, right.schema):
            down.append((p, q))
        else:
            up.append(p)
    return _Step(up, [[p for p, _ in down], [q for _, q in down]], lambda ins: op.with_inputs(*ins))


def _join(op: O.Join, preds: list[Expr]) -> _Step:
    if op.null_aware:  # NOT IN: leave the condition alone; filters above read left only
        return _Step([], [preds, []], lambda ins: op.with_inputs(*ins))
    plan = JoinPlan.build(op, preds)

    def build(ins: tuple[O.Op, ...]) -> O.Op:
        return O.Join(ins[0], ins[1], plan.kind, tuple(k for k, _ in plan.keys),
                      tuple(k for _, k in plan.keys), E.conjoin(plan.residual), op.null_aware)

    return _Step(plan.above, [plan.left, plan.right], build)


def _types_ok(e: Expr, schema: Schema) -> bool:
    try:
        return e.type_in(schema).kind in ("bool", "null")
    except IRError:
        return False
