"""Positions in the user's SQL file, for errors that point at the culprit."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from sqlglot import exp

from musketeer.ir.types import SourceLoc


@dataclass
class SourceText:
    text: str
    filename: str
    _line_starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]

    def loc_at(self, offset: int) -> SourceLoc:
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return SourceLoc(self.filename, line + 1, offset - self._line_starts[line] + 1)

    def loc_of(self, node: exp.Expression | None) -> SourceLoc | None:
        """The position of the first token of `node` that sqlglot recorded
        (identifiers and literals carry offsets; other nodes do not)."""
        if node is None:
            return None
        best: int | None = None
        for n in node.walk():
            start = n.meta.get("start") if n.meta else None
            if start is not None and (best is None or start < best):
                best = start
        return self.loc_at(best) if best is not None else None

    def loc_line_col(self, line: int, col: int) -> SourceLoc:
        return SourceLoc(self.filename, line, col)
