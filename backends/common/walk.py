"""The order in which a generator emits operators.

Every engine's program computes each relation once, inputs before the steps
that read them, in the order the roots (sinks, or a loop body's results)
are listed; relations an outer scope already holds are not computed again.
"""

from __future__ import annotations

from collections.abc import Iterable

from musketeer.ir import operators as O


def emit_order(roots: Iterable[O.Op], available: Iterable[int]) -> list[O.Op]:
    """The operators computing `roots`, inputs first, each once, skipping
    those whose id() is in `available` (and what only they need)."""
    stop_at = set(available)
    seen = set(stop_at)
    order: list[O.Op] = []
    for root in roots:
        for op in O.walk(root, stop_at=stop_at):
            if id(op) not in seen:
                seen.add(id(op))
                order.append(op)
    return order
