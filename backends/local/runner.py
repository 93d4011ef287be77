"""Run a generated local-engine program in-process.

We exec the program's exact text in a fresh module namespace, so what runs
is what was generated (and what a user would run with `python q.py`), then
call its `run()`. Errors the program raises for bad input data become
`ir.types.DataError`, which the CLI prints as one line (exit code 2).
"""

from __future__ import annotations

from musketeer.backends.base import Program, RunOptions, RunResult
from musketeer.backends.common.loader import load_program
from musketeer.backends.common.running import run_loaded_program

__all__ = ["load_program", "run_program"]


def run_program(program: Program, options: RunOptions) -> RunResult:
    """Run the program's `run()` with the table overrides; outputs plus metrics
    (`seconds`, and per-loop `iterations`/`converged` when there are loops)."""
    return run_loaded_program(program, options)
