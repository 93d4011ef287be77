"""Load a generated program's exact text as a module, for in-process runners.

Runners exec the very text a user would run with `python q.py`, so what is
tested is what is shipped; registering the text with linecache makes
tracebacks show the generated source lines.
"""

from __future__ import annotations

import linecache
import re
import types
from typing import Any

from musketeer.backends.base import Program


def load_program(program: Program, module_globals: dict[str, Any] | None = None) -> types.ModuleType:
    """Execute the program text as a new module (its `main()` does not run).

    `module_globals` are set before the text runs (the ciel engine passes the
    program's own source, which `run()` ships to its workers)."""
    slug = re.sub(r"[^A-Za-z0-9_]", "_", program.workflow.name)[:40] or "workflow"
    module = types.ModuleType(f"musketeer_{program.backend}_program_{slug}")
    filename = f"<musketeer {program.backend} program {slug}>"
    linecache.cache[filename] = (len(program.text), None, program.text.splitlines(True), filename)
    module.__file__ = filename
    module.__dict__.update(module_globals or {})
    exec(compile(program.text, filename, "exec"), module.__dict__)  # noqa: S102 - our own generated code
    return module
