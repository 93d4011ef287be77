"""The DuckDB engine: a workflow becomes a Python program that runs DuckDB SQL.

The SQL is built from the IR with sqlglot's expression builders (see
codegen.py), so DuckDB's optimizer and vectorised, multi-threaded execution
(spilling to disk past its memory limit) run Musketeer's plans: on one
machine the fastest engine we have. `DuckDBBackend` implements
`backends.base.Backend`; `BACKEND` is the instance the glue layer picks up.
"""

from __future__ import annotations

import importlib.util

from musketeer.backends.base import ClusterOption, RunOptions
from musketeer.backends.common.descriptor import GeneratedProgramBackend


class DuckDBBackend(GeneratedProgramBackend):
    """Generates a Python program (codegen.py) and runs it in-process (runner.py).

    Options (`RunOptions.extra`): `duckdb_threads` (default: every core) and
    `duckdb_memory_limit` (e.g. "4GB"; default 80% of memory)."""

    name = "duckdb"
    #: After local on equal estimates (local is the reference engine).
    preference = 1
    #: A reasoned default, not a calibration: `musketeer calibrate --backends
    #: duckdb,local --sizes 200000,1000000` on the shared 2-core dev VM
    #: (2026-12-08, load ~4) gave scan 3.1e-8, filter 1.4e-9, join 2.7e-8 s/row
    #: but implausible aggregate/project rates (noise on a busy machine), so
    #: the rates are local's shipped ones divided by DuckDB's measured speed-up
    #: on the same operators (TPC-H SF 1: local 3-4x DuckDB's time; more for
    #: scans, which DuckDB reads from Parquet on every core, and sorts).
    #: Start-up: local's plus importing duckdb (~0.06 s). Loops re-plan each
    #: body statement (~3 ms). DuckDB spills to disk past 80% of memory, so
    #: going over costs little compared with local's swapping.
    default_profile = {
        "startup": 0.8,
        "rates": {"scan": 3.5e-08, "filter": 1.0e-09, "project": 1.2e-09, "join": 1.5e-08, "aggregate": 4e-09,
                  "agg_expr": 3e-09, "sort": 4e-08, "limit": 3.5e-10, "setop": 4e-08, "udf": 2.5e-06,
                  "sink": 1e-09},
        "read_byte": 1.5e-9, "write_byte": 3e-9, "loop_stage_overhead": 0.003, "loop_row": 1.5e-6,
        "memory_fraction": 0.8, "spill_factor": 2.0,
    }
    #: DuckDB's settings, as `run` flags (RunOptions.extra keys).
    cluster_options = (
        ClusterOption("--duckdb-threads", "duckdb_threads", "N", "DuckDB worker threads (default: every core)"),
        ClusterOption("--duckdb-memory-limit", "duckdb_memory_limit", "SIZE",
                      "DuckDB memory limit such as 4GB (default 80%% of memory; spills to disk beyond)"),
    )

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """The duckdb package (a Musketeer dependency) plus pandas and pyarrow
        for the results: found, not imported (compiling needs none of them)."""
        missing = [module for module in ("duckdb", "pandas", "pyarrow") if importlib.util.find_spec(module) is None]
        if missing:
            return False, f"the DuckDB engine needs {', '.join(missing)}: pip install {' '.join(missing)}"
        return True, ""


BACKEND = DuckDBBackend()

__all__ = ["BACKEND", "DuckDBBackend"]
