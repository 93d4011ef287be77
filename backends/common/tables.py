"""Which input files a generated program reads, and under which names.

Every program starts with `TABLES = {name: path}` and `FORMATS = {name:
format}` built from the workflow's Scans, and `--table NAME=PATH` rebinds a
name. Usually the name is the table's; when one table name is bound to two
files (possible in IR JSON), the second gets `name#2` so both stay reachable.
"""

from __future__ import annotations

from musketeer.ir import operators as O


class TableBindings:
    """TABLES/FORMATS entries for the Scans of one program."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[str, str]] = {}  # key in TABLES -> (path, lower-case format)
        self._keys: dict[tuple[str, str], str] = {}

    def key(self, scan: O.Scan) -> str:
        """The TABLES key for `scan`, registering its binding on first use."""
        binding = (scan.table, scan.path)
        if binding not in self._keys:
            key, n = scan.table, 2
            while key in self.tables:
                key, n = f"{scan.table}#{n}", n + 1
            self._keys[binding] = key
            self.tables[key] = (scan.path, scan.format.lower())
        return self._keys[binding]

    def template_rows(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(TABLES rows, FORMATS rows) as (repr(key), repr(value)) program text."""
        return ([(repr(k), repr(p)) for k, (p, _) in self.tables.items()],
                [(repr(k), repr(f)) for k, (_, f) in self.tables.items()])
