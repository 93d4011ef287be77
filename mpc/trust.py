"""Owner and trust-set propagation (the annotations Conclave's split reads).

For every operator we compute who holds its input rows (`owners`) and, per
output column, the parties allowed to see it in the clear (`trust`) plus its
row-level `lineage` (base columns whose per-row values it still carries;
aggregates reset it, since an agreed aggregate is the point of the query).

Rules, all conservative: a derived column is trusted by the intersection of
what it reads; a Filter or Join narrows every column by the trust of its
predicate/keys (which rows survive depends on them); union intersects
position-wise.
"""

from __future__ import annotations

from dataclasses import dataclass

from musketeer.ir import operators as O
from musketeer.ir.expr import Expr
from musketeer.ir.workflow import Workflow
from musketeer.mpc.config import PUBLIC, PartiesConfig, Trust

EVERYONE: Trust = frozenset({PUBLIC})


def meet(*sets: Trust) -> Trust:
    """Intersection where {'*'} is the top element."""
    out: Trust = EVERYONE
    for s in sets:
        if PUBLIC in s:
            continue
        out = s if PUBLIC in out else out & s
    return out


def allows(trust: Trust, party: str) -> bool:
    return PUBLIC in trust or party in trust


@dataclass(frozen=True)
class ColInfo:
    trust: Trust
    lineage: frozenset[str]  # "table.column" carried row by row


@dataclass(frozen=True)
class RelInfo:
    owners: frozenset[str]
    cols: dict[str, ColInfo]

    def trust_of(self, names: set[str] | tuple[str, ...] | list[str]) -> Trust:
        return meet(*(self.cols[n].trust for n in names))

    @property
    def all_trust(self) -> Trust:
        return self.trust_of(list(self.cols))


def _expr_info(e: Expr, inp: RelInfo) -> ColInfo:
    cols = e.columns()
    return ColInfo(inp.trust_of(cols), frozenset().union(*(inp.cols[c].lineage for c in cols)))


def _narrow(info: RelInfo, by: Trust) -> dict[str, ColInfo]:
    return {n: ColInfo(meet(c.trust, by), c.lineage) for n, c in info.cols.items()}


def annotate(workflow: Workflow, config: PartiesConfig) -> dict[int, RelInfo]:
    """RelInfo per operator id, for every top-level operator."""
    info: dict[int, RelInfo] = {}
    for op in workflow.ops():
        ins = [info[id(i)] for i in op.inputs]
        owners = frozenset().union(*(i.owners for i in ins)) if ins else frozenset()
        if isinstance(op, O.Scan):
            spec = config.tables[op.table]
            info[id(op)] = RelInfo(frozenset({spec.owner}), {
                c.name: ColInfo(spec.trust(c.source), frozenset({f"{op.table}.{c.source}"})) for c in op.columns})
        elif isinstance(op, O.Filter):
            inp = ins[0]
            info[id(op)] = RelInfo(owners, _narrow(inp, inp.trust_of(op.predicate.columns())))
        elif isinstance(op, O.Project):
            info[id(op)] = RelInfo(owners, {n: _expr_info(e, ins[0]) for n, e in op.exprs})
        elif isinstance(op, O.Join):
            left, right = ins
            both = RelInfo(owners, {**left.cols, **right.cols})
            keys = list(op.left_keys) + list(op.right_keys)
            ktrust = both.trust_of([*keys, *(op.residual.columns() if op.residual is not None else ())])
            cols = _narrow(both, ktrust)
            info[id(op)] = RelInfo(owners, {n: cols[n] for n in op.schema.names})
        elif isinstance(op, O.Aggregate):
            inp = ins[0]
            ktrust = inp.trust_of(op.keys)
            cols = {k: ColInfo(meet(inp.cols[k].trust, ktrust), inp.cols[k].lineage) for k in op.keys}
            for name, call in op.aggs:
                arg = inp.all_trust if call.arg is None else inp.cols[call.arg].trust
                cols[name] = ColInfo(meet(arg, ktrust), frozenset())
            info[id(op)] = RelInfo(owners, cols)
        elif isinstance(op, (O.Union, O.Intersect, O.Except)):
            left, right = ins
            cols = {}
            for (n, lc), rc in zip(left.cols.items(), right.cols.values()):
                cols[n] = ColInfo(meet(lc.trust, rc.trust), lc.lineage | rc.lineage)
            info[id(op)] = RelInfo(owners, cols)
        elif isinstance(op, O.Distinct):
            info[id(op)] = RelInfo(owners, _narrow(ins[0], ins[0].all_trust))
        elif isinstance(op, O.Sort):
            info[id(op)] = RelInfo(owners, _narrow(ins[0], ins[0].trust_of([k.column for k in op.keys])))
        elif isinstance(op, (O.Limit, O.Sink)):
            info[id(op)] = RelInfo(owners, dict(ins[0].cols))
        elif isinstance(op, O.Window):
            # Window functions run only in one party's cleartext stage; the
            # secure engine has no window operator.
            if len(owners) != 1:
                from musketeer.ir import UnsupportedError

                raise UnsupportedError(f"Window ({', '.join(n for n, _ in op.calls)}) over the rows of several "
                                       f"parties ({', '.join(sorted(owners))}): a window function runs only "
                                       "inside one party's cleartext stage")
            inp = ins[0]
            ktrust = inp.trust_of([*op.partition_by, *(k.column for k in op.order_by)])
            cols = dict(inp.cols)
            for name, call in op.calls:
                arg = inp.cols[call.arg].trust if call.arg is not None else EVERYONE
                cols[name] = ColInfo(meet(arg, ktrust), frozenset())
            info[id(op)] = RelInfo(owners, cols)
        else:
            from musketeer.ir import UnsupportedError

            raise UnsupportedError(f"{op.opname} in a multi-party query")
    return info
