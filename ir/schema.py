"""Ordered, uniquely named columns: the shape of every relation in the IR."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Iterator

from musketeer.ir.types import DataType, IRError


@dataclass(frozen=True)
class Field:
    name: str
    dtype: DataType
    nullable: bool = True


@dataclass(frozen=True)
class Schema:
    """Column names are unique inside one schema; lowering guarantees it."""

    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for f in self.fields:
            if f.name in seen:
                raise IRError(f"duplicate column name {f.name!r} in one relation")
            seen.add(f.name)

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, DataType]]) -> "Schema":
        return cls(tuple(Field(n, t) for n, t in pairs))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise IRError(f"unknown column {name!r}{suggest(name, self.names)}")

    def dtype(self, name: str) -> DataType:
        return self.field(name).dtype

    def select(self, names: Iterable[str]) -> "Schema":
        return Schema(tuple(self.field(n) for n in names))

    def concat(self, other: "Schema") -> "Schema":
        return Schema(self.fields + other.fields)

    def __str__(self) -> str:
        return "(" + ", ".join(f"{f.name}: {f.dtype}" for f in self.fields) + ")"


def suggest(name: str, candidates: Iterable[str]) -> str:
    """A '; did you mean X?' tail for unknown-name errors, or ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""
