"""The Spark engine: a workflow becomes one standalone PySpark DataFrame-API program.

`SparkBackend` implements `backends.base.Backend`; `BACKEND` is the instance
the glue layer picks up (`musketeer run W --backend spark [--spark-master URL]`).
Nothing here imports pyspark: generating a program needs only the IR, and
`available()` says in one line what is missing before anything starts a JVM.
"""

from __future__ import annotations

from backends.base import Program, RunOptions, RunResult
from backends.spark.environment import java_problem, master_problem, pyspark_problem
from ir.operators import OPERATORS
from ir.workflow import Workflow


class SparkBackend:
    """Generates a PySpark program (codegen.py) and runs it in-process (runner.py)."""

    name = "spark"
    capabilities: frozenset[str] = frozenset(OPERATORS)

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """pyspark, Java 17+, and a master that answers when one is given."""
        master = (options.extra.get("spark_master") if options is not None else None) or None
        for problem in (pyspark_problem(), java_problem(), master_problem(master)):
            if problem:
                return False, problem
        return True, ""

    def generate(self, workflow: Workflow) -> Program:
        from backends.spark.codegen import generate_program

        return Program(backend=self.name, text=generate_program(workflow), workflow=workflow)

    def run(self, program: Program, options: RunOptions) -> RunResult:
        from backends.spark.runner import run_program

        return run_program(program, options)


BACKEND = SparkBackend()

__all__ = ["BACKEND", "SparkBackend"]
