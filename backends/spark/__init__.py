"""The Spark engine: a workflow becomes one standalone PySpark DataFrame-API program.

`SparkBackend` implements `backends.base.Backend`; `BACKEND` is the instance
the glue layer picks up (`musketeer run W --backend spark [--spark-master URL]`).
Nothing here imports pyspark: generating a program needs only the IR, and
`available()` says in one line what is missing before anything starts a JVM.
"""

from __future__ import annotations

from musketeer.backends.base import RunOptions
from musketeer.backends.common.descriptor import GeneratedProgramBackend
from musketeer.backends.spark.environment import java_problem, master_problem, pyspark_problem


class SparkBackend(GeneratedProgramBackend):
    """Generates a PySpark program (codegen.py) and runs it in-process (runner.py)."""

    name = "spark"

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """pyspark, Java 17+, and a master that answers when one is given."""
        master = (options.extra.get("spark_master") if options is not None else None) or None
        for problem in (pyspark_problem(), java_problem(), master_problem(master)):
            if problem:
                return False, problem
        return True, ""


BACKEND = SparkBackend()

__all__ = ["BACKEND", "SparkBackend"]
