"""Rows of a secret array at positions only the STP knows, without a
secret (k x n) one-hot selection matrix.

Why: a hybrid join's selectively trusted party (STP) computes which rows
match; nobody else may learn it. Selecting through a secret one-hot costs
k*n secret inputs (credit with 1000 rows per bank: ~15 s of the secure
stage); this costs O(m*(n + k)) field elements and O(log k) rounds.

The fetch (distinct positions `pos`, three roles: the STP, a pad party `h`
and a third party `t`; MPyC's honest majority with threshold 1 is assumed,
so no two of them collude):

1. `h` secret-shares uniformly random field elements r; `[x + r]` is opened
   to the STP only - a one-time pad, uniformly random to it;
2. `h` sends r with its columns permuted by a random sigma to `t`, and
   sigma to the STP;
3. the STP sends `t` the positions sigma[pos]: uniformly random distinct
   positions, as pos are distinct and sigma is unknown to `t`;
4. the STP inputs (x + r)[pos], `t` inputs r[pos]; the difference is
   `[x[pos]]`, exact in the field.

Rows wanted more than once (`gather`): each distinct row is fetched once,
in sorted order, with unused rows filling up to k positions; a segmented
scan on secret run-start flags copies it over its run; a second fetch (a
permutation: distinct positions again) puts the rows in the caller's order.
Every message's size depends on m, n and k only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np

from musketeer.mpc.secure import oblivious as ob
from musketeer.mpc.secure.relation import Channel

Sec = Any


@dataclass(frozen=True)
class Roles:
    stp: str
    pad: str  # h: draws the one-time pads and the permutation
    third: str  # t: holds the permuted pads, answers the STP's positions
    labels: dict[str, str]  # what each receive is recorded as (the plan's leakage texts)


def _field_array(sf: Any, values: np.ndarray) -> Any:
    return sf.array(sf.field.array(np.asarray(values, dtype=object)), integral=False)


def _zeros(sf: Any, shape: tuple[int, ...]) -> Any:
    return _field_array(sf, np.zeros(shape, dtype=object))


async def fetch(mpc: Any, sf: Any, chan: Channel, x: Sec, pos: np.ndarray | None, k: int, roles: Roles) -> Sec:
    """`x[:, pos]` of a secret (m, n) array; `pos` (k distinct column
    indices) is known to the STP only (None elsewhere)."""
    m, n = x.shape
    me, p = chan.me, sf.field.modulus
    r = sigma = None
    if me == roles.pad:
        r = np.array([secrets.randbelow(p) for _ in range(m * n)], dtype=object).reshape(m, n)
        order = list(range(n))
        secrets.SystemRandom().shuffle(order)
        sigma = np.array(order, dtype=np.int64)
    pads = mpc.input(_field_array(sf, r) if me == roles.pad else _zeros(sf, (m, n)), senders=chan.idx(roles.pad))
    padded = await chan.reveal(x + pads, [roles.stp], roles.labels["padded"], raw=True)
    permuted = None
    if me == roles.pad:
        permuted = np.empty_like(r)
        permuted[:, sigma] = r
    permuted = await chan.send(permuted, roles.pad, [roles.third], roles.labels["pads"])
    sigma = await chan.send(sigma, roles.pad, [roles.stp], roles.labels["permutation"])
    where = await chan.send(sigma[pos] if me == roles.stp else None, roles.stp, [roles.third],
                            roles.labels["positions"])
    a = mpc.input(_field_array(sf, padded[:, pos]) if me == roles.stp else _zeros(sf, (m, k)),
                  senders=chan.idx(roles.stp))
    b = mpc.input(_field_array(sf, permuted[:, where]) if me == roles.third else _zeros(sf, (m, k)),
                  senders=chan.idx(roles.third))
    out = a - b
    out.integral = x.integral
    return out


def sorted_runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, values[order], start): a stable sort of `values` and a 0/1
    int64 flag on the first of each run of equal values (in sorted order)."""
    order = np.argsort(values, kind="stable")
    srt = np.asarray(values)[order]
    start = np.ones(len(srt), dtype=np.int64)
    start[1:] = srt[1:] != srt[:-1]
    return order, srt, start


async def gather(mpc: Any, sf: Any, chan: Channel, x: Sec, idx: np.ndarray | None, k: int, roles: Roles) -> Sec:
    """`x[:, idx]` of a secret (m, n) array for k indices known to the STP
    only; indices may repeat."""
    m, n = x.shape
    if k == 0:
        return sf.array(np.zeros((m, 0), dtype=np.int64))
    size = max(n, k)  # enough distinct positions for k fetches
    if size > n:
        x = mpc.np_concatenate((x, sf.array(np.zeros((m, size - n), dtype=np.int64))), axis=1)
    pos = start = back = None
    if chan.me == roles.stp:
        order, srt, start = sorted_runs(idx)
        unused = np.setdiff1d(np.arange(size), srt)
        pos = srt.copy()
        pos[start == 0] = unused[: int((start == 0).sum())]
        back = np.empty(k, dtype=np.int64)
        back[order] = np.arange(k)
    firsts = await fetch(mpc, sf, chan, x, pos, k, roles)  # row srt[i] where a run starts, else filler
    flags = mpc.input(sf.array(start if chan.me == roles.stp else np.zeros(k, dtype=np.int64)),
                      senders=chan.idx(roles.stp))
    runs = ob.segmented_scan(mpc, sf, firsts * flags.reshape(1, k), flags, "sum")
    return await fetch(mpc, sf, chan, runs, back, k, roles)
