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
from musketeer.mpc.secure.relation import PUBLIC, SECRET, Channel, Column, SecRel, farray
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


def floats(values: Any) -> np.ndarray:
    """Numbers (and booleans as 1.0/0.0) as float64, NULL as NaN."""
    series = pd.Series(values)
    if series.dtype == object:
        series = series.map(lambda v: np.nan if v is None or v is pd.NA else float(v))
    return np.asarray(series.to_numpy(dtype=float, na_value=np.nan), dtype=float)


def texts(values: Any) -> np.ndarray:
    """Non-numeric values as an object array, NULL as None."""
    arr = np.array(pd.Series(values).astype(object).to_numpy(), dtype=object, copy=True)
    arr[pd.isna(arr)] = None
    return arr


def isnull(values: Any) -> np.ndarray:
    return np.asarray(pd.isna(pd.Series(values)).to_numpy(), dtype=bool)


def zero_filled(values: Any) -> np.ndarray:
    """The value a NULL is shared as (its validity bit says it is NULL)."""
    arr = floats(values)
    return np.where(np.isnan(arr), 0.0, arr)


def may_introduce_null(e: E.Expr) -> bool:
    """Whether the expression can be NULL where none of its columns is:
    what decides, from public facts only, whether a held result needs a
    validity bit when it is shared."""
    if isinstance(e, E.Lit):
        return e.value is None
    if isinstance(e, E.Case) and e.default is None:
        return True
    if isinstance(e, E.Func) and e.name != "coalesce":
        return True
    return any(may_introduce_null(c) for c in _children(e))


def _children(e: E.Expr) -> list[E.Expr]:
    out: list[E.Expr] = []
    for f in e.__dataclass_fields__:  # type: ignore[attr-defined]
        v = getattr(e, f)
        if isinstance(v, E.Expr):
            out.append(v)
        elif isinstance(v, tuple):
            for x in v:
                if isinstance(x, E.Expr):
                    out.append(x)
                elif isinstance(x, tuple):
                    out += [y for y in x if isinstance(y, E.Expr)]
    return out


def _vand(a: Any, b: Any) -> Any:
    """Both valid (None: always valid)."""
    if a is None:
        return b
    if b is None:
        return a
    return a * b


def _vfill(v: Any) -> Any:
    return 1.0 if v is None else v


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
        """The column's values secret-shared, NULL as 0 (see `valid`)."""
        if col.place == SECRET:
            return col.values
        if col.place == PUBLIC:
            return farray(self.sf, zero_filled(col.values))
        src = zero_filled(col.values) if self.me == col.place else np.zeros(n)
        return self.mpc.input(farray(self.sf, src), senders=self.chan.idx(col.place))

    def valid(self, col: Column, n: int) -> Any:
        """The column's secret 0/1 validity, or None where no row is NULL
        (public values: everybody sees it; held: `nullable`, public)."""
        if col.place == SECRET:
            return col.valid
        if col.place == PUBLIC:
            nulls = isnull(col.values)
            return farray(self.sf, (~nulls).astype(float)) if nulls.any() else None
        if not col.nullable:
            return None
        src = (~isnull(col.values)).astype(float) if self.me == col.place else np.zeros(n)
        return self.mpc.input(farray(self.sf, src), senders=self.chan.idx(col.place))

    async def secret(self, col: Column, n: int) -> Column:
        """The column secret-shared with its validity."""
        if col.place == SECRET:
            return col
        return Column(SECRET, await self.share(col, n), self.valid(col, n))

    def ones(self, n: int) -> Any:
        return farray(self.sf, np.ones(n))

    # --- inputs --------------------------------------------------------------
    async def load_inputs(self, frames: dict[str, pd.DataFrame]) -> None:
        """Each boundary relation: its row count, its public columns and
        which of its other columns hold NULLs are published (the leakage
        report lists all three); held columns stay at their owner."""
        places = self.plan.places
        for op_id, (party, name) in self.plan.inputs.items():
            op = self._ops[op_id]
            frame = frames.get(name)
            n = await self.chan.publish(len(frame) if self.me == party else None, party,
                                        self._leak_label(self.me, "row count", op))
            values: dict[str, Any] = {}
            if self.me == party:
                for f in op.schema:
                    values[f.name] = floats(frame[f.name]) if shareable(f.dtype) else texts(frame[f.name])
            private = [c for c, place in places[op_id].cols.items() if place != PUBLIC]
            flags: Any = None
            if private:
                mine = [bool(isnull(values[c]).any()) for c in private] if self.me == party else None
                flags = await self.chan.publish(mine, party, self._leak_label(self.me, "NULLs in", op))
            cols: dict[str, Column] = {}
            for c, place in places[op_id].cols.items():
                if place == PUBLIC:
                    vals = await self.chan.publish(values.get(c), party, self._leak_label(self.me, "public columns", op))
                    cols[c] = Column(PUBLIC, np.asarray(vals))
                    continue
                held = Column(party, values.get(c), nullable=bool(flags[private.index(c)]))
                cols[c] = await self.secret(held, int(n)) if place == SECRET else held  # SECRET: --mpc-only
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
            nullable = may_introduce_null(e) or any(rel.cols[c].nullable for c in e.columns())
            if holder != PUBLIC and self.me != holder:
                return Column(holder, None, nullable=nullable)
            return Column(holder, self._clear(e, rel), nullable=nullable)
        self._memo: dict[E.Expr, Any] = {}  # equal sub-expressions computed once (divisions are costly)
        x, v = await self._secret(e, rel)
        if not hasattr(x, "shape"):  # a constant
            x = farray(self.sf, np.full(rel.n, x))
        if v is not None and not hasattr(v, "shape"):
            v = None if v == 1.0 else farray(self.sf, np.full(rel.n, v))
        return Column(SECRET, x, v)

    def _clear(self, e: E.Expr, rel: SecRel) -> Any:
        """Cleartext evaluation (public columns, or columns this party holds)
        with SQL's NULLs: numbers and booleans as floats (NaN = NULL,
        booleans 1.0/0.0), text as objects (None = NULL); a comparison with
        a NULL is NULL, AND/OR follow three-valued logic."""
        n = rel.n

        def nulls(a: Any) -> np.ndarray:
            return isnull(a)

        def ev(x: E.Expr) -> Any:
            if isinstance(x, E.Col):
                return rel.cols[x.name].values
            if isinstance(x, E.Lit):
                if x.value is None:
                    return np.full(n, np.nan)
                if isinstance(x.value, str):
                    return np.full(n, x.value, dtype=object)
                if isinstance(x.value, (bool, int, float)):
                    return np.full(n, float(x.value))
                return np.full(n, x.value, dtype=object)
            if isinstance(x, E.Arith):
                a, b = floats(ev(x.left)), floats(ev(x.right))
                with np.errstate(divide="ignore", invalid="ignore"):
                    if x.op == "%":
                        return np.where(b == 0, np.nan, np.fmod(a, b))
                    return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide}[x.op](a, b)
            if isinstance(x, E.Compare):
                a, b = ev(x.left), ev(x.right)
                bad = nulls(a) | nulls(b)
                out = np.full(n, np.nan)
                ok = ~bad
                if ok.any():
                    fn = {"=": np.equal, "<>": np.not_equal, "<": np.less, "<=": np.less_equal,
                          ">": np.greater, ">=": np.greater_equal}[x.op]
                    out[ok] = fn(np.asarray(a)[ok], np.asarray(b)[ok]).astype(float)
                return out
            if isinstance(x, (E.And, E.Or)):
                parts = [floats(ev(a)) for a in x.args]
                stack = np.vstack(parts)
                hit, miss = (0.0, 1.0) if isinstance(x, E.And) else (1.0, 0.0)
                decided = (stack == hit).any(axis=0)
                known = (stack == miss).all(axis=0)
                return np.where(decided, hit, np.where(known, miss, np.nan))
            if isinstance(x, E.Not):
                return 1.0 - floats(ev(x.arg))
            if isinstance(x, E.Neg):
                return -floats(ev(x.arg))
            if isinstance(x, E.Cast):
                return ev(x.arg)
            if isinstance(x, E.IsNull):
                r = nulls(ev(x.arg))
                return (~r if x.negated else r).astype(float)
            if isinstance(x, E.InList):
                return ev(E.Or(tuple(E.Compare("=", x.arg, v) for v in x.values)))
            if isinstance(x, E.Case):
                out = ev(x.default) if x.default is not None else np.full(n, np.nan)
                out = np.asarray(out, dtype=object if np.asarray(out).dtype == object else float)
                for cond, val in reversed(x.whens):
                    hit = floats(ev(cond)) == 1.0
                    out = np.where(hit, ev(val), out)
                return out
            if isinstance(x, E.Func) and x.name == "coalesce":
                out = ev(x.args[0])
                for a in x.args[1:]:
                    out = np.where(nulls(out), ev(a), out)
                return out
            raise UnsupportedError(f"expression {x} in a secure stage")
        return ev(e)

    async def _secret(self, e: E.Expr, rel: SecRel) -> tuple[Any, Any]:
        memo = getattr(self, "_memo", None)
        if memo is None or isinstance(e, (E.Col, E.Lit)):
            return await self._secret_uncached(e, rel)
        if e not in memo:
            memo[e] = await self._secret_uncached(e, rel)
        return memo[e]

    async def _secret_uncached(self, e: E.Expr, rel: SecRel) -> tuple[Any, Any]:
        """(value, validity) of an expression under MPC. Values are secure
        arrays or Python floats (constants); validity is None (never NULL),
        a float, or a secure 0/1 array, and a NULL's value is 0. A
        boolean's value is 1 exactly when it is TRUE (so a NULL is not), and
        it is FALSE where valid - value is 1: NOT, AND and OR follow SQL's
        three-valued logic from these two bits."""
        sf, mpc = self.sf, self.mpc
        if isinstance(e, E.Col):
            col = rel.cols[e.name]
            return await self.share(col, rel.n), self.valid(col, rel.n)
        if isinstance(e, E.Lit):
            v = e.value
            if v is None:
                return 0.0, 0.0
            if isinstance(v, str):
                raise UnsupportedError("string literals in secure stages")
            return float(v), None
        if isinstance(e, E.Cast):
            return await self._secret(e.arg, rel)
        if isinstance(e, E.Neg):
            x, v = await self._secret(e.arg, rel)
            return -x, v
        if isinstance(e, E.IsNull):
            _, v = await self._secret(e.arg, rel)
            if e.negated:
                return _vfill(v), None
            return (0.0 if v is None else 1 - v), None
        if isinstance(e, E.Func) and e.name == "coalesce":
            x, v = await self._secret(e.args[0], rel)
            for arg in e.args[1:]:
                if v is None:
                    break
                y, w = await self._secret(arg, rel)
                x = v * x + (1 - v) * y
                v = v + (1 - v) * _vfill(w) if w is not None else None
            return x, v
        if isinstance(e, (E.Arith, E.Compare)):
            (a, va), (b, vb) = await self._secret(e.left, rel), await self._secret(e.right, rel)
            v = _vand(va, vb)
            if isinstance(a, float) and isinstance(b, float):
                return _fold(e.op, a, b), v
            if e.op == "+":
                return a + b, v
            if e.op == "-":
                return a - b, v
            if e.op == "*":
                return a * b, v
            if e.op == "/":
                if isinstance(b, float):
                    return a * (1.0 / b) if b else 0.0, v if b else 0.0
                if isinstance(a, float):
                    a = farray(sf, np.full(rel.n, a))
                if vb is not None:  # a NULL divisor is 0: divide by 1 instead (the result is NULL anyway)
                    b = b + (1 - vb)
                return mpc.np_divide(a, b), v
            if isinstance(a, float):
                a = farray(sf, np.full(rel.n, a))
            if isinstance(b, float):
                b = farray(sf, np.full(rel.n, b))
            if e.op == "=":
                c = a == b
            elif e.op == "<>":
                c = 1 - (a == b)
            elif e.op == "<":
                c = a < b
            elif e.op == "<=":
                c = 1 - (b < a)
            elif e.op == ">":
                c = b < a
            elif e.op == ">=":
                c = 1 - (a < b)
            else:
                raise UnsupportedError(f"operator {e.op} in a secure stage")
            return (c if v is None else c * v), v
        if isinstance(e, (E.And, E.Or)):
            t, v = await self._secret(e.args[0], rel)
            for arg in e.args[1:]:
                u, w = await self._secret(arg, rel)
                if isinstance(e, E.And):
                    t2 = t * u
                    if v is None and w is None:
                        t, v = t2, None
                        continue
                    f1, f2 = _vfill(v) - t, _vfill(w) - u
                    t, v = t2, t2 + f1 + f2 - f1 * f2
                else:
                    t2 = t + u - t * u
                    if v is None and w is None:
                        t, v = t2, None
                        continue
                    f1, f2 = _vfill(v) - t, _vfill(w) - u
                    t, v = t2, t2 + f1 * f2
            return t, v
        if isinstance(e, E.Not):
            t, v = await self._secret(e.arg, rel)
            return _vfill(v) - t, v
        if isinstance(e, E.Case):
            if e.default is not None:
                out, ov = await self._secret(e.default, rel)
            else:
                out, ov = 0.0, 0.0
            for cond, val in reversed(e.whens):
                (c, _), (x, xv) = await self._secret(cond, rel), await self._secret(val, rel)
                out = out + c * (x - out)
                if ov is not None or xv is not None:
                    ov = _vfill(ov) + c * (_vfill(xv) - _vfill(ov))
            return out, ov
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
        """Keep the rows where the predicate is TRUE (not FALSE, not NULL)."""
        col = await self.eval(pred, rel)
        if col.place == PUBLIC:
            return await self._take(rel, np.nonzero(floats(col.values) == 1.0)[0])
        if col.place != SECRET:  # held: the holder's TRUE rows, as a secret 0/1 mask
            col = Column(col.place, None if col.values is None else (floats(col.values) == 1.0).astype(float))
        b = await self.share(col, rel.n)  # a secret boolean's value is 1 exactly when it is TRUE
        return SecRel(rel.n, rel.cols, b if rel.mask is None else rel.mask * b, order=rel.order)

    async def _take(self, rel: SecRel, idx: np.ndarray, holder: str | None = None) -> SecRel:
        cols = {}
        for name, c in rel.cols.items():
            if c.place == SECRET:
                empty = farray(self.sf, np.zeros(0))
                cols[name] = Column(SECRET, c.values[idx] if len(idx) else empty,
                                    None if c.valid is None else c.valid[idx] if len(idx) else empty)
            else:
                cols[name] = Column(c.place, None if c.values is None else np.asarray(c.values)[idx],
                                    nullable=c.nullable)
        mask = rel.mask[idx] if rel.mask is not None else None
        return SecRel(len(idx), cols, mask, order=rel.order)  # public positions: the order stays known

    async def _project(self, op: O.Project, ins: list[SecRel], step: Any) -> SecRel:
        rel = ins[0]
        want = self.plan.places[id(op)].cols
        cols = {}
        for n, e in op.exprs:
            c = await self.eval(e, rel)
            if want[n] == SECRET and c.place != SECRET:  # e.g. a literal under --mpc-only
                vals = c.values if c.values is None or np.ndim(c.values) else np.full(rel.n, c.values)
                c = await self.secret(Column(c.place, vals, nullable=c.nullable), rel.n)
            cols[n] = c
        order = None
        if rel.order is not None:  # kept where every order column survives as a plain column
            renamed = {e.name: n for n, e in op.exprs if isinstance(e, E.Col)}
            if all(k in renamed for k in rel.order[1]):
                order = (rel.order[0], tuple(renamed[k] for k in rel.order[1]))
        return SecRel(rel.n, cols, rel.mask, order=order)

    async def _union(self, op: O.Union, ins: list[SecRel], step: Any) -> SecRel:
        a, b = ins
        cols = {}
        for (n, ca), cb in zip(a.cols.items(), b.cols.values()):
            if ca.place == cb.place and ca.place != SECRET:
                vals = None if ca.values is None else np.concatenate([ca.values, cb.values])
                cols[n] = Column(ca.place, vals, nullable=ca.nullable or cb.nullable)
            else:
                sa, sb = await self.secret(ca, a.n), await self.secret(cb, b.n)
                valid = None
                if sa.valid is not None or sb.valid is not None:
                    valid = self.mpc.np_concatenate((sa.valid if sa.valid is not None else self.ones(a.n),
                                                     sb.valid if sb.valid is not None else self.ones(b.n)))
                cols[n] = Column(SECRET, self.mpc.np_concatenate((sa.values, sb.values)), valid)
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
        """Bring key columns to the STP in the clear (as the plan allows),
        NULLs included: a secret key's validity is revealed with it."""
        label = self._leak_label(stp, what, op)
        out = []
        for k in keys:
            c = rel.cols[k]
            if c.place == PUBLIC or c.place == stp:
                out.append(c.values)
            elif c.place == SECRET:
                x = await self.chan.reveal(c.values, [stp], label)
                if c.valid is not None:
                    v = await self.chan.reveal(c.valid, [stp], label)
                    x = None if x is None else np.where(np.asarray(v) > 0.5, x, np.nan)
                out.append(x)
            else:
                out.append(await self.chan.send(c.values, c.place, [stp], label))
        return out if self.me == stp else None

    async def _select(self, stp: str, rel: SecRel, idx: np.ndarray | None, k: int, op: O.Op) -> SecRel:
        """Rows `idx` (known to the STP only) of rel: STP-visible columns are
        gathered by the STP in the clear; others by the padded gather
        (`mpc/secure/gather.py`), or a secret one-hot where it does not apply."""
        secret = [name for name, c in rel.cols.items() if c.place not in (PUBLIC, stp)]
        shared = [await self.secret(rel.cols[c], rel.n) for c in secret]
        rows = [c.values for c in shared]
        nullable = [i for i, c in enumerate(shared) if c.valid is not None]
        rows += [shared[i].valid for i in nullable]
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
            sel = self.mpc.input(farray(self.sf, onehot), senders=self.chan.idx(stp))
            picked = [sel @ r for r in rows]
        valid = {secret[i]: picked[len(secret) + j] for j, i in enumerate(nullable)}
        cols = {name: Column(SECRET, picked[secret.index(name)], valid.get(name)) if name in secret
                else Column(stp, np.asarray(c.values)[idx] if self.me == stp else None,
                            nullable=c.nullable or (c.place == PUBLIC and bool(isnull(c.values).any())))
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
        for lk, rk in zip(op.left_keys, op.right_keys):  # a NULL key matches nothing
            a, b = await self.secret(out.cols[lk], out.n), await self.secret(out.cols[rk], out.n)
            e = _mul(a.values == b.values, _mul(a.valid, b.valid))
            eq = e if eq is None else eq * e
        return SecRel(out.n, out.cols, _mul(out.mask, eq))

    # aggregates ---------------------------------------------------------------
    async def _sort(self, op: O.Sort, ins: list[SecRel], step: Any) -> SecRel:
        """ORDER BY under MPC: one oblivious sort by (invalid, keys, other
        columns), so valid rows come first in a canonical order (the reveal
        then shows only the result, not where its rows came from). A
        nullable key sorts by its NULL flag first (NULLS LAST or FIRST)."""
        rel = ins[0]
        names = list(rel.cols)
        if step.mode == "public":
            return await self._take(rel, _public_order([rel.cols[k.column].values for k in op.keys], op.keys, rel.n))
        mpc, n = self.mpc, rel.n
        if n == 0:
            return rel
        mask = rel.mask if rel.mask is not None else self.ones(n)
        keys = [k.column for k in op.keys]
        rest = [c for c in names if c not in keys]
        shared = {c: await self.secret(rel.cols[c], n) for c in names}
        rows: list[Any] = [1 - mask]
        where: dict[str, tuple[int, int | None, O.SortKey | None]] = {}
        for k in op.keys:
            c, vi = shared[k.column], None
            if c.valid is not None:
                vi = len(rows)
                rows.append(c.valid if k.nulls_first else 1 - c.valid)
            where[k.column] = (len(rows), vi, k)
            rows.append(c.values if k.ascending else -c.values)
        for name in rest:
            c, vi = shared[name], None
            if c.valid is not None:
                vi = len(rows)
                rows.append(c.valid)
            where[name] = (len(rows), vi, None)
            rows.append(c.values)
        nkeys = len(rows)
        rows.append(mask)
        srt = ob.sort_valid_first(mpc, rows, nkeys)
        cols = {}
        for name in names:
            xi, vi, k = where[name]
            x = srt[xi] if k is None or k.ascending else -srt[xi]
            v = None if vi is None else srt[vi] if k is None or k.nulls_first else 1 - srt[vi]
            cols[name] = Column(SECRET, x, v)
        return SecRel(n, cols, srt[-1] if rel.mask is not None else None, packed=True)

    async def _sorted_rows(self, rel: SecRel, names: list[str]) -> tuple[Any, list[tuple[int, int | None]]]:
        """Stack (invalid, each column's validity (if any) and value, mask)
        sorted by everything but the mask: equal rows (NULLs equal, as
        DISTINCT and GROUP BY want) become adjacent. Returns the sorted
        stack and each column's (value row, validity row)."""
        n = rel.n
        mask = rel.mask if rel.mask is not None else self.ones(n)
        rows: list[Any] = [1 - mask]
        where = ob.stack_keys(rows, [await self.secret(rel.cols[name], n) for name in names])
        nkeys = len(rows)
        rows.append(mask)
        return ob.sort_valid_first(self.mpc, rows, nkeys), where

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
        srt, where = await self._sorted_rows(rel, names)
        first, _ = ob.segment_bounds(mpc, sf, srt, srt.shape[0] - 1)
        cols = {c: Column(SECRET, srt[xi], None if vi is None else srt[vi]) for c, (xi, vi) in zip(names, where)}
        return SecRel(n, cols, first * srt[-1])

    async def _compact(self, rel: SecRel) -> SecRel:
        """Valid rows first, canonical order (sorted by every column), so
        revealing them shows the result and its size, nothing else."""
        names = list(rel.cols)
        srt, where = await self._sorted_rows(rel, names)
        cols = {c: Column(SECRET, srt[xi], None if vi is None else srt[vi]) for c, (xi, vi) in zip(names, where)}
        return SecRel(rel.n, cols, srt[-1], packed=True)

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
            known = rel.order is not None and ("*" in rel.order[0] or set(recipients) <= rel.order[0]) \
                and set(rel.order[1]) <= set(op.schema.names)
            # (where every recipient knows which row is which, by columns the
            # result shows anyway, the mask shows nothing more: no sort)
            if not rel.packed and not known and all(shareable(f.dtype) for f in op.schema):
                rel = await self._compact(rel)  # (public strings and dates cannot be shared, so not permuted)
            mask = await self.chan.reveal(rel.mask, recipients, lab)
        revealed: set[str] = set()  # came out of MPC as fixed-point floats
        for name, c in rel.cols.items():
            if c.place == PUBLIC:
                out[name] = np.asarray(c.values)
            elif c.place == SECRET or rel.mask is not None:
                s = await self.secret(c, rel.n)
                x = await self.chan.reveal(_mul(s.values, rel.mask), recipients, lab)
                if s.valid is not None:  # NULLs are part of the result
                    v = await self.chan.reveal(_mul(s.valid, rel.mask), recipients, lab)
                    x = None if x is None else np.where(np.asarray(v) > 0.5, x, np.nan)
                out[name] = x
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
    """A result column in its SQL type, NULLs kept (nullable Int64 /
    boolean where there are any). Numbers arrive as floats (public and
    held columns are carried as float64, values revealed from MPC are
    fixed point): integers and booleans are rounded."""
    if kind not in ("int64", "bool", "float64", "decimal"):
        return col
    vals = floats(col)
    nulls = np.isnan(vals)
    if kind in ("float64", "decimal"):
        return pd.Series(vals, index=col.index)
    if kind == "int64":
        out = pd.Series(np.round(np.where(nulls, 0.0, vals)).astype("int64"), index=col.index)
        return out.astype("Int64").mask(nulls) if nulls.any() else out
    out = pd.Series(np.where(nulls, 0.0, vals) > 0.5, index=col.index)
    return out.astype("boolean").mask(nulls) if nulls.any() else out


def _fold(op: str, a: float, b: float) -> float:
    """Two constants."""
    if op in ("=", "<>", "<", "<=", ">", ">="):
        return float({"=": a == b, "<>": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
    return float({"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}.get(op, 0.0))


def _mul(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a * b


def _match(left: list[np.ndarray], right: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Row index pairs of an inner equi-join, in a canonical order. A row
    with a NULL key matches nothing (SQL), not even another NULL."""
    lf = pd.DataFrame({f"k{i}": np.asarray(v) for i, v in enumerate(left)})
    rf = pd.DataFrame({f"k{i}": np.asarray(v) for i, v in enumerate(right)})
    lf["_li"], rf["_ri"] = np.arange(len(lf)), np.arange(len(rf))
    lf, rf = lf[~lf.drop(columns="_li").isna().any(axis=1)], rf[~rf.drop(columns="_ri").isna().any(axis=1)]
    m = lf.merge(rf, on=[f"k{i}" for i in range(len(left))]).sort_values(["_li", "_ri"])
    return m["_li"].to_numpy(dtype=int), m["_ri"].to_numpy(dtype=int)


def _public_order(keys: list[Any], spec: tuple[O.SortKey, ...], n: int) -> np.ndarray:
    """A stable ORDER BY over public columns, NULLS FIRST/LAST per key."""
    columns: list[np.ndarray] = []
    for vals, k in zip(keys, spec):
        series = pd.Series(vals, index=range(n))
        nulls = series.isna().to_numpy()
        rank = series.rank(method="dense").fillna(0).to_numpy()
        columns += [nulls if not k.nulls_first else ~nulls, rank if k.ascending else -rank]
    columns.append(np.arange(n))  # stable
    return np.lexsort(tuple(reversed(columns))) if n else np.zeros(0, dtype=int)
