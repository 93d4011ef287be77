"""GROUP BY in the secure stages, one method per way of grouping: global,
public keys, an STP's keys (one-hot, or sorted through the padded gather),
secret keys over a public domain (blocked one-hot), secret keys (oblivious
sort), and an aggregate fused with the join below it (match matrix).

A mixin of `Engine` (mpc/secure/engine.py): it uses the engine's sharing,
channel and plan, and keeps the engine module to the operators' plumbing.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ir import operators as O
from mpc.secure import oblivious as ob
from mpc.secure.gather import Roles, fetch
from mpc.secure.relation import PUBLIC, SECRET, Column, SecRel
from mpc.split import ONEHOT_MAX, gather_labels, gather_roles

BIG = float(2 ** 29)  # stands in for +infinity in masked MIN/MAX
#: rows per block of a one-hot GROUP BY (bounds MPyC's live intermediates)
ONEHOT_BLOCK = int(os.environ.get("MUSKETEER_MPC_BLOCK", "4096"))


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
            groups = sf.array(np.ones((1, rel.n))) if rel.n else None
            g, keys = 1, {}
        elif step.mode == "public":
            codes, uniq = _groups([rel.cols[k].values for k in op.keys])
            g = len(uniq[0]) if uniq else 0
            onehot = np.zeros((g, rel.n))
            onehot[codes, np.arange(rel.n)] = 1.0
            groups = sf.array(onehot)
            keys = {k: Column(PUBLIC, u) for k, u in zip(op.keys, uniq)}
            if rel.mask is None and g:  # group sizes are public: AVG divides by a public constant
                inv_sizes = sf.array(1.0 / np.bincount(codes, minlength=g), integral=False)
        elif step.mode == "hybrid":
            stp = step.stp
            kv = await self._keys_at(stp, rel, op.keys, op.input, "group keys")
            g_local, onehot, uniq = None, None, None
            if self.me == stp:
                codes, uniq = _groups(kv)
                g_local = len(uniq[0])
            g = await self.chan.publish(g_local, stp, self._leak_label(self.me, "group count", op))
            roles = gather_roles(self.chan.parties, stp)
            if roles is not None and rel.n and g * rel.n > ONEHOT_MAX:
                keys = {k: Column(stp, uniq[i] if self.me == stp else None) for i, k in enumerate(op.keys)}
                return await self._sorted_hybrid_aggregate(op, rel, keys, codes if self.me == stp else None, g,
                                                           Roles(stp, *roles, gather_labels(
                                                               self.plan.ref[id(op)],
                                                               "hybrid aggregation", f", when groups x rows > {ONEHOT_MAX}")))
            oh = np.zeros((g, rel.n))
            if self.me == stp:
                oh[codes, np.arange(rel.n)] = 1.0
            groups = mpc.input(sf.array(oh), senders=self.chan.idx(stp))
            keys = {k: Column(stp, uniq[i] if self.me == stp else None) for i, k in enumerate(op.keys)}
            if rel.mask is None and g and any(c.func == "avg" for _, c in op.aggs):
                # every row counts, so the STP knows each group's size: it
                # secret-shares 1/size and AVG is one product, not a secure division
                inv = 1.0 / np.bincount(codes, minlength=g) if self.me == stp else np.zeros(g)
                inv_sizes = mpc.input(sf.array(inv, integral=False), senders=self.chan.idx(stp))
        elif step.domain is not None and rel.n:  # oblivious, public key domain: one-hot by secure equality
            return await self._onehot_aggregate(op, rel, step.domain)
        elif step.domain is not None:
            g = len(step.domain)
            groups = None
            keys = {k: Column(PUBLIC, np.array([d[i] for d in step.domain])) for i, k in enumerate(op.keys)}
        else:
            return await self._sort_aggregate(op, rel)
        mask = rel.mask if rel.mask is not None else (self.ones(rel.n) if rel.n else None)
        cols: dict[str, Column] = dict(keys)
        count = None

        async def cnt() -> Any:
            nonlocal count
            if count is None:
                count = groups @ mask if rel.n else sf.array(np.zeros(g))
            return count

        for name, call in op.aggs:
            if call.func in ("count", "count_star"):
                cols[name] = Column(SECRET, await cnt())
                continue
            x = await self.share(rel.cols[call.arg], rel.n) if rel.n else None
            if call.func in ("sum", "avg"):
                s = groups @ (x * mask) if rel.n else sf.array(np.zeros(g))
                if call.func == "sum":
                    cols[name] = Column(SECRET, s)
                elif inv_sizes is not None:
                    cols[name] = Column(SECRET, s * inv_sizes)
                else:
                    cols[name] = Column(SECRET, mpc.np_divide(s, await cnt() + (1 - (await cnt() > 0.5))))
            else:  # min / max: rows outside the group (or masked out) become +-BIG
                sign = 1.0 if call.func == "min" else -1.0
                member = groups * mask.reshape(1, rel.n) if rel.n else None
                v = member * (sign * x).reshape(1, rel.n) + (1 - member) * BIG
                cols[name] = Column(SECRET, sign * mpc.np_amin(v, axis=1))
        out_mask = None
        if step.mode != "global" and rel.mask is not None:
            out_mask = (await cnt()) > 0.5
        return SecRel(g, cols, out_mask)

    async def _sorted_hybrid_aggregate(self, op: O.Aggregate, rel: SecRel, keys: dict[str, Column],
                                       codes: np.ndarray | None, g: int, roles: Roles) -> SecRel:
        """Hybrid GROUP BY without a secret (g x n) one-hot: the STP, which
        knows each row's group, has the rows fetched in group order (a
        permutation, through the padded gather), secret-shares where each
        group starts, segmented scans total every group on its last row,
        and a second fetch picks those g rows. O(n log n) instead of g*n."""
        mpc, sf, n, stp = self.mpc, self.sf, rel.n, roles.stp
        args = list(dict.fromkeys(c.arg for _, c in op.aggs if c.arg is not None))
        mask = rel.mask if rel.mask is not None else self.ones(n)
        order = start = last = None
        if self.me == stp:
            order = np.argsort(codes, kind="stable")
            srt = codes[order]
            start = np.ones(n, dtype=np.int64)
            start[1:] = srt[1:] != srt[:-1]
            last = np.flatnonzero(np.r_[srt[1:] != srt[:-1], True])  # group j's last row, j = 0..g-1
        rows = await fetch(mpc, sf, self.chan, mpc.np_stack([*[await self.share(rel.cols[a], n) for a in args], mask]),
                           order, n, roles)
        flags = mpc.input(sf.array(start if self.me == stp else np.zeros(n, dtype=np.int64)),
                          senders=self.chan.idx(stp))
        m = rows[-1]
        totals = [ob.segmented_scan(mpc, sf, mpc.np_stack([*[rows[i] * m for i in range(len(args))], m]), flags, "sum")]
        extreme = list(dict.fromkeys((c.func, c.arg) for _, c in op.aggs if c.func in ("min", "max")))
        for func, a in extreme:  # masked-out rows become +-BIG
            sign = 1.0 if func == "min" else -1.0
            v = m * (sign * rows[args.index(a)]) + (1 - m) * BIG
            totals.append(ob.segmented_scan(mpc, sf, v.reshape(1, n), flags, "min"))
        picked = await fetch(mpc, sf, self.chan, mpc.np_concatenate(totals, axis=0), last, g, roles)
        count = picked[len(args)]
        inv_sizes = None
        if rel.mask is None and any(c.func == "avg" for _, c in op.aggs):  # the STP knows the sizes
            inv = 1.0 / np.bincount(codes, minlength=g) if self.me == stp else np.zeros(g)
            inv_sizes = mpc.input(sf.array(inv, integral=False), senders=self.chan.idx(stp))
        cols: dict[str, Column] = dict(keys)
        for name, call in op.aggs:
            if call.func in ("count", "count_star"):
                cols[name] = Column(SECRET, count)
            elif call.func == "sum":
                cols[name] = Column(SECRET, picked[args.index(call.arg)])
            elif call.func == "avg":
                s = picked[args.index(call.arg)]
                cols[name] = Column(SECRET, s * inv_sizes if inv_sizes is not None
                                    else mpc.np_divide(s, count + (1 - (count > 0.5))))
            else:
                sign = 1.0 if call.func == "min" else -1.0
                cols[name] = Column(SECRET, sign * picked[len(args) + 1 + extreme.index((call.func, call.arg))])
        return SecRel(g, cols, count > 0.5 if rel.mask is not None else None)

    async def _onehot_aggregate(self, op: O.Aggregate, rel: SecRel, domain: tuple) -> SecRel:
        """GROUP BY secret keys over a public domain: a secret (g, n) one-hot
        by secure equality, then matrix products. It runs in blocks of
        `ONEHOT_BLOCK` rows with a barrier after each: MPyC keeps every
        pending equality's random bits alive until the barrier, which took
        ~0.2 MB per row per party (8 GB at 4e4 rows per party in the HHI
        `--mpc-only` baseline) when the whole matrix was built at once.
        The same secure operations run either way; only their grouping into
        rounds differs."""
        mpc, sf, n, g = self.mpc, self.sf, rel.n, len(domain)
        keyvals = [await self.share(rel.cols[k], n) for k in op.keys]
        args = list(dict.fromkeys(c.arg for _, c in op.aggs if c.arg is not None))
        xs = {a: await self.share(rel.cols[a], n) for a in args}
        count: Any = None
        sums: dict[str, Any] = {}
        extremes: dict[tuple[str, str], list[Any]] = {}
        summed = list(dict.fromkeys(c.arg for _, c in op.aggs if c.func in ("sum", "avg")))
        extreme = list(dict.fromkeys((c.func, c.arg) for _, c in op.aggs if c.func in ("min", "max")))
        for lo in range(0, n, ONEHOT_BLOCK):
            hi = min(n, lo + ONEHOT_BLOCK)
            groups = ob.onehot(mpc, sf, [k[lo:hi] for k in keyvals], domain)
            # rows outside the domain must not become groups
            mask = rel.mask[lo:hi] if rel.mask is not None else mpc.np_sum(groups, axis=0)
            part = groups @ mask
            count = part if count is None else count + part
            for a in summed:
                part = groups @ (xs[a][lo:hi] * mask)
                sums[a] = part if a not in sums else sums[a] + part
            for func, a in extreme:  # rows outside the group (or masked out) become +-BIG
                sign = 1.0 if func == "min" else -1.0
                member = groups * mask.reshape(1, hi - lo)
                v = member * (sign * xs[a][lo:hi]).reshape(1, hi - lo) + (1 - member) * BIG
                extremes.setdefault((func, a), []).append(mpc.np_amin(v, axis=1))
            await mpc.barrier("one-hot block")
        cols: dict[str, Column] = {k: Column(PUBLIC, np.array([d[i] for d in domain])) for i, k in enumerate(op.keys)}
        for name, call in op.aggs:
            if call.func in ("count", "count_star"):
                cols[name] = Column(SECRET, count)
            elif call.func == "sum":
                cols[name] = Column(SECRET, sums[call.arg])
            elif call.func == "avg":
                cols[name] = Column(SECRET, mpc.np_divide(sums[call.arg], count + (1 - (count > 0.5))))
            else:
                sign = 1.0 if call.func == "min" else -1.0
                parts = extremes[(call.func, call.arg)]
                best = parts[0] if len(parts) == 1 else mpc.np_amin(mpc.np_stack(parts, axis=1), axis=1)
                cols[name] = Column(SECRET, sign * best)
        return SecRel(g, cols, count > 0.5)

    async def _sort_aggregate(self, op: O.Aggregate, rel: SecRel) -> SecRel:
        """Group by secret keys nobody may see: sort the rows obliviously by
        (invalid, keys), mark where adjacent keys differ, run segmented
        scans; each group's total sits on its last row, which is the only
        valid output row of that group. n rows out, secret mask; the reveal
        compacts, so group sizes never show."""
        mpc, sf, n = self.mpc, self.sf, rel.n
        nk = len(op.keys)
        if n == 0:
            return SecRel(0, {name: Column(SECRET, sf.array(np.zeros(0))) for name in op.schema.names},
                          sf.array(np.zeros(0)))
        mask = rel.mask if rel.mask is not None else self.ones(n)
        args = [c.arg for _, c in op.aggs if c.arg is not None]
        argpos = {a: i for i, a in enumerate(dict.fromkeys(args))}
        rows = [1 - mask, *[await self.share(rel.cols[k], n) for k in op.keys],
                *[await self.share(rel.cols[a], n) for a in argpos], mask]
        srt = ob.sort_valid_first(mpc, rows, nk + 1)
        m = srt[-1]
        start, end = ob.segment_bounds(mpc, sf, srt, nk + 1)
        vals = srt[1 + nk: 1 + nk + len(argpos)]
        cols: dict[str, Column] = {k: Column(SECRET, srt[1 + i]) for i, k in enumerate(op.keys)}
        sums = ob.segmented_scan(mpc, sf, mpc.np_stack([*[vals[i] for i in range(len(argpos))], m]), start, "sum")
        count = sums[-1]
        scans: dict[str, Any] = {}
        for name, call in op.aggs:
            if call.func in ("count", "count_star"):
                cols[name] = Column(SECRET, count)
            elif call.func in ("sum", "avg"):
                s = sums[argpos[call.arg]]
                cols[name] = Column(SECRET, s if call.func == "sum" else mpc.np_divide(s, count + (1 - m)))
            else:
                if call.func not in scans:
                    scans[call.func] = ob.segmented_scan(mpc, sf, vals, start, call.func)
                cols[name] = Column(SECRET, scans[call.func][argpos[call.arg]])
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
            return SecRel(0, {name: Column(SECRET, sf.array(np.zeros(0))) for name in op.schema.names},
                          sf.array(np.zeros(0)))
        match = None
        for a, b in zip(sk, ok):
            e = (await self.share(side.cols[a], n)).reshape(n, 1) == (await self.share(other.cols[b], m)).reshape(1, m)
            match = e if match is None else match * e
        if other.mask is not None:
            match = match * other.mask.reshape(1, m)
        count = match @ self.ones(m)  # join rows per key-side row
        if side.mask is not None:
            count = count * side.mask
        partial: dict[str, Any] = {}
        for _, call in op.aggs:
            if call.arg is None or call.func in ("count", "count_star") or call.arg in partial:
                continue
            if call.arg in other.cols:
                s = match @ await self.share(other.cols[call.arg], m)
                partial[call.arg] = s * side.mask if side.mask is not None else s
            else:
                partial[call.arg] = (await self.share(side.cols[call.arg], n)) * count
        keyvals = [await self.share(side.cols[k], n) for k in op.keys]
        names = list(partial)
        if step.domain is not None:
            groups = ob.onehot(mpc, sf, keyvals, step.domain)
            sums = {a: groups @ partial[a] for a in names}
            total = groups @ count
            out_mask = total > 0.5
            cols: dict[str, Column] = {k: Column(PUBLIC, np.array([d[i] for d in step.domain]))
                                       for i, k in enumerate(op.keys)}
            g = len(step.domain)
        else:
            valid = count > 0.5  # rows that matched nothing are no group's
            nk = len(op.keys)
            rows = [1 - valid, *keyvals, *[partial[a] for a in names], count, valid]
            srt = ob.sort_valid_first(mpc, rows, nk + 1)
            start, end = ob.segment_bounds(mpc, sf, srt, nk + 1)
            scanned = ob.segmented_scan(mpc, sf, srt[1 + nk: 2 + nk + len(names)], start, "sum")
            sums = {a: scanned[i] for i, a in enumerate(names)}
            total = scanned[len(names)]
            out_mask = end * srt[-1]
            cols = {k: Column(SECRET, srt[1 + i]) for i, k in enumerate(op.keys)}
            g = n
        for name, call in op.aggs:
            if call.func in ("count", "count_star"):
                cols[name] = Column(SECRET, total)
            elif call.func == "sum":
                cols[name] = Column(SECRET, sums[call.arg])
            else:  # avg; empty groups are masked out, keep the division defined
                cols[name] = Column(SECRET, mpc.np_divide(sums[call.arg], total + (1 - out_mask)))
        return SecRel(g, cols, out_mask)


def _groups(keys: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Group code per row and the sorted distinct key values."""
    df = pd.DataFrame({f"k{i}": np.asarray(v) for i, v in enumerate(keys)})
    codes, uniq = pd.MultiIndex.from_frame(df).factorize(sort=True)
    return np.asarray(codes), [uniq.get_level_values(i).to_numpy() for i in range(len(keys))]
