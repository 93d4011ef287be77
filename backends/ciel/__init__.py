"""The ciel backend: workflows as dynamic task graphs on our CIEL-style engine.

`CielBackend` implements `backends.base.Backend`; `BACKEND` is what the glue
picks up. The engine itself (master, workers, task API) is in engine/.
"""

from __future__ import annotations

from ir.operators import OPERATORS
from ir.workflow import Workflow

from backends.base import Program, RunOptions, RunResult


class CielBackend:
    """Generates a partitioned task-graph program (codegen.py) and runs it on a cluster (runner.py)."""

    name = "ciel"
    capabilities: frozenset[str] = frozenset(OPERATORS)

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """The local engine's libraries; a --ciel-master must answer with our token."""
        for module in ("pandas", "pyarrow", "numpy"):
            try:
                __import__(module)
            except ImportError:
                return False, f"the ciel engine needs {module}: pip install {module}"
        master = (options.extra.get("ciel_master") if options else None)
        if master:
            from backends.ciel.engine.api import Client
            try:
                Client(master, options.extra.get("ciel_token"), reconnect_timeout=2).close()
            except Exception as exc:  # noqa: BLE001 - the reason is the message
                return False, f"cannot use the ciel master at {master}: {exc}"
        return True, ""

    def generate(self, workflow: Workflow) -> Program:
        from backends.ciel.codegen import generate_program

        return Program(backend=self.name, text=generate_program(workflow), workflow=workflow)

    def run(self, program: Program, options: RunOptions) -> RunResult:
        from backends.ciel.runner import run_program

        return run_program(program, options)


BACKEND = CielBackend()

__all__ = ["BACKEND", "CielBackend"]
