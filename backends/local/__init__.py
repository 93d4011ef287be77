"""The local engine: a workflow becomes one standalone pandas + pyarrow program.

`LocalBackend` implements `backends.base.Backend`; `BACKEND` is the instance
the glue layer picks up.
"""

from __future__ import annotations

from musketeer.backends.base import RunOptions
from musketeer.backends.common.descriptor import GeneratedProgramBackend


class LocalBackend(GeneratedProgramBackend):
    """Generates a Python program (see codegen.py) and runs it in-process (runner.py)."""

    name = "local"
    preference = 0
    #: `musketeer calibrate` on the project's 2-core dev VM (2026-11-21; see
    #: cost_model/costs.py for how it was measured).
    #: No engine start, cheapest per row for scans, filters and projections,
    #: but it holds whole relations: past ~1/3 of RAM it swaps (spill factor).
    default_profile = {
        "startup": 0.74,
        "rates": {"scan": 1.4e-07, "filter": 8.7e-10, "project": 1.4e-09, "join": 4.6e-08, "aggregate": 1e-08,
                  "agg_expr": 1.1e-08, "sort": 1.2e-07, "limit": 3.5e-10, "setop": 1.5e-07, "udf": 2e-06,
                  "sink": 1e-11},
        "read_byte": 1.5e-9, "write_byte": 3e-9, "loop_row": 1.5e-6,
        "memory_fraction": 1 / 3, "spill_factor": 25.0,
    }

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


BACKEND = LocalBackend()

__all__ = ["BACKEND", "LocalBackend"]
