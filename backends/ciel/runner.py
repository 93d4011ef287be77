"""Run a generated ciel program: exec its exact text, call run() against a cluster.

With `RunOptions.extra["ciel_master"]` (HOST:PORT; token from
`extra["ciel_token"]` or $MUSKETEER_CIEL_TOKEN) the program runs on that
cluster. Otherwise one local cluster is started on first use and shared by
later runs in this process (starting worker processes costs about a second),
and closed at exit. A task that failed on bad input data comes back as a
TaskError carrying the traceback; its InputDataError line becomes DataError.
A job the master aborted because every worker died becomes `WorkersLost`
(exit 1: a runtime failure, not the user's), naming how our workers ended.
"""

from __future__ import annotations

import atexit
import re
import threading
import types
from collections.abc import Callable

from musketeer.backends.base import Program, RunOptions, RunResult
from musketeer.backends.ciel.engine.api import ClusterLost, TaskError
from musketeer.backends.ciel.engine.cluster import Cluster
from musketeer.backends.common.loader import load_program as load_common
from musketeer.backends.common.running import (
    error_in_traceback,
    program_error,
    run_loaded_program,
)
from musketeer.ir.types import MusketeerError

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


class WorkersLost(MusketeerError):
    """Every ciel worker died mid-job (often the OOM killer): the run failed, not the workflow."""

    exit_code = 1


def load_program(program: Program) -> types.ModuleType:
    """The program as a module whose run() ships its own text to the workers."""
    return load_common(program, {"__ciel_source__": program.text})


def task_error(module: types.ModuleType, exc: BaseException) -> MusketeerError | None:
    """One-line errors for what failed: the program's own errors raised in
    the driver, or the error that ended a task (a TaskError carries the
    worker's traceback as text)."""
    if not isinstance(exc, TaskError):
        return program_error(module, exc)
    return error_in_traceback(str(exc))


def _translate_with(cluster: Cluster | None) -> Callable[[types.ModuleType, BaseException], MusketeerError | None]:
    """`task_error`, plus: a ClusterLost names how our own workers ended (exit codes)."""
    def translate(module: types.ModuleType, exc: BaseException) -> MusketeerError | None:
        if isinstance(exc, ClusterLost):
            message = str(exc)
            deaths = cluster.deaths() if cluster is not None else ""
            if deaths:
                message = re.sub(r"\(.*\); job aborted$", lambda _: f"({deaths}); job aborted", message)
            return WorkersLost(message)
        return task_error(module, exc)
    return translate


def run_program(program: Program, options: RunOptions) -> RunResult:
    module = load_program(program)
    master = options.extra.get("ciel_master")
    token = options.extra.get("ciel_token")
    cluster = None
    if master is None:
        cluster = shared_cluster()
        master, token = cluster.address, cluster.token
    return run_loaded_program(program, options, module=module, translate=_translate_with(cluster),
                              master=master, token=token)
