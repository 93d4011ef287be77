"""The Spark engine: a workflow becomes one standalone PySpark DataFrame-API program.

`SparkBackend` implements `backends.base.Backend`; `BACKEND` is the instance
the glue layer picks up (`musketeer run W --backend spark [--spark-master URL]`).
Nothing here imports pyspark: generating a program needs only the IR, and
`available()` says in one line what is missing before anything starts a JVM.
"""

from __future__ import annotations

from musketeer.backends.base import ClusterOption, RunOptions
from musketeer.backends.common.descriptor import GeneratedProgramBackend
from musketeer.backends.spark.environment import java_problem, master_problem, pyspark_problem


class SparkBackend(GeneratedProgramBackend):
    """Generates a PySpark program (codegen.py) and runs it in-process (runner.py)."""

    name = "spark"
    preference = 20
    #: `musketeer calibrate` on the project's 2-core dev VM (2026-11-21; see
    #: cost_model/costs.py for how it was measured).
    #: JVM and session (~12 s here), a fixed cost per operator (a job
    #: stage), dearest per row on a 2-core box; no memory cliff (it spills).
    default_profile = {
        "startup": 12.0,
        "rates": {"scan": 4.9e-07, "filter": 7.7e-08, "project": 4.2e-07, "join": 2.8e-07, "aggregate": 2.3e-07,
                  "agg_expr": 7.7e-08, "sort": 1.5e-06, "limit": 1.05e-07, "setop": 5e-08, "udf": 1e-06,
                  "sink": 8e-07},
        "read_byte": 1e-9, "write_byte": 2e-9, "loop_overhead": 0.041, "op_overhead": 0.034,
    }
    cluster_options = (
        ClusterOption("--spark-master", "spark_master", "URL",
                      "run Spark programs on this master (spark://HOST:PORT; default local[*])"),
    )

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """pyspark, Java 17+, and a master that answers when one is given."""
        master = (options.extra.get("spark_master") if options is not None else None) or None
        for problem in (pyspark_problem(), java_problem(), master_problem(master)):
            if problem:
                return False, problem
        return True, ""


BACKEND = SparkBackend()

__all__ = ["BACKEND", "SparkBackend"]
