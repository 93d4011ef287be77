"""Reorder inner/cross joins so that no cross product is left when avoidable.

Why: SQL's `FROM part, supplier, lineitem, partsupp WHERE p_partkey =
l_partkey AND s_suppkey = l_suppkey ...` (TPC-H Q2, Q8, Q9) lists two tables
that share no condition first. Lowered in FROM order, predicate pushdown
finds no key for `part x supplier` and the engine builds a product of
200,000 x 10,000 rows before any equi-join can help.

A *join region* is a tree of inner/cross joins (and Filters between them)
whose inner nodes have no other consumer. Its leaves are the relations joined
and its conditions (join keys, residuals, Filter conjuncts) are one pool of
conjuncts, since inner joins commute and associate. Equalities `a = b`
between two leaves are the region's edges. If the written order joins two
sub-trees that share no edge while some other order would not, the region is
rebuilt as a left-deep chain of cross joins in a new order - each next leaf
the first one (in FROM order) with an edge to those already joined - under
one Filter holding the whole pool, topped by a Project restoring the
original column order. Predicate pushdown, which runs next, turns the
edges into equi-join keys again. Regions that are already connected in
written order are left exactly as they are.

Example (edges p-l and s-l only):

    before:
      %2 = Join(cross, %0 part, %1 supplier)
      %4 = Join(cross, %2, %3 lineitem)
      %5 = Filter(%4, p_partkey = l_partkey AND s_suppkey = l_suppkey)
    after:
      %2 = Join(cross, %0 part, %1 lineitem)
      %4 = Join(cross, %2, %3 supplier)
      %5 = Filter(%4, p_partkey = l_partkey AND s_suppkey = l_suppkey)
      %6 = Project(%5, [p_..., s_..., l_...])   # the original column order
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.expr import Expr
from musketeer.ir.passes.rewrite import consumer_counts, unique, with_filter
from musketeer.ir.workflow import Workflow


def reorder_joins(workflow: Workflow) -> Workflow:
    """Avoid cross products in inner-join regions by reordering their leaves."""
    counts = consumer_counts(workflow)
    ops = workflow.ops()
    claimed: set[int] = set()
    plans: dict[int, _Region] = {}
    for op in reversed(ops):  # users first: a region is found from its root
        if id(op) in claimed or not _joins_below(op):
            continue
        region = _Region.collect(op, counts)
        claimed.update(region.inner_ids)
        if region.order is not None:
            plans[id(op)] = region
    if not plans:
        return workflow
    new: dict[int, O.Op] = {}
    for op in ops:
        if id(op) in plans:
            new[id(op)] = plans[id(op)].rebuild(op, new)
        else:
            new[id(op)] = op.with_inputs(*(new[id(i)] for i in op.inputs))
    return Workflow(tuple(new[id(s)] for s in workflow.sinks), workflow.name)  # type: ignore[misc]


def _is_inner_join(op: O.Op) -> bool:
    return isinstance(op, O.Join) and op.kind in ("inner", "cross") and not op.null_aware


def _joins_below(op: O.Op) -> bool:
    """An inner/cross join, possibly under a chain of Filters."""
    while isinstance(op, O.Filter):
        op = op.input
    return _is_inner_join(op)


@dataclass
class _Region:
    leaves: list[O.Op] = field(default_factory=list)
    conjuncts: list[Expr] = field(default_factory=list)
    inner_ids: set[int] = field(default_factory=set)
    order: list[int] | None = None  # new leaf order, when it saves a cross product

    @classmethod
    def collect(cls, root: O.Op, counts: dict[int, int]) -> "_Region":
        region = cls()
        splits: list[tuple[int, int, int]] = []  # (start, mid, end) leaf ranges of each join
        ok = region._walk(root, counts, splits)
        if ok:
            region.order = region._better_order(splits)
        return region

    def _walk(self, root: O.Op, counts: dict[int, int], splits: list[tuple[int, int, int]]) -> bool:
        """Collect leaves left to right, the conjunct pool, and each join's
        (start, mid, end) leaf range, without recursion. False when the
        region must stay as written."""
        ok = True
        stack: list[tuple[str, O.Op]] = [("visit", root)]
        ranges: dict[int, list[int]] = {}
        while stack:
            action, op = stack.pop()
            if action == "mid":  # the left side is done
                ranges[id(op)].append(len(self.leaves))
                continue
            if action == "end":  # both sides are done
                start, mid = ranges.pop(id(op))
                splits.append((start, mid, len(self.leaves)))
                continue
            inside = op is root or (counts.get(id(op), 0) <= 1 and _joins_below(op))
            if not inside:
                self.leaves.append(op)
                continue
            self.inner_ids.add(id(op))
            if isinstance(op, O.Filter):
                self.conjuncts.extend(E.conjuncts(op.predicate))
                stack.append(("visit", op.input))
                continue
            assert isinstance(op, O.Join)
            ls, rs = op.left.schema, op.right.schema
            for lk, rk in zip(op.left_keys, op.right_keys):
                if ls.dtype(lk).kind != rs.dtype(rk).kind:
                    ok = False  # would come back as a residual, not a key: leave alone
                self.conjuncts.append(E.Compare("=", E.Col(lk), E.Col(rk)))
            self.conjuncts.extend(E.conjuncts(op.residual))
            ranges[id(op)] = [len(self.leaves)]
            stack += [("end", op), ("visit", op.right), ("mid", op), ("visit", op.left)]
        return ok

    def _edges(self) -> set[tuple[int, int]]:
        owner = {name: n for n, leaf in enumerate(self.leaves) for name in leaf.schema.names}
        edges: set[tuple[int, int]] = set()
        for c in self.conjuncts:
            if isinstance(c, E.Compare) and c.op == "=" and isinstance(c.left, E.Col) \
                    and isinstance(c.right, E.Col):
                a, b = owner.get(c.left.name), owner.get(c.right.name)
                if a is None or b is None or a == b:
                    continue
                ta = self.leaves[a].schema.dtype(c.left.name).kind
                if ta != "null" and ta == self.leaves[b].schema.dtype(c.right.name).kind:
                    edges.add((a, b))
                    edges.add((b, a))
        return edges

    def _better_order(self, splits: list[tuple[int, int, int]]) -> list[int] | None:
        edges = self._edges()
        written = sum(
            1 for start, mid, end in splits
            if not any((i, j) in edges for i in range(start, mid) for j in range(mid, end))
        )
        order = [0]
        rest = list(range(1, len(self.leaves)))
        crosses = 0
        while rest:
            nxt = next((j for j in rest if any((i, j) in edges for i in order)), None)
            if nxt is None:
                nxt, crosses = rest[0], crosses + 1
            order.append(nxt)
            rest.remove(nxt)
        return order if crosses < written else None

    def rebuild(self, root: O.Op, new: dict[int, O.Op]) -> O.Op:
        assert self.order is not None
        leaves = [new[id(self.leaves[n])] for n in self.order]
        tree = leaves[0]
        for leaf in leaves[1:]:
            tree = O.Join(tree, leaf, "cross")
        tree = with_filter(tree, unique(self.conjuncts))
        return O.Project(tree, tuple((n, E.Col(n)) for n in root.schema.names))
