"""The Python facade: the same steps the CLI runs, callable from code.

    >>> from musketeer.api import run_workflow
    >>> result = run_workflow("examples/revenue_by_region.sql", data_dir="examples/data")
    >>> result.outputs["result"].head()

Each step is its own function (load, plan, compile, run) so tests, notebooks
and the CLI can stop at any of them. Frontends and backends are imported
lazily: `explain` of a JSON workflow never imports sqlglot, and a backend's
heavy dependencies load only when that backend is used.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Any
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from musketeer.backends.base import Backend, Program, RunOptions, RunResult
from musketeer.ir import Catalog, DataError, IRError, MusketeerError, SourceLoc, UnsupportedError, Workflow
from musketeer.ir import operators as O
from musketeer.ir.schema import suggest
from musketeer.catalog import FileCatalog
from musketeer.errors import UsageError
from musketeer.outputs import OutputTarget, output_target, write_frame_atomic

Timings = dict[str, float]


# --- backends ----------------------------------------------------------------

def backend_names() -> list[str]:
    """Every registered backend (backends/registry.py), in `auto` preference order."""
    from musketeer.backends import registry

    return registry.names()


def __getattr__(name: str) -> Any:
    if name == "BACKENDS":  # the old constant, now read from the registry
        return tuple(backend_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_backend(name: str = "auto", options: RunOptions | None = None) -> Backend:
    """The backend descriptor for a `--backend` value, checked available.

    `auto` here (no workflow to price) is the most preferred available
    backend; the commands resolve `auto` through the cost model instead
    (`musketeer.autoplan`). Raises UsageError (one line) for unknown,
    unloadable and unavailable backends, saying what exists or is missing.
    """
    from musketeer.backends import registry

    if name == "auto":
        reasons = []
        for candidate in registry.names():
            ok, reason = registry.available(candidate, options)
            if ok:
                return registry.descriptor(candidate)
            reasons.append(f"{candidate}: {reason}")
        raise UsageError("no backend is available here (" + "; ".join(reasons) + ")")
    try:
        backend = registry.descriptor(name)
    except registry.BackendError as e:
        raise UsageError(str(e)) from None
    ok, reason = backend.available(options)
    if not ok:
        raise UsageError(f"backend {name!r} is not available: {reason}")
    return backend


# --- workflows ---------------------------------------------------------------

def open_catalog(workflow_path: str | os.PathLike[str], data_dir: str | None = None,
                 tables: dict[str, str] | None = None) -> FileCatalog:
    """The catalog for one workflow file: paths written in the workflow
    resolve against its directory first."""
    return FileCatalog(data_dir, tables, base_dir=os.path.dirname(os.fspath(workflow_path)) or ".")


def _load_sql(path: str, text: str, catalog: Catalog) -> Workflow:
    from musketeer.frontends.sql import parse_workflow

    return parse_workflow(text, catalog, filename=path)


def _load_json(path: str, text: str, catalog: Catalog) -> Workflow:
    """IR JSON (as `musketeer explain --json` writes it). Tables the catalog
    binds (--data-dir, --table) replace the paths recorded in the file."""
    try:
        workflow = Workflow.from_json(text)
    except json.JSONDecodeError as e:
        raise IRError(f"invalid JSON: {e.msg}", SourceLoc(path, e.lineno, e.colno)) from None
    except MusketeerError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise IRError(f"{path} is not a Musketeer workflow JSON file ({type(e).__name__}: {e})") from None
    return rebind_scans(workflow, catalog)


def _load_py(path: str, text: str, catalog: Catalog) -> Workflow:
    """A Python file defining a module-level `workflow` (a musketeer.Dataset
    or an ir.Workflow); its read()/table() calls bind through `catalog`."""
    from musketeer.dataset import load_python_workflow

    return load_python_workflow(path, text, catalog)


#: Workflow file suffix -> loader(path, text, catalog).
LOADERS: dict[str, Callable[[str, str, Catalog], Workflow]] = {
    ".sql": _load_sql, ".json": _load_json, ".py": _load_py,
}


def load_workflow(path: str | os.PathLike[str], catalog: Catalog) -> Workflow:
    """Parse a workflow file into IR, choosing the frontend by extension."""
    if isinstance(getattr(path, "text", None), str):  # SQL from -c or stdin: musketeer/inline.py
        return _load_sql(path.name, path.text, catalog)  # type: ignore[union-attr]
    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise UsageError(f"cannot tell the workflow language of {path}: expected a .sql, .py or .json file")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UsageError(f"workflow file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"workflow file {path} is a directory") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"workflow file {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return loader(path, text, catalog)


def rebind_scans(workflow: Workflow, catalog: Catalog) -> Workflow:
    """Point each Scan of a table the catalog knows at the catalog's file,
    checking that the file still has the columns (and types) the plan reads."""
    swap: dict[int, O.Op] = {}
    for op in workflow.ops():
        if not isinstance(op, O.Scan) or op.table not in catalog:
            continue
        table = catalog.get(op.table)
        for col in op.columns:
            if col.source not in table.schema:
                raise DataError(f"table {op.table} ({table.path}) has no column {col.source!r}"
                                f"{suggest(col.source, table.schema.names)}")
            found = table.schema.dtype(col.source)
            if found != col.dtype:
                raise DataError(f"table {op.table} ({table.path}): column {col.source!r} is {found}, "
                                f"the workflow expects {col.dtype}")
        if (table.path, table.format) != (op.path, op.format):
            swap[id(op)] = op.replace(path=table.path, format=table.format)
    if not swap:
        return workflow
    memo: dict[int, O.Op] = {}
    sinks = [O.replace_nodes(s, swap, memo) for s in workflow.sinks]
    return workflow.replace_sinks(sinks)  # type: ignore[arg-type]


@contextmanager
def _timed(timings: Timings | None, phase: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[phase] = time.perf_counter() - start


def plan_workflow(path: str | os.PathLike[str], catalog: Catalog | None = None, *,
                  data_dir: str | None = None, tables: dict[str, str] | None = None,
                  passes: bool = True, timings: Timings | None = None) -> Workflow:
    """Parse and (unless `passes` is False) optimize: what `explain` shows."""
    if catalog is None:
        catalog = open_catalog(path, data_dir, tables)
    with _timed(timings, "parse"):
        workflow = load_workflow(path, catalog)
    if passes:
        from musketeer.ir.passes import optimize

        with _timed(timings, "optimize"):
            workflow = optimize(workflow)
    return workflow


def compile_workflow(path: str | os.PathLike[str], catalog: Catalog | None = None, *,
                     backend: str = "auto", data_dir: str | None = None,
                     tables: dict[str, str] | None = None, options: dict[str, Any] | None = None) -> Program:
    """Parse, optimize and generate one standalone program. `auto` is the
    cost model's choice, as for `run` (a plan mixing engines needs
    `compile_plan` instead); `options` may name a cost `profile`."""
    if backend != "auto":
        get_backend(backend)  # first: a bad --backend fails before parsing (no cluster needed to compile)
    return generate(plan_workflow(path, catalog, data_dir=data_dir, tables=tables), backend, options)


def generate(workflow: Workflow, backend: str = "auto", options: dict[str, Any] | None = None) -> Program:
    """The program for an optimized workflow on `backend`; `auto`: on the
    engine the cost model picks (one stage, else a one-line UsageError)."""
    if backend == "auto":
        from musketeer.autoplan import compile_single
        from musketeer.cost_model import load_profile

        extra = dict(options or {})
        return compile_single(workflow, load_profile(extra.get("profile")), RunOptions(extra=extra))
    return _generate(get_backend(backend), workflow, None)


def compile_plan(path: str | os.PathLike[str], directory: str, catalog: Catalog | None = None, *,
                 data_dir: str | None = None, tables: dict[str, str] | None = None,
                 options: dict[str, Any] | None = None) -> dict[str, str]:
    """`compile --backend auto -o DIR`: {file path: text} for one program per
    stage of the cost model's plan plus DIR/run_plan.py running them in order."""
    from musketeer.autoplan import compile_auto
    from musketeer.cost_model import load_profile

    extra = dict(options or {})
    workflow = plan_workflow(path, catalog, data_dir=data_dir, tables=tables)
    return compile_auto(workflow, load_profile(extra.get("profile")), directory, RunOptions(extra=extra))


def check_supported(engine: Backend, workflow: Workflow) -> None:
    """Refuse, before generating, a workflow that needs a feature the
    engine's capabilities lack (the same one-line error on every engine),
    naming the backends that have it."""
    from musketeer.backends import registry
    from musketeer.backends.capabilities import missing

    loc = next((s.loc for s in workflow.sinks if s.loc is not None), None)
    for op in workflow.ops():
        lacking = missing(engine.capabilities, op)
        if lacking:
            others = [n for n in registry.names() if n != engine.name
                      and not missing(registry.descriptor(n).capabilities, op)]
            hint = f"; backends that have it: {', '.join(others)}" if others else ""
            raise UnsupportedError(f"{lacking[0]} in the {engine.name} backend{hint}", loc)


def _generate(engine: Backend, workflow: Workflow, timings: Timings | None) -> Program:
    with _timed(timings, "generate"):
        check_supported(engine, workflow)
        return engine.generate(workflow)


def copy_targets(workflow: Workflow) -> list[OutputTarget]:
    """The files a workflow's `COPY ... TO` statements write, checked before
    anything runs. Paths are relative to the cwd, as in other SQL engines.
    The generated program writes them itself (so a compiled program alone
    does what `musketeer run` does); the glue only writes `--output`."""
    return [output_target(s.name, s.path, s.format, what="COPY TO") for s in workflow.sinks if s.path is not None]


def result_target(workflow: Workflow, path: str) -> OutputTarget:
    """Where `--output` writes the 'result' output, checked before running."""
    if workflow.result is None:
        names = ", ".join(s.name for s in workflow.sinks)
        raise UsageError(f"--output {path}: the workflow has no 'result' output (its outputs: {names})")
    return output_target("result", path)


def _collect_warnings(result: RunResult, caught: list[warnings.WarningMessage]) -> None:
    """Warnings raised while the engine ran (a loop that hit max_iter before
    its stop rule held, ...) join `metrics["warnings"]` as one-line texts,
    so callers report them their way instead of Python's file:line format."""
    texts = [" ".join(str(w.message).split()) for w in caught]
    if texts:
        result.metrics["warnings"] = list(dict.fromkeys([*result.metrics.get("warnings", ()), *texts]))


@dataclass
class Execution:
    """One finished run, with what the CLI needs to report it."""

    workflow: Workflow
    result: RunResult
    written: list[OutputTarget]
    program: Program | None = None  # the single program that ran, when one did


def run_workflow(path: str | os.PathLike[str], catalog: Catalog | None = None, *,
                 backend: str = "auto", data_dir: str | None = None,
                 tables: dict[str, str] | None = None, output: str | None = None,
                 options: dict[str, Any] | None = None) -> RunResult:
    """Compile and run; with `output`, write the result there (.csv or
    .parquet) atomically: on any error no file is left.

    `metrics` holds the backend's metrics plus the seconds spent in each glue
    phase (`parse_seconds`, ...).
    """
    return execute(path, catalog, backend=backend, data_dir=data_dir, tables=tables, output=output,
                   options=options).result


def execute(path: str | os.PathLike[str], catalog: Catalog | None = None, *,
            backend: str = "auto", data_dir: str | None = None,
            tables: dict[str, str] | None = None, output: str | None = None,
            options: dict[str, Any] | None = None) -> Execution:
    """`run_workflow`, also returning the planned workflow and the files
    written (COPY targets, by the program, and `output`).

    `options` are backend settings such as {"spark_master": "spark://h:7077"}
    or {"dask_scheduler": "tcp://h:8786"}."""
    if output is not None:
        output_target("result", output)  # a bad --output fails before parsing
    run_options = RunOptions(extra=dict(options or {}))
    engine = None if backend == "auto" else get_backend(backend, run_options)  # None: the cost model picks
    from musketeer import cache  # an unchanged workflow over unchanged inputs skips parse and plan

    entry_key = cache.key(path, backend, data_dir, tables, run_options.extra) \
        if catalog is None and cache.enabled() else None
    hit = cache.lookup(entry_key) if entry_key else None
    if hit is not None:
        timings: Timings = {}
        with _timed(timings, "cache"):
            workflow = Workflow.from_json(hit.workflow_json)
            program = Program(backend=hit.backend, text=hit.program, workflow=workflow)
        run = _run_planned(engine or get_backend(hit.backend, run_options), run_options, workflow, output,
                           timings, program=program)
        run.result.metrics["cache"] = "hit"
        return run
    if catalog is None:
        catalog = open_catalog(path, data_dir, tables)
    timings = {}
    workflow = plan_workflow(path, catalog, timings=timings)
    run = _run_planned(engine, run_options, workflow, output, timings)
    if entry_key:
        program = run.program
        chosen = run.result.metrics.get("backend")
        if program is None and chosen not in (None, "auto"):  # auto ran one program: keep it for next time
            program = get_backend(chosen, run_options).generate(workflow)
        if program is not None:
            cache.store(entry_key, program.backend, program.text, workflow)
    return run


def execute_workflow(workflow: Workflow, *, backend: str = "auto", output: str | None = None,
                     options: dict[str, Any] | None = None, passes: bool = True) -> Execution:
    """`execute` for a workflow built in Python (a musketeer.Dataset's plan)
    rather than read from a file: optimize, generate, run."""
    if output is not None:
        output_target("result", output)
    run_options = RunOptions(extra=dict(options or {}))
    engine = None if backend == "auto" else get_backend(backend, run_options)
    timings: Timings = {}
    if passes:
        with _timed(timings, "optimize"):
            workflow = optimize_workflow(workflow)
    return _run_planned(engine, run_options, workflow, output, timings)


def optimize_workflow(workflow: Workflow) -> Workflow:
    from musketeer.ir.passes import optimize

    return optimize(workflow)


def _run_planned(engine: Backend | None, run_options: RunOptions, workflow: Workflow, output: str | None,
                 timings: Timings, program: Program | None = None) -> Execution:
    """Generate and run a planned workflow; write `output` atomically.
    With no engine (`--backend auto`) the cost model chooses the backend(s):
    see musketeer/autoplan.py."""
    copies = copy_targets(workflow)
    result_file = result_target(workflow, output) if output is not None else None
    if engine is None:
        from musketeer.cost_model import load_profile
        from musketeer.autoplan import execute_auto

        with _timed(timings, "run"), warnings.catch_warnings(record=True) as caught:
            result, _ = execute_auto(workflow, run_options, load_profile(run_options.extra.get("profile")))
    else:
        program = program or _generate(engine, workflow, timings)
        with _timed(timings, "run"), warnings.catch_warnings(record=True) as caught:
            # Every Scan already names the file the catalog bound (--table
            # overrides included), so no run-time rebinding is needed.
            result = engine.run(program, run_options)
    _collect_warnings(result, caught)
    if result_file is not None:
        if "result" not in result.outputs:
            raise RuntimeError(f"backend {result.metrics.get('backend', engine and engine.name)!r} "
                               "returned no 'result' output")
        with _timed(timings, "write"):
            write_frame_atomic(result_file, result.outputs["result"])
    result.metrics = {**{f"{k}_seconds": v for k, v in timings.items()}, **result.metrics}
    return Execution(workflow, result, copies + ([result_file] if result_file else []),
                     program if engine is not None else None)
