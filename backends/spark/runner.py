"""Run a generated Spark program in-process.

We exec the program's exact text in a fresh module namespace, then call its
`run()`, so what runs is what a user would run with `python q.py`. The
SparkSession (and its JVM) outlives the module: the next run in this
process reuses it, which is what makes repeated runs (tests, notebooks)
cost seconds less each. Errors the program raises for bad input data become
`ir.types.DataError`, which the CLI prints as one line (exit code 2).
"""

from __future__ import annotations

import time
from typing import Any

from backends.base import Program, RunOptions, RunResult
from backends.common.loader import load_program
from backends.spark.environment import master_problem
from ir.types import DataError, MusketeerError


def run_program(program: Program, options: RunOptions) -> RunResult:
    """Run the program's `run()` with the table overrides and the master from
    `options.extra["spark_master"]`; outputs plus metrics (`seconds`, the
    master, and per-loop `iterations`/`converged` when there are loops)."""
    master = options.extra.get("spark_master") or None
    problem = master_problem(master)
    if problem:
        raise MusketeerError(problem)
    module = load_program(program)
    user_errors: dict[type, type[MusketeerError]] = {module.InputDataError: DataError}
    if hasattr(module, "UDFError"):
        user_errors[module.UDFError] = MusketeerError
    start = time.perf_counter()
    try:
        outputs = module.run(dict(options.tables) or None, master=master)
    except tuple(user_errors) as exc:
        error_class = next(cls for err, cls in user_errors.items() if isinstance(exc, err))
        raise error_class(str(exc)) from exc
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"seconds": seconds}
    metrics.update(module.METRICS)
    return RunResult(outputs=outputs, metrics=metrics)
