"""Small task functions for tests, the benchmark and the docs.

They live in an importable module because workers import tasks by name.
"""

from __future__ import annotations

import time
from typing import Any

from musketeer.backends.ciel.engine.api import Ref, deref, spawn


def noop(i: int = 0) -> int:
    return i


def add(a: Any, b: Any) -> Any:
    return a + b


def total(*values: Any) -> Any:
    return sum(values)


def sleep_ms(ms: float, value: Any = None) -> Any:
    time.sleep(ms / 1000)
    return value


def payload(n_bytes: int, tag: int = 0) -> bytes:
    """A big object (for spill and transfer tests)."""
    return bytes([tag % 256]) * n_bytes


def length(data: bytes) -> int:
    return len(data)


def fib(n: int) -> Any:
    """Continuation style: no task ever waits, it tail-spawns the addition."""
    if n < 2:
        return n
    return spawn(add, spawn(fib, n - 1), spawn(fib, n - 2))


def fib_blocking(n: int) -> int:
    """Direct style: every inner task blocks in deref on its children."""
    if n < 2:
        return n
    a, b = spawn(fib_blocking, n - 1), spawn(fib_blocking, n - 2)
    return deref(a) + deref(b)


def fan(n: int, ms: float) -> Ref:
    """Fan-out of n sleeping tasks, fan-in by one sum task (tail-spawned)."""
    return spawn(total, *[spawn(sleep_value, ms, i) for i in range(n)])


def sleep_value(ms: float, i: int) -> int:
    time.sleep(ms / 1000)
    return 1


def countdown(i: int) -> Any:
    """A data-dependent loop: each iteration decides whether to continue."""
    if i <= 0:
        return "done"
    return spawn(countdown, i - 1)


def stage(data: bytes, k: int, ms: float) -> bytes:
    """One step of a multi-stage pipeline over big objects (fault tolerance tests)."""
    time.sleep(ms / 1000)
    return bytes((b + k) % 256 for b in data[:64]) + data[64:]


def pipeline(width: int, depth: int, n_bytes: int, ms: float) -> Ref:
    """width independent chains of `depth` stages over n_bytes objects, then a checksum."""
    heads = []
    for j in range(width):
        ref = spawn(payload, n_bytes, j)
        for k in range(depth):
            ref = spawn(stage, ref, k + 1, ms)
        heads.append(spawn(checksum, ref))
    return spawn(total, *heads)


def checksum(data: bytes) -> int:
    return sum(data[:64]) + len(data)


def total_length(*blobs: bytes) -> int:
    """Needs every input on one worker: the others are fetched from peers."""
    return sum(len(b) for b in blobs)


def _wait_for(path: str) -> None:
    """Block until the test creates `path` (tests order events by files, not by sleeping)."""
    import os
    while not os.path.exists(path):
        time.sleep(0.02)


def spawn_when(gate: str, marker: str, n: int) -> dict[str, Ref]:
    """Wait for `gate`, spawn n children, mark that they were spawned, return their refs
    (the result a restarted master must not take without knowing the children)."""
    _wait_for(gate)
    refs = {f"c{i}": spawn(add, i, 100) for i in range(n)}
    with open(marker, "w") as f:
        f.write("spawned")
    return refs


def held_payload(gate: str, log: str, n_bytes: int) -> bytes:
    """Log each start, wait for `gate`, return a big (spilled) object."""
    with open(log, "a") as f:
        f.write("start\n")
    _wait_for(gate)
    return payload(n_bytes, 7)


def at_least(i: int, n: int) -> bool:
    """A loop's stop test (the benchmark's Python-API loops)."""
    return i >= n


def count_to(i: int, n: int) -> Any:
    """A loop inside the engine: each iteration tail-spawns the next (no driver)."""
    if i >= n:
        return i
    return spawn(count_to, i + 1, n)
