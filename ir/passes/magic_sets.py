"""Magic-set restriction: aggregate only the groups a join will look up.

Why: a correlated scalar subquery is decorrelated into "aggregate the inner
query per correlation key, then join on that key" (Kim's rewrite). TPC-H Q17
then averages the quantity of all 200,000 parts while the outer query wants
204 of them (`p_brand = 'Brand#23' AND p_container = 'MED BOX'`). A person
restricts the inner rows to the wanted keys first; so does this pass, for any
join against a grouped relation (LINQ workflows too), in the spirit of magic
sets (Seshadri et al., SIGMOD 1996, "Cost-based optimization for magic").

Rule: in `Join(O, R, on o = r)` where R is (through Filters and Projects
that pass r through) an `Aggregate(X, by [..., r, ...])`, only the groups of
R whose r appears in O can meet a row of O. So X may be cut to the rows whose
r is among O's keys: `Aggregate(Semi(X, M, on r = m))`, where M is any
relation whose m values include every o value of O. A group is kept whole or
dropped whole (the semi join tests a group key), so every kept group's
aggregates -- COUNT, AVG, anything -- are unchanged. Exact in all the corner
cases:

- NULL keys: a NULL r never equals an o, so its group never joined; the semi
  join drops exactly those rows.
- the COUNT bug: an o with no group still finds none (the LEFT JOIN pads it,
  COALESCE(count, 0) still says 0).
- O is inner or left (preserved) for R: left/inner joins, semi joins and
  plain anti joins against R. Not a null-aware anti join (NOT IN: a NULL
  among R's keys must keep rejecting every row), not a right/full join that
  preserves R's rows.

M is found by following O's key columns down through joins (to the input
that holds them all) and column-passing Projects, until another operator:
each step only gives a superset of the keys. It is applied only when that
operator reduces its input -- a Filter, a semi or anti join, a Limit -- so
M is likely much smaller than X's key range (Q17: the 204 filtered parts;
Q2: the filtered parts, the semi join then moves down to `partsupp`). M is
then read twice (it is shared, not copied); R's operators must have no other
reader, and M must not depend on them.

Example (TPC-H Q17):

    before:
      %2 = Filter(%1, p_brand = 'Brand#23' AND p_container = 'MED BOX')
      %3 = Join(inner, %0, %2, on l_partkey = p_partkey)
      %5 = Aggregate(%4, by [l_partkey], [avg := avg(l_quantity)])
      %6 = Project(%5, [corr_0 := l_partkey, value := 0.2 * avg])
      %7 = Join(inner, %3, %6, on p_partkey = corr_0 AND l_quantity < value)
    after:
      %5 = Join(semi, %4, %2, on l_partkey = p_partkey)
      %6 = Aggregate(%5, by [l_partkey], [avg := avg(l_quantity)])
      ...
"""

from __future__ import annotations

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.operators import replace_nodes, walk
from musketeer.ir.passes.rewrite import consumer_counts
from musketeer.ir.workflow import Workflow

# For each join kind: (outer side, grouped side) pairs this rule may restrict.
_ORIENTATIONS = {"inner": ((0, 1), (1, 0)), "left": ((0, 1),), "right": ((1, 0),),
                 "semi": ((0, 1),), "anti": ((0, 1),)}

_REDUCING = (O.Filter, O.Limit)


def magic_sets(workflow: Workflow) -> Workflow:
    """Restrict the input of grouped join sides to the other side's keys."""
    # One rewrite at a time, until none applies: each rewrite makes the
    # grouped side's input a semi join on its keys, which the next search skips.
    for _ in range(1000):
        found = _find(workflow)
        if found is None:
            return workflow
        old, new = found
        memo: dict[int, O.Op] = {}
        sinks = tuple(replace_nodes(s, {id(old): new}, memo) for s in workflow.sinks)
        workflow = Workflow(sinks, workflow.name)  # type: ignore[arg-type]
    return workflow  # pragma: no cover - a safety net against a rule that never settles


def _find(workflow: Workflow) -> tuple[O.Op, O.Op] | None:
    """The first join this rule rewrites, and its replacement."""
    counts = consumer_counts(workflow)
    for op in workflow.ops():
        if not isinstance(op, O.Join) or op.kind not in _ORIENTATIONS or op.null_aware or not op.left_keys:
            continue
        for outer_side, grouped_side in _ORIENTATIONS[op.kind]:
            keys = (op.left_keys, op.right_keys)
            new_grouped = _restrict(op.inputs[outer_side], keys[outer_side],
                                    op.inputs[grouped_side], keys[grouped_side], counts)
            if new_grouped is not None:
                inputs = list(op.inputs)
                inputs[grouped_side] = new_grouped
                return op, op.with_inputs(*inputs)
    return None


def _restrict(outer: O.Op, outer_keys: tuple[str, ...], grouped: O.Op, grouped_keys: tuple[str, ...],
              counts: dict[int, int]) -> O.Op | None:
    """`grouped` with its Aggregate's input cut to outer's keys, or None."""
    chain: list[O.Op] = []  # grouped, ..., the Aggregate: each read only by the one above
    names = dict(zip(grouped_keys, outer_keys))  # column of the current node -> outer key
    node = grouped
    while True:
        if counts.get(id(node), 0) != 1:
            return None
        chain.append(node)
        if isinstance(node, O.Aggregate):
            break
        if isinstance(node, O.Filter):
            node = node.input
        elif isinstance(node, O.Project):
            exprs = dict(node.exprs)
            names = {e.name: o for c, o in names.items() if isinstance(e := exprs[c], E.Col)}
            node = node.input
        else:
            return None
    agg = node
    assert isinstance(agg, O.Aggregate)
    pairs = [(g, names[g]) for g in agg.keys if g in names]
    if not pairs:
        return None
    x = agg.input
    if isinstance(x, O.Join) and x.kind == "semi" and set(x.left_keys) >= {g for g, _ in pairs}:
        return None  # already restricted (by this rule or by hand)
    source = _key_source(outer, [o for _, o in pairs])
    if source is None:
        return None
    m, m_keys = source
    if any(isinstance(n, O.Join) and n.kind == "semi" and n.right is m for n in walk(x)):
        return None  # restricted by this rule, and the semi join since moved down
    chain_ids = {id(n) for n in chain}
    if any(id(n) in chain_ids for n in walk(m)):
        return None  # M is computed from the grouped side itself
    new: O.Op = agg.with_inputs(O.Join(x, m, "semi", tuple(g for g, _ in pairs), tuple(m_keys)))
    for n in reversed(chain[:-1]):
        new = n.with_inputs(new)
    return new


def _key_source(op: O.Op, keys: list[str]) -> tuple[O.Op, list[str]] | None:
    """A reduced relation below `op` whose columns `m` hold every value of
    `op`'s columns `keys` (a superset), or None when the descent ends at an
    operator that does not reduce (a Scan: restricting to it gains nothing)."""
    while True:
        if isinstance(op, O.Join) and op.kind in ("inner", "cross", "left", "right", "full"):
            for side in op.inputs:
                if set(keys) <= set(side.schema.names):
                    op = side
                    break
            else:
                return None  # keys from both sides: no single relation holds them
        elif isinstance(op, O.Project):
            exprs = dict(op.exprs)
            if not all(isinstance(exprs[k], E.Col) for k in keys):
                return None
            keys = [exprs[k].name for k in keys]  # type: ignore[attr-defined]
            op = op.input
        elif isinstance(op, O.Sort):
            op = op.input
        elif isinstance(op, _REDUCING) or (isinstance(op, O.Join) and op.kind in ("semi", "anti")):
            return op, keys
        else:
            return None
