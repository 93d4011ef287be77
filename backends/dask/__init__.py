"""The dask engine: a workflow becomes one standalone dask.dataframe program.

`DaskBackend` implements `backends.base.Backend`; `BACKEND` is the instance
the glue layer picks up. Programs run on dask's local threaded scheduler,
or on a dask.distributed cluster named by `RunOptions.extra["dask_scheduler"]`
(`musketeer run --backend dask --dask-scheduler tcp://HOST:PORT`).
"""

from __future__ import annotations

from musketeer.backends.base import RunOptions
from musketeer.backends.common.descriptor import GeneratedProgramBackend
from musketeer.backends.dask.cluster import INSTALL_HINT, missing_packages, scheduler_problem


class DaskBackend(GeneratedProgramBackend):
    """Generates a dask program (codegen.py) and runs it in-process (runner.py)."""

    name = "dask"

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
