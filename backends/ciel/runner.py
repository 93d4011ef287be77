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
from musketeer.backends.ciel.engine.worker import WORKER_ERROR
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


class EngineFailure(MusketeerError):
    """A task failed for a reason that is neither the data's nor the user's code's
    (a worker could not store an object, say): one line, exit 1; --debug shows
    the worker's traceback."""

    exit_code = 1


_RESOURCE_ERROR = re.compile(r"(FileNotFoundError|FileExistsError|PermissionError|IsADirectoryError|OSError|"
                             r"MemoryError|BlockingIOError|InterruptedError)\b")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def load_program(program: Program) -> types.ModuleType:
    """The program as a module whose run() ships its own text to the workers."""
    return load_common(program, {"__ciel_source__": program.text})


def task_error(module: types.ModuleType, exc: BaseException) -> MusketeerError | None:
    """One-line errors for what failed: the program's own errors raised in
    the driver, or the error that ended a task (a TaskError carries the
    worker's traceback as text)."""
    if not isinstance(exc, TaskError):
        return program_error(module, exc)
    found = error_in_traceback(str(exc))
    if found is not None:
        return found
    text = str(exc)
    if WORKER_ERROR in text:
        return EngineFailure(text[text.index(WORKER_ERROR):].splitlines()[0])
    last = _last_line(text)
    if _RESOURCE_ERROR.match(last):  # the worker's machine, not the program: disk, memory, files
        return EngineFailure(f"ciel: a task failed on a worker: {last}")
    return None  # a bug: an internal error, with the traceback under --debug


def _translate_with(cluster: Cluster | None) -> Callable[[types.ModuleType, BaseException], MusketeerError | None]:
    """`task_error`, plus: a ClusterLost names how our own workers ended (exit codes)."""
    def translate(module: types.ModuleType, exc: BaseException) -> MusketeerError | None:
        if isinstance(exc, ClusterLost):
            return WorkersLost(_with_deaths(str(exc), cluster))
        return task_error(module, exc)
    return translate


def _with_deaths(message: str, cluster: Cluster | None) -> str:
    """The master only sees dropped sockets; our own cluster knows exit codes."""
    if cluster is None:
        return message
    deaths = cluster.deaths()
    if not deaths:
        return message
    return re.sub(r"all \d+ workers died \(.*\); job aborted$",
                  lambda _: f"all {deaths.count('; ') + 1} workers died ({deaths}); job aborted", message)


def local_cluster() -> Cluster:
    """`shared_cluster()`, with a start that lost every worker as WorkersLost (one line)."""
    try:
        return shared_cluster()
    except ClusterLost as exc:
        raise WorkersLost(str(exc)) from exc


def run_program(program: Program, options: RunOptions) -> RunResult:
    module = load_program(program)
    master = options.extra.get("ciel_master")
    token = options.extra.get("ciel_token")
    cluster = None
    if master is None:
        cluster = local_cluster()
        master, token = cluster.address, cluster.token
    return run_loaded_program(program, options, module=module, translate=_translate_with(cluster),
                              master=master, token=token)
