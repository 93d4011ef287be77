"""Errors of the Python frontends, located at the user's line.

A Dataset is built by ordinary Python calls, so the useful location of a
mistake is the user's call (`orders.where(...)` on line 12 of their
workflow), not our frames. `located` fills `MusketeerError.loc` with the
innermost stack frame outside Musketeer's own packages, which the CLI prints
with the source line and a caret, as for SQL.
"""

from __future__ import annotations

import functools
import os
import sys
from types import CodeType, FrameType
from typing import Any, Callable, TypeVar

from musketeer.ir.types import IRError, MusketeerError, SourceLoc

F = TypeVar("F", bound=Callable[..., Any])


class LinqError(IRError):
    """A Dataset call or column expression that cannot be lowered to the IR."""


class UnknownColumnError(LinqError, AttributeError):
    """`dataset.nosuchcolumn`: an AttributeError for Python (hasattr, getattr
    with a default) and a one-line user error for the CLI."""


#: Directories whose frames are ours, not the user's. The glue adds its own.
_INTERNAL_DIRS: list[str] = [
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,  # frontends/
    os.path.dirname(os.path.abspath(sys.modules[IRError.__module__].__file__ or "")) + os.sep,  # ir/
]


def mark_internal(directory: str) -> None:
    """Treat frames from files under `directory` as Musketeer's (used by the glue)."""
    path = os.path.abspath(directory) + os.sep
    if path not in _INTERNAL_DIRS:
        _INTERNAL_DIRS.append(path)


def _is_internal(filename: str) -> bool:
    return filename.startswith("<frozen") or any(filename.startswith(d) for d in _INTERNAL_DIRS) or \
        f"{os.sep}importlib{os.sep}" in filename or f"{os.sep}contextlib.py" in filename


def code_loc(code: CodeType, lasti: int, line: int, filename: str | None = None) -> SourceLoc:
    """File, line and (1-based) column of instruction `lasti` of `code`;
    column 1 of `line` when Python kept no positions (-X no_debug_ranges)."""
    col = 1
    positions = list(code.co_positions())
    if 0 <= lasti // 2 < len(positions):
        start_line, _, start_col, _ = positions[lasti // 2]
        if start_line is not None and start_col is not None:
            line, col = start_line, start_col + 1
    return SourceLoc(filename or code.co_filename, line, col)


def frame_loc(frame: FrameType) -> SourceLoc:
    """Where a frame is: the call it is making, for frames up the stack."""
    return code_loc(frame.f_code, frame.f_lasti, frame.f_lineno)


def user_location(skip: int = 1) -> SourceLoc | None:
    """Where the user's code called into Musketeer: the innermost frame
    outside our packages, or None when every frame is ours."""
    frame: FrameType | None = sys._getframe(skip)
    while frame is not None:
        if not _is_internal(os.path.abspath(frame.f_code.co_filename)):
            return frame_loc(frame)
        frame = frame.f_back
    return None


def located(fn: F) -> F:
    """Decorator for public API methods: a MusketeerError without a location
    gets the user's calling line."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MusketeerError as err:
            if err.loc is None:
                err.loc = user_location(2)
            raise

    return wrapper  # type: ignore[return-value]
