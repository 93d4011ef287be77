"""Run a generated dask program in-process.

The program's exact text is exec'd in a fresh module and its `run()` called
with the scheduler from `RunOptions.extra["dask_scheduler"]` (None: dask's
local threaded scheduler), so what runs is what `python q.py
--dask-scheduler ...` would run. An unreachable scheduler is a one-line
error, never a traceback.
"""

from __future__ import annotations

from musketeer.ir.types import MusketeerError

from musketeer.backends.base import Program, RunOptions, RunResult
from musketeer.backends.common.running import run_loaded_program
from musketeer.backends.dask.cluster import scheduler_problem


def run_program(program: Program, options: RunOptions) -> RunResult:
    """Outputs plus metrics: `seconds`, `scheduler`, and per-loop
    `iterations`/`converged` when there are loops."""
    scheduler = options.extra.get("dask_scheduler") or None
    problem = scheduler_problem(scheduler)
    if problem:
        raise MusketeerError(problem)
    result = run_loaded_program(program, options, scheduler=scheduler)
    result.metrics["scheduler"] = scheduler or "threads"
    return result
