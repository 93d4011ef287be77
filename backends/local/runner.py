"""Run a generated local-engine program in-process.

We exec the program's exact text in a fresh module namespace, so what runs
is what was generated (and what a user would run with `python q.py`), then
call its `run()`. Errors the program raises for bad input data become
`ir.types.DataError`, which the CLI prints as one line (exit code 2).
"""

from __future__ import annotations

import linecache
import re
import time
import types
from typing import Any

from ir.types import DataError, MusketeerError

from backends.base import Program, RunOptions, RunResult


def load_program(program: Program) -> types.ModuleType:
    """Execute the program text as a new module (its `main()` does not run)."""
    slug = re.sub(r"[^A-Za-z0-9_]", "_", program.workflow.name)[:40] or "workflow"
    module = types.ModuleType(f"musketeer_program_{slug}")
    filename = f"<musketeer program {slug}>"
    # Let tracebacks show the generated source lines.
    linecache.cache[filename] = (len(program.text), None, program.text.splitlines(True), filename)
    module.__file__ = filename
    exec(compile(program.text, filename, "exec"), module.__dict__)  # noqa: S102 - our own generated code
    return module


def run_program(program: Program, options: RunOptions) -> RunResult:
    """Run the program's `run()` with the table overrides; outputs plus metrics
    (`seconds`, and per-loop `iterations`/`converged` when there are loops)."""
    module = load_program(program)
    user_errors: dict[type, type[MusketeerError]] = {module.InputDataError: DataError}
    if hasattr(module, "UDFError"):
        user_errors[module.UDFError] = MusketeerError
    start = time.perf_counter()
    try:
        outputs = module.run(dict(options.tables) or None)
    except tuple(user_errors) as exc:
        error_class = next(cls for err, cls in user_errors.items() if isinstance(exc, err))
        raise error_class(str(exc)) from exc
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {"seconds": seconds}
    metrics.update(module.METRICS)
    return RunResult(outputs=outputs, metrics=metrics)
