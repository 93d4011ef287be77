"""Where each conjunct of a join's filter and ON condition may go.

The join half of predicate pushdown (see `ir.passes.predicate_pushdown` for
the rules and why). Kept apart because this is where correctness is subtle:
outer joins preserve rows of one side, anti joins keep rows that fail their
condition, and an equality only becomes a hash key when both columns have one
type kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.expr import Expr
from musketeer.ir.passes.fold import fold_expr, fold_predicate
from musketeer.ir.passes.rewrite import unique
from musketeer.ir.schema import Schema


@dataclass
class JoinPlan:
    """Where each conjunct of a join's filter and residual ends up."""

    kind: O.JoinKind
    left_schema: Schema
    right_schema: Schema
    keys: list[tuple[str, str]]
    left: list[Expr] = field(default_factory=list)
    right: list[Expr] = field(default_factory=list)
    residual: list[Expr] = field(default_factory=list)
    above: list[Expr] = field(default_factory=list)

    @classmethod
    def build(cls, op: O.Join, preds: list[Expr]) -> "JoinPlan":
        plan = cls(op.kind, op.left.schema, op.right.schema, list(zip(op.left_keys, op.right_keys)))
        plan.kind = simplify_outer(op.kind, preds, plan.left_names, plan.right_names)
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

    @cached_property
    def left_names(self) -> frozenset[str]:
        return frozenset(self.left_schema.names)

    @cached_property
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


def simplify_outer(kind: O.JoinKind, preds: list[Expr], left: frozenset[str], right: frozenset[str]) -> O.JoinKind:
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
    kinds: dict[tuple[bool, bool], O.JoinKind] = {(True, True): "full", (True, False): "left", (False, True): "right"}
    return kinds.get((keep_left, keep_right), "inner")


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
