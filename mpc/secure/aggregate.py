"""GROUP BY in the secure stages, one method per way of grouping: global,
public keys, an STP's keys (one-hot, or sorted through the padded gather),
secret keys over a public domain (blocked one-hot), secret keys (oblivious
sort), and an aggregate fused with the join below it (match matrix).

A mixin of `Engine` (mpc/secure/engine.py): it uses the engine's sharing,
channel and plan, and keeps the engine module to the operators' plumbing.

SQL NULLs: an aggregated column with a validity bit (`Column.valid`) is
skipped where it is NULL (its value is 0, so sums need nothing; counts sum
the validity, MIN/MAX treat NULL as out of the group). SUM, AVG, MIN and
MAX of a group with no non-NULL value are NULL: their own validity is
"non-NULL count > 0", computed where a NULL argument or an empty group
(a global aggregate over filtered rows) makes it possible. NULL group keys
form one group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from musketeer.ir import operators as O
from musketeer.mpc.secure import oblivious as ob
from musketeer.mpc.secure.gather import Roles, fetch, sorted_runs
from musketeer.mpc.secure.relation import PUBLIC, SECRET, Column, SecRel, farray
from musketeer.mpc.split import env_int, gather_labels, gather_roles, onehot_max

BIG = float(2 ** 29)  # stands in for +infinity in masked MIN/MAX


def onehot_block() -> int:
    """Rows per block of a one-hot GROUP BY (bounds MPyC's live intermediates)."""
    return env_int("MUSKETEER_MPC_BLOCK", 4096, 1)


class AggregateOps:
    """Aggregate operators of the secure engine (see the module docstring)."""

    mpc: Any
    sf: Any
    me: str

    async def _aggregate(self, op: O.Aggregate, ins: list[SecRel], step: Any) -> SecRel:
        if step.fused:
            return await self._fused_aggregate(op, step)
        rel = ins[0]
        mpc, sf = self.mpc, self.sf
        inv_sizes = None  # secret or public 1/group size, where it is known outside MPC
        if step.mode == "global":
            groups = farray(sf, np.ones((1, rel.n))) if rel.n else None
            g, keys = 1, {}
        elif step.mode == "public":
            codes, uniq = _groups([rel.cols[k].values for k in op.keys], rel.n)
            g = len(uniq[0]) if uniq else 0
            onehot = np.zeros((g, rel.n))
            onehot[codes, np.arange(rel.n)] = 1.0
            groups = farray(sf, onehot)
            keys = {k: Column(PUBLIC, u) for k, u in zip(op.keys, uniq)}
            if rel.mask is None and g:  # group sizes are public: AVG divides by a public constant
                inv_sizes = farray(sf, 1.0 / np.bincount(codes, minlength=g), integral=False)
        elif step.mode == "hybrid":
            stp = step.stp
            kv = await self._keys_at(stp, rel, op.keys, op.input, "group keys")
            g_local, codes, uniq = None, None, None
            if self.me == stp:
                codes, uniq = _groups(kv, rel.n)
                g_local = len(uniq[0]) if uniq else 0
            g = await self.chan.publish(g_local, stp, self._leak_label(self.me, "group count", op))
            keys = {k: Column(stp, uniq[i] if self.me == stp else None, nullable=self._key_nullable(rel.cols[k]))
                    for i, k in enumerate(op.keys)}
            roles = gather_roles(self.chan.parties, stp)
            limit = onehot_max()
            if roles is not None and rel.n and g * rel.n > limit:
                return await self._sorted_hybrid_aggregate(op, rel, keys, codes, g, Roles(stp, *roles, gather_labels(
                    self.plan.ref[id(op)], "hybrid aggregation", f", when groups x rows > {limit}")))
            oh = np.zeros((g, rel.n))
            if self.me == stp:
                oh[codes, np.arange(rel.n)] = 1.0
            groups = mpc.input(farray(sf, oh), senders=self.chan.idx(stp))
            if rel.mask is None and g and any(c.func == "avg" for _, c in op.aggs):
                inv_sizes = self._stp_inverse_sizes(stp, codes, g)
        elif step.domain is not None and rel.n:  # oblivious, public key domain: one-hot by secure equality
            return await self._onehot_aggregate(op, rel, step.domain)
        elif step.domain is not None:
            g = len(step.domain)
            groups = None
            keys = _domain_keys(op.keys, step.domain)
        else:
            return await self._sort_aggregate(op, rel)
        n = rel.n
        mask = rel.mask if rel.mask is not None else (self.ones(n) if n else None)
        masked = step.mode != "global" and rel.mask is not None  # groups may end up empty
        args = list(dict.fromkeys(c.arg for _, c in op.aggs if c.arg is not None))
        shared = {a: await self.secret(rel.cols[a], n) for a in args} if n else {}
        valid = {a: shared[a].valid if n else None for a in args}
        count = groups @ mask if n else farray(sf, np.zeros(g))
        cnts = {a: count if valid[a] is None else groups @ (mask * valid[a]) for a in args} if n else \
            {a: count for a in args}
        sums = {a: groups @ (shared[a].values * mask) if n else farray(sf, np.zeros(g))
                for a in dict.fromkeys(c.arg for _, c in op.aggs if c.func in ("sum", "avg"))}
        extremes: dict[tuple[str, str], Any] = {}
        for func, a in dict.fromkeys((c.func, c.arg) for _, c in op.aggs if c.func in ("min", "max")):
            if not n:
                extremes[(func, a)] = farray(sf, np.zeros(g))
                continue
            # rows outside the group, masked out or NULL become +-BIG
            sign = 1.0 if func == "min" else -1.0
            member = groups * _and(mask, valid[a]).reshape(1, n)
            v = member * (sign * shared[a].values).reshape(1, n) + (1 - member) * BIG
            extremes[(func, a)] = sign * mpc.np_amin(v, axis=1)
        if step.mode == "global":  # no row, or every row filtered out: SUM/AVG/MIN/MAX are NULL
            maybe_empty = set(args) if (rel.mask is not None or not n) else set()
        else:
            maybe_empty = set()
        nullable = {a for a in args if valid[a] is not None} | maybe_empty
        if any(valid[a] is not None for a in args):
            inv_sizes = None  # group sizes count NULLs too
        cols, nonempty = self._columns(op, keys, count, sums, extremes, inv_sizes=inv_sizes, masked=masked,
                                       cnts=cnts, nullable=nullable)
        order = None
        if step.mode in ("public", "hybrid") and op.keys:
            order = (frozenset({"*"} if step.mode == "public" else {step.stp}), tuple(op.keys))
        return SecRel(g, cols, nonempty if masked else None, order=order)

    def _columns(self, op: O.Aggregate, keys: dict[str, Column], count: Any, sums: dict[str, Any],
                 extremes: dict[tuple[str, str], Any], nonempty: Any = None, inv_sizes: Any = None,
                 masked: bool = False, cnts: dict[str, Any] | None = None,
                 nullable: set[str] | frozenset[str] = frozenset()) -> tuple[dict[str, Column], Any]:
        """Each aggregate's output column from per-group totals: COUNT is
        `count`, SUM reads `sums` by argument, MIN/MAX read `extremes` by
        (function, argument). AVG is the sum times `inv_sizes` where the
        group sizes are known outside MPC, else divided by the count, kept
        non-zero for empty groups by `nonempty` (secret 0/1 per group;
        `count > 0.5` is computed here, once, when not given). Returns the
        columns and `nonempty`, which `masked` (groups may be empty: the
        caller masks its output with it) always computes, else None if
        nothing needed it. `cnts[a]` counts a's non-NULL values per group
        (default: `count`); for each argument in `nullable` (it has NULLs,
        or a group may be empty) SUM/AVG/MIN/MAX get a validity bit,
        non-NULL count > 0 (a NULL's value is left 0)."""
        cols = dict(keys)
        cnts = cnts or {}
        nonnull: dict[str, Any] = {}

        def has(a: str) -> Any:
            if a not in nonnull:
                nonnull[a] = cnts.get(a, count) > 0.5
            return nonnull[a]

        for name, call in op.aggs:
            a = call.arg
            valid = has(a) if a in nullable and call.func != "count" else None
            if call.func == "count_star":
                cols[name] = Column(SECRET, count)
            elif call.func == "count":
                cols[name] = Column(SECRET, cnts.get(a, count))
            elif call.func == "sum":
                cols[name] = Column(SECRET, sums[a], valid)
            elif call.func == "avg" and inv_sizes is not None and a not in nullable:
                cols[name] = Column(SECRET, sums[a] * inv_sizes)
            elif call.func == "avg":
                if a in nullable:
                    safe = has(a)
                else:
                    if nonempty is None:
                        nonempty = count > 0.5
                    safe = nonempty
                cols[name] = Column(SECRET, self.mpc.np_divide(sums[a], cnts.get(a, count) + (1 - safe)), valid)
            else:
                x = extremes[(call.func, a)]
                cols[name] = Column(SECRET, x if valid is None else x * valid, valid)
        if masked and nonempty is None:
            nonempty = count > 0.5
        return cols, nonempty

    def _key_nullable(self, col: Column) -> bool:
        """Whether a key column may be NULL (a fact every party knows)."""
        if col.place == SECRET:
            return col.valid is not None
        if col.place == PUBLIC:
            return bool(pd.isna(pd.Series(col.values)).any())
        return col.nullable

    def _stp_inverse_sizes(self, stp: str, codes: np.ndarray | None, g: int) -> Any:
        """1/size per group, secret-shared by the STP: when every row counts,
        the STP knows each group's size, so AVG is one product, not a secure
        division."""
        inv = 1.0 / np.bincount(codes, minlength=g) if self.me == stp else np.zeros(g)
        return self.mpc.input(farray(self.sf, inv, integral=False), senders=self.chan.idx(stp))

    async def _sorted_hybrid_aggregate(self, op: O.Aggregate, rel: SecRel, keys: dict[str, Column],
                                       codes: np.ndarray | None, g: int, roles: Roles) -> SecRel:
        """Hybrid GROUP BY without a secret (g x n) one-hot: the STP, which
        knows each row's group, has the rows fetched in group order (a
        permutation, through the padded gather), secret-shares where each
        group starts, segmented scans total every group on its last row,
        and a second fetch picks those g rows. O(n log n) instead of g*n."""
        mpc, sf, n, stp = self.mpc, self.sf, rel.n, roles.stp
        args = list(dict.fromkeys(c.arg for _, c in op.aggs if c.arg is not None))
        shared = {a: await self.secret(rel.cols[a], n) for a in args}
        nullable = [a for a in args if shared[a].valid is not None]
        mask = rel.mask if rel.mask is not None else self.ones(n)
        order = start = last = None
        if self.me == stp:
            order, _, start = sorted_runs(codes)
            last = np.r_[np.flatnonzero(start[1:]), n - 1]  # group j's last row, j = 0..g-1
        stack = [*[shared[a].values for a in args], *[shared[a].valid for a in nullable], mask]
        rows = await fetch(mpc, sf, self.chan, mpc.np_stack(stack), order, n, roles)
        flags = mpc.input(farray(sf, start if self.me == stp else np.zeros(n, dtype=np.int64)),
                          senders=self.chan.idx(stp))
        m = rows[-1]
        live = {a: rows[len(args) + i] * m for i, a in enumerate(nullable)}  # counted: in the filter, not NULL
        sums_in = [*[rows[i] * m for i in range(len(args))], *[live[a] for a in nullable], m]
        totals = [ob.segmented_scan(mpc, sf, mpc.np_stack(sums_in), flags, "sum")]
        extreme = list(dict.fromkeys((c.func, c.arg) for _, c in op.aggs if c.func in ("min", "max")))
        for func, a in extreme:  # masked-out and NULL rows become +-BIG
            sign = 1.0 if func == "min" else -1.0
            keep = live.get(a, m)
            v = keep * (sign * rows[args.index(a)]) + (1 - keep) * BIG
            totals.append(ob.segmented_scan(mpc, sf, v.reshape(1, n), flags, "min"))
        picked = await fetch(mpc, sf, self.chan, mpc.np_concatenate(totals, axis=0), last, g, roles)
        base = len(args) + len(nullable)
        count = picked[base]
        cnts = {a: picked[len(args) + i] for i, a in enumerate(nullable)}
        inv_sizes = None
        if rel.mask is None and not nullable and any(c.func == "avg" for _, c in op.aggs):
            inv_sizes = self._stp_inverse_sizes(stp, codes, g)
        sums = {a: picked[i] for i, a in enumerate(args)}
        extremes = {(func, a): (1.0 if func == "min" else -1.0) * picked[base + 1 + i]
                    for i, (func, a) in enumerate(extreme)}
        masked = rel.mask is not None
        cols, nonempty = self._columns(op, keys, count, sums, extremes, inv_sizes=inv_sizes, masked=masked,
                                       cnts=cnts, nullable=set(nullable))
        return SecRel(g, cols, nonempty if masked else None, order=(frozenset({stp}), tuple(op.keys)))

    async def _onehot_aggregate(self, op: O.Aggregate, rel: SecRel, domain: tuple) -> SecRel:
        """GROUP BY secret keys over a public domain: a secret (g, n) one-hot
        by secure equality, then matrix products. It runs in blocks of
        `MUSKETEER_MPC_BLOCK` (default 4096) rows with a barrier after each: MPyC keeps every
        pending equality's random bits alive until the barrier, which took
        ~0.2 MB per row per party (8 GB at 4e4 rows per party in the HHI
        `--mpc-only` baseline) when the whole matrix was built at once.
        The same secure operations run either way; only their grouping into
        rounds differs."""
        mpc, sf, n, g = self.mpc, self.sf, rel.n, len(domain)
        keyvals = [await self.share(rel.cols[k], n) for k in op.keys]  # literals: never NULL
        args = list(dict.fromkeys(c.arg for _, c in op.aggs if c.arg is not None))
        shared = {a: await self.secret(rel.cols[a], n) for a in args}
        xs = {a: shared[a].values for a in args}
        nullable = [a for a in args if shared[a].valid is not None]
        cnts: dict[str, Any] = {}
        count: Any = None
        sums: dict[str, Any] = {}
        extremes: dict[tuple[str, str], list[Any]] = {}
        summed = list(dict.fromkeys(c.arg for _, c in op.aggs if c.func in ("sum", "avg")))
        extreme = list(dict.fromkeys((c.func, c.arg) for _, c in op.aggs if c.func in ("min", "max")))
        block = onehot_block()
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            groups = ob.onehot(mpc, sf, [k[lo:hi] for k in keyvals], domain)
            # rows outside the domain must not become groups
            mask = rel.mask[lo:hi] if rel.mask is not None else mpc.np_sum(groups, axis=0)
            part = groups @ mask
            count = part if count is None else count + part
            for a in nullable:
                part = groups @ (mask * shared[a].valid[lo:hi])
                cnts[a] = part if a not in cnts else cnts[a] + part
            for a in summed:
                part = groups @ (xs[a][lo:hi] * mask)
                sums[a] = part if a not in sums else sums[a] + part
            for func, a in extreme:  # rows outside the group (or masked out, or NULL) become +-BIG
                sign = 1.0 if func == "min" else -1.0
                keep = mask * shared[a].valid[lo:hi] if a in nullable else mask
                member = groups * keep.reshape(1, hi - lo)
                v = member * (sign * xs[a][lo:hi]).reshape(1, hi - lo) + (1 - member) * BIG
                extremes.setdefault((func, a), []).append(mpc.np_amin(v, axis=1))
            await mpc.barrier("one-hot block")
        best = {}
        for func, a in extreme:
            parts = extremes[(func, a)]
            low = parts[0] if len(parts) == 1 else mpc.np_amin(mpc.np_stack(parts, axis=1), axis=1)
            best[(func, a)] = (1.0 if func == "min" else -1.0) * low
        cols, nonempty = self._columns(op, _domain_keys(op.keys, domain), count, sums, best, masked=True,
                                       cnts=cnts, nullable=set(nullable))
        return SecRel(g, cols, nonempty)

    async def _sort_aggregate(self, op: O.Aggregate, rel: SecRel) -> SecRel:
        """Group by secret keys nobody may see: sort the rows obliviously by
        (invalid, keys), mark where adjacent keys differ, run segmented
        scans; each group's total sits on its last row, which is the only
        valid output row of that group. n rows out, secret mask; the reveal
        compacts, so group sizes never show."""
        mpc, sf, n = self.mpc, self.sf, rel.n
        nk = len(op.keys)
        if n == 0:
            return SecRel(0, {name: Column(SECRET, farray(sf, np.zeros(0))) for name in op.schema.names},
                          farray(sf, np.zeros(0)))
        mask = rel.mask if rel.mask is not None else self.ones(n)
        argpos = {a: i for i, a in enumerate(dict.fromkeys(c.arg for _, c in op.aggs if c.arg is not None))}
        rows: list[Any] = [1 - mask]
        keypos = ob.stack_keys(rows, [await self.secret(rel.cols[k], n) for k in op.keys])
        nsort = len(rows)
        shared = {a: await self.secret(rel.cols[a], n) for a in argpos}
        nullable = [a for a in argpos if shared[a].valid is not None]
        rows += [shared[a].values for a in argpos]
        rows += [shared[a].valid for a in nullable]
        rows.append(mask)
        srt = ob.sort_valid_first(mpc, rows, nsort)
        m = srt[-1]
        start, end = ob.segment_bounds(mpc, sf, srt, nsort)
        vals = srt[nsort: nsort + len(argpos)]
        valid = {a: srt[nsort + len(argpos) + i] for i, a in enumerate(nullable)}
        cols: dict[str, Column] = {k: Column(SECRET, srt[xi], None if vi is None else srt[vi])
                                   for k, (xi, vi) in zip(op.keys, keypos)}
        scanned = ob.segmented_scan(mpc, sf, mpc.np_stack([*[vals[i] for i in range(len(argpos))],
                                                          *[valid[a] for a in nullable], m]), start, "sum")
        count = scanned[-1]
        cnts = {a: scanned[len(argpos) + i] for i, a in enumerate(nullable)}
        extremes: dict[tuple[str, str], Any] = {}
        for func, a in dict.fromkeys((c.func, c.arg) for _, c in op.aggs if c.func in ("min", "max")):
            x = vals[argpos[a]]
            if a in valid:  # a NULL never wins: it stands in as +-BIG
                x = valid[a] * x + (1 - valid[a]) * (BIG if func == "min" else -BIG)
            extremes[(func, a)] = ob.segmented_scan(mpc, sf, x.reshape(1, n), start, func)[0]
        # a valid row's group is never empty: `m` keeps AVG's division defined
        cols, _ = self._columns(op, cols, count, {a: scanned[i] for a, i in argpos.items()}, extremes, nonempty=m,
                                cnts=cnts, nullable=set(nullable))
        return SecRel(n, cols, end * m)

    async def _fused_aggregate(self, op: O.Aggregate, step: Any) -> SecRel:
        """SUM/COUNT/AVG grouped by one side's columns over an oblivious join,
        without its n*m rows: M[i, j] = (keys match) * masks; each row i of
        the key side carries count_i = sum_j M[i, j] and, per aggregated
        column x of the other side, sum_j M[i, j] x_j (of its own side:
        x_i count_i). Those per-row partials are then summed per group
        (one-hot or sort-based) exactly like any oblivious aggregate, with
        rows that matched nothing masked out."""
        mpc, sf = self.mpc, self.sf
        join = op.input
        assert isinstance(join, O.Join)
        left, right = self._fused_inputs[id(join)]
        swap = not set(op.keys) <= set(join.left.schema.names)
        side, other = (right, left) if swap else (left, right)
        sk, ok = (join.right_keys, join.left_keys) if swap else (join.left_keys, join.right_keys)
        n, m = side.n, other.n
        if n == 0 or m == 0:
            return SecRel(0, {name: Column(SECRET, farray(sf, np.zeros(0))) for name in op.schema.names},
                          farray(sf, np.zeros(0)))
        match = None
        for a, b in zip(sk, ok):  # a NULL key matches nothing
            ca, cb = await self.secret(side.cols[a], n), await self.secret(other.cols[b], m)
            e = ca.values.reshape(n, 1) == cb.values.reshape(1, m)
            if ca.valid is not None:
                e = e * ca.valid.reshape(n, 1)
            if cb.valid is not None:
                e = e * cb.valid.reshape(1, m)
            match = e if match is None else match * e
        if other.mask is not None:
            match = match * other.mask.reshape(1, m)
        count = match @ self.ones(m)  # join rows per key-side row
        if side.mask is not None:
            count = count * side.mask
        partial: dict[str, Any] = {}
        cnt_rows: dict[str, Any] = {}  # per key-side row: join rows where the argument is not NULL
        for _, call in op.aggs:
            if call.arg is None or call.arg in partial:
                continue
            if call.arg in other.cols:
                c = await self.secret(other.cols[call.arg], m)
                s = match @ c.values
                partial[call.arg] = s * side.mask if side.mask is not None else s
                if c.valid is not None:
                    k = match @ c.valid
                    cnt_rows[call.arg] = k * side.mask if side.mask is not None else k
            else:
                c = await self.secret(side.cols[call.arg], n)
                partial[call.arg] = c.values * count
                if c.valid is not None:
                    cnt_rows[call.arg] = c.valid * count
        keys = [await self.secret(side.cols[k], n) for k in op.keys]
        names = list(partial)
        nullable = list(cnt_rows)
        if step.domain is not None:  # keys from literals: never NULL
            groups = ob.onehot(mpc, sf, [c.values for c in keys], step.domain)
            sums = {a: groups @ partial[a] for a in names}
            cnts = {a: groups @ cnt_rows[a] for a in nullable}
            total = groups @ count
            out_mask = total > 0.5
            cols: dict[str, Column] = _domain_keys(op.keys, step.domain)
            g = len(step.domain)
        else:
            valid = count > 0.5  # rows that matched nothing are no group's
            rows: list[Any] = [1 - valid]
            keypos = ob.stack_keys(rows, keys)
            nsort = len(rows)
            rows += [*[partial[a] for a in names], *[cnt_rows[a] for a in nullable], count, valid]
            srt = ob.sort_valid_first(mpc, rows, nsort)
            start, end = ob.segment_bounds(mpc, sf, srt, nsort)
            scanned = ob.segmented_scan(mpc, sf, srt[nsort: nsort + len(names) + len(nullable) + 1], start, "sum")
            sums = {a: scanned[i] for i, a in enumerate(names)}
            cnts = {a: scanned[len(names) + i] for i, a in enumerate(nullable)}
            total = scanned[len(names) + len(nullable)]
            out_mask = end * srt[-1]
            cols = {k: Column(SECRET, srt[xi], None if vi is None else srt[vi]) for k, (xi, vi) in zip(op.keys, keypos)}
            g = n
        # empty groups are masked out: `out_mask` keeps AVG's division defined
        cols, _ = self._columns(op, cols, total, sums, {}, nonempty=out_mask, cnts=cnts, nullable=set(nullable))
        return SecRel(g, cols, out_mask)


def _and(a: Any, b: Any) -> Any:
    if b is None:
        return a
    return b if a is None else a * b


def _domain_keys(keys: tuple[str, ...], domain: tuple) -> dict[str, Column]:
    """The public key columns of a GROUP BY over a public domain (one group per entry)."""
    return {k: Column(PUBLIC, np.array([d[i] for d in domain])) for i, k in enumerate(keys)}


def _groups(keys: list[np.ndarray], n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Group code per row and the sorted distinct key values; NULL keys
    (NaN / None) form one group, as in SQL's GROUP BY."""
    if not keys:
        return np.zeros(n, dtype=np.int64), []
    df = pd.DataFrame({f"k{i}": np.asarray(v) for i, v in enumerate(keys)}, index=range(n))
    codes = df.groupby(list(df.columns), dropna=False, sort=True).ngroup().to_numpy().astype(np.int64)
    first = pd.Series(np.arange(n)).groupby(codes).first().to_numpy()
    return codes, [np.asarray(v)[first] for v in keys]
