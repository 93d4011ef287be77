"""Turn exceptions into the short messages users see on stderr.

Every user-facing error is one line, `FILE:LINE:COL: error: MESSAGE` when the
error knows where it came from (then followed by the source line and a caret,
compiler style) and `musketeer: error: MESSAGE` otherwise. Keeping this in one
place means every command and every error class reads the same.
"""

from __future__ import annotations

import itertools

from musketeer.ir import MusketeerError, SourceLoc

PROG = "musketeer"

#: Source lines longer than this are cropped around the caret.
MAX_SOURCE_WIDTH = 100

#: Workflow text that is not in a file (`run -c SQL`, SQL on stdin), by the
#: name its errors use (`<command line>`, `<stdin>`), so they still show the
#: source line and caret.
INLINE_SOURCES: dict[str, str] = {}


def one_line(text: str) -> str:
    """Collapse newlines and runs of blanks so a message stays on one line."""
    return " ".join(str(text).split())


def format_error(err: MusketeerError) -> str:
    message = one_line(err.message) or type(err).__name__
    loc = err.loc
    if loc is None:
        return f"{PROG}: error: {message}"
    head = f"{loc.file}:{loc.line}:{loc.col}: error: {message}"
    snippet = source_snippet(loc)
    return head if snippet is None else head + "\n" + snippet


def source_snippet(loc: SourceLoc) -> str | None:
    """The offending line and a caret under `loc.col`, or None when the file
    cannot be read (a workflow given on stdin, a file deleted since)."""
    line = read_line(loc.file, loc.line)
    if line is None:
        return None
    col = max(loc.col, 1)
    prefix = ""
    if len(line) > MAX_SOURCE_WIDTH:
        start = max(0, min(col - 1 - MAX_SOURCE_WIDTH // 2, len(line) - MAX_SOURCE_WIDTH))
        if start > 0:
            prefix = "..."
        line = prefix + line[start:start + MAX_SOURCE_WIDTH] + ("..." if start + MAX_SOURCE_WIDTH < len(line) else "")
        col = col - start + len(prefix)
    # Keep tabs in the caret line so the caret lines up in any terminal.
    pad = "".join(ch if ch == "\t" else " " for ch in line[: col - 1])
    pad += " " * max(0, col - 1 - len(pad))
    gutter = str(loc.line)
    return f" {gutter} | {line}\n {' ' * len(gutter)} | {pad}^"


def read_line(path: str, lineno: int) -> str | None:
    """Line `lineno` (1-based) of a text file, read lazily so a data error
    deep in a big CSV does not load the whole file."""
    if lineno < 1:
        return None
    if path in INLINE_SOURCES:
        lines = INLINE_SOURCES[path].splitlines()
        return lines[lineno - 1] if lineno <= len(lines) else None
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            found = next(itertools.islice(f, lineno - 1, lineno), None)
    except OSError:
        return None
    return None if found is None else found.rstrip("\r\n")


def format_os_error(err: OSError) -> str:
    """`cannot open out/x.csv: No such file or directory`, without errno noise."""
    what = err.strerror or one_line(str(err))
    if err.filename is not None:
        return f"{PROG}: error: {err.filename}: {what}"
    return f"{PROG}: error: {what}"


def format_internal(err: BaseException) -> str:
    detail = one_line(str(err))
    detail = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
    return f"{PROG}: internal error: {detail} (re-run with --debug for the traceback)"
