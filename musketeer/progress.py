"""Progress for long commands (compare, calibrate), through rich.

On a terminal a person wants to see that something is happening and for
how long: a live line with a spinner, the current step, a bar, `done/total`
and the elapsed time, redrawn in place. Anywhere else (a CI log, a pipe, a
file) redrawn bars are noise, so only the `note` lines are written, each
once, as plain text. With `-q` nothing is written. Every step is also
logged at DEBUG (`musketeer.progress`), so `-v` lists them in a log.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from musketeer.logs import LOGGER, quiet, terminal_stream

LOG = LOGGER.getChild("progress")


def is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """`progress(label)` says a step has started (the previous one is
    done); `note(text)` prints a line that stays; `close()` ends the bar.

    Usable as a context manager."""

    def __init__(self, total: int, stream: IO[str] | None = None, title: str = "") -> None:
        self.stream = stream or sys.stderr
        self.total = max(total, 1)
        self.done = -1
        self.tty = is_tty(self.stream)
        self._bar: Any = None
        self._task: Any = None
        self._terminal: Any = None
        if quiet():
            self.tty = False
        if self.tty:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn,
                                       TimeElapsedColumn)
            from rich.progress import Progress as RichProgress

            # a duplicate of the terminal's descriptor: logs.engine_output
            # captures descriptor 2 while an engine runs, not the bar
            self._terminal = terminal_stream(self.stream)
            console = Console(file=self._terminal)
            self._bar = RichProgress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"),
                                     BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=console, transient=False)
            self._task = self._bar.add_task(title or "working", total=self.total)
            self._bar.start()

    def __call__(self, label: str) -> None:
        self.done += 1
        LOG.debug("[%d/%d] %s", self.done + 1, self.total, label)
        if self._bar is not None:
            self._bar.update(self._task, completed=min(self.done, self.total), description=label)

    def note(self, text: str) -> None:
        """A line that stays (above the live bar on a terminal); none with -q."""
        if quiet():
            return
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.total, description="done")
            self._bar.stop()
            self._bar = None
        if self._terminal is not None and self._terminal is not self.stream:
            self._terminal.close()
            self._terminal = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
