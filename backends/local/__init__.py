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
