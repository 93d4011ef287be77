"""Running a script in this process, without a cluster: every spawn runs at once.

For the language's tests and for trying a script quickly; the CIEL glue
(musketeer/sky_tasks.py) is the real host. External programs and
workflows are not run here unless the caller passes functions for them
(`exec` in particular runs only on a cluster's authenticated workers).
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from typing import Any

from musketeer.frontends.skywriting.syntax import SkyError
from musketeer.frontends.skywriting.vm import VM, Builtin, Closure, Future, PyFunction
from musketeer.ir.types import SourceLoc


class LocalHost:
    def __init__(self, workflow: Callable[[str, dict[str, Any], dict[str, Any]], Any] | None = None) -> None:
        self.values: dict[str, Any] = {}
        self._ids = itertools.count()
        self._workflow = workflow
        self.spawns = 0

    def _future(self, value: Any) -> Future:
        fid = f"local-{next(self._ids)}"
        self.values[fid] = value
        return Future(fid)

    def resolve(self, v: Any) -> Any:
        return self.values[v.id] if isinstance(v, Future) else v

    def spawn(self, fn: Closure | PyFunction | Builtin, args: list[Any], loc: SourceLoc) -> Future:
        self.spawns += 1
        if isinstance(fn, Builtin):
            from musketeer.frontends.skywriting.builtins import run_spawned_builtin

            return self._future(run_spawned_builtin(fn.name, args, self, loc))
        if isinstance(fn, PyFunction):
            module, _, qual = fn.name.partition(":")
            try:
                obj: Any = importlib.import_module(module)
                for part in qual.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise SkyError(f"python function {fn.name}: {exc}", loc) from None
            return self._future(obj(*[self.resolve(a) for a in args]))
        return self._future(VM.call(fn, args, loc).run(self))

    def spawn_exec(self, executor: str, args: Any, n_outputs: int, loc: SourceLoc) -> list[Future]:
        raise SkyError(f"exec({executor!r}, ...) runs external programs only on the workers of a ciel cluster", loc)

    def workflow(self, source: str, tables: dict[str, Any], options: dict[str, Any], loc: SourceLoc) -> Future:
        if self._workflow is None:
            raise SkyError("workflow() needs a cluster (or a local workflow runner)", loc)
        return self._future(self._workflow(source, {k: self.resolve(v) for k, v in tables.items()}, options))

    def lookup(self, future: Future) -> tuple[bool, Any]:
        if future.id in self.values:
            return True, self.values[future.id]
        return False, None
