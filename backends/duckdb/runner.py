"""Run a generated DuckDB program in-process.

As for every engine, the program's exact text is exec'd and its `run()`
called (backends/common/running.py). DuckDB's settings come from
`RunOptions.extra`; errors DuckDB raises for the data (an overflow, the
square root of a negative number, text that is not a number) become
one-line DataErrors, as the other engines report them.
"""

from __future__ import annotations

import re
import types

from musketeer.backends.base import Program, RunOptions, RunResult
from musketeer.backends.common.running import OVERFLOW, program_error, run_loaded_program
from musketeer.ir.types import DataError, MusketeerError


def _error(module: types.ModuleType, exc: BaseException) -> MusketeerError | None:
    error = program_error(module, exc)
    if error is not None:
        return error
    duckdb = module.duckdb
    if isinstance(exc, duckdb.OutOfRangeException) and re.match(r"Out of Range Error: Overflow in \w+ of INT64",
                                                                 module.first_line(exc)):
        return DataError(OVERFLOW)  # worded as the other engines word it
    if isinstance(exc, (duckdb.OutOfRangeException, duckdb.InvalidInputException, duckdb.ConversionException)):
        return DataError(re.sub(r"^[A-Za-z ]+ Error: ", "", module.first_line(exc)))  # without "Out of Range Error: "
    return None


def run_program(program: Program, options: RunOptions) -> RunResult:
    """The program's `run()` with the table overrides and DuckDB settings;
    outputs plus metrics (`seconds`, per-loop `iterations`/`converged`)."""
    extra = options.extra
    return run_loaded_program(program, options, translate=_error,
                              threads=extra.get("duckdb_threads"), memory_limit=extra.get("duckdb_memory_limit"))
