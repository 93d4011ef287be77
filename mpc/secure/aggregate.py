"""GROUP BY in the secure stages, one method per way of grouping: global,
public keys, an STP's keys (one-hot, or sorted through the padded gather),
secret keys over a public domain (blocked one-hot), secret keys (oblivious
sort), and an aggregate fused with the join below it (match matrix).

A mixin of `Engine` (mpc/secure/engine.py): it uses the engine's sharing,
channel and plan, and keeps the engine module to the operators' plumbing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from musketeer.ir import operators as O
from musketeer.mpc.secure import oblivious as ob
from musketeer.mpc.secure.gather import Roles, fetch, sorted_runs
from musketeer.mpc.secure.relation import PUBLIC, SECRET, Column, SecRel
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
            g_local, codes, uniq = None, None, None
            if self.me == stp:
                codes, uniq = _groups(kv)
                g_local = len(uniq[0])
            g = await self.chan.publish(g_local, stp, self._leak_label(self.me, "group count", op))
            keys = {k: Column(stp, uniq[i] if self.me == stp else None) for i, k in enumerate(op.keys)}
            roles = gather_roles(self.chan.parties, stp)
            limit = onehot_max()
            if roles is not None and rel.n and g * rel.n > limit:
                return await self._sorted_hybrid_aggregate(op, rel, keys, codes, g, Roles(stp, *roles, gather_labels(
                    self.plan.ref[id(op)], "hybrid aggregation", f", when groups x rows > {limit}")))
            oh = np.zeros((g, rel.n))
            if self.me == stp:
                oh[codes, np.arange(rel.n)] = 1.0
            groups = mpc.input(sf.array(oh), senders=self.chan.idx(stp))
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
        count = None
        if masked or any(c.func in ("count", "count_star") or (c.func == "avg" and inv_sizes is None)
                         for _, c in op.aggs):
            count = groups @ mask if n else sf.array(np.zeros(g))
        xs = {a: await self.share(rel.cols[a], n) if n else None
              for a in dict.fromkeys(c.arg for _, c in op.aggs if c.arg is not None)}
        sums = {a: groups @ (xs[a] * mask) if n else sf.array(np.zeros(g))
                for a in dict.fromkeys(c.arg for _, c in op.aggs if c.func in ("sum", "avg"))}
        extremes: dict[tuple[str, str], Any] = {}
        member = None
        for func, a in dict.fromkeys((c.func, c.arg) for _, c in op.aggs if c.func in ("min", "max")):
            # rows outside the group (or masked out) become +-BIG
            sign = 1.0 if func == "min" else -1.0
            if member is None:
                member = groups * mask.reshape(1, n) if n else None
            v = member * (sign * xs[a]).reshape(1, n) + (1 - member) * BIG
            extremes[(func, a)] = sign * mpc.np_amin(v, axis=1)
        cols, nonempty = self._columns(op, keys, count, sums, extremes, inv_sizes=inv_sizes, masked=masked)
        return SecRel(g, cols, nonempty if masked else None)

    def _columns(self, op: O.Aggregate, keys: dict[str, Column], count: Any, sums: dict[str, Any],
                 extremes: dict[tuple[str, str], Any], nonempty: Any = None, inv_sizes: Any = None,
                 masked: bool = False) -> tuple[dict[str, Column], Any]:
        """Each aggregate's output column from per-group totals: COUNT is
        `count`, SUM reads `sums` by argument, MIN/MAX read `extremes` by
        (function, argument). AVG is the sum times `inv_sizes` where the
        group sizes are known outside MPC, else divided by the count, kept
        non-zero for empty groups by `nonempty` (secret 0/1 per group;
        `count > 0.5` is computed here, once, when not given). Returns the
        columns and `nonempty`, which `masked` (groups may be empty: the
        caller masks its output with it) always computes, else None if
        nothing needed it."""
        cols = dict(keys)
        for name, call in op.aggs:
            if call.func in ("count", "count_star"):
                cols[name] = Column(SECRET, count)
            elif call.func == "sum":
                cols[name] = Column(SECRET, sums[call.arg])
            elif call.func == "avg" and inv_sizes is not None:
                cols[name] = Column(SECRET, sums[call.arg] * inv_sizes)
            elif call.func == "avg":
                if nonempty is None:
                    nonempty = count > 0.5
                cols[name] = Column(SECRET, self.mpc.np_divide(sums[call.arg], count + (1 - nonempty)))
            else:
                cols[name] = Column(SECRET, extremes[(call.func, call.arg)])
        if masked and nonempty is None:
            nonempty = count > 0.5
        return cols, nonempty

    def _stp_inverse_sizes(self, stp: str, codes: np.ndarray | None, g: int) -> Any:
        """1/size per group, secret-shared by the STP: when every row counts,
        the STP knows each group's size, so AVG is one product, not a secure
        division."""
        inv = 1.0 / np.bincount(codes, minlength=g) if self.me == stp else np.zeros(g)
        return self.mpc.input(self.sf.array(inv, integral=False), senders=self.chan.idx(stp))

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
            order, _, start = sorted_runs(codes)
            last = np.r_[np.flatnonzero(start[1:]), n - 1]  # group j's last row, j = 0..g-1
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
        if rel.mask is None and any(c.func == "avg" for _, c in op.aggs):
            inv_sizes = self._stp_inverse_sizes(stp, codes, g)
        sums = {a: picked[i] for i, a in enumerate(args)}
        extremes = {(func, a): (1.0 if func == "min" else -1.0) * picked[len(args) + 1 + i]
                    for i, (func, a) in enumerate(extreme)}
        masked = rel.mask is not None
        cols, nonempty = self._columns(op, keys, count, sums, extremes, inv_sizes=inv_sizes, masked=masked)
        return SecRel(g, cols, nonempty if masked else None)

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
        keyvals = [await self.share(rel.cols[k], n) for k in op.keys]
        args = list(dict.fromkeys(c.arg for _, c in op.aggs if c.arg is not None))
        xs = {a: await self.share(rel.cols[a], n) for a in args}
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
            for a in summed:
                part = groups @ (xs[a][lo:hi] * mask)
                sums[a] = part if a not in sums else sums[a] + part
            for func, a in extreme:  # rows outside the group (or masked out) become +-BIG
                sign = 1.0 if func == "min" else -1.0
                member = groups * mask.reshape(1, hi - lo)
                v = member * (sign * xs[a][lo:hi]).reshape(1, hi - lo) + (1 - member) * BIG
                extremes.setdefault((func, a), []).append(mpc.np_amin(v, axis=1))
            await mpc.barrier("one-hot block")
        best = {}
        for func, a in extreme:
            parts = extremes[(func, a)]
            low = parts[0] if len(parts) == 1 else mpc.np_amin(mpc.np_stack(parts, axis=1), axis=1)
            best[(func, a)] = (1.0 if func == "min" else -1.0) * low
        cols, nonempty = self._columns(op, _domain_keys(op.keys, domain), count, sums, best, masked=True)
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
        for _, call in op.aggs:
            if call.func in ("min", "max") and call.func not in scans:
                scans[call.func] = ob.segmented_scan(mpc, sf, vals, start, call.func)
        extremes = {(f, a): scans[f][i] for f in scans for a, i in argpos.items()}
        # a valid row's group is never empty: `m` keeps AVG's division defined
        cols, _ = self._columns(op, cols, count, {a: sums[i] for a, i in argpos.items()}, extremes, nonempty=m)
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
            cols: dict[str, Column] = _domain_keys(op.keys, step.domain)
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
        # empty groups are masked out: `out_mask` keeps AVG's division defined
        cols, _ = self._columns(op, cols, total, sums, {}, nonempty=out_mask)
        return SecRel(g, cols, out_mask)


def _domain_keys(keys: tuple[str, ...], domain: tuple) -> dict[str, Column]:
    """The public key columns of a GROUP BY over a public domain (one group per entry)."""
    return {k: Column(PUBLIC, np.array([d[i] for d in domain])) for i, k in enumerate(keys)}


def _groups(keys: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Group code per row and the sorted distinct key values."""
    df = pd.DataFrame({f"k{i}": np.asarray(v) for i, v in enumerate(keys)})
    codes, uniq = pd.MultiIndex.from_frame(df).factorize(sort=True)
    return np.asarray(codes), [uniq.get_level_values(i).to_numpy() for i in range(len(keys))]
