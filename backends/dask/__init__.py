"""The dask engine: a workflow becomes one standalone dask.dataframe program.

`DaskBackend` implements `backends.base.Backend`; `BACKEND` is the instance
the glue layer picks up. Programs run on dask's local threaded scheduler,
or on a dask.distributed cluster named by `RunOptions.extra["dask_scheduler"]`
(`musketeer run --backend dask --dask-scheduler tcp://HOST:PORT`).
"""

from __future__ import annotations

from musketeer.backends.base import ClusterOption, RunOptions
from musketeer.backends.common.descriptor import GeneratedProgramBackend
from musketeer.backends.dask.cluster import INSTALL_HINT, missing_packages, scheduler_problem


class DaskBackend(GeneratedProgramBackend):
    """Generates a dask program (codegen.py) and runs it in-process (runner.py)."""

    name = "dask"
    preference = 10
    #: `musketeer calibrate` on the project's 2-core dev VM (2026-11-21; see
    #: cost_model/costs.py for how it was measured).
    #: ~0.9 s more start-up than local (imports, threads), cheaper joins,
    #: dearer scans and sorts; re-plans the loop body every iteration.
    default_profile = {
        "startup": 1.6,
        "rates": {"scan": 3.1e-07, "filter": 3.2e-09, "project": 5.1e-09, "join": 1.2e-08, "aggregate": 4.9e-08,
                  "agg_expr": 1.2e-08, "sort": 3.2e-07, "limit": 1.275e-09, "setop": 1.2e-07, "udf": 1.5e-06,
                  "sink": 1e-11},
        "read_byte": 1.5e-9, "write_byte": 3e-9, "loop_stage_overhead": 0.021, "loop_row": 1.1e-6,
        "memory_fraction": 2.0, "spill_factor": 4.0,
    }
    cluster_options = (
        ClusterOption("--dask-scheduler", "dask_scheduler", "ADDRESS",
                      "run Dask programs on this dask.distributed scheduler (tcp://HOST:PORT)"),
    )

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """dask and distributed must be installed; a scheduler named in
        `options.extra["dask_scheduler"]` must accept connections."""
        missing = missing_packages()
        if "dask" in missing or "distributed" in missing:
            return False, INSTALL_HINT
        if missing:
            return False, f"the dask engine needs {', '.join(missing)}: pip install {' '.join(missing)}"
        problem = scheduler_problem((options.extra.get("dask_scheduler") if options else None) or None)
        return (False, problem) if problem else (True, "")


BACKEND = DaskBackend()

__all__ = ["BACKEND", "DaskBackend"]
