"""Write output files all-or-nothing.

A run that fails half-way must not leave a truncated CSV that looks like a
result, and a rerun must not see yesterday's partial file. Every file is
written to a temporary sibling (same directory, so `os.replace` is an atomic
rename on the same filesystem) and renamed into place only once it, and
every other file of the same step (explain's --dot and --json), has been
written; on any error the temporaries go away.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from musketeer.errors import UsageError

#: Output file suffix -> format.
OUTPUT_FORMATS: dict[str, str] = {".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class OutputTarget:
    """Where one workflow output goes: checked before the run starts."""

    sink: str
    path: str
    format: str


def output_target(sink: str, path: str, fmt: str | None = None, what: str = "--output") -> OutputTarget:
    """Validate a destination before running: known format, existing
    directory, not a directory itself. `what` names the flag or statement in
    the message."""
    if fmt is None:
        fmt = OUTPUT_FORMATS.get(Path(path).suffix.lower())
        if fmt is None:
            known = " or ".join(OUTPUT_FORMATS)
            raise UsageError(f"{what} {path}: unknown output format (the file name must end in {known})")
    elif fmt not in OUTPUT_FORMATS.values():
        raise UsageError(f"{what} {path}: unknown output format {fmt!r} (csv or parquet)")
    check_destination(path, what)
    return OutputTarget(sink, path, fmt)


def check_destination(path: str, what: str) -> None:
    """Fail before any work if `path` cannot be written: its directory must
    exist and it must not be a directory itself."""
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise UsageError(f"{what} {path}: directory {parent} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{what} {path} is a directory")


def _temp_sibling(path: str) -> str:
    """Create an empty temporary file next to `path`, with the permissions a
    plain open() would give (mkstemp's 0600 would leak into the result)."""
    directory, name = os.path.split(path)
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def _write_frame(df: Any, path: str, fmt: str) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)


def commit_files(writes: list[tuple[str, Callable[[str], None]]]) -> None:
    """`writes` is [(final path, writer(tmp_path) -> None)]: run each writer
    on a temporary sibling, then rename all into place. Nothing is left
    behind if any writer fails."""
    temps: list[tuple[str, str]] = []
    try:
        for path, writer in writes:
            tmp = _temp_sibling(path)
            temps.append((tmp, path))
            writer(tmp)
        for tmp, path in temps:
            os.replace(tmp, path)
        temps = []
    finally:
        for tmp, _ in temps:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


def commit_text_files(files: dict[str, str]) -> None:
    """Write {path: text} as one all-or-nothing step."""

    def writer(text: str) -> Callable[[str], None]:
        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)

        return write

    commit_files([(path, writer(text)) for path, text in files.items()])


def write_frame_atomic(target: OutputTarget, df: Any) -> None:
    """Write one DataFrame to its target; nothing is left if writing fails."""
    commit_files([(target.path, lambda tmp: _write_frame(df, tmp, target.format))])
