"""Semi/anti join pushdown: filter a join's input, not its output.

Why: a semi join (`x IN (subquery)`, `EXISTS`) or an anti join (`NOT IN`,
`NOT EXISTS`) keeps or drops each left row by looking only at that row's
columns. SQL lowering puts it over the whole `FROM` clause, i.e. above the
inner joins, so every row of every joined table is joined first and most are
thrown away afterwards. TPC-H Q18 keeps 57 of 1.5 million orders: applied to
`orders` before `customer ⋈ orders ⋈ lineitem`, the two joins see 57 orders
instead of all of them (the plan a person writes by hand).

Rule: `Semi(Join(A, B), S)` becomes `Join(Semi(A, S), B)` when every left
column the semi join reads (its left keys and the left columns of its
residual) belongs to A, and A is a side whose rows the join never pads with
NULLs: either side of an inner or cross join, the left side of a left join,
the right side of a right join (symmetrically for B). Each output row of the
join carries exactly one row of A, unchanged, so testing the condition on
that row before or after the join gives the same rows. Never through a full
join, and never into a join another operator also reads (that reader would
lose rows). Anti joins (also null-aware `NOT IN`, whose condition is still a
test of the one left row against the whole right side) move the same way.
The pushed join keeps moving down while the rule applies, and only where it
pays: below a join with a whole table (which cannot drop rows), or, for a
cheap semi join (no residual, a reduced right side), below any join; see
`_worth_it`.

Example (TPC-H Q18):

    before:
      %2 = Join(inner, %0, %1, on c_custkey = o_custkey)      # customer, orders
      %4 = Join(inner, %2, %3, on o_orderkey = l_orderkey)    # ..., lineitem
      %9 = Join(semi, %4, %8, on o_orderkey = l_orderkey)     # large orders
    after:
      %3 = Join(semi, %1, %2, on o_orderkey = l_orderkey)     # orders first
      %4 = Join(inner, %0, %3, on c_custkey = o_custkey)
      %6 = Join(inner, %4, %5, on o_orderkey = l_orderkey)
"""

from __future__ import annotations

from musketeer.ir import operators as O
from musketeer.ir.passes.rewrite import consumer_counts
from musketeer.ir.workflow import Workflow

# Join kinds and which of their sides keep every row unchanged (never NULL-padded).
_PRESERVED = {"inner": (0, 1), "cross": (0, 1), "left": (0,), "right": (1,)}


def semi_join_pushdown(workflow: Workflow) -> Workflow:
    """Move semi and anti joins below the inner/outer joins under their left side."""
    counts = consumer_counts(workflow)
    memo: dict[int, O.Op] = {}
    shared: set[int] = set()  # ids of rebuilt nodes that several operators read
    for op in workflow.ops():  # inputs before users
        new = op.with_inputs(*(memo[id(i)] for i in op.inputs))
        if isinstance(new, O.Join) and new.kind in ("semi", "anti"):
            new = _push(new, shared)
        memo[id(op)] = new
        if counts.get(id(op), 0) > 1:
            shared.add(id(new))
    return Workflow(tuple(memo[id(s)] for s in workflow.sinks), workflow.name)  # type: ignore[misc]


def _push(semi: O.Join, shared: set[int]) -> O.Op:
    """`semi` moved as far down its left input as the rule allows."""
    below = semi.left
    if id(below) in shared or not isinstance(below, O.Join) or below.kind not in _PRESERVED:
        return semi
    needed = set(semi.left_keys)
    if semi.residual is not None:  # its left columns (names never clash with the right's)
        needed |= semi.residual.columns() & set(below.schema.names)
    for side in _PRESERVED[below.kind]:
        target, other = below.inputs[side], below.inputs[1 - side]
        if not needed <= set(target.schema.names) or not _worth_it(semi, below, other):
            continue
        pushed = _push(semi.with_inputs(target, semi.right), shared)  # type: ignore[arg-type]
        inputs = [below.left, below.right]
        inputs[side] = pushed
        return below.with_inputs(*inputs)
    return semi


def _worth_it(semi: O.Join, below: O.Join, other: O.Op) -> bool:
    """Does testing the rows of one side beat testing the join's output?

    Without size estimates (the IR knows none), two cases are clear: the
    other side is a whole table (an unfiltered Scan under Projects) joined on
    keys only, so the join drops no rows when its keys are a foreign key
    (the usual case) and testing the fewer rows first wins; or the semi join
    is a cheap lookup -- no residual, and a reduced right side (filtered,
    aggregated, ...), so testing more rows costs little
    while every row it drops is one the join does not have to match. When the
    other side is filtered and the semi join expensive (TPC-H Q21: a residual
    against all of lineitem), the join should reduce the rows first.
    """
    if _plain(other) and below.residual is None:
        return True
    return semi.residual is None and not _plain(semi.right)


def _plain(op: O.Op) -> bool:
    """An unfiltered table: a Scan under Projects (which never drop rows)."""
    while isinstance(op, O.Project):
        op = op.input
    return isinstance(op, O.Scan)
