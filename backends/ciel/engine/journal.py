"""The master's append-only journal: spawned tasks and published refs.

A restarted master replays it to rebuild the task graph (lineage) and the
results it had seen, then resumes the job: only tasks that never finished,
or whose outputs no live worker still holds, run again. Records are
length-prefixed pickles written by the master itself (never from peers'
bytes), flushed to the OS after every batch of messages, so a `kill -9` of
the master loses nothing already acknowledged. A torn last record (the
master died mid-write) is ignored on replay.

When a job is forgotten the master rewrites the journal as the records of
what it still knows (`rewrite`), so the file tracks the live task graph
instead of growing with every job a long-lived cluster has run.
"""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("!I")


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - lives as long as the master
        self._dirty = False

    def append(self, record: tuple[Any, ...]) -> None:
        data = pickle.dumps(record, protocol=5)
        self._file.write(_HEADER.pack(len(data)) + data)
        self._dirty = True

    def flush(self) -> None:
        if self._dirty:
            self._file.flush()
            self._dirty = False

    def rewrite(self, records: list[tuple[Any, ...]]) -> None:
        """Replace the file with exactly `records`, atomically: a crash
        mid-rewrite leaves the old journal (a superset) in place."""
        self._file.close()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            for record in records:
                data = pickle.dumps(record, protocol=5)
                f.write(_HEADER.pack(len(data)) + data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._file = open(self.path, "ab")  # noqa: SIM115 - lives as long as the master
        self._dirty = False

    def close(self) -> None:
        self.flush()
        self._file.close()


def replay(path: str | Path) -> Iterator[tuple[Any, ...]]:
    """The records of a journal file, oldest first (nothing if it does not exist)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return
    pos = 0
    while pos + _HEADER.size <= len(data):
        (n,) = _HEADER.unpack_from(data, pos)
        if pos + _HEADER.size + n > len(data):
            return  # torn write at the end
        yield pickle.loads(data[pos + _HEADER.size: pos + _HEADER.size + n])
        pos += _HEADER.size + n
