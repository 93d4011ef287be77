"""Putting user text into generated program text safely and readably.

User text (workflow, table and column names, literals, paths) reaches a
generated program only through `repr()` (as data) or through the helpers
here (as comments and docstrings), so it can never become code.
"""

from __future__ import annotations

import re
import unicodedata

COMMENT_LIMIT = 150


def comment(text: str) -> str:
    """User text made safe and short for a `#` comment: no line breaks or other control characters."""
    cleaned = "".join(
        " " if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in text
    )
    cleaned = re.sub(r" {2,}", " ", cleaned).strip()
    return cleaned if len(cleaned) <= COMMENT_LIMIT else cleaned[: COMMENT_LIMIT - 3] + "..."


def docstring_text(text: str) -> str:
    """User text for inside a triple-quoted docstring: one line, quotes and backslashes escaped."""
    return comment(text).replace("\\", "\\\\").replace('"', '\\"')


def slug(text: str) -> str:
    """A fragment of a generated variable name: [a-z0-9_] only, so never code."""
    cleaned = re.sub(r"[^a-z0-9_]", "", text.lower().replace(" ", "_"))[:24].strip("_")
    return cleaned or "table"


def indent(lines: list[str], level: int) -> list[str]:
    """Lines indented by `level` levels of four spaces (blank lines stay empty)."""
    pad = "    " * level
    return [pad + line if line else line for line in lines]


def output_format(path: str) -> str | None:
    """'csv' or 'parquet' by a file name's extension, None when it says neither."""
    lower = path.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    return None
