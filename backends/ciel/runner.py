"""Run a generated ciel program: exec its exact text, call run() against a cluster.

With `RunOptions.extra["ciel_master"]` (HOST:PORT; token from
`extra["ciel_token"]` or $MUSKETEER_CIEL_TOKEN) the program runs on that
cluster. Otherwise one local cluster is started on first use and shared by
later runs in this process (starting worker processes costs about a second),
and closed at exit. A task that failed on bad input data comes back as a
TaskError carrying the traceback; its InputDataError line becomes DataError.
"""

from __future__ import annotations

import atexit
import linecache
import re
import threading
import time
import types
from typing import Any

from ir.types import DataError, MusketeerError

from backends.base import Program, RunOptions, RunResult
from backends.ciel.engine.api import TaskError
from backends.ciel.engine.cluster import Cluster

_shared: Cluster | None = None
_shared_lock = threading.Lock()


def shared_cluster() -> Cluster:
    """The process-wide local cluster (started on first use, closed at exit)."""
    global _shared
    with _shared_lock:
        alive = _shared is not None and _shared.master is not None and _shared.master.poll() is None \
            and all(w.poll() is None for w in _shared.workers)
        if not alive:
            if _shared is not None:
                _shared.close()
            _shared = Cluster(workers=2).start()
            atexit.register(_shared.close)
        assert _shared is not None
        return _shared


def load_program(program: Program) -> types.ModuleType:
    slug = re.sub(r"[^A-Za-z0-9_]", "_", program.workflow.name)[:40] or "workflow"
    module = types.ModuleType(f"musketeer_ciel_program_{slug}")
    filename = f"<musketeer ciel program {slug}>"
    linecache.cache[filename] = (len(program.text), None, program.text.splitlines(True), filename)
    module.__file__ = filename
    module.__dict__["__ciel_source__"] = program.text  # what run() ships to the workers
    exec(compile(program.text, filename, "exec"), module.__dict__)  # noqa: S102 - our own generated code
    return module


def run_program(program: Program, options: RunOptions) -> RunResult:
    module = load_program(program)
    master = options.extra.get("ciel_master")
    token = options.extra.get("ciel_token")
    if master is None:
        cluster = shared_cluster()
        master, token = cluster.address, cluster.token
    start = time.perf_counter()
    try:
        outputs = module.run(dict(options.tables) or None, master=master, token=token)
    except module.InputDataError as exc:
        raise DataError(str(exc)) from exc
    except TaskError as exc:
        m = re.search(r"(?:InputDataError|UDFError): (.*)$", str(exc).strip(), re.S)
        if m:
            cls: type[MusketeerError] = DataError if "InputDataError" in m.group(0)[:20] else MusketeerError
            raise cls(m.group(1).strip().splitlines()[0]) from exc
        raise
    metrics: dict[str, Any] = {"seconds": time.perf_counter() - start}
    metrics.update(module.METRICS)
    return RunResult(outputs=outputs, metrics=metrics)
