"""The DuckDB engine: a workflow becomes a Python program that runs DuckDB SQL.

The SQL is built from the IR with sqlglot's expression builders (see
codegen.py), so DuckDB's optimizer and vectorised, multi-threaded execution
(spilling to disk past its memory limit) run Musketeer's plans: on one
machine the fastest engine we have. `DuckDBBackend` implements
`backends.base.Backend`; `BACKEND` is the instance the glue layer picks up.
"""

from __future__ import annotations

from musketeer.backends.base import RunOptions
from musketeer.backends.common.descriptor import GeneratedProgramBackend


class DuckDBBackend(GeneratedProgramBackend):
    """Generates a Python program (codegen.py) and runs it in-process (runner.py).

    Options (`RunOptions.extra`): `duckdb_threads` (default: every core) and
    `duckdb_memory_limit` (e.g. "4GB"; default 80% of memory)."""

    name = "duckdb"
    #: Where `--backend auto` ranks it among engines with equal estimates.
    preference = 1
    #: Options this engine reads from RunOptions.extra (command line: --duckdb-threads, --duckdb-memory-limit).
    options = ("duckdb_threads", "duckdb_memory_limit")

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """The duckdb package (a Musketeer dependency) plus pandas and pyarrow for the results."""
        missing = []
        for module in ("duckdb", "pandas", "pyarrow"):
            try:
                __import__(module)
            except ImportError:
                missing.append(module)
        if missing:
            return False, f"the DuckDB engine needs {', '.join(missing)}: pip install {' '.join(missing)}"
        return True, ""


BACKEND = DuckDBBackend()

__all__ = ["BACKEND", "DuckDBBackend"]
