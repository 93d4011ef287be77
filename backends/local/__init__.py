"""The local engine: a workflow becomes one standalone pandas + pyarrow program.

`LocalBackend` implements `backends.base.Backend`; `BACKEND` is the instance
the glue layer picks up.
"""

from __future__ import annotations

from ir.operators import OPERATORS
from ir.workflow import Workflow

from backends.base import Program, RunOptions, RunResult


class LocalBackend:
    """Generates a Python program (see codegen.py) and runs it in-process (runner.py)."""

    name = "local"
    capabilities: frozenset[str] = frozenset(OPERATORS)

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """pandas and pyarrow are all the generated programs need."""
        missing = []
        for module in ("pandas", "pyarrow", "numpy"):
            try:
                __import__(module)
            except ImportError:
                missing.append(module)
        if missing:
            return False, f"the local engine needs {', '.join(missing)}: pip install {' '.join(missing)}"
        return True, ""

    def generate(self, workflow: Workflow) -> Program:
        from backends.local.codegen import generate_program

        return Program(backend=self.name, text=generate_program(workflow), workflow=workflow)

    def run(self, program: Program, options: RunOptions) -> RunResult:
        from backends.local.runner import run_program

        return run_program(program, options)


BACKEND = LocalBackend()

__all__ = ["BACKEND", "LocalBackend"]
