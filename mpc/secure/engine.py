"""Evaluate a split plan's secure steps on MPyC, one operator at a time.

Every party runs the same code in the same order (MPyC requires it); data a
party does not hold is None on that party, shapes are always known. Where
each column lives follows the plan's placements exactly, so the leakage
report and what the channel records agree by construction (and are tested).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from musketeer.ir import UnsupportedError
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.mpc.config import ConfigError
from musketeer.mpc.plan import SplitPlan
from musketeer.mpc.secure import oblivious as ob
from musketeer.mpc.secure.aggregate import AggregateOps, onehot_block
from musketeer.mpc.secure.gather import Roles, gather
from musketeer.mpc.secure.relation import PUBLIC, SECRET, Channel, Column, SecRel
from musketeer.mpc.split import gather_labels, gather_roles, onehot_max, shareable


def fixed_point() -> tuple[int, int]:
    """(bits, fractional bits) of the secure fixed-point type. The default
    SecFxp(64, 32) holds |x| < 2**31 with 2**-32 resolution: exact for
    small inputs and fastest, but e.g. HHI over 1e7 trips per party needs
    100 * revenue ~ 4e10 and 1 / total ~ 1e-9 to 4 digits, i.e.
    MUSKETEER_MPC_FIXED=96:48 (slower comparisons and divisions). Every
    party must use the same value."""
    spec = os.environ.get("MUSKETEER_MPC_FIXED", "64:32")
    try:
        bits, frac = (int(x) for x in spec.split(":"))
    except ValueError:
        raise ConfigError(f"MUSKETEER_MPC_FIXED={spec!r}: expected BITS:FRACTION, e.g. 96:48") from None
    return bits, frac


def check_settings() -> None:
    """Read every secure-stage setting from the environment once, so a bad
    one is a one-line error before this party connects, not a crash in the
    middle of the protocol that its peers see as a disconnect."""
    fixed_point()
    onehot_max()
    onehot_block()


def _numeric(values: Any) -> np.ndarray:
    arr = np.asarray(pd.Series(values).astype("float64").to_numpy(na_value=np.nan), dtype=float)
    if np.isnan(arr).any():
        from musketeer.ir import DataError

        raise DataError("secure stages need values without NULLs")
    return arr


class Engine(AggregateOps):
    def __init__(self, mpc: Any, chan: Channel, plan: SplitPlan) -> None:
        self.mpc, self.chan, self.plan = mpc, chan, plan
        self.sf = mpc.SecFxp(*fixed_point())
        self.me = chan.me
        self.rels: dict[int, SecRel] = {}

    # --- helpers -----------------------------------------------------------
    def _leak_label(self, party: str, prefix: str, op: O.Op | None = None) -> str:
        ref = self.plan.ref[id(op)] if op is not None else ""
        for leak in self.plan.leakage(party):
            if leak.text.startswith(prefix) and (not ref or leak.op == ref):
                return leak.text
        return f"UNPLANNED {prefix} {ref}"  # would fail the leakage test

    async def share(self, col: Column, n: int) -> Any:
        if col.place == SECRET:
            return col.values
        if col.place == PUBLIC:
            return self.sf.array(_numeric(col.values))
        src = _numeric(col.values) if self.me == col.place else np.zeros(n)
        return self.mpc.input(self.sf.array(src), senders=self.chan.idx(col.place))

    def ones(self, n: int) -> Any:
        return self.sf.array(np.ones(n))

    # --- inputs --------------------------------------------------------------
    async def load_inputs(self, frames: dict[str, pd.DataFrame]) -> None:
        places = self.plan.places
        for op_id, (party, name) in self.plan.inputs.items():
            op = self._ops[op_id]
            frame = frames.get(name)
            n = await self.chan.publish(len(frame) if self.me == party else None, party,
                                        self._leak_label(self.me, "row count", op))
            cols: dict[str, Column] = {}
            for c, place in places[op_id].cols.items():
                if place == PUBLIC:
                    vals = frame[c].to_numpy() if self.me == party else None
                    vals = await self.chan.publish(vals, party, self._leak_label(self.me, "public columns", op))
                    cols[c] = Column(PUBLIC, np.asarray(vals))
                elif place == SECRET:  # --mpc-only: shared as it is, at once
                    held = Column(party, frame[c].to_numpy() if self.me == party else None)
                    cols[c] = Column(SECRET, await self.share(held, int(n)))
                else:
                    cols[c] = Column(party, frame[c].to_numpy() if self.me == party else None)
            self.rels[op_id] = SecRel(int(n), cols)

    @property
    def _ops(self) -> dict[int, O.Op]:
        if not hasattr(self, "_opmap"):
            self._opmap = {id(o): o for o in self.plan.workflow.ops()}
        return self._opmap

    # --- expressions ---------------------------------------------------------
    async def eval(self, e: E.Expr, rel: SecRel) -> Column:
        places = {rel.cols[c].place for c in e.columns()} - {PUBLIC}
        if not places or (len(places) == 1 and next(iter(places)) != SECRET):
            holder = next(iter(places)) if places else PUBLIC
            if holder != PUBLIC and self.me != holder:
                return Column(holder, None)
            return Column(holder, self._clear(e, rel))
        self._memo: dict[E.Expr, Any] = {}  # equal sub-expressions computed once (divisions are costly)
        return Column(SECRET, await self._secret(e, rel))

    def _clear(self, e: E.Expr, rel: SecRel) -> Any:
        """Cleartext evaluation (public columns, or columns this party holds)."""
        df = pd.DataFrame({c: rel.cols[c].values for c in e.columns()}, index=range(rel.n))

        def ev(x: E.Expr) -> Any:
            if isinstance(x, E.Col):
                return df[x.name].to_numpy()
            if isinstance(x, E.Lit):
                return np.full(rel.n, x.value, dtype=object if isinstance(x.value, str) else None)
            if isinstance(x, E.Arith):
                a, b = ev(x.left), ev(x.right)
                return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide,
                        "%": np.mod}[x.op](a.astype(float) if x.op == "/" else a, b)
            if isinstance(x, E.Compare):
                a, b = ev(x.left), ev(x.right)
                return {"=": np.equal, "<>": np.not_equal, "<": np.less, "<=": np.less_equal,
                        ">": np.greater, ">=": np.greater_equal}[x.op](a, b)
            if isinstance(x, E.And):
                return np.logical_and.reduce([ev(a) for a in x.args])
            if isinstance(x, E.Or):
                return np.logical_or.reduce([ev(a) for a in x.args])
            if isinstance(x, E.Not):
                return ~ev(x.arg).astype(bool)
            if isinstance(x, E.Neg):
                return -ev(x.arg)
            if isinstance(x, E.Cast):
                return ev(x.arg)
            if isinstance(x, E.InList):
                r = np.isin(ev(x.arg), [v.value for v in x.values])  # type: ignore[attr-defined]
                return ~r if x.negated else r
            raise UnsupportedError(f"expression {x} in a secure stage")
        return ev(e)

    async def _secret(self, e: E.Expr, rel: SecRel) -> Any:
        memo = getattr(self, "_memo", None)
        if memo is None or isinstance(e, (E.Col, E.Lit)):
            return await self._secret_uncached(e, rel)
        if e not in memo:
            memo[e] = await self._secret_uncached(e, rel)
        return memo[e]

    async def _secret_uncached(self, e: E.Expr, rel: SecRel) -> Any:
        sf, mpc = self.sf, self.mpc
        if isinstance(e, E.Col):
            return await self.share(rel.cols[e.name], rel.n)
        if isinstance(e, E.Lit):
            v = e.value
            if isinstance(v, str):
                raise UnsupportedError("string literals in secure stages")
            return float(v)
        if isinstance(e, E.Cast):
            return await self._secret(e.arg, rel)
        if isinstance(e, E.Neg):
            return -(await self._secret(e.arg, rel))
        if isinstance(e, (E.Arith, E.Compare)):
            a, b = await self._secret(e.left, rel), await self._secret(e.right, rel)
            if isinstance(a, float) and isinstance(b, float):
                return sf.array(np.full(rel.n, _fold(e.op, a, b)))
            if e.op == "+":
                return a + b
            if e.op == "-":
                return a - b
            if e.op == "*":
                return a * b
            if e.op == "/":
                if isinstance(b, float):
                    return a * (1.0 / b)
                if isinstance(a, float):
                    a = sf.array(np.full(rel.n, a))
                return mpc.np_divide(a, b)
            if isinstance(a, float):
                a = sf.array(np.full(rel.n, a))
            if isinstance(b, float):
                b = sf.array(np.full(rel.n, b))
            if e.op == "=":
                return a == b
            if e.op == "<>":
                return 1 - (a == b)
            if e.op == "<":
                return a < b
            if e.op == "<=":
                return 1 - (b < a)
            if e.op == ">":
                return b < a
            if e.op == ">=":
                return 1 - (a < b)
            raise UnsupportedError(f"operator {e.op} in a secure stage")
        if isinstance(e, E.And):
            out = await self._secret(e.args[0], rel)
            for x in e.args[1:]:
                out = out * await self._secret(x, rel)
            return out
        if isinstance(e, E.Or):
            out = await self._secret(e.args[0], rel)
            for x in e.args[1:]:
                y = await self._secret(x, rel)
                out = out + y - out * y
            return out
        if isinstance(e, E.Not):
            return 1 - await self._secret(e.arg, rel)
        if isinstance(e, E.Case):
            out = await self._secret(e.default, rel) if e.default is not None else 0.0
            for cond, val in reversed(e.whens):
                c, v = await self._secret(cond, rel), await self._secret(val, rel)
                out = out + c * (v - out) if not isinstance(out, float) or not isinstance(c, float) else out
            return out
        if isinstance(e, E.InList):
            return await self._secret(E.Or(tuple(E.Compare("=", e.arg, v) for v in e.values)), rel)
        raise UnsupportedError(f"expression {e} in a secure stage")

    # --- operators -----------------------------------------------------------
    async def run(self) -> None:
        trace = os.environ.get("MUSKETEER_MPC_TRACE")
        for step in self.plan.secure:
            op = step.op
            ins = [self.rels[id(i)] for i in op.inputs]
            handler = getattr(self, f"_{op.opname.lower()}")
            t = time.perf_counter()
            self.rels[id(op)] = out = await handler(op, ins, step)
            if trace:  # waits for the step's values, so it slows the run a little
                for c in [*(c.values for c in out.cols.values() if c.place == SECRET), out.mask]:
                    if c is not None and out.n:
                        await self.mpc.gather(c)
                print(f"trace {self.plan.ref[id(op)]} {op.opname} [{step.label}] n={out.n} "
                      f"{time.perf_counter() - t:.3f}s", file=sys.stderr, flush=True)

    async def _filter(self, op: O.Filter, ins: list[SecRel], step: Any) -> SecRel:
        return await self._apply_filter(op.predicate, ins[0])

    async def _apply_filter(self, pred: E.Expr, rel: SecRel) -> SecRel:
        col = await self.eval(pred, rel)
        if col.place == PUBLIC:
            return await self._take(rel, np.nonzero(np.asarray(col.values, dtype=bool))[0])
        b = await self.share(Column(col.place, None if col.values is None else np.asarray(col.values, float))
                             if col.place != SECRET else col, rel.n)
        return SecRel(rel.n, rel.cols, b if rel.mask is None else rel.mask * b)

    async def _take(self, rel: SecRel, idx: np.ndarray, holder: str | None = None) -> SecRel:
        cols = {}
        for name, c in rel.cols.items():
            if c.place == SECRET:
                cols[name] = Column(SECRET, c.values[idx] if len(idx) else self.sf.array(np.zeros(0)))
            else:
                cols[name] = Column(c.place, None if c.values is None else np.asarray(c.values)[idx])
        mask = rel.mask[idx] if rel.mask is not None else None
        return SecRel(len(idx), cols, mask)

    async def _project(self, op: O.Project, ins: list[SecRel], step: Any) -> SecRel:
        rel = ins[0]
        want = self.plan.places[id(op)].cols
        cols = {}
        for n, e in op.exprs:
            c = await self.eval(e, rel)
            if want[n] == SECRET and c.place != SECRET:  # e.g. a literal under --mpc-only
                vals = c.values if c.values is None or np.ndim(c.values) else np.full(rel.n, c.values)
                c = Column(SECRET, await self.share(Column(c.place, vals), rel.n))
            cols[n] = c
        return SecRel(rel.n, cols, rel.mask)

    async def _union(self, op: O.Union, ins: list[SecRel], step: Any) -> SecRel:
        a, b = ins
        cols = {}
        for (n, ca), cb in zip(a.cols.items(), b.cols.values()):
            if ca.place == cb.place and ca.place != SECRET:
                vals = None if ca.values is None else np.concatenate([ca.values, cb.values])
                cols[n] = Column(ca.place, vals)
            else:
                cols[n] = Column(SECRET, self.mpc.np_concatenate((await self.share(ca, a.n), await self.share(cb, b.n))))
        mask = None
        if a.mask is not None or b.mask is not None:
            mask = self.mpc.np_concatenate((a.mask if a.mask is not None else self.ones(a.n),
                                            b.mask if b.mask is not None else self.ones(b.n)))
        out = SecRel(a.n + b.n, cols, mask)
        return await self._distinct(op, [out], step) if op.distinct else out

    # joins --------------------------------------------------------------------
    async def _join(self, op: O.Join, ins: list[SecRel], step: Any) -> SecRel:
        left, right = ins
        if step.mode in ("public", "cross"):
            if op.kind == "cross":
                li, ri = np.repeat(np.arange(left.n), right.n), np.tile(np.arange(right.n), left.n)
            else:
                li, ri = _match([left.cols[k].values for k in op.left_keys], [right.cols[k].values for k in op.right_keys])
            out = await self._gather_public(left, right, li, ri)
        elif step.mode == "hybrid":
            out = await self._hybrid_join(op, left, right, step.stp)
        elif step.fused:  # the aggregate above reads the inputs and the match matrix
            self._fused_inputs = getattr(self, "_fused_inputs", {})
            self._fused_inputs[id(op)] = (left, right)
            return SecRel(0, {})
        else:
            out = await self._oblivious_join(op, left, right)
        if op.residual is not None:
            out = await self._apply_filter(op.residual, out)
        return out

    async def _gather_public(self, left: SecRel, right: SecRel, li: np.ndarray, ri: np.ndarray) -> SecRel:
        a, b = await self._take(left, li), await self._take(right, ri)
        mask = _mul(a.mask, b.mask)
        return SecRel(len(li), {**a.cols, **b.cols}, mask)

    async def _keys_at(self, stp: str, rel: SecRel, keys: tuple[str, ...] | list[str], op: O.Op, what: str
                       ) -> list[np.ndarray] | None:
        """Bring key columns to the STP in the clear (as the plan allows)."""
        label = self._leak_label(stp, what, op)
        out = []
        for k in keys:
            c = rel.cols[k]
            if c.place == PUBLIC or c.place == stp:
                out.append(c.values)
            elif c.place == SECRET:
                out.append(await self.chan.reveal(c.values, [stp], label))
            else:
                out.append(await self.chan.send(c.values, c.place, [stp], label))
        return out if self.me == stp else None

    async def _select(self, stp: str, rel: SecRel, idx: np.ndarray | None, k: int, op: O.Op) -> SecRel:
        """Rows `idx` (known to the STP only) of rel: STP-visible columns are
        gathered by the STP in the clear; others by the padded gather
        (`mpc/secure/gather.py`), or a secret one-hot where it does not apply."""
        secret = [name for name, c in rel.cols.items() if c.place not in (PUBLIC, stp)]
        rows = [await self.share(rel.cols[c], rel.n) for c in secret]
        if rel.mask is not None:
            rows.append(rel.mask)
        picked: list[Any] = []
        roles = gather_roles(self.chan.parties, stp)
        if rows and roles is not None:
            got = await gather(self.mpc, self.sf, self.chan, self.mpc.np_stack(rows), idx, k,
                               Roles(stp, *roles, gather_labels(self.plan.ref[id(op)])))
            picked = [got[i] for i in range(len(rows))]
        elif rows:
            onehot = np.zeros((k, rel.n))
            if self.me == stp and k:
                onehot[np.arange(k), idx] = 1.0
            sel = self.mpc.input(self.sf.array(onehot), senders=self.chan.idx(stp))
            picked = [sel @ r for r in rows]
        cols = {name: Column(SECRET, picked[secret.index(name)]) if name in secret
                else Column(stp, np.asarray(c.values)[idx] if self.me == stp else None)
                for name, c in rel.cols.items()}
        return SecRel(k, cols, picked[-1] if rel.mask is not None else None)

    async def _hybrid_join(self, op: O.Join, left: SecRel, right: SecRel, stp: str) -> SecRel:
        lk = await self._keys_at(stp, left, op.left_keys, op.left, "join keys")
        rk = await self._keys_at(stp, right, op.right_keys, op.right, "join keys")
        li = ri = None
        if self.me == stp:
            li, ri = _match(lk, rk)
        k = await self.chan.publish(len(li) if li is not None else None, stp, self._leak_label(self.me, "row count", op))
        a, b = await self._select(stp, left, li, k, op), await self._select(stp, right, ri, k, op)
        return SecRel(k, {**a.cols, **b.cols}, _mul(a.mask, b.mask))

    async def _oblivious_join(self, op: O.Join, left: SecRel, right: SecRel) -> SecRel:
        li, ri = np.repeat(np.arange(left.n), right.n), np.tile(np.arange(right.n), left.n)
        out = await self._gather_public(left, right, li, ri)
        eq = None
        for lk, rk in zip(op.left_keys, op.right_keys):
            e = (await self.share(out.cols[lk], out.n)) == (await self.share(out.cols[rk], out.n))
            eq = e if eq is None else eq * e
        return SecRel(out.n, out.cols, _mul(out.mask, eq))

    # aggregates ---------------------------------------------------------------
    async def _sort(self, op: O.Sort, ins: list[SecRel], step: Any) -> SecRel:
        """ORDER BY under MPC: one oblivious sort by (invalid, keys, other
        columns), so valid rows come first in a canonical order (the reveal
        then shows only the result, not where its rows came from)."""
        rel = ins[0]
        names = list(rel.cols)
        if step.mode == "public":
            frame = pd.DataFrame({n: c.values for n, c in rel.cols.items()})
            order = frame.sort_values([k.column for k in op.keys],
                                      ascending=[k.ascending for k in op.keys], kind="stable").index.to_numpy()
            return await self._take(rel, order)
        mpc, n = self.mpc, rel.n
        if n == 0:
            return rel
        mask = rel.mask if rel.mask is not None else self.ones(n)
        keys = [k.column for k in op.keys]
        rest = [c for c in names if c not in keys]
        shared = {c: await self.share(rel.cols[c], n) for c in names}
        rows = [1 - mask, *[shared[k.column] if k.ascending else -shared[k.column] for k in op.keys],
                *[shared[c] for c in rest], mask]
        nkeys = 1 + len(keys) + len(rest)
        srt = ob.sort_valid_first(mpc, rows, nkeys)
        cols = {}
        for i, k in enumerate(op.keys):
            cols[k.column] = Column(SECRET, srt[1 + i] if k.ascending else -srt[1 + i])
        for i, c in enumerate(rest):
            cols[c] = Column(SECRET, srt[1 + len(keys) + i])
        return SecRel(n, {c: cols[c] for c in names}, srt[-1] if rel.mask is not None else None, packed=True)

    async def _distinct(self, op: O.Distinct, ins: list[SecRel], step: Any) -> SecRel:
        """DISTINCT: public rows in the clear (first occurrence kept; NULLs
        equal, as in SQL); otherwise one oblivious sort by (invalid, every
        column) makes duplicates adjacent, and every row equal to the one
        before it is masked out. n rows out, secret mask: the number of
        duplicates shows only in the revealed result."""
        rel = ins[0]
        if step.mode == "public":
            frame = pd.DataFrame({n: c.values for n, c in rel.cols.items()}, index=range(rel.n))
            return await self._take(rel, np.nonzero(~frame.duplicated().to_numpy())[0])
        mpc, sf, n = self.mpc, self.sf, rel.n
        if n == 0:
            return rel
        names = list(rel.cols)
        mask = rel.mask if rel.mask is not None else self.ones(n)
        rows = [1 - mask, *[await self.share(rel.cols[c], n) for c in names], mask]
        nkeys = 1 + len(names)
        srt = ob.sort_valid_first(mpc, rows, nkeys)
        first, _ = ob.segment_bounds(mpc, sf, srt, nkeys)
        return SecRel(n, {c: Column(SECRET, srt[1 + i]) for i, c in enumerate(names)}, first * srt[-1])

    async def _compact(self, rel: SecRel) -> SecRel:
        """Valid rows first, canonical order (sorted by every column), so
        revealing them shows the result and its size, nothing else."""
        mpc, n = self.mpc, rel.n
        names = list(rel.cols)
        rows = [1 - rel.mask, *[await self.share(rel.cols[c], n) for c in names], rel.mask]
        nkeys = 1 + len(names)
        srt = ob.sort_valid_first(mpc, rows, nkeys)
        return SecRel(n, {c: Column(SECRET, srt[1 + i]) for i, c in enumerate(names)}, srt[-1], packed=True)

    # output -------------------------------------------------------------------
    async def reveal(self, op: O.Op, recipients: list[str]) -> pd.DataFrame | None:
        rel = self.rels[id(op)]
        me_gets = self.me in recipients
        out: dict[str, np.ndarray] = {}
        label = {r: self._leak_label(r, "result" if self.plan.pushup is None else "push-up", op) for r in recipients}
        lab = label.get(self.me, next(iter(label.values())))
        mask = None
        if rel.mask is not None:
            # valid rows first, canonical order: the recipients see the
            # result and its size, not which input rows produced it; every
            # party still sees only the public size n
            if not rel.packed and all(shareable(f.dtype) for f in op.schema):
                rel = await self._compact(rel)  # (public strings and dates cannot be shared, so not permuted)
            mask = await self.chan.reveal(rel.mask, recipients, lab)
        revealed: set[str] = set()  # came out of MPC as fixed-point floats
        for name, c in rel.cols.items():
            if c.place == PUBLIC:
                out[name] = np.asarray(c.values)
            elif c.place == SECRET or rel.mask is not None:
                x = await self.share(c, rel.n)
                out[name] = await self.chan.reveal(x * rel.mask if rel.mask is not None else x, recipients, lab)
                revealed.add(name)
            else:
                out[name] = await self.chan.send(c.values, c.place, recipients, lab)
        if not me_gets:
            return None
        frame = pd.DataFrame({n: out[n] for n in op.schema.names}, index=range(rel.n))
        if mask is not None:
            frame = frame[np.asarray(mask) > 0.5].reset_index(drop=True)
        for f in op.schema:
            frame[f.name] = _typed(frame[f.name], f.dtype.kind, f.name in revealed)
        return frame


def _typed(col: pd.Series, kind: str, revealed: bool) -> pd.Series:
    """A result column in its SQL type. Values revealed from MPC are
    NULL-free fixed-point floats (round them); public or held columns never
    entered MPC and keep their NULLs (nullable Int64 / boolean)."""
    if revealed:
        if kind == "int64" and len(col):
            return np.round(col.astype(float)).astype("int64")
        if kind == "bool":
            return col.astype(float) > 0.5
        return col
    if kind == "int64":
        return col.astype("Int64" if col.isna().any() else "int64")
    if kind == "bool":
        return col.astype("boolean" if col.isna().any() else bool)
    return col


def _fold(op: str, a: float, b: float) -> float:
    return float({"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}.get(op, 0.0))


def _mul(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a * b


def _match(left: list[np.ndarray], right: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Row index pairs of an inner equi-join, in a canonical order."""
    lf = pd.DataFrame({f"k{i}": np.asarray(v) for i, v in enumerate(left)})
    rf = pd.DataFrame({f"k{i}": np.asarray(v) for i, v in enumerate(right)})
    lf["_li"], rf["_ri"] = np.arange(len(lf)), np.arange(len(rf))
    m = lf.merge(rf, on=[f"k{i}" for i in range(len(left))]).sort_values(["_li", "_ri"])
    return m["_li"].to_numpy(dtype=int), m["_ri"].to_numpy(dtype=int)
