"""The ciel backend: workflows as dynamic task graphs on our CIEL-style engine.

`CielBackend` implements `backends.base.Backend`; `BACKEND` is what the glue
picks up. The engine itself (master, workers, task API) is in engine/.
"""

from __future__ import annotations

from musketeer.backends.base import ClusterOption, RunOptions
from musketeer.backends.common.descriptor import GeneratedProgramBackend


class CielBackend(GeneratedProgramBackend):
    """Generates a partitioned task-graph program (codegen.py) and runs it on a cluster (runner.py)."""

    name = "ciel"
    preference = 30
    #: `musketeer calibrate` on the project's 2-core dev VM (2026-11-21; see
    #: cost_model/costs.py for how it was measured).
    #: Worker processes (~1.9 s), rows shipped between processes (dear scans).
    default_profile = {
        "startup": 1.9,
        "rates": {"scan": 9.6e-07, "filter": 1e-11, "project": 1e-11, "join": 9.3e-08, "aggregate": 1.1e-08,
                  "agg_expr": 1.9e-09, "sort": 3.1e-07, "limit": 2.5e-12, "setop": 1.5e-07, "udf": 2e-06,
                  "sink": 1e-11},
        "read_byte": 2e-9, "write_byte": 4e-9, "op_overhead": 0.0056, "loop_row": 8.7e-6,
        "memory_fraction": 1.0, "spill_factor": 3.0,
    }
    cluster_options = (
        ClusterOption("--ciel-master", "ciel_master", "HOST:PORT",
                      "run ciel programs on this ciel master (token: $MUSKETEER_CIEL_TOKEN)"),
    )

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """The local engine's libraries; a --ciel-master must answer with our token."""
        for module in ("pandas", "pyarrow", "numpy"):
            try:
                __import__(module)
            except ImportError:
                return False, f"the ciel engine needs {module}: pip install {module}"
        master = (options.extra.get("ciel_master") if options else None)
        if master:
            from musketeer.backends.ciel.engine.api import Client
            try:
                Client(master, options.extra.get("ciel_token"), reconnect_timeout=2).close()
            except Exception as exc:  # noqa: BLE001 - the reason is the message
                return False, f"cannot use the ciel master at {master}: {exc}"
        return True, ""


BACKEND = CielBackend()

__all__ = ["BACKEND", "CielBackend"]
