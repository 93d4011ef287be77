"""Run a generated Spark program in-process.

We exec the program's exact text in a fresh module namespace, then call its
`run()`, so what runs is what a user would run with `python q.py`. The
SparkSession (and its JVM) outlives the module: the next run in this
process reuses it, which is what makes repeated runs (tests, notebooks)
cost seconds less each. Errors the program raises for bad input data become
`ir.types.DataError`, which the CLI prints as one line (exit code 2).
"""

from __future__ import annotations

import re
import types

from musketeer.backends.base import Program, RunOptions, RunResult
from musketeer.backends.common.running import (
    error_in_traceback,
    program_error,
    run_loaded_program,
)
from musketeer.backends.spark.environment import master_problem
from musketeer.ir.types import DataError, MusketeerError


def run_program(program: Program, options: RunOptions) -> RunResult:
    """Run the program's `run()` with the table overrides and the master from
    `options.extra["spark_master"]`; outputs plus metrics (`seconds`, the
    master, and per-loop `iterations`/`converged` when there are loops)."""
    master = options.extra.get("spark_master") or None
    problem = master_problem(master)
    if problem:
        raise MusketeerError(problem)
    return run_loaded_program(program, options, translate=_spark_error, master=master)


def _spark_error(module: types.ModuleType, exc: BaseException) -> MusketeerError | None:
    """The program's own errors, or the error that ended a Python worker
    (PySpark passes a failed UDF's traceback on as text)."""
    error = program_error(module, exc)
    if error is None and type(exc).__module__.startswith(("pyspark", "py4j")):
        raised = _USER_RAISED.search(str(exc))  # the program's F.raise_error: a data error (cast_text)
        error = DataError(raised.group(1).strip()) if raised else error_in_traceback(str(exc))
    return error


#: What Spark says when a job hits F.raise_error(message).
_USER_RAISED = re.compile(r"\[USER_RAISED_EXCEPTION\] (.*?)(?: SQLSTATE: \w+|$)", re.MULTILINE)
