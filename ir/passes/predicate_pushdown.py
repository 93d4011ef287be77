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

from dataclasses import dataclass, field
from typing import Callable

from ir import expr as E
from ir import operators as O
from ir.expr import Expr
from ir.passes.fold import fold_expr, fold_predicate
from ir.passes.rewrite import consumer_counts, unique, with_filter
from ir.schema import Schema
from ir.types import IRError
from ir.workflow import Workflow


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
    plan = _JoinPlan.build(op, preds)

    def build(ins: tuple[O.Op, ...]) -> O.Op:
        return O.Join(ins[0], ins[1], plan.kind, tuple(k for k, _ in plan.keys),
                      tuple(k for _, k in plan.keys), E.conjoin(plan.residual), op.null_aware)

    return _Step(plan.above, [plan.left, plan.right], build)


def _simplify_outer(kind: str, preds: list[Expr], left: frozenset[str], right: frozenset[str]) -> str:
    """An outer join under a filter that rejects its NULL-padded rows is a
    less outer join: `a LEFT JOIN b ... WHERE b.x < 5` drops every row whose
    b side is NULL, so it equals the inner join (TPC-H Q2, Q17 and Q20 lower
    scalar subqueries to such left joins)."""
    if kind not in ("left", "right", "full"):
        return kind
    rejects_right = any(_rejects_nulls(p, right) for p in preds)
    rejects_left = any(_rejects_nulls(p, left) for p in preds)
    keep_left = kind in ("left", "full") and not rejects_right
    keep_right = kind in ("right", "full") and not rejects_left
    return {(True, True): "full", (True, False): "left", (False, True): "right"}.get(
        (keep_left, keep_right), "inner")


def _rejects_nulls(p: Expr, cols: frozenset[str]) -> bool:
    """True when `p` is certainly not TRUE once all of `cols` are NULL."""
    if isinstance(p, E.Compare):
        return _strict(p.left, cols) or _strict(p.right, cols)
    if isinstance(p, (E.Like, E.InList)) or (isinstance(p, E.IsNull) and p.negated):
        return _strict(p.arg, cols)
    if isinstance(p, E.And):
        return any(_rejects_nulls(a, cols) for a in p.args)
    if isinstance(p, E.Or):
        return all(_rejects_nulls(a, cols) for a in p.args)
    return False


def _strict(e: Expr, cols: frozenset[str]) -> bool:
    """True when `e` is certainly NULL once all of `cols` are NULL."""
    if isinstance(e, E.Col):
        return e.name in cols
    if isinstance(e, E.Arith):
        return _strict(e.left, cols) or _strict(e.right, cols)
    if isinstance(e, (E.Neg, E.Cast)):
        return _strict(e.arg, cols)
    if isinstance(e, E.Extract):
        return _strict(e.arg, cols)
    return False


def _types_ok(e: Expr, schema: Schema) -> bool:
    try:
        return e.type_in(schema).kind in ("bool", "null")
    except IRError:
        return False


@dataclass
class _JoinPlan:
    """Where each conjunct of a join's filter and residual ends up."""

    kind: str
    left_schema: Schema
    right_schema: Schema
    keys: list[tuple[str, str]]
    left: list[Expr] = field(default_factory=list)
    right: list[Expr] = field(default_factory=list)
    residual: list[Expr] = field(default_factory=list)
    above: list[Expr] = field(default_factory=list)

    @classmethod
    def build(cls, op: O.Join, preds: list[Expr]) -> "_JoinPlan":
        plan = cls(op.kind, op.left.schema, op.right.schema, list(zip(op.left_keys, op.right_keys)))
        plan.kind = _simplify_outer(op.kind, preds, plan.left_names, plan.right_names)
        for p in preds:
            plan.place_from_above(p)
        for c in E.conjuncts(op.residual):
            plan.place_from_residual(c)
        if plan.residual:
            both = op.left.schema.concat(op.right.schema)
            plan.residual = E.conjuncts(fold_predicate(E.conjoin(unique(plan.residual)), both))  # type: ignore[arg-type]
        if plan.kind == "cross" and (plan.keys or plan.residual):
            plan.kind = "inner"
        elif plan.kind == "inner" and not (plan.keys or plan.residual):
            plan.kind = "cross"
        return plan

    @property
    def left_names(self) -> frozenset[str]:
        return frozenset(self.left_schema.names)

    @property
    def right_names(self) -> frozenset[str]:
        return frozenset(self.right_schema.names)

    def side(self, e: Expr) -> str:
        cols = e.columns()
        if not cols:
            return "none"
        if cols <= self.left_names:
            return "left"
        if cols <= self.right_names:
            return "right"
        return "both"

    def place_from_above(self, p: Expr) -> None:
        """A conjunct of a Filter over the join's output."""
        side = self.side(p)
        kind = self.kind
        if kind in ("inner", "cross"):
            self.place_inner(p, side)
        elif kind in ("left", "semi", "anti") and side in ("left", "none"):
            self.left.append(p)  # the preserved side; semi/anti output only left columns
        elif kind == "right" and side in ("right", "none"):
            self.right.append(p)
        else:
            self.above.append(p)

    def place_from_residual(self, p: Expr) -> None:
        """A conjunct of the join's own condition (its ON clause)."""
        side = self.side(p)
        kind = self.kind
        if kind in ("inner", "cross"):
            self.place_inner(p, side)
        elif side == "right" and kind in ("left", "semi", "anti"):
            self.right.append(p)
        elif side == "left" and kind in ("right", "semi"):
            self.left.append(p)
        elif side == "both" and self.add_key(p):
            pass
        else:
            self.residual.append(p)

    def place_inner(self, p: Expr, side: str) -> None:
        if side in ("left", "none"):
            self.left.append(p)
        elif side == "right":
            self.right.append(p)
        elif not self.add_key(p):
            self.residual.append(p)
            self.add_implied(p)

    def add_key(self, p: Expr) -> bool:
        """`l = r` with one column from each side and equal types -> equi key.

        Types of one kind only: engines hash-join int64 with int64, but an
        int64 key against a float64 one (or a date against a timestamp) may
        silently match nothing, so such conjuncts stay in the residual."""
        if not (isinstance(p, E.Compare) and p.op == "=" and isinstance(p.left, E.Col)
                and isinstance(p.right, E.Col)):
            return False
        a, b = p.left.name, p.right.name
        if a in self.right_names and b in self.left_names:
            a, b = b, a
        if not (a in self.left_names and b in self.right_names):
            return False
        kind = self.left_schema.dtype(a).kind
        if kind == "null" or kind != self.right_schema.dtype(b).kind:
            return False
        if (a, b) not in self.keys:
            self.keys.append((a, b))
        return True

    def add_implied(self, p: Expr) -> None:
        """From `(l1 AND r1) OR (l2 AND r2)` also push `l1 OR l2` left and
        `r1 OR r2` right: implied by p, so filtering early changes nothing."""
        if not isinstance(p, E.Or):
            return
        sides = ((self.left_schema, self.left), (self.right_schema, self.right))
        for schema, target in sides:
            names = set(schema.names)
            parts = []
            for branch in p.args:
                mine = [c for c in E.conjuncts(branch) if c.columns() and c.columns() <= names]
                if not mine:
                    break
                parts.append(E.conjoin(mine))
            else:
                # folded (common parts factored out) so a second run derives
                # exactly the same conjuncts and they deduplicate
                implied = fold_expr(E.Or(tuple(parts)), schema)  # type: ignore[arg-type]
                target.extend(E.conjuncts(implied))
