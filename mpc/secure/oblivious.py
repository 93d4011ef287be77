"""Data-oblivious building blocks on MPyC secure arrays.

Everything here touches secret values only through vectorised `mpc.np_*`
calls and array arithmetic: the sequence of operations, and every shape,
depends on public sizes alone, never on the data. That is what lets the
`--mpc-only` baseline (and secret group keys in the split) leak nothing but
input sizes and the final result.

Layout: a relation's secret columns are stacked as a 2-D array `(c, n)`;
row 0.. hold the sort keys. Masks are secret 0/1 arrays of length n.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Sec = Any  # an MPyC secure (fixed-point) array


def _lt_eq(a: Sec, b: Sec, bit: bool) -> tuple[Sec, Sec]:
    if bit:  # 0/1 values: products only, no comparison protocol
        ab = a * b
        return b - ab, 1 - a - b + 2 * ab
    return a < b, a == b


def lex_less(mpc: Any, a: Sec, b: Sec, nkeys: int, bits: int = 0) -> Sec:
    """Secret 0/1: column-wise `a < b` comparing the first `nkeys` rows of
    the (c, m) arrays lexicographically (row 0 most significant). The first
    `bits` rows are known to hold 0/1 values (cheaper to compare)."""
    x, y = a[nkeys - 1], b[nkeys - 1]
    lt = y - x * y if nkeys - 1 < bits else x < y
    for k in range(nkeys - 2, -1, -1):
        less, eq = _lt_eq(a[k], b[k], k < bits)
        lt = less + eq * lt
    return lt


def sort_columns(mpc: Any, a: Sec, nkeys: int, less: Callable[[Sec, Sec], Sec] | None = None) -> Sec:
    """Oblivious sort of the columns of a (c, n) array by its first `nkeys`
    rows (Batcher's merge-exchange network: ~n/4 log2(n)^2 compare-exchanges
    in ~log2(n)^2/2 vectorised rounds; not stable, so callers make keys
    total when order among equal keys matters)."""
    n = a.shape[1]
    if n < 2:
        return a
    lt = less or (lambda x, y: lex_less(mpc, x, y, nkeys))
    t = (n - 1).bit_length()
    p = 1 << (t - 1)
    while p:
        d, q, r = p, 1 << (t - 1), 0
        while d:
            idx = np.array([i for i in range(n - d) if i & p == r], dtype=int)
            if len(idx):
                b0, b1 = a[:, idx], a[:, idx + d]
                swap = lt(b1, b0)
                h = swap.reshape(1, len(idx)) * (b1 - b0)
                a = mpc.np_update(a, (slice(None), idx), b0 + h)
                a = mpc.np_update(a, (slice(None), idx + d), b1 - h)
            d, q, r = q - p, q >> 1, p
        p >>= 1
    return a


def shift(mpc: Any, sf: Any, x: Sec, d: int, fill: float = 0.0) -> Sec:
    """x moved d places towards higher indices along the last axis (the
    first d entries become `fill`)."""
    n = x.shape[-1]
    if d >= n:
        return sf.array(np.full(x.shape, fill))
    pad = sf.array(np.full(x.shape[:-1] + (d,), fill))
    return mpc.np_concatenate((pad, x[..., : n - d]), axis=-1)


def segmented_scan(mpc: Any, sf: Any, vals: Sec, start: Sec, op: str) -> Sec:
    """Inclusive scan of each row of `vals` (k, n) within segments that begin
    where `start` (n,) is 1; op is "sum", "min" or "max". Hillis-Steele:
    log2(n) vectorised rounds."""
    n = vals.shape[1]
    s = start
    d = 1
    while d < n:
        prev = shift(mpc, sf, vals, d)
        keep = 1 - s  # combine with the element d back unless a segment starts between
        if op == "sum":
            vals = vals + keep.reshape(1, n) * prev
        else:
            take = (prev < vals) if op == "min" else (vals < prev)
            # positions < d have no element d back: shift filled 0, keep them
            valid = np.zeros(n)
            valid[d:] = 1.0
            vals = vals + (keep * sf.array(valid)).reshape(1, n) * take * (prev - vals)
        s_prev = shift(mpc, sf, s, d, 1.0)
        s = s + s_prev - s * s_prev
        d <<= 1
    return vals


def onehot(mpc: Any, sf: Any, keys: Sequence[Sec], domain: Sequence[tuple[float, ...]]) -> Sec:
    """(g, n) secret 0/1 matrix: entry [j, i] = row i's key equals domain[j].
    The domain is public (query literals or declared), so g is too."""
    g = len(domain)
    n = keys[0].shape[0]
    out = None
    for k, col in enumerate(keys):
        d = np.array([float(v[k]) for v in domain]).reshape(g, 1)
        eq = col.reshape(1, n) == d
        out = eq if out is None else out * eq
    return out


def adjacent_equal(mpc: Any, rows: Sec, nkeys: int, bits: int = 0) -> Sec:
    """(n-1,) secret 0/1: the first `nkeys` rows equal between columns i and
    i+1 (the first `bits` rows hold 0/1 values)."""
    a, b = rows[:nkeys, :-1], rows[:nkeys, 1:]
    eq = None
    for k in range(nkeys):
        e = _lt_eq(a[k], b[k], k < bits)[1]
        eq = e if eq is None else eq * e
    return eq


def stack_keys(rows: list[Any], keys: Sequence[Any]) -> list[tuple[int, int | None]]:
    """Append each key's sort rows to `rows`: its validity row first when it
    is nullable (so NULLs sort together and form one group), then its
    values. Returns (values row, validity row or None) per key."""
    where: list[tuple[int, int | None]] = []
    for c in keys:
        vi = None
        if c.valid is not None:
            vi = len(rows)
            rows.append(c.valid)
        where.append((len(rows), vi))
        rows.append(c.values)
    return where


def sort_valid_first(mpc: Any, rows: Sequence[Sec], nkeys: int) -> Sec:
    """`rows` stacked and sorted by their first `nkeys` rows, the first of
    which is the 0/1 "invalid" flag (1 - mask): valid rows come first, in
    key order. Grouping, DISTINCT and result compaction all sort this way."""
    return sort_columns(mpc, mpc.np_stack(list(rows)), nkeys,
                        less=lambda a, b: lex_less(mpc, a, b, nkeys, bits=1))


def segment_bounds(mpc: Any, sf: Any, srt: Sec, nkeys: int) -> tuple[Sec, Sec]:
    """(start, end): secret 0/1 flags of the first and the last column of
    each run of equal keys in `srt` (sorted by `sort_valid_first`)."""
    one = sf.array(np.ones(1))
    differs = 1 - adjacent_equal(mpc, srt, nkeys, bits=1)
    return mpc.np_concatenate((one, differs)), mpc.np_concatenate((differs, one))
