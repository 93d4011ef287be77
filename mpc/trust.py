"""Owner and trust-set propagation (the annotations Conclave's split reads).

For every operator we compute who holds its input rows (`owners`), who may
learn which rows it has (`rows`), and per output column the parties
allowed to see it in the clear (`trust`), its row-level `lineage` (base
columns whose per-row values it still carries), the trust of its values
alone (`base`, before any narrowing by filters) and who may see it in the
final result (`result`, see rule 5). `trust` decides every mode, STP and
push-up; `result` only the output check.

The rules (mpc/README.md "Trust rules"; one test each in
tests/test_mpc_split.py):

1. an input column is trusted by its owner and its `visible_to` parties
   (`*`: everybody); an input's row set is public (its size is);
2. a computed column is trusted by the intersection of the columns it
   really reads (a literal reads none);
3. a Filter or Join narrows every column and the row set by the trust of
   the columns its predicate or keys read (which rows survive depends on
   them); UNION intersects position-wise;
4. COUNT(*) reads no column: it is trusted like the row set (and the
   group keys), not like every input column;
5. an aggregate's value is trusted like its argument, narrowed by the
   group keys; in the result, the recipients are entitled to aggregates
   (an agreed aggregate is the point of the query: lineage resets), and
   to the group keys their values alone allow (`base`): which groups
   exist after a filter is aggregate information too. So a HAVING over
   public keys and aggregates, or a GROUP BY a public column after a
   cross-party WHERE, may show its keys to the recipients. This widens
   only `result`: no intermediate step shows a recipient (or an STP)
   more, and nothing runs differently;
6. a result column that still carries row-level values must be in the
   result trust of every recipient (`split._check_output`).
"""

from __future__ import annotations

from dataclasses import dataclass

from musketeer.ir import operators as O
from musketeer.ir import expr as X
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


def widen(trust: Trust, parties: frozenset[str] | tuple[str, ...]) -> Trust:
    """`trust` plus `parties` (public stays public)."""
    return trust if PUBLIC in trust else trust | frozenset(parties)


@dataclass(frozen=True)
class ColInfo:
    trust: Trust
    lineage: frozenset[str]  # "table.column" carried row by row
    base: Trust | None = None  # the values' own trust, before narrowing (None: = trust)
    result: Trust | None = None  # who may see it in the final result (None: = trust)

    @property
    def value_trust(self) -> Trust:
        return self.trust if self.base is None else self.base

    @property
    def result_trust(self) -> Trust:
        return self.trust if self.result is None else self.result


@dataclass(frozen=True)
class RelInfo:
    owners: frozenset[str]
    cols: dict[str, ColInfo]
    rows: Trust = EVERYONE  # who may learn which rows the relation has

    def base_of(self, names: set[str] | tuple[str, ...] | list[str]) -> Trust:
        return meet(*(self.cols[n].value_trust for n in names))

    def result_of(self, names: set[str] | tuple[str, ...] | list[str]) -> Trust:
        return meet(*(self.cols[n].result_trust for n in names))

    def trust_of(self, names: set[str] | tuple[str, ...] | list[str]) -> Trust:
        return meet(*(self.cols[n].trust for n in names))

    @property
    def all_trust(self) -> Trust:
        return self.trust_of(list(self.cols))


def _expr_info(e: Expr, inp: RelInfo) -> ColInfo:
    cols = e.columns()
    return ColInfo(inp.trust_of(cols), frozenset().union(*(inp.cols[c].lineage for c in cols)), inp.base_of(cols),
                   inp.result_of(cols))


def _narrow(info: RelInfo, cols: set[str] | list[str] | tuple[str, ...],
            equal: list[tuple[str, str]] = ()) -> dict[str, ColInfo]:  # type: ignore[assignment]
    """Every column narrowed by the trust (and result trust) of `cols`.
    Columns `equal` (join keys, `a = b` in a predicate) carry each other's
    values on every surviving row: each takes the other's lineage and
    value trust too."""
    by, by_result = info.trust_of(cols), info.result_of(cols)
    out = {n: ColInfo(meet(c.trust, by), c.lineage, c.value_trust, meet(c.result_trust, by_result))
           for n, c in info.cols.items()}
    for a, b in equal:
        ca, cb = out[a], out[b]
        lineage, base = ca.lineage | cb.lineage, meet(ca.value_trust, cb.value_trust)
        out[a] = ColInfo(ca.trust, lineage, base, ca.result)
        out[b] = ColInfo(cb.trust, lineage, base, cb.result)
    return out


def _equalities(e: Expr | None) -> list[tuple[str, str]]:
    """Column pairs a predicate's top-level AND makes equal."""
    if isinstance(e, X.And):
        return [p for a in e.args for p in _equalities(a)]
    if isinstance(e, X.Compare) and e.op == "=" and isinstance(e.left, X.Col) and isinstance(e.right, X.Col):
        return [(e.left.name, e.right.name)]
    return []


def annotate(workflow: Workflow, config: PartiesConfig) -> dict[int, RelInfo]:
    """RelInfo per operator id, for every top-level operator."""
    info: dict[int, RelInfo] = {}
    recipients = frozenset(config.recipients)
    for op in workflow.ops():
        ins = [info[id(i)] for i in op.inputs]
        owners = frozenset().union(*(i.owners for i in ins)) if ins else frozenset()
        if isinstance(op, O.Scan):
            spec = config.tables[op.table]
            info[id(op)] = RelInfo(frozenset({spec.owner}), {
                c.name: ColInfo(spec.trust(c.source), frozenset({f"{op.table}.{c.source}"})) for c in op.columns})
        elif isinstance(op, O.Filter):
            inp = ins[0]
            info[id(op)] = RelInfo(owners, _narrow(inp, op.predicate.columns(), _equalities(op.predicate)),
                                   meet(inp.rows, inp.trust_of(op.predicate.columns())))
        elif isinstance(op, O.Project):
            info[id(op)] = RelInfo(owners, {n: _expr_info(e, ins[0]) for n, e in op.exprs}, ins[0].rows)
        elif isinstance(op, O.Join):
            left, right = ins
            both = RelInfo(owners, {**left.cols, **right.cols})
            keys = [*op.left_keys, *op.right_keys, *(op.residual.columns() if op.residual is not None else ())]
            ktrust = both.trust_of(keys)
            cols = _narrow(both, keys, [*zip(op.left_keys, op.right_keys), *_equalities(op.residual)])
            info[id(op)] = RelInfo(owners, {n: cols[n] for n in op.schema.names}, meet(left.rows, right.rows, ktrust))
        elif isinstance(op, O.Aggregate):
            inp = ins[0]
            ktrust = meet(inp.trust_of(op.keys), inp.rows)
            # in the result, which groups exist is aggregate information: the
            # recipients the key values allow may see the keys (rule 5)
            entitled = frozenset(r for r in recipients if allows(inp.base_of(op.keys), r))
            cols = {k: ColInfo(meet(inp.cols[k].trust, ktrust), inp.cols[k].lineage, inp.cols[k].value_trust,
                               widen(meet(inp.cols[k].result_trust, inp.result_of(op.keys)), entitled))
                    for k in op.keys}
            for name, call in op.aggs:
                arg = inp.rows if call.arg is None else inp.cols[call.arg].trust  # COUNT(*) reads no column
                value = meet(arg, ktrust)
                cols[name] = ColInfo(value, frozenset(), value, widen(value, recipients))
            info[id(op)] = RelInfo(owners, cols, ktrust if op.keys else EVERYONE)
        elif isinstance(op, (O.Union, O.Intersect, O.Except)):
            left, right = ins
            cols = {}
            for (n, lc), rc in zip(left.cols.items(), right.cols.values()):
                cols[n] = ColInfo(meet(lc.trust, rc.trust), lc.lineage | rc.lineage, meet(lc.value_trust, rc.value_trust),
                                  meet(lc.result_trust, rc.result_trust))
            info[id(op)] = RelInfo(owners, cols, meet(left.rows, right.rows))
        elif isinstance(op, O.Distinct):
            info[id(op)] = RelInfo(owners, _narrow(ins[0], list(ins[0].cols)), meet(ins[0].rows, ins[0].all_trust))
        elif isinstance(op, O.Sort):
            info[id(op)] = RelInfo(owners, _narrow(ins[0], [k.column for k in op.keys]), ins[0].rows)
        elif isinstance(op, (O.Limit, O.Sink)):
            info[id(op)] = RelInfo(owners, dict(ins[0].cols), ins[0].rows)
        elif isinstance(op, O.Window):
            # Window functions run only in one party's cleartext stage; the
            # secure engine has no window operator.
            if len(owners) != 1:
                from musketeer.ir import UnsupportedError

                raise UnsupportedError(f"Window ({', '.join(n for n, _ in op.calls)}) over the rows of several "
                                       f"parties ({', '.join(sorted(owners))}): a window function runs only "
                                       "inside one party's cleartext stage")
            inp = ins[0]
            keys = [*op.partition_by, *(k.column for k in op.order_by)]
            ktrust = inp.trust_of(keys)
            cols = dict(inp.cols)
            for name, call in op.calls:
                read = [*keys, *([call.arg] if call.arg is not None else [])]
                # a window value is one per row, computed from other rows' values: row-level
                lineage = frozenset().union(*(inp.cols[c].lineage for c in read))
                arg = inp.cols[call.arg].trust if call.arg is not None else inp.rows
                cols[name] = ColInfo(meet(arg, ktrust), lineage, None, meet(inp.result_of(read), inp.rows))
            info[id(op)] = RelInfo(owners, cols, inp.rows)
        else:
            from musketeer.ir import UnsupportedError

            raise UnsupportedError(f"{op.opname} in a multi-party query")
    return info
