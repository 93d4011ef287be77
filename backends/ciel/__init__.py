"""The ciel backend: workflows as dynamic task graphs on our CIEL-style engine.

`CielBackend` implements `backends.base.Backend`; `BACKEND` is what the glue
picks up. The engine itself (master, workers, task API) is in engine/.
"""

from __future__ import annotations

from musketeer.backends.base import RunOptions
from musketeer.backends.common.descriptor import GeneratedProgramBackend


class CielBackend(GeneratedProgramBackend):
    """Generates a partitioned task-graph program (codegen.py) and runs it on a cluster (runner.py)."""

    name = "ciel"

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
