"""What a frontend needs to know about the tables a workflow reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from musketeer.ir.operators import TableFormat
from musketeer.ir.schema import Schema, suggest
from musketeer.ir.types import IRError


@dataclass(frozen=True)
class Table:
    name: str
    path: str
    format: TableFormat
    schema: Schema
    rows: int | None = None  # for the cost model, when cheaply known


@dataclass
class Catalog:
    """Table name -> Table. Names are case-sensitive as written by the user,
    but lookups fall back to a case-insensitive match (SQL's habit)."""

    tables: dict[str, Table] = field(default_factory=dict)
    # Reads a table's schema from a file path written directly in a workflow
    # (`FROM 'data/orders.parquet'`); set by the glue layer, which owns file I/O.
    loader: Callable[[str], Table] | None = None

    def add(self, table: Table) -> None:
        self.tables[table.name] = table

    def get(self, name: str) -> Table:
        if name in self.tables:
            return self.tables[name]
        for key, t in self.tables.items():
            if key.lower() == name.lower():
                return t
        known = ", ".join(sorted(self.tables)) or "none"
        raise IRError(f"unknown table {name!r}{suggest(name, self.tables)} (known tables: {known})")

    def __contains__(self, name: str) -> bool:
        return name in self.tables or any(k.lower() == name.lower() for k in self.tables)

    def from_path(self, path: str) -> Table:
        if self.loader is None:
            raise IRError(f"cannot read table from path {path!r}: no file loader configured")
        return self.loader(path)
