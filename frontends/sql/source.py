"""Positions in the user's SQL file, for errors that point at the culprit."""

from __future__ import annotations

import bisect
import re
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
        if best is None:
            return None
        if isinstance(node, (exp.Func, exp.Window)) and not (node.meta or {}).get("start"):
            best = self.call_start(best)
        return self.loc_at(best)

    def call_start(self, offset: int) -> int:
        """The start of `name(` when `offset` is inside a call whose name
        sqlglot kept no offset for (`sum(x)`: from `x` back to `sum`)."""
        text = self.text
        k = offset - 1
        while k >= 0 and text[k] not in "();,":
            k -= 1
        if k >= 0 and text[k] == "(":
            m = re.search(r"[A-Za-z_][A-Za-z_0-9]*\s*$", text[:k])
            if m:
                return m.start()
        return offset

    def loc_line_col(self, line: int, col: int) -> SourceLoc:
        return SourceLoc(self.filename, line, col)
