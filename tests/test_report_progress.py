"""Progress (musketeer/progress.py): on a terminal a live rich bar with the
elapsed time; anywhere else only the lines that stay (no redrawn bars)."""

from __future__ import annotations

import io
import re

from musketeer.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_non_tty_prints_only_notes() -> None:
    out = io.StringIO()
    with Progress(19, out, title="calibrate") as progress:
        for n in range(19):
            progress(f"step {n}")
        progress.note("local: done")
    assert out.getvalue() == "local: done\n"


def test_tty_shows_step_count_and_elapsed_time() -> None:
    out = _Terminal()
    with Progress(3, out, title="compare") as progress:
        progress("local: running")
        progress.note("[1/3] local: 0.100 s")
        progress("dask: running")
    text = out.getvalue()
    assert "[1/3] local: 0.100 s" in text
    assert re.search(r"\d+:\d\d:\d\d", text)  # rich's elapsed-time column
    assert "3/3" in text  # closed: the bar ends complete
