"""Calling a generated program's run() in-process, the same way for every engine.

The program's own error classes (`InputDataError` for bad input data,
`UDFError` for user functions) become Musketeer's one-line errors, and the
run is timed; engine-specific arguments (a cluster address) pass through.
"""

from __future__ import annotations

import re
import time
import types
from collections.abc import Callable
from typing import Any

from musketeer.backends.base import Program, RunOptions, RunResult
from musketeer.backends.common.loader import load_program
from musketeer.ir.types import DataError, MusketeerError

#: Maps an exception a program's run() raised to Musketeer's one-line error, or None to let it through.
ErrorTranslator = Callable[[types.ModuleType, BaseException], MusketeerError | None]


def program_error(module: types.ModuleType, exc: BaseException) -> MusketeerError | None:
    """The program's InputDataError as DataError, its UDFError as MusketeerError; None for anything else."""
    if isinstance(exc, module.InputDataError):
        return DataError(str(exc))
    udf_error = getattr(module, "UDFError", None)
    if udf_error is not None and isinstance(exc, udf_error):
        return MusketeerError(str(exc))
    if type(exc).__name__ == "ArrowInvalid" and str(exc).strip() == "overflow":
        return DataError(OVERFLOW)  # a checked integer kernel (pc.add_checked, ...): a data error, as in DuckDB
    return None


#: The one line an integer result that does not fit int64 becomes.
OVERFLOW = "integer overflow: a result does not fit in int64"


#: The line that ends a traceback raised by the program's or the user's own errors.
_ERROR_LINE = re.compile(r"\b(InputDataError|UDFError|DataError): (.*)")


def error_in_traceback(text: str) -> MusketeerError | None:
    """The one-line error behind a traceback that an engine passed on as text
    (a failed worker task): bad input data and DataError raised by a user's
    function as DataError, UDF failures as MusketeerError; None for other errors."""
    found = _ERROR_LINE.search(text)
    if found is None:
        return DataError(OVERFLOW) if re.search(r"\bArrowInvalid: overflow\s*$", text, re.M) else None
    message = found.group(2).strip()
    return MusketeerError(message) if found.group(1) == "UDFError" else DataError(message)


def run_loaded_program(program: Program, options: RunOptions, *, module: types.ModuleType | None = None,
                       translate: ErrorTranslator = program_error, **run_args: Any) -> RunResult:
    """Exec `program` (unless `module` is it, loaded already), call
    `run(tables, **run_args)`; outputs plus metrics (`seconds`, and whatever
    the program put in its METRICS: loop iterations and convergence).
    `translate` turns the engine's exceptions into one-line errors."""
    if module is None:
        module = load_program(program)
    start = time.perf_counter()
    try:
        outputs = module.run(dict(options.tables) or None, **run_args)
    except Exception as exc:
        error = translate(module, exc)
        if error is None:
            raise
        raise error from exc
    metrics: dict[str, Any] = {"seconds": time.perf_counter() - start}
    metrics.update(module.METRICS)
    return RunResult(outputs=outputs, metrics=metrics)
