"""The Conclave pass: split a joint query into party-local cleartext stages,
secure (MPC) stages and STP stages, and say who learns what.

Steps (each a small function below):

1. take the IR of the query over the parties' tables (the facade parsed it:
   `musketeer/mpc_cli.py`), run the usual IR passes, then
   `pushdown.push_down` (filters, projections and pre-aggregation below the
   union of the parties' inputs);
2. `trust.annotate`: owners and per-column trust sets for every operator;
3. an operator whose rows all come from one party is local to it; the rest
   is secure. The chain of unary operators under the result that reveals
   nothing new to the recipients (a permutation, or inputs the recipients may
   see anyway) is pushed up to them;
4. per secure operator choose the cheapest implementation the trust sets
   allow: public (keys visible to all), hybrid (an STP may see the keys),
   otherwise oblivious; and track where every column lives at run time
   (`Placement`: public, held in the clear by one party, or secret-shared);
5. refuse queries whose output hands row-level values to a recipient outside
   their trust set, or that need a column in the clear that may not be.
"""

from __future__ import annotations

import os
from musketeer.ir import UnsupportedError, Workflow
from musketeer.ir import operators as O
from musketeer.ir import expr as E
from musketeer.ir.expr import Col, Lit
from musketeer.ir.passes import merge_projects, optimize, remove_redundant
from musketeer.mpc.config import ConfigError, PartiesConfig
from musketeer.mpc.plan import PUBLIC_PLACE, SECRET_PLACE, Leak, LocalStage, Placement, SecureStep, SplitPlan
from musketeer.mpc.pushdown import push_down
from musketeer.mpc.trust import EVERYONE, RelInfo, allows, annotate, meet

class LeakRefused(ConfigError):
    """The query cannot be answered within the trust config."""


def held(place: str) -> bool:
    return place not in (PUBLIC_PLACE, SECRET_PLACE)


def gather_roles(parties: tuple[str, ...], stp: str) -> tuple[str, str] | None:
    """(pad party, third party) for the STP's padded gather
    (`mpc/secure/gather.py`), or None where it does not apply: it needs
    two parties besides the STP, and it is safe only while no two parties
    collude, i.e. MPyC's threshold (m - 1) // 2 is 1 (3 or 4 parties).
    Elsewhere the STP sends a secret one-hot selection instead."""
    others = [p for p in parties if p != stp]
    return (others[0], others[1]) if len(others) >= 2 and (len(parties) - 1) // 2 == 1 else None


def env_int(name: str, default: int, minimum: int) -> int:
    """A whole-number setting from the environment (every party must use
    the same value); a bad one is a one-line error, not a traceback."""
    text = os.environ.get(name, str(default))
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConfigError(f"{name}={text!r}: expected a whole number >= {minimum}")
    return value


def onehot_max() -> int:
    """Largest secret one-hot (groups x rows) the STP of a hybrid GROUP BY
    sends; above it the rows are sorted by group through the padded gather
    instead (fewer elements, more rounds). Group count and rows are public,
    so the choice reveals nothing more."""
    return env_int("MUSKETEER_MPC_ONEHOT_MAX", 65536, 0)


def gather_labels(ref: str, what: str = "hybrid join", when: str = "") -> dict[str, str]:
    """What the padded gather's receivers see, as the leakage report and
    the runtime's channel both name it."""
    return {
        "padded": f"one-time-padded rows (uniformly random) for the {what} {ref}{when}",
        "permutation": f"random permutations (independent of the data) for the {what} {ref}{when}",
        "pads": f"permuted one-time pads (uniformly random) for the {what} {ref}{when}",
        "positions": f"random distinct positions (independent of the data) for the {what} {ref}{when}",
    }


def shareable(dtype) -> bool:
    """Secure stages compute on fixed-point numbers: integers, decimals,
    floats and booleans can be secret-shared; strings and dates cannot."""
    return dtype.is_numeric or dtype.kind == "bool"


def plan_workflow(workflow: Workflow, config: PartiesConfig, *, mpc_only: bool = False) -> SplitPlan:
    """Optimize and split a joint query's IR (the caller parsed it against
    `config.catalog()`): the IR passes, then Conclave's push-down (not for
    the all-oblivious baseline), then `split`."""
    workflow = optimize(workflow)
    if not mpc_only:
        workflow = remove_redundant(merge_projects(push_down(workflow)))
    return split(workflow, config, mpc_only=mpc_only)


def split(workflow: Workflow, config: PartiesConfig, *, mpc_only: bool = False) -> SplitPlan:
    sinks = workflow.sinks
    if len(sinks) != 1 or sinks[0].path is not None:
        raise UnsupportedError("a multi-party query needs exactly one result (no COPY TO)")
    info = annotate(workflow, config)
    ref = {id(op): f"%{i}" for i, op in enumerate(workflow.ops())}
    recipients = config.recipients

    def is_local(op: O.Op) -> bool:
        if mpc_only:
            return isinstance(op, O.Scan)
        return len(info[id(op)].owners) == 1

    reveal, chain = _push_up(sinks[0].input, info, recipients, is_local, mpc_only)
    _check_output(reveal, info, recipients, ref)

    # operators under the reveal point: local ones feed secure ones
    below = list(O.walk(reveal))
    secure_ops = [op for op in below if not is_local(op)]
    boundary: list[O.Op] = []
    for op in secure_ops:
        for i in op.inputs:
            if is_local(i) and i not in boundary:
                boundary.append(i)
    if is_local(reveal):
        boundary = [reveal]
    inputs: dict[int, tuple[str, str]] = {}
    local: list[LocalStage] = []
    for party in config.names:
        outs = {f"in{len(inputs) + k}": op for k, op in
                enumerate(b for b in boundary if next(iter(info[id(b)].owners)) == party)}
        for name, op in outs.items():
            inputs[id(op)] = (party, name)
        if outs:
            wf = Workflow(tuple(O.Sink(op, name) for name, op in outs.items()), f"local_{party}")
            local.append(LocalStage(party, wf, outs))

    leaks: list[Leak] = []
    places: dict[int, Placement] = {}
    for op in boundary:
        party = inputs[id(op)][0]
        rel = info[id(op)]
        if mpc_only:  # the baseline secret-shares every input column as it is
            pub = []
            _check_shareable(op, ref)
            places[id(op)] = Placement({n: SECRET_PLACE for n in rel.cols})
        else:
            pub = [n for n, c in rel.cols.items() if c.trust == EVERYONE]
            places[id(op)] = Placement({n: (PUBLIC_PLACE if n in pub else party) for n in rel.cols})
        private = [n for n in rel.cols if n not in pub]
        for q in config.names:
            if q != party:
                leaks.append(Leak(q, "size", f"row count of {ref[id(op)]} (input from {party})", (), ref[id(op)]))
                if private:  # one bit per column: whether it needs a secret validity bit per value
                    leaks.append(Leak(q, "nulls", f"NULLs in columns [{', '.join(private)}] of {ref[id(op)]} "
                                                  f"(input from {party}): whether each has any", (), ref[id(op)]))
                if pub:
                    leaks.append(Leak(q, "public", f"public columns [{', '.join(pub)}] of {ref[id(op)]} "
                                                   f"(input from {party})", tuple(pub), ref[id(op)]))
    steps: list[SecureStep] = []
    chooser = _Chooser(config, info, places, ref, leaks, mpc_only)
    for op in secure_ops:
        steps.append(chooser.step(op))
    _fuse_join_aggregates(steps, workflow)
    if reveal in secure_ops:
        chooser.check_secret_types(reveal, places[id(reveal)], revealed=True)
    for r in recipients:
        cols = tuple(reveal.schema.names)
        leaks.append(Leak(r, "output", f"{'push-up input' if chain else 'result'} columns [{', '.join(cols)}] "
                                       f"of {ref[id(reveal)]}", cols, ref[id(reveal)]))
    pushup = None
    if chain:
        scan = O.Scan("__revealed", "__revealed.parquet", "parquet",
                      tuple(O.ScanColumn(n, n, t) for n, t in ((f.name, f.dtype) for f in reveal.schema)))
        ref[id(scan)] = "revealed"
        top = O.replace_nodes(sinks[0], {id(reveal): scan})
        pwf = Workflow((top,), "pushup")  # type: ignore[arg-type]
        old = [op for op in O.walk(sinks[0]) if op in chain]
        new = [op for op in pwf.ops() if not isinstance(op, (O.Scan, O.Sink))]
        for o, nw in zip(old, new):
            ref[id(nw)] = ref[id(o)]
        pushup = LocalStage(recipients[0], pwf, {"result": top.input}, pushup=True)
    return SplitPlan(config.names, recipients, workflow, ref, local, inputs, steps, reveal, pushup, leaks, mpc_only,
                     places=places, info=info)


FUSABLE = {"sum", "count", "count_star", "avg"}


def _fuse_join_aggregates(steps: list[SecureStep], workflow: Workflow) -> None:
    """Mark oblivious join -> oblivious aggregate pairs the engine runs
    without materialising the join: the aggregate's keys come from one side
    and every aggregate is a SUM/COUNT/AVG, so per row of that side
    `M @ x` (M = the secret key-match matrix) is all it needs."""
    users: dict[int, int] = {}
    for op in workflow.ops():
        for i in op.inputs:
            users[id(i)] = users.get(id(i), 0) + 1
    by_op = {id(s.op): s for s in steps}
    for st in steps:
        op = st.op
        if not (isinstance(op, O.Aggregate) and st.mode == "oblivious" and op.keys):
            continue
        js = by_op.get(id(op.input))
        if js is None or js.mode != "oblivious" or users.get(id(js.op), 0) != 1:
            continue
        join = js.op
        if not isinstance(join, O.Join) or join.kind != "inner" or join.residual is not None:
            continue
        if not all(c.func in FUSABLE and not c.distinct for _, c in op.aggs):
            continue
        lnames, rnames = set(join.left.schema.names), set(join.right.schema.names)
        if set(op.keys) <= lnames or set(op.keys) <= rnames:
            st.fused = js.fused = True


def _invertible(op: O.Op) -> bool:
    """The recipient could recompute op's input from its output."""
    if isinstance(op, O.Sort):
        return True
    if isinstance(op, O.Project):
        kept = {e.name for _, e in op.exprs if isinstance(e, Col)}
        return set(op.input.schema.names) <= kept
    return False


def _push_up(top: O.Op, info: dict[int, RelInfo], recipients: tuple[str, ...], is_local, mpc_only: bool
             ) -> tuple[O.Op, list[O.Op]]:
    chain: list[O.Op] = []
    cur = top
    if mpc_only:  # the baseline runs every operator under MPC
        return cur, chain
    while not is_local(cur) and isinstance(cur, (O.Project, O.Sort, O.Limit, O.Filter, O.Aggregate, O.Distinct)):
        inp = info[id(cur.inputs[0])]
        trusted = not mpc_only and all(allows(inp.all_trust, r) for r in recipients)
        if not (_invertible(cur) or trusted):
            break
        chain.append(cur)
        cur = cur.inputs[0]
    return cur, chain


def _check_output(reveal: O.Op, info: dict[int, RelInfo], recipients: tuple[str, ...], ref: dict[int, str]) -> None:
    rel = info[id(reveal)]
    for name, col in rel.cols.items():
        for r in recipients:
            if col.lineage and not allows(col.result_trust, r):
                trust = ", ".join(sorted(col.result_trust)) or "nobody"
                raise LeakRefused(
                    f"refused: {reveal.opname} {ref[id(reveal)]} would reveal column {name!r} "
                    f"(row-level values of {', '.join(sorted(col.lineage))}) to recipient {r!r}, "
                    f"outside its trust set {{{trust}}}")


class _Chooser:
    """Picks each secure operator's implementation and tracks placements."""

    def __init__(self, config: PartiesConfig, info: dict[int, RelInfo], places: dict[int, Placement],
                 ref: dict[int, str], leaks: list[Leak], mpc_only: bool = False) -> None:
        self.config, self.info, self.places, self.ref, self.leaks = config, info, places, ref, leaks
        self.mpc_only = mpc_only

    def _stp(self, trust: frozenset[str]) -> str | None:
        order = list(self.config.recipients) + [p for p in self.config.names if p not in self.config.recipients]
        return next((p for p in order if p in trust), None)

    def _check_numeric(self, op: O.Op, cols: list[str], pl: Placement, schema) -> None:
        """Secure stages compute on numbers; a string column must be public
        (or held by the one party computing on it)."""
        for c in cols:
            t = schema.dtype(c)
            if not shareable(t) and pl.cols[c] != PUBLIC_PLACE:
                trust = self.info[id(op.inputs[0])].cols[c].trust
                raise LeakRefused(
                    f"refused: {op.opname} {self.ref[id(op)]} needs {t.kind} column {c!r} in the clear, but its "
                    f"trust set is {{{', '.join(sorted(trust))}}}; secure stages compute on numbers only")

    def check_secret_types(self, op: O.Op, out: Placement, revealed: bool = False) -> None:
        """A string or date column the operator would secret-share (e.g. a
        UNION of columns two parties hold, or a hybrid join's non-key
        column the STP may not see) cannot run: refuse it here, naming the
        operator and the column, rather than fail at run time. The result
        of a masked relation is revealed through shares, held columns too."""
        for f in op.schema:
            place = out.cols.get(f.name)
            if shareable(f.dtype) or place is None or place == PUBLIC_PLACE:
                continue
            if place == SECRET_PLACE or (revealed and out.masked):
                trust = self.info[id(op)].cols[f.name].trust
                raise LeakRefused(
                    f"refused: {op.opname} {self.ref[id(op)]} would secret-share {f.dtype.kind} column {f.name!r} "
                    f"(trust set {{{', '.join(sorted(trust))}}}); secure stages compute on numbers only: make it "
                    f"public, or keep it at one party")

    def _see(self, party: str, rel: O.Op, keys: list[str], what: str) -> None:
        pl = self.places[id(rel)]
        hidden = [k for k in keys if pl.cols[k] not in (PUBLIC_PLACE, party)]
        if hidden:
            self.leaks.append(Leak(party, "stp", f"{what} [{', '.join(hidden)}] of {self.ref[id(rel)]}",
                                   tuple(hidden), self.ref[id(rel)]))

    def _pads(self, op: O.Op, stp: str, what: str, when: str = "") -> None:
        """The padded gather's random values (`mpc/secure/gather.py`), where it applies."""
        roles = gather_roles(self.config.names, stp)
        if roles is None:
            return
        labels = gather_labels(self.ref[id(op)], what, when)
        for party, keys in ((stp, ("padded", "permutation")), (roles[1], ("pads", "positions"))):
            for key in keys:
                self.leaks.append(Leak(party, "pad", labels[key], (), self.ref[id(op)]))

    def _size(self, op: O.Op, stp: str, what: str) -> None:
        for q in self.config.names:
            if q != stp:
                self.leaks.append(Leak(q, "size", f"{what} of {self.ref[id(op)]} (from stp {stp})", (), self.ref[id(op)]))

    def _check_exprs(self, op: O.Op, ins: list[Placement]) -> None:
        """Every expression a secure stage evaluates is one the engine can
        (refused here, naming the operator, never mid-protocol)."""
        if isinstance(op, O.Filter):
            exprs, schema, cols = [op.predicate], op.input.schema, ins[0].cols
        elif isinstance(op, O.Project):
            exprs, schema, cols = [e for _, e in op.exprs], op.input.schema, ins[0].cols
        elif isinstance(op, O.Join) and op.residual is not None:
            exprs, schema = [op.residual], op.left.schema.concat(op.right.schema)
            cols = {**ins[0].cols, **ins[1].cols}
        else:
            return
        for e in exprs:
            where = {cols[c] for c in e.columns()} - {PUBLIC_PLACE}
            secret = len(where) > 1 or SECRET_PLACE in where
            why = unsupported_expr(e, schema, secret)
            if why:
                raise UnsupportedError(f"{op.opname} {self.ref[id(op)]}: the secure stages cannot evaluate {why} "
                                       f"(in {e})")

    def step(self, op: O.Op) -> SecureStep:
        self._check_exprs(op, [self.places[id(i)] for i in op.inputs])
        if self.mpc_only:
            return self._oblivious_step(op)
        ins = [self.places[id(i)] for i in op.inputs]
        mode, stp = "elementwise", None
        if isinstance(op, O.Filter):
            cols = sorted(op.predicate.columns())
            self._check_numeric(op, cols, ins[0], op.input.schema)
            public = all(ins[0].cols[c] == PUBLIC_PLACE for c in cols)
            mode = "public" if public else "oblivious"
            out = Placement(dict(ins[0].cols), ins[0].masked or not public)
        elif isinstance(op, O.Project):
            cols: dict[str, str] = {}
            for name, e in op.exprs:
                where = {ins[0].cols[c] for c in e.columns()} - {PUBLIC_PLACE}
                if not where:
                    cols[name] = PUBLIC_PLACE
                elif len(where) == 1 and held(next(iter(where))):
                    cols[name] = next(iter(where))
                else:
                    cols[name] = SECRET_PLACE
                if not isinstance(e, Col):
                    self._check_numeric(op, sorted(e.columns()), ins[0], op.input.schema)
            out = Placement(cols, ins[0].masked, _project_domains(op, ins[0]))
        elif isinstance(op, O.Union):
            mode = "concat"
            cols = {}
            for (n, a), b in zip(ins[0].cols.items(), ins[1].cols.values()):
                cols[n] = a if a == b else SECRET_PLACE
            out = Placement(cols, ins[0].masked or ins[1].masked, _union_domains(op, ins))
            if op.distinct:  # UNION ALL, then DISTINCT (public in the clear, else sort-based)
                if out.masked or any(p != PUBLIC_PLACE for p in cols.values()):
                    self._check_numeric_keys(op, op, list(op.schema.names), out)
                    mode, out = "oblivious", Placement({n: SECRET_PLACE for n in cols}, True)
                else:
                    mode = "public"
        elif isinstance(op, O.Join):
            out, mode, stp = self._join(op, ins)
        elif isinstance(op, O.Aggregate):
            out, mode, stp = self._aggregate(op, ins[0])
        elif isinstance(op, O.Sort) and (ins[0].masked or any(p != PUBLIC_PLACE for p in ins[0].cols.values())):
            self._check_numeric_keys(op, op.input, [k.column for k in op.keys], ins[0])
            mode = "oblivious"
            out = Placement({n: SECRET_PLACE for n in ins[0].cols}, ins[0].masked)
        elif isinstance(op, O.Distinct) and (ins[0].masked or any(p != PUBLIC_PLACE for p in ins[0].cols.values())):
            # sort-based: duplicates become adjacent and are masked out
            self._check_numeric_keys(op, op.input, list(op.schema.names), ins[0])
            mode = "oblivious"
            out = Placement({n: SECRET_PLACE for n in ins[0].cols}, True)
        else:
            if all(p == PUBLIC_PLACE for p in ins[0].cols.values()) and not ins[0].masked:
                mode = "public"
                out = Placement(dict(ins[0].cols))
            else:
                raise UnsupportedError(f"{op.opname} {self.ref[id(op)]} over secret data in a secure stage "
                                       f"(only before the result, where it is pushed up to the recipients)")
        self.places[id(op)] = out
        self.check_secret_types(op, out)
        domain = _key_domain(op.keys, ins[0]) if isinstance(op, O.Aggregate) and mode == "oblivious" else None
        return SecureStep(op, mode, stp, domain)

    def _join(self, op: O.Join, ins: list[Placement]) -> tuple[Placement, str, str | None]:
        if op.kind not in ("inner", "cross"):
            raise UnsupportedError(f"{op.kind} join across parties ({self.ref[id(op)]})")
        lp, rp = ins
        cols = {**lp.cols, **rp.cols}
        masked = lp.masked or rp.masked or op.residual is not None
        if op.residual is not None:
            self._check_numeric(op, sorted(op.residual.columns()), Placement(cols), op.left.schema.concat(op.right.schema))
        if op.kind == "cross" or (all(lp.cols[k] == PUBLIC_PLACE for k in op.left_keys)
                                  and all(rp.cols[k] == PUBLIC_PLACE for k in op.right_keys)):
            return Placement(cols, masked), "public", None
        ktrust = meet(self.info[id(op.left)].trust_of(op.left_keys), self.info[id(op.right)].trust_of(op.right_keys))
        stp = self._stp(ktrust)
        if stp is not None:
            self._see(stp, op.left, list(op.left_keys), "join keys")
            self._see(stp, op.right, list(op.right_keys), "join keys")
            self._size(op, stp, "row count")
            if any(pl.masked or any(p not in (stp, PUBLIC_PLACE) for p in pl.cols.values()) for pl in (lp, rp)):
                self._pads(op, stp, "hybrid join")
            out = {n: (stp if p in (stp, PUBLIC_PLACE) else SECRET_PLACE) for n, p in cols.items()}
            return Placement(out, masked), "hybrid", stp
        for side, keys, pl in ((op.left, op.left_keys, lp), (op.right, op.right_keys, rp)):
            self._check_numeric_keys(op, side, keys, pl)
        return Placement(cols, True), "oblivious", None

    def _check_numeric_keys(self, op: O.Op, side: O.Op, keys, pl: Placement) -> None:
        for k in keys:
            t = side.schema.dtype(k)
            if not shareable(t) and pl.cols[k] != PUBLIC_PLACE:
                trust = self.info[id(side)].cols[k].trust
                raise LeakRefused(
                    f"refused: {op.opname} {self.ref[id(op)]} needs {t.kind} key {k!r} in the clear, but its "
                    f"trust set is {{{', '.join(sorted(trust))}}}; secure stages compute on numbers only")

    def _aggregate(self, op: O.Aggregate, pl: Placement) -> tuple[Placement, str, str | None]:
        for _, call in op.aggs:
            if call.distinct:
                raise UnsupportedError(f"{call.func.upper()}(DISTINCT) across parties ({self.ref[id(op)]})")
            if call.func not in ("sum", "count", "count_star", "avg", "min", "max"):
                raise UnsupportedError(f"{call.func.upper()} across parties ({self.ref[id(op)]}): secure stages "
                                       "compute SUM, COUNT, AVG, MIN and MAX")
            if call.arg is not None and not shareable(op.input.schema.dtype(call.arg)):
                self._check_numeric(op, [call.arg], pl, op.input.schema)
        aggs = {name: SECRET_PLACE for name, _ in op.aggs}
        if not op.keys:
            return Placement(aggs), "global", None
        if all(pl.cols[k] == PUBLIC_PLACE for k in op.keys):
            return Placement({**{k: PUBLIC_PLACE for k in op.keys}, **aggs}, pl.masked), "public", None
        ktrust = self.info[id(op.input)].trust_of(op.keys)
        stp = self._stp(ktrust)
        if stp is not None:
            self._see(stp, op.input, list(op.keys), "group keys")
            self._size(op, stp, "group count")
            self._pads(op, stp, "hybrid aggregation", f", when groups x rows > {onehot_max()}")
            return Placement({**{k: stp for k in op.keys}, **aggs}, pl.masked), "hybrid", stp
        self._check_numeric_keys(op, op.input, op.keys, pl)
        return Placement({**{k: SECRET_PLACE for k in op.keys}, **aggs}, True), "oblivious", None

    # --- the all-oblivious baseline (--mpc-only) -------------------------------
    def _oblivious_step(self, op: O.Op) -> SecureStep:
        """Every column secret, every operator data-oblivious: shapes depend
        on input sizes only, so nobody learns anything but those sizes and
        the final (compacted) result. No STP, no public modes."""
        ins = [self.places[id(i)] for i in op.inputs]
        domain: tuple | None = None
        if isinstance(op, O.Filter):
            self._check_numeric(op, sorted(op.predicate.columns()), ins[0], op.input.schema)
            mode, out = "oblivious", Placement(dict(ins[0].cols), True, dict(ins[0].domains))
        elif isinstance(op, O.Project):
            for _, e in op.exprs:
                self._check_numeric(op, sorted(e.columns()), ins[0], op.input.schema)
                if not e.columns() and isinstance(e, Lit) and isinstance(e.value, str):
                    raise UnsupportedError(f"string literal in {op.opname} {self.ref[id(op)]}: secure stages "
                                           f"compute on numbers only")
            mode = "elementwise"
            out = Placement({n: SECRET_PLACE for n, _ in op.exprs}, ins[0].masked, _project_domains(op, ins[0]))
        elif isinstance(op, O.Union):
            mode = "oblivious" if op.distinct else "concat"  # UNION: UNION ALL, then sort-based DISTINCT
            out = Placement(dict(ins[0].cols), ins[0].masked or ins[1].masked or op.distinct,
                            _union_domains(op, ins))
        elif isinstance(op, O.Join):
            if op.kind not in ("inner", "cross"):
                raise UnsupportedError(f"{op.kind} join across parties ({self.ref[id(op)]})")
            cols = {**ins[0].cols, **ins[1].cols}
            if op.residual is not None:
                self._check_numeric(op, sorted(op.residual.columns()), Placement(cols),
                                    op.left.schema.concat(op.right.schema))
            # a cross product's row pairs depend on the (public) sizes only
            mode = "cross" if op.kind == "cross" else "oblivious"
            if op.kind != "cross":
                for side, keys, pl in ((op.left, op.left_keys, ins[0]), (op.right, op.right_keys, ins[1])):
                    self._check_numeric_keys(op, side, keys, pl)
            masked = ins[0].masked or ins[1].masked or op.kind != "cross" or op.residual is not None
            out = Placement(cols, masked, {**ins[0].domains, **ins[1].domains})
        elif isinstance(op, O.Aggregate):
            for _, call in op.aggs:
                if call.distinct:
                    raise UnsupportedError(f"{call.func.upper()}(DISTINCT) across parties ({self.ref[id(op)]})")
                if call.arg is not None:
                    self._check_numeric(op, [call.arg], ins[0], op.input.schema)
            aggs = {name: SECRET_PLACE for name, _ in op.aggs}
            if not op.keys:
                mode, out = "global", Placement(aggs)
            else:
                self._check_numeric_keys(op, op.input, op.keys, ins[0])
                mode = "oblivious"
                domain = _key_domain(op.keys, ins[0])
                out = Placement({**{k: SECRET_PLACE for k in op.keys}, **aggs}, True,
                                {k: ins[0].domains[k] for k in op.keys if k in ins[0].domains})
        elif isinstance(op, O.Sort):
            self._check_numeric_keys(op, op.input, [k.column for k in op.keys], ins[0])
            mode, out = "oblivious", Placement(dict(ins[0].cols), ins[0].masked, dict(ins[0].domains))
        elif isinstance(op, O.Distinct):
            self._check_numeric_keys(op, op.input, list(op.schema.names), ins[0])
            mode, out = "oblivious", Placement(dict(ins[0].cols), True, dict(ins[0].domains))
        else:
            raise UnsupportedError(f"{op.opname} {self.ref[id(op)]} is not supported under --mpc-only")
        self.places[id(op)] = out
        return SecureStep(op, mode, None, domain)


def unsupported_expr(e: E.Expr, schema, secret: bool) -> str | None:
    """What in `e` the secure engine cannot evaluate (None: all of it).
    `secret`: under MPC (some column secret-shared), else in the clear at
    one holder or by everybody (public columns). Checked at explain time,
    so nothing fails mid-protocol."""
    if isinstance(e, E.Lit):
        if secret and isinstance(e.value, str):
            return f"the text literal {e.value!r} under MPC"
        if e.value is not None and not isinstance(e.value, (bool, int, float, str)) and secret:
            return f"the literal {e} under MPC"
        return None
    if isinstance(e, E.Col):
        return None
    if isinstance(e, E.Arith) and e.op not in ("+", "-", "*", "/", "%"):
        return f"the operator {e.op}"
    if isinstance(e, E.Arith) and e.op == "%" and secret:
        return "% (modulo) under MPC"
    if isinstance(e, E.Compare) and e.op not in ("=", "<>", "<", "<=", ">", ">="):
        return f"the comparison {e.op}"
    if isinstance(e, E.Cast):
        src = e.arg.type_in(schema)
        if not (src == e.to or src.kind == "null" or e.to.kind in ("float64", "decimal") and src.is_numeric
                or e.to.kind == "int64" and src.kind in ("int64", "bool")):
            return f"CAST from {src} to {e.to}"
    elif isinstance(e, E.Func):
        if e.name != "coalesce":
            return f"the function {e.name.upper()}"
    elif not isinstance(e, (E.Arith, E.Compare, E.And, E.Or, E.Not, E.Neg, E.IsNull, E.InList, E.Case)):
        return f"{type(e).__name__} ({e})"
    for child in _children(e):
        why = unsupported_expr(child, schema, secret)
        if why:
            return why
    return None


def _children(e: E.Expr) -> list[E.Expr]:
    out: list[E.Expr] = []
    for name in e.__dataclass_fields__:  # type: ignore[attr-defined]
        v = getattr(e, name)
        for x in (v if isinstance(v, tuple) else (v,)):
            if isinstance(x, E.Expr):
                out.append(x)
            elif isinstance(x, tuple):
                out += [y for y in x if isinstance(y, E.Expr)]
    return out


def _check_shareable(op: O.Op, ref: dict[int, str]) -> None:
    for f in op.schema:
        if not shareable(f.dtype):
            raise LeakRefused(f"refused: --mpc-only would secret-share {f.dtype.kind} column {f.name!r} of "
                              f"{ref[id(op)]}; secure stages compute on numbers only")


def _project_domains(op: O.Project, pl: Placement) -> dict[str, tuple]:
    """Numeric literals have a one-value public domain; renames keep theirs."""
    out: dict[str, tuple] = {}
    for name, e in op.exprs:
        if isinstance(e, Lit) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool):
            out[name] = (e.value,)
        elif isinstance(e, Col) and e.name in pl.domains:
            out[name] = pl.domains[e.name]
    return out


def _union_domains(op: O.Union, ins: list[Placement]) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for a, b in zip(op.left.schema.names, op.right.schema.names):
        if a in ins[0].domains and b in ins[1].domains:
            out[a] = tuple(sorted(set(ins[0].domains[a]) | set(ins[1].domains[b])))
    return out


def _key_domain(keys: tuple[str, ...], pl: Placement) -> tuple[tuple, ...] | None:
    """Every combination of the keys' public domains (one-hot grouping), or
    None when some key's values are not known from the query (sort-based)."""
    if not all(k in pl.domains for k in keys):
        return None
    import itertools

    combos = tuple(itertools.product(*(pl.domains[k] for k in keys)))
    return combos if len(combos) <= 256 else None
