"""Calling a generated program's run() in-process, the same way for every engine.

The program's own error classes (`InputDataError` for bad input data,
`UDFError` for user functions) become Musketeer's one-line errors, and the
run is timed; engine-specific arguments (a cluster address) pass through.
"""

from __future__ import annotations

import time
from typing import Any

from ir.types import DataError, MusketeerError

from backends.base import Program, RunOptions, RunResult
from backends.common.loader import load_program


def run_loaded_program(program: Program, options: RunOptions, **run_args: Any) -> RunResult:
    """Exec `program`, call `run(tables, **run_args)`; outputs plus metrics
    (`seconds`, and whatever the program put in its METRICS: loop
    iterations and convergence)."""
    module = load_program(program)
    user_errors: dict[type, type[MusketeerError]] = {module.InputDataError: DataError}
    if hasattr(module, "UDFError"):
        user_errors[module.UDFError] = MusketeerError
    start = time.perf_counter()
    try:
        outputs = module.run(dict(options.tables) or None, **run_args)
    except tuple(user_errors) as exc:
        error_class = next(cls for err, cls in user_errors.items() if isinstance(exc, err))
        raise error_class(str(exc)) from exc
    metrics: dict[str, Any] = {"seconds": time.perf_counter() - start}
    metrics.update(module.METRICS)
    return RunResult(outputs=outputs, metrics=metrics)
