"""Skywriting on the CIEL engine: the task functions workers run for a script.

Glue (it imports both the frontend's interpreter and the engine):

* `run_script(vm)`: the script's top level; `run_closure(f, args)`: a
  spawned Skywriting function; `resume(vm, value)`: a continuation.
  Each runs the interpreter until it returns or blocks on `*f` of a future
  it has no value for. Then the task pickles the interpreter and
  tail-spawns `resume(vm, f)`, which depends on f; the engine runs it once
  f exists, and its output becomes this task's (the engine's alias chain).
  No worker thread ever waits for a future.
* `call_python(name, *args)`: a Python function by `module:qualname`.
* `run_executor(executor, args, n, *inputs)`: `exec`/`spawn_exec` of an
  external program (stdinout, environ) or a Python function (python). It
  refuses to run outside a worker: external programs run only on workers,
  which joined the cluster by proving they hold its token.
* `run_workflow(...)`: a Musketeer workflow (SQL text, or a .sql/.json/.py
  file) on the local engine inside the task: a SQL stage in a data-
  dependent loop. Tables are paths, or rows (lists of dicts) from an
  earlier stage; the output is rows.

A script error raises `ScriptFailed("file:line:col: message")`; the
driver (sky_cli) turns the traceback text back into a located SkyError.
"""

from __future__ import annotations

import datetime
import decimal
import math
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from musketeer.backends.ciel.engine import api
from musketeer.frontends.skywriting.builtins import run_spawned_builtin
from musketeer.frontends.skywriting.syntax import SkyError
from musketeer.frontends.skywriting.vm import VM, Blocked, Builtin, Closure, Future, PyFunction
from musketeer.ir.types import SourceLoc


class ScriptFailed(Exception):
    """A Skywriting error in a task: `file:line:col: message`."""


#: how ScriptFailed shows in a failed task's traceback text
FAILED_LINE = re.compile(r"ScriptFailed: (.*?):(\d+):(\d+): (.*)")


def to_engine(v: Any) -> Any:
    """Skywriting futures as engine Refs (for Python functions and executors)."""
    if isinstance(v, Future):
        return api.Ref(v.id)
    if isinstance(v, list):
        return [to_engine(x) for x in v]
    if isinstance(v, dict):
        return {k: to_engine(x) for k, x in v.items()}
    return v


def to_sky(v: Any) -> Any:
    if isinstance(v, api.Ref):
        return Future(v.id)
    if isinstance(v, (list, tuple)):
        return [to_sky(x) for x in v]
    if isinstance(v, dict):
        return {k: to_sky(x) for k, x in v.items()}
    return v


class CielHost:
    """The interpreter's Host inside a ciel task: spawns are tasks.

    `lookup` asks the master whether a future is done only for futures this
    task activation did not spawn itself (those are almost never done yet,
    and a `while (!*done)` loop would pay a round trip per iteration for
    nothing); an older future, like fib's second child after resuming on the
    first, usually is, and the peek saves a continuation task."""

    def __init__(self) -> None:
        self.fresh: set[str] = set()

    def _new(self, ref: api.Ref) -> Future:
        self.fresh.add(ref.id)
        return Future(ref.id)

    def spawn(self, fn: Closure | PyFunction | Builtin, args: list[Any], loc: SourceLoc) -> Future:
        if isinstance(fn, Builtin):
            return self._new(api.spawn(run_builtin, fn.name, args, (loc.file, loc.line, loc.col)))
        if isinstance(fn, PyFunction):
            # top-level futures become dependencies: the function gets their values
            return self._new(api.spawn(call_python, fn.name, *[to_engine(a) for a in args]))
        return self._new(api.spawn(run_closure, fn, args))

    def spawn_exec(self, executor: str, args: Any, n_outputs: int, loc: SourceLoc) -> list[Future]:
        if executor not in EXECUTORS:
            raise SkyError(f"no executor {executor!r} (there are: {', '.join(sorted(EXECUTORS))})", loc)
        inputs: list[Any] = []
        if isinstance(args, dict):
            inputs = args.get("inputs", [])
            if not isinstance(inputs, list):
                raise SkyError("an executor's \"inputs\" is a list", loc)
            args = {k: v for k, v in args.items() if k != "inputs"}
        where = (loc.file, loc.line, loc.col)
        ref = api.spawn(run_executor, executor, to_engine(args), n_outputs, where, *[to_engine(i) for i in inputs])
        if n_outputs == 1:
            return [self._new(ref)]
        return [self._new(api.spawn(item, ref, i)) for i in range(n_outputs)]

    def workflow(self, source: str, tables: dict[str, Any], options: dict[str, Any], loc: SourceLoc) -> Future:
        spec: dict[str, tuple[str, Any]] = {}
        values: list[Any] = []
        for name, value in tables.items():
            if isinstance(value, str):
                spec[name] = ("path", value)
            else:
                spec[name] = ("arg", len(values))
                values.append(to_engine(value))
        where = (loc.file, loc.line, loc.col)
        return self._new(api.spawn(run_workflow, source, spec, dict(options), where, *values))

    def lookup(self, future: Future) -> tuple[bool, Any]:
        if future.id in self.fresh:
            return False, None
        return api.current_runtime().peek(api.Ref(future.id))


def _drive(vm: VM) -> Any:
    try:
        return vm.run(CielHost())
    except Blocked as blocked:
        vm.waiting = blocked.future.id  # type: ignore[attr-defined]
        return api.spawn(resume, vm, api.Ref(blocked.future.id))
    except SkyError as exc:
        raise ScriptFailed(exc.located()) from None


def run_script(vm: VM) -> Any:
    return _drive(vm)


def run_closure(fn: Closure, args: list[Any]) -> Any:
    try:
        vm = VM.call(fn, args)
    except SkyError as exc:
        raise ScriptFailed(exc.located()) from None
    return _drive(vm)


def resume(vm: VM, value: Any) -> Any:
    vm.resume(vm.waiting, value)  # type: ignore[attr-defined]
    return _drive(vm)


def run_builtin(name: str, args: list[Any], where: tuple[str, int, int]) -> Any:
    try:
        return run_spawned_builtin(name, args, CielHost(), SourceLoc(*where))
    except SkyError as exc:
        raise ScriptFailed(exc.located()) from None


def item(values: Any, i: int) -> Any:
    return values[i]


def call_python(name: str, *args: Any) -> Any:
    result = api.resolve_function(name)(*args)
    return result if isinstance(result, api.Ref) else to_sky(result)


# --- executors ----------------------------------------------------------------------
def _fail(where: tuple[str, int, int], message: str) -> ScriptFailed:
    return ScriptFailed(f"{where[0]}:{where[1]}:{where[2]}: {message}")


def _bytes(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    return (v if isinstance(v, str) else str(v)).encode()


def _command(args: Any, where: tuple[str, int, int], executor: str) -> list[str]:
    cmd = args.get("command_line") if isinstance(args, dict) else None
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, (str, int, float)) for c in cmd):
        raise _fail(where, f"exec {executor}: \"command_line\" is a non-empty list of strings")
    return [str(c) for c in cmd]


def _run(cmd: list[str], where: tuple[str, int, int], executor: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False, **kw)
    except OSError as exc:
        raise _fail(where, f"exec {executor}: cannot run {cmd[0]}: {exc.strerror}") from None
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise _fail(where, f"exec {executor}: {cmd[0]} exited with code {proc.returncode}: {last}")
    return proc


def _stdinout(args: Any, n: int, inputs: tuple[Any, ...], where: tuple[str, int, int]) -> Any:
    if n != 1:
        raise _fail(where, "exec stdinout has exactly 1 output")
    cmd = _command(args, where, "stdinout")
    proc = _run(cmd, where, "stdinout", input=b"".join(_bytes(v) for v in inputs))
    return proc.stdout.decode(errors="replace")


def _environ(args: Any, n: int, inputs: tuple[Any, ...], where: tuple[str, int, int]) -> Any:
    cmd = _command(args, where, "environ")
    extra = args.get("env", {}) if isinstance(args, dict) else {}
    with tempfile.TemporaryDirectory(prefix="sky-exec-") as tmp:
        ins = []
        for i, v in enumerate(inputs):
            path = Path(tmp, f"in{i}")
            path.write_bytes(_bytes(v))
            ins.append(str(path))
        outs = [str(Path(tmp, f"out{i}")) for i in range(n)]
        env = dict(os.environ, INPUT_FILES="\n".join(ins), OUTPUT_FILES="\n".join(outs),
                   **{str(k): str(v) for k, v in extra.items()})
        _run(cmd, where, "environ", env=env, cwd=tmp)
        values = []
        for path in outs:
            try:
                values.append(Path(path).read_text(errors="replace"))
            except FileNotFoundError:
                raise _fail(where, f"exec environ: {cmd[0]} did not write its output {Path(path).name}") from None
    return values[0] if n == 1 else values


def _python_exec(args: Any, n: int, inputs: tuple[Any, ...], where: tuple[str, int, int]) -> Any:
    name = args.get("function") if isinstance(args, dict) else None
    if not isinstance(name, str):
        raise _fail(where, "exec python: give {\"function\": \"module:name\", \"args\": [...]}")
    result = api.resolve_function(name)(*inputs, *args.get("args", []))
    if n != 1 and (not isinstance(result, (list, tuple)) or len(result) != n):
        raise _fail(where, f"exec python: {name} must return a list of {n} outputs")
    return to_sky(result)


EXECUTORS = {"stdinout": _stdinout, "environ": _environ, "python": _python_exec}


def run_executor(executor: str, args: Any, n: int, where: tuple[str, int, int], *inputs: Any) -> Any:
    if getattr(api._local, "runtime", None) is None:
        raise _fail(where, f"exec {executor} runs only as a task on a cluster's authenticated workers")
    return EXECUTORS[executor](args, n, inputs, where)


# --- workflows ----------------------------------------------------------------------
def _plain(v: Any) -> Any:
    """A cell as a Skywriting value (None for NULL; dates as ISO text)."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return _plain(v.item())
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
    except ImportError:  # pragma: no cover
        pass
    return v


def run_workflow(source: str, spec: dict[str, tuple[str, Any]], options: dict[str, Any],
                 where: tuple[str, int, int], *values: Any) -> list[dict[str, Any]]:
    import pandas as pd

    from musketeer import api as musketeer_api
    from musketeer.ir.types import MusketeerError

    with tempfile.TemporaryDirectory(prefix="sky-workflow-") as tmp:
        tables: dict[str, str] = {}
        for name, (kind, v) in spec.items():
            if kind == "path":
                tables[name] = v
                continue
            rows = values[v]
            if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
                raise _fail(where, f"workflow table {name!r}: give a path, or rows (a non-empty list of dicts)")
            path = Path(tmp, f"{name}.parquet")
            pd.DataFrame(rows).to_parquet(path, index=False)
            tables[name] = str(path)
        if source.endswith((".sql", ".json", ".py")) and "\n" not in source:
            path_text = source
            if not Path(path_text).is_file():
                raise _fail(where, f"workflow {source}: no such file")
        else:
            path_text = str(Path(tmp, "workflow.sql"))
            Path(path_text).write_text(source, encoding="utf-8")
        try:
            run = musketeer_api.execute(path_text, backend=str(options.get("backend", "local")), tables=tables)
        except MusketeerError as exc:
            raise _fail(where, f"workflow: {exc.message}") from None
        frame = run.result.outputs["result"]
        return [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
