"""Secure relations and the message layer every cleartext value passes
through (so tests can record what each party received)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PUBLIC, SECRET = "public", "secret"


@dataclass
class Column:
    """One column of a secure relation. SQL NULL: in the clear (public or
    held) as NaN (numbers, booleans as 1.0/0.0) or None (text); secret
    values carry a secret 0/1 validity bit per row (`valid`, the value
    itself is then 0), or `valid` is None when no row can be NULL, which
    every party knows from public facts (`nullable` of the inputs)."""

    place: str  # PUBLIC | SECRET | holder party name
    values: Any  # numpy array (public / at the holder), secure array (secret), None (held elsewhere)
    valid: Any = None  # SECRET only: secure 0/1 array, None = never NULL
    nullable: bool = False  # held only: may hold NULLs (a fact every party knows)


@dataclass
class SecRel:
    n: int
    cols: dict[str, Column]
    mask: Any = None  # secure 0/1 array, or None when every row is valid (public fact)
    packed: bool = False  # valid rows first, in a canonical order (an oblivious Sort made it so)
    # who knows which row is which, and by which columns (unique, sorted):
    # public or hybrid GROUP BY output, kept by filters and renames. When every
    # recipient knows the order and those columns are in the result, the
    # reveal needs no oblivious compaction (HAVING after a hybrid GROUP BY)
    order: tuple[frozenset[str], tuple[str, ...]] | None = None


@dataclass
class Channel:
    """The only way cleartext reaches a party: publish (to all), send (one
    party to others) and reveal (secret -> cleartext at receivers). Every
    value a party receives is recorded under the plan's leakage label."""

    mpc: Any
    parties: tuple[str, ...]
    me: str
    received: list[tuple[str, Any]] = field(default_factory=list)
    on_receive: Callable[[str, Any], None] | None = None

    def idx(self, party: str) -> int:
        return self.parties.index(party)

    def _record(self, label: str, value: Any) -> None:
        self.received.append((label, value))

    async def send(self, obj: Any, sender: str, receivers: list[str], label: str) -> Any:
        """`obj` from sender to receivers (all parties call this)."""
        rec = [self.idx(r) for r in receivers if r != sender]
        if not rec:
            return obj if self.me == sender else None
        s = self.idx(sender)
        out = await self.mpc.transfer(obj if self.me == sender else None, sender_receivers=[(s, r) for r in rec])
        if self.me in receivers and self.me != sender:
            self._record(label, out[0])
            return out[0]
        return obj if self.me == sender else None

    async def publish(self, obj: Any, sender: str, label: str) -> Any:
        out = await self.send(obj, sender, list(self.parties), label)
        return obj if self.me == sender else out

    async def reveal(self, x: Any, receivers: list[str], label: str, raw: bool = False) -> Any:
        """`raw`: as exact field values (Python ints), for one-time padded
        values, which are uniform over the whole field."""
        out = await self.mpc.output(x, receivers=[self.idx(r) for r in receivers], raw=raw)
        if self.me in receivers:
            out = np.asarray(out.value, dtype=object) if raw else np.asarray(out, dtype=float)
            self._record(label, out)
            return out
        return None


def farray(sf: Any, values: Any, **kw: Any) -> Any:
    """`sf.array(values)` that also takes an empty array (MPyC infers
    integrality with np.vectorize, which refuses size 0)."""
    arr = np.asarray(values)
    if arr.size == 0:
        return sf.array(np.zeros(arr.shape, dtype=np.int64))
    return sf.array(arr, **kw)
