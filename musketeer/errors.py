"""Errors the glue layer raises itself.

They subclass `ir.MusketeerError` so the CLI reports them like any other user
error: one line, exit code 2, no traceback.
"""

from __future__ import annotations

from musketeer.ir import MusketeerError


class UsageError(MusketeerError):
    """A command line that cannot work (unknown backend, bad output path),
    caught before any workflow is parsed or run."""
