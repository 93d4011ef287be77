"""Workflows that are not files: `musketeer run -c "SELECT ..."` and SQL
read from standard input (`musketeer run -`).

The text gets a name in angle brackets, as Python names `-c` code and
stdin (`<command line>`, `<stdin>`), which its errors print as their file
(`<command line>:1:15: error: ...`, with the source line and caret from
report.INLINE_SOURCES). Relative paths in it (`FROM 'data/x.csv'`) resolve
against the current directory, as a file in the cwd would.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import IO

from musketeer.errors import UsageError
from musketeer.report import INLINE_SOURCES

COMMAND_LINE = "<command line>"
STDIN = "<stdin>"


@dataclass(frozen=True)
class InlineWorkflow:
    """SQL text standing in for a workflow file (`os.fspath` gives a name
    ending in .sql, so loaders pick the SQL frontend)."""

    text: str
    name: str

    def __fspath__(self) -> str:
        return self.name + ".sql"

    @property
    def stem(self) -> str:
        return "stdin" if self.name == STDIN else "command_line"


def inline_sql(text: str, name: str = COMMAND_LINE) -> InlineWorkflow:
    if not text.strip():
        raise UsageError(f"no SQL given on {'standard input' if name == STDIN else 'the command line'}")
    INLINE_SOURCES[name] = text
    return InlineWorkflow(text, name)


def read_stdin(stream: IO[str] | None = None) -> InlineWorkflow:
    """`musketeer run -`: the SQL on standard input (refused on a terminal,
    where it would wait silently for input that is not coming)."""
    stream = stream or sys.stdin
    if stream is None or (hasattr(stream, "isatty") and stream.isatty()):
        raise UsageError("workflow '-' reads SQL from standard input, which is a terminal: pipe the SQL in "
                         "(echo 'SELECT 1' | musketeer run -) or use -c 'SELECT ...'")
    return inline_sql(stream.read(), STDIN)


def workflow_source(path: str | None, command: str | None) -> str | os.PathLike[str]:
    """What the CLI's WORKFLOW / -c arguments name: a file, stdin or inline SQL."""
    if command is not None:
        if path is not None:
            raise UsageError("give either a WORKFLOW file or -c SQL, not both")
        return inline_sql(command)
    if path is None:
        raise UsageError("give a WORKFLOW file, '-' for SQL on standard input, or -c SQL")
    return read_stdin() if path == "-" else path
