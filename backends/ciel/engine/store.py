"""A worker's object store: pickled objects by ref id, big ones spilled to disk.

Objects are kept as pickled bytes because that is what peers fetch and what
the master's locality decisions weigh (sizes); a task unpickles its inputs
once. Objects larger than `spill_threshold` go to a file in `spill_dir`
right away, so one large intermediate cannot exhaust a worker's memory.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path


class ObjectStore:
    def __init__(self, spill_dir: str | Path, spill_threshold: int = 64 << 20) -> None:
        self.spill_dir = Path(spill_dir)
        self.spill_threshold = spill_threshold
        self._mem: dict[str, bytes] = {}
        self._disk: dict[str, tuple[Path, int]] = {}
        self._lock = threading.Lock()

    def put(self, ref: str, data: bytes) -> None:
        """Store `ref`'s bytes. Idempotent: a ref names one deterministic value,
        so a second put of a ref already here (the same task run twice, or an
        input fetched twice by two tasks at once) keeps the first copy."""
        if ref in self:
            return
        if len(data) > self.spill_threshold:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            path = self.spill_dir / ref
            # a temporary name of its own: two puts of one ref used to share
            # `<ref>.tmp`, and the second os.replace found it gone
            fd, tmp = tempfile.mkstemp(prefix=f".{ref}.", suffix=".tmp", dir=self.spill_dir)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            with self._lock:
                self._disk[ref] = (path, len(data))
        else:
            with self._lock:
                self._mem[ref] = data

    def get(self, ref: str) -> bytes | None:
        with self._lock:
            data = self._mem.get(ref)
            spilled = self._disk.get(ref)
        if data is not None:
            return data
        if spilled is not None:
            try:
                return spilled[0].read_bytes()
            except OSError:
                return None
        return None

    def delete(self, refs: list[str]) -> None:
        with self._lock:
            paths = [self._disk.pop(r)[0] for r in refs if r in self._disk]
            for r in refs:
                self._mem.pop(r, None)
        for path in paths:
            path.unlink(missing_ok=True)

    def __contains__(self, ref: str) -> bool:
        with self._lock:
            return ref in self._mem or ref in self._disk

    def is_spilled(self, ref: str) -> bool:
        with self._lock:
            return ref in self._disk

    def sizes(self) -> dict[str, int]:
        """ref -> size in bytes, for telling a (restarted) master what we hold."""
        with self._lock:
            out = {r: len(d) for r, d in self._mem.items()}
            out.update({r: n for r, (_, n) in self._disk.items()})
        return out
